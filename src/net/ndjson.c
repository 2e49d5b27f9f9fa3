#include "net/ndjson.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/alloc.h"
#include "core/json.h"

struct dd_ndjson_req {
	dd_ndjson *c;
	dd_ndjson_req *prev, *next;
	uv_pipe_t *pipe;        /* heap: attach hands it to the caller */
	uv_timer_t timer;
	uv_connect_t conn;
	uv_write_t wr;
	uv_shutdown_t sh;
	dd_buf out;             /* the request line; holds the token */
	dd_ndjson_reader rd;
	uint8_t chunk[4096];    /* the read buffer; extra bytes live here */
	size_t extra_off;
	size_t extra_len;
	json_t *ack;            /* attach: parsed ack waiting for on_write */
	int attach;
	int wrote;
	int ack_ready;
	int finished;           /* callback delivered or call cancelled */
	unsigned open;          /* our handles not yet closed */
	dd_ndjson_cb cb;
	dd_ndjson_attach_cb acb;
	void *ud;
	char why[256];
};

struct dd_ndjson {
	uv_loop_t *loop;
	char *path;
	char *token;            /* NULL when none; wiped on free */
	size_t token_len;
	uint64_t timeout_ms;
	size_t max_reply;
	size_t max_request;
	unsigned max_inflight;
	dd_ndjson_req *reqs;    /* calls whose callback is still due */
	unsigned n_reqs;
	unsigned n_live;        /* calls not yet freed, closing ones too */
	/* Never started; closing it makes `done` always run from the loop. */
	uv_timer_t anchor;
	int anchor_closed;
	int closing;
	dd_ndjson_close_cb done;
	void *done_ud;
};

/* ---- pure framing and encoding ---- */

void dd_ndjson_reader_init(dd_ndjson_reader *rd, size_t max)
{
	dd_buf_init(&rd->line, max > 0 ? max : 1);
	rd->state = DD_ERR_TRUNCATED;
}

void dd_ndjson_reader_free(dd_ndjson_reader *rd)
{
	dd_buf_free(&rd->line);
}

dd_err_t dd_ndjson_reader_feed(dd_ndjson_reader *rd, const uint8_t *data,
			       size_t len, size_t *used)
{
	const uint8_t *nl = NULL;
	size_t take = len;
	dd_err_t rc;

	*used = 0;
	if (rd->state != DD_ERR_TRUNCATED)
		return rd->state;
	if (len > 0)
		nl = memchr(data, '\n', len);
	if (nl != NULL)
		take = (size_t)(nl - data);
	rc = dd_buf_append(&rd->line, data, take);
	if (rc) {
		rd->state = rc;
		return rc;
	}
	if (nl == NULL) {
		*used = len;
		return DD_ERR_TRUNCATED;
	}
	*used = take + 1;
	rd->state = DD_OK;
	return DD_OK;
}

dd_err_t dd_ndjson_parse_line(const void *line, size_t len, size_t max,
			      json_t **out, char *why, size_t why_len)
{
	json_t *v = NULL;
	dd_err_t rc;

	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	rc = dd_json_parse(line, len, max, &v, why, why_len);
	if (rc)
		return rc;
	if (!json_is_object(v)) {
		json_decref(v);
		if (why != NULL)
			snprintf(why, why_len, "reply is not a JSON object");
		return DD_ERR_INVALID;
	}
	*out = v;
	return DD_OK;
}

/* Bytes a token may hold: nothing that needs escaping inside JSON. */
static int token_ok(const char *t, size_t n)
{
	static const char extra[] = "._~+/=-";

	if (n == 0 || n > DD_NDJSON_MAX_TOKEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') ||
		      (ch != '\0' && strchr(extra, ch) != NULL)))
			return 0;
	}
	return 1;
}

typedef struct dump_ctx {
	dd_buf *b;
	dd_err_t rc;
} dump_ctx;

/* Keeps the real reason: dd_json_append reports any failure as TOO_LARGE. */
static int dump_cb(const char *chunk, size_t size, void *ud)
{
	dump_ctx *d = ud;

	d->rc = dd_buf_append(d->b, chunk, size);
	return d->rc == DD_OK ? 0 : -1;
}

