/*
 * http.c: listener, connection lifecycle, request parsing and limits.
 * Responses are written by http_resp.c; request accessors live in
 * http_req.c.
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
static void arm_timer(struct conn *c);

static uint64_t now_ms(const struct conn *c)
{
	return uv_now(c->srv->loop);
}

/* --- requests ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static dd_http_req *req_new(struct conn *c)
{
	dd_http_req *req = dd_calloc(1, sizeof *req);
	dd_http_server *srv = c->srv;

	if (req == NULL)
		return NULL;
	req->conn = c;
	req->srv = srv;
	req->start_us = dd_now_us();
	dd_buf_init(&req->head, srv->lim.max_head_bytes);
	dd_buf_init(&req->body, srv->lim.max_body_unauth);
	dd_buf_init(&req->resp_hdrs, 8192);
	snprintf(req->rid, sizeof req->rid, "%016llx",
		 (unsigned long long)mix64(srv->rid_seed + ++srv->rid_counter));
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

static void server_check_done(dd_http_server *srv);

static void conn_handle_closed(struct conn *c)
{
	dd_http_server *srv = c->srv;

	if (--c->handles_open > 0)
		return;
	dd_buf_free(&c->in);
	dd_free(c);
	srv->live--;
	server_check_done(srv);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	dd_free(h);
	conn_handle_closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	conn_handle_closed(h->data);
}

static void conn_unlink(struct conn *c)
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
static void conn_close(struct conn *c, bool reset)
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
	conn_unlink(c);
	if (!reset || c->shut_down ||
	    uv_tcp_close_reset(c->tcp, (uv_close_cb)on_tcp_closed) != 0)
		uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void http_conn_close(struct conn *c)
{
	conn_close(c, false);
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
	if (s == NULL || uv_shutdown(s, (uv_stream_t *)c->tcp, on_shutdown)) {
		dd_free(s);
		http_conn_close(c);
		return;
	}
	c->shut_down = true;
	c->state = C_LINGER;
	c->deadline_ms = now_ms(c) + HTTP_LINGER_MS;
	arm_timer(c);
}

static void resume_reading(struct conn *c);

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
		? now_ms(c) + c->srv->lim.write_timeout_ms : 0;
	arm_timer(c);
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
		resume_reading(c);
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
		n = uv_try_write((uv_stream_t *)c->tcp, bufs, nbufs);
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
	if (uv_write(&wr->w, (uv_stream_t *)c->tcp, &b, 1, on_write)) {
		dd_free(wr);
		http_conn_close(c);
		return DD_ERR_IO;
	}
	c->write_queued += off;
	if (c->write_deadline_ms == 0) {
		c->write_deadline_ms = now_ms(c) + c->srv->lim.write_timeout_ms;
		arm_timer(c);
	}
	return DD_OK;
}

/* --- timers ----------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = now_ms(c);

	if (c->write_deadline_ms != 0 && now >= c->write_deadline_ms) {
		dd_log_at(DD_LOG_INFO, __func__, c->req ? c->req->rid : NULL,
			  "peer=%s response stalled; closing", c->peer);
		conn_close(c, true);
		return;
	}
	if (c->deadline_ms == 0 || now < c->deadline_ms) {
		arm_timer(c);
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

static void arm_timer(struct conn *c)
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
	now = now_ms(c);
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

/* What may wait unparsed: a full head plus a little pipelined slack. */
static size_t in_cap(const struct conn *c)
{
	return (size_t)c->srv->lim.max_head_bytes + 65536;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(struct conn *c)
{
	if (c->reading || c->peer_eof || c->state == C_CLOSED ||
	    c->in.len >= in_cap(c) / 2)
		return;
	if (uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) == 0)
		c->reading = true;
}

static void pause_reading(struct conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)c->tcp);
	c->reading = false;
}

static void on_peer_eof(struct conn *c)
{
	c->peer_eof = true;
	pause_reading(c);
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
		/* Only possible while a handler holds a pipelined backlog. */
		http_conn_close(c);
		return;
	}
	if (c->in.len >= in_cap(c) / 2 && c->state == C_HANDLER)
		pause_reading(c);
	conn_process(c);
}

/* --- parser callbacks ------------------------------------------------------- */

static struct conn *pconn(llhttp_t *p)
{
	return p->data;
}

