/*
 * ita.h: minting Intel Trust Authority attestation tokens.
 *
 *   v1  POST {base}/appraisal/v1/attest {"quote": b64}  -> {"token": JWT}
 *   v2  GET  {base}/appraisal/v2/nonce                 -> {val, iat, signature}
 *       report_data = SHA-512(val || iat || runtime_data) goes in the quote,
 *       POST {base}/appraisal/v2/attest {"tdx": {quote, runtime_data,
 *       verifier_nonce}, "policy_must_match": false} -> {"token": JWT}
 *
 * The API key goes in `x-api-key` and nowhere else (never logged, never
 * in an error text). Calls are retried with jittered back-off that
 * honours Retry-After on 429 and 503 (429, 500, 502, 503 and 504 are
 * retried; ITA allows 1,000 requests per five
 * minutes per tenant). Everything runs on the loop thread; the HTTP
 * client is borrowed. Verification of tokens lives elsewhere (the JWT
 * verifier); this module only obtains them.
 */
#ifndef DD_ATTEST_ITA_H
#define DD_ATTEST_ITA_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/httpc.h"
#include "net/retry.h"

#define DD_ITA_MAX_TOKEN (16u * 1024)

typedef struct dd_ita dd_ita;

typedef struct dd_ita_opts {
	const char *base_url;   /* e.g. https://api.trustauthority.intel.com */
	const char *api_key;    /* secret */
	uint64_t timeout_ms;    /* per attempt; 0: the client's default */
	const dd_retry_policy *retry; /* NULL: 4 attempts, 0.5-8 s back-off */
} dd_ita_opts;

/* A v2 verifier nonce exactly as ITA sent it (base64 strings). */
typedef struct dd_ita_nonce {
	char *val;
	char *iat;
	char *signature;
} dd_ita_nonce;

/*
 * token is valid only during the call. why explains a failure in one
 * line: UNAUTHORIZED (ITA refused the key), INVALID (ITA refused the
 * evidence; its message included), BUSY (still rate-limited after the
 * retries), UPSTREAM/TIMEOUT (ITA unreachable or answering badly),
 * CANCELLED (dd_ita_free).
 */
typedef void (*dd_ita_token_cb)(dd_err_t err, const char *token,
				const char *why, void *ud);
typedef void (*dd_ita_nonce_cb)(dd_err_t err, const dd_ita_nonce *nonce,
				const char *why, void *ud);

/* Strings are copied (the key is wiped on free). Free with dd_ita_free. */
dd_err_t dd_ita_new(dd_httpc *http, const dd_ita_opts *opts, dd_ita **out);

/* Cancels outstanding calls (their callbacks run with CANCELLED first). */
void dd_ita_free(dd_ita *ita);

/* Mints a v1 token over a raw quote. */
dd_err_t dd_ita_attest_v1(dd_ita *ita, const uint8_t *quote, size_t len,
			  dd_ita_token_cb cb, void *ud);

/* Fetches a v2 verifier nonce. */
dd_err_t dd_ita_nonce_get(dd_ita *ita, dd_ita_nonce_cb cb, void *ud);

/* report_data for v2: SHA-512(b64dec(val) || b64dec(iat) || runtime_data). */
dd_err_t dd_ita_v2_report_data(const dd_ita_nonce *nonce,
			       const uint8_t *runtime_data, size_t len,
			       uint8_t out[64]);

/* Mints a v2 token over a quote whose report data binds nonce + runtime. */
dd_err_t dd_ita_attest_v2(dd_ita *ita, const dd_ita_nonce *nonce,
			  const uint8_t *quote, size_t qlen,
			  const uint8_t *runtime_data, size_t rlen,
			  dd_ita_token_cb cb, void *ud);

/* Fills a nonce with copies (caller releases with dd_ita_nonce_clear). */
dd_err_t dd_ita_nonce_set(dd_ita_nonce *out, const char *val, const char *iat,
			  const char *signature);
void dd_ita_nonce_clear(dd_ita_nonce *n);

#endif
