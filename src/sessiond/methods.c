/*
 * methods.c: sessiond's request handlers (docs/sessions.md lists them).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "runtime/proc.h"
#include "sessiond/server_int.h"

#define INPUT_LOW (64u << 10)

static void reply_ok(struct dd_sd_conn *c, const char *key, json_t *v)
{
	json_t *r = json_object();

	if (r == NULL || json_object_set_new(r, "ok", json_true()) != 0 ||
	    (key != NULL && (v == NULL || json_object_set(r, key, v) != 0))) {
		json_decref(r);
		r = NULL;
	}
	json_decref(v);
	dd_sd_conn_reply_new(c, r);
}

static dd_sd_session *session_or_error(struct dd_sd_conn *c, const char *id)
{
	dd_sd_session *s = dd_sd_find(c->s->o.sessions, id);

	if (s == NULL)
		dd_sd_conn_error(c, "not_found", "no such session");
	return s;
}

static void do_create(struct dd_sd_conn *c, const dd_sd_req *r)
{
	char id[DD_HIST_ID_LEN + 1], why[DD_SD_WHY];
	dd_err_t rc;

	rc = dd_sd_create(c->s->o.sessions, r->recipe, r->name, r->cwd,
			  r->cols, r->rows, id, why, sizeof why);
	if (rc == DD_ERR_NOT_FOUND) {
		dd_sd_conn_error(c, "unknown_recipe", why);
		return;
	}
	if (rc == DD_ERR_BUSY) {
		dd_sd_conn_error(c, "busy", why);
		return;
	}
	if (rc) {
		dd_log_warn("sessiond: create %s: %s",
			    r->recipe ? r->recipe : "shell", why);
		dd_sd_conn_error(c, rc == DD_ERR_NOMEM ? "internal"
						       : "spawn_failed", why);
		return;
	}
	dd_log_info("sessiond: session %s started (%s)", id,
		    r->recipe ? r->recipe : "shell");
	reply_ok(c, "id", json_string(id));
}

static void on_watch_output(void *ud, const uint8_t *data, size_t len)
{
	struct dd_sd_conn *c = ud;
	char *copy;

	if (c->u.closing || c->u.ending)
		return;
	/* Dropping bytes silently would corrupt the screen: cut instead. */
	if (dd_usrv_conn_queued(&c->u) + len > DD_SD_WATCH_BACKLOG) {
		dd_log_warn("sessiond: a watcher fell %u bytes behind; "
			    "disconnected", DD_SD_WATCH_BACKLOG);
		dd_sd_conn_close(c);
		return;
	}
	copy = dd_malloc(len);
	if (copy == NULL) {
		dd_sd_conn_close(c);
		return;
	}
	memcpy(copy, data, len);
	dd_sd_conn_send(c, copy, len);
}

static void on_watch_ended(void *ud)
{
	dd_sd_conn_end(ud);
}

static void on_watch_drained(void *ud)
{
	struct dd_sd_conn *c = ud;
	size_t queued = 0;

	if (!c->input_full || c->u.closing)
		return;
	(void)dd_sd_input(&c->w, NULL, 0, &queued);
	if (queued < INPUT_LOW) {
		c->input_full = 0;
		dd_sd_conn_reading(c);
	}
}

static void do_attach(struct dd_sd_conn *c, const dd_sd_req *r)
{
	dd_sd_session *s = session_or_error(c, r->id);
	json_t *ack;

	if (s == NULL)
		return;
	c->w.output = on_watch_output;
	c->w.ended = on_watch_ended;
	c->w.drained = on_watch_drained;
	c->w.ud = c;
	/* The ack goes first: attach may hand over the scrollback at once. */
	ack = json_pack("{s:b,s:s,s:s,s:b,s:b}", "ok", 1, "method",
			"shell.attach_session", "id", r->id, "tail", r->tail,
			"input", r->input && dd_sd_typist_free(s));
	dd_sd_conn_reply_new(c, ack);
	c->attached = 1;
	if (dd_sd_attach(s, &c->w, r->tail, r->input) != DD_OK)
		dd_sd_conn_end(c); /* output already over: EOF at once */
}