dd_err_t dd_ndjson_encode(dd_buf *b, const json_t *request,
			  const char *token)
{
	dump_ctx d;
	dd_buf tmp;
	json_t *copy = NULL;
	size_t tlen = token != NULL ? strlen(token) : 0;
	dd_err_t rc;

	if (!json_is_object(request) ||
	    (token != NULL && !token_ok(token, tlen)))
		return DD_ERR_INVALID;
	dd_buf_init(&tmp, b->cap);
	if (token != NULL && json_object_get(request, "token") != NULL) {
		/*
		 * jansson's copy is not const-correct; it only reads the
		 * request (and takes references to its members).
		 */
		copy = json_copy((json_t *)(uintptr_t)request);
		rc = DD_ERR_NOMEM;
		if (copy == NULL || json_object_del(copy, "token") != 0)
			goto out;
		request = copy;
	}
	d.b = &tmp;
	d.rc = DD_OK;
	rc = DD_OK;
	if (json_dump_callback(request, dump_cb, &d,
			       JSON_COMPACT | JSON_REAL_PRECISION(15)) != 0)
		rc = d.rc != DD_OK ? d.rc : DD_ERR_NOMEM;
	if (rc)
		goto out;
	if (token == NULL) {
		rc = dd_buf_reserve(b, tmp.len + 1);
		if (rc)
			goto out;
		(void)dd_buf_append(b, tmp.data, tmp.len);
		(void)dd_buf_append_byte(b, '\n');
		goto out;
	}
	/*
	 * Splice "token" in before the closing brace of the compact text
	 * rather than into a JSON copy, so the secret is only ever in b.
	 */
	rc = dd_buf_reserve(b, tmp.len + tlen + sizeof ",\"token\":\"\"}\n");
	if (rc)
		goto out;
	(void)dd_buf_append(b, tmp.data, tmp.len - 1);
	(void)dd_buf_append_str(b, tmp.len > 2 ? ",\"token\":\""
					       : "\"token\":\"");
	(void)dd_buf_append(b, token, tlen);
	(void)dd_buf_append_str(b, "\"}\n");
out:
	json_decref(copy);
	dd_buf_freezero(&tmp);
	return rc;
}

dd_err_t dd_ndjson_reply_check(const json_t *reply, const char **error)
{
	const char *e = NULL;
	int ok = 0;

	if (error != NULL)
		*error = "";
	if (dd_json_get_bool(reply, "ok", &ok) != DD_OK) {
		if (error != NULL)
			*error = "reply has no boolean \"ok\"";
		return DD_ERR_INVALID;
	}
	if (ok)
		return DD_OK;
	if (dd_json_get_str(reply, "error", &e) != DD_OK)
		e = "request failed without an error text";
	if (error != NULL)
		*error = e;
	return strcmp(e, "unauthenticated") == 0 ? DD_ERR_UNAUTHORIZED
						 : DD_ERR_UPSTREAM;
}

/* ---- call lifecycle ---- */

static void maybe_done(dd_ndjson *c)
{
	if (c->closing && c->anchor_closed && c->n_live == 0 &&
	    c->done != NULL)
		c->done(c, c->done_ud);
}

static void req_closed(dd_ndjson_req *r)
{
	dd_ndjson *c = r->c;

	if (--r->open > 0)
		return;
	json_decref(r->ack);
	dd_buf_freezero(&r->out);
	dd_ndjson_reader_free(&r->rd);
	dd_free(r);
	c->n_live--;
	maybe_done(c);
}

static void on_pipe_closed(uv_handle_t *h)
{
	dd_ndjson_req *r = h->data;

	dd_free(h);
	r->pipe = NULL;
	req_closed(r);
}

static void on_timer_closed(uv_handle_t *h)
{
	req_closed(h->data);
}

