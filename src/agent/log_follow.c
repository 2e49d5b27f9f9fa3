#include "agent/log_follow.h"

#include <string.h>

#include <uv.h>

#include "core/alloc.h"
#include "core/log.h"

#define ID_MAX 128

struct follower {
	dd_log_follow *set;
	dd_http_req *req;        /* NULL once the client went away */
	dd_ndjson_req *ee_req;   /* a logs call in flight */
	uv_timer_t timer;
	json_t *window;          /* the last lines EE answered */
	uint64_t started, last_sent;
	int paused;              /* write queue above its high-water mark */
	char id[ID_MAX];
	struct follower *prev, *next;
};

struct dd_log_follow {
	dd_ndjson *ee;
	struct follower *all;
	size_t n;
};

/* ---- the overlap ------------------------------------------------------- */

static int same_line(const json_t *a, const json_t *b)
{
	size_t n;

	if (!json_is_string(a) || !json_is_string(b))
		return 0;
	n = json_string_length(a);
	return n == json_string_length(b) &&
	       memcmp(json_string_value(a), json_string_value(b), n) == 0;
}

dd_err_t dd_log_overlap(const json_t *prev, const json_t *next, size_t *k)
{
	size_t n = json_array_size(prev), m = json_array_size(next);
	size_t *fail, q = 0;

	*k = 0;
	if (n == 0 || m == 0)
		return DD_OK;
	/* KMP over prev with next as the pattern: where the state ends is
	 * the longest prefix of next that is a suffix of prev. */
	fail = dd_calloc(m, sizeof *fail);
	if (fail == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 1, j = 0; i < m; i++) {
		while (j > 0 && !same_line(json_array_get(next, i),
					   json_array_get(next, j)))
			j = fail[j - 1];
		if (same_line(json_array_get(next, i), json_array_get(next, j)))
			j++;
		fail[i] = j;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *line = json_array_get(prev, i);

		if (q == m)
			q = fail[q - 1];
		while (q > 0 && !same_line(line, json_array_get(next, q)))
			q = fail[q - 1];
		if (same_line(line, json_array_get(next, q)))
			q++;
	}
	dd_free(fail);
	*k = q;
	return DD_OK;
}

/* ---- followers --------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct follower *fl = h->data;

	json_decref(fl->window);
	dd_free(fl);
}

/* Stops everything of fl but the HTTP request, which is dealt with. */
static void teardown(struct follower *fl)
{
	dd_log_follow *f = fl->set;

	if (fl->ee_req != NULL)
		dd_ndjson_cancel(fl->ee_req);
	fl->ee_req = NULL;
	if (fl->prev != NULL)
		fl->prev->next = fl->next;
	else
		f->all = fl->next;
	if (fl->next != NULL)
		fl->next->prev = fl->prev;
	f->n--;
	uv_timer_stop(&fl->timer);
	uv_close((uv_handle_t *)&fl->timer, on_closed);
}

/* Writes one NDJSON object; BUSY means: queued, but pause producing. */
static dd_err_t emit(struct follower *fl, json_t *obj)
{
	char *text;
	size_t len;
	dd_err_t rc;

	/*
	 * A failed write closes the connection, and its abort callback runs
	 * inside that write: the follower is then torn down already.
	 */
	if (fl->req == NULL) {
		json_decref(obj);
		return DD_ERR_CLOSED;
	}
	if (obj == NULL)
		return DD_ERR_NOMEM;
	text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (text == NULL)
		return DD_ERR_NOMEM;
	len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: write takes a length */
	rc = dd_http_stream_write(fl->req, text, len + 1);
	dd_free(text); /* jansson allocates through dd_json_setup's hooks */
	if (rc == DD_OK || rc == DD_ERR_BUSY)
		fl->last_sent = uv_now(fl->timer.loop);
	if (rc == DD_ERR_BUSY)
		fl->paused = 1;
	return rc;
}

static void end(struct follower *fl, const char *reason)
{
	dd_http_req *req = fl->req;

	if (req == NULL)
		return; /* aborted during the last write: torn down */
	(void)emit(fl, json_pack("{s:s}", "end", reason));
	if (fl->req == NULL)
		return; /* and this write was the one that failed */
	dd_http_req_on_abort(req, NULL, NULL);
	dd_http_stream_end(req);
	fl->req = NULL;
	teardown(fl);
}

static void on_abort(void *ud)
{
	struct follower *fl = ud;

	fl->req = NULL;
	teardown(fl);
}

static void on_drain(void *ud)
{
	struct follower *fl = ud;

	fl->paused = 0;
}

