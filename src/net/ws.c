/*
 * ws.c: one WebSocket connection. wslay does the framing; this file feeds
 * it from a libuv stream, owns the write queue and its backpressure, the
 * keepalive, the closing handshake and the lifetime of the object.
 *
 * The wslay context (9 KiB) exists only while something is in flight:
 * ws_ctx creates it when bytes arrive or a frame is queued, and
 * ws_maybe_evict drops it when the frame scanner (ws_frame.c) is at a
 * frame boundary outside any fragmented message and wslay has nothing
 * left to send.
 *
 * Re-entrancy: every entry point (API call or libuv callback) brackets its
 * work with ws_enter/ws_leave. Handlers run inside; whatever they ask for
 * (send, close, abort) is recorded and carried out by the outermost
 * ws_leave (ws_pump). Nothing frees the ws or its wslay context while a
 * call is on the stack: stream connections are freed from libuv close
 * callbacks, detached ones when the depth returns to zero.
 */
#include "net/ws.h"

#include <string.h>

#include "core/alloc.h"
#include "net/ws_int.h"

#define WS_READ_BUF (64u * 1024)
/* Room above the data limits for control frames we owe the peer. */
#define WS_CTRL_SLACK (64u * 1024)
#define WS_LIMIT (1024u * 1024 * 1024)
#define WS_MAX_WAIT_MS (7ull * 24 * 3600 * 1000)

struct ws_wreq {
	uv_write_t req;
	dd_ws *ws;
	char *data;
	size_t len;
};

/*
 * One read buffer per loop thread, shared by every connection on it: libuv
 * calls alloc and read back to back, and the bytes are copied into wslay
 * (or dropped) before the read callback returns. Freed with the last ws.
 */
static _Thread_local uint8_t *rbuf;
static _Thread_local bool rbuf_busy;
static _Thread_local size_t rbuf_users;

static void on_timer(uv_timer_t *t);

/* --- options, creation, destruction ------------------------------------ */

void dd_ws_opts_default(dd_ws_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_message = 1024 * 1024;
	o->high_water = 256 * 1024;
	o->low_water = 64 * 1024;
	o->ping_timeout_ms = 10000;
	o->close_timeout_ms = 5000;
	o->handshake_timeout_ms = 10000;
}

static int opts_ok(const dd_ws_opts *o)
{
	if (o->max_message == 0 || o->max_message > WS_LIMIT)
		return 0;
	if (o->high_water == 0 || o->high_water > WS_LIMIT ||
	    o->low_water > o->high_water)
		return 0;
	if (o->ping_interval_ms > WS_MAX_WAIT_MS ||
	    o->idle_timeout_ms > WS_MAX_WAIT_MS)
		return 0;
	if (o->ping_interval_ms != 0 &&
	    (o->ping_timeout_ms == 0 || o->ping_timeout_ms > WS_MAX_WAIT_MS))
		return 0;
	if (o->close_timeout_ms == 0 || o->close_timeout_ms > WS_MAX_WAIT_MS)
		return 0;
	return o->handshake_timeout_ms != 0 &&
	       o->handshake_timeout_ms <= WS_MAX_WAIT_MS;
}

/* Reading stops above this: only control frames we owe can get here. */
static size_t pause_limit(const dd_ws *ws)
{
	return ws->o.high_water + ws->o.max_message + WS_CTRL_SLACK;
}

dd_err_t ws_alloc(int is_server, const dd_ws_opts *opts,
		  const dd_ws_handlers *h, void *ud, dd_ws **out)
{
	dd_ws_opts def;
	dd_ws *ws;

	*out = NULL;
	if (opts == NULL) {
		dd_ws_opts_default(&def);
		opts = &def;
	}
	if (!opts_ok(opts))
		return DD_ERR_INVALID;
	ws = dd_calloc(1, sizeof *ws);
	if (ws == NULL)
		return DD_ERR_NOMEM;
	ws->is_server = is_server != 0;
	ws->o = *opts;
	ws->max_recv = opts->max_message;
	if (h != NULL)
		ws->h = *h;
	ws->ud = ud;
	ws->code = DD_WS_CLOSE_ABNORMAL;
	dd_buf_init(&ws->out, pause_limit(ws) + WS_CTRL_SLACK);
	*out = ws;
	return DD_OK;
}

