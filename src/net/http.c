/*
 * http.c: the HTTP/1.1 server: the TCP listener and adopted descriptors
 * (socketpairs, inherited sockets), accepting, routes, graceful shutdown and the protocol
 * switch. Connections live in http_conn.c, parsing in http_parse.c,
 * responses in http_resp.c and request accessors in http_req.c; they
 * share only http_int.h.
 */
#include "net/http_int.h"

#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

/* --- accepting ------------------------------------------------------------ */

static void peer_name(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;

	snprintf(c->peer, sizeof c->peer, c->is_tcp ? "?" : "unix");
	if (!c->is_tcp ||
	    uv_tcp_getpeername((uv_tcp_t *)c->stream, (struct sockaddr *)&ss, &len))
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

/* Takes a connected stream into the server; closes it on failure. */
static void conn_start(dd_http_server *srv, uv_stream_t *stream, bool is_tcp)
{
	struct conn *c = NULL;

	if (srv->shutting_down || srv->nconns >= srv->lim.max_connections)
		goto reject;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		goto reject;
	c->srv = srv;
	c->stream = stream;
	c->is_tcp = is_tcp;
	stream->data = c;
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 2;
	dd_buf_init(&c->in, http_conn_in_cap(c));
	llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
	c->parser.data = c;
	if (is_tcp)
		uv_tcp_nodelay((uv_tcp_t *)stream, 1);
	peer_name(c);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->live++;
	/* A fresh connection gets the head timeout to say anything at all. */
	c->state = C_IDLE;
	c->deadline_ms = http_now(c) + srv->lim.head_timeout_ms;
	http_conn_arm_timer(c);
	http_conn_resume_reading(c);
	return;
reject:
	uv_close((uv_handle_t *)stream, on_reject_closed);
}

static uv_stream_t *new_stream(dd_http_server *srv, bool tcp)
{
	union http_stream *h = dd_malloc(sizeof *h);

	if (h == NULL)
		return NULL;
	if (tcp)
		uv_tcp_init(srv->loop, &h->tcp);
	else
		uv_pipe_init(srv->loop, &h->pipe, 0);
	return (uv_stream_t *)h;
}

static void on_connection(uv_stream_t *ls, int status)
{
	dd_http_server *srv = ls->data;
	uv_stream_t *s;

	if (status < 0)
		return;
	s = new_stream(srv, true);
	if (s == NULL && srv->spare != NULL) {
		/*
		 * libuv stops watching a listener whose pending connection is
		 * never accepted; so under memory pressure the connection is
		 * accepted into the spare and dropped, and the spare is
		 * replaced after the next success. (Two failures in a row
		 * with no success between still stall this listener.)
		 */
		s = (uv_stream_t *)srv->spare;
		srv->spare = NULL;
		uv_tcp_init(srv->loop, (uv_tcp_t *)s);
		uv_accept(ls, s);
		uv_close((uv_handle_t *)s, on_reject_closed);
		return;
	}
	if (s == NULL)
		return;
	if (srv->spare == NULL)
		srv->spare = dd_malloc(sizeof *srv->spare);
	if (uv_accept(ls, s)) {
		uv_close((uv_handle_t *)s, on_reject_closed);
		return;
	}
	conn_start(srv, s, true);
}

dd_err_t dd_http_server_adopt(dd_http_server *srv, int fd)
{
	uv_stream_t *s = new_stream(srv, false);

	if (s == NULL)
		return DD_ERR_NOMEM;
	if (uv_pipe_open((uv_pipe_t *)s, fd)) {
		uv_close((uv_handle_t *)s, on_reject_closed);
		return DD_ERR_INVALID;
	}
	conn_start(srv, s, false);
	return DD_OK;
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
	srv->spare = dd_malloc(sizeof *srv->spare);
	if (srv->router == NULL || srv->spare == NULL) {
		dd_router_free(srv->router);
		dd_free(srv->spare);
		dd_free(srv);
		return DD_ERR_NOMEM;
	}
	rc = dd_random_bytes(&srv->rid_seed, sizeof srv->rid_seed);
	if (rc) {
		dd_router_free(srv->router);
		dd_free(srv->spare);
		dd_free(srv);
		return rc;
	}
	srv->loop = loop;
	srv->lim = *limits;
	snprintf(srv->name, sizeof srv->name, "%s", name);
	http_parse_settings(&srv->settings);
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
	dd_free(srv->spare);
	dd_free(srv);
}

dd_err_t dd_http_server_route(dd_http_server *srv, const dd_http_route *route)
{
	dd_http_route *copy, **grown;
	size_t plen;
	char *pattern;
	dd_err_t rc;

	if (route->handler == NULL || route->pattern == NULL)
		return DD_ERR_INVALID;
	/* The route and its pattern in one block, owned by the server. */
	plen = strlen(route->pattern) + 1;
	copy = dd_malloc(sizeof *copy + plen);
	if (copy == NULL)
		return DD_ERR_NOMEM;
	*copy = *route;
	pattern = (char *)(copy + 1);
	memcpy(pattern, route->pattern, plen);
	copy->pattern = pattern;
	grown = dd_realloc(srv->routes, (srv->nroutes + 1) * sizeof *grown);
	if (grown == NULL) {
		dd_free(copy);
		return DD_ERR_NOMEM;
	}
	srv->routes = grown;
	rc = dd_router_add(srv->router, route->methods, copy->pattern, copy);
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

	if (srv->listening)
		return DD_ERR_EXISTS;
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
	http_server_check_done(srv);
}

void http_server_check_done(dd_http_server *srv)
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
		http_conn_close_ex(srv->conns, true);
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
	http_server_check_done(srv);
}

/* --- protocol switch --------------------------------------------------------- */

static void on_detached_timer_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	dd_http_server *srv = c->srv;

	dd_buf_free(&c->in);
	dd_free(c);
	srv->live--;
	http_server_check_done(srv);
}

/*
 * Takes the TCP stream away from the HTTP server: the connection stops
 * counting, its timer goes, and the caller owns the stream. Bytes already
 * read past the request stay in c->in for the caller to consume before
 * the timer's close callback frees c.
 */
uv_stream_t *http_conn_detach(struct conn *c)
{
	uv_stream_t *s = c->stream;

	http_conn_pause_reading(c);
	c->state = C_CLOSED;
	c->upgraded = true;
	http_conn_unlink(c);
	c->stream = NULL;
	s->data = NULL;
	uv_close((uv_handle_t *)&c->timer, on_detached_timer_closed);
	return s;
}

