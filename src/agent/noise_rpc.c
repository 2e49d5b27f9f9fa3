#include "agent/noise_rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/strutil.h"

enum kind { K_SHELL, K_REPLAY, K_SHELL_ATTACH, K_EE, K_EE_ATTACH };

struct dd_noise_rpc_call {
	const dd_noise_rpc_opts *o;
	dd_noise_rpc_cb cb;
	void *ud;
	enum kind kind;
	char method[32];
	char id[40];             /* replay: the session */
	uint64_t cursor;         /* replay: the next page */
	int paged;               /* replay: more than one page so far */
	int paused;              /* the callback asked to wait */
	dd_ndjson_req *req;
};

/* ---- small helpers ----------------------------------------------------- */

/* Details quote hostile text, cut at any byte: keep them plain ASCII so
 * they are always valid UTF-8 for the JSON reply. */
static void ascii_only(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
			*s = '?';
	}
}

static int deliver(dd_noise_rpc_cb cb, void *ud, json_t *reply, int more)
{
	dd_noise_rpc_result res = {.reply = reply, .more = more};

	return cb(&res, ud);
}

/* Answers an error object; the request is over. */
static void fail(dd_noise_rpc_cb cb, void *ud, const char *code,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(dd_noise_rpc_cb cb, void *ud, const char *code,
		 const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	ascii_only(detail);
	e = json_pack("{s:s, s:s}", "error", code, "detail", detail);
	/* Without memory for the error, an empty error still says "failed". */
	deliver(cb, ud, e != NULL ? e : json_object(), 0);
	json_decref(e);
}

static void finish(dd_noise_rpc_call *c)
{
	dd_free(c);
}

/* ---- requests to the backends ------------------------------------------ */

/* Copies the named fields that req has into out. */
static int copy_fields(json_t *out, const json_t *req, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		json_t *v = json_object_get(req, names[i]);

		if (v != NULL && json_object_set(out, names[i], v) != 0)
			return -1;
	}
	return 0;
}

/* The sessiond request for a shell.* method, or NULL (NOMEM). */
static json_t *shell_request(const char *method, const json_t *req)
{
	static const char *const create[] = {"recipe_id", "name", "cwd",
					     "cols", "rows", NULL};
	static const char *const attach[] = {"id", "tail", "input", NULL};
	static const char *const resize[] = {"id", "cols", "rows", NULL};
	static const char *const id_only[] = {"id", NULL};
	static const char *const none[] = {NULL};
	const char *const *names = none;
	json_t *out = json_pack("{s:s}", "method", method);

	if (strcmp(method, "shell.create_session") == 0)
		names = create;
	else if (strcmp(method, "shell.attach_session") == 0)
		names = attach;
	else if (strcmp(method, "shell.resize_session") == 0)
		names = resize;
	else if (strcmp(method, "shell.close_session") == 0 ||
		 strcmp(method, "shell.replay_session") == 0)
		names = id_only;
	if (out != NULL && copy_fields(out, req, names) != 0)
		out = (json_decref(out), NULL);
	return out;
}

/* The reference's reply shape for a successful sessiond reply. */
static json_t *shell_reply(const char *method, const json_t *r)
{
	if (strcmp(method, "shell.list_recipes") == 0)
		return json_incref(json_object_get(r, "recipes"));
	if (strcmp(method, "shell.list_sessions") == 0)
		return json_incref(json_object_get(r, "sessions"));
	if (strcmp(method, "shell.list_history") == 0)
		return json_incref(json_object_get(r, "history"));
	if (strcmp(method, "shell.create_session") == 0)
		return json_pack("{s:O}", "id", json_object_get(r, "id"));
	return json_pack("{s:b}", "ok", 1);
}

/* sessiond's error reply as the RPC's: shell_failed with its reason. */
static void shell_error(dd_noise_rpc_call *c, const json_t *r, const char *why)
{
	const char *code = json_string_value(json_object_get(r, "error"));
	const char *detail = json_string_value(json_object_get(r, "detail"));

	fail(c->cb, c->ud, c->kind == K_SHELL_ATTACH ? "shell_attach_failed"
						       : "shell_failed",
	     "sessiond %s: %s%s%s", c->method, code ? code : why,
	     detail ? ": " : "", detail ? detail : "");
}

static dd_err_t ask_replay_page(dd_noise_rpc_call *c);

