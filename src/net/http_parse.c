/*
 * http_parse.c: llhttp callbacks. They copy the request into its capped
 * buffers, enforce the head limits, route the request once its headers
 * are complete (running the route's gate before any body byte is read),
 * and close the gaps llhttp 8.1 leaves open (see check_crlf and
 * on_header_value). Part of the HTTP server module (see http.c).
 */
#include "net/http_int.h"

#include <string.h>

#include "core/alloc.h"
#include "core/strutil.h"

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
		c->req = http_req_new(c);
	if (c->req == NULL)
		return HPE_USER;
	c->state = C_HEAD;
	c->head_seen = 0;
	c->deadline_ms = http_now(c) + c->srv->lim.head_timeout_ms;
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
	/* dd_http_req_path() is the path alone, as its header promises. */
	if (q != NULL)
		req->head.data[req->path_len] = '\0';
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
	c->deadline_ms = http_now(c) + c->srv->lim.body_timeout_ms;
	return 0;
}

/*
 * llhttp 8.1 skips the two bytes after chunk data without looking at
 * them, so "3\r\nabcdef" would smuggle "def". Check them ourselves; they
 * may straddle reads, so remember what is still unchecked.
 */
int http_check_crlf(struct conn *c, const char *q, size_t avail)
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
			if (http_check_crlf(c, at + len, (size_t)(c->exec_end - (at + len))))
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

void http_parse_settings(llhttp_settings_t *s)
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

