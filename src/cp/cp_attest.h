/*
 * cp_attest.h: GET /cp/attest?nonce=<hex>, the CP's quote over a
 * caller's nonce, so anyone can check what the control plane runs
 * before trusting it:
 *
 *   {"nonce", "report_data", "quote" (base64), "mrtd", "rtmrs": [4],
 *    "provider", "simulated", "token"}
 *
 * report_data = SHA-512("devopsdefender/cp-attest/v1" || nonce) (binding.h),
 * so the quote is fresh for the caller; "token" is the CP's current ITA
 * token (its own quote, refreshed on a timer). A quote costs about a
 * second of TDX time: one is generated at a time (a second caller gets
 * 429 with Retry-After) and a token bucket bounds the rate.
 */
#ifndef DD_CP_CP_ATTEST_H
#define DD_CP_CP_ATTEST_H

#include <uv.h>

#include "attest/attestor.h"
#include "auth/authz.h"
#include "core/err.h"
#include "net/http.h"

#define DD_CP_ATTEST_MAX_NONCE 32
#define DD_CP_ATTEST_BURST 4
#define DD_CP_ATTEST_PERIOD_MS 2000

typedef struct dd_cp_attest dd_cp_attest;

/* att is borrowed and must outlive this object's pending requests. */
dd_err_t dd_cp_attest_new(uv_loop_t *loop, dd_attestor *att,
			  dd_cp_attest **out);
/* GET /cp/attest, for dd_authz_mount. */
dd_authz_route dd_cp_attest_route(dd_cp_attest *ca);
/* Later requests get 503: the attestor is going away (shutdown). */
void dd_cp_attest_detach(dd_cp_attest *ca);

/*
 * Frees it; a quote still being generated keeps its small job record
 * until the provider answers (or is closed), then drops the answer.
 */
void dd_cp_attest_free(dd_cp_attest *ca);

#endif
