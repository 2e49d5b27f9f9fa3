/*
 * ws.h: WebSocket connections (RFC 6455) on libuv, framed by wslay.
 *
 * One dd_ws is one connection, server or client side, over a connected uv
 * stream (TCP, or a unix socket / socketpair opened with uv_pipe_open).
 * ws:// only: there is no TLS in this module. Public traffic reaches us
 * through cloudflared, which terminates TLS on loopback.
 *
 * Loop context: everything, every handler included, runs on the thread of
 * the loop that owns the stream. Handlers may call any dd_ws_* function,
 * on their own ws too: dd_ws_close() and dd_ws_abort() are safe from inside
 * on_message, on_drain and on_open.
 *
 * Lifetime: once a ws has reached the caller (through *out or on_open),
 * on_close runs exactly once, from a loop callback; the ws is freed when
 * on_close returns. Do not use the pointer after that. A detached ws
 * (dd_ws_new_detached) is the exception: its on_close runs just before the
 * outermost dd_ws_* call on it returns.
 *
 * Limits (R5, R7): every received message is capped (max_message, close
 * 1009), so is the number of frames per message (close 1008), the write
 * queue (high_water, see dd_ws_send), and the closing handshake
 * (close_timeout_ms). dd_ws_set_max_message() raises the cap once the peer
 * has authenticated.
 *
 * Memory: an idle connection holds no read buffer (reads land in one
 * buffer per loop thread) and no wslay context (the 9 KiB context is
 * created when bytes arrive or a message is queued, and released again
 * once the connection is quiet at a frame boundary).
 */
#ifndef DD_NET_WS_H
#define DD_NET_WS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"

typedef struct dd_ws dd_ws;

/* Message types; the values are the RFC 6455 opcodes. */
typedef enum {
	DD_WS_TEXT = 1,
	DD_WS_BINARY = 2,
} dd_ws_op;

/* Close codes used by this module (RFC 6455 section 7.4.1). */
enum {
	DD_WS_CLOSE_NORMAL = 1000,
	DD_WS_CLOSE_GOING_AWAY = 1001,
	DD_WS_CLOSE_PROTOCOL = 1002,
	DD_WS_CLOSE_NO_STATUS = 1005,  /* received close without a code */
	DD_WS_CLOSE_ABNORMAL = 1006,   /* no close frame at all */
	DD_WS_CLOSE_BAD_DATA = 1007,   /* text that is not UTF-8 */
	DD_WS_CLOSE_POLICY = 1008,
	DD_WS_CLOSE_TOO_BIG = 1009,
	DD_WS_CLOSE_INTERNAL = 1011,
};

/* Length of a Sec-WebSocket-Accept value without its NUL. */
#define DD_WS_ACCEPT_LEN 28

typedef struct dd_ws_opts {
	uint64_t max_message;       /* per message, both ways; default 1 MiB */
	size_t high_water;          /* dd_ws_send refuses above this queue */
	size_t low_water;           /* on_drain at or below this queue size */
	uint64_t ping_interval_ms;  /* ping after this much silence; 0 = off */
	uint64_t ping_timeout_ms;   /* abort when the ping gets no answer */
	uint64_t idle_timeout_ms;   /* close 1001 after this long without a
				     * message either way; 0 = off */
	uint64_t close_timeout_ms;  /* bound on the closing handshake */
	uint64_t handshake_timeout_ms; /* client: connect + 101 response */
} dd_ws_opts;

/*
 * Defaults: max_message 1 MiB, high_water 256 KiB, low_water 64 KiB,
 * pings off (ping_timeout 10 s once ping_interval is set), idle timeout
 * off, close_timeout 5 s, handshake_timeout 10 s.
 */
void dd_ws_opts_default(dd_ws_opts *opts);

/*
 * Handlers. Any may be NULL. The table is copied at creation. data in
 * on_message is valid only during the call; text is valid UTF-8 (not
 * NUL-terminated). on_close gets why the connection ended (DD_OK for a
 * completed closing handshake, else the first cause: INVALID for a
 * protocol violation, TOO_LARGE, TIMEOUT, CLOSED for a peer that hung up
 * without a close frame, CANCELLED for dd_ws_abort, IO, NOMEM; for a
 * failed client handshake UPSTREAM, UNAUTHORIZED, FORBIDDEN, NOT_FOUND or
 * UNSUPPORTED from the HTTP status), the close code (the peer's, or the
 * one we sent when we failed the connection, or 1006) and the peer's
 * close reason ("" if none; valid UTF-8, NUL-terminated).
 */
