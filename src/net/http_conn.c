/*
 * http_conn.c: one connection's life: reading, the request loop, writing,
 * timeouts and teardown. Part of the HTTP server module (see http.c).
 *
 * A connection handles one request at a time. Bytes that arrive while a
 * handler owns the request (pipelining) wait in c->in, parsed only once
 * the response is queued, so responses always leave in request order.
 * Nothing is freed synchronously inside a callback chain: connections are
 * freed from their handles' close callbacks, requests at well-defined
 * points (finish_request, abort).
 */
#include "net/http_int.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

static void conn_process(struct conn *c);

/* --- requests ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

dd_http_req *http_req_new(struct conn *c)
{
	dd_http_req *req = dd_calloc(1, sizeof *req);
	dd_http_server *srv = c->srv;

	if (req == NULL)
		return NULL;
	req->conn = c;
	req->srv = srv;
	req->start_us = dd_now_us();
	dd_buf_init(&req->head, srv->lim.max_head_bytes);
	/* Most heads fit; one allocation instead of a doubling series. */
	if (dd_buf_reserve(&req->head, 1024) != DD_OK) {
		dd_free(req);
		return NULL;
	}
	dd_buf_init(&req->body, srv->lim.max_body_unauth);
	dd_buf_init(&req->resp_hdrs, 8192);
	{
		uint64_t id = mix64(srv->rid_seed + ++srv->rid_counter);
		uint8_t raw[8];

		for (int i = 0; i < 8; i++)
			raw[i] = (uint8_t)(id >> (56 - 8 * i));
		dd_hex_encode(raw, sizeof raw, req->rid);
	}
	return req;
}

void http_req_free(dd_http_req *req)
{
	if (req == NULL)
		return;
	dd_route_match_clear(&req->match);
	dd_buf_free(&req->head);
	dd_buf_free(&req->body);
	dd_buf_free(&req->resp_hdrs);
	for (size_t i = 0; i < req->ndecoded; i++)
		dd_free(req->decoded[i]);
	dd_free(req->decoded);
	dd_free(req->hdrs);
	dd_free(req);
}

/* --- connection teardown ------------------------------------------------- */

static void conn_handle_closed(struct conn *c)
{
	dd_http_server *srv = c->srv;

	if (--c->handles_open > 0)
		return;
	dd_buf_free(&c->in);
	dd_free(c);
	srv->live--;
	http_server_check_done(srv);
}

static void on_stream_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	dd_free(h);
	conn_handle_closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	conn_handle_closed(h->data);
}

void http_conn_unlink(struct conn *c)
{
	dd_http_server *srv = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	srv->nconns--;
}

/* The handler's request outlives the connection unless it can be told. */
static void conn_drop_request(struct conn *c)
{
	dd_http_req *req = c->req;

	c->req = NULL;
	if (req == NULL)
		return;
	req->conn = NULL;
	if (req->finished || c->state != C_HANDLER) {
		http_req_free(req);
		return;
	}
	req->status = 499; /* client closed before we answered */
	http_access_log(req);
	if (req->abort_cb != NULL) {
		req->abort_cb(req->abort_ud);
		http_req_free(req);
	}
	/* Otherwise the handler still holds it and frees it by finishing. */
}

/*
 * reset: drop what the kernel still holds for a peer that stopped reading
 * (RST instead of a graceful close that could drain for minutes).
 */
