/*
 * http_resp.c: response heads and bodies, error bodies, streaming, the
 * access log and the protocol switch. Part of the HTTP server module (see
 * http.c); shares only http_int.h.
 */
#include "net/http_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

int dd_http_status_for_err(dd_err_t err)
{
	switch (err) {
	case DD_OK: return 200;
	case DD_ERR_INVALID:
	case DD_ERR_TRUNCATED:
	case DD_ERR_RANGE: return 400;
	case DD_ERR_UNAUTHORIZED: return 401;
	case DD_ERR_FORBIDDEN: return 403;
	case DD_ERR_NOT_FOUND: return 404;
	case DD_ERR_EXISTS: return 409;
	case DD_ERR_TOO_LARGE: return 413;
	case DD_ERR_BUSY: return 503;
	case DD_ERR_UPSTREAM: return 502;
	case DD_ERR_TIMEOUT: return 504;
	case DD_ERR_UNSUPPORTED: return 501;
	default: return 500;
	}
}

static const char *code_for_status(int status)
{
	switch (status) {
	case 400: return "BAD_REQUEST";
	case 401: return "UNAUTHORIZED";
	case 403: return "FORBIDDEN";
	case 404: return "NOT_FOUND";
	case 409: return "CONFLICT";
	case 413: return "PAYLOAD_TOO_LARGE";
	case 501: return "NOT_IMPLEMENTED";
	case 502: return "UPSTREAM";
	case 503: return "UNAVAILABLE";
	case 504: return "UPSTREAM_TIMEOUT";
	default: return "INTERNAL";
	}
}

static const char *date_header(dd_http_server *srv)
{
	time_t now = time(NULL);
	struct tm tm;

	if ((uint64_t)now != srv->date_sec) {
		srv->date_sec = (uint64_t)now;
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof srv->date,
			 "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
	return srv->date;
}

void http_access_log(const dd_http_req *req)
{
	char status[8], bytes[24], dur[24];
	const char *keys[] = {"srv", "method", "path", "status", "bytes",
			      "dur_us", "peer", NULL};
	const char *vals[8];
	char path[256];
	size_t n = req->path_len < sizeof path - 1 ? req->path_len : sizeof path - 1;

	if (!dd_log_enabled(DD_LOG_INFO))
		return;
	/* The path only: query strings carry OAuth codes and states. */
	memcpy(path, dd_buf_str(&req->head), n);
	path[n] = '\0';
	snprintf(status, sizeof status, "%d", req->status);
	snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)req->bytes_out);
	snprintf(dur, sizeof dur, "%llu",
		 (unsigned long long)(dd_now_us() - req->start_us));
	vals[0] = req->srv->name;
	vals[1] = req->method_name ? req->method_name : "-";
	vals[2] = n ? path : "-";
	vals[3] = status;
	vals[4] = bytes;
	vals[5] = dur;
	vals[6] = req->conn ? req->conn->peer : NULL;
	vals[7] = NULL;
	dd_log_fields(DD_LOG_INFO, "request", req->rid, keys, vals);
}

dd_err_t dd_http_set_header(dd_http_req *req, const char *name,
			    const char *value)
{
	static const char *const owned[] = {"content-length", "transfer-encoding",
					    "connection", "x-request-id", "date"};

	if (req->finished || req->streaming)
		return DD_ERR_INVALID;
	if (name[0] == '\0' || strpbrk(name, "\r\n: \t") != NULL ||
	    strpbrk(value, "\r\n") != NULL)
		return DD_ERR_INVALID;
	for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
		if (dd_str_ieq(name, strlen(name), owned[i]))
			return DD_ERR_INVALID;
	}
	return dd_buf_appendf(&req->resp_hdrs, "%s: %s\r\n", name, value);
}

static int has_resp_header(const dd_http_req *req, const char *name)
{
	const char *p = dd_buf_str(&req->resp_hdrs);
	size_t n = strlen(name);

	while (*p) {
		if (dd_str_ieq(p, n, name) && p[n] == ':')
			return 1;
		p = strstr(p, "\r\n");
		if (p == NULL)
			break;
		p += 2;
	}
	return 0;
}

/* Decimal without printf: this runs for every response. */
static dd_err_t append_u64(dd_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return dd_buf_append(b, tmp + i, sizeof tmp - i);
}

static dd_err_t append_header(dd_buf *h, const char *name, const char *value)
{
	dd_err_t rc = dd_buf_append_str(h, name);

	if (rc == DD_OK)
		rc = dd_buf_append_str(h, value);
	if (rc == DD_OK)
		rc = dd_buf_append(h, "\r\n", 2);
	return rc;
}

/*
 * Builds the status line and headers. body_len < 0 means streaming (or,
 * for 204, no length at all). The head always fits: the extra headers
 * are capped at 8 KiB.
 */
