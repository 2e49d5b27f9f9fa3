/*
 * ws_client.c: dd_ws_connect and dd_ws_connect_stream. Parses a ws://
 * URL, connects (resolving names with uv_getaddrinfo; or takes a stream
 * the caller connected, e.g. to a TLS relay, for wss://), sends the upgrade request with a fresh
 * random key, and reads the response head with llhttp in response mode
 * until the 101; what follows the head is already WebSocket data.
 *
 * The handshake state (parser, requests, header scratch) lives in its own
 * allocation, freed as soon as the connection opens.
 */
#include "net/ws.h"

#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "net/ws_int.h"

#define WS_MAX_HEAD (16u * 1024)
#define WS_MAX_HOST 253

struct ws_hs {
	llhttp_t parser;
	uv_getaddrinfo_t gai;
	uv_connect_t conn;
	dd_buf req;                 /* the request, until handed to uv */
	dd_buf field;               /* header being parsed */
	dd_buf value;
	char expect[DD_WS_ACCEPT_LEN + 1];
	size_t head_bytes;          /* response bytes before this read */
	bool gai_pending;
	bool asked_protocol;        /* extra headers named a subprotocol */
	bool upgrade_ok;
	bool connection_ok;
	bool accept_seen;
	bool accept_ok;
	bool refused;               /* an extension or protocol not asked */
};

struct ws_hs_write {
	uv_write_t req;
	dd_ws *ws;
	char *data;
};

void ws_hs_free(struct ws_hs *hs)
{
	if (hs == NULL)
		return;
	dd_buf_free(&hs->req);
	dd_buf_free(&hs->field);
	dd_buf_free(&hs->value);
	dd_free(hs);
}

int ws_hs_cancel(struct ws_hs *hs)
{
	if (!hs->gai_pending)
		return 0;
	/* If the lookup already runs, its callback still comes (ws_unref). */
	(void)uv_cancel((uv_req_t *)&hs->gai);
	return 1;
}

/* --- URL and request ----------------------------------------------------- */

struct ws_url {
	char host[WS_MAX_HOST + 1];
	char port[6];
	uint16_t port_num;
	uint16_t default_port;      /* 80 for ws://, 443 for wss:// */
	bool v6;
	const char *path;           /* into the URL: "/..." or "?..." or "" */
};

static int host_char(char c, bool v6)
{
	if (v6)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		       (c >= 'A' && c <= 'F') || c == ':' || c == '.';
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
}

/* allow_wss: the caller brings its own (TLS) stream; the URL then only
 * names the Host header and the path. */
static dd_err_t parse_url(const char *url, bool allow_wss, struct ws_url *u)
{
	const char *p, *end, *h, *h_end, *after, *q;
	struct sockaddr_in6 sin6;
	uint64_t port = 80;
	size_t n;
	dd_err_t rc;

	if (strncasecmp(url, "wss://", 6) == 0) {
		if (!allow_wss)
			return DD_ERR_UNSUPPORTED;
		port = 443;
		p = url + 6;
	} else if (strncasecmp(url, "ws://", 5) == 0) {
		p = url + 5;
	} else {
		return DD_ERR_INVALID;
	}
	u->default_port = (uint16_t)port;
	end = p + strcspn(p, "/?#");
	u->path = end;
	for (q = end; *q != '\0'; q++) {
		/* Fragments are not allowed (RFC 6455 3); nothing may break
		 * out of the request line. */
		if (*q == '#' || *q <= 0x20 || *q == 0x7f)
			return DD_ERR_INVALID;
	}
	u->v6 = *p == '[';
	if (u->v6) {
		h = p + 1;
		h_end = memchr(h, ']', (size_t)(end - h));
		if (h_end == NULL)
			return DD_ERR_INVALID;
		after = h_end + 1;
	} else {
		h = p;
		h_end = memchr(p, ':', (size_t)(end - p));
		if (h_end == NULL)
			h_end = end;
		after = h_end;
	}
	n = (size_t)(h_end - h);
	if (n == 0 || n > WS_MAX_HOST)
		return DD_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (!host_char(h[i], u->v6))
			return DD_ERR_INVALID;
	}
	if (after < end) {
		if (*after != ':')
			return DD_ERR_INVALID;
		rc = dd_parse_u64n(after + 1, (size_t)(end - after - 1), 1,
				   65535, &port);
		if (rc)
			return DD_ERR_INVALID;
	}
	memcpy(u->host, h, n);
	u->host[n] = '\0';
	u->port_num = (uint16_t)port;
	if (snprintf(u->port, sizeof u->port, "%u", u->port_num) <= 0)
		return DD_ERR_INTERNAL;
	if (u->v6 && uv_ip6_addr(u->host, u->port_num, &sin6) != 0)
		return DD_ERR_INVALID;
	return DD_OK;
}

