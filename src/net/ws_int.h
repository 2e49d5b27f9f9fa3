/*
 * ws_int.h: internals shared by ws.c (connection, queue, lifetime),
 * ws_frame.c (wslay glue, frame scanner), ws_client.c (connect and the
 * client handshake) and ws_http.c (server upgrade). Not a public
 * interface: nothing outside src/net/ws*.c includes it.
 */
#ifndef DD_NET_WS_INT_H
#define DD_NET_WS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <wslay/wslay.h>

#include "core/buf.h"
#include "net/ws.h"

/* Frame boundaries as seen ahead of wslay (see ws_rx_scan in ws.c). */
struct ws_rx {
	uint8_t hdr[14];   /* header bytes so far: 2 + 8 length + 4 mask */
	uint8_t hlen;
	bool in_msg;       /* a fragmented data message is open */
	uint32_t frags;    /* frames of the current data message */
	uint64_t left;     /* payload bytes of the current frame to come */
	uint64_t msg_len;  /* payload bytes of the current data message */
};

struct ws_wreq;
struct ws_hs;

struct dd_ws {
	uv_loop_t *loop;          /* NULL when detached */
	uv_stream_t *stream;      /* owned; NULL when detached */
	uv_timer_t timer;         /* keepalive, then close or handshake bound */
	wslay_event_context_ptr ctx; /* NULL while the connection is quiet */
	struct ws_hs *hs;         /* client handshake state until open */
	struct ws_wreq *inflight; /* the single uv_write in flight */
	dd_buf out;               /* frames not yet handed to the kernel */
	const uint8_t *in;        /* bytes offered to wslay's recv callback */
	size_t in_len;
	char *reason;             /* the peer's close reason */
	char *close_reason;       /* ours, while close_pending */
	void *ud;
	dd_ws_handlers h;
	dd_ws_opts o;
	uint64_t max_recv;        /* receive cap; o.max_message caps sends */
	struct ws_rx rx;
	uint64_t last_rx;         /* loop time of the last bytes received */
	uint64_t last_data;       /* ... of the last message either way */
	uint64_t ping_sent;
	dd_err_t err;             /* first cause of the end, DD_OK if none */
	uint16_t code;            /* close code to report */
	uint16_t close_code;      /* ours, while close_pending */
	uint16_t depth;           /* nesting of dd_ws entry points */
	uint8_t refs;             /* handles and requests still pointing here */
	bool is_server;
	bool connecting;          /* client before the 101 */
	bool closing;
	bool close_pending;       /* our close waits for queued data */
	bool close_sent;
	bool close_received;
	bool failing;             /* we failed the connection (1002 etc.) */
	bool shut;                /* uv_shutdown issued */
	bool finished;
	bool in_wslay;            /* wslay_event_recv is on the stack */
	bool want_drain;
	bool user_paused;
	bool q_paused;            /* reading stopped: our queue is too long */
	bool stream_ready;        /* connected: reading may start */
	bool reading;
	bool repump;
	bool ping_out;
	bool counted;             /* holds a reference on the read buffer */
};

/* Creates a ws without stream (ws.c). Caller frees with ws_destroy() until
 * a stream is attached. */
dd_err_t ws_alloc(int is_server, const dd_ws_opts *opts,
		  const dd_ws_handlers *h, void *ud, dd_ws **out);
void ws_destroy(dd_ws *ws);
/*
 * Gives the ws its stream (sets stream->data) and its timer handle; from
 * here on the ws ends only through ws_finish and on_close.
 */
void ws_attach(dd_ws *ws, uv_stream_t *stream);
/*
 * Attaches a connected stream and opens the ws: on_open if notify, then
 * the leftover bytes, then reading and keepalive start.
 */
void ws_open(dd_ws *ws, uv_stream_t *stream, const uint8_t *leftover,
	     size_t leftover_len, int notify);
/* Starts the single timer (handshake bound for clients). */
void ws_arm(dd_ws *ws, uint64_t ms);
/* Does a comma-separated header value list token (any case)? */
int ws_has_token(const char *value, const char *token);

/* Entry/exit of every call into the ws: exit runs deferred work (sending,
 * draining, closing) and, for detached ws, the final free. */
void ws_enter(dd_ws *ws);
void ws_leave(dd_ws *ws);
/* Processes received bytes (after the handshake; ws_frame.c). */
void ws_feed(dd_ws *ws, const uint8_t *p, size_t n);
/* Creates the wslay context if the ws has none (NOMEM). */
dd_err_t ws_ctx(dd_ws *ws);
/* Enters the closing state and arms the close timer. */
void ws_begin_closing(dd_ws *ws);
/* Ends the connection now: closes handles; on_close follows. */
void ws_finish(dd_ws *ws, dd_err_t err);
/* (Re)arms the keepalive timer from the timestamps. */
void ws_schedule(dd_ws *ws);
/* Drops one reference taken for a pending request; may free the ws. */
void ws_unref(dd_ws *ws);

/* Client handshake (ws_client.c): bytes read while connecting. */
void ws_hs_feed(dd_ws *ws, const uint8_t *p, size_t n);
void ws_hs_free(struct ws_hs *hs);
/* Cancels a pending name lookup; 1 if one was pending. */
int ws_hs_cancel(struct ws_hs *hs);

#endif
