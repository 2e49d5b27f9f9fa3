/*
 * ita_verify.h: deciding whether an Intel Trust Authority token speaks for
 * a genuine, acceptable TDX VM.
 *
 * Three checks, in order, each with its own refusal:
 *   1. the JWT (auth/jwt.h through the JWKS cache): RS/PS/ES only, kid
 *      required, signature, exp/nbf with leeway, exact issuer, no "aud";
 *   2. the claims (attest/claims.h): a TDX attester with well-formed
 *      measurements, v1 or v2 layout;
 *   3. the measurement policy (attest/pinning.h), refusing only when the
 *      policy is enforced (otherwise the verdict records the mismatch so
 *      the caller can warn).
 * The same code serves Intel's JWKS in production and the local issuer's
 * in development: only the URL and issuer differ.
 */
#ifndef DD_ATTEST_ITA_VERIFY_H
#define DD_ATTEST_ITA_VERIFY_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "attest/claims.h"
#include "attest/pinning.h"
#include "auth/jwt.h"
#include "core/err.h"
#include "net/httpc.h"

typedef struct dd_ita_verifier dd_ita_verifier;

typedef struct dd_ita_verifier_opts {
	const char *jwks_url;
	const char *issuer;
	uint64_t leeway_s;            /* 0: 60 s */
	/*
	 * Least time between JWKS refetches for an unknown kid (the bound
	 * on what sprayed kids can cost, and the delay before a rotated key
	 * is accepted); 0: the cache's default (60 s).
	 */
	uint64_t jwks_refresh_ms;
	const dd_pin_policy *pins;    /* copied; NULL: unpinned */
} dd_ita_verifier_opts;

typedef struct dd_ita_verdict {
	dd_err_t err;        /* DD_OK: accept */
	dd_jwt_result jwt;   /* which JWT check failed, if one did */
	dd_pin_verdict pin;  /* DD_PIN_PASS, DD_PIN_UNPINNED or the mismatch */
	dd_att_claims claims; /* valid when the JWT and claims checks passed */
	char why[256];       /* one line; "" on acceptance */
} dd_ita_verdict;

/*
 * claims_json is the verified claims object (borrowed; NULL unless the JWT
 * check passed). err values: UNAUTHORIZED (bad or untrusted token,
 * pinning refusal), UPSTREAM (the JWKS cannot be fetched), INVALID
 * (claims not TDX-shaped), CANCELLED.
 */
typedef void (*dd_ita_verify_cb)(const dd_ita_verdict *v, json_t *claims_json,
				 void *ud);

/* http is borrowed. Caller frees with dd_ita_verifier_free(). */
dd_err_t dd_ita_verifier_new(uv_loop_t *loop, dd_httpc *http,
			     const dd_ita_verifier_opts *opts,
			     dd_ita_verifier **out);
void dd_ita_verifier_free(dd_ita_verifier *v);

/*
 * Verifies token at time now (unix seconds). DD_OK: cb runs exactly once,
 * possibly before this returns (keys already cached). Other returns: cb
 * never runs (BUSY, NOMEM, CLOSED).
 */
dd_err_t dd_ita_verify(dd_ita_verifier *v, const char *token, size_t len,
		       int64_t now, dd_ita_verify_cb cb, void *ud);

#endif
