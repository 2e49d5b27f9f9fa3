/*
 * jwks_srv.h: a one-request-per-connection HTTP server on a test's own
 * libuv loop that serves a JWKS at /jwks, or fails in a chosen way, and
 * counts requests. For tests of the JWKS cache and of the verifiers on
 * top of it. Test-only: it asserts (include it after cmocka.h) instead
 * of handling errors. Lifecycle: jsrv_listen(), jsrv_serve() a JWKS,
 * switch mode/status at will, jsrv_stop(), run the loop until open is
 * 0, free(body).
 */
#ifndef DD_TEST_JWKS_SRV_H
#define DD_TEST_JWKS_SRV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <uv.h>

typedef enum {
	JSRV_OK,      /* 200 with the body */
	JSRV_STATUS,  /* the given status with "{}" */
	JSRV_DROP,    /* close without answering */
	JSRV_BIG,     /* 200 with 100000 bytes */
	JSRV_SILENT,  /* never answer */
} jsrv_mode;

typedef struct jsrv_conn {
	uv_tcp_t tcp;
	struct jsrv *s;
	char buf[8192];
	size_t len;
	int done;
	struct jsrv_conn *next;
} jsrv_conn;

typedef struct jsrv {
	uv_tcp_t listener;
	int port;
	int listening;
	jsrv_conn *conns;
	int open;
	int hits;          /* complete requests seen */
	jsrv_mode mode;
	int status;        /* JSRV_STATUS */
	char *body;        /* JSRV_OK: owned */
} jsrv;

typedef struct jsrv_wreq {
	uv_write_t w;
	char *data;
} jsrv_wreq;

static inline void jsrv_conn_closed(uv_handle_t *h)
{
	jsrv_conn *c = h->data;
	jsrv_conn **pp = &c->s->conns;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	c->s->open--;
	free(c);
}

static inline void jsrv_conn_close(jsrv_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, jsrv_conn_closed);
}

static inline void jsrv_on_write(uv_write_t *w, int status)
{
	jsrv_wreq *wr = (jsrv_wreq *)w;

	(void)status;
	jsrv_conn_close(w->data);
	free(wr->data);
	free(wr);
}

/* Sends a whole response and closes. */
static inline void jsrv_reply(jsrv_conn *c, int status, const char *body,
			      size_t n)
{
	jsrv_wreq *wr = calloc(1, sizeof *wr);
	int hl;
	uv_buf_t b;

	assert_non_null(wr);
	wr->data = malloc(n + 256);
	assert_non_null(wr->data);
	hl = snprintf(wr->data, 256, "HTTP/1.1 %d X\r\nContent-Type: "
		      "application/json\r\nContent-Length: %zu\r\n"
		      "Connection: close\r\n\r\n", status, n);
	memcpy(wr->data + hl, body, n);
	wr->w.data = c;
	b = uv_buf_init(wr->data, (unsigned)(hl + (int)n));
	assert_int_equal(uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1,
				  jsrv_on_write), 0);
}

static inline void jsrv_respond(jsrv_conn *c)
{
	jsrv *s = c->s;
	char *big;

	s->hits++;
	switch (s->mode) {
	case JSRV_OK:
		jsrv_reply(c, 200, s->body, strlen(s->body));
		break;
	case JSRV_STATUS:
		jsrv_reply(c, s->status, "{}", 2);
		break;
	case JSRV_DROP:
		jsrv_conn_close(c);
		break;
	case JSRV_BIG:
		big = malloc(100000);
		assert_non_null(big);
		memset(big, ' ', 100000);
		memcpy(big, "{\"keys\":[]}", 11);
		jsrv_reply(c, 200, big, 100000);
		free(big);
		break;
	case JSRV_SILENT:
		break;
	}
}

static inline void jsrv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	jsrv_conn *c = h->data;

	(void)hint;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len -
						     1));
}

static inline void jsrv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	jsrv_conn *c = st->data;

	(void)b;
	if (n < 0) {
		jsrv_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (c->done || strstr(c->buf, "\r\n\r\n") == NULL)
		return;
	c->done = 1;
	assert_non_null(strstr(c->buf, "GET /jwks HTTP/1.1\r\n"));
	assert_non_null(strcasestr(c->buf, "\r\nAccept: application/"
				   "jwk-set+json"));
	jsrv_respond(c);
}

static inline void jsrv_accept(uv_stream_t *l, int status)
{
	jsrv *s = l->data;
	jsrv_conn *c;

	assert_int_equal(status, 0);
	c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->s = s;
	uv_tcp_init(l->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->conns;
	s->conns = c;
	s->open++;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	uv_read_start((uv_stream_t *)&c->tcp, jsrv_alloc, jsrv_read);
}

static inline void jsrv_listener_closed(uv_handle_t *h)
{
	((jsrv *)h->data)->open--;
}

static inline void jsrv_listen(uv_loop_t *loop, jsrv *s, int port)
{
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof got;

	uv_ip4_addr("127.0.0.1", port, &a);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->open++;
	s->listening = 1;
	assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0),
			 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64,
				   jsrv_accept), 0);
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
	s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* Stops listening (the port then refuses connections). */
static inline void jsrv_unlisten(jsrv *s)
{
	if (!s->listening)
		return;
	s->listening = 0;
	uv_close((uv_handle_t *)&s->listener, jsrv_listener_closed);
}

static inline void jsrv_stop(jsrv *s)
{
	for (jsrv_conn *c = s->conns; c != NULL; c = c->next)
		jsrv_conn_close(c);
	jsrv_unlisten(s);
}

static inline void jsrv_serve(jsrv *s, char *jwks)
{
	free(s->body);
	s->body = jwks;
	s->mode = JSRV_OK;
}

#endif
