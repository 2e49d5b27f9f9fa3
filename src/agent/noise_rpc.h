/*
 * noise_rpc.h: what a paired device may ask for over the Noise channel
 * (spec noise-sessions.md section 4; docs/noise.md, "RPC").
 *
 * One request is one JSON object with a string "method". shell.* methods
 * go to sessiond over its unix socket, the EasyEnclave ones (health,
 * list, logs, attest, exec, attach) to EE's; deploy is never allowed.
 * Requests are rebuilt from the fields each method takes, never forwarded
 * blindly, and session ids must be canonical lowercase UUIDs. In
 * confidential mode shell.create_session, shell.attach_session, exec and
 * attach are refused (spec 7.17: a paired device must not get the
 * execution that the HTTP routes deliberately do not offer).
 *
 * Replies keep the reference's shapes: bare arrays for the lists, {"id"}
 * for create, {"ok": true} for resize and close, and an error object
 * {"error": code, "detail": text} otherwise. A replay larger than one
 * Noise message comes as several replies (docs/noise.md): every part has
 * "more": true but the last, which has "more": false; a replay that fits
 * is the reference's single reply, unchanged.
 */
#ifndef DD_AGENT_NOISE_RPC_H
#define DD_AGENT_NOISE_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"
#include "net/ndjson.h"

/* Replay pages are asked for at this size so each fits one message. */
#define DD_NOISE_RPC_REPLAY_PAGE 40000

typedef struct dd_noise_rpc_opts {
	dd_ndjson *sessiond; /* NULL: shell.* answer shell_failed */
	dd_ndjson *ee;       /* NULL: EE methods answer upstream_failed */
	int confidential;
} dd_noise_rpc_opts;

typedef struct dd_noise_rpc_call dd_noise_rpc_call;

/*
 * One outcome of a request, for the callback's duration:
 *  - reply: a message for the device; more = 1 when another follows;
 *  - pipe (attach): the stream, now the callee's (reading stopped,
 *    pipe->data free, release with dd_ndjson_pipe_close()); reply is the
 *    ack to send first and extra the first bytes of output after it.
 * The callback returns nonzero to pause before the next part (the
 * device's queue is full); dd_noise_rpc_resume() continues. After a
 * result with more = 0 or a pipe, the call is over and freed.
 */
typedef struct dd_noise_rpc_result {
	json_t *reply;           /* borrowed */
	int more;
	uv_pipe_t *pipe;
	const uint8_t *extra;
	size_t extra_len;
} dd_noise_rpc_result;

typedef int (*dd_noise_rpc_cb)(const dd_noise_rpc_result *res, void *ud);

/*
 * Starts req (borrowed). opts must outlive the call. The callback may run
 * before this returns (a refusal needs no backend); then *out is NULL.
 * Otherwise *out is the call, for cancel and resume, until its final
 * result (more = 0, or a pipe) has been delivered: forget it then.
 * Fails only with NOMEM (nothing ran).
 */
dd_err_t dd_noise_rpc_start(const dd_noise_rpc_opts *opts, const json_t *req,
			    dd_noise_rpc_cb cb, void *ud,
			    dd_noise_rpc_call **out);

/* Continues a call whose callback asked to pause. */
void dd_noise_rpc_resume(dd_noise_rpc_call *c);

/* Abandons a call: no callback runs any more; NULL is a no-op. */
void dd_noise_rpc_cancel(dd_noise_rpc_call *c);


#endif
