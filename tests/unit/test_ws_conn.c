/*
 * test_ws_conn.c: the WebSocket module, connection level. Two dd_ws
 * talking to each other, backpressure and drain, keepalive and idle
 * timeouts, read pausing, the client (masking, dd_ws_connect against a
 * hand-written server on loopback) and the memory an idle connection
 * costs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "ws_harness.h"

/* ---- two dd_ws on one socketpair ---- */

typedef struct duo {
	uv_loop_t loop;
	dd_ws *srv, *cli;
	rec s, c;
} duo;

static duo *duo_new(const dd_ws_opts *so, const dd_ws_opts *co)
{
	duo *d = calloc(1, sizeof *d);
	int sv[2];

	if (d == NULL || uv_loop_init(&d->loop) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	if (dd_ws_from_stream(h_pipe(&d->loop, sv[0]), 1, NULL, 0, so,
			      &h_handlers, &d->s, &d->srv) != DD_OK ||
	    dd_ws_from_stream(h_pipe(&d->loop, sv[1]), 0, NULL, 0, co,
			      &h_handlers, &d->c, &d->cli) != DD_OK)
		abort();
	d->s.ws = d->srv;
	d->c.ws = d->cli;
	return d;
}

static int duo_free(duo *d)
{
	int rc;

	if (d->s.ws != NULL)
		dd_ws_abort(d->s.ws);
	if (d->c.ws != NULL)
		dd_ws_abort(d->c.ws);
	(void)uv_run(&d->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&d->loop);
	rec_free(&d->s);
	rec_free(&d->c);
	free(d);
	return rc;
}

static int c_msgs2(void *arg)
{
	return ((rec *)arg)->msgs >= 2;
}

static int c_msgs3(void *arg)
{
	return ((rec *)arg)->msgs >= 3;
}

static int c_both_closed(void *arg)
{
	duo *d = arg;

	return d->s.closes > 0 && d->c.closes > 0;
}

static void echo_text_binary_and_close(void **state)
{
	duo *d = duo_new(NULL, NULL);
	size_t big = 200 * 1024;
	uint8_t *buf = malloc(big);

	(void)state;
	d->s.echo = 1;
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(dd_ws_send(d->cli, DD_WS_TEXT, "h\xc3\xa9llo", 6),
			 DD_OK);
	assert_true(spin(&d->loop, NULL, c_msgs1, &d->c));
	assert_int_equal(d->c.op, DD_WS_TEXT);
	assert_int_equal(d->c.last_len, 6);
	assert_memory_equal(d->c.last, "h\xc3\xa9llo", 6);
	/* larger than the 64 KiB read buffer: many reads, one message */
	assert_int_equal(dd_ws_send(d->cli, DD_WS_BINARY, buf, big), DD_OK);
	assert_true(spin(&d->loop, NULL, c_msgs2, &d->c));
	assert_int_equal(d->c.op, DD_WS_BINARY);
	assert_int_equal(d->c.last_len, big);
	assert_memory_equal(d->c.last, buf, big);
	assert_int_equal(dd_ws_send(d->cli, DD_WS_BINARY, NULL, 0), DD_OK);
	assert_true(spin(&d->loop, NULL, c_msgs3, &d->c));
	assert_int_equal(d->c.last_len, 0);
	/* client-initiated closing handshake, both sides end cleanly */
	assert_int_equal(dd_ws_close(d->cli, 1000, "bye"), DD_OK);
	assert_true(spin(&d->loop, NULL, c_both_closed, d));
	assert_int_equal(d->s.err, DD_OK);
	assert_int_equal(d->s.code, 1000);
	assert_string_equal(d->s.reason, "bye");
	assert_int_equal(d->c.err, DD_OK);
	assert_int_equal(d->c.code, 1000);
	assert_int_equal(duo_free(d), 0);
	free(buf);
}

static void too_large_to_send(void **state)
{
	dd_ws_opts o;
	duo *d;
	uint8_t buf[200] = {0};

	(void)state;
	dd_ws_opts_default(&o);
	o.max_message = 100;
	d = duo_new(&o, &o);
	assert_int_equal(dd_ws_send(d->cli, DD_WS_BINARY, buf, 101),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_ws_send(d->cli, DD_WS_BINARY, buf, 100), DD_OK);
	assert_true(spin(&d->loop, NULL, c_msgs1, &d->s));
	assert_int_equal(duo_free(d), 0);
}

static void keepalive_with_live_peer(void **state)
{
	dd_ws_opts o;
	duo *d;

	(void)state;
	dd_ws_opts_default(&o);
	o.ping_interval_ms = 10;
	o.ping_timeout_ms = 40;
	d = duo_new(&o, NULL);
	/* the client's pongs keep it alive through many ping rounds */
	spin_for(&d->loop, NULL, 250);
	assert_int_equal(d->s.closes, 0);
	assert_int_equal(d->c.closes, 0);
	assert_int_equal(duo_free(d), 0);
}

/* ---- backpressure ---- */

static int c_drained(void *arg)
{
	return ((rec *)arg)->drains > 0 || ((rec *)arg)->closes > 0;
}

static void backpressure_busy_then_drain(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t msg[16384], b0, mkey[4];
	uint8_t *pl = malloc(sizeof msg);
	size_t accepted = 0, off = 0, plen, used, frames = 0;
	dd_err_t rc = DD_OK;
	int masked = 0;

	(void)state;
	dd_ws_opts_default(&o);
	o.high_water = 64 * 1024;
	o.low_water = 16 * 1024;
	p = pair_new(1, &o);
	/* nobody reads: the kernel fills, then our queue, then BUSY */
	for (int i = 0; i < 10000; i++) {
		memset(msg, (int)(accepted & 0xff), sizeof msg);
		rc = dd_ws_send(p->ws, DD_WS_BINARY, msg, sizeof msg);
		if (rc != DD_OK)
			break;
		accepted++;
	}
	assert_int_equal(rc, DD_ERR_BUSY);
	assert_true(dd_ws_queued(p->ws) > o.high_water);
	/* bounded: high water plus at most one message */
	assert_true(dd_ws_queued(p->ws) <= o.high_water + sizeof msg + 16);
	assert_int_equal(p->r.drains, 0);
	/* BUSY again without progress, and still only one drain later */
	assert_int_equal(dd_ws_send(p->ws, DD_WS_BINARY, msg, sizeof msg),
			 DD_ERR_BUSY);
	assert_true(spin(&p->loop, p, c_drained, &p->r));
	assert_int_equal(p->r.drains, 1);
	assert_true(p->r.queued_at_drain <= o.low_water);
	spin_for(&p->loop, p, 20);
	/* everything accepted arrived, in order, nothing refused did */
	while ((used = parse_frame(p->in + off, p->in_len - off, &b0, &masked,
				   mkey, pl, &plen)) > 0) {
		assert_int_equal(b0, 0x82);
		assert_int_equal(plen, sizeof msg);
		assert_int_equal(pl[0], (uint8_t)(frames & 0xff));
		assert_int_equal(pl[plen - 1], (uint8_t)(frames & 0xff));
		frames++;
		off += used;
	}
	assert_int_equal(off, p->in_len);
	assert_int_equal(frames, accepted);
	assert_int_equal(p->r.drains, 1);
	assert_int_equal(dd_ws_send(p->ws, DD_WS_BINARY, msg, 1), DD_OK);
	assert_int_equal(pair_free(p), 0);
	free(pl);
}

static void abort_inside_on_drain(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t msg[16384] = {0};

	(void)state;
	dd_ws_opts_default(&o);
	o.high_water = 32 * 1024;
	o.low_water = 0;
	p = pair_new(1, &o);
	p->r.abort_in_drain = 1;
	while (dd_ws_send(p->ws, DD_WS_BINARY, msg, sizeof msg) == DD_OK)
		;
	assert_true(spin(&p->loop, p, c_closed, &p->r));
	assert_int_equal(p->r.drains, 1);
	assert_int_equal(p->r.queued_at_drain, 0);
	assert_int_equal(p->r.err, DD_ERR_CANCELLED);
	assert_int_equal(pair_free(p), 0);
}

/* ---- timers and pausing ---- */

static void ping_timeout_aborts_silent_peer(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t b0, mkey[4], pl[8];
	size_t plen = 0;
	int masked = 0;

	(void)state;
	dd_ws_opts_default(&o);
	o.ping_interval_ms = 20;
	o.ping_timeout_ms = 40;
	p = pair_new(1, &o);
	assert_true(spin(&p->loop, p, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_ERR_TIMEOUT);
	assert_int_equal(p->r.code, 1006);
	assert_true(parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl,
				&plen) > 0);
	assert_int_equal(b0, 0x89);
	assert_int_equal(pair_free(p), 0);
}

static void idle_timeout_closes_1001(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t f[16], b0, mkey[4], pl[16];
	size_t n, plen = 0;
	int masked = 0;

	(void)state;
	dd_ws_opts_default(&o);
	o.idle_timeout_ms = 40;
	p = pair_new(1, &o);
	spin_for(&p->loop, p, 120);
	assert_true(parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl,
				&plen) > 0);
	assert_int_equal(b0, 0x88);
	assert_memory_equal(pl, "\x03\xe9" "idle", 6);
	n = mkframe(f, 0x88, 1, "\x03\xe9", 2);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_ERR_TIMEOUT);
	assert_int_equal(p->r.code, 1001);
	assert_int_equal(pair_free(p), 0);
}

