#include "client/client.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "client/client_sargs.h"
#include "client/client_shell.h"
#include "client/workload.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/retry.h"

/*
 * Authenticated calls: a few tries, each with a fresh token, inside the
 * command's deadline. Retry-After is not consulted (the answer's headers
 * are not kept); the back-off is short enough for a command line.
 */
static const dd_retry_policy call_retry = {
	.max_attempts = 4, .base_ms = 1000, .cap_ms = 8000, .max_wait_ms = 8000,
};

void client_say(const client_ctx *c, const char *fmt, ...)
{
	va_list ap;

	fputs("devopsdefender client: ", c->env->err);
	va_start(ap, fmt);
	vfprintf(c->env->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->env->err);
	fflush(c->env->err);
}

dd_err_t client_url(char *out, size_t cap, const char *base, const char *path)
{
	size_t n = strlen(base);
	int w;

	while (n > 0 && base[n - 1] == '/')
		n--;
	w = snprintf(out, cap, "%.*s%s", (int)n, base, path);
	return w < 0 || (size_t)w >= cap ? DD_ERR_TOO_LARGE : DD_OK;
}

/* No token: the source refused (3), or it could not be reached (4). */
static int token_exit(dd_err_t rc)
{
	switch (rc) {
	case DD_ERR_UNAUTHORIZED:
	case DD_ERR_INVALID:
		return DD_CLIENT_EXIT_AUTH;
	case DD_ERR_NOMEM:
		return DD_CLIENT_EXIT_FAILED;
	default:
		return DD_CLIENT_EXIT_TRANSPORT;
	}
}

int client_need_tokens(client_ctx *c)
{
	char why[320], *file_token = NULL;
	const char *fixed = c->args.token;
	dd_err_t rc;

	if (c->tokens != NULL)
		return 0;
	if (c->args.token_file != NULL) {
		rc = dd_client_token_read_file(c->args.token_file, &file_token);
		if (rc) {
			client_say(c, "--token-file %s: %s", c->args.token_file,
				   rc == DD_ERR_INVALID ?
				   "not one bearer token" : dd_strerror(rc));
			return DD_CLIENT_EXIT_USAGE;
		}
		fixed = file_token;
	}
	rc = dd_client_token_src_new(fixed, c->args.audience, c->env->get,
				     c->env->get_ud, &c->tokens, why,
				     sizeof why);
	dd_client_token_free(file_token);
	if (rc) {
		client_say(c, "%s", rc == DD_ERR_NOMEM ? dd_strerror(rc) : why);
		return token_exit(rc);
	}
	return 0;
}

static int call_once(client_ctx *c, const char *method, const char *url,
		     const void *body, size_t body_len, dd_client_resp *r,
		     const char *what, dd_err_t *rc_out)
{
	const char *headers[3];
	char why[320], *tok = NULL;
	dd_httpc_request rq = {.method = method, .url = url, .body = body,
			       .body_len = body_len, .headers = headers};
	dd_buf auth;
	dd_err_t rc;

	rc = dd_client_token_get(c->tokens, c->http, &tok, why, sizeof why);
	if (rc) {
		client_say(c, "%s: no token: %s", what, why);
		return token_exit(rc);
	}
	dd_buf_init(&auth, DD_CLIENT_TOKEN_MAX + 64);
	rc = dd_buf_appendf(&auth, "Authorization: Bearer %s", tok);
	dd_client_token_free(tok);
	if (rc) {
		dd_buf_freezero(&auth);
		client_say(c, "%s: %s", what, dd_strerror(rc));
		return DD_CLIENT_EXIT_FAILED;
	}
	headers[rq.n_headers++] = dd_buf_str(&auth);
	headers[rq.n_headers++] = "Accept: application/json";
	if (body != NULL)
		headers[rq.n_headers++] = "Content-Type: application/json";
	*rc_out = dd_client_http_call(c->http, &rq, r);
	dd_buf_freezero(&auth);
	return 0;
}