void ws_destroy(dd_ws *ws)
{
	if (ws == NULL)
		return;
	wslay_event_context_free(ws->ctx);
	ws_hs_free(ws->hs);
	dd_buf_free(&ws->out);
	dd_free(ws->reason);
	dd_free(ws->close_reason);
	if (ws->counted && --rbuf_users == 0) {
		dd_free(rbuf);
		rbuf = NULL;
	}
	dd_free(ws);
}

static void ws_final(dd_ws *ws)
{
	if (ws->h.on_close != NULL)
		ws->h.on_close(ws, ws->err, ws->code,
			       ws->reason != NULL ? ws->reason : "", ws->ud);
	ws_destroy(ws);
}

void ws_unref(dd_ws *ws)
{
	if (--ws->refs == 0)
		ws_final(ws);
}

static void on_stream_closed(uv_handle_t *h)
{
	dd_ws *ws = h->data;

	dd_free(h);
	ws->stream = NULL;
	ws_unref(ws);
}

static void on_timer_closed(uv_handle_t *h)
{
	ws_unref(h->data);
}

void ws_finish(dd_ws *ws, dd_err_t err)
{
	if (ws->finished)
		return;
	ws->finished = true;
	if (ws->err == DD_OK)
		ws->err = err;
	/* Stops wslay delivering the rest of a read after an abort. */
	if (ws->ctx != NULL)
		wslay_event_shutdown_read(ws->ctx);
	if (ws->loop == NULL)
		return; /* detached: ws_leave frees at depth zero */
	if (ws->hs != NULL)
		(void)ws_hs_cancel(ws->hs);
	uv_close((uv_handle_t *)ws->stream, on_stream_closed);
	uv_close((uv_handle_t *)&ws->timer, on_timer_closed);
}

void ws_attach(dd_ws *ws, uv_stream_t *stream)
{
	ws->stream = stream;
	ws->loop = stream->loop;
	stream->data = ws;
	(void)uv_timer_init(ws->loop, &ws->timer); /* cannot fail */
	ws->timer.data = ws;
	ws->refs = 2;
	ws->counted = true;
	rbuf_users++;
	ws->last_rx = ws->last_data = uv_now(ws->loop);
}

void ws_open(dd_ws *ws, uv_stream_t *stream, const uint8_t *leftover,
	     size_t leftover_len, int notify)
{
	ws_attach(ws, stream);
	ws_enter(ws);
	ws->stream_ready = true;
	if (notify && ws->h.on_open != NULL)
		ws->h.on_open(ws, ws->ud);
	if (!ws->finished && leftover_len > 0)
		ws_feed(ws, leftover, leftover_len);
	ws_schedule(ws);
	ws_leave(ws);
}

dd_err_t dd_ws_from_stream(uv_stream_t *stream, int is_server,
			   const uint8_t *leftover, size_t leftover_len,
			   const dd_ws_opts *opts, const dd_ws_handlers *h,
			   void *ud, dd_ws **out)
{
	dd_ws *ws = NULL;
	dd_err_t rc;

	*out = NULL;
	if (stream == NULL || uv_is_closing((uv_handle_t *)stream) ||
	    !uv_is_readable(stream) || !uv_is_writable(stream))
		return DD_ERR_INVALID;
	if (leftover_len > 0 && leftover == NULL)
		return DD_ERR_INVALID;
	rc = ws_alloc(is_server, opts, h, ud, &ws);
	if (rc)
		return rc;
	*out = ws;
	ws_open(ws, stream, leftover, leftover_len, 0);
	return DD_OK;
}

dd_err_t dd_ws_new_detached(int is_server, const dd_ws_opts *opts,
			    const dd_ws_handlers *h, void *ud, dd_ws **out)
{
	return ws_alloc(is_server, opts, h, ud, out);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	if (rbuf == NULL)
		rbuf = dd_malloc(WS_READ_BUF);
	if (rbuf != NULL && !rbuf_busy) {
		rbuf_busy = true;
		*buf = uv_buf_init((char *)rbuf, WS_READ_BUF);
		return;
	}
	/* libuv never nests reads; this is only a safe fallback. */
	buf->base = dd_malloc(WS_READ_BUF);
	buf->len = buf->base != NULL ? WS_READ_BUF : 0;
}