static int trip(struct conn *c, int status)
{
	if (c->req != NULL && c->req->reject_status == 0)
		c->req->reject_status = status;
	return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = pconn(p);

	if (c->req == NULL)
		c->req = req_new(c);
	if (c->req == NULL)
		return HPE_USER;
	c->state = C_HEAD;
	c->head_seen = 0;
	c->deadline_ms = now_ms(c) + c->srv->lim.head_timeout_ms;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = pconn(p);

	if (dd_buf_append(&c->req->head, at, len))
		return trip(c, 414);
	return 0;
}

static int on_url_complete(llhttp_t *p)
{
	struct conn *c = pconn(p);
	dd_http_req *req = c->req;
	const char *url = dd_buf_str(&req->head);
	const char *q = memchr(url, '?', req->head.len);

	req->path_len = q ? (size_t)(q - url) : req->head.len;
	req->query_off = q ? req->path_len + 1 : req->head.len;
	if (dd_buf_append_byte(&req->head, '\0'))
		return trip(c, 414);
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = pconn(p);
	dd_http_req *req = c->req;

	if (!req->in_field) {
		if (req->nhdrs >= c->srv->lim.max_headers)
			return trip(c, 431);
		req->in_field = true;
		req->cur_name_off = req->head.len;
	}
	if (dd_buf_append(&req->head, at, len))
		return trip(c, 431);
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct conn *c = pconn(p);
	dd_http_req *req = c->req;

	req->in_field = false;
	req->cur_name_len = req->head.len - req->cur_name_off;
	/* RFC 9112 5.1: whitespace before the colon must be refused. */
	if (req->cur_name_len > 0) {
		char last = (char)req->head.data[req->head.len - 1];
		if (last == ' ' || last == '\t')
			return trip(c, 400);
	}
	if (dd_buf_append_byte(&req->head, '\0'))
		return trip(c, 431);
	req->cur_val_off = req->head.len;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = pconn(p);

	/*
	 * A value arrives in several pieces legitimately only when a read
	 * ended inside it; any other second piece is obsolete line folding,
	 * which llhttp 8.1 accepts and which hides headers from other
	 * parsers.
	 */
	if (c->req->head.len > c->req->cur_val_off &&
	    !(c->value_cut && at == c->exec_start))
		return trip(c, 400);
	c->value_cut = at + len == c->exec_end;

	if (dd_buf_append(&c->req->head, at, len))
		return trip(c, 431);
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct conn *c = pconn(p);
	dd_http_req *req = c->req;
	struct hdr *h;

	if (req->nhdrs == req->hdrs_alloc) {
		size_t next = req->hdrs_alloc ? req->hdrs_alloc * 2 : 16;
		struct hdr *n = dd_realloc(req->hdrs, next * sizeof *n);
		if (n == NULL)
			return HPE_USER;
		req->hdrs = n;
		req->hdrs_alloc = next;
	}
	h = &req->hdrs[req->nhdrs];
	h->name_off = req->cur_name_off;
	h->name_len = req->cur_name_len;
	h->val_off = req->cur_val_off;
	h->val_len = req->head.len - req->cur_val_off;
	/*
	 * NUL is never legitimate; CR or LF inside a value means obsolete
	 * line folding, which hides headers from other parsers (RFC 9112
	 * 5.2 lets a server refuse it).
	 */
	if (memchr(req->head.data + h->val_off, '\0', h->val_len) != NULL ||
	    memchr(req->head.data + h->val_off, '\r', h->val_len) != NULL ||
	    memchr(req->head.data + h->val_off, '\n', h->val_len) != NULL)
		return trip(c, 400);
	if (dd_buf_append_byte(&req->head, '\0'))
		return trip(c, 431);
	req->nhdrs++;
	return 0;
}