static void read_pause_and_resume(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t f[32];
	size_t n;

	(void)state;
	dd_ws_opts_default(&o);
	o.ping_interval_ms = 10;
	o.ping_timeout_ms = 20;
	p = pair_new(1, &o);
	dd_ws_set_read_paused(p->ws, 1);
	n = mkframe(f, 0x81, 1, "hi", 2);
	(void)raw_write(p, f, n);
	/* paused for several ping timeouts: not a dead peer */
	spin_for(&p->loop, p, 100);
	assert_int_equal(p->r.msgs, 0);
	assert_int_equal(p->r.closes, 0);
	dd_ws_set_read_paused(p->ws, 0);
	assert_true(spin(&p->loop, p, c_msgs1, &p->r));
	assert_memory_equal(p->r.last, "hi", 2);
	assert_int_equal(pair_free(p), 0);
}

static void max_message_raised_after_auth(void **state)
{
	dd_ws_opts o;
	pair *p;
	uint8_t *f = malloc(1024), big[600] = {0};
	size_t n;

	(void)state;
	dd_ws_opts_default(&o);
	o.max_message = 100;
	p = pair_new(1, &o);
	dd_ws_set_max_message(p->ws, 1000);
	n = mkframe(f, 0x82, 1, big, 500);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_msgs1, &p->r));
	assert_int_equal(p->r.last_len, 500);
	dd_ws_set_max_message(p->ws, 100);
	n = mkframe(f, 0x82, 1, big, 200);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.code, 1009);
	assert_int_equal(p->r.err, DD_ERR_TOO_LARGE);
	assert_int_equal(pair_free(p), 0);
	free(f);
}