/* Closes what we still own; r is freed once the closes complete. */
static void release(dd_ndjson_req *r)
{
	/* Pending connect/write/shutdown callbacks run first, cancelled. */
	if (r->pipe != NULL && !uv_is_closing((uv_handle_t *)r->pipe))
		uv_close((uv_handle_t *)r->pipe, on_pipe_closed);
	if (!uv_is_closing((uv_handle_t *)&r->timer))
		uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void unlink_req(dd_ndjson_req *r)
{
	dd_ndjson *c = r->c;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	c->n_reqs--;
	r->finished = 1;
}

/* Delivers a result (reply borrowed) and starts tearing the call down. */
static void deliver(dd_ndjson_req *r, dd_err_t err, json_t *reply)
{
	unlink_req(r);
	if (err == DD_OK)
		r->why[0] = '\0';
	else if (r->why[0] == '\0')
		snprintf(r->why, sizeof r->why, "%s", dd_strerror(err));
	if (r->attach)
		r->acb(err, NULL, NULL, 0, NULL, r->why, r->ud);
	else
		r->cb(err, err == DD_OK ? reply : NULL, r->why, r->ud);
	release(r);
}

static void fail(dd_ndjson_req *r, dd_err_t err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(dd_ndjson_req *r, dd_err_t err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
	deliver(r, err, NULL);
}

/* The ack is in and our request is fully written: give the stream away. */
static void handover(dd_ndjson_req *r)
{
	uv_pipe_t *p = r->pipe;
	json_t *ack = r->ack;

	unlink_req(r);
	r->ack = NULL;
	r->pipe = NULL;
	r->open--; /* the pipe is the caller's now */
	p->data = NULL;
	uv_timer_stop(&r->timer);
	r->acb(DD_OK, p, r->chunk + r->extra_off, r->extra_len, ack, "",
	       r->ud);
	json_decref(ack);
	release(r);
}

static dd_err_t map_connect_error(int status)
{
	switch (status) {
	case UV_ENOENT:
	case UV_ENOTDIR:
		return DD_ERR_NOT_FOUND;
	case UV_ECONNREFUSED:
		return DD_ERR_UPSTREAM;
	case UV_EACCES:
	case UV_EPERM:
		return DD_ERR_FORBIDDEN;
	case UV_EAGAIN:
		return DD_ERR_BUSY;
	default:
		return DD_ERR_IO;
	}
}

static void on_timeout(uv_timer_t *t)
{
	dd_ndjson_req *r = t->data;

	fail(r, DD_ERR_TIMEOUT, "no %s from %s within %llu ms",
	     r->attach ? "attach ack" : "reply", r->c->path,
	     (unsigned long long)r->c->timeout_ms);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	dd_ndjson_req *r = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)r->chunk, sizeof r->chunk);
}

static void on_line(dd_ndjson_req *r, size_t used, size_t nread)
{
	json_t *v = NULL;
	const char *e = "";
	dd_err_t rc;

	rc = dd_ndjson_parse_line(r->rd.line.data, r->rd.line.len,
				  r->rd.line.cap, &v, r->why, sizeof r->why);
	if (rc) {
		deliver(r, rc, NULL);
		return;
	}
	if (!r->attach) {
		deliver(r, DD_OK, v);
		json_decref(v);
		return;
	}
	rc = dd_ndjson_reply_check(v, &e);
	if (rc) {
		snprintf(r->why, sizeof r->why, "attach refused: %s", e);
		json_decref(v);
		deliver(r, rc, NULL);
		return;
	}
	r->ack = v;
	r->extra_off = used;
	r->extra_len = nread - used;
	/* Our write callback must not run after the pipe changed hands. */
	if (r->wrote)
		handover(r);
	else
		r->ack_ready = 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	dd_ndjson_req *r = s->data;
	size_t used = 0;
	dd_err_t rc;

	(void)buf;
	if (r == NULL || r->finished || nread == 0)
		return;
	if (nread < 0) {
		if (r->rd.line.len == 0)
			fail(r, DD_ERR_CLOSED,
			     "%s closed without replying (%s)",
			     r->c->path, uv_strerror((int)nread));
		else
			fail(r, DD_ERR_TRUNCATED,
			     "reply from %s cut off after %zu bytes (%s)",
			     r->c->path, r->rd.line.len,
			     uv_strerror((int)nread));
		return;
	}
	rc = dd_ndjson_reader_feed(&r->rd, r->chunk, (size_t)nread, &used);
	if (rc == DD_ERR_TRUNCATED)
		return;
	uv_read_stop(s);
	if (rc == DD_ERR_TOO_LARGE)
		fail(r, rc, "reply from %s longer than %zu bytes", r->c->path,
		     r->rd.line.cap);
	else if (rc)
		fail(r, rc, "reading reply: %s", dd_strerror(rc));
	else
		on_line(r, used, (size_t)nread);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	/* A failed shutdown means the peer is gone; the read side reports. */
	(void)req;
	(void)status;
}

