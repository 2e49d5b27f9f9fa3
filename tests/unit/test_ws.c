/*
 * test_ws.c: the WebSocket module, frame level. Handshake checks and the
 * UTF-8 validator as pure functions; then hand-crafted frames, good and
 * hostile, fed to a server-side dd_ws over a socketpair and through the
 * detached (socket-free) entry point. Connections, backpressure, the
 * client and memory are in test_ws_conn.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "net/router.h"
#include "ws_harness.h"

/* ---- pure functions ---- */

static void accept_key_rfc_example(void **state)
{
	char out[DD_WS_ACCEPT_LEN + 1];
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

	(void)state;
	assert_int_equal(dd_ws_accept_key(key, strlen(key), out), DD_OK);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void check_upgrade_accepts_valid(void **state)
{
	char acc[DD_WS_ACCEPT_LEN + 1];
	const char *why = NULL;
	int st = 0;

	(void)state;
	assert_int_equal(dd_ws_check_upgrade(DD_M_GET, 1, "websocket",
					     "Upgrade", "13",
					     "dGhlIHNhbXBsZSBub25jZQ==", acc,
					     &st, &why), DD_OK);
	assert_int_equal(st, 101);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	/* Tokens are case-insensitive and may sit in lists with spaces. */
	assert_int_equal(dd_ws_check_upgrade(DD_M_GET, 1, "h2c, WebSocket",
					     "keep-alive,  UPGRADE ", " 13 ",
					     " dGhlIHNhbXBsZSBub25jZQ== ", acc,
					     &st, &why), DD_OK);
	assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void check_upgrade_rejects(void **state)
{
	static const struct {
		unsigned m;
		int minor;
		const char *up, *conn, *ver, *key;
		int status;
		dd_err_t rc;
	} c[] = {
		{DD_M_POST, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_HEAD, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 0, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, NULL, "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websockets", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", NULL, "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "keep-alive", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrades", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrade", "12",
		 "dGhlIHNhbXBsZSBub25jZQ==", 426, DD_ERR_UNSUPPORTED},
		{DD_M_GET, 1, "websocket", "upgrade", NULL,
		 "dGhlIHNhbXBsZSBub25jZQ==", 426, DD_ERR_UNSUPPORTED},
		{DD_M_GET, 1, "websocket", "upgrade", "13, 8",
		 "dGhlIHNhbXBsZSBub25jZQ==", 426, DD_ERR_UNSUPPORTED},
		{DD_M_GET, 1, "websocket", "upgrade", "13", NULL, 400,
		 DD_ERR_INVALID},
		/* 15 bytes, 17 bytes, bad alphabet, missing padding */
		{DD_M_GET, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25j", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQ==QQ", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25j*Q==", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrade", "13",
		 "dGhlIHNhbXBsZSBub25jZQQQ", 400, DD_ERR_INVALID},
		{DD_M_GET, 1, "websocket", "upgrade", "13", "", 400,
		 DD_ERR_INVALID},
	};
	char acc[DD_WS_ACCEPT_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		const char *why = NULL;
		int st = 0;
		dd_err_t rc = dd_ws_check_upgrade(c[i].m, c[i].minor, c[i].up,
						  c[i].conn, c[i].ver, c[i].key,
						  acc, &st, &why);

		if (rc != c[i].rc || st != c[i].status)
			fail_msg("case %zu: rc %d status %d", i, rc, st);
		assert_non_null(why);
		assert_true(why[0] != '\0');
	}
}

static void utf8_validator(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		int ok;
	} c[] = {
		{"", 0, 1},
		{"plain ascii", 11, 1},
		{"\xc3\xa9t\xc3\xa9", 6, 1},             /* été */
		{"\xe2\x82\xac", 3, 1},                   /* euro sign */
		{"\xf0\x9f\x98\x80", 4, 1},               /* emoji */
		{"\xf4\x8f\xbf\xbf", 4, 1},               /* U+10FFFF */
		{"\xee\x80\x80", 3, 1},                   /* U+E000 */
		{"a\0b", 3, 1},                           /* NUL is UTF-8 */
		{"\xc3\x28", 2, 0},
		{"\xc0\x80", 2, 0},                       /* overlong NUL */
		{"\xc1\xbf", 2, 0},
		{"\xe0\x80\x80", 3, 0},                   /* overlong */
		{"\xe0\x9f\xbf", 3, 0},
		{"\xed\xa0\x80", 3, 0},                   /* surrogate */
		{"\xed\xbf\xbf", 3, 0},
		{"\xf0\x8f\xbf\xbf", 4, 0},               /* overlong */
		{"\xf4\x90\x80\x80", 4, 0},               /* > U+10FFFF */
		{"\xf5\x80\x80\x80", 4, 0},
		{"\xff", 1, 0},
		{"\xfe", 1, 0},
		{"\x80", 1, 0},                           /* lone follow byte */
		{"\xe2\x82", 2, 0},                       /* truncated */
		{"\xf0\x9f\x98", 3, 0},
		{"\xc3", 1, 0},
		{"\xe2\x28\xa1", 3, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		if (dd_ws_utf8_valid((const uint8_t *)c[i].s, c[i].n) !=
		    c[i].ok)
			fail_msg("utf8 case %zu", i);
	}
}

static void close_codes(void **state)
{
	(void)state;
	assert_true(dd_ws_close_code_sendable(1000));
	assert_true(dd_ws_close_code_sendable(1003));
	assert_true(dd_ws_close_code_sendable(1007));
	assert_true(dd_ws_close_code_sendable(1011));
	assert_true(dd_ws_close_code_sendable(3000));
	assert_true(dd_ws_close_code_sendable(4999));
	assert_false(dd_ws_close_code_sendable(0));
	assert_false(dd_ws_close_code_sendable(999));
	assert_false(dd_ws_close_code_sendable(1004));
	assert_false(dd_ws_close_code_sendable(1005));
	assert_false(dd_ws_close_code_sendable(1006));
	assert_false(dd_ws_close_code_sendable(1015));
	assert_false(dd_ws_close_code_sendable(2999));
	assert_false(dd_ws_close_code_sendable(5000));
}

/* ---- hostile frames over a socketpair ---- */

/* Sends frame bytes, expects a close frame with code back, then EOF; the
 * ws must end with err. */
static void expect_fail(const uint8_t *bytes, size_t n, uint16_t code,
			dd_err_t err, const dd_ws_opts *o)
{
	pair *p = pair_new(1, o);
	uint8_t b0, mkey[4], pl[256];
	size_t plen = 0, used;
	int masked = 0;

	raw_write(p, bytes, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	used = parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl, &plen);
	assert_true(used > 0);
	assert_int_equal(b0, 0x88);
	assert_false(masked);
	assert_int_equal(plen, 2);
	assert_int_equal(pl[0] << 8 | pl[1], code);
	/* We closed the write side; closing ours lets the ws finish. */
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, err);
	assert_int_equal(p->r.code, code);
	assert_int_equal(p->r.msgs, 0);
	assert_int_equal(pair_free(p), 0);
}

static void unmasked_client_frame_1002(void **state)
{
	uint8_t f[64];
	size_t n = mkframe(f, 0x82, 0, "hi", 2);

	(void)state;
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
}

static void bad_opcodes_1002(void **state)
{
	static const uint8_t ops[] = {0x83, 0x87, 0x8b, 0x8f, 0x80};
	uint8_t f[64];

	(void)state;
	for (size_t i = 0; i < sizeof ops; i++) {
		size_t n = mkframe(f, ops[i], 1, "x", 1);

		expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	}
}

static void reserved_bits_1002(void **state)
{
	static const uint8_t b0[] = {0xc1, 0xa2, 0x91, 0xf9};
	uint8_t f[64];

	(void)state;
	for (size_t i = 0; i < sizeof b0; i++) {
		size_t n = mkframe(f, b0[i], 1, "x", 1);

		expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	}
}

static void invalid_close_codes_1002(void **state)
{
	static const uint16_t codes[] = {0, 999, 1004, 1005, 1006, 1015,
					 2999, 5000, 65535};
	uint8_t f[64], pl[2];

	(void)state;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		size_t n;

		pl[0] = (uint8_t)(codes[i] >> 8);
		pl[1] = (uint8_t)codes[i];
		n = mkframe(f, 0x88, 1, pl, 2);
		expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	}
}