static int tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
							     c) != NULL);
}

/* Whole "Name: value\r\n" lines, none of them one we write ourselves. */
static dd_err_t check_extra(const char *hdrs, bool *asked_protocol)
{
	static const char *const ours[] = {
		"host", "upgrade", "connection", "sec-websocket-key",
		"sec-websocket-version", "sec-websocket-extensions",
		"content-length", "transfer-encoding",
	};
	const char *line = hdrs, *eol, *colon;

	while (*line != '\0') {
		eol = strstr(line, "\r\n");
		if (eol == NULL)
			return DD_ERR_INVALID;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL || colon == line)
			return DD_ERR_INVALID;
		for (const char *c = line; c < colon; c++) {
			if (!tchar(*c))
				return DD_ERR_INVALID;
		}
		for (const char *c = colon + 1; c < eol; c++) {
			if (*c != '\t' && ((unsigned char)*c < 0x20 ||
					   *c == 0x7f))
				return DD_ERR_INVALID;
		}
		for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
			if (dd_str_ieq(line, (size_t)(colon - line), ours[i]))
				return DD_ERR_INVALID;
		}
		if (dd_str_ieq(line, (size_t)(colon - line),
			       "sec-websocket-protocol"))
			*asked_protocol = true;
		line = eol + 2;
	}
	return DD_OK;
}

static dd_err_t build_request(struct ws_hs *hs, const struct ws_url *u,
			      const char *extra)
{
	uint8_t raw[16];
	char key[25];
	dd_err_t rc;

	rc = dd_random_bytes(raw, sizeof raw);
	if (rc)
		return rc;
	if (EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw) != 24)
		return DD_ERR_CRYPTO;
	rc = dd_ws_accept_key(key, 24, hs->expect);
	if (rc)
		return rc;
	rc = dd_buf_appendf(&hs->req, "GET %s%s HTTP/1.1\r\nHost: %s%s%s",
			    u->path[0] == '/' ? "" : "/", u->path,
			    u->v6 ? "[" : "", u->host, u->v6 ? "]" : "");
	if (!rc && u->port_num != u->default_port)
		rc = dd_buf_appendf(&hs->req, ":%s", u->port);
	if (!rc)
		rc = dd_buf_appendf(&hs->req,
				    "\r\nUpgrade: websocket\r\n"
				    "Connection: Upgrade\r\n"
				    "Sec-WebSocket-Key: %s\r\n"
				    "Sec-WebSocket-Version: 13\r\n%s\r\n",
				    key, extra != NULL ? extra : "");
	return rc;
}

/* --- response ------------------------------------------------------------ */

static int hs_on_field(llhttp_t *p, const char *at, size_t len)
{
	struct ws_hs *hs = ((dd_ws *)p->data)->hs;

	return dd_buf_append(&hs->field, at, len) ? -1 : 0;
}

static int hs_on_value(llhttp_t *p, const char *at, size_t len)
{
	struct ws_hs *hs = ((dd_ws *)p->data)->hs;

	return dd_buf_append(&hs->value, at, len) ? -1 : 0;
}

static int hs_on_value_done(llhttp_t *p)
{
	struct ws_hs *hs = ((dd_ws *)p->data)->hs;
	const char *f = dd_buf_str(&hs->field);
	const char *v = dd_buf_str(&hs->value);
	size_t fn = hs->field.len, vn = hs->value.len;

	dd_str_trim(&v, &vn);
	if (dd_str_ieq(f, fn, "upgrade") && ws_has_token(v, "websocket")) {
		hs->upgrade_ok = true;
	} else if (dd_str_ieq(f, fn, "connection") &&
		   ws_has_token(v, "upgrade")) {
		hs->connection_ok = true;
	} else if (dd_str_ieq(f, fn, "sec-websocket-accept")) {
		/* A second accept header is as bad as a wrong one. */
		hs->accept_ok = !hs->accept_seen && vn == DD_WS_ACCEPT_LEN &&
				memcmp(v, hs->expect, vn) == 0;
		hs->accept_seen = true;
	} else if (dd_str_ieq(f, fn, "sec-websocket-extensions") ||
		   (dd_str_ieq(f, fn, "sec-websocket-protocol") &&
		    !hs->asked_protocol)) {
		hs->refused = true;
	}
	dd_buf_reset(&hs->field);
	dd_buf_reset(&hs->value);
	return 0;
}

/* 2: no body; llhttp stops with HPE_PAUSED_UPGRADE right after the head. */
static int hs_on_headers_done(llhttp_t *p)
{
	(void)p;
	return 2;
}

static const llhttp_settings_t hs_settings = {
	.on_header_field = hs_on_field,
	.on_header_value = hs_on_value,
	.on_header_value_complete = hs_on_value_done,
	.on_headers_complete = hs_on_headers_done,
};

