/*
 * client_attest.h: the client's check of an agent's Noise identity
 * (docs/noise.md "The client's check", spec noise-sessions 2.6 with this
 * project's binding), offline and pure: no I/O, no clock (the caller
 * passes now), so every refusal is unit tested.
 *
 * Steps, in order; the first failure decides, and why names it:
 *   bundle   /health has a `noise` object; binding is exactly
 *            "devopsdefender/noise/v1"; pubkey_hex 64 lower-case hex
 *            digits of a usable X25519 key; nonce_hex 64 hex digits;
 *            quote_b64 non-empty standard base64
 *   quote    dd_quote_verify_bytes without collateral (signature, QE
 *            binding, PCK chain to Intel's pinned root valid at now, TD
 *            not debuggable); a simulated quote (the dev fleet) only with
 *            allow_simulated
 *   binding  REPORTDATA == SHA-512(label || nonce || pubkey)
 *   mrtd     when expect_mrtd is given, the quote's MRTD equals it
 *
 * The ITA token is not used: the quote itself is verified (step 2 of
 * docs/noise.md), so no JWKS has to be fetched or trusted. Without
 * collateral the TCB status is not evaluated (quote_verify.h).
 */
#ifndef DD_CLIENT_CLIENT_ATTEST_H
#define DD_CLIENT_CLIENT_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define DD_CLIENT_MRTD_LEN 48

typedef struct dd_client_attest_opts {
	int64_t now;                  /* seconds since the epoch */
	int allow_simulated;          /* --allow-simulated */
	const uint8_t *expect_mrtd;   /* DD_CLIENT_MRTD_LEN bytes, or NULL */
} dd_client_attest_opts;

typedef struct dd_client_attest_result {
	uint8_t pubkey[32];           /* the agent's Noise key, once DD_OK */
	uint8_t mrtd[DD_CLIENT_MRTD_LEN];
	int simulated;                /* an (allowed) simulated quote */
	char why[320];                /* "<step>: <reason>" on failure */
} dd_client_attest_result;

/*
 * Checks health (the parsed /health object, borrowed). DD_OK: every step
 * passed and res->pubkey is the key to use as the IK responder key.
 * Otherwise res->why says which step failed: INVALID (bundle), FORBIDDEN
 * (simulated or debug quote refused), CRYPTO (quote, binding, mrtd),
 * NOMEM.
 */
dd_err_t dd_client_attest_check(const json_t *health,
				const dd_client_attest_opts *o,
				dd_client_attest_result *res);

#endif