/* Sends the lines of next that prev did not have. */
static dd_err_t send_new(struct follower *fl, json_t *next)
{
	size_t k, m = json_array_size(next);
	dd_err_t rc;

	rc = dd_log_overlap(fl->window, next, &k);
	if (rc)
		return rc;
	if (k == 0 && json_array_size(fl->window) > 0 && m > 0) {
		rc = emit(fl, json_pack("{s:b}", "gap", 1));
		if (rc && rc != DD_ERR_BUSY)
			return rc;
	}
	/* A slow reader still gets this batch: it is bounded by the tail. */
	for (size_t i = k; i < m; i++) {
		rc = emit(fl, json_pack("{s:O}", "line", json_array_get(next, i)));
		if (rc && rc != DD_ERR_BUSY)
			return rc;
	}
	json_decref(fl->window);
	fl->window = json_incref(next);
	return DD_OK;
}

static void on_logs(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	struct follower *fl = ud;
	const char *e = "";
	json_t *lines;
	dd_err_t rc;

	fl->ee_req = NULL;
	if (err) {
		end(fl, err == DD_ERR_CANCELLED ? "shutdown" : why);
		return;
	}
	rc = dd_ndjson_reply_check(reply, &e);
	if (rc) {
		end(fl, strcmp(e, "deployment not found") == 0 ? "workload gone"
							       : e);
		return;
	}
	lines = json_object_get(reply, "lines");
	if (!json_is_array(lines)) {
		end(fl, "the runtime's logs reply has no lines array");
		return;
	}
	rc = send_new(fl, lines);
	if (rc && fl->req != NULL) {
		dd_log_err(rc, "following the log of %s", fl->id);
		end(fl, dd_strerror(rc));
	}
}

static void poll_logs(struct follower *fl)
{
	json_t *rq;
	dd_err_t rc;

	rq = json_pack("{s:s, s:s, s:i}", "method", "logs", "id", fl->id,
		       "tail", DD_LOG_FOLLOW_TAIL);
	if (rq == NULL)
		return; /* the next tick tries again */
	rc = dd_ndjson_call(fl->set->ee, rq, on_logs, fl, &fl->ee_req);
	json_decref(rq);
	if (rc)
		fl->ee_req = NULL;
	/* BUSY and NOMEM pass: the next tick asks again. */
	if (rc && rc != DD_ERR_BUSY && rc != DD_ERR_NOMEM)
		end(fl, dd_strerror(rc));
}

static void on_tick(uv_timer_t *t)
{
	struct follower *fl = t->data;
	uint64_t now = uv_now(t->loop);

	if (now - fl->started >= DD_LOG_FOLLOW_MAX_MS) {
		if (fl->ee_req == NULL)
			end(fl, "time limit");
		return;
	}
	if (fl->paused || fl->ee_req != NULL)
		return;
	if (now - fl->last_sent >= DD_LOG_FOLLOW_HEARTBEAT_MS &&
	    emit(fl, json_pack("{s:b}", "heartbeat", 1)) == DD_ERR_BUSY)
		return;
	if (fl->req == NULL)
		return; /* the heartbeat found the reader gone */
	poll_logs(fl);
}

void dd_log_follow_start(dd_log_follow *f, dd_http_req *req,
			 const char *deployment_id)
{
	struct follower *fl;
	uv_loop_t *loop = dd_http_req_loop(req);

	if (f->n >= DD_LOG_FOLLOW_MAX) {
		dd_http_respond_error(req, 503, "busy",
				      "too many logs are being followed");
		return;
	}
	if (strlen(deployment_id) >= ID_MAX) {
		dd_http_respond_error(req, 502, "upstream_failed",
				      "the runtime's deployment id is too long");
		return;
	}
	fl = dd_calloc(1, sizeof *fl);
	if (fl != NULL)
		fl->window = json_array();
	if (fl == NULL || fl->window == NULL) {
		dd_free(fl);
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	(void)dd_http_set_header(req, "Cache-Control", "no-store");
	if (dd_http_stream_begin(req, 200, "application/x-ndjson") != DD_OK) {
		/* The connection is failing; it finishes the request. */
		json_decref(fl->window);
		dd_free(fl);
		return;
	}
	memcpy(fl->id, deployment_id, strlen(deployment_id) + 1);
	fl->set = f;
	fl->req = req;
	fl->started = fl->last_sent = uv_now(loop);
	fl->next = f->all;
	if (f->all != NULL)
		f->all->prev = fl;
	f->all = fl;
	f->n++;
	uv_timer_init(loop, &fl->timer);
	fl->timer.data = fl;
	dd_http_req_on_abort(req, on_abort, fl);
	dd_http_stream_on_drain(req, on_drain, fl);
	uv_timer_start(&fl->timer, on_tick, DD_LOG_FOLLOW_POLL_MS,
		       DD_LOG_FOLLOW_POLL_MS);
	poll_logs(fl);
}

dd_err_t dd_log_follow_new(dd_ndjson *ee, dd_log_follow **out)
{
	dd_log_follow *f = dd_calloc(1, sizeof *f);

	*out = f;
	if (f == NULL)
		return DD_ERR_NOMEM;
	f->ee = ee;
	return DD_OK;
}

void dd_log_follow_free(dd_log_follow *f)
{
	if (f == NULL)
		return;
	while (f->all != NULL)
		end(f->all, "shutdown");
	dd_free(f);
}
