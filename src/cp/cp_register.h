/*
 * cp_register.h: fresh, bound agent registration (DESIGN.md 5 item 2).
 *
 *   GET  /register/nonce   {"nonce": 64 hex, "expires_in": 120}: 32 random
 *                          bytes, single-use, at most DD_REG_MAX_NONCES
 *                          outstanding (then 503 with Retry-After)
 *   POST /register         {"vm_name", "ita_token", "nonce", "noise_pubkey"
 *                          (64 hex), "url" (the agent's origin: https,
 *                          or http in dev), "extra_ingress"?:
 *                          [{hostname_label, port}]}
 *
 * A registration passes when the nonce is one we issued, unexpired and
 * unused (it is burnt on presentation, whatever happens next); the ITA
 * token verifies with the CP's own verifier (signature, issuer, TDX
 * claims, the measurement allowlist); and the token's report_data is
 * exactly SHA-512("devopsdefender/register/v1" || nonce || noise_pubkey).
 * So a token scraped from a public /health, or minted for another
 * nonce or key, cannot register. Every refusal is 401 with a JSON code
 * (stale_nonce, bad_token, binding_mismatch, not_pinned); a malformed
 * body is 400.
 *
 *   POST /ingress/replace  {"agent_id", "ita_token", "nonce", "noise_pubkey",
 *                          "extra_ingress"}: the same evidence as
 *                          registration, and the bound key must be the one
 *                          registered for agent_id (403 not_this_agent):
 *                          only the agent itself changes its ingress
 *   GET  /register/{id}    200 when the fleet knows the agent, 404
 *                          unknown_agent when not: a registered agent asks
 *                          now and then, and registers again if forgotten
 *
 * The agent id is stable for a Noise key ("dd-<env>-agent-<16 hex of
 * SHA-256(pubkey)>"), so an agent restarted with its key re-registers as
 * itself. The accepted registration is written to the fleet store
 * (status registering) and answered once committed: the reply carries
 * the id, hostname and ingress. The store must be closed (its queued
 * writes answered) before dd_cp_register_free.
 *
 * Ingress is direct (the agent's url, tunnel_token null) unless the CP
 * has Cloudflare (opts.cf). Then an accepted registration first creates
 * or reuses the tunnel named by the agent id, routes the agent's extras,
 * its API hostname and its hostname "{agent id}.{domain}" (cp_ingress.h,
 * cf_ops.h) and upserts their CNAMEs; only then is the agent recorded
 * (ingress tunnel, hostname the public one) and answered with
 * "tunnel_token" (the connector's: a secret, never logged). Legacy
 * Access apps on the agent's hosts are deleted on the way (a failure
 * there is only logged, spec 1.6). A Cloudflare
 * failure records nothing and answers 502 (503 when cut short here) with
 * code cloudflare_failed and Cloudflare's message. /ingress/replace for
 * a tunnel agent applies the new ingress to its tunnel (CNAMEs of
 * dropped extras that point at it are deleted) before the extras are
 * stored; the answer adds extra_hostnames and removed_hostnames. The
 * Cloudflare client must be shut down (its calls answered) before
 * dd_cp_register_free.
 */
#ifndef DD_CP_CP_REGISTER_H
#define DD_CP_CP_REGISTER_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "attest/attestor.h"
#include "auth/authz.h"
#include "cloudflare/cf.h"
#include "cp/store.h"
#include "core/err.h"

#define DD_REG_NONCE_LEN 32
#define DD_REG_NONCE_TTL_MS 120000
#define DD_REG_MAX_NONCES 4096
#define DD_REG_ROUTES 4

typedef struct dd_cp_register dd_cp_register;

typedef struct dd_cp_register_opts {
	const char *env;
	dd_attestor *att;             /* borrowed: its verifier judges tokens */
	dd_store *store;              /* borrowed: where registrations go */
	int64_t (*now)(void);         /* NULL: wall clock (registered_at) */
	int dev;                      /* admit plain-http agent URLs */
	dd_cf *cf;                    /* borrowed; NULL: direct ingress */
	const char *cf_domain;        /* DD_CF_DOMAIN (copied) */
	uint16_t cf_agent_port;       /* DD_CF_AGENT_PORT */
	uint16_t cf_api_port;         /* DD_CF_AGENT_API_PORT */
} dd_cp_register_opts;

dd_err_t dd_cp_register_new(uv_loop_t *loop, const dd_cp_register_opts *o,
			    dd_cp_register **out);
/* Requests still verifying get 503; then everything is freed. */
void dd_cp_register_free(dd_cp_register *r);
size_t dd_cp_register_routes(dd_cp_register *r, dd_authz_route *routes);

/*
 * Burns a nonce this CP issued from /register/nonce if it is alive: 1,
 * else 0 (constant-time compare). A successor CP's export proof binds
 * one from the same pool (cp_api.h).
 */
int dd_cp_register_take_nonce(dd_cp_register *r,
			      const uint8_t nonce[DD_REG_NONCE_LEN]);

/* The agent id for a Noise public key in env (buffer of 96). */
void dd_cp_agent_id(const char *env, const uint8_t pubkey[32], char out[96]);

#endif