static void header_violations_1002(void **state)
{
	uint8_t f[512], big[200];
	size_t n;

	(void)state;
	memset(big, 'a', sizeof big);
	/* control frame with 126 bytes */
	n = mkframe(f, 0x89, 1, big, 126);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	/* fragmented ping */
	n = mkframe(f, 0x09, 1, "x", 1);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	/* length 5 in the 16-bit form, length 200 in the 64-bit form */
	n = mkframe_ex(f, 0x82, 1, big, 5, 2);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	n = mkframe_ex(f, 0x82, 1, big, 200, 8);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	/* 64-bit length with the top bit set */
	memcpy(f, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x11\x22\x33\x44",
	       14);
	expect_fail(f, 14, 1002, DD_ERR_INVALID, NULL);
	/* close frame with a one-byte payload */
	n = mkframe(f, 0x88, 1, "\x03", 1);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	/* continuation with no message open, data inside a fragment */
	n = mkframe(f, 0x80, 1, "x", 1);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
	n = mkframe(f, 0x01, 1, "a", 1);
	n += mkframe(f + n, 0x81, 1, "b", 1);
	expect_fail(f, n, 1002, DD_ERR_INVALID, NULL);
}

static void oversized_1009(void **state)
{
	dd_ws_opts o;
	uint8_t *f = malloc(8192), *big = calloc(1, 4096);
	size_t n;

	(void)state;
	dd_ws_opts_default(&o);
	o.max_message = 1000;
	/* the header alone announces too much: no payload needed */
	memcpy(f, "\x82\xfe\x03\xe9\x11\x22\x33\x44", 8);
	expect_fail(f, 8, 1009, DD_ERR_TOO_LARGE, &o);
	/* 600 + 600 in fragments */
	n = mkframe(f, 0x02, 1, big, 600);
	n += mkframe(f + n, 0x80, 1, big, 600);
	expect_fail(f, n, 1009, DD_ERR_TOO_LARGE, &o);
	/* a 64-bit length near 2^63 */
	memcpy(f, "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x11\x22\x33\x44",
	       14);
	expect_fail(f, 14, 1009, DD_ERR_TOO_LARGE, &o);
	free(f);
	free(big);
}