/* ---- the client ---- */

static void client_frames_are_masked(void **state)
{
	pair *p = pair_new(0, NULL);
	uint8_t b0, k1[4], k2[4], pl[64], f[16];
	size_t plen = 0, used, n;
	int masked = 0;

	(void)state;
	assert_int_equal(dd_ws_send(p->ws, DD_WS_TEXT, "hello", 5), DD_OK);
	assert_int_equal(dd_ws_send(p->ws, DD_WS_TEXT, "hello", 5), DD_OK);
	spin_for(&p->loop, p, 20);
	used = parse_frame(p->in, p->in_len, &b0, &masked, k1, pl, &plen);
	assert_true(used > 0);
	assert_true(masked);
	assert_int_equal(b0, 0x81);
	assert_memory_equal(pl, "hello", 5);
	/* on the wire the payload is not the plain text */
	assert_memory_not_equal(p->in + 6, "hello", 5);
	assert_true(parse_frame(p->in + used, p->in_len - used, &b0, &masked,
				k2, pl, &plen) > 0);
	assert_true(masked);
	assert_memory_equal(pl, "hello", 5);
	assert_memory_not_equal(k1, k2, 4); /* fresh key per frame */
	/* a server must not mask: the client fails the connection */
	n = mkframe(f, 0x81, 1, "x", 1);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.code, 1002);
	assert_int_equal(pair_free(p), 0);
}

