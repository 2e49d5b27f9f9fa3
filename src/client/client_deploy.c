/*
 * client_deploy.c: finding the agent and `client deploy` (spec
 * integrations 8.2), with the deliberate difference that a runtime's
 * ok:false fails the command (DESIGN section 5 item 15).
 */
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "client/workload.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/retry.h"

/* At most this much of the command's time is kept for fetching logs. */
#define LOGS_RESERVE_MS 5000u

/* Polls back off from half a second to five, the reference's pace. */
static const dd_retry_policy poll_pace = {
	.base_ms = 500, .cap_ms = 5000, .max_wait_ms = 5000,
};

static void pause_before_poll(client_ctx *c, unsigned n)
{
	uint64_t rnd = 0;

	(void)dd_random_bytes(&rnd, sizeof rnd);
	dd_client_http_sleep(c->http, dd_retry_backoff_ms(&poll_pace, n, rnd));
}

static unsigned secs_since(uint64_t start_ms)
{
	return (unsigned)((dd_now_ms() - start_ms) / 1000u);
}

static dd_err_t read_file(const char *path, dd_buf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
	uint8_t chunk[8192];
	dd_err_t rc = DD_OK;
	size_t n;

	if (f == NULL)
		return DD_ERR_NOT_FOUND;
	for (;;) {
		n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		rc = dd_buf_append(out, chunk, n);
		if (rc)
			break;
	}
	if (rc == DD_OK && ferror(f))
		rc = DD_ERR_IO;
	if (f != stdin)
		fclose(f);
	return rc;
}

/* One attempt at /api/agents: 0 and the host, -1 not yet, or an exit. */
static int discover_once(client_ctx *c, const char *url, char *host,
			 dd_buf *seen, char *why, size_t why_len)
{
	json_t *agents = NULL;
	dd_client_resp r;
	dd_err_t rc;
	int code;

	code = client_authed(c, "GET", url, NULL, 0, &r, "agent discovery");
	if (code == DD_CLIENT_EXIT_TRANSPORT) {
		snprintf(why, why_len, "the control plane did not answer");
		code = -1;
		goto out;
	}
	if (code)
		goto out;
	if (r.status != 200) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     why_len);
		code = r.status == 401 || r.status == 403 ?
		       DD_CLIENT_EXIT_AUTH : -1;
		if (code > 0)
			client_say(c, "the control plane refused: %s", why);
		goto out;
	}
	rc = dd_json_parse(r.body, r.body_len, r.body_len, &agents, NULL, 0);
	if (rc == DD_OK) {
		dd_buf_reset(seen);
		rc = dd_client_pick_agent(agents, c->args.vm_name, host,
					  CLIENT_HOST_MAX, seen);
	}
	code = rc == DD_OK ? 0 : -1;
	if (rc == DD_ERR_NOT_FOUND)
		snprintf(why, why_len, "no healthy, registering or stale agent "
			 "yet");
	else if (rc)
		snprintf(why, why_len, "/api/agents is not a list of agents");
out:
	json_decref(agents);
	dd_client_resp_free(&r);
	return code;
}

/* Spec integrations 8.2 steps 2 and 3. */
static int discover(client_ctx *c)
{
	char url[CLIENT_URL_MAX], host[CLIENT_HOST_MAX], api[CLIENT_HOST_MAX];
	char why[600] = "";
	uint64_t start = dd_now_ms();
	dd_buf seen;
	int code;

	if (client_url(url, sizeof url, c->args.cp_url, "/api/agents")) {
		client_say(c, "--cp URL too long");
		return DD_CLIENT_EXIT_USAGE;
	}
	dd_buf_init(&seen, 8192);
	for (unsigned n = 1;; n++) {
		code = discover_once(c, url, host, &seen, why, sizeof why);
		if (code >= 0 || dd_client_http_left(c->http) == 0)
			break;
		client_say(c, "looking for the agent of vm %s: %s (%u s)",
			   c->args.vm_name, why, secs_since(start));
		pause_before_poll(c, n);
		if (dd_client_http_left(c->http) == 0)
			break;
	}
	if (code < 0) {
		client_say(c, "no agent for vm %s before the deadline: %s%s",
			   c->args.vm_name, why, seen.len > 0 ?
			   "; its entries:" : "");
		fputs(dd_buf_str(&seen), c->env->err);
		code = DD_CLIENT_EXIT_TRANSPORT;
	}
	dd_buf_free(&seen);
	if (code)
		return code;
	if (dd_client_api_host(host, api, sizeof api) != DD_OK ||
	    snprintf(c->agent, sizeof c->agent, "https://%s", api) >=
	    (int)sizeof c->agent) {
		client_say(c, "the control plane lists an unusable hostname");
		return DD_CLIENT_EXIT_FAILED;
	}
	memcpy(c->agent_host, host, strlen(host) + 1);
	client_say(c, "vm %s: agent %s, API %s", c->args.vm_name, host,
		   c->agent);
	return 0;
}