static void too_many_fragments_1008(void **state)
{
	uint8_t *f = malloc(1100 * 8);
	size_t n = 0;

	(void)state;
	n += mkframe(f + n, 0x02, 1, "", 0);
	for (int i = 0; i < 1100; i++)
		n += mkframe(f + n, 0x00, 1, "", 0);
	expect_fail(f, n, 1008, DD_ERR_TOO_LARGE, NULL);
	free(f);
}

static void invalid_utf8_1007(void **state)
{
	uint8_t f[64];
	size_t n;

	(void)state;
	n = mkframe(f, 0x81, 1, "\xc3\x28", 2);
	expect_fail(f, n, 1007, DD_ERR_INVALID, NULL);
	/* surrogate split over two fragments */
	n = mkframe(f, 0x01, 1, "\xed", 1);
	n += mkframe(f + n, 0x80, 1, "\xa0\x80", 2);
	expect_fail(f, n, 1007, DD_ERR_INVALID, NULL);
	/* close reason that is not UTF-8 */
	n = mkframe(f, 0x88, 1, "\x03\xe8\xff", 3);
	expect_fail(f, n, 1007, DD_ERR_INVALID, NULL);
}

/* ---- well-formed traffic over a socketpair ---- */

static void fragmented_with_ping_reassembles(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[256], b0, mkey[4], pl[64];
	size_t n = 0, plen, used;
	int masked = 0;

	(void)state;
	/* "Hel" + ping("p") + "lo" + "!" with a multi-byte char split */
	n += mkframe(f + n, 0x01, 1, "Hel", 3);
	n += mkframe(f + n, 0x89, 1, "p", 1);
	n += mkframe(f + n, 0x00, 1, "lo \xe2", 4);
	n += mkframe(f + n, 0x80, 1, "\x82\xac", 2);
	/* one byte per write: every header and payload split */
	for (size_t i = 0; i < n; i++) {
		raw_write(p, f + i, 1);
		(void)uv_run(&p->loop, UV_RUN_NOWAIT);
	}
	assert_true(spin(&p->loop, p, c_msgs1, &p->r));
	assert_int_equal(p->r.msgs, 1);
	assert_int_equal(p->r.op, DD_WS_TEXT);
	assert_int_equal(p->r.last_len, 9);
	assert_memory_equal(p->r.last, "Hello \xe2\x82\xac", 9);
	/* the pong came back, unmasked, with the ping's payload */
	used = parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl, &plen);
	assert_true(used > 0);
	assert_int_equal(b0, 0x8a);
	assert_false(masked);
	assert_int_equal(plen, 1);
	assert_int_equal(pl[0], 'p');
	assert_int_equal(pair_free(p), 0);
}