typedef struct dd_ws_handlers {
	void (*on_open)(dd_ws *ws, void *ud);
	void (*on_message)(dd_ws *ws, dd_ws_op op, const uint8_t *data,
			   size_t len, void *ud);
	void (*on_drain)(dd_ws *ws, void *ud);
	void (*on_close)(dd_ws *ws, dd_err_t err, uint16_t code,
			 const char *reason, void *ud);
} dd_ws_handlers;

/*
 * Wraps an already connected stream (after an HTTP upgrade, or one end of
 * a socketpair in tests). stream must have been allocated with dd_malloc
 * and initialised on its loop; on DD_OK the ws owns it (sets
 * stream->data, reads it, and finally uv_close()s it and dd_free()s it);
 * on error the caller still owns it. leftover: bytes already read past
 * the HTTP head, processed before this returns (handlers may run). opts
 * NULL means defaults. on_open is not called: the ws is open already.
 * The ws is freed after on_close.
 */
dd_err_t dd_ws_from_stream(uv_stream_t *stream, int is_server,
			   const uint8_t *leftover, size_t leftover_len,
			   const dd_ws_opts *opts, const dd_ws_handlers *h,
			   void *ud, dd_ws **out);

/*
 * Client: connects to "ws://host[:port][/path][?query]" (host: IPv4,
 * [IPv6] or a name resolved with uv_getaddrinfo), sends the upgrade
 * request with a random key and checks the 101 answer (Upgrade,
 * Connection, Sec-WebSocket-Accept, no extensions). extra_headers (may be
 * NULL) are whole "Name: value\r\n" lines added to the request, e.g.
 * Authorization. Returns INVALID for a malformed URL or header lines,
 * UNSUPPORTED for wss://; no handler runs then. On DD_OK, *out is the
 * connection: on_open runs when the handshake succeeds, and on_close runs
 * exactly once in every case (failure to connect included). Sending
 * before on_open returns DD_ERR_BUSY and on_drain follows the open.
 */
dd_err_t dd_ws_connect(uv_loop_t *loop, const char *url,
		       const char *extra_headers, const dd_ws_opts *opts,
		       const dd_ws_handlers *h, void *ud, dd_ws **out);

/*
 * Client over a stream the caller has already connected (stream as for
 * dd_ws_from_stream: dd_malloc'd, initialised on its loop, owned by the
 * ws on DD_OK): sends the upgrade request for url and checks the 101 as
 * dd_ws_connect does. url may be ws:// or wss://: it names only the Host
 * header (port omitted when it is the scheme's default) and the path;
 * the TLS, if any, is the stream's business (the client's relay,
 * client/client_tls.h). Same errors and handler rules as dd_ws_connect.
 */
dd_err_t dd_ws_connect_stream(uv_stream_t *stream, const char *url,
			      const char *extra_headers,
			      const dd_ws_opts *opts,
			      const dd_ws_handlers *h, void *ud, dd_ws **out);

/*
 * Queues one message (copied). DD_OK: queued. DD_ERR_BUSY: not queued,
 * because more than high_water bytes are waiting; on_drain runs once the
 * queue is down to low_water (unless on_close comes first); keep the
 * message and send it then. Also
 * CLOSED once closing, TOO_LARGE above max_message, INVALID for text that
 * is not UTF-8 or a bad op, NOMEM. The queue therefore never exceeds
 * high_water plus one message (plus control frames).
 */
dd_err_t dd_ws_send(dd_ws *ws, dd_ws_op op, const void *data, size_t len);

/* Bytes queued for the peer and not yet accepted by the kernel. */
size_t dd_ws_queued(const dd_ws *ws);

