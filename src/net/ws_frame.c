/*
 * ws_frame.c: bytes in, messages out. Glue to wslay's event API and the
 * frame scanner that runs ahead of it.
 *
 * Why the scanner (ws_rx_scan) exists next to wslay: wslay answers some
 * header-level violations (a control frame that is fragmented or longer
 * than 125 bytes, a length not in its shortest form, a one-byte close
 * payload) with an empty close instead of 1002; it checks a message's
 * size only once payload bytes arrive, after trusting the announced
 * length; and it does not count fragments, each of which costs it an
 * allocation. The scanner also knows where frames end, which is when the
 * 9 KiB wslay context can be dropped until the next burst (ws.c).
 *
 * What wslay checks itself (and we rely on): masking in the right
 * direction, reserved bits, unknown opcodes, continuation without a
 * message and data frames inside a fragmented one, close codes that may
 * not be sent, UTF-8 of text and close reasons, the message cap, and it
 * answers pings and echoes the peer's close.
 */
#include "net/ws.h"

#include <string.h>

#include <openssl/rand.h>

#include "core/alloc.h"
#include "core/cursor.h"
#include "net/ws_int.h"

#define WS_MAX_FRAGMENTS 1024

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf,
			  size_t len, int flags, void *ud)
{
	dd_ws *ws = ud;
	size_t n = ws->in_len < len ? ws->in_len : len;

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	memcpy(buf, ws->in, n);
	ws->in += n;
	ws->in_len -= n;
	return (ssize_t)n;
}

/* Takes what fits under the cap; wslay keeps the rest until we flush. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
			  size_t len, int flags, void *ud)
{
	dd_ws *ws = ud;
	size_t room = ws->out.cap - ws->out.len;
	size_t n = len < room ? len : room;

	(void)flags;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (dd_buf_append(&ws->out, data, n)) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)n;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf,
			 size_t len, void *ud)
{
	(void)ctx;
	(void)ud;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

void ws_begin_closing(dd_ws *ws)
{
	if (ws->closing)
		return;
	ws->closing = true;
	if (ws->loop != NULL && !ws->finished)
		ws_arm(ws, ws->o.close_timeout_ms);
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
		      const struct wslay_event_on_msg_recv_arg *a, void *ud);

dd_err_t ws_ctx(dd_ws *ws)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};
	wslay_event_context_ptr ctx = NULL;
	int r;

	if (ws->ctx != NULL)
		return DD_OK;
	if (ws->is_server)
		r = wslay_event_context_server_init(&ctx, &cbs, ws);
	else
		r = wslay_event_context_client_init(&ctx, &cbs, ws);
	if (r != 0)
		return DD_ERR_NOMEM;
	wslay_event_config_set_max_recv_msg_length(ctx, ws->max_recv);
	ws->ctx = ctx;
	return DD_OK;
}

/* We reject the input: our close frame goes out, then the stream closes
 * without waiting for the peer's close (RFC 6455 7.1.7). */
static void ws_fail(dd_ws *ws, uint16_t code, dd_err_t err)
{
	int r;

	if (ws->failing || ws->finished)
		return;
	ws->failing = true;
	if (ws->err == DD_OK)
		ws->err = err;
	if (ws_ctx(ws)) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	wslay_event_shutdown_read(ws->ctx);
	r = wslay_event_queue_close(ws->ctx, code, (const uint8_t *)"", 0);
	if (r != 0 && r != WSLAY_ERR_NO_MORE_MSG) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	ws_begin_closing(ws);
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
		      const struct wslay_event_on_msg_recv_arg *a, void *ud)
{
	static const uint8_t empty[1];
	dd_ws *ws = ud;
	const uint8_t *msg = a->msg != NULL ? a->msg : empty;

	(void)ctx;
	if (ws->finished || ws->failing)
		return;
	if (a->opcode == WSLAY_CONNECTION_CLOSE) {
		/* wslay has queued the echo of the peer's code already. */
		ws->close_received = true;
		ws->code = a->status_code != 0 ? a->status_code
					       : DD_WS_CLOSE_NO_STATUS;
		if (a->msg_length > 2 &&
		    dd_ws_utf8_valid(msg + 2, a->msg_length - 2))
			ws->reason = dd_strndup((const char *)msg + 2,
						a->msg_length - 2);
		ws_begin_closing(ws);
		return;
	}
	/* wslay answers pings; any frame already counted as liveness. */
	if (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME)
		return;
	/* wslay 1.1 checks UTF-8 too; 1.0 did not. */
	if (a->opcode == WSLAY_TEXT_FRAME &&
	    !dd_ws_utf8_valid(msg, a->msg_length)) {
		ws_fail(ws, DD_WS_CLOSE_BAD_DATA, DD_ERR_INVALID);
		return;
	}
	if (ws->loop != NULL)
		ws->last_data = uv_now(ws->loop);
	if (ws->h.on_message != NULL)
		ws->h.on_message(ws, (dd_ws_op)a->opcode, msg, a->msg_length,
				 ws->ud);
}

/* --- receiving ----------------------------------------------------------- */

static size_t rx_hdr_need(const struct ws_rx *rx)
{
	size_t need = 2;
	uint8_t len7;

	if (rx->hlen < 2)
		return 2;
	len7 = rx->hdr[1] & 0x7f;
	if (len7 == 126)
		need += 2;
	else if (len7 == 127)
		need += 8;
	if (rx->hdr[1] & 0x80)
		need += 4;
	return need;
}

