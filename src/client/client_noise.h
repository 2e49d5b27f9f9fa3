/*
 * client_noise.h: one Noise_IK connection from this device to an agent's
 * /noise/ws (docs/noise.md "The gateway"), over the ws client, for the
 * shell client's step-by-step commands.
 *
 * Like client_http.h, the blocking-style calls (open, call, next) run the
 * given libuv loop until their answer is there or the connection's
 * deadline passes; they must not be called from a loop callback. Once a
 * connection streams (after shell.attach_session) everything is
 * event-driven: raw bytes arrive through on_data and leave through
 * dd_cn_send_raw.
 *
 * URLs: ws:// goes straight to dd_ws_connect; wss:// through a TLS relay
 * (client_tls.h) and dd_ws_connect_stream.
 */
#ifndef DD_CLIENT_CLIENT_NOISE_H
#define DD_CLIENT_CLIENT_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"
#include "noise/static_key.h"

typedef struct dd_cn dd_cn;

typedef struct dd_cn_opts {
	uv_loop_t *loop;            /* borrowed */
	const char *url;            /* ws[s]://host[:port]/noise/ws */
	const dd_static_key *key;   /* the device key (copied into the hs) */
	const uint8_t *agent_pub;   /* 32 bytes, checked by client_attest */
	const char *ca_file;        /* extra CAs for wss://, or NULL */
	uint64_t timeout_ms;        /* each blocking call; 0: 30 s */
} dd_cn_opts;

/* Stream handlers (after attach). Any may be NULL. */
typedef struct dd_cn_stream {
	void (*on_data)(const uint8_t *p, size_t n, void *ud);
	/* The connection ended: err DD_OK for a closing handshake, code and
	 * reason the peer's (1000 "session ended" when the session ends). */
	void (*on_end)(dd_err_t err, uint16_t code, const char *reason,
		       void *ud);
	void (*on_drain)(void *ud);
	void *ud;
} dd_cn_stream;

/*
 * Connects and runs the handshake. DD_OK: *out is ready for calls.
 * Errors with why: the ws's (IO, TIMEOUT, UPSTREAM...), CRYPTO for a
 * message 2 that does not authenticate, FORBIDDEN when the agent closes
 * with 1008 (this device is not paired, or revoked).
 */
dd_err_t dd_cn_open(const dd_cn_opts *o, dd_cn **out, char *why,
		    size_t why_len);

/*
 * One request: a copy of req (an object with "method") gains a req_id,
 * is sent, and the reply carrying that req_id is waited for (an array
 * reply is unwrapped from {"req_id", "result"}). *reply is a new
 * reference; an {"error"} object is returned as DD_OK too (the caller
 * decides). Errors: CLOSED, TIMEOUT, UPSTREAM (a reply that is not JSON
 * or has another req_id), NOMEM.
 */
dd_err_t dd_cn_call(dd_cn *c, json_t *req, json_t **reply, char *why,
		    size_t why_len);

/* The next reply of the last call's request (replay parts after "more"). */
dd_err_t dd_cn_next(dd_cn *c, json_t **reply, char *why, size_t why_len);

/*
 * shell.attach_session for id: the handlers are installed first, so
 * output that follows the ack at once is not lost. DD_OK: the connection
 * streams. An {"error"} reply is UPSTREAM with its detail in why (the
 * connection stays in RPC mode).
 */
dd_err_t dd_cn_attach(dd_cn *c, const char *id, int tail,
		      const dd_cn_stream *s, char *why, size_t why_len);

/*
 * Sends a request without waiting (from loop callbacks: a resize); its
 * reply is read and dropped. BUSY, CLOSED, NOMEM.
 */
dd_err_t dd_cn_send_json(dd_cn *c, json_t *req);

/* Streaming: one message of raw input. BUSY: wait for on_drain. */
dd_err_t dd_cn_send_raw(dd_cn *c, const void *p, size_t n);

/* Closes (1000), waits until the ws has ended, frees. NULL is a no-op. */
void dd_cn_close(dd_cn *c);

/*
 * The /noise/ws URL of an agent base URL (spec 2.7): https://h ->
 * wss://h/noise/ws, http://h -> ws://h/noise/ws, a bare host ->
 * wss://host/noise/ws; a base path is kept, trailing slashes dropped.
 * INVALID for another scheme or an empty host, TOO_LARGE past cap.
 */
dd_err_t dd_cn_ws_url(const char *agent_url, char *out, size_t cap);

#endif
