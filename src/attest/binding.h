/*
 * binding.h: what a registration quote's REPORTDATA must be.
 *
 * report_data = SHA-512("devopsdefender/register/v1" || nonce ||
 * noise_pubkey), 64 bytes: the CP-issued single-use nonce makes a quote
 * (and the token minted over it) fresh, and the agent's Noise static key
 * makes it speak for that key. The public key has a fixed length at the
 * end, so the concatenation is unambiguous for any nonce length.
 */
#ifndef DD_ATTEST_BINDING_H
#define DD_ATTEST_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_REPORT_DATA_LEN 64
#define DD_NOISE_PUBKEY_LEN 32
#define DD_BINDING_MAX_NONCE 64

/* INVALID for an empty nonce or one longer than DD_BINDING_MAX_NONCE. */
dd_err_t dd_binding_register(const uint8_t *nonce, size_t nonce_len,
			     const uint8_t pubkey[DD_NOISE_PUBKEY_LEN],
			     uint8_t out[DD_REPORT_DATA_LEN]);

/*
 * The CP's own quotes (its token and GET /cp/attest):
 * SHA-512("devopsdefender/cp-attest/v1" || nonce). A different label from
 * registration, so a CP quote can never pass as an agent's. Same nonce
 * limits as above.
 */
dd_err_t dd_binding_cp_attest(const uint8_t *nonce, size_t nonce_len,
			      uint8_t out[DD_REPORT_DATA_LEN]);

/*
 * The agent's published Noise identity (/health `noise`, docs/noise.md):
 * SHA-512(DD_BINDING_NOISE_LABEL || nonce || noise_pubkey), over a nonce
 * the agent chose at boot and publishes beside the quote. Its own label,
 * so the public quote can never pass as registration evidence (which
 * also needs a CP nonce) or the other way round. Same nonce limits.
 */
#define DD_BINDING_NOISE_LABEL "devopsdefender/noise/v1"
dd_err_t dd_binding_noise(const uint8_t *nonce, size_t nonce_len,
			  const uint8_t pubkey[DD_NOISE_PUBKEY_LEN],
			  uint8_t out[DD_REPORT_DATA_LEN]);

/*
 * DD_OK when report_data is exactly the binding of nonce and pubkey
 * (compared in constant time); DD_ERR_CRYPTO when it is not.
 */
dd_err_t dd_binding_check(const uint8_t report_data[DD_REPORT_DATA_LEN],
			  const uint8_t *nonce, size_t nonce_len,
			  const uint8_t pubkey[DD_NOISE_PUBKEY_LEN]);

/* The same check against report_data as the 128 hex digits ITA claims carry. */
dd_err_t dd_binding_check_hex(const char *report_data_hex,
			      const uint8_t *nonce, size_t nonce_len,
			      const uint8_t pubkey[DD_NOISE_PUBKEY_LEN]);

#endif
