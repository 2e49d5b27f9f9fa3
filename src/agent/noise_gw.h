/*
 * noise_gw.h: the agent's `/noise/ws` gateway (spec noise-sessions.md
 * 2.7-2.11 and 4; docs/noise.md, "The gateway").
 *
 * One Noise_IK message per binary WebSocket message; text frames are
 * ignored. Before the handshake: one message of at most 65,535 bytes
 * within DD_NOISE_GW_HANDSHAKE_MS, else the connection is dropped. A
 * first message that does not decrypt is dropped without a reply; a
 * device that decrypts but is not in the trust set gets close 1008
 * "unknown peer" and no message 2, and is logged. After the handshake,
 * requests are JSON objects (noise_rpc.h) answered one at a time, in
 * order; pipelined requests wait in a bounded queue (reading pauses when
 * it is full). A request may carry "req_id" (a string or an integer):
 * its replies then carry it too, arrays wrapped as {"req_id", "result"}.
 * ("id" would collide with the session id the shell methods take.) A
 * reply too large for one Noise message becomes an error reply rather
 * than a dropped connection. A transport message that fails to
 * authenticate, a replayed or reordered one included, or plaintext that
 * is not JSON drops the connection (a failed decryption also closes the
 * Noise transport for good).
 *
 * After an attach ack the connection streams for the rest of its life:
 * output in messages of at most 4,096 bytes, input written to the
 * session as it comes, each side paused while the other is full.
 * Revoking a device closes its connections at once (1008 "device
 * revoked").
 */
#ifndef DD_AGENT_NOISE_GW_H
#define DD_AGENT_NOISE_GW_H

#include <stddef.h>
#include <stdint.h>

#include "agent/noise_rpc.h"
#include "auth/authz.h"
#include "core/err.h"
#include "noise/static_key.h"

#define DD_NOISE_GW_HANDSHAKE_MS 10000
#define DD_NOISE_GW_MAX_CONNS 256
#define DD_NOISE_GW_QUEUE 16        /* pipelined requests held */
#define DD_NOISE_GW_CHUNK 4096      /* output bytes per message */

typedef struct dd_noise_gw dd_noise_gw;

typedef struct dd_noise_gw_opts {
	const dd_static_key *key; /* the agent's; borrowed, must outlive gw */
	/* 1 when the device key is paired and not revoked. */
	int (*trusted)(const uint8_t pub[DD_X25519_LEN], void *ud);
	void *trusted_ud;
	dd_noise_rpc_opts rpc;    /* copied; its clients must outlive gw */
	uint64_t handshake_ms;    /* 0: DD_NOISE_GW_HANDSHAKE_MS */
	size_t max_conns;         /* 0: DD_NOISE_GW_MAX_CONNS */
} dd_noise_gw_opts;

/* Free with dd_noise_gw_free. */
dd_err_t dd_noise_gw_new(const dd_noise_gw_opts *opts, dd_noise_gw **out);

/*
 * Ends every connection (no close frame, as for a dying process) and
 * frees gw. Their last memory is released by the loop afterwards.
 */
void dd_noise_gw_free(dd_noise_gw *gw);

/* The GET /noise/ws route, for dd_authz_mount. */
dd_authz_route dd_noise_gw_route(dd_noise_gw *gw);

/* Closes every open connection of this device (1008 "device revoked"). */
void dd_noise_gw_revoke(dd_noise_gw *gw, const uint8_t pub[DD_X25519_LEN]);

/* Open connections, handshaking ones included. */
size_t dd_noise_gw_count(const dd_noise_gw *gw);

#endif