static dd_err_t err_for_status(int status)
{
	switch (status) {
	case 401:
		return DD_ERR_UNAUTHORIZED;
	case 403:
		return DD_ERR_FORBIDDEN;
	case 404:
		return DD_ERR_NOT_FOUND;
	case 426:
		return DD_ERR_UNSUPPORTED;
	default:
		return DD_ERR_UPSTREAM;
	}
}

void ws_hs_feed(dd_ws *ws, const uint8_t *p, size_t n)
{
	struct ws_hs *hs = ws->hs;
	llhttp_errno_t e;
	const char *pos;
	size_t used;

	e = llhttp_execute(&hs->parser, (const char *)p, n);
	if (e == HPE_OK) {
		hs->head_bytes += n;
		if (hs->head_bytes > WS_MAX_HEAD)
			ws_finish(ws, DD_ERR_UPSTREAM);
		return;
	}
	pos = llhttp_get_error_pos(&hs->parser);
	if (e != HPE_PAUSED_UPGRADE || pos == NULL ||
	    pos < (const char *)p || pos > (const char *)p + n) {
		ws_finish(ws, DD_ERR_UPSTREAM);
		return;
	}
	used = (size_t)(pos - (const char *)p);
	if (hs->head_bytes + used > WS_MAX_HEAD) {
		ws_finish(ws, DD_ERR_UPSTREAM);
		return;
	}
	if (llhttp_get_status_code(&hs->parser) != 101) {
		ws_finish(ws, err_for_status(
				      llhttp_get_status_code(&hs->parser)));
		return;
	}
	if (llhttp_get_http_major(&hs->parser) != 1 ||
	    llhttp_get_http_minor(&hs->parser) != 1 || !hs->upgrade_ok ||
	    !hs->connection_ok || !hs->accept_ok || hs->refused) {
		ws_finish(ws, DD_ERR_UPSTREAM);
		return;
	}
	ws->connecting = false;
	ws->hs = NULL;
	ws_hs_free(hs);
	(void)uv_timer_stop(&ws->timer);
	ws->last_rx = ws->last_data = uv_now(ws->loop);
	if (ws->h.on_open != NULL)
		ws->h.on_open(ws, ws->ud);
	if (!ws->finished && used < n)
		ws_feed(ws, p + used, n - used);
	ws_schedule(ws);
}

/* --- connecting ---------------------------------------------------------- */

static void on_hs_written(uv_write_t *req, int status)
{
	struct ws_hs_write *w = req->data;
	dd_ws *ws = w->ws;

	dd_free(w->data);
	dd_free(w);
	if (status == UV_ECANCELED || ws->finished)
		return;
	ws_enter(ws);
	if (status < 0)
		ws_finish(ws, DD_ERR_IO);
	ws_leave(ws);
}

/* Hands the upgrade request to the connected stream; the pump reads the
 * answer. Failures end the ws (on_close follows). */
static void send_request(dd_ws *ws)
{
	struct ws_hs_write *w;
	char *data = NULL;
	size_t len = 0;
	uv_buf_t b;
	int r;

	w = dd_malloc(sizeof *w);
	if (w == NULL || dd_buf_steal(&ws->hs->req, &data, &len) != DD_OK) {
		dd_free(w);
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	w->ws = ws;
	w->data = data;
	w->req.data = w;
	b = uv_buf_init(data, (unsigned)len);
	r = uv_write(&w->req, ws->stream, &b, 1, on_hs_written);
	if (r != 0) {
		dd_free(data);
		dd_free(w);
		ws_finish(ws, DD_ERR_IO);
		return;
	}
	ws->stream_ready = true; /* the pump starts reading */
}

static void on_connected(uv_connect_t *req, int status)
{
	dd_ws *ws = req->data;

	if (status == UV_ECANCELED || ws->finished)
		return;
	ws_enter(ws);
	if (status < 0)
		ws_finish(ws, DD_ERR_IO);
	else
		send_request(ws);
	ws_leave(ws);
}

static void ws_connect_addr(dd_ws *ws, const struct sockaddr *sa)
{
	int r;

	ws->hs->conn.data = ws;
	r = uv_tcp_connect(&ws->hs->conn, (uv_tcp_t *)ws->stream, sa,
			   on_connected);
	if (r != 0)
		ws_finish(ws, DD_ERR_IO);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
			struct addrinfo *res)
{
	dd_ws *ws = req->data;
	const struct addrinfo *ai, *pick = NULL;

	ws->hs->gai_pending = false;
	ws_enter(ws);
	if (!ws->finished && status != 0) {
		ws_finish(ws, status == UV_ECANCELED ? DD_ERR_CANCELLED
						     : DD_ERR_NOT_FOUND);
	} else if (!ws->finished) {
		/* Our listeners bind IPv4 loopback; prefer IPv4 answers. */
		for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next) {
			if (ai->ai_family == AF_INET)
				pick = ai;
		}
		if (pick == NULL)
			pick = res;
		if (pick == NULL)
			ws_finish(ws, DD_ERR_NOT_FOUND);
		else
			ws_connect_addr(ws, pick->ai_addr);
	}
	uv_freeaddrinfo(res);
	ws_leave(ws);
	ws_unref(ws); /* may free ws */
}