/* Checks one complete frame header; returns a close code or 0. */
static uint16_t rx_header(dd_ws *ws, dd_err_t *err)
{
	struct ws_rx *rx = &ws->rx;
	dd_cursor c;
	uint8_t b0 = 0, b1 = 0, op;
	uint16_t l16 = 0;
	uint64_t len;
	bool fin, ctrl;
	dd_err_t rc;

	*err = DD_ERR_INVALID;
	dd_cur_init(&c, rx->hdr, rx->hlen);
	rc = dd_cur_get_u8(&c, &b0);
	if (!rc)
		rc = dd_cur_get_u8(&c, &b1);
	if (rc)
		return DD_WS_CLOSE_PROTOCOL;
	fin = (b0 & 0x80) != 0;
	op = b0 & 0x0f;
	ctrl = (op & 0x08) != 0;
	len = b1 & 0x7f;
	if (len == 126) {
		rc = dd_cur_get_u16be(&c, &l16);
		if (rc || l16 < 126)
			return DD_WS_CLOSE_PROTOCOL;
		len = l16;
	} else if (len == 127) {
		rc = dd_cur_get_u64be(&c, &len);
		if (rc || len < 65536 || (len >> 63) != 0)
			return DD_WS_CLOSE_PROTOCOL;
	}
	if (ctrl && (!fin || len > 125))
		return DD_WS_CLOSE_PROTOCOL;
	if (op == WSLAY_CONNECTION_CLOSE && len == 1)
		return DD_WS_CLOSE_PROTOCOL;
	if (!ctrl) {
		if (op != WSLAY_CONTINUATION_FRAME) {
			rx->msg_len = 0;
			rx->frags = 0;
		}
		*err = DD_ERR_TOO_LARGE;
		if (rx->msg_len > ws->max_recv ||
		    len > ws->max_recv - rx->msg_len)
			return DD_WS_CLOSE_TOO_BIG;
		if (++rx->frags > WS_MAX_FRAGMENTS)
			return DD_WS_CLOSE_POLICY;
		rx->msg_len += len;
		rx->in_msg = !fin;
	}
	rx->left = len;
	return 0;
}

/*
 * Walks frame boundaries over the new bytes. *ok is how many of them may
 * go to wslay: all, or those before the first frame we reject.
 */
static uint16_t ws_rx_scan(dd_ws *ws, const uint8_t *p, size_t n, size_t *ok,
			   dd_err_t *err)
{
	struct ws_rx *rx = &ws->rx;
	size_t start = 0, take;
	uint16_t code;
	dd_cursor c;

	dd_cur_init(&c, p, n);
	while (dd_cur_remaining(&c) > 0) {
		if (rx->left > 0) {
			take = dd_cur_remaining(&c);
			if (take > rx->left)
				take = (size_t)rx->left;
			(void)dd_cur_skip(&c, take); /* take <= remaining */
			rx->left -= take;
			continue;
		}
		if (rx->hlen == 0)
			start = c.off;
		while (rx->hlen < rx_hdr_need(rx) &&
		       dd_cur_get_u8(&c, &rx->hdr[rx->hlen]) == DD_OK)
			rx->hlen++;
		if (rx->hlen < rx_hdr_need(rx))
			break;
		code = rx_header(ws, err);
		rx->hlen = 0;
		if (code != 0) {
			*ok = start;
			return code;
		}
	}
	*ok = n;
	return 0;
}

/* wslay refused the input itself and queued its own close frame. */
static void ws_fail_wslay(dd_ws *ws, dd_err_t err)
{
	if (ws->failing)
		return;
	ws->failing = true;
	if (ws->err == DD_OK)
		ws->err = err;
	ws_begin_closing(ws);
}

void ws_feed(dd_ws *ws, const uint8_t *p, size_t n)
{
	dd_err_t bad_err = DD_OK;
	uint16_t bad;
	size_t ok = 0;
	int r;

	/* After a close frame or a failure only EOF matters. */
	if (ws->finished || ws->failing || ws->close_received)
		return;
	if (ws->loop != NULL)
		ws->last_rx = uv_now(ws->loop);
	ws->ping_out = false;
	bad = ws_rx_scan(ws, p, n, &ok, &bad_err);
	if (ok > 0) {
		if (ws_ctx(ws)) {
			ws_finish(ws, DD_ERR_NOMEM);
			return;
		}
		ws->in = p;
		ws->in_len = ok;
		ws->in_wslay = true;
		r = wslay_event_recv(ws->ctx);
		ws->in_wslay = false;
		ws->in = NULL;
		ws->in_len = 0;
		if (ws->finished)
			return;
		if (r == WSLAY_ERR_NOMEM) {
			ws_fail_wslay(ws, DD_ERR_NOMEM);
			return;
		}
		if (r != 0) {
			ws_fail_wslay(ws, DD_ERR_INVALID);
			return;
		}
		if (!wslay_event_get_read_enabled(ws->ctx) &&
		    !ws->close_received) {
			ws_fail_wslay(ws, DD_ERR_INVALID);
			return;
		}
	}
	if (bad != 0)
		ws_fail(ws, bad, bad_err);
}