int client_authed(client_ctx *c, const char *method, const char *url,
		  const void *body, size_t body_len, dd_client_resp *r,
		  const char *what)
{
	/* A deploy that timed out may have been carried out: not again. */
	int idempotent = strcmp(method, "GET") == 0;
	uint64_t rnd = 0, delay;
	dd_err_t rc = DD_OK;
	unsigned attempt;
	int code;

	memset(r, 0, sizeof *r);
	for (attempt = 1;; attempt++) {
		dd_client_resp_free(r);
		code = call_once(c, method, url, body, body_len, r, what, &rc);
		if (code)
			return code;
		if (rc == DD_ERR_TIMEOUT && !idempotent)
			break;
		(void)dd_random_bytes(&rnd, sizeof rnd);
		if (!dd_retry_next(&call_retry, attempt, rc, r->status, NULL, 0,
				   rnd, &delay) ||
		    dd_client_http_left(c->http) <= delay)
			break;
		if (rc)
			client_say(c, "%s: %s; trying again in %llu ms", what,
				   r->message, (unsigned long long)delay);
		else
			client_say(c, "%s: HTTP %ld; trying again in %llu ms",
				   what, r->status, (unsigned long long)delay);
		dd_client_http_sleep(c->http, delay);
	}
	if (rc) {
		client_say(c, "%s: no answer from %s: %s (%s)", what, url,
			   dd_strerror(rc), r->message);
		return DD_CLIENT_EXIT_TRANSPORT;
	}
	return 0;
}

dd_err_t client_health(client_ctx *c, json_t **out, long *status, char *why,
		       size_t why_len)
{
	char url[CLIENT_URL_MAX];
	dd_httpc_request rq = {.url = url};
	dd_client_resp r;
	dd_err_t rc;

	*out = NULL;
	*status = 0;
	rc = client_url(url, sizeof url, c->agent, "/health");
	if (rc)
		return rc;
	rc = dd_client_http_call(c->http, &rq, &r);
	*status = r.status;
	if (rc) {
		snprintf(why, why_len, "%s", r.message);
	} else if (r.status != 200) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     why_len);
		rc = DD_ERR_UPSTREAM;
	} else {
		rc = dd_json_parse(r.body, r.body_len, r.body_len, out, NULL,
				   0);
		if (rc == DD_OK && !json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
			rc = DD_ERR_INVALID;
		}
		if (rc)
			snprintf(why, why_len, "/health is not a JSON object");
	}
	dd_client_resp_free(&r);
	return rc;
}

/*
 * Log lines are the workload's own output: sanitized, and fenced off
 * from the GitHub Actions runner, which would otherwise obey any
 * "::command::" a workload prints.
 */
static void print_lines(const client_ctx *c, FILE *f, const json_t *lines,
			const char *prefix)
{
	char fence[33] = "";
	json_t *l;
	size_t i;
	dd_buf b;

	if (c->gha && dd_random_hex(fence, 16) == DD_OK)
		fprintf(f, "::stop-commands::%s\n", fence);
	json_array_foreach(lines, i, l) {
		dd_buf_init(&b, json_string_length(l) + 1);
		if (dd_client_sanitize(json_string_value(l),
				       json_string_length(l), &b) == DD_OK)
			fprintf(f, "%s%s\n", prefix, dd_buf_str(&b));
		else
			fprintf(f, "%s(line omitted: out of memory)\n", prefix);
		dd_buf_free(&b);
	}
	if (fence[0] != '\0')
		fprintf(f, "::%s::\n", fence);
	fflush(f);
}

/* GET /logs/{app}: 0 with *reply (caller decrefs), or an exit code. */
static int fetch_logs(client_ctx *c, const char *app, json_t **reply,
		      const json_t **lines)
{
	char url[CLIENT_URL_MAX], why[600];
	dd_client_resp r;
	dd_buf path;
	dd_err_t rc;
	int code;

	*reply = NULL;
	dd_buf_init(&path, 512);
	rc = dd_buf_append_str(&path, "/logs/");
	if (rc == DD_OK)
		rc = dd_pct_encode(app, strlen(app), &path);
	if (rc == DD_OK)
		rc = client_url(url, sizeof url, c->agent, dd_buf_str(&path));
	dd_buf_free(&path);
	if (rc) {
		client_say(c, "logs: %s", dd_strerror(rc));
		return DD_CLIENT_EXIT_FAILED;
	}
	code = client_authed(c, "GET", url, NULL, 0, &r, "logs");
	if (code)
		goto out;
	if (r.status != 200) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     sizeof why);
		if (r.status == 404)
			client_say(c, "logs: the agent has no deployment named "
				   "%s (%s)", app, why);
		else
			client_say(c, "logs of %s refused: %s%s", app, why,
				   r.status == 401 &&
				   !dd_client_token_src_minted(c->tokens) ?
				   " (a fixed token serves one call: agents "
				   "refuse a token they have seen)" : "");
		code = dd_client_exit_for(DD_OK, r.status);
		goto out;
	}
	rc = dd_json_parse(r.body, r.body_len, r.body_len, reply, NULL, 0);
	if (rc == DD_OK)
		rc = dd_client_logs_lines(*reply, lines, why, sizeof why);
	if (rc) {
		client_say(c, "logs of %s: %s", app, rc == DD_ERR_UPSTREAM ?
			   why : "the reply has no \"lines\" array");
		code = DD_CLIENT_EXIT_FAILED;
	}