static void release_read_buf(const uv_buf_t *buf)
{
	if (buf->base == NULL)
		return;
	if ((uint8_t *)buf->base == rbuf)
		rbuf_busy = false;
	else
		dd_free(buf->base);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	dd_ws *ws = s->data;

	ws_enter(ws);
	if (nread > 0 && ws->connecting)
		ws_hs_feed(ws, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread > 0)
		ws_feed(ws, (const uint8_t *)buf->base, (size_t)nread);
	else if (nread == UV_EOF && ws->connecting)
		ws_finish(ws, DD_ERR_UPSTREAM);
	else if (nread == UV_EOF)
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_CLOSED);
	else if (nread < 0)
		ws_finish(ws, nread == UV_ENOBUFS ? DD_ERR_NOMEM : DD_ERR_IO);
	release_read_buf(buf);
	ws_leave(ws);
}

/* --- sending ------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
	struct ws_wreq *wr = req->data;
	dd_ws *ws = wr->ws;

	dd_free(wr->data);
	dd_free(wr);
	ws->inflight = NULL;
	/* Cancelled writes are reported while the ws is closing. */
	if (status == UV_ECANCELED || ws->finished)
		return;
	ws_enter(ws);
	if (status < 0)
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_IO);
	ws_leave(ws);
}

/* Hands the queue to the kernel: uv_try_write first, the rest by one
 * uv_write at a time so that nothing else is buffered meanwhile. */
static void ws_flush(dd_ws *ws)
{
	struct ws_wreq *wr;
	uv_buf_t b;
	char *data = NULL;
	size_t len = 0;
	int n;

	if (ws->loop == NULL || ws->finished || ws->connecting ||
	    ws->inflight != NULL || ws->out.len == 0)
		return;
	b = uv_buf_init((char *)ws->out.data, (unsigned)ws->out.len);
	n = uv_try_write(ws->stream, &b, 1);
	if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_IO);
		return;
	}
	if (n > 0)
		dd_buf_consume(&ws->out, (size_t)n);
	if (ws->out.len == 0) {
		dd_buf_free(&ws->out); /* an idle ws keeps no buffer */
		return;
	}
	wr = dd_malloc(sizeof *wr);
	if (wr == NULL) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	(void)dd_buf_steal(&ws->out, &data, &len); /* data is non-NULL */
	wr->ws = ws;
	wr->data = data;
	wr->len = len;
	wr->req.data = wr;
	b = uv_buf_init(data, (unsigned)len);
	n = uv_write(&wr->req, ws->stream, &b, 1, on_write);
	if (n != 0) {
		dd_free(data);
		dd_free(wr);
		ws_finish(ws, DD_ERR_IO);
		return;
	}
	ws->inflight = wr;
}

size_t dd_ws_queued(const dd_ws *ws)
{
	size_t q = ws->out.len;

	if (ws->inflight != NULL)
		q += ws->inflight->len;
	if (ws->ctx != NULL)
		q += wslay_event_get_queued_msg_length(ws->ctx);
	return q;
}

dd_err_t dd_ws_send(dd_ws *ws, dd_ws_op op, const void *data, size_t len)
{
	struct wslay_event_msg m;
	dd_err_t rc;
	int r;

	if (ws->finished || ws->closing)
		return DD_ERR_CLOSED;
	if ((op != DD_WS_TEXT && op != DD_WS_BINARY) ||
	    (len > 0 && data == NULL))
		return DD_ERR_INVALID;
	if (len > ws->o.max_message)
		return DD_ERR_TOO_LARGE;
	if (op == DD_WS_TEXT && !dd_ws_utf8_valid(data, len))
		return DD_ERR_INVALID;
	if (ws->connecting || dd_ws_queued(ws) > ws->o.high_water) {
		ws->want_drain = true;
		return DD_ERR_BUSY;
	}
	ws_enter(ws);
	rc = ws_ctx(ws);
	if (rc)
		goto out;
	m.opcode = (uint8_t)op;
	m.msg = len > 0 ? data : (const uint8_t *)"";
	m.msg_length = len;
	r = wslay_event_queue_msg(ws->ctx, &m);
	if (r != 0) {
		rc = r == WSLAY_ERR_NOMEM ? DD_ERR_NOMEM : DD_ERR_CLOSED;
		goto out;
	}
	if (ws->loop != NULL)
		ws->last_data = uv_now(ws->loop);
out:
	ws_leave(ws);
	return rc;
}