/* Decides the body cap; runs the route's gate (R7). 0 = go on. */
static int route_request(struct conn *c)
{
	dd_http_req *req = c->req;
	const dd_http_route *rt;
	uint64_t cap;
	int authed = 0;
	char allow[64];
	dd_err_t rc;

	rc = dd_router_match(c->srv->router, req->method_bit,
			     dd_buf_str(&req->head), req->path_len, &req->match);
	switch (rc) {
	case DD_OK:
		break;
	case DD_ERR_UNSUPPORTED:
		dd_method_allow_str(req->match.allow, allow, sizeof allow);
		dd_http_set_header(req, "Allow", allow);
		dd_http_respond_error(req, 405, "METHOD_NOT_ALLOWED",
				      "method %s not allowed here", req->method_name);
		return 1;
	case DD_ERR_NOT_FOUND:
		dd_http_respond_error(req, 404, "NOT_FOUND", "unmatched route");
		return 1;
	case DD_ERR_TOO_LARGE:
		dd_http_respond_error(req, 414, "URI_TOO_LONG", "too many path segments");
		return 1;
	case DD_ERR_NOMEM:
		dd_http_respond_error(req, 500, "INTERNAL", "internal: out of memory");
		return 1;
	default:
		dd_http_respond_error(req, 400, "BAD_REQUEST", "bad request: malformed path");
		return 1;
	}
	rt = req->match.route;
	req->route = rt;
	if (rt->gate != NULL) {
		rc = rt->gate(req, rt->ud, &authed);
		if (rc) {
			if (!req->finished)
				dd_http_respond_err(req, DD_ERR_UNAUTHORIZED, NULL);
			return 1;
		}
	}
	req->authenticated = authed != 0;
	if (req->authenticated)
		cap = rt->max_body ? rt->max_body : c->srv->lim.max_body;
	else
		cap = rt->max_body_unauth ? rt->max_body_unauth
					  : c->srv->lim.max_body_unauth;
	req->body.cap = cap;
	if ((c->parser.flags & F_CONTENT_LENGTH) && c->parser.content_length > cap) {
		dd_http_respond_error(req, 413, "PAYLOAD_TOO_LARGE",
				      "request body larger than %llu bytes",
				      (unsigned long long)cap);
		return 1;
	}
	return 0;
}

static int body_expected(const llhttp_t *p)
{
	return (p->flags & F_CHUNKED) ||
	       ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = pconn(p);
	dd_http_req *req = c->req;
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	const char *expect;

	req->method_name = llhttp_method_name((llhttp_method_t)p->method);
	req->method_bit = dd_method_bit(req->method_name);
	req->http_minor = p->http_minor;
	req->head_only = req->method_bit == DD_M_HEAD;
	c->keep_alive = llhttp_should_keep_alive(p) && !c->srv->shutting_down;
	if ((p->flags & F_TRANSFER_ENCODING) && (p->flags & F_CONTENT_LENGTH))
		return trip(c, 400);
	c->expecting_body = body_expected(p);
	c->chunk_left = 0;
	c->crlf_left = 0;
	if (route_request(c))
		return c->expecting_body ? HPE_USER : 0;
	expect = dd_http_req_header(req, "Expect");
	if (expect != NULL && body_expected(p) && p->http_minor == 1 &&
	    dd_str_ieq(expect, strlen(expect), "100-continue")) {
		uv_buf_t b = http_cbuf(cont, sizeof cont - 1);
		if (http_conn_write(c, &b, 1))
			return HPE_USER;
	}
	c->state = C_BODY;
	c->deadline_ms = now_ms(c) + c->srv->lim.body_timeout_ms;
	return 0;
}

/*
 * llhttp 8.1 skips the two bytes after chunk data without looking at
 * them, so "3\r\nabcdef" would smuggle "def". Check them ourselves; they
 * may straddle reads, so remember what is still unchecked.
 */
static int check_crlf(struct conn *c, const char *q, size_t avail)
{
	static const char crlf[] = "\r\n";
	unsigned from = 2 - c->crlf_left;
	unsigned n = c->crlf_left < avail ? c->crlf_left : (unsigned)avail;

	for (unsigned i = 0; i < n; i++) {
		if (q[i] != crlf[from + i])
			return -1;
	}
	c->crlf_left -= n;
	return 0;
}

static int on_chunk_header(llhttp_t *p)
{
	struct conn *c = pconn(p);

	c->chunk_left = p->content_length;
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = pconn(p);
	dd_err_t rc = dd_buf_append(&c->req->body, at, len);

	if (rc)
		return trip(c, rc == DD_ERR_TOO_LARGE ? 413 : 500);
	if (p->flags & F_CHUNKED) {
		c->chunk_left -= len < c->chunk_left ? len : c->chunk_left;
		if (c->chunk_left == 0) {
			c->crlf_left = 2;
			if (check_crlf(c, at + len, (size_t)(c->exec_end - (at + len))))
				return trip(c, 400);
		}
	}
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = pconn(p);

	c->deadline_ms = 0;
	c->state = C_HANDLER;
	c->expecting_body = false;
	/* Stop here: the next pipelined request waits for this response. */
	return HPE_PAUSED;
}