out:
	if (code) {
		json_decref(*reply);
		*reply = NULL;
	}
	dd_client_resp_free(&r);
	return code;
}

void client_show_logs(client_ctx *c, const char *app)
{
	const json_t *lines = NULL;
	json_t *reply = NULL;
	char prefix[DD_WORKLOAD_APP_NAME_MAX + 4];

	if (fetch_logs(c, app, &reply, &lines) != 0)
		return;
	client_say(c, "last %zu log lines of %s:", json_array_size(lines), app);
	snprintf(prefix, sizeof prefix, "[%s] ", app);
	print_lines(c, c->env->err, lines, prefix);
	json_decref(reply);
}

static int cmd_logs(client_ctx *c)
{
	const json_t *lines = NULL;
	json_t *reply = NULL;
	int code;

	code = client_resolve_agent(c);
	if (code)
		return code;
	code = fetch_logs(c, c->args.app, &reply, &lines);
	if (code)
		return code;
	print_lines(c, c->env->out, lines, "");
	json_decref(reply);
	return 0;
}

/* One line per entry: name, then status and id when the agent says. */
static void print_deployments(const client_ctx *c, const json_t *deps)
{
	static const char *const keys[] = {"app_name", "status", "id"};
	const char *s;
	json_t *e;
	size_t i;
	dd_buf b;

	json_array_foreach(deps, i, e) {
		dd_buf_init(&b, 1024);
		if (json_is_string(e)) {
			s = json_string_value(e);
			(void)dd_client_sanitize(s, strlen(s), &b);
		} else if (json_is_object(e)) {
			for (size_t k = 0; k < 3; k++) {
				s = NULL;
				if (dd_json_get_str(e, keys[k], &s) != DD_OK)
					s = "-";
				if (k > 0)
					(void)dd_buf_append_byte(&b, '\t');
				(void)dd_client_sanitize(s, strlen(s), &b);
			}
		}
		if (b.len > 0)
			fprintf(c->env->out, "%s\n", dd_buf_str(&b));
		dd_buf_free(&b);
	}
	fflush(c->env->out);
}

static int list_agent(client_ctx *c)
{
	const json_t *deps;
	json_t *health = NULL;
	char why[600];
	long status;
	dd_err_t rc;

	rc = client_health(c, &health, &status, why, sizeof why);
	if (rc) {
		client_say(c, "list: %s/health: %s", c->agent, why);
		return status == 0 && (rc == DD_ERR_TIMEOUT ||
				       rc == DD_ERR_UPSTREAM) ?
		       DD_CLIENT_EXIT_TRANSPORT : DD_CLIENT_EXIT_FAILED;
	}
	deps = json_object_get(health, "workloads");
	if (!json_is_array(deps))
		deps = json_object_get(health, "deployments");
	if (!json_is_array(deps)) {
		client_say(c, "list: the agent's /health has no deployments");
		json_decref(health);
		return DD_CLIENT_EXIT_FAILED;
	}
	client_say(c, "%s: %zu deployments", c->agent, json_array_size(deps));
	print_deployments(c, deps);
	json_decref(health);
	return 0;
}

/* --cp without --vm: the fleet's agents, as the control plane sees them. */
static int list_fleet(client_ctx *c)
{
	static const char *const keys[] = {"vm_name", "status", "hostname",
					   "last_seen"};
	char url[CLIENT_URL_MAX], why[600];
	json_t *agents = NULL, *e;
	const char *s;
	dd_client_resp r;
	size_t i;
	dd_buf b;
	int code;

	if (client_url(url, sizeof url, c->args.cp_url, "/api/agents")) {
		client_say(c, "list: --cp URL too long");
		return DD_CLIENT_EXIT_USAGE;
	}
	code = client_authed(c, "GET", url, NULL, 0, &r, "list");
	if (code)
		goto out;
	if (r.status != 200) {
		dd_client_error_text(r.status, r.body, r.body_len, why,
				     sizeof why);
		client_say(c, "list refused: %s", why);
		code = dd_client_exit_for(DD_OK, r.status);
		goto out;
	}
	if (dd_json_parse(r.body, r.body_len, r.body_len, &agents, NULL, 0) ||
	    !json_is_array(agents)) {
		client_say(c, "list: /api/agents is not a JSON array");
		code = DD_CLIENT_EXIT_FAILED;
		goto out;
	}
	json_array_foreach(agents, i, e) {
		dd_buf_init(&b, 2048);
		for (size_t k = 0; k < 4; k++) {
			if (dd_json_get_str(e, keys[k], &s) != DD_OK)
				s = "-";
			if (k > 0)
				(void)dd_buf_append_byte(&b, '\t');
			(void)dd_client_sanitize(s, strlen(s), &b);
		}
		fprintf(c->env->out, "%s\n", dd_buf_str(&b));
		dd_buf_free(&b);
	}
	fflush(c->env->out);
out:
	json_decref(agents);
	dd_client_resp_free(&r);
	return code;
}