static void do_replay(struct dd_sd_conn *c, const dd_sd_req *r)
{
	json_t *records = json_array(), *rep;
	uint64_t next = 0;
	int truncated = 0;
	dd_err_t rc;

	if (records == NULL) {
		dd_sd_conn_error(c, "internal", "out of memory");
		return;
	}
	rc = dd_hist_replay(c->s->o.hist, r->id, r->cursor,
			    (size_t)r->max_bytes, records, &next, &truncated);
	if (rc) {
		json_decref(records);
		if (rc == DD_ERR_NOT_FOUND)
			dd_sd_conn_error(c, "not_found", "no transcript for "
				       "this session");
		else if (rc == DD_ERR_INVALID)
			dd_sd_conn_error(c, "bad_request", "cursor points "
				       "past the transcript");
		else
			dd_sd_conn_error(c, "internal", dd_strerror(rc));
		return;
	}
	rep = json_pack("{s:b,s:s,s:i,s:o,s:b}", "ok", 1, "id", r->id,
			"version", 2, "records", records, "truncated",
			truncated);
	if (rep != NULL && next != 0 &&
	    json_object_set_new(rep, "next", json_integer((json_int_t)next)))
		rep = (json_decref(rep), NULL);
	dd_sd_conn_reply_new(c, rep);
}

static void do_resize(struct dd_sd_conn *c, const dd_sd_req *r)
{
	dd_sd_session *s = session_or_error(c, r->id);
	dd_err_t rc;

	if (s == NULL)
		return;
	rc = dd_sd_resize(s, r->cols, r->rows);
	if (rc == DD_ERR_CLOSED)
		dd_sd_conn_error(c, "exited", "the session's terminal is gone");
	else if (rc)
		dd_sd_conn_error(c, "internal", "TIOCSWINSZ failed");
	else
		reply_ok(c, NULL, NULL);
}

static void do_close(struct dd_sd_conn *c, const dd_sd_req *r)
{
	dd_sd_session *s = session_or_error(c, r->id);

	if (s == NULL)
		return;
	dd_log_info("sessiond: closing session %s", r->id);
	dd_sd_close(s);
	reply_ok(c, NULL, NULL);
}

static void do_recipients(struct dd_sd_conn *c, const dd_sd_req *r)
{
	dd_sd_server *s = c->s;
	dd_err_t rc;

	/* Output so far was produced for the devices of its moment. */
	dd_sd_flush_all(s->o.sessions);
	*s->o.rcpts = r->rcpts;
	/* The set in memory counts from now even if the file fails. */
	rc = dd_sd_rcpts_save(s->o.rcpts_path, s->o.rcpts);
	if (rc)
		dd_log_err(rc, "sessiond: keeping the recipient set in %s",
			   s->o.rcpts_path);
	dd_log_info("sessiond: %zu history recipient(s)", s->o.rcpts->n);
	reply_ok(c, "recipients", json_integer((json_int_t)s->o.rcpts->n));
}

static void do_status(struct dd_sd_conn *c)
{
	dd_sd_server *s = c->s;
	json_t *r;

	r = json_pack("{s:b,s:s,s:I,s:I,s:I,s:I}", "ok", 1, "boot_id",
		      s->boot_id, "started_at", (json_int_t)s->started,
		      "sessions",
		      (json_int_t)dd_sd_count(s->o.sessions), "recipients",
		      (json_int_t)s->o.rcpts->n, "history_bytes",
		      (json_int_t)dd_hist_bytes(s->o.hist));
	dd_sd_conn_reply_new(c, r);
}

void dd_sd_dispatch(struct dd_sd_conn *c, dd_sd_req *req)
{
	json_t *v = NULL;

	switch (req->method) {
	case DD_SD_LIST_RECIPES:
		reply_ok(c, "recipes", dd_recipes_json(c->s->o.recipes));
		break;
	case DD_SD_LIST_SESSIONS:
		reply_ok(c, "sessions", dd_sd_list(c->s->o.sessions));
		break;
	case DD_SD_LIST_HISTORY:
		if (dd_hist_list(c->s->o.hist, &v) != DD_OK)
			v = NULL;
		reply_ok(c, "history", v);
		break;
	case DD_SD_CREATE:
		do_create(c, req);
		break;
	case DD_SD_ATTACH:
		do_attach(c, req);
		break;
	case DD_SD_REPLAY:
		do_replay(c, req);
		break;
	case DD_SD_RESIZE:
		do_resize(c, req);
		break;
	case DD_SD_CLOSE:
		do_close(c, req);
		break;
	case DD_SD_SET_RECIPIENTS:
		do_recipients(c, req);
		break;
	case DD_SD_STATUS:
		do_status(c);
		break;
	}
}
