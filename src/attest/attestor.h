/*
 * attestor.h: this process's own attestation.
 *
 * Owns the quote provider, the ITA client and the ITA verifier of a CP or
 * agent, and keeps one current token that speaks for this VM:
 *
 *   nonce (16 random bytes) -> report_data = dd_binding_cp_attest(nonce)
 *   -> quote (provider) -> token (ITA v1 mint) -> our own verifier
 *   (signature, issuer, claims, pinning) -> the token's report_data must
 *   be the one we asked for -> served.
 *
 * Checking our own token with the verifier every peer will use catches a
 * misconfigured issuer, JWKS or allowlist at boot instead of at the first
 * registration. The first round's outcome decides whether the process
 * starts (the caller's decision); later rounds (every refresh_ms) only
 * replace the token on success, so an ITA outage keeps the old token.
 * Everything runs on the loop thread.
 */
#ifndef DD_ATTEST_ATTESTOR_H
#define DD_ATTEST_ATTESTOR_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "attest/ita.h"
#include "attest/ita_verify.h"
#include "attest/provider.h"
#include "core/err.h"
#include "net/httpc.h"

typedef struct dd_attestor dd_attestor;

typedef struct dd_attestor_opts {
	const dd_ita_opts *ita;              /* copied */
	const dd_ita_verifier_opts *verify;  /* copied */
	uint64_t refresh_ms;                 /* 0: never refresh */
	int64_t (*now)(void);                /* NULL: wall clock seconds */
} dd_attestor_opts;

/*
 * After every round. first: the boot round. err DD_OK: a new token is
 * being served. Otherwise why says which step failed (quote, mint,
 * verify, binding), and the previous token (if any) stays.
 */
typedef void (*dd_attestor_round_cb)(dd_err_t err, int first, const char *why,
				     void *ud);

/*
 * provider becomes the attestor's (closed by dd_attestor_free, also when
 * this fails); http is borrowed and must outlive it.
 */
dd_err_t dd_attestor_new(uv_loop_t *loop, dd_httpc *http,
			 dd_quote_provider *provider,
			 const dd_attestor_opts *opts, dd_attestor **out);

/* Starts the first round; cb runs after each round, never before this returns. */
dd_err_t dd_attestor_start(dd_attestor *a, dd_attestor_round_cb cb, void *ud);

/* The current token, or NULL before the first success. Borrowed. */
const char *dd_attestor_token(const dd_attestor *a);
/* Its verified claims object (borrowed), or NULL. */
json_t *dd_attestor_claims_json(const dd_attestor *a);
/* Its verdict (claims, pinning outcome); NULL before the first success. */
const dd_ita_verdict *dd_attestor_verdict(const dd_attestor *a);
/* For quotes over other report data (borrowed). */
dd_quote_provider *dd_attestor_provider(const dd_attestor *a);

/*
 * A token over other report data (the registration binding, say): quote
 * then mint, no verification (the receiver verifies). cb runs once,
 * never before this returns: token on success, why on failure. One at a
 * time per caller is enough; the provider queues quotes.
 */
typedef void (*dd_attestor_mint_cb)(dd_err_t err, const char *token,
				    const char *why, void *ud);
dd_err_t dd_attestor_mint(dd_attestor *a, const uint8_t report_data[64],
			  dd_attestor_mint_cb cb, void *ud);

/*
 * A token over a quote the caller already holds (copied): re-minting
 * keeps a long-lived quote's token fresh without a new quote. Same
 * callback rules as dd_attestor_mint.
 */
dd_err_t dd_attestor_mint_quote(dd_attestor *a, const uint8_t *quote,
				size_t len, dd_attestor_mint_cb cb, void *ud);

/* Verifies someone else's token with this process's verifier. */
dd_err_t dd_attestor_verify(dd_attestor *a, const char *token, size_t len,
			    dd_ita_verify_cb cb, void *ud);

/*
 * Cancels the round in flight (its callback does not run) and frees
 * everything the attestor owns. Mints in flight end with CANCELLED.
 */
void dd_attestor_free(dd_attestor *a);

#endif