static void on_write(uv_write_t *req, int status)
{
	dd_ndjson_req *r = req->data;

	dd_buf_freezero(&r->out);
	if (r->finished)
		return;
	if (status < 0 && r->attach && r->ack_ready) {
		fail(r, DD_ERR_CLOSED, "writing attach request: %s",
		     uv_strerror(status));
		return;
	}
	/*
	 * Otherwise a write error is left to the read side: the peer may
	 * have answered before it stopped reading, and the answer wins.
	 */
	if (status < 0)
		return;
	r->wrote = 1;
	if (r->attach) {
		if (r->ack_ready)
			handover(r);
		return;
	}
	if (uv_shutdown(&r->sh, (uv_stream_t *)r->pipe, on_shutdown) != 0)
		return; /* as in on_shutdown */
}

static void on_connect(uv_connect_t *req, int status)
{
	dd_ndjson_req *r = req->data;
	uv_buf_t buf;
	int err;

	if (r->finished)
		return;
	if (status < 0) {
		fail(r, map_connect_error(status), "connecting to %s: %s",
		     r->c->path, uv_strerror(status));
		return;
	}
	buf = uv_buf_init((char *)r->out.data, (unsigned)r->out.len);
	err = uv_write(&r->wr, (uv_stream_t *)r->pipe, &buf, 1, on_write);
	if (err) {
		fail(r, DD_ERR_CLOSED, "writing to %s: %s", r->c->path,
		     uv_strerror(err));
		return;
	}
	err = uv_read_start((uv_stream_t *)r->pipe, on_alloc, on_read);
	if (err)
		fail(r, DD_ERR_IO, "reading from %s: %s", r->c->path,
		     uv_strerror(err));
}

static dd_err_t start(dd_ndjson *c, const json_t *request, int attach,
		      dd_ndjson_cb cb, dd_ndjson_attach_cb acb, void *ud,
		      dd_ndjson_req **out)
{
	dd_ndjson_req *r = NULL;
	size_t max = c->max_reply;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (c->closing)
		return DD_ERR_CLOSED;
	if (c->n_reqs >= c->max_inflight)
		return DD_ERR_BUSY;
	if (!json_is_object(request) || (cb == NULL && acb == NULL))
		return DD_ERR_INVALID;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return DD_ERR_NOMEM;
	if (attach && max > DD_NDJSON_MAX_ACK)
		max = DD_NDJSON_MAX_ACK;
	dd_buf_init(&r->out, c->max_request);
	dd_ndjson_reader_init(&r->rd, max);
	rc = dd_ndjson_encode(&r->out, request, c->token);
	if (rc)
		goto out;
	rc = DD_ERR_NOMEM;
	r->pipe = dd_malloc(sizeof *r->pipe);
	if (r->pipe == NULL)
		goto out;
	/* From here nothing can fail: both inits only fill in structs. */
	(void)uv_pipe_init(c->loop, r->pipe, 0);
	(void)uv_timer_init(c->loop, &r->timer);
	r->c = c;
	r->attach = attach;
	r->cb = cb;
	r->acb = acb;
	r->ud = ud;
	r->open = 2;
	r->pipe->data = r;
	r->timer.data = r;
	r->conn.data = r;
	r->wr.data = r;
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	c->n_reqs++;
	c->n_live++;
	uv_timer_start(&r->timer, on_timeout, c->timeout_ms, 0);
	uv_pipe_connect(&r->conn, r->pipe, c->path, on_connect);
	if (out != NULL)
		*out = r;
	r = NULL; /* owned by the client until it is closed */
	rc = DD_OK;
out:
	if (r != NULL) {
		dd_free(r->pipe);
		dd_buf_freezero(&r->out);
		dd_ndjson_reader_free(&r->rd);
		dd_free(r);
	}
	return rc;
}

/* ---- public API ---- */