static void ping_gets_pong(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[256], b0, mkey[4], pl[200];
	size_t n, plen = 0;
	int masked = 0;

	(void)state;
	n = mkframe(f, 0x89, 1, "abc", 3);
	n += mkframe(f + n, 0x89, 1, "", 0);
	raw_write(p, f, n);
	spin_for(&p->loop, p, 30);
	n = parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl, &plen);
	assert_true(n > 0);
	assert_int_equal(b0, 0x8a);
	assert_int_equal(plen, 3);
	assert_memory_equal(pl, "abc", 3);
	assert_true(parse_frame(p->in + n, p->in_len - n, &b0, &masked, mkey,
				pl, &plen) > 0);
	assert_int_equal(b0, 0x8a);
	assert_int_equal(plen, 0);
	assert_int_equal(p->r.msgs, 0);
	assert_int_equal(pair_free(p), 0);
}

static void peer_close_handshake(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[64], b0, mkey[4], pl[64];
	size_t n, plen = 0;
	int masked = 0;

	(void)state;
	n = mkframe(f, 0x88, 1, "\x03\xe8" "bye", 5);
	raw_write(p, f, n);
	/* the server echoes the close and half-closes: we see EOF */
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	assert_true(parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl,
				&plen) > 0);
	assert_int_equal(b0, 0x88);
	assert_int_equal(plen, 5);
	assert_memory_equal(pl, "\x03\xe8" "bye", 5);
	assert_int_equal(p->r.closes, 0);
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_OK);
	assert_int_equal(p->r.code, 1000);
	assert_string_equal(p->r.reason, "bye");
	assert_int_equal(pair_free(p), 0);
}

static void server_close_handshake(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[64], b0, mkey[4], pl[64];
	size_t n, plen = 0;
	int masked = 0;

	(void)state;
	assert_int_equal(dd_ws_close(p->ws, 4000, "done"), DD_OK);
	assert_int_equal(dd_ws_close(p->ws, 4000, "again"), DD_OK);
	assert_int_equal(dd_ws_send(p->ws, DD_WS_TEXT, "x", 1),
			 DD_ERR_CLOSED);
	spin_for(&p->loop, p, 20);
	assert_true(parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl,
				&plen) > 0);
	assert_int_equal(b0, 0x88);
	assert_memory_equal(pl, "\x0f\xa0" "done", 6);
	/* no EOF before the peer answers */
	assert_false(p->raw_eof);
	n = mkframe(f, 0x88, 1, "\x0f\xa0", 2);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_OK);
	assert_int_equal(p->r.code, 4000);
	assert_int_equal(pair_free(p), 0);
}

static void close_argument_checks(void **state)
{
	pair *p = pair_new(1, NULL);
	char long_reason[130];

	(void)state;
	memset(long_reason, 'r', sizeof long_reason - 1);
	long_reason[sizeof long_reason - 1] = '\0';
	assert_int_equal(dd_ws_close(p->ws, 1005, NULL), DD_ERR_INVALID);
	assert_int_equal(dd_ws_close(p->ws, 1000, long_reason),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ws_close(p->ws, 1000, "\xff"), DD_ERR_INVALID);
	assert_int_equal(dd_ws_close(p->ws, 0, "reason"), DD_ERR_INVALID);
	assert_int_equal(dd_ws_send(p->ws, DD_WS_TEXT, "\xc3\x28", 2),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ws_send(p->ws, (dd_ws_op)9, "x", 1),
			 DD_ERR_INVALID);
	assert_int_equal(p->r.closes, 0);
	assert_int_equal(pair_free(p), 0);
}

static void close_timeout_when_peer_silent(void **state)
{
	dd_ws_opts o;
	pair *p;

	(void)state;
	dd_ws_opts_default(&o);
	o.close_timeout_ms = 50;
	p = pair_new(1, &o);
	assert_int_equal(dd_ws_close(p->ws, 1000, NULL), DD_OK);
	assert_true(spin(&p->loop, p, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_ERR_TIMEOUT);
	assert_int_equal(p->r.code, 1006);
	assert_int_equal(pair_free(p), 0);
}

static void peer_hangs_up_without_close(void **state)
{
	pair *p = pair_new(1, NULL);

	(void)state;
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_ERR_CLOSED);
	assert_int_equal(p->r.code, 1006);
	assert_int_equal(pair_free(p), 0);
}

