#include "agent/workload_api.h"

#include "agent/log_follow.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "core/workload_spec.h"

#define MAX_CMD_ARGS 256
#define MAX_ARG 4096
#define DEFAULT_EXEC_TIMEOUT 60
#define MAX_EXEC_TIMEOUT 3600

enum call_kind { K_VERBATIM, K_DEPLOY, K_LOGS_LOOKUP };

struct call {
	dd_workload_api *w;
	dd_http_req *req;
	dd_ndjson_req *ee_req;
	enum call_kind kind;
	char app[128];              /* K_LOGS_LOOKUP */
	int follow;                 /* K_LOGS_LOOKUP: ?follow=1 */
	int has_expose;             /* K_DEPLOY */
	char label[DD_AGENT_MAX_LABEL + 1];
	uint16_t port;
	struct call *prev, *next;
};

struct dd_workload_api {
	dd_ndjson *ee;
	dd_agent_state *st;
	void (*changed)(void *ud);
	void *changed_ud;
	struct call *calls;
	dd_log_follow *follow;
};

static void unlink_call(struct call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->w->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* The client went away: abandon the EE call too. */
static void on_abort(void *ud)
{
	struct call *c = ud;

	if (c->ee_req != NULL)
		dd_ndjson_cancel(c->ee_req);
	unlink_call(c);
	dd_free(c);
}

static void on_reply(dd_err_t err, json_t *reply, const char *why, void *ud);

/* Sends request to EE for c's HTTP request; answers it on failure. */
static void send_ee(struct call *c, const json_t *request)
{
	dd_err_t rc;

	rc = dd_ndjson_call(c->w->ee, request, on_reply, c, &c->ee_req);
	if (rc) {
		dd_http_req_on_abort(c->req, NULL, NULL);
		unlink_call(c);
		dd_http_respond_error(c->req, rc == DD_ERR_BUSY ? 503 : 502,
				      "upstream_failed",
				      "cannot reach the workload runtime: %s",
				      dd_strerror(rc));
		dd_free(c);
	}
}

static struct call *call_new(dd_workload_api *w, dd_http_req *req,
			     enum call_kind kind)
{
	struct call *c = dd_calloc(1, sizeof *c);

	if (c == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return NULL;
	}
	c->w = w;
	c->req = req;
	c->kind = kind;
	c->next = w->calls;
	if (w->calls != NULL)
		w->calls->prev = c;
	w->calls = c;
	dd_http_req_on_abort(req, on_abort, c);
	return c;
}

/* The first deployment named app in an EE list reply, or NULL. */
static const char *deployment_of(json_t *list, const char *app)
{
	json_t *deps = json_object_get(list, "deployments"), *d;
	size_t i;

	json_array_foreach(deps, i, d) {
		const char *name = json_string_value(json_object_get(d, "app_name"));
		const char *id = json_string_value(json_object_get(d, "id"));

		if (name != NULL && id != NULL && strcmp(name, app) == 0)
			return id;
	}
	return NULL;
}

static void logs_of(struct call *c, json_t *list)
{
	const char *id = deployment_of(list, c->app);
	json_t *rq;

	if (id == NULL) {
		dd_http_req_on_abort(c->req, NULL, NULL);
		unlink_call(c);
		dd_http_respond_error(c->req, 404, "not_found",
				      "no workload named %s", c->app);
		dd_free(c);
		return;
	}
	if (c->follow) {
		dd_http_req_on_abort(c->req, NULL, NULL);
		unlink_call(c);
		dd_log_follow_start(c->w->follow, c->req, id);
		dd_free(c);
		return;
	}
	rq = json_pack("{s:s, s:s}", "method", "logs", "id", id);
	c->kind = K_VERBATIM;
	c->ee_req = NULL;
	if (rq == NULL) {
		dd_http_req_on_abort(c->req, NULL, NULL);
		unlink_call(c);
		dd_http_respond_err(c->req, DD_ERR_NOMEM, NULL);
		dd_free(c);
		return;
	}
	send_ee(c, rq);
	json_decref(rq);
}

static void on_reply(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	struct call *c = ud;
	dd_agent_state *st = c->w->st;

	c->ee_req = NULL;
	if (err == DD_OK && c->kind == K_LOGS_LOOKUP) {
		logs_of(c, reply);
		return;
	}
	dd_http_req_on_abort(c->req, NULL, NULL);
	unlink_call(c);
	if (err) {
		dd_http_respond_error(c->req, 502, "upstream_failed",
				      "the workload runtime failed: %s", why);
		dd_free(c);
		return;
	}
	if (c->kind == K_DEPLOY) {
		st->taints |= DD_TAINT_WORKLOAD;
		if (c->has_expose &&
		    dd_agent_extra_upsert(st, c->label, c->port) != DD_OK)
			dd_log_warn("deploy: cannot add ingress %s:%u", c->label,
				    (unsigned)c->port);
		/* After the extras changed: the callback pushes them. */
		if (c->w->changed != NULL)
			c->w->changed(c->w->changed_ud);
	}
	dd_http_respond_json(c->req, 200, reply);
	dd_free(c);
}

/* The body as a JSON object, or a 400 already sent. */
static json_t *body_object(dd_http_req *req, size_t max)
{
	const uint8_t *body;
	size_t len;
	json_t *v = NULL;
	char why[160];

	body = dd_http_req_body(req, &len);
	if (dd_json_parse(body, len, max, &v, why, sizeof why) != DD_OK ||
	    !json_is_object(v)) {
		dd_http_respond_error(req, 400, "bad_request",
				      "the body must be a JSON object%s%s",
				      v == NULL ? ": " : "", v == NULL ? why : "");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* --- handlers ---------------------------------------------------------- */

/* "expose": {"hostname_label": s, "port": 1..65535}; anything else: none. */
static void read_expose(const json_t *spec, struct call *c)
{
	json_t *ex = json_object_get(spec, "expose");
	const char *label = json_string_value(json_object_get(ex, "hostname_label"));
	json_t *port = json_object_get(ex, "port");

	if (label == NULL || label[0] == '\0' || !json_is_integer(port) ||
	    json_integer_value(port) < 1 || json_integer_value(port) > 65535 ||
	    strlen(label) > DD_AGENT_MAX_LABEL)
		return;
	c->has_expose = 1;
	memcpy(c->label, label, strlen(label) + 1);
	c->port = (uint16_t)json_integer_value(port);
}

static void handle_deploy(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_workload_api *w = ud;
	json_t *spec = body_object(req, DD_WORKLOAD_MAX_SPEC);
	char why[160];
	struct call *c;

	(void)who;
	if (spec == NULL)
		return;
	/*
	 * The same checks the client makes: EasyEnclave ignores typos and
	 * drops bad env entries silently, so refuse them here, by field.
	 */
	if (dd_workload_spec_check(spec, why, sizeof why) != DD_OK) {
		dd_http_respond_error(req, 400, "bad_workload", "%s", why);
		json_decref(spec);
		return;
	}
	c = call_new(w, req, K_DEPLOY);
	if (c != NULL && json_object_set_new(spec, "method",
					     json_string("deploy")) == 0) {
		read_expose(spec, c);
		send_ee(c, spec);
	} else if (c != NULL) {
		dd_http_req_on_abort(req, NULL, NULL);
		unlink_call(c);
		dd_free(c);
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	}
	json_decref(spec);
}

/* cmd: 1..256 strings of at most 4 KiB; timeout_secs: 1..3600. */
static int exec_ok(const json_t *b, json_int_t *timeout, char *why,
		   size_t why_len)
{
	json_t *cmd = json_object_get(b, "cmd"), *t, *a;
	size_t i;

	if (!json_is_array(cmd) || json_array_size(cmd) == 0 ||
	    json_array_size(cmd) > MAX_CMD_ARGS) {
		snprintf(why, why_len, "cmd must be an array of 1-%d strings",
			 MAX_CMD_ARGS);
		return 0;
	}
	json_array_foreach(cmd, i, a) {
		if (!json_is_string(a) || json_string_length(a) > MAX_ARG) {
			snprintf(why, why_len, "cmd[%zu] must be a string of at "
				 "most %d bytes", i, MAX_ARG);
			return 0;
		}
	}
	t = json_object_get(b, "timeout_secs");
	*timeout = t == NULL ? DEFAULT_EXEC_TIMEOUT : json_integer_value(t);
	if ((t != NULL && !json_is_integer(t)) || *timeout < 1 ||
	    *timeout > MAX_EXEC_TIMEOUT) {
		snprintf(why, why_len, "timeout_secs must be 1-%d",
			 MAX_EXEC_TIMEOUT);
		return 0;
	}
	return 1;
}

static void handle_exec(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_workload_api *w = ud;
	json_t *b = body_object(req, 64 * 1024), *rq = NULL;
	json_int_t timeout;
	char why[128];
	struct call *c;

	(void)who;
	if (b == NULL)
		return;
	if (!exec_ok(b, &timeout, why, sizeof why)) {
		dd_http_respond_error(req, 400, "bad_request", "%s", why);
		json_decref(b);
		return;
	}
	rq = json_pack("{s:s, s:O, s:I}", "method", "exec", "cmd",
		       json_object_get(b, "cmd"), "timeout_secs", timeout);
	c = rq ? call_new(w, req, K_VERBATIM) : NULL;
	if (rq == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else if (c != NULL)
		send_ee(c, rq);
	json_decref(rq);
	json_decref(b);
}

static void handle_logs(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_workload_api *w = ud;
	const char *app = dd_http_req_param(req, "app");
	const char *follow = dd_http_req_query(req, "follow");
	json_t *rq;
	struct call *c;

	(void)who;
	if (app == NULL || strlen(app) >= sizeof c->app) {
		dd_http_respond_error(req, 400, "bad_request", "bad app name");
		return;
	}
	if (follow != NULL && strcmp(follow, "1") != 0 &&
	    strcmp(follow, "0") != 0) {
		dd_http_respond_error(req, 400, "bad_request",
				      "follow must be 0 or 1");
		return;
	}
	rq = json_pack("{s:s}", "method", "list");
	c = rq ? call_new(w, req, K_LOGS_LOOKUP) : NULL;
	if (rq == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	if (c != NULL) {
		memcpy(c->app, app, strlen(app) + 1);
		c->follow = follow != NULL && strcmp(follow, "1") == 0;
		send_ee(c, rq);
	}
	json_decref(rq);
}

/* Sets (or, with a blank name, clears) the tenant from an /owner body. */
static dd_err_t take_owner(dd_agent_state *st, const json_t *b,
			   dd_principal *now, int *set, char *why,
			   size_t why_len)
{
	const char *name = json_string_value(json_object_get(b, "agent_owner"));
	const char *kind = json_string_value(json_object_get(b, "agent_owner_kind"));
	json_t *id = json_object_get(b, "agent_owner_id");
	dd_principal_kind k;
	const char *t = name;
	size_t n = name ? strlen(name) : 0;
	dd_err_t rc;

	if (name == NULL) {
		snprintf(why, why_len, "agent_owner (string) is required");
		return DD_ERR_INVALID;
	}
	dd_str_trim(&t, &n);
	*set = n > 0;
	if (!*set) {
		st->has_tenant = 0;
		return DD_OK;
	}
	/* Stricter than the reference: a bad principal is the caller's 400. */
	if (kind == NULL || dd_principal_kind_parse(kind, &k) != DD_OK ||
	    !json_is_integer(id) || json_integer_value(id) <= 0) {
		snprintf(why, why_len, "agent_owner_kind must be user, org or "
			 "repo and agent_owner_id a positive integer");
		return DD_ERR_INVALID;
	}
	rc = dd_principal_make(k, name, (uint64_t)json_integer_value(id), now,
			       why, why_len);
	if (rc)
		return rc;
	st->tenant = *now;
	st->has_tenant = 1;
	st->taints |= DD_TAINT_OWNER;
	return DD_OK;
}

static void handle_owner(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_workload_api *w = ud;
	dd_agent_state *st = w->st;
	json_t *b = body_object(req, 4096), *reply;
	dd_principal prev = st->tenant, now;
	int had = st->has_tenant, set = 0;
	const char *claim;
	char why[160];

	if (b == NULL)
		return;
	if (take_owner(st, b, &now, &set, why, sizeof why) != DD_OK) {
		dd_http_respond_error(req, 400, "bad_request", "%s", why);
		json_decref(b);
		return;
	}
	claim = json_string_value(json_object_get(b, "claim_id"));
	dd_log_info("owner %s by %s/%s claim=%s", set ? st->tenant.name
						  : "(cleared)",
		    who->oidc.repository, who->oidc.workflow, claim ? claim : "");
	reply = json_pack("{s:s, s:s?, s:o, s:s?, s:o, s:s}",
			  "agent_id", st->agent_id,
			  "agent_owner", set ? st->tenant.name : NULL,
			  "agent_owner_principal",
			  dd_principal_json(set ? &st->tenant : NULL),
			  "previous_owner", had ? prev.name : NULL,
			  "previous_owner_principal",
			  dd_principal_json(had ? &prev : NULL),
			  "claim_id", claim ? claim : "");
	if (w->changed != NULL)
		w->changed(w->changed_ud);
	if (reply == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, reply);
	json_decref(reply);
	json_decref(b);
}

/* --- setup ------------------------------------------------------------- */

size_t dd_workload_api_routes(dd_workload_api *w, dd_authz_route *r)
{
	size_t n = 0;

	/* CI tokens are checked after the body arrives; size caps for real bodies. */
	r[n++] = (dd_authz_route){DD_M_GET, "/logs/{app}", handle_logs, w, 0, 0};
	if (w->st->confidential)
		return n;
	r[n++] = (dd_authz_route){DD_M_POST, "/deploy", handle_deploy, w,
				  DD_WORKLOAD_MAX_SPEC, DD_WORKLOAD_MAX_SPEC};
	r[n++] = (dd_authz_route){DD_M_POST, "/exec", handle_exec, w, 64 * 1024,
				  64 * 1024};
	r[n++] = (dd_authz_route){DD_M_POST, "/owner", handle_owner, w, 4096,
				  4096};
	return n;
}

dd_err_t dd_workload_api_new(dd_ndjson *ee, dd_agent_state *st,
			     void (*changed)(void *ud), void *changed_ud,
			     dd_workload_api **out)
{
	dd_workload_api *w = dd_calloc(1, sizeof *w);

	*out = w;
	if (w == NULL)
		return DD_ERR_NOMEM;
	w->ee = ee;
	w->st = st;
	w->changed = changed;
	w->changed_ud = changed_ud;
	return dd_log_follow_new(ee, &w->follow);
}

void dd_workload_api_free(dd_workload_api *w)
{
	if (w == NULL)
		return;
	while (w->calls != NULL) {
		struct call *c = w->calls;

		if (c->ee_req != NULL)
			dd_ndjson_cancel(c->ee_req);
		dd_http_req_on_abort(c->req, NULL, NULL);
		unlink_call(c);
		dd_http_respond_error(c->req, 503, "shutting_down",
				      "the agent is shutting down");
		dd_free(c);
	}
	dd_log_follow_free(w->follow);
	dd_free(w);
}