static void init_settings(llhttp_settings_t *s)
{
	llhttp_settings_init(s);
	s->on_message_begin = on_message_begin;
	s->on_url = on_url;
	s->on_url_complete = on_url_complete;
	s->on_header_field = on_header_field;
	s->on_header_field_complete = on_header_field_complete;
	s->on_header_value = on_header_value;
	s->on_header_value_complete = on_header_value_complete;
	s->on_headers_complete = on_headers_complete;
	s->on_body = on_body;
	s->on_chunk_header = on_chunk_header;
	s->on_message_complete = on_message_complete;
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
	c->deadline_ms = now_ms(c) + c->srv->lim.idle_timeout_ms;
	if (llhttp_get_errno(&c->parser) == HPE_PAUSED_UPGRADE)
		llhttp_resume_after_upgrade(&c->parser);
	else
		llhttp_resume(&c->parser);
	arm_timer(c);
	resume_reading(c);
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

	if (c->crlf_left > 0 && check_crlf(c, data, c->in.len)) {
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
		conn_close(c, c->close_reset);
	}
	if (c->state == C_CLOSED)
		return;
	if (c->in.len == 0)
		dd_buf_free(&c->in); /* idle connections hold no buffer */
	arm_timer(c);
}

/* --- accepting ------------------------------------------------------------ */

static void peer_name(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;

	snprintf(c->peer, sizeof c->peer, "?");
	if (uv_tcp_getpeername(c->tcp, (struct sockaddr *)&ss, &len))
		return;
	if (ss.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
	else if (ss.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
}

static void on_reject_closed(uv_handle_t *h)
{
	dd_free(h);
}

static void on_connection(uv_stream_t *ls, int status)
{
	dd_http_server *srv = ls->data;
	struct conn *c = NULL;
	uv_tcp_t *tcp;

	if (status < 0)
		return;
	tcp = dd_malloc(sizeof *tcp);
	if (tcp == NULL)
		return;
	uv_tcp_init(srv->loop, tcp);
	if (uv_accept(ls, (uv_stream_t *)tcp) || srv->shutting_down ||
	    srv->nconns >= srv->lim.max_connections)
		goto reject;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		goto reject;
	c->srv = srv;
	c->tcp = tcp;
	tcp->data = c;
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 2;
	dd_buf_init(&c->in, in_cap(c));
	llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
	c->parser.data = c;
	uv_tcp_nodelay(tcp, 1);
	peer_name(c);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->live++;
	/* A fresh connection gets the head timeout to say anything at all. */
	c->state = C_IDLE;
	c->deadline_ms = now_ms(c) + srv->lim.head_timeout_ms;
	arm_timer(c);
	resume_reading(c);
	return;
reject:
	uv_close((uv_handle_t *)tcp, on_reject_closed);
}

/* --- the server -------------------------------------------------------------- */

dd_err_t dd_http_server_new(uv_loop_t *loop, const dd_http_limits *limits,
			    const char *name, dd_http_server **out)
{
	dd_http_server *srv;
	dd_err_t rc;

	*out = NULL;
	srv = dd_calloc(1, sizeof *srv);
	if (srv == NULL)
		return DD_ERR_NOMEM;
	srv->router = dd_router_new();
	if (srv->router == NULL) {
		dd_free(srv);
		return DD_ERR_NOMEM;
	}
	rc = dd_random_bytes(&srv->rid_seed, sizeof srv->rid_seed);
	if (rc) {
		dd_router_free(srv->router);
		dd_free(srv);
		return rc;
	}
	srv->loop = loop;
	srv->lim = *limits;
	snprintf(srv->name, sizeof srv->name, "%s", name);
	init_settings(&srv->settings);
	*out = srv;
	return DD_OK;
}

void dd_http_server_free(dd_http_server *srv)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; i < srv->nroutes; i++)
		dd_free(srv->routes[i]);
	dd_free(srv->routes);
	dd_router_free(srv->router);
	dd_free(srv);
}