static void connect_handshake_and_traffic(void **state)
{
	fsrv s;
	rec r;
	dd_ws *ws = NULL;
	char url[64], acc[DD_WS_ACCEPT_LEN + 1], resp[256];
	uint8_t f[64], b0, mkey[4], pl[64];
	size_t n, plen = 0;
	int masked = 0, len;

	(void)state;
	memset(&r, 0, sizeof r);
	fsrv_open(&s);
	snprintf(url, sizeof url, "ws://localhost:%u/path?x=1", s.port);
	assert_int_equal(dd_ws_connect(&s.loop, url,
				       "Authorization: Bearer t0k\r\n", NULL,
				       &h_handlers, &r, &ws), DD_OK);
	assert_true(spin(&s.loop, NULL, c_head, &s));
	assert_non_null(strstr(s.in, "GET /path?x=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(s.in, "\r\nUpgrade: websocket\r\n"));
	assert_non_null(strstr(s.in, "\r\nConnection: Upgrade\r\n"));
	assert_non_null(strstr(s.in, "\r\nSec-WebSocket-Version: 13\r\n"));
	assert_non_null(strstr(s.in, "\r\nAuthorization: Bearer t0k\r\n"));
	assert_non_null(strstr(s.in, "\r\nHost: localhost:"));
	fsrv_accept(&s, acc);
	/* the 101 and a first frame in one write: leftover after the head */
	len = snprintf(resp, sizeof resp,
		       "HTTP/1.1 101 Switching Protocols\r\n"
		       "upgrade: WebSocket\r\nConnection: upgrade\r\n"
		       "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
	n = mkframe((uint8_t *)resp + len, 0x81, 0, "welcome", 7);
	fsrv_send(&s, resp, (size_t)len + n);
	assert_true(spin(&s.loop, NULL, c_msgs1, &r));
	assert_int_equal(r.opens, 1);
	assert_int_equal(r.msg_before_open, 0);
	assert_memory_equal(r.last, "welcome", 7);
	s.in_len = 0;
	assert_int_equal(dd_ws_send(ws, DD_WS_BINARY, "\x01\x02", 2), DD_OK);
	spin_for(&s.loop, NULL, 20);
	fsrv_poll(&s);
	assert_true(parse_frame((uint8_t *)s.in, s.in_len, &b0, &masked, mkey,
				pl, &plen) > 0);
	assert_true(masked);
	assert_memory_equal(pl, "\x01\x02", 2);
	/* the server closes; the client echoes and half-closes */
	s.in_len = 0;
	n = mkframe(f, 0x88, 0, "\x03\xe8", 2);
	fsrv_send(&s, f, n);
	assert_true(spin(&s.loop, NULL, c_fsrv_eof, &s));
	assert_true(parse_frame((uint8_t *)s.in, s.in_len, &b0, &masked, mkey,
				pl, &plen) > 0);
	assert_int_equal(b0, 0x88);
	assert_true(masked);
	close(s.cfd);
	s.cfd = -1;
	assert_true(spin(&s.loop, NULL, c_closed, &r));
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(r.code, 1000);
	assert_int_equal(fsrv_close(&s), 0);
	rec_free(&r);
}

/* One failed handshake: resp is the server's answer (NULL: none). */
static void connect_fails(const char *resp, int good_accept, dd_err_t want)
{
	dd_ws_opts o;
	fsrv s;
	rec r;
	dd_ws *ws = NULL;
	char url[64], acc[DD_WS_ACCEPT_LEN + 1], buf[512];
	const char *at;
	int len;

	memset(&r, 0, sizeof r);
	dd_ws_opts_default(&o);
	o.handshake_timeout_ms = 100;
	fsrv_open(&s);
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/", s.port);
	assert_int_equal(dd_ws_connect(&s.loop, url, NULL, &o, &h_handlers, &r,
				       &ws), DD_OK);
	assert_true(spin(&s.loop, NULL, c_head, &s));
	if (resp != NULL) {
		fsrv_accept(&s, acc);
		if (!good_accept)
			acc[0] = acc[0] == 'A' ? 'B' : 'A';
		/* "%s" in resp stands for the accept value */
		at = strstr(resp, "%s");
		assert_non_null(at);
		len = snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - resp),
			       resp, acc, at + 2);
		fsrv_send(&s, buf, (size_t)len);
	}
	assert_true(spin(&s.loop, NULL, c_closed, &r));
	if (r.err != want)
		fail_msg("want %s got %s for %s", dd_errname(want),
			 dd_errname(r.err), resp ? resp : "(silence)");
	assert_int_equal(r.opens, 0);
	assert_int_equal(r.code, 1006);
	assert_int_equal(fsrv_close(&s), 0);
	rec_free(&r);
}

static void connect_rejects_bad_answers(void **state)
{
	(void)state;
	connect_fails("HTTP/1.1 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		      "Sec-WebSocket-Accept: %s\r\n\r\n", 0, DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.1 101 Switching Protocols\r\n"
		      "Connection: Upgrade\r\n"
		      "Sec-WebSocket-Accept: %s\r\n\r\n", 1, DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.1 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\n"
		      "Sec-WebSocket-Accept: %s\r\n\r\n", 1, DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.1 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n%s", 1,
		      DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.1 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		      "Sec-WebSocket-Accept: %s\r\n"
		      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		      1, DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.0 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		      "Sec-WebSocket-Accept: %s\r\n\r\n", 1, DD_ERR_UPSTREAM);
	connect_fails("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
		      "X-Ignored: %s\r\n\r\n", 1, DD_ERR_UNAUTHORIZED);
	connect_fails("HTTP/1.1 403 Forbidden\r\nX: %s\r\n\r\n", 1,
		      DD_ERR_FORBIDDEN);
	connect_fails("HTTP/1.1 426 Upgrade Required\r\nX: %s\r\n\r\n", 1,
		      DD_ERR_UNSUPPORTED);
	connect_fails("garbage %s\r\n\r\n", 1, DD_ERR_UPSTREAM);
	connect_fails(NULL, 1, DD_ERR_TIMEOUT);
}

static void connect_argument_checks(void **state)
{
	static const struct {
		const char *url, *hdrs;
		dd_err_t rc;
	} c[] = {
		{"wss://example.com/", NULL, DD_ERR_UNSUPPORTED},
		{"http://127.0.0.1/", NULL, DD_ERR_INVALID},
		{"ws://", NULL, DD_ERR_INVALID},
		{"ws://:80/", NULL, DD_ERR_INVALID},
		{"ws://host:0/", NULL, DD_ERR_INVALID},
		{"ws://host:65536/", NULL, DD_ERR_INVALID},
		{"ws://host:8x/", NULL, DD_ERR_INVALID},
		{"ws://user@host/", NULL, DD_ERR_INVALID},
		{"ws://host/a b", NULL, DD_ERR_INVALID},
		{"ws://host/a\r\nX: y", NULL, DD_ERR_INVALID},
		{"ws://host/#frag", NULL, DD_ERR_INVALID},
		{"ws://[::1/", NULL, DD_ERR_INVALID},
		{"ws://[zz::1]/", NULL, DD_ERR_INVALID},
		{"ws://host/", "X-A: b", DD_ERR_INVALID},
		{"ws://host/", "X-A: b\nX-B: c\r\n", DD_ERR_INVALID},
		{"ws://host/", "Host: other\r\n", DD_ERR_INVALID},
		{"ws://host/", "sec-websocket-key: x\r\n", DD_ERR_INVALID},
		{"ws://host/", ": empty\r\n", DD_ERR_INVALID},
		{"ws://host/", "Bad Name: x\r\n", DD_ERR_INVALID},
	};
	uv_loop_t loop;
	dd_ws_opts bad;
	rec r;
	dd_ws *ws = NULL;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(uv_loop_init(&loop), 0);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		dd_err_t rc = dd_ws_connect(&loop, c[i].url, c[i].hdrs, NULL,
					    &h_handlers, &r, &ws);

		if (rc != c[i].rc)
			fail_msg("case %zu (%s): %s", i, c[i].url,
				 dd_errname(rc));
		assert_null(ws);
	}
	dd_ws_opts_default(&bad);
	bad.low_water = bad.high_water + 1;
	assert_int_equal(dd_ws_connect(&loop, "ws://127.0.0.1/", NULL, &bad,
				       &h_handlers, &r, &ws), DD_ERR_INVALID);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.closes, 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void connect_refused_and_cancelled(void **state)
{
	fsrv s;
	rec r;
	dd_ws *ws = NULL;
	char url[64];
	uint16_t port;

	(void)state;
	/* a port that was just free: nothing listens there now */
	fsrv_open(&s);
	port = s.port;
	assert_int_equal(fsrv_close(&s), 0);
	memset(&r, 0, sizeof r);
	assert_int_equal(uv_loop_init(&s.loop), 0);
	snprintf(url, sizeof url, "ws://127.0.0.1:%u/", port);
	assert_int_equal(dd_ws_connect(&s.loop, url, NULL, NULL, &h_handlers,
				       &r, &ws), DD_OK);
	assert_true(spin(&s.loop, NULL, c_closed, &r));
	assert_int_equal(r.err, DD_ERR_IO);
	/* aborted while the name is being looked up */
	memset(&r, 0, sizeof r);
	snprintf(url, sizeof url, "ws://localhost:%u/", port);
	assert_int_equal(dd_ws_connect(&s.loop, url, NULL, NULL, &h_handlers,
				       &r, &ws), DD_OK);
	assert_int_equal(dd_ws_send(ws, DD_WS_TEXT, "early", 5), DD_ERR_BUSY);
	dd_ws_abort(ws);
	assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.err, DD_ERR_CANCELLED);
	assert_int_equal(r.drains, 0);
	assert_int_equal(uv_loop_close(&s.loop), 0);
}