int client_resolve_agent(client_ctx *c)
{
	if (c->args.agent_url == NULL)
		return discover(c);
	if (client_url(c->agent, sizeof c->agent, c->args.agent_url, "") ||
	    dd_client_url_host(c->agent, c->agent_host,
			       sizeof c->agent_host) != DD_OK) {
		client_say(c, "--agent: URL too long");
		return DD_CLIENT_EXIT_USAGE;
	}
	return 0;
}

/* Spec integrations 8.2 step 4: a freshly booted agent may need a while. */
static int wait_ready(client_ctx *c)
{
	const char *service = NULL;
	uint64_t start = dd_now_ms();
	json_t *h = NULL;
	char why[600];
	long status;
	int ok = 0;

	for (unsigned n = 1;; n++) {
		if (client_health(c, &h, &status, why, sizeof why) == DD_OK) {
			service = NULL;
			ok = 0;
			(void)dd_json_get_str(h, "service", &service);
			(void)dd_json_get_bool(h, "ok", &ok);
			if (service != NULL && strcmp(service, "agent") != 0) {
				client_say(c, "%s is not an agent (its /health "
					   "says service \"%.32s\")", c->agent,
					   strspn(service, "abcdefghijklmnop"
						  "qrstuvwxyz-_") ==
					   strlen(service) ? service : "?");
				json_decref(h);
				return DD_CLIENT_EXIT_FAILED;
			}
			json_decref(h);
			h = NULL;
			if (ok && service != NULL)
				return 0;
			snprintf(why, sizeof why,
				 "/health does not say ok yet");
		}
		if (dd_client_http_left(c->http) == 0)
			break;
		client_say(c, "waiting for the agent at %s: %s (%u s)",
			   c->agent, why, secs_since(start));
		pause_before_poll(c, n);
		if (dd_client_http_left(c->http) == 0)
			break;
	}
	client_say(c, "the agent at %s was not ready before the deadline: %s",
		   c->agent, why);
	return DD_CLIENT_EXIT_TRANSPORT;
}

/* "a, b, c": what the agent listed, for the message when time runs out. */
static void summarise(const json_t *health, dd_buf *out)
{
	const json_t *deps = json_object_get(health, "deployments");
	const char *name;
	json_t *e;
	size_t i;

	dd_buf_reset(out);
	json_array_foreach(deps, i, e) {
		name = json_is_string(e) ? json_string_value(e) : NULL;
		if (name == NULL &&
		    dd_json_get_str(e, "app_name", &name) != DD_OK)
			continue;
		if ((out->len > 0 && dd_buf_append_str(out, ", ") != DD_OK) ||
		    dd_client_sanitize(name, strlen(name), out) != DD_OK)
			break;
	}
}

/* Spec integrations 8.2 step 7, bounded by the command's deadline. */
static int wait_running(client_ctx *c, const char *app, const char *id,
			dd_client_wl *w)
{
	uint64_t start = dd_now_ms(), reserve, end;
	json_t *h = NULL;
	char why[600];
	dd_buf listed;
	long status;
	int verdict, code = DD_CLIENT_EXIT_TRANSPORT;

	memset(w, 0, sizeof *w);
	dd_buf_init(&listed, 2048);
	/*
	 * The wait ends early enough to leave time for fetching the logs
	 * within the command's deadline, and --wait-timeout may end it
	 * sooner still.
	 */
	reserve = c->args.timeout_s * 1000u / 4;
	if (reserve > LOGS_RESERVE_MS)
		reserve = LOGS_RESERVE_MS;
	end = c->deadline_ms - reserve;
	if (c->args.wait_timeout_s != 0 &&
	    start + c->args.wait_timeout_s * 1000u < end)
		end = start + c->args.wait_timeout_s * 1000u;
	dd_client_http_deadline(c->http, end);
	for (unsigned n = 1;; n++) {
		if (client_health(c, &h, &status, why, sizeof why) == DD_OK) {
			if (dd_client_health_find(h, app, id, w) != DD_OK) {
				snprintf(why, sizeof why, "/health has no "
					 "deployments list");
			} else {
				summarise(h, &listed);
				verdict = dd_client_wl_verdict(w->state);
				snprintf(why, sizeof why, "%s",
					 w->state == DD_WL_OTHER ? w->status :
					 dd_client_wl_name(w->state));
				if (verdict != 0) {
					code = verdict > 0 ? 0 :
					       DD_CLIENT_EXIT_FAILED;
					break;
				}
			}
			json_decref(h);
			h = NULL;
		}
		if (dd_client_http_left(c->http) == 0)
			break;
		client_say(c, "waiting for %s: %s (%u s)", app, why,
			   secs_since(start));
		pause_before_poll(c, n);
		if (dd_client_http_left(c->http) == 0)
			break;
	}
	if (code == 0)
		client_say(c, "%s is %s (%u s)", app, why, secs_since(start));
	else if (code == DD_CLIENT_EXIT_FAILED)
		client_say(c, "%s %s: %s", app, why,
			   w->error[0] != '\0' ? w->error : "no reason given");
	else
		client_say(c, "%s did not show as running before the deadline "
			   "(waited %u s): %s; the agent lists: %s", app,
			   secs_since(start), why,
			   listed.len > 0 ? dd_buf_str(&listed) : "nothing");
	/* The rest of the command's time is for fetching the logs. */
	dd_client_http_deadline(c->http, c->deadline_ms);
	json_decref(h);
	dd_buf_free(&listed);
	return code;
}