static void ws_start_connect(dd_ws *ws, const struct ws_url *u)
{
	struct sockaddr_storage ss;
	struct addrinfo hints;
	int r;

	memset(&ss, 0, sizeof ss);
	if (!u->v6 &&
	    uv_ip4_addr(u->host, u->port_num, (struct sockaddr_in *)&ss) == 0) {
		ws_connect_addr(ws, (const struct sockaddr *)&ss);
		return;
	}
	if (u->v6) {
		/* parse_url checked the literal. */
		(void)uv_ip6_addr(u->host, u->port_num,
				  (struct sockaddr_in6 *)&ss);
		ws_connect_addr(ws, (const struct sockaddr *)&ss);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	ws->hs->gai.data = ws;
	r = uv_getaddrinfo(ws->loop, &ws->hs->gai, on_resolved, u->host,
			   u->port, &hints);
	if (r != 0) {
		ws_finish(ws, DD_ERR_IO);
		return;
	}
	ws->hs->gai_pending = true;
	ws->refs++;
}

/* The ws and its handshake state for url, not yet attached to a stream. */
static dd_err_t prepare(const char *url, bool allow_wss,
			const char *extra_headers, const dd_ws_opts *opts,
			const dd_ws_handlers *h, void *ud, struct ws_url *u,
			dd_ws **out)
{
	struct ws_hs *hs = NULL;
	dd_ws *ws = NULL;
	bool asked = false;
	dd_err_t rc;

	*out = NULL;
	rc = parse_url(url, allow_wss, u);
	if (!rc && extra_headers != NULL)
		rc = check_extra(extra_headers, &asked);
	if (rc)
		return rc;
	rc = ws_alloc(0, opts, h, ud, &ws);
	if (rc)
		return rc;
	hs = dd_calloc(1, sizeof *hs);
	if (hs == NULL) {
		ws_destroy(ws);
		return DD_ERR_NOMEM;
	}
	dd_buf_init(&hs->req, WS_MAX_HEAD);
	dd_buf_init(&hs->field, 256);
	dd_buf_init(&hs->value, 4096);
	hs->asked_protocol = asked;
	rc = build_request(hs, u, extra_headers);
	if (rc) {
		ws_hs_free(hs);
		ws_destroy(ws);
		return rc;
	}
	llhttp_init(&hs->parser, HTTP_RESPONSE, &hs_settings);
	hs->parser.data = ws;
	ws->hs = hs;
	*out = ws;
	return DD_OK;
}

dd_err_t dd_ws_connect(uv_loop_t *loop, const char *url,
		       const char *extra_headers, const dd_ws_opts *opts,
		       const dd_ws_handlers *h, void *ud, dd_ws **out)
{
	struct ws_url u;
	uv_tcp_t *tcp = NULL;
	dd_ws *ws = NULL;
	dd_err_t rc;

	*out = NULL;
	rc = prepare(url, false, extra_headers, opts, h, ud, &u, &ws);
	if (rc)
		return rc;
	tcp = dd_malloc(sizeof *tcp);
	if (tcp == NULL || uv_tcp_init(loop, tcp) != 0) {
		rc = tcp == NULL ? DD_ERR_NOMEM : DD_ERR_IO;
		dd_free(tcp);
		ws_destroy(ws);
		return rc;
	}
	ws->connecting = true;
	ws_attach(ws, (uv_stream_t *)tcp);
	/* transferred: from here on, failures go to on_close */
	*out = ws;
	ws_enter(ws);
	ws_arm(ws, ws->o.handshake_timeout_ms);
	ws_start_connect(ws, &u);
	ws_leave(ws);
	return DD_OK;
}

dd_err_t dd_ws_connect_stream(uv_stream_t *stream, const char *url,
			      const char *extra_headers,
			      const dd_ws_opts *opts,
			      const dd_ws_handlers *h, void *ud, dd_ws **out)
{
	struct ws_url u;
	dd_ws *ws = NULL;
	dd_err_t rc;

	*out = NULL;
	rc = prepare(url, true, extra_headers, opts, h, ud, &u, &ws);
	if (rc)
		return rc;
	ws->connecting = true;
	ws_attach(ws, stream);
	*out = ws;
	ws_enter(ws);
	ws_arm(ws, ws->o.handshake_timeout_ms);
	send_request(ws);
	ws_leave(ws);
	return DD_OK;
}