/* --- closing ------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
	dd_ws *ws = req->data;

	dd_free(req);
	if (status == UV_ECANCELED || ws->finished)
		return;
	ws_enter(ws);
	if (status < 0)
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_CLOSED);
	ws_leave(ws);
}

/*
 * Our close frame is out and nothing more will be: half-close so the peer
 * sees EOF (RFC 6455 7.1.1, the server closes first), and read until its
 * EOF or the close timer, so its last bytes cannot turn into a RST that
 * destroys our close frame in flight.
 */
static void ws_shutdown(dd_ws *ws)
{
	uv_shutdown_t *req;
	int r;

	ws->shut = true;
	if (ws->loop == NULL) {
		ws_finish(ws, DD_OK);
		return;
	}
	req = dd_malloc(sizeof *req);
	if (req == NULL) {
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_NOMEM);
		return;
	}
	req->data = ws;
	r = uv_shutdown(req, ws->stream, on_shutdown);
	if (r != 0) {
		dd_free(req);
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_CLOSED);
	}
}

/*
 * wslay sends control frames ahead of queued data and stops writing after
 * a close, so a close queued now would drop messages already accepted by
 * dd_ws_send. It waits in close_pending until wslay's queue is empty.
 */
static void ws_close_now(dd_ws *ws, uint16_t code, const char *reason,
			 size_t rlen)
{
	if (ws->close_pending || ws->close_sent)
		return;
	ws->close_reason = dd_strndup(reason, rlen);
	if (ws->close_reason == NULL) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	ws->close_pending = true;
	ws->close_code = code;
	ws_begin_closing(ws);
}

dd_err_t dd_ws_close(dd_ws *ws, uint16_t code, const char *reason)
{
	size_t rlen = reason != NULL ? strlen(reason) : 0;

	if (ws->finished)
		return DD_ERR_CLOSED;
	if (code != 0 && !dd_ws_close_code_sendable(code))
		return DD_ERR_INVALID;
	if (rlen > 123 || (code == 0 && rlen > 0) ||
	    !dd_ws_utf8_valid((const uint8_t *)(reason ? reason : ""), rlen))
		return DD_ERR_INVALID;
	if (ws->closing)
		return DD_OK;
	ws_enter(ws);
	if (ws->connecting)
		ws_finish(ws, DD_ERR_CANCELLED);
	else
		ws_close_now(ws, code, reason ? reason : "", rlen);
	ws_leave(ws);
	return DD_OK;
}

void dd_ws_abort(dd_ws *ws)
{
	if (ws->finished)
		return;
	ws_enter(ws);
	ws_finish(ws, DD_ERR_CANCELLED);
	ws_leave(ws);
}

/* --- timers -------------------------------------------------------------- */

void ws_arm(dd_ws *ws, uint64_t ms)
{
	(void)uv_timer_start(&ws->timer, on_timer, ms, 0);
}

/*
 * The timer is re-armed lazily: traffic only moves timestamps, and a timer
 * that fires early re-arms for the new deadline. No timer call per frame.
 */
void ws_schedule(dd_ws *ws)
{
	uint64_t now, due = UINT64_MAX, d;

	if (ws->loop == NULL || ws->finished || ws->closing || ws->connecting)
		return;
	if (ws->o.idle_timeout_ms != 0)
		due = ws->last_data + ws->o.idle_timeout_ms;
	if (ws->o.ping_interval_ms != 0) {
		if (ws->ping_out)
			d = ws->ping_sent + ws->o.ping_timeout_ms;
		else
			d = ws->last_rx + ws->o.ping_interval_ms;
		if (d < due)
			due = d;
	}
	if (due == UINT64_MAX)
		return;
	now = uv_now(ws->loop);
	ws_arm(ws, due > now ? due - now : 0);
}

