/*
 * registrar.h: the agent registering with its CP (spec: http-surface
 * 4.16, with this project's fresh binding, DESIGN.md 5 item 2):
 *
 *   GET  {cp}/register/nonce                      a single-use nonce
 *   quote over SHA-512("devopsdefender/register/v1" || nonce || noise_pub)
 *   ITA token over that quote                     (attestor.h)
 *   POST {cp}/register {vm_name, ita_token, nonce, noise_pubkey, url,
 *                       extra_ingress}            -> {agent_id, hostname, ...}
 *
 * Attempts repeat until one succeeds: transport errors, 5xx and 429 (and
 * a failed nonce fetch or mint) back off clamp(5 x attempt, 5, 60) units
 * of backoff_ms/5 s; any other 4xx is fatal, because the CP has judged
 * this VM's evidence and asking again will not change its mind.
 *
 * Once registered, it asks GET {cp}/register/{agent_id} every check_ms;
 * a 404 (the CP forgot this agent: a replaced CP, a reaped entry) starts
 * registration again, and the callback runs again when it lands. Other
 * failures (the CP is down) are not forgetting and change nothing.
 */
#ifndef DD_AGENT_REGISTRAR_H
#define DD_AGENT_REGISTRAR_H

#include <stdint.h>

#include <uv.h>

#include "agent/agent_state.h"
#include "attest/attestor.h"
#include "core/err.h"
#include "net/httpc.h"

typedef struct dd_registrar dd_registrar;

typedef struct dd_registrar_opts {
	const char *cp_url;
	const char *vm_name;
	const char *url;              /* where the CP reaches this agent */
	uint8_t noise_pub[32];
	dd_attestor *att;             /* borrowed */
	dd_httpc *http;               /* borrowed */
	const dd_agent_state *st;     /* borrowed: extras */
	uint64_t backoff_ms;          /* one back-off unit; 0: 5000 */
	uint64_t check_ms;            /* re-check period; 0: 60000 */
} dd_registrar_opts;

/*
 * DD_OK: registered (agent_id, hostname valid during the call). Any
 * other err is fatal (why says what the CP said). Not called after free.
 */
typedef void (*dd_registered_cb)(dd_err_t err, const char *agent_id,
				 const char *hostname, const char *why,
				 void *ud);

dd_err_t dd_registrar_start(uv_loop_t *loop, const dd_registrar_opts *o,
			    dd_registered_cb cb, void *ud,
			    dd_registrar **out);
/*
 * The extras changed (a deploy exposed a port): sends them to the CP's
 * /ingress/replace with fresh evidence (nonce, quote binding the Noise
 * key, token), as soon as nothing else is in flight. Before registration
 * there is nothing to do: registering carries them.
 */
void dd_registrar_push(dd_registrar *r);

/* Stops retrying and cancels whatever is in flight. */
void dd_registrar_free(dd_registrar *r);
/* Attempts so far (for /health and tests). */
unsigned dd_registrar_attempts(const dd_registrar *r);
/*
 * The cloudflared token of the last registration (a secret, never to be
 * logged), or NULL: direct ingress, or not registered yet.
 */
const char *dd_registrar_tunnel_token(const dd_registrar *r);

#endif