/* One replay page arrived: pass it on, then ask for the next. */
static void replay_page(dd_noise_rpc_call *c, const json_t *r)
{
	json_t *next = json_object_get(r, "next");
	int more = json_is_integer(next) && json_integer_value(next) > 0;
	json_t *out;

	out = json_pack("{s:s, s:i, s:O}", "id", c->id, "version", 2,
			"records", json_object_get(r, "records"));
	if (out != NULL && (more || c->paged) &&
	    json_object_set_new(out, "more", json_boolean(more)) != 0)
		out = (json_decref(out), NULL);
	if (out == NULL) {
		fail(c->cb, c->ud, "shell_failed", "out of memory");
		finish(c);
		return;
	}
	if (!more) {
		deliver(c->cb, c->ud, out, 0);
		json_decref(out);
		finish(c);
		return;
	}
	c->paged = 1;
	c->cursor = (uint64_t)json_integer_value(next);
	if (deliver(c->cb, c->ud, out, 1)) {
		json_decref(out);
		c->paused = 1;
		return;
	}
	json_decref(out);
	if (ask_replay_page(c) != DD_OK) {
		fail(c->cb, c->ud, "shell_failed", "sessiond is unreachable");
		finish(c);
	}
}

static void on_backend(dd_err_t err, json_t *r, const char *why, void *ud)
{
	dd_noise_rpc_call *c = ud;
	json_t *out;

	c->req = NULL;
	if (err && c->kind == K_EE) {
		fail(c->cb, c->ud, "upstream_failed", "EasyEnclave %s: %s",
		     c->method, why);
		finish(c);
		return;
	}
	/* EE's own {"ok": false} is its answer and goes back verbatim. */
	if (c->kind != K_EE && (err || dd_ndjson_reply_check(r, NULL))) {
		shell_error(c, err ? NULL : r, why);
		finish(c);
		return;
	}
	if (c->kind == K_REPLAY) {
		replay_page(c, r);
		return;
	}
	out = c->kind == K_EE ? json_incref(r) : shell_reply(c->method, r);
	if (out == NULL)
		fail(c->cb, c->ud, "shell_failed", "sessiond %s: a malformed "
		     "reply", c->method);
	else
		deliver(c->cb, c->ud, out, 0);
	json_decref(out);
	finish(c);
}

static void on_attach(dd_err_t err, uv_pipe_t *pipe, const uint8_t *extra,
		      size_t extra_len, json_t *ack, const char *why, void *ud)
{
	dd_noise_rpc_call *c = ud;
	dd_noise_rpc_result res = {0};

	c->req = NULL;
	if (err) {
		fail(c->cb, c->ud, c->kind == K_EE_ATTACH ? "attach_failed"
							  : "shell_attach_failed",
		     "%s: %s", c->method, why);
		finish(c);
		return;
	}
	res.reply = ack;
	res.pipe = pipe;
	res.extra = extra;
	res.extra_len = extra_len;
	c->cb(&res, c->ud);
	finish(c);
}

static dd_err_t ask_replay_page(dd_noise_rpc_call *c)
{
	json_t *rq = json_pack("{s:s, s:s, s:I, s:I}", "method",
			       "shell.replay_session", "id", c->id, "cursor",
			       (json_int_t)c->cursor, "max_bytes",
			       (json_int_t)DD_NOISE_RPC_REPLAY_PAGE);
	dd_err_t rc;

	if (rq == NULL)
		return DD_ERR_NOMEM;
	rc = dd_ndjson_call(c->o->sessiond, rq, on_backend, c, &c->req);
	json_decref(rq);
	return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

static const char *const ee_methods[] = {"health", "list", "logs", "attest",
					 "exec", "attach", NULL};
static const char *const shell_methods[] = {
	"shell.list_recipes", "shell.list_sessions", "shell.list_history",
	"shell.create_session", "shell.attach_session", "shell.replay_session",
	"shell.resize_session", "shell.close_session", NULL};

static int listed(const char *m, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		if (strcmp(m, names[i]) == 0)
			return 1;
	}
	return 0;
}

static int needs_id(const char *m)
{
	return strcmp(m, "shell.attach_session") == 0 ||
	       strcmp(m, "shell.replay_session") == 0 ||
	       strcmp(m, "shell.resize_session") == 0 ||
	       strcmp(m, "shell.close_session") == 0;
}

/*
 * The refusal for req, if any: sets *code and writes detail. 0 when the
 * request may go to its backend.
 */