/* ---- allocation failures (meaningful in -Dtorture builds) ---- */

/*
 * A whole connection (a 300 KB echo that needs uv_write, a ping, the
 * closing handshake) with the nth allocation failing, for every n the
 * scenario reaches: it must end through on_close, once, with nothing
 * leaked and no handle left on the loop.
 */
static void torture_connection(void **state)
{
	size_t big = 300 * 1024, n = 0;
	uint8_t *msg = calloc(1, big), *f = malloc(big + 64);
	unsigned long nth, count, tried = 0;

	(void)state;
	n += mkframe(f + n, 0x82, 1, msg, big);
	n += mkframe(f + n, 0x89, 1, "p", 1);
	n += mkframe(f + n, 0x88, 1, "\x03\xe8", 2);
	for (nth = 1; nth < 2000; nth++) {
		pair *p = pair_new(1, NULL);
		uint64_t end;

		p->r.echo = 1;
		dd_alloc_fail_at(nth);
		(void)raw_write(p, f, n);
		end = dd_now_ms() + 300;
		while (p->r.closes == 0 && dd_now_ms() < end) {
			(void)uv_run(&p->loop, UV_RUN_NOWAIT);
			pair_drain_raw(p);
			if (p->raw_eof && p->raw >= 0) {
				close(p->raw);
				p->raw = -1;
			}
			(void)poll(NULL, 0, 1);
		}
		count = dd_alloc_count();
		dd_alloc_fail_at(0);
		tried++;
		assert_int_equal(pair_free(p), 0);
		if (count < nth)
			break;
	}
	print_message("connection allocation failure points: %lu\n", tried);
	free(msg);
	free(f);
}

