/*
 * test_ws_connect_stream.c: dd_ws_connect_stream, the client handshake
 * over a stream the caller connected (what the shell client's TLS relay
 * uses for wss://): the request names the URL's host (port only when not
 * the scheme's default) and path, a 101 opens, a refusal maps to its
 * error, a bad URL leaves the stream with the caller, and dd_ws_connect
 * itself still refuses wss://.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ws_harness.h"

static int c_opened(void *arg)
{
	return ((rec *)arg)->opens > 0;
}

static void free_handle(uv_handle_t *h)
{
	dd_free(h);
}

/* A TCP connection to the fake server, as a dd_malloc'd uv stream. */
static uv_stream_t *dial(fsrv *s)
{
	struct sockaddr_in a;
	uv_tcp_t *t = dd_malloc(sizeof *t);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_non_null(t);
	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(s->port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(uv_tcp_init(&s->loop, t), 0);
	assert_int_equal(uv_tcp_open(t, fd), 0);
	return (uv_stream_t *)t;
}

static void handshake(const char *url, const char *line, const char *host)
{
	char acc[DD_WS_ACCEPT_LEN + 1], resp[256];
	dd_ws *ws = NULL;
	fsrv s;
	rec r;
	int len;

	memset(&r, 0, sizeof r);
	fsrv_open(&s);
	assert_int_equal(dd_ws_connect_stream(dial(&s), url, NULL, NULL,
					      &h_handlers, &r, &ws), DD_OK);
	assert_true(spin(&s.loop, NULL, c_head, &s));
	assert_non_null(strstr(s.in, line));
	assert_non_null(strstr(s.in, host));
	fsrv_accept(&s, acc);
	len = snprintf(resp, sizeof resp,
		       "HTTP/1.1 101 Switching Protocols\r\n"
		       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
	fsrv_send(&s, resp, (size_t)len);
	assert_true(spin(&s.loop, NULL, c_opened, &r));
	s.in_len = 0;
	assert_int_equal(dd_ws_send(ws, DD_WS_BINARY, "\x01", 1), DD_OK);
	assert_int_equal(dd_ws_close(ws, 1000, NULL), DD_OK);
	close(s.cfd);
	s.cfd = -1;
	assert_true(spin(&s.loop, NULL, c_closed, &r));
	assert_int_equal(fsrv_close(&s), 0);
	rec_free(&r);
}

static void wss_default_port(void **state)
{
	(void)state;
	handshake("wss://agent.example.com/noise/ws",
		  "GET /noise/ws HTTP/1.1\r\n", "\r\nHost: agent.example.com\r\n");
}

static void wss_other_port_and_ws(void **state)
{
	(void)state;
	handshake("wss://agent.example.com:8443/x?y=1", "GET /x?y=1 HTTP/1.1\r\n",
		  "\r\nHost: agent.example.com:8443\r\n");
	handshake("ws://10.0.0.1/", "GET / HTTP/1.1\r\n",
		  "\r\nHost: 10.0.0.1\r\n");
}

static void refusal_and_bad_url(void **state)
{
	dd_ws *ws = NULL;
	uv_stream_t *st;
	const char resp[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	fsrv s;
	rec r;

	(void)state;
	memset(&r, 0, sizeof r);
	fsrv_open(&s);
	assert_int_equal(dd_ws_connect_stream(dial(&s), "wss://a.example/ws",
					      NULL, NULL, &h_handlers, &r, &ws),
			 DD_OK);
	assert_true(spin(&s.loop, NULL, c_head, &s));
	fsrv_send(&s, resp, sizeof resp - 1);
	assert_true(spin(&s.loop, NULL, c_closed, &r));
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.err, DD_ERR_FORBIDDEN);
	/* A bad URL: no handler runs, the stream is still ours. */
	st = dial(&s);
	assert_int_equal(dd_ws_connect_stream(st, "https://a.example/ws", NULL,
					      NULL, &h_handlers, &r, &ws),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ws_connect_stream(st, "wss://a.example:0/ws", NULL,
					      NULL, &h_handlers, &r, &ws),
			 DD_ERR_INVALID);
	uv_close((uv_handle_t *)st, free_handle);
	/* dd_ws_connect has no TLS: wss:// stays unsupported there. */
	assert_int_equal(dd_ws_connect(&s.loop, "wss://a.example/ws", NULL,
				       NULL, &h_handlers, &r, &ws),
			 DD_ERR_UNSUPPORTED);
	assert_int_equal(r.closes, 1);
	assert_int_equal(fsrv_close(&s), 0);
	rec_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wss_default_port),
		cmocka_unit_test(wss_other_port_and_ws),
		cmocka_unit_test(refusal_and_bad_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