static dd_err_t build_head(dd_http_req *req, dd_buf *h, int status,
			   const char *ctype, long long body_len)
{
	struct conn *c = req->conn;
	dd_err_t rc;

	rc = dd_buf_reserve(h, 512 + req->resp_hdrs.len);
	if (rc == DD_OK)
		rc = dd_buf_append_str(h, req->http_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
	if (rc == DD_OK)
		rc = append_u64(h, (uint64_t)status);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(h, ' ');
	if (rc == DD_OK)
		rc = append_header(h, http_status_text(status), "");
	if (rc == DD_OK)
		rc = append_header(h, "Date: ", date_header(req->srv));
	if (rc == DD_OK)
		rc = append_header(h, "X-Request-Id: ", req->rid);
	if (rc == DD_OK)
		rc = append_header(h, "X-Content-Type-Options: ", "nosniff");
	if (rc == DD_OK && ctype != NULL)
		rc = append_header(h, "Content-Type: ", ctype);
	if (rc == DD_OK && !has_resp_header(req, "Cache-Control"))
		rc = append_header(h, "Cache-Control: ", "no-store");
	if (rc == DD_OK)
		rc = dd_buf_append(h, dd_buf_str(&req->resp_hdrs), req->resp_hdrs.len);
	if (rc == DD_OK && body_len >= 0) {
		rc = dd_buf_append_str(h, "Content-Length: ");
		if (rc == DD_OK)
			rc = append_u64(h, (uint64_t)body_len);
		if (rc == DD_OK)
			rc = dd_buf_append(h, "\r\n", 2);
	} else if (rc == DD_OK && req->chunked) {
		rc = append_header(h, "Transfer-Encoding: ", "chunked");
	}
	if (rc)
		return rc;
	if (c->keep_alive && req->http_minor == 0)
		return dd_buf_append_str(h, "Connection: keep-alive\r\n\r\n");
	if (!c->keep_alive)
		return dd_buf_append_str(h, "Connection: close\r\n\r\n");
	return dd_buf_append(h, "\r\n", 2);
}

/*
 * A reply sent before the request body is in cannot be followed by another
 * request on this connection: the rest of the body is still on the wire.
 */
static void note_unread_body(struct conn *c)
{
	if (c != NULL && c->expecting_body) {
		c->keep_alive = false;
		c->body_unread = true;
	}
}

/* Marks the request answered and lets the connection move on. */
static void complete(dd_http_req *req)
{
	struct conn *c = req->conn;

	req->finished = true;
	http_access_log(req);
	if (c == NULL) {
		http_req_free(req); /* the client left while we worked */
		return;
	}
	http_conn_request_done(c);
}

dd_err_t dd_http_respond(dd_http_req *req, int status, const char *ctype,
			 const void *body, size_t len)
{
	struct conn *c = req->conn;
	dd_buf head;
	uv_buf_t bufs[2];
	dd_err_t rc;

	if (req->finished || req->streaming)
		return DD_ERR_INVALID;
	req->status = status;
	if (c == NULL) {
		complete(req);
		return DD_ERR_CLOSED;
	}
	note_unread_body(c);
	/* No body for HEAD, 1xx, 204 and 304, but the length stays honest. */
	if (status == 204 || status == 304)
		len = 0;
	dd_buf_init(&head, 16384);
	rc = build_head(req, &head, status, ctype,
			status == 204 ? -2 : (long long)len);
	if (rc == DD_ERR_TOO_LARGE || rc == DD_ERR_NOMEM) {
		dd_buf_free(&head);
		c->keep_alive = false;
		http_conn_close(c);
		complete(req);
		return rc;
	}
	bufs[0] = uv_buf_init((char *)head.data, (unsigned)head.len);
	bufs[1] = http_cbuf(body, len);
	req->bytes_out = head.len + (req->head_only ? 0 : len);
	rc = http_conn_write(c, bufs, req->head_only || len == 0 ? 1 : 2);
	dd_buf_free(&head);
	complete(req);
	return rc;
}

dd_err_t dd_http_respond_json(dd_http_req *req, int status, const json_t *v)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, 64u << 20);
	rc = dd_json_append(&b, v);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(&b, '\n');
	if (rc) {
		dd_buf_free(&b);
		return dd_http_respond_error(req, 500, "INTERNAL",
					     "internal: response too large");
	}
	rc = dd_http_respond(req, status, "application/json", b.data, b.len);
	dd_buf_free(&b);
	return rc;
}

dd_err_t dd_http_respond_error(dd_http_req *req, int status, const char *code,
			       const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *v;
	dd_err_t rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	v = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (v == NULL) {
		static const char oom[] =
			"{\"code\":\"INTERNAL\",\"message\":\"internal: out of memory\"}\n";
		return dd_http_respond(req, 500, "application/json", oom,
				       sizeof oom - 1);
	}
	rc = dd_http_respond_json(req, status, v);
	json_decref(v);
	return rc;
}

dd_err_t dd_http_respond_err(dd_http_req *req, dd_err_t err, const char *detail)
{
	int status = dd_http_status_for_err(err);
	const char *code = code_for_status(status);

	if (detail != NULL && detail[0] != '\0')
		return dd_http_respond_error(req, status, code, "%s: %s",
					     dd_strerror(err), detail);
	return dd_http_respond_error(req, status, code, "%s", dd_strerror(err));
}