/* The client side: connect, handshake, a message, the server hangs up. */
static void torture_connect(void **state)
{
	static const char head[] = "HTTP/1.1 101 OK\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: ";
	unsigned long nth, count, tried = 0;

	(void)state;
	for (nth = 1; nth < 2000; nth++) {
		char url[64], acc[DD_WS_ACCEPT_LEN + 1], resp[256];
		dd_ws *ws = NULL;
		uint64_t end;
		int answered = 0, len;
		fsrv s;
		rec r;

		memset(&r, 0, sizeof r);
		fsrv_open(&s);
		snprintf(url, sizeof url, "ws://127.0.0.1:%u/t", s.port);
		dd_alloc_fail_at(nth);
		if (dd_ws_connect(&s.loop, url, "X-A: b\r\n", NULL,
				  &h_handlers, &r, &ws) != DD_OK)
			r.closes = -1; /* nothing to wait for */
		end = dd_now_ms() + 300;
		while (r.closes == 0 && dd_now_ms() < end) {
			(void)uv_run(&s.loop, UV_RUN_NOWAIT);
			if (!answered && c_head(&s)) {
				fsrv_accept(&s, acc);
				len = snprintf(resp, sizeof resp, "%s%s%s",
					       head, acc, "\r\n\r\n\x81\x02hi");
				fsrv_send(&s, resp, (size_t)len);
				close(s.cfd);
				s.cfd = -2; /* accept no more */
				answered = 1;
			}
			(void)poll(NULL, 0, 1);
		}
		count = dd_alloc_count();
		dd_alloc_fail_at(0);
		tried++;
		if (r.closes == 0)
			dd_ws_abort(ws);
		if (s.cfd == -2)
			s.cfd = -1;
		assert_int_equal(fsrv_close(&s), 0);
		assert_true(r.closes != 0);
		rec_free(&r);
		if (count < nth)
			break;
	}
	print_message("connect allocation failure points: %lu\n", tried);
}