dd_err_t dd_ndjson_new(uv_loop_t *loop, const dd_ndjson_opts *opts,
		       dd_ndjson **out)
{
	dd_ndjson *c = NULL;
	size_t plen;
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	if (opts == NULL || opts->path == NULL)
		return DD_ERR_CONFIG;
	plen = strlen(opts->path);
	/* libuv would silently truncate a longer path and dial another. */
	if (plen == 0 || plen >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return DD_ERR_CONFIG;
	if (opts->token != NULL && opts->token[0] != '\0' &&
	    !token_ok(opts->token, strlen(opts->token)))
		return DD_ERR_CONFIG;
	/* uv_buf_t lengths are unsigned int. */
	if (opts->max_request > UINT_MAX / 2)
		return DD_ERR_CONFIG;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->loop = loop;
	c->timeout_ms = opts->timeout_ms ? opts->timeout_ms
					 : DD_NDJSON_DEFAULT_TIMEOUT_MS;
	c->max_reply = opts->max_reply ? opts->max_reply
				       : DD_NDJSON_DEFAULT_MAX_REPLY;
	c->max_request = opts->max_request ? opts->max_request
					   : DD_NDJSON_DEFAULT_MAX_REQUEST;
	c->max_inflight = opts->max_inflight ? opts->max_inflight
					     : DD_NDJSON_DEFAULT_MAX_INFLIGHT;
	c->path = dd_strdup(opts->path);
	if (c->path == NULL)
		goto out;
	if (opts->token != NULL && opts->token[0] != '\0') {
		c->token_len = strlen(opts->token);
		c->token = dd_strdup(opts->token);
		if (c->token == NULL)
			goto out;
	}
	(void)uv_timer_init(loop, &c->anchor);
	c->anchor.data = c;
	*out = c;
	c = NULL; /* transferred */
	rc = DD_OK;
out:
	if (c != NULL) {
		dd_free(c->path);
		dd_free(c);
	}
	return rc;
}

dd_err_t dd_ndjson_call(dd_ndjson *c, const json_t *request, dd_ndjson_cb cb,
			void *ud, dd_ndjson_req **out)
{
	if (cb == NULL)
		return DD_ERR_INVALID;
	return start(c, request, 0, cb, NULL, ud, out);
}

dd_err_t dd_ndjson_attach(dd_ndjson *c, const json_t *request,
			  dd_ndjson_attach_cb cb, void *ud,
			  dd_ndjson_req **out)
{
	if (cb == NULL)
		return DD_ERR_INVALID;
	return start(c, request, 1, NULL, cb, ud, out);
}

void dd_ndjson_cancel(dd_ndjson_req *r)
{
	if (r == NULL || r->finished)
		return;
	unlink_req(r);
	release(r);
}

static void on_anchor_closed(uv_handle_t *h)
{
	dd_ndjson *c = h->data;

	c->anchor_closed = 1;
	maybe_done(c);
}

void dd_ndjson_close(dd_ndjson *c, dd_ndjson_close_cb done, void *ud)
{
	dd_ndjson_req *r;

	if (c->closing)
		return;
	c->closing = 1;
	c->done = done;
	c->done_ud = ud;
	/* Callbacks may cancel other calls: always take the current head. */
	while (c->reqs != NULL) {
		r = c->reqs;
		snprintf(r->why, sizeof r->why, "client closed");
		deliver(r, DD_ERR_CANCELLED, NULL);
	}
	uv_close((uv_handle_t *)&c->anchor, on_anchor_closed);
}

void dd_ndjson_free(dd_ndjson *c)
{
	if (c == NULL)
		return;
	/* Freeing with calls or the anchor still open corrupts the loop. */
	if (!c->closing || !c->anchor_closed || c->n_live != 0)
		abort();
	if (c->token != NULL)
		dd_freezero(c->token, c->token_len);
	dd_free(c->path);
	dd_free(c);
}

static void on_handed_pipe_closed(uv_handle_t *h)
{
	dd_free(h);
}

void dd_ndjson_pipe_close(uv_pipe_t *pipe)
{
	if (pipe != NULL && !uv_is_closing((uv_handle_t *)pipe))
		uv_close((uv_handle_t *)pipe, on_handed_pipe_closed);
}