dd_err_t dd_http_server_route(dd_http_server *srv, const dd_http_route *route)
{
	dd_http_route *copy, **grown;
	dd_err_t rc;

	if (route->handler == NULL || route->pattern == NULL)
		return DD_ERR_INVALID;
	copy = dd_malloc(sizeof *copy);
	if (copy == NULL)
		return DD_ERR_NOMEM;
	*copy = *route;
	grown = dd_realloc(srv->routes, (srv->nroutes + 1) * sizeof *grown);
	if (grown == NULL) {
		dd_free(copy);
		return DD_ERR_NOMEM;
	}
	srv->routes = grown;
	rc = dd_router_add(srv->router, route->methods, route->pattern, copy);
	if (rc) {
		dd_free(copy);
		return rc;
	}
	srv->routes[srv->nroutes++] = copy;
	return DD_OK;
}

dd_err_t dd_http_server_listen(dd_http_server *srv, const char *addr,
			       uint16_t port)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	int r;

	if (strchr(addr, ':') != NULL)
		r = uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
	if (r)
		return DD_ERR_INVALID;
	uv_tcp_init(srv->loop, &srv->listener);
	srv->listener.data = srv;
	srv->listening = true;
	r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
	if (r)
		return r == UV_EADDRINUSE ? DD_ERR_EXISTS : DD_ERR_IO;
	if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&ss)->sin6_port
			: ((struct sockaddr_in *)&ss)->sin_port);
	return DD_OK;
}

uint16_t dd_http_server_port(const dd_http_server *srv)
{
	return srv->port;
}

size_t dd_http_server_connections(const dd_http_server *srv)
{
	return srv->nconns;
}

static void on_drain_timer_closed(uv_handle_t *h)
{
	dd_http_server *srv = h->data;

	srv->drain_timer_open = false;
	if (srv->done != NULL)
		srv->done(srv, srv->done_ud);
}

static void on_listener_closed(uv_handle_t *h)
{
	dd_http_server *srv = h->data;

	srv->listening = false;
	server_check_done(srv);
}

static void server_check_done(dd_http_server *srv)
{
	if (!srv->shutting_down || srv->listening || srv->live > 0 ||
	    !srv->drain_timer_open || uv_is_closing((uv_handle_t *)&srv->drain_timer))
		return;
	uv_close((uv_handle_t *)&srv->drain_timer, on_drain_timer_closed);
}

static void on_drain_deadline(uv_timer_t *t)
{
	dd_http_server *srv = t->data;

	while (srv->conns != NULL)
		conn_close(srv->conns, true);
}

void dd_http_server_shutdown(dd_http_server *srv, uint64_t deadline_ms,
			     void (*done)(dd_http_server *srv, void *ud),
			     void *ud)
{
	struct conn *c, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->done = done;
	srv->done_ud = ud;
	uv_timer_init(srv->loop, &srv->drain_timer);
	srv->drain_timer.data = srv;
	srv->drain_timer_open = true;
	uv_timer_start(&srv->drain_timer, on_drain_deadline, deadline_ms, 0);
	if (srv->listening && !uv_is_closing((uv_handle_t *)&srv->listener))
		uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_IDLE && c->write_queued == 0)
			http_conn_close(c);
		else
			c->keep_alive = false;
	}
	server_check_done(srv);
}

/* --- protocol switch --------------------------------------------------------- */

static void on_detached_timer_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	dd_http_server *srv = c->srv;

	dd_buf_free(&c->in);
	dd_free(c);
	srv->live--;
	server_check_done(srv);
}

/*
 * Takes the TCP stream away from the HTTP server: the connection stops
 * counting, its timer goes, and the caller owns the stream. Bytes already
 * read past the request stay in c->in for the caller to consume before
 * the timer's close callback frees c.
 */
uv_stream_t *http_conn_detach(struct conn *c)
{
	uv_stream_t *s = (uv_stream_t *)c->tcp;

	pause_reading(c);
	c->state = C_CLOSED;
	c->upgraded = true;
	conn_unlink(c);
	c->tcp = NULL;
	s->data = NULL;
	uv_close((uv_handle_t *)&c->timer, on_detached_timer_closed);
	return s;
}