/* ---- memory ---- */

/*
 * Bytes held per idle server connection (our struct, the uv_pipe_t and
 * allocator overhead), after each has exchanged a message. glibc's
 * mallinfo2 sees nothing under ASan or valgrind, so the bound is checked
 * only when the numbers are real.
 */
/* Bytes the allocator has handed out; 0 where it cannot say (musl, the
 * static release build, has no mallinfo2). */
static size_t heap_in_use(void)
{
#ifdef __GLIBC__
	return mallinfo2().uordblks;
#else
	return 0;
#endif
}

static void idle_connection_memory(void **state)
{
	enum { N = 256 };
	uv_loop_t loop;
	rec *r = calloc(N + 1, sizeof *r);
	int *raw = calloc(N + 1, sizeof *raw);
	dd_ws **ws = calloc(N + 1, sizeof *ws);
	size_t a = 0, b;
	uint8_t f[32];
	size_t n = mkframe(f, 0x81, 1, "ping", 4), per;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i <= N; i++) {
		int sv[2];

		if (i == 1) {
			/* connection 0 warmed up the shared pieces */
			spin_for(&loop, NULL, 10);
			a = heap_in_use();
		}
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		raw[i] = sv[1];
		r[i].echo = 1;
		r[i].no_copy = 1;
		assert_int_equal(dd_ws_from_stream(h_pipe(&loop, sv[0]), 1,
						   NULL, 0, NULL, &h_handlers,
						   &r[i], &ws[i]), DD_OK);
		r[i].ws = ws[i];
		assert_int_equal(write(raw[i], f, n), (ssize_t)n);
		spin_for(&loop, NULL, 1);
	}
	spin_for(&loop, NULL, 50);
	b = heap_in_use();
	for (int i = 0; i <= N; i++) {
		uint8_t in[64];

		assert_int_equal(r[i].msgs, 1);
		assert_int_equal(read(raw[i], in, sizeof in), 6); /* echo */
	}
	per = b > a ? (b - a) / N : 0;
	print_message("idle WebSocket: %zu bytes per connection "
		      "(struct + uv_pipe_t + malloc overhead; %s)\n", per,
		      per ? "measured" : "allocator not observable here");
	if (per > 0)
		assert_true(per < 2048);
	for (int i = 0; i <= N; i++) {
		dd_ws_abort(ws[i]);
		close(raw[i]);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(r);
	free(raw);
	free(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(echo_text_binary_and_close),
		cmocka_unit_test(too_large_to_send),
		cmocka_unit_test(keepalive_with_live_peer),
		cmocka_unit_test(backpressure_busy_then_drain),
		cmocka_unit_test(abort_inside_on_drain),
		cmocka_unit_test(ping_timeout_aborts_silent_peer),
		cmocka_unit_test(idle_timeout_closes_1001),
		cmocka_unit_test(read_pause_and_resume),
		cmocka_unit_test(max_message_raised_after_auth),
		cmocka_unit_test(client_frames_are_masked),
		cmocka_unit_test(connect_handshake_and_traffic),
		cmocka_unit_test(connect_rejects_bad_answers),
		cmocka_unit_test(connect_argument_checks),
		cmocka_unit_test(connect_refused_and_cancelled),
		cmocka_unit_test(torture_connection),
		cmocka_unit_test(torture_connect),
		cmocka_unit_test(idle_connection_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