/* stdout: key=value lines, ready for $GITHUB_OUTPUT. */
static void print_result(const client_ctx *c, const char *app,
			 const dd_client_deploy_reply *rep, const char *status)
{
	FILE *o = c->env->out;

	fprintf(o, "agent-url=%s\n", c->agent);
	if (c->agent_host[0] != '\0')
		fprintf(o, "agent-host=%s\n", c->agent_host);
	fprintf(o, "app-name=%s\n", app);
	if (rep->id[0] != '\0')
		fprintf(o, "deployment-id=%s\n", rep->id);
	fprintf(o, "status=%s\n", status);
	fflush(o);
}

/* The workload file, checked and compacted into body. 0 or an exit. */
static int load_workload(client_ctx *c, json_t **spec, dd_buf *body)
{
	const char *path = c->args.workload;
	char why[400];
	dd_buf file;
	dd_err_t rc;

	/* One byte over the limit is enough to tell "too large". */
	dd_buf_init(&file, DD_WORKLOAD_MAX_BYTES + 1);
	rc = read_file(path, &file);
	if (rc == DD_OK)
		rc = dd_workload_check(file.data, file.len, spec, why,
				       sizeof why);
	else if (rc == DD_ERR_TOO_LARGE)
		snprintf(why, sizeof why, "larger than %u bytes",
			 DD_WORKLOAD_MAX_BYTES);
	else
		snprintf(why, sizeof why, "%s", rc == DD_ERR_NOT_FOUND ?
			 "cannot open it" : dd_strerror(rc));
	dd_buf_free(&file);
	if (rc == DD_OK)
		rc = dd_json_append(body, *spec);
	if (rc == DD_ERR_NOMEM) {
		client_say(c, "%s: %s", path, dd_strerror(rc));
		return DD_CLIENT_EXIT_FAILED;
	}
	if (rc) {
		client_say(c, "workload %s: %s", path, why);
		return DD_CLIENT_EXIT_USAGE;
	}
	return 0;
}

int client_cmd_deploy(client_ctx *c)
{
	dd_client_deploy_reply rep;
	dd_client_resp r = {0};
	dd_client_wl w;
	json_t *spec = NULL;
	char url[CLIENT_URL_MAX], why[600];
	const char *app;
	dd_buf body;
	int code;

	dd_buf_init(&body, DD_WORKLOAD_MAX_BYTES);
	code = load_workload(c, &spec, &body);
	if (code)
		goto out;
	app = json_string_value(json_object_get(spec, "app_name"));
	code = client_resolve_agent(c);
	if (code == 0)
		code = wait_ready(c);
	if (code)
		goto out;
	if (client_url(url, sizeof url, c->agent, "/deploy")) {
		code = DD_CLIENT_EXIT_USAGE;
		goto out;
	}
	client_say(c, "deploying %s to %s", app, c->agent);
	code = client_authed(c, "POST", url, body.data, body.len, &r, "deploy");
	if (code)
		goto out;
	if (r.status != 200) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     sizeof why);
		client_say(c, "deploy of %s refused: %s", app, why);
		code = dd_client_exit_for(DD_OK, r.status);
		goto out;
	}
	if (dd_client_deploy_reply_parse(r.body, r.body_len, &rep) != DD_OK) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     sizeof why);
		client_say(c, "deploy of %s: the agent's answer is not a "
			   "deploy result (%s)", app, why);
		code = DD_CLIENT_EXIT_FAILED;
		goto out;
	}
	if (!rep.ok) {
		client_say(c, "deploy of %s failed: the runtime answered "
			   "ok:false: %s", app, rep.error);
		client_show_logs(c, app);
		code = DD_CLIENT_EXIT_FAILED;
		goto out;
	}
	client_say(c, "deploy of %s accepted (id %s, %s)", app,
		   rep.id[0] != '\0' ? rep.id : "none given",
		   rep.status[0] != '\0' ? rep.status : "no status");
	if (!c->args.wait) {
		print_result(c, app, &rep, "accepted");
		goto out;
	}
	code = wait_running(c, app, rep.id, &w);
	if (code == 0)
		print_result(c, app, &rep, w.state == DD_WL_LISTED ? "listed" :
			     w.status);
	else
		client_show_logs(c, app);
out:
	dd_client_resp_free(&r);
	dd_buf_free(&body);
	json_decref(spec);
	return code;
}