/* ---- re-entrancy ---- */

static void abort_inside_on_message(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[64];
	size_t n;

	(void)state;
	p->r.abort_in_msg = 1;
	p->r.send_after_close = 1;
	/* three messages in one read: only the first may be delivered */
	n = mkframe(f, 0x81, 1, "one", 3);
	n += mkframe(f + n, 0x81, 1, "two", 3);
	n += mkframe(f + n, 0x81, 1, "six", 3);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_closed, &p->r));
	assert_int_equal(p->r.msgs, 1);
	assert_int_equal(p->r.err, DD_ERR_CANCELLED);
	assert_int_equal(p->r.send_in_close_rc, DD_ERR_CLOSED);
	assert_int_equal(pair_free(p), 0);
}

static void close_inside_on_message(void **state)
{
	pair *p = pair_new(1, NULL);
	uint8_t f[64], b0, mkey[4], pl[64];
	size_t n, plen = 0;
	int masked = 0;

	(void)state;
	p->r.close_in_msg = 1;
	p->r.echo = 1;
	n = mkframe(f, 0x81, 1, "hi", 2);
	raw_write(p, f, n);
	spin_for(&p->loop, p, 30);
	/* the echo, queued before the close, goes out first */
	n = parse_frame(p->in, p->in_len, &b0, &masked, mkey, pl, &plen);
	assert_true(n > 0);
	assert_int_equal(b0, 0x81);
	assert_memory_equal(pl, "hi", 2);
	assert_true(parse_frame(p->in + n, p->in_len - n, &b0, &masked, mkey,
				pl, &plen) > 0);
	assert_int_equal(b0, 0x88);
	assert_int_equal(p->r.err, DD_OK);
	n = mkframe(f, 0x88, 1, "\x03\xe8", 2);
	raw_write(p, f, n);
	assert_true(spin(&p->loop, p, c_raw_eof, p));
	close(p->raw);
	p->raw = -1;
	assert_true(spin(&p->loop, NULL, c_closed, &p->r));
	assert_int_equal(p->r.err, DD_OK);
	assert_int_equal(pair_free(p), 0);
}

static void leftover_processed_at_creation(void **state)
{
	uv_loop_t loop;
	uint8_t f[64];
	int sv[2];
	size_t n;
	rec r;
	dd_ws *ws = NULL;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	n = mkframe(f, 0x82, 1, "\x01\x02\x03", 3);
	assert_int_equal(dd_ws_from_stream(h_pipe(&loop, sv[0]), 1, f, n, NULL,
					   &h_handlers, &r, &ws), DD_OK);
	assert_non_null(ws);
	r.ws = ws;
	assert_int_equal(r.msgs, 1);
	assert_int_equal(r.op, DD_WS_BINARY);
	assert_memory_equal(r.last, "\x01\x02\x03", 3);
	dd_ws_abort(ws);
	close(sv[1]);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.closes, 1);
	assert_int_equal(uv_loop_close(&loop), 0);
	rec_free(&r);
}

/* ---- detached: no sockets ---- */

static void detached_exact_bytes(void **state)
{
	dd_ws *ws = NULL;
	uint8_t f[64], out[64];
	size_t n;
	rec r;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(dd_ws_new_detached(1, NULL, &h_handlers, &r, &ws),
			 DD_OK);
	r.ws = ws;
	n = mkframe(f, 0x89, 1, "hi", 2);
	assert_int_equal(dd_ws_feed(ws, f, n), DD_OK);
	assert_int_equal(dd_ws_detached_take(ws, out, sizeof out), 4);
	assert_memory_equal(out, "\x8a\x02hi", 4);
	assert_int_equal(dd_ws_send(ws, DD_WS_BINARY, "\x00\xff", 2), DD_OK);
	assert_int_equal(dd_ws_queued(ws), 4);
	assert_int_equal(dd_ws_detached_take(ws, out, 3), 3);
	assert_int_equal(dd_ws_detached_take(ws, out + 3, 10), 1);
	assert_memory_equal(out, "\x82\x02\x00\xff", 4);
	/* a reserved opcode: the close frame, then the end */
	n = mkframe(f, 0x83, 1, "", 0);
	assert_int_equal(dd_ws_feed(ws, f, n), DD_OK);
	assert_int_equal(r.closes, 0);
	assert_int_equal(dd_ws_detached_take(ws, out, sizeof out), 4);
	assert_memory_equal(out, "\x88\x02\x03\xea", 4);
	/* on_close ran inside the take; ws is gone */
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.err, DD_ERR_INVALID);
	assert_int_equal(r.code, 1002);
	rec_free(&r);
}

