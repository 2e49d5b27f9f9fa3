/*
 * ws_frame_fuzz.c: arbitrary bytes as received WebSocket data, without
 * sockets, through a detached dd_ws (the same frame scanner, wslay glue,
 * close logic and write queue as a real connection).
 *
 * The first byte configures the run: bit 0 server (1) or client side,
 * bits 1-3 the read-chunk size (so every header and payload split a
 * socket could produce is reached), bit 4 echo every message back, bit 5
 * call dd_ws_close from the first on_message, bit 6 abort from the third,
 * bit 7 a 64 KiB instead of a 300-byte message cap. The rest is fed as
 * input.
 *
 * Checks: no crash or leak; on_close exactly once; delivered text is
 * UTF-8 and no message exceeds the cap; everything we send is well framed
 * (masked from a client, unmasked from a server, no reserved bits, known
 * opcodes, control frames at most 125 bytes).
 *
 * Seeds: every .bin file in tests/data/ws_frames (see the README there).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX (1u << 20)

struct run {
	int closes, msgs, close_first, abort_third, echo;
	uint64_t max;
	uint8_t *out;
	size_t out_len;
};

static void on_message(dd_ws *ws, dd_ws_op op, const uint8_t *d, size_t n,
		       void *ud)
{
	struct run *r = ud;

	r->msgs++;
	if (n > r->max || (op != DD_WS_TEXT && op != DD_WS_BINARY))
		__builtin_trap();
	if (op == DD_WS_TEXT && !dd_ws_utf8_valid(d, n))
		__builtin_trap();
	if (r->echo)
		(void)dd_ws_send(ws, op, d, n);
	if (r->close_first && r->msgs == 1)
		(void)dd_ws_close(ws, 1000, "fuzz");
	if (r->abort_third && r->msgs == 3)
		dd_ws_abort(ws);
}

static void on_close(dd_ws *ws, dd_err_t err, uint16_t code,
		     const char *reason, void *ud)
{
	struct run *r = ud;

	(void)err;
	(void)code;
	r->closes++;
	if (!dd_ws_utf8_valid((const uint8_t *)reason, strlen(reason)))
		__builtin_trap();
	/* Calls on a closing ws must be refused, not crash. */
	if (dd_ws_send(ws, DD_WS_BINARY, "x", 1) != DD_ERR_CLOSED)
		__builtin_trap();
}

static const dd_ws_handlers handlers = {
	.on_message = on_message,
	.on_close = on_close,
};

/* Moves our output out; returns 0 once the ws is gone. */
static int take_all(dd_ws *ws, struct run *r)
{
	uint8_t tmp[4096];
	size_t n;

	do {
		n = dd_ws_detached_take(ws, tmp, sizeof tmp);
		if (r->closes > 0)
			return 0;
		if (n > OUT_MAX - r->out_len)
			n = OUT_MAX - r->out_len;
		memcpy(r->out + r->out_len, tmp, n);
		r->out_len += n;
	} while (n > 0);
	return 1;
}

/* Our own frames must always be well formed. */
static void check_output(const struct run *r, int server)
{
	size_t off = 0;

	while (r->out_len - off >= 2) {
		const uint8_t *b = r->out + off;
		uint64_t len = b[1] & 0x7f;
		size_t h = 2;
		uint8_t op = b[0] & 0x0f;

		if ((b[0] & 0x70) != 0 || ((b[1] & 0x80) != 0) == server)
			__builtin_trap();
		if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 &&
		    op != 10)
			__builtin_trap();
		if (len == 126) {
			if (r->out_len - off < 4)
				return;
			len = (uint64_t)b[2] << 8 | b[3];
			h = 4;
		} else if (len == 127) {
			if (r->out_len - off < 10)
				return;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | b[2 + i];
			h = 10;
		}
		if ((op & 8) && (len > 125 || !(b[0] & 0x80)))
			__builtin_trap();
		h += server ? 0 : 4;
		if (len > r->out_len - off - h)
			return; /* truncated by OUT_MAX */
		off += h + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[8] = {1, 2, 3, 7, 16, 64, 1024, 65536};
	struct run r;
	dd_ws_opts o;
	dd_ws *ws = NULL;
	size_t chunk, off = 1, n;
	int server, alive = 1;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof r);
	server = data[0] & 1;
	chunk = chunks[(data[0] >> 1) & 7];
	r.echo = (data[0] >> 4) & 1;
	r.close_first = (data[0] >> 5) & 1;
	r.abort_third = (data[0] >> 6) & 1;
	dd_ws_opts_default(&o);
	o.max_message = (data[0] & 0x80) ? 65536 : 300;
	o.high_water = 4096;
	o.low_water = 1024;
	r.max = o.max_message;
	r.out = malloc(OUT_MAX);
	if (r.out == NULL ||
	    dd_ws_new_detached(server, &o, &handlers, &r, &ws) != DD_OK) {
		free(r.out);
		return 0;
	}
	while (alive && off < size) {
		n = size - off < chunk ? size - off : chunk;
		if (dd_ws_feed(ws, data + off, n) != DD_OK || r.closes > 0)
			alive = 0;
		else
			alive = take_all(ws, &r);
		off += n;
	}
	if (alive) {
		(void)dd_ws_close(ws, 1001, NULL);
		alive = r.closes == 0 && take_all(ws, &r);
	}
	if (alive)
		dd_ws_abort(ws);
	if (r.closes != 1)
		__builtin_trap();
	check_output(&r, server);
	free(r.out);
	return 0;
}