static int refused(const dd_noise_rpc_opts *o, const json_t *req,
		   const char **code, char *detail, size_t len)
{
	const char *m = json_string_value(json_object_get(req, "method"));
	const char *id;

	*code = "method_rejected";
	if (m == NULL)
		return snprintf(detail, len, "request envelope missing "
				"`method` field"), 1;
	if (strcmp(m, "deploy") == 0)
		return snprintf(detail, len, "method `deploy` is not in the "
				"allowlist"), 1;
	if (!listed(m, ee_methods) && !listed(m, shell_methods))
		return snprintf(detail, len, "unknown method `%.64s`", m), 1;
	if (o->confidential &&
	    (strcmp(m, "exec") == 0 || strcmp(m, "attach") == 0 ||
	     strcmp(m, "shell.create_session") == 0 ||
	     strcmp(m, "shell.attach_session") == 0))
		return snprintf(detail, len, "method `%s` is not available: "
				"this agent runs in confidential mode", m), 1;
	if (json_object_get(req, "command") != NULL &&
	    strcmp(m, "shell.create_session") == 0)
		return snprintf(detail, len, "custom commands are not allowed: "
				"choose a recipe_id"), 1;
	if (needs_id(m)) {
		*code = strcmp(m, "shell.attach_session") == 0
				? "shell_attach_failed" : "shell_failed";
		id = json_string_value(json_object_get(req, "id"));
		if (id == NULL || id[0] == '\0')
			return snprintf(detail, len, "shell request missing "
					"`id`"), 1;
		if (!dd_uuid_ok(id))
			return snprintf(detail, len, "`id` is not a session id "
					"(a lowercase UUID)"), 1;
	}
	return 0;
}

static dd_err_t send_backend(dd_noise_rpc_call *c, const json_t *req)
{
	json_t *rq;
	dd_err_t rc;

	if (c->kind == K_REPLAY)
		return ask_replay_page(c);
	/* EE methods go verbatim (the client sets the token itself). */
	rq = c->kind == K_EE || c->kind == K_EE_ATTACH
		     ? json_deep_copy(req) : shell_request(c->method, req);
	if (rq == NULL)
		return DD_ERR_NOMEM;
	json_object_del(rq, "req_id");
	if (c->kind == K_EE_ATTACH || c->kind == K_SHELL_ATTACH)
		rc = dd_ndjson_attach(c->kind == K_EE_ATTACH ? c->o->ee
							     : c->o->sessiond,
				      rq, on_attach, c, &c->req);
	else
		rc = dd_ndjson_call(c->kind == K_EE ? c->o->ee : c->o->sessiond,
				    rq, on_backend, c, &c->req);
	json_decref(rq);
	return rc;
}

static enum kind kind_of(const char *m)
{
	if (strcmp(m, "attach") == 0)
		return K_EE_ATTACH;
	if (listed(m, ee_methods))
		return K_EE;
	if (strcmp(m, "shell.attach_session") == 0)
		return K_SHELL_ATTACH;
	if (strcmp(m, "shell.replay_session") == 0)
		return K_REPLAY;
	return K_SHELL;
}

dd_err_t dd_noise_rpc_start(const dd_noise_rpc_opts *o, const json_t *req,
			    dd_noise_rpc_cb cb, void *ud,
			    dd_noise_rpc_call **out)
{
	char detail[256];
	const char *code, *m;
	dd_noise_rpc_call *c;
	dd_ndjson *backend;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (refused(o, req, &code, detail, sizeof detail)) {
		fail(cb, ud, code, "%s", detail);
		return DD_OK;
	}
	m = json_string_value(json_object_get(req, "method"));
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->o = o;
	c->cb = cb;
	c->ud = ud;
	c->kind = kind_of(m);
	snprintf(c->method, sizeof c->method, "%s", m);
	if (c->kind == K_REPLAY)
		snprintf(c->id, sizeof c->id, "%s",
			 json_string_value(json_object_get(req, "id")));
	backend = c->kind == K_EE || c->kind == K_EE_ATTACH ? o->ee : o->sessiond;
	rc = backend != NULL ? send_backend(c, req) : DD_ERR_CONFIG;
	if (rc) {
		if (rc == DD_ERR_NOMEM) {
			dd_free(c);
			return rc;
		}
		fail(cb, ud, c->kind == K_EE ? "upstream_failed"
			     : c->kind == K_EE_ATTACH ? "attach_failed"
			     : c->kind == K_SHELL_ATTACH ? "shell_attach_failed"
			     : "shell_failed",
		     "%s: %s", c->kind == K_EE || c->kind == K_EE_ATTACH
				       ? "EasyEnclave" : "sessiond",
		     backend == NULL ? "not configured" : dd_strerror(rc));
		finish(c);
		return DD_OK;
	}
	if (out != NULL)
		*out = c;
	return DD_OK;
}

void dd_noise_rpc_resume(dd_noise_rpc_call *c)
{
	if (c == NULL || !c->paused)
		return;
	c->paused = 0;
	if (ask_replay_page(c) != DD_OK) {
		fail(c->cb, c->ud, "shell_failed", "sessiond is unreachable");
		finish(c);
	}
}

void dd_noise_rpc_cancel(dd_noise_rpc_call *c)
{
	if (c == NULL)
		return;
	if (c->req != NULL)
		dd_ndjson_cancel(c->req);
	finish(c);
}