static void detached_close_handshake_and_abort(void **state)
{
	dd_ws *ws = NULL;
	uint8_t f[64], out[64];
	size_t n;
	rec r;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(dd_ws_new_detached(1, NULL, &h_handlers, &r, &ws),
			 DD_OK);
	assert_int_equal(dd_ws_close(ws, 1001, NULL), DD_OK);
	assert_int_equal(dd_ws_detached_take(ws, out, sizeof out), 4);
	assert_memory_equal(out, "\x88\x02\x03\xe9", 4);
	assert_int_equal(r.closes, 0);
	n = mkframe(f, 0x88, 1, "\x03\xe9", 2);
	assert_int_equal(dd_ws_feed(ws, f, n), DD_OK);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(r.code, 1001);
	rec_free(&r);

	memset(&r, 0, sizeof r);
	assert_int_equal(dd_ws_new_detached(0, NULL, &h_handlers, &r, &ws),
			 DD_OK);
	/* a masked frame to a client is a violation */
	n = mkframe(f, 0x81, 1, "x", 1);
	assert_int_equal(dd_ws_feed(ws, f, n), DD_OK);
	dd_ws_abort(ws);
	assert_int_equal(r.closes, 1);
	assert_int_equal(r.err, DD_ERR_INVALID);
	rec_free(&r);
}

/* Allocation failures at every step (meaningful in -Dtorture builds). */
static void detached_survives_allocation_failures(void **state)
{
	uint8_t f[256], out[256];
	unsigned long count, steps = 0;
	size_t n = 0;

	(void)state;
	n += mkframe(f + n, 0x01, 1, "ab", 2);
	n += mkframe(f + n, 0x80, 1, "cd", 2);
	n += mkframe(f + n, 0x89, 1, "p", 1);
	n += mkframe(f + n, 0x88, 1, "\x03\xe8" "x", 3);
	for (unsigned long nth = 1; nth < 1000; nth++) {
		dd_ws *ws = NULL;
		rec r;

		memset(&r, 0, sizeof r);
		r.echo = 1;
		dd_alloc_fail_at(nth);
		if (dd_ws_new_detached(1, NULL, &h_handlers, &r, &ws)) {
			dd_alloc_fail_at(0);
			continue;
		}
		steps++;
		if (dd_ws_feed(ws, f, n) == DD_OK && r.closes == 0)
			while (r.closes == 0 &&
			       dd_ws_detached_take(ws, out, sizeof out) > 0)
				;
		if (r.closes == 0)
			dd_ws_abort(ws);
		count = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_int_equal(r.closes, 1);
		rec_free(&r);
		/* every allocation has failed once (or no torture build) */
		if (count < nth)
			break;
	}
	print_message("allocation failure points tried: %lu\n", steps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_key_rfc_example),
		cmocka_unit_test(check_upgrade_accepts_valid),
		cmocka_unit_test(check_upgrade_rejects),
		cmocka_unit_test(utf8_validator),
		cmocka_unit_test(close_codes),
		cmocka_unit_test(unmasked_client_frame_1002),
		cmocka_unit_test(bad_opcodes_1002),
		cmocka_unit_test(reserved_bits_1002),
		cmocka_unit_test(invalid_close_codes_1002),
		cmocka_unit_test(header_violations_1002),
		cmocka_unit_test(oversized_1009),
		cmocka_unit_test(too_many_fragments_1008),
		cmocka_unit_test(invalid_utf8_1007),
		cmocka_unit_test(fragmented_with_ping_reassembles),
		cmocka_unit_test(ping_gets_pong),
		cmocka_unit_test(peer_close_handshake),
		cmocka_unit_test(server_close_handshake),
		cmocka_unit_test(close_argument_checks),
		cmocka_unit_test(close_timeout_when_peer_silent),
		cmocka_unit_test(peer_hangs_up_without_close),
		cmocka_unit_test(abort_inside_on_message),
		cmocka_unit_test(close_inside_on_message),
		cmocka_unit_test(leftover_processed_at_creation),
		cmocka_unit_test(detached_exact_bytes),
		cmocka_unit_test(detached_close_handshake_and_abort),
		cmocka_unit_test(detached_survives_allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
