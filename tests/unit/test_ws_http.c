/*
 * test_ws_http.c: dd_ws_accept behind the real HTTP server. The upgrade
 * checks answer 400/426 as JSON, a good upgrade turns into a dd_ws that
 * talks to dd_ws_connect, and bytes sent right behind the request head
 * reach the WebSocket after on_open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "net/http.h"
#include "ws_harness.h"

typedef struct fix {
	uv_loop_t loop;
	dd_http_server *srv;
	uint16_t port;
	rec s;            /* server-side ws */
	int accept_rc;
	int shut;
} fix;

static void ws_route(dd_http_req *req, void *ud)
{
	fix *f = ud;

	f->s.echo = 1;
	f->accept_rc = (int)dd_ws_accept(req, NULL, &h_handlers, &f->s);
}

static void fix_open(fix *f)
{
	dd_http_limits lim = {
		.max_head_bytes = 8192, .max_headers = 64,
		.max_body = 1 << 20, .max_body_unauth = 65536,
		.head_timeout_ms = 5000, .body_timeout_ms = 5000,
		.idle_timeout_ms = 5000, .write_timeout_ms = 5000,
		.max_connections = 64, .drain_timeout_ms = 1000,
		.ws_max_message = 1 << 20,
	};
	dd_http_route route = {
		.methods = DD_M_GET, .pattern = "/ws", .handler = ws_route,
		.ud = f,
	};

	memset(f, 0, sizeof *f);
	f->accept_rc = -1;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(dd_http_server_new(&f->loop, &lim, "test", &f->srv),
			 DD_OK);
	assert_int_equal(dd_http_server_route(f->srv, &route), DD_OK);
	assert_int_equal(dd_http_server_listen(f->srv, "127.0.0.1", 0), DD_OK);
	f->port = dd_http_server_port(f->srv);
}

static void on_shut(dd_http_server *srv, void *ud)
{
	(void)srv;
	((fix *)ud)->shut = 1;
}

static int c_shut(void *arg)
{
	return ((fix *)arg)->shut;
}

static void fix_close(fix *f)
{
	if (f->s.ws != NULL)
		dd_ws_abort(f->s.ws);
	dd_http_server_shutdown(f->srv, 100, on_shut, f);
	assert_true(spin(&f->loop, NULL, c_shut, f));
	dd_http_server_free(f->srv);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	rec_free(&f->s);
}

static int c_opened(void *arg)
{
	return ((rec *)arg)->opens > 0 || ((rec *)arg)->closes > 0;
}

static int c_both(void *arg)
{
	fix *f = ((void **)arg)[0];
	rec *c = ((void **)arg)[1];

	return f->s.closes > 0 && c->closes > 0;
}

static void upgrade_and_echo(void **state)
{
	fix f;
	rec c;
	dd_ws *ws = NULL;
	char url[64];
	void *both[2] = {&f, &c};

	(void)state;
	fix_open(&f);
	memset(&c, 0, sizeof c);
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", f.port);
	assert_int_equal(dd_ws_connect(&f.loop, url, NULL, NULL, &h_handlers,
				       &c, &ws), DD_OK);
	assert_true(spin(&f.loop, NULL, c_opened, &c));
	assert_int_equal(c.opens, 1);
	assert_int_equal(f.accept_rc, DD_OK);
	assert_int_equal(f.s.opens, 1);
	assert_int_equal(dd_ws_send(ws, DD_WS_TEXT, "hello", 5), DD_OK);
	assert_true(spin(&f.loop, NULL, c_msgs1, &c));
	assert_memory_equal(c.last, "hello", 5);
	assert_int_equal(f.s.msgs, 1);
	/* upgraded connections no longer count as HTTP connections */
	assert_int_equal(dd_http_server_connections(f.srv), 0);
	assert_int_equal(dd_ws_close(ws, 1000, NULL), DD_OK);
	assert_true(spin(&f.loop, NULL, c_both, both));
	assert_int_equal(c.err, DD_OK);
	assert_int_equal(f.s.err, DD_OK);
	assert_int_equal(f.s.code, 1000);
	fix_close(&f);
	rec_free(&c);
}

/* A raw TCP client; returns the fd. */
static int raw_connect(uint16_t port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	set_nonblock(fd);
	return fd;
}

typedef struct rd {
	int fd;
	char buf[8192];
	size_t len;
	const char *want;
} rd;

static int c_read_has(void *arg)
{
	rd *r = arg;
	ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);

	if (n > 0) {
		r->len += (size_t)n;
		r->buf[r->len] = '\0';
	}
	return strstr(r->buf, r->want) != NULL;
}

static void bad_request(const char *req, const char *status,
			const char *extra)
{
	fix f;
	rd r;

	fix_open(&f);
	memset(&r, 0, sizeof r);
	r.fd = raw_connect(f.port);
	r.want = "}";
	assert_int_equal(write(r.fd, req, strlen(req)), (ssize_t)strlen(req));
	assert_true(spin(&f.loop, NULL, c_read_has, &r));
	if (strncmp(r.buf, status, strlen(status)) != 0)
		fail_msg("want %s, got: %s", status, r.buf);
	assert_non_null(strstr(r.buf, "application/json"));
	assert_non_null(strstr(r.buf, "\"code\""));
	if (extra != NULL)
		assert_non_null(strstr(r.buf, extra));
	assert_int_not_equal(f.accept_rc, DD_OK);
	assert_int_equal(f.s.opens, 0);
	close(r.fd);
	fix_close(&f);
}

static void bad_upgrades_get_json_errors(void **state)
{
	(void)state;
	bad_request("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
		    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		    "HTTP/1.1 426", "Sec-WebSocket-Version: 13\r\n");
	bad_request("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		    "Sec-WebSocket-Key: c2hvcnQ=\r\n\r\n", "HTTP/1.1 400",
		    NULL);
	bad_request("GET /ws HTTP/1.1\r\nHost: x\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		    "HTTP/1.1 400", NULL);
	bad_request("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400",
		    NULL);
}

static void frame_behind_the_head_is_kept(void **state)
{
	static const char req[] =
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		"Connection: keep-alive, Upgrade\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
	fix f;
	rd r;
	uint8_t buf[256];
	size_t n = sizeof req - 1;

	(void)state;
	fix_open(&f);
	memset(&r, 0, sizeof r);
	r.fd = raw_connect(f.port);
	memcpy(buf, req, n);
	n += mkframe(buf + n, 0x81, 1, "early", 5);
	assert_int_equal(write(r.fd, buf, n), (ssize_t)n);
	r.want = "early";
	assert_true(spin(&f.loop, NULL, c_read_has, &r));
	assert_true(strncmp(r.buf, "HTTP/1.1 101 ", 13) == 0);
	assert_non_null(strstr(r.buf, "\r\nSec-WebSocket-Accept: "
				      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_non_null(strstr(r.buf, "\r\nUpgrade: websocket\r\n"));
	assert_int_equal(f.s.opens, 1);
	assert_int_equal(f.s.msgs, 1);
	assert_int_equal(f.s.msg_before_open, 0);
	assert_memory_equal(f.s.last, "early", 5);
	close(r.fd);
	assert_true(spin(&f.loop, NULL, c_closed, &f.s));
	assert_int_equal(f.s.err, DD_ERR_CLOSED);
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(upgrade_and_echo),
		cmocka_unit_test(bad_upgrades_get_json_errors),
		cmocka_unit_test(frame_behind_the_head_is_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