/*
 * Starts the closing handshake: sends a close frame with code (0 for a
 * close without status; else 1000-1003, 1007-1011 or 3000-4999) and
 * reason (NULL or UTF-8, at most 123 bytes), waits for the peer's close
 * for close_timeout_ms, then closes the stream. INVALID for a bad code or
 * reason; DD_OK if already closing. on_close follows.
 */
dd_err_t dd_ws_close(dd_ws *ws, uint16_t code, const char *reason);

/* Tears the connection down now, without a close frame. on_close follows
 * with DD_ERR_CANCELLED (unless the connection had already ended). */
void dd_ws_abort(dd_ws *ws);

/*
 * Stops (paused = 1) or resumes reading from the peer, for consumers that
 * cannot keep up (a PTY that is not draining). Control frames wait too,
 * and keepalive pings are suspended meanwhile.
 */
void dd_ws_set_read_paused(dd_ws *ws, int paused);

/* Raises or lowers the receive cap (R7: small before authentication). */
void dd_ws_set_max_message(dd_ws *ws, uint64_t max_message);

/* Replaces the ud passed to handlers (e.g. set in on_open). */
void dd_ws_set_userdata(dd_ws *ws, void *ud);
void *dd_ws_userdata(const dd_ws *ws);

/*
 * Server side of a route handler: runs dd_ws_check_upgrade on req and
 * either answers the error itself (400, or 426 with Sec-WebSocket-Version)
 * or switches protocols with dd_http_upgrade. opts NULL means defaults.
 * DD_OK: on_open runs with the new ws (before this returns, with the
 * current HTTP server) and on_close follows later. Any error: no handler
 * runs, the request has been answered or its connection is gone, and ud
 * is still the caller's.
 */
struct dd_http_req;
dd_err_t dd_ws_accept(struct dd_http_req *req, const dd_ws_opts *opts,
		      const dd_ws_handlers *h, void *ud);

/* --- without a socket (fuzzing, frame-level tests) ----------------------- */

/*
 * A ws with no stream and no timers: bytes come in through dd_ws_feed and
 * go out through dd_ws_detached_take. Pings, idle and close timeouts are
 * off. It finishes when the closing handshake is complete and the close
 * frame has been taken, or on dd_ws_abort; on_close then runs before the
 * outermost dd_ws_* call returns, and the ws is freed.
 */
dd_err_t dd_ws_new_detached(int is_server, const dd_ws_opts *opts,
			    const dd_ws_handlers *h, void *ud, dd_ws **out);
/* Processes received bytes as if read from the socket. INVALID on a ws
 * that has a stream; CLOSED once it has finished. */
dd_err_t dd_ws_feed(dd_ws *ws, const void *data, size_t len);
/* Moves up to cap bytes of output into buf; returns how many. */
size_t dd_ws_detached_take(dd_ws *ws, uint8_t *buf, size_t cap);

/* --- handshake pieces, pure functions ---------------------------------- */

/*
 * Sec-WebSocket-Accept for a key: base64(SHA-1(key || GUID)), written
 * NUL-terminated to out. CRYPTO if OpenSSL fails.
 */
dd_err_t dd_ws_accept_key(const char *key, size_t key_len,
			  char out[DD_WS_ACCEPT_LEN + 1]);

/*
 * The server-side checks of an upgrade request (RFC 6455 section 4.2.1)
 * over its header values (NULL when absent): method GET (a DD_M_* bit),
 * HTTP/1.1, Upgrade lists "websocket", Connection lists "upgrade", and a
 * Sec-WebSocket-Key that decodes to 16 bytes. DD_OK fills accept_out.
 * Else *status is 400 (INVALID) or, when Sec-WebSocket-Version is not 13,
 * 426 (UNSUPPORTED; answer with "Sec-WebSocket-Version: 13"), and *why is
 * a static message for the error body.
 */
dd_err_t dd_ws_check_upgrade(unsigned method_bit, int http_minor,
			     const char *upgrade, const char *connection,
			     const char *version, const char *key,
			     char accept_out[DD_WS_ACCEPT_LEN + 1],
			     int *status, const char **why);

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int dd_ws_utf8_valid(const uint8_t *p, size_t n);

/* 1 when an endpoint may send this close code. */
int dd_ws_close_code_sendable(uint16_t code);

#endif