void http_conn_close_ex(struct conn *c, bool reset)
{
	if (c->state == C_CLOSED)
		return;
	if (c->in_process) {
		/* Parser callbacks still hold c->req: close on the way out. */
		c->close_pending = true;
		c->close_reset = c->close_reset || reset;
		return;
	}
	conn_drop_request(c);
	c->state = C_CLOSED;
	http_conn_unlink(c);
	if (!reset || c->shut_down ||
	    !c->is_tcp ||
	    uv_tcp_close_reset((uv_tcp_t *)c->stream,
			       (uv_close_cb)on_stream_closed) != 0)
		uv_close((uv_handle_t *)c->stream, on_stream_closed);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void http_conn_close(struct conn *c)
{
	http_conn_close_ex(c, false);
}

/* --- writing -------------------------------------------------------------- */

struct write_req {
	uv_write_t w;
	struct conn *c; /* NULL for writes that outlive the connection */
	size_t len;
	char data[];
};

static void on_shutdown(uv_shutdown_t *s, int status)
{
	(void)status;
	dd_free(s);
}

/* After the last byte of a closing response is out. */
static void conn_after_flush(struct conn *c)
{
	uv_shutdown_t *s;

	if (!c->close_after_write || c->write_queued > 0 ||
	    c->state == C_CLOSED)
		return;
	if (!c->body_unread) {
		http_conn_close(c);
		return;
	}
	/*
	 * The client may still be sending a body we refused; closing now
	 * would reset the connection and could destroy our reply in flight.
	 * Half-close and read/discard briefly instead.
	 */
	s = dd_malloc(sizeof *s);
	if (s == NULL || uv_shutdown(s, c->stream, on_shutdown)) {
		dd_free(s);
		http_conn_close(c);
		return;
	}
	c->shut_down = true;
	c->state = C_LINGER;
	c->deadline_ms = http_now(c) + HTTP_LINGER_MS;
	http_conn_arm_timer(c);
}

static void on_write(uv_write_t *w, int status)
{
	struct write_req *wr = (struct write_req *)w;
	struct conn *c = wr->c;
	size_t len = wr->len;
	dd_http_req *req;

	dd_free(wr);
	if (c == NULL || c->state == C_CLOSED)
		return;
	c->write_queued -= len;
	if (status < 0) {
		http_conn_close(c);
		return;
	}
	/* The deadline measures progress, not the whole transfer. */
	c->write_deadline_ms = c->write_queued
		? http_now(c) + c->srv->lim.write_timeout_ms : 0;
	http_conn_arm_timer(c);
	req = c->req;
	if (req != NULL && req->drain_cb != NULL &&
	    c->write_queued < HTTP_WRITE_LOW) {
		void (*cb)(void *) = req->drain_cb;
		req->drain_cb = NULL;
		cb(req->drain_ud); /* may finish the request or close */
		if (c->state == C_CLOSED)
			return;
	}
	conn_after_flush(c);
	if (c->state != C_CLOSED && c->write_queued < HTTP_WRITE_LOW)
		http_conn_resume_reading(c);
}

dd_err_t http_conn_write(struct conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
	size_t total = 0, off = 0, skip;
	int n = 0;
	struct write_req *wr;
	uv_buf_t b;

	if (c->state == C_CLOSED || c->close_pending)
		return DD_ERR_CLOSED;
	for (unsigned i = 0; i < nbufs; i++)
		total += bufs[i].len;
	if (c->write_queued == 0) {
		n = uv_try_write(c->stream, bufs, nbufs);
		if (n < 0 && n != UV_EAGAIN) {
			http_conn_close(c);
			return DD_ERR_IO;
		}
		if (n < 0)
			n = 0;
	}
	if ((size_t)n == total)
		return DD_OK;
	wr = dd_malloc(sizeof *wr + (total - (size_t)n));
	if (wr == NULL) {
		http_conn_close(c);
		return DD_ERR_NOMEM;
	}
	skip = (size_t)n;
	for (unsigned i = 0; i < nbufs; i++) {
		size_t l = bufs[i].len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		memcpy(wr->data + off, bufs[i].base + skip, l - skip);
		off += l - skip;
		skip = 0;
	}
	wr->c = c;
	wr->len = off;
	b = uv_buf_init(wr->data, (unsigned)off);
	if (uv_write(&wr->w, c->stream, &b, 1, on_write)) {
		dd_free(wr);
		http_conn_close(c);
		return DD_ERR_IO;
	}
	c->write_queued += off;
	if (c->write_deadline_ms == 0) {
		c->write_deadline_ms = http_now(c) + c->srv->lim.write_timeout_ms;
		http_conn_arm_timer(c);
	}
	return DD_OK;
}

/* --- timers ----------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = http_now(c);

	if (c->write_deadline_ms != 0 && now >= c->write_deadline_ms) {
		dd_log_at(DD_LOG_INFO, __func__, c->req ? c->req->rid : NULL,
			  "peer=%s response stalled; closing", c->peer);
		http_conn_close_ex(c, true);
		return;
	}
	if (c->deadline_ms == 0 || now < c->deadline_ms) {
		http_conn_arm_timer(c);
		return;
	}
	c->deadline_ms = 0;
	switch (c->state) {
	case C_HEAD:
	case C_BODY:
		c->keep_alive = false;
		http_reply_error(c, 408, "REQUEST_TIMEOUT",
				 c->state == C_HEAD ? "request head not received in time"
						    : "request body not received in time");
		break;
	case C_HANDLER:
		break;
	default:
		http_conn_close(c);
	}
}

void http_conn_arm_timer(struct conn *c)
{
	uint64_t next = c->deadline_ms, now;

	if (c->state == C_CLOSED)
		return;
	if (c->write_deadline_ms != 0 &&
	    (next == 0 || c->write_deadline_ms < next))
		next = c->write_deadline_ms;
	if (next == 0) {
		uv_timer_stop(&c->timer);
		return;
	}
	now = http_now(c);
	uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

/* --- reading ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	/* One buffer per server: every read is consumed before returning. */
	*buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

#define RBUF_SIZE sizeof(((dd_http_server *)0)->rbuf)

/*
 * What may wait unparsed behind a busy handler: a full head plus two
 * reads. Reading stops while less than one read's worth of room is left,
 * so a read always fits and a pipelining client is slowed, never dropped.
 */
size_t http_conn_in_cap(const struct conn *c)
{
	return (size_t)c->srv->lim.max_head_bytes + 2 * RBUF_SIZE;
}

static bool in_full(const struct conn *c)
{
	return c->in.len > http_conn_in_cap(c) - RBUF_SIZE;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void http_conn_resume_reading(struct conn *c)
{
	if (c->reading || c->peer_eof || c->state == C_CLOSED || in_full(c))
		return;
	if (uv_read_start(c->stream, on_alloc, on_read) == 0)
		c->reading = true;
}

void http_conn_pause_reading(struct conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop(c->stream);
	c->reading = false;
}

static void on_peer_eof(struct conn *c)
{
	c->peer_eof = true;
	http_conn_pause_reading(c);
	switch (c->state) {
	case C_HANDLER:
		/* A handler that can be cancelled is; others finish first. */
		if (c->req != NULL && c->req->abort_cb != NULL)
			http_conn_close(c);
		else
			c->close_after_write = true;
		break;
	case C_LINGER:
	case C_IDLE:
	case C_HEAD:
	case C_BODY:
	default:
		http_conn_close(c);
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	dd_err_t rc;

	if (nread < 0) {
		if (nread == UV_EOF)
			on_peer_eof(c);
		else
			http_conn_close(c);
		return;
	}
	if (nread == 0 || c->state == C_CLOSED)
		return;
	if (c->state == C_LINGER)
		return; /* discarding a refused body */
	rc = dd_buf_append(&c->in, buf->base, (size_t)nread);
	if (rc) {
		http_conn_close(c); /* out of memory: the cap always has room */
		return;
	}
	conn_process(c);
	if (c->state != C_CLOSED && in_full(c))
		http_conn_pause_reading(c);
}

/* --- the request loop --------------------------------------------------------- */

/* Frees the finished request and readies the connection for the next. */
static void finish_request(struct conn *c)
{
	dd_http_req *req = c->req;

	c->req = NULL;
	http_req_free(req);
	if (c->state == C_CLOSED)
		return;
	if (!c->keep_alive || c->peer_eof || c->srv->shutting_down) {
		c->close_after_write = true;
		c->deadline_ms = 0;
		c->state = C_IDLE;
		conn_after_flush(c);
		return;
	}
	c->state = C_IDLE;
	c->deadline_ms = http_now(c) + c->srv->lim.idle_timeout_ms;
	if (llhttp_get_errno(&c->parser) == HPE_PAUSED_UPGRADE)
		llhttp_resume_after_upgrade(&c->parser);
	else
		llhttp_resume(&c->parser);
	http_conn_arm_timer(c);
	http_conn_resume_reading(c);
}

void http_conn_request_done(struct conn *c)
{
	if (c->in_process)
		return; /* conn_process notices req->finished */
	finish_request(c);
	conn_process(c);
}

static const char *reject_message(int status)
{
	switch (status) {
	case 413:
		return "request body too large";
	case 414:
		return "request target too long";
	case 431:
		return "request header fields too large";
	case 400:
		return "bad request: NUL byte or both Content-Length and "
		       "Transfer-Encoding";
	default:
		return "internal: out of memory";
	}
}

static const char *reject_code(int status)
{
	switch (status) {
	case 413:
		return "PAYLOAD_TOO_LARGE";
	case 414:
		return "URI_TOO_LONG";
	case 431:
		return "HEADERS_TOO_LARGE";
	case 400:
		return "BAD_REQUEST";
	default:
		return "INTERNAL";
	}
}

/* A parse error: answer once, then close (the stream is out of sync). */
static void on_parse_error(struct conn *c, llhttp_errno_t err)
{
	dd_http_req *req = c->req;
	char msg[160];
	int status;

	c->keep_alive = false;
	if (req != NULL && req->finished)
		return; /* answered from on_headers_complete; body unread */
	if (req != NULL && req->reject_status != 0) {
		status = req->reject_status;
		http_reply_error(c, status, reject_code(status),
				 reject_message(status));
		return;
	}
	status = err == HPE_INVALID_VERSION ? 505 : 400;
	snprintf(msg, sizeof msg, "bad request: %s (%s)",
		 llhttp_get_error_reason(&c->parser), llhttp_errno_name(err));
	http_reply_error(c, status, status == 505 ? "HTTP_VERSION" : "BAD_REQUEST",
			 msg);
}

/* Runs the handler; returns true if the request finished synchronously. */
static bool dispatch(struct conn *c)
{
	dd_http_req *req = c->req;

	if (!req->finished)
		req->route->handler(req, req->route->ud);
	return c->state == C_CLOSED || c->req == NULL || c->req->finished;
}

static bool parse_some(struct conn *c)
{
	const char *data = (const char *)c->in.data;
	llhttp_errno_t err;
	size_t used = c->in.len;

	if (c->crlf_left > 0 && http_check_crlf(c, data, c->in.len)) {
		http_reply_error(c, 400, "BAD_REQUEST",
				 "bad request: chunk data not followed by CRLF");
		if (c->state != C_CLOSED && c->req != NULL && c->req->finished)
			finish_request(c);
		return false;
	}
	c->exec_start = data;
	c->exec_end = data + c->in.len;
	err = llhttp_execute(&c->parser, data, c->in.len);

	if (err != HPE_OK)
		used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
	if (c->state == C_HEAD)
		c->head_seen += used;
	dd_buf_consume(&c->in, used);
	if (err == HPE_OK) {
		if (c->state == C_HEAD &&
		    c->head_seen > c->srv->lim.max_head_bytes + 1024)
			http_reply_error(c, 431, "HEADERS_TOO_LARGE",
					 reject_message(431));
	} else if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
		on_parse_error(c, err);
	} else {
		if (!dispatch(c))
			return false; /* the handler answers later */
	}
	if (c->state != C_CLOSED && c->req != NULL && c->req->finished)
		finish_request(c);
	return err != HPE_OK && c->state == C_IDLE;
}


static void conn_process(struct conn *c)
{
	if (c->in_process)
		return;
	c->in_process = true;
	while (c->state != C_CLOSED && c->state != C_HANDLER &&
	       c->state != C_LINGER && !c->close_after_write &&
	       !c->close_pending && c->in.len > 0) {
		if (!parse_some(c))
			break;
	}
	c->in_process = false;
	if (c->close_pending) {
		c->close_pending = false;
		http_conn_close_ex(c, c->close_reset);
	}
	if (c->state == C_CLOSED)
		return;
	if (c->in.len == 0)
		dd_buf_free(&c->in); /* idle connections hold no buffer */
	/* A drained backlog may have been what paused reading. */
	http_conn_resume_reading(c);
	http_conn_arm_timer(c);
}