static void ws_keepalive(dd_ws *ws)
{
	struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
	uint64_t now = uv_now(ws->loop);

	if (ws->o.idle_timeout_ms != 0 &&
	    now - ws->last_data >= ws->o.idle_timeout_ms) {
		ws->err = DD_ERR_TIMEOUT;
		ws_close_now(ws, DD_WS_CLOSE_GOING_AWAY, "idle", 4);
		return;
	}
	/* A paused reader cannot see the pong: its choice is not silence. */
	if (ws->user_paused) {
		ws->ping_out = false;
		ws->last_rx = now;
	}
	if (ws->o.ping_interval_ms != 0 && ws->ping_out &&
	    now - ws->ping_sent >= ws->o.ping_timeout_ms) {
		ws_finish(ws, DD_ERR_TIMEOUT);
		return;
	}
	if (ws->o.ping_interval_ms != 0 && !ws->ping_out &&
	    now - ws->last_rx >= ws->o.ping_interval_ms) {
		if (ws_ctx(ws) || wslay_event_queue_msg(ws->ctx, &ping) != 0) {
			ws_finish(ws, DD_ERR_NOMEM);
			return;
		}
		ws->ping_out = true;
		ws->ping_sent = now;
	}
	ws_schedule(ws);
}

static void on_timer(uv_timer_t *t)
{
	dd_ws *ws = t->data;

	ws_enter(ws);
	if (ws->closing)
		ws_finish(ws, ws->close_received ? DD_OK : DD_ERR_TIMEOUT);
	else if (ws->connecting)
		ws_finish(ws, DD_ERR_TIMEOUT);
	else
		ws_keepalive(ws);
	ws_leave(ws);
}

/* --- the pump: deferred work after every entry point --------------------- */

static void ws_sync_reading(dd_ws *ws)
{
	size_t q = dd_ws_queued(ws);
	bool want;
	int r;

	if (ws->loop == NULL || ws->finished || !ws->stream_ready)
		return;
	if (q > pause_limit(ws))
		ws->q_paused = true;
	else if (q <= ws->o.low_water)
		ws->q_paused = false;
	/* While closing, read to see the peer's close and EOF. */
	want = ws->closing || (!ws->user_paused && !ws->q_paused);
	if (want == ws->reading)
		return;
	if (want) {
		r = uv_read_start(ws->stream, on_alloc, on_read);
		if (r != 0) {
			ws_finish(ws, DD_ERR_IO);
			return;
		}
	} else {
		(void)uv_read_stop(ws->stream);
	}
	ws->reading = want;
}

/* Drops the wslay context when nothing is half-way through it. */
static void ws_maybe_evict(dd_ws *ws)
{
	if (ws->ctx == NULL || ws->in_wslay || ws->closing || ws->finished)
		return;
	if (ws->rx.hlen != 0 || ws->rx.left != 0 || ws->rx.in_msg)
		return;
	if (wslay_event_want_write(ws->ctx) ||
	    wslay_event_get_queued_msg_count(ws->ctx) != 0)
		return;
	wslay_event_context_free(ws->ctx);
	ws->ctx = NULL;
}

/* Lets wslay write what it has queued, then the pending close, if any.
 * Only our send callback can make wslay_event_send fail: for memory. */