void http_reply_error(struct conn *c, int status, const char *code,
		      const char *message)
{
	if (c->req == NULL) {
		dd_http_req *req = dd_calloc(1, sizeof *req);
		if (req == NULL) {
			http_conn_close(c);
			return;
		}
		req->conn = c;
		req->srv = c->srv;
		req->start_us = dd_now_us();
		req->http_minor = 1;
		dd_buf_init(&req->head, 1);
		dd_buf_init(&req->body, 1);
		dd_buf_init(&req->resp_hdrs, 1);
		snprintf(req->rid, sizeof req->rid, "-");
		c->req = req;
	}
	c->keep_alive = false;
	c->state = C_HANDLER;
	dd_http_respond_error(c->req, status, code, "%s", message);
}

/* --- streaming ---------------------------------------------------------- */

dd_err_t dd_http_stream_begin(dd_http_req *req, int status, const char *ctype)
{
	struct conn *c = req->conn;
	dd_buf head;
	uv_buf_t b;
	dd_err_t rc;

	if (req->finished || req->streaming)
		return DD_ERR_INVALID;
	if (c == NULL)
		return DD_ERR_CLOSED;
	note_unread_body(c);
	req->status = status;
	req->streaming = true;
	req->chunked = req->http_minor >= 1;
	if (!req->chunked)
		c->keep_alive = false; /* HTTP/1.0: the close ends the body */
	dd_buf_init(&head, 16384);
	rc = build_head(req, &head, status, ctype, -1);
	if (rc == DD_OK) {
		b = uv_buf_init((char *)head.data, (unsigned)head.len);
		req->bytes_out += head.len;
		rc = http_conn_write(c, &b, 1);
	}
	dd_buf_free(&head);
	return rc;
}

dd_err_t dd_http_stream_write(dd_http_req *req, const void *data, size_t len)
{
	struct conn *c = req->conn;
	char hdr[24];
	uv_buf_t bufs[3];
	dd_err_t rc;

	if (!req->streaming || req->finished)
		return DD_ERR_INVALID;
	if (c == NULL || c->state == C_CLOSED)
		return DD_ERR_CLOSED;
	if (len == 0 || req->head_only)
		return DD_OK;
	if (req->chunked) {
		snprintf(hdr, sizeof hdr, "%zx\r\n", len);
		bufs[0] = uv_buf_init(hdr, (unsigned)strlen(hdr));
		bufs[1] = http_cbuf(data, len);
		bufs[2] = http_cbuf("\r\n", 2);
		rc = http_conn_write(c, bufs, 3);
	} else {
		bufs[0] = http_cbuf(data, len);
		rc = http_conn_write(c, bufs, 1);
	}
	if (rc)
		return rc;
	req->bytes_out += len;
	return c->write_queued > HTTP_WRITE_HIGH ? DD_ERR_BUSY : DD_OK;
}

void dd_http_stream_on_drain(dd_http_req *req, void (*cb)(void *ud), void *ud)
{
	req->drain_cb = cb;
	req->drain_ud = ud;
}

dd_err_t dd_http_stream_end(dd_http_req *req)
{
	struct conn *c = req->conn;
	uv_buf_t b = http_cbuf("0\r\n\r\n", 5);
	dd_err_t rc = DD_OK;

	if (!req->streaming || req->finished)
		return DD_ERR_INVALID;
	req->drain_cb = NULL;
	if (c != NULL && c->state != C_CLOSED && req->chunked && !req->head_only)
		rc = http_conn_write(c, &b, 1);
	complete(req);
	return rc;
}

/* --- protocol switch ------------------------------------------------------ */

dd_err_t dd_http_upgrade(dd_http_req *req, const char *extra_headers,
			 dd_http_upgrade_cb cb, void *ud)
{
	struct conn *c = req->conn;
	dd_buf head;
	uv_stream_t *s;
	uv_buf_t b;
	dd_err_t rc;
	int n;

	if (req->finished || req->streaming || strstr(extra_headers, "\r\n\r\n"))
		return DD_ERR_INVALID;
	if (c == NULL || c->state == C_CLOSED)
		return DD_ERR_CLOSED;
	/* Earlier pipelined responses still queued would outlive the conn. */
	if (c->write_queued > 0)
		return DD_ERR_BUSY;
	dd_buf_init(&head, 16384);
	rc = dd_buf_appendf(&head, "HTTP/1.1 101 Switching Protocols\r\n"
				   "X-Request-Id: %s\r\n%s\r\n",
			    req->rid, extra_headers);
	if (rc) {
		dd_buf_free(&head);
		return rc;
	}
	b = uv_buf_init((char *)head.data, (unsigned)head.len);
	n = uv_try_write(c->stream, &b, 1);
	if (n != (int)head.len) {
		/* A fresh socket takes a few hundred bytes; anything else is dead. */
		dd_buf_free(&head);
		http_conn_close(c);
		complete(req);
		return DD_ERR_IO;
	}
	req->status = 101;
	req->bytes_out = head.len;
	dd_buf_free(&head);
	req->finished = true;
	http_access_log(req);
	c->req = NULL;
	s = http_conn_detach(c);
	cb(s, c->in.data, c->in.len, ud);
	http_req_free(req);
	return DD_OK;
}