static int cmd_list(client_ctx *c)
{
	int code;

	if (c->args.cp_url != NULL && c->args.vm_name == NULL)
		return list_fleet(c);
	code = client_resolve_agent(c);
	return code ? code : list_agent(c);
}

static int setup(client_ctx *c)
{
	dd_httpc_opts ho = {0};
	const char *gha;
	dd_buf errors;
	dd_err_t rc;

	dd_buf_init(&errors, 16384);
	rc = dd_config_load(DD_MODE_CLIENT, c->env->get, c->env->get_ud,
			    &c->cfg, &errors);
	if (rc) {
		fputs(dd_buf_str(&errors), c->env->err);
		dd_buf_free(&errors);
		client_say(c, "configuration: %s", dd_strerror(rc));
		return DD_CLIENT_EXIT_USAGE;
	}
	dd_buf_free(&errors);
	ho.ca_file = c->cfg->ca_file;
	ho.timeout_ms = c->cfg->outbound_timeout_ms;
	ho.max_response = (size_t)c->cfg->outbound_max_response;
	rc = dd_client_http_new(c->env->loop, &ho, &c->http);
	if (rc) {
		client_say(c, "HTTP client: %s%s", dd_strerror(rc),
			   rc == DD_ERR_CONFIG ? " (is DD_CA_FILE readable?)" :
			   "");
		return rc == DD_ERR_CONFIG ? DD_CLIENT_EXIT_USAGE :
		       DD_CLIENT_EXIT_FAILED;
	}
	c->deadline_ms = dd_now_ms() + c->args.timeout_s * 1000u;
	dd_client_http_deadline(c->http, c->deadline_ms);
	gha = c->env->get(c->env->get_ud, "GITHUB_ACTIONS");
	c->gha = gha != NULL && strcmp(gha, "true") == 0;
	return 0;
}

int dd_client_run(const dd_client_env *env, int argc, char **argv)
{
	client_ctx c;
	char why[320];
	int code;

	if (argc > 0 && dd_sargs_is_cmd(argv[0]))
		return dd_client_shell_run(env, argc, argv);
	memset(&c, 0, sizeof c);
	c.env = env;
	if (dd_client_args_parse(argc, argv, &c.args, why, sizeof why)) {
		client_say(&c, "%s", why);
		fputs(dd_client_usage(), env->err);
		return DD_CLIENT_EXIT_USAGE;
	}
	if (c.args.cmd == DD_CLIENT_CMD_HELP) {
		fputs(dd_client_usage(), argc > 0 ? env->out : env->err);
		return argc > 0 ? 0 : DD_CLIENT_EXIT_USAGE;
	}
	code = setup(&c);
	if (code == 0 && (c.args.cmd != DD_CLIENT_CMD_LIST ||
			  c.args.cp_url != NULL))
		code = client_need_tokens(&c);
	/* The copy is taken: keep the token off the process's command line. */
	if (c.args.token != NULL)
		memset(c.args.token, 'x', strlen(c.args.token));
	if (code)
		goto out;
	switch (c.args.cmd) {
	case DD_CLIENT_CMD_DEPLOY:
		code = client_cmd_deploy(&c);
		break;
	case DD_CLIENT_CMD_LOGS:
		code = cmd_logs(&c);
		break;
	default:
		code = cmd_list(&c);
		break;
	}
out:
	dd_client_token_src_free(c.tokens);
	dd_client_http_free(c.http);
	dd_config_free(c.cfg);
	return code;
}

int dd_client_main(int argc, char **argv)
{
	dd_client_env env = {.get = dd_config_getenv, .out = stdout,
			     .err = stderr};
	uv_loop_t loop;
	int code;

	/* libcurl is told to leave signals alone; a dropped peer is EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0) {
		fputs("devopsdefender client: cannot create an event loop\n",
		      stderr);
		return DD_CLIENT_EXIT_FAILED;
	}
	env.loop = &loop;
	code = dd_client_run(&env, argc, argv);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fputs("devopsdefender client: event loop left busy\n", stderr);
	return code;
}