static void ws_pump_wslay(dd_ws *ws)
{
	size_t rlen;
	int r;

	if (ws->in_wslay || ws->connecting)
		return;
	if (ws->close_pending && ws_ctx(ws)) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	if (ws->ctx == NULL)
		return;
	if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx)) {
		ws_finish(ws, DD_ERR_NOMEM);
		return;
	}
	if (!ws->close_pending ||
	    wslay_event_get_queued_msg_count(ws->ctx) != 0)
		return;
	ws->close_pending = false;
	rlen = strlen(ws->close_reason);
	r = wslay_event_queue_close(ws->ctx, ws->close_code,
				    (const uint8_t *)ws->close_reason, rlen);
	dd_free(ws->close_reason);
	ws->close_reason = NULL;
	/* NO_MORE_MSG: wslay already queued its own close (the echo). */
	if ((r != 0 && r != WSLAY_ERR_NO_MORE_MSG) ||
	    wslay_event_send(ws->ctx) != 0)
		ws_finish(ws, DD_ERR_NOMEM);
}

static void ws_pump(dd_ws *ws)
{
	ws_pump_wslay(ws);
	if (ws->finished)
		return;
	if (ws->ctx != NULL && !ws->close_sent &&
	    wslay_event_get_close_sent(ws->ctx)) {
		ws->close_sent = true;
		if (ws->failing && !ws->close_received) {
			ws->code = wslay_event_get_status_code_sent(ws->ctx);
			if (ws->code == DD_WS_CLOSE_TOO_BIG &&
			    ws->err == DD_ERR_INVALID)
				ws->err = DD_ERR_TOO_LARGE;
		}
	}
	ws_flush(ws);
	if (ws->finished)
		return;
	if (ws->close_sent && (ws->close_received || ws->failing) &&
	    ws->out.len == 0 && !ws->shut) {
		ws_shutdown(ws);
		if (ws->finished)
			return;
	}
	ws_sync_reading(ws);
	if (ws->finished)
		return;
	if (ws->want_drain && !ws->closing && !ws->connecting &&
	    dd_ws_queued(ws) <= ws->o.low_water) {
		ws->want_drain = false;
		if (ws->h.on_drain != NULL)
			ws->h.on_drain(ws, ws->ud);
		if (ws->finished)
			return;
	}
	ws_maybe_evict(ws);
}

void ws_enter(dd_ws *ws)
{
	ws->depth++;
}

void ws_leave(dd_ws *ws)
{
	if (ws->depth > 1) {
		ws->repump = true;
	} else {
		do {
			ws->repump = false;
			if (!ws->finished)
				ws_pump(ws);
		} while (ws->repump && !ws->finished);
	}
	ws->depth--;
	if (ws->depth == 0 && ws->finished && ws->loop == NULL)
		ws_final(ws);
}

/* --- small accessors ----------------------------------------------------- */

void dd_ws_set_read_paused(dd_ws *ws, int paused)
{
	if (ws->finished)
		return;
	ws_enter(ws);
	ws->user_paused = paused != 0;
	ws_leave(ws);
}

void dd_ws_set_max_message(dd_ws *ws, uint64_t max_message)
{
	if (max_message == 0 || max_message > WS_LIMIT)
		return;
	ws->max_recv = max_message;
	if (ws->ctx != NULL)
		wslay_event_config_set_max_recv_msg_length(ws->ctx,
							   max_message);
}

void dd_ws_set_userdata(dd_ws *ws, void *ud)
{
	ws->ud = ud;
}

void *dd_ws_userdata(const dd_ws *ws)
{
	return ws->ud;
}

dd_err_t dd_ws_feed(dd_ws *ws, const void *data, size_t len)
{
	if (ws->loop != NULL)
		return DD_ERR_INVALID;
	if (ws->finished)
		return DD_ERR_CLOSED;
	if (len == 0)
		return DD_OK;
	if (data == NULL)
		return DD_ERR_INVALID;
	ws_enter(ws);
	ws_feed(ws, data, len);
	ws_leave(ws);
	return DD_OK;
}

size_t dd_ws_detached_take(dd_ws *ws, uint8_t *buf, size_t cap)
{
	size_t n;

	if (ws->loop != NULL || ws->finished)
		return 0;
	ws_enter(ws);
	n = ws->out.len < cap ? ws->out.len : cap;
	if (n > 0) {
		memcpy(buf, ws->out.data, n);
		dd_buf_consume(&ws->out, n);
	}
	if (ws->out.len == 0)
		dd_buf_free(&ws->out);
	ws_leave(ws); /* may finish and free ws */
	return n;
}
