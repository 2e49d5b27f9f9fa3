/*
 * noise_attest.h: the evidence that the agent's Noise static key lives in
 * this TD (spec: noise-sessions 2.4-2.5, with this project's binding).
 *
 * Once per process lifetime: a 32-byte nonce from the OS RNG,
 * report_data = SHA-512("devopsdefender/noise/v1" || nonce || noise_pub)
 * (attest/binding.h), one quote over it. An ITA token is minted over
 * that same quote at once and again every refresh_ms (a failed refresh
 * keeps the last token; the token's claims carry the same report_data).
 * /health publishes the bundle; a client recomputes the hash from the
 * nonce and the key and compares it with the quote's REPORTDATA (and
 * the token's report_data claim): docs/noise.md. Until the quote
 * arrives (or while it keeps failing, retried with back-off) the bundle
 * carries the key and empty strings.
 */
#ifndef DD_AGENT_NOISE_ATTEST_H
#define DD_AGENT_NOISE_ATTEST_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "attest/attestor.h"
#include "core/err.h"

#define DD_NOISE_NONCE_LEN 32

typedef struct dd_noise_attest dd_noise_attest;

typedef struct dd_noise_attest_opts {
	uint8_t pubkey[32];
	uint64_t refresh_ms;     /* token re-mint period; 0: never */
	uint64_t retry_ms;       /* first quote retry; 0: 5000 (doubles to 60 s) */
	void (*changed)(void *ud); /* the bundle changed (may be NULL) */
	void *ud;
} dd_noise_attest_opts;

/*
 * att is borrowed. Asks for the quote at once (cb-free: the bundle is
 * read with dd_noise_attest_json whenever /health renders).
 */
dd_err_t dd_noise_attest_start(uv_loop_t *loop, dd_attestor *att,
			       const dd_noise_attest_opts *o,
			       dd_noise_attest **out);

/*
 * The /health `noise` object (new reference, NULL on NOMEM):
 * {"pubkey_hex", "quote_b64", "nonce_hex", "binding", "ita_token"}.
 */
json_t *dd_noise_attest_json(const dd_noise_attest *n);

/* Stops refreshing; released once nothing of it is in flight. */
void dd_noise_attest_free(dd_noise_attest *n);

#endif
