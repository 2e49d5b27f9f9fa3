/*
 * noise_dh.h: X25519 for Noise (RFC 7748 through OpenSSL EVP_PKEY).
 *
 * Private keys live only inside EVP_PKEYs (OpenSSL keeps them in secure
 * memory and wipes them when freed). Peer keys of small order are refused
 * before any DH, and a DH result of all zeros is refused after it, so a
 * handshake can never be completed with a predictable shared secret
 * (spec noise-sessions.md 7.12).
 */
#ifndef DD_NOISE_DH_H
#define DD_NOISE_DH_H

#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"
#include "noise/static_key.h"

/* 1 when pub is a point of small order (all zeros included), whatever its
 * top bit, which X25519 ignores. */
int dd_noise_dh_low_order(const uint8_t pub[DD_X25519_LEN]);

/* Key pair from a known private key. pub NULL: derived (one scalar
 * multiplication); otherwise trusted to match priv. pub_out may be NULL.
 * Caller frees *out with EVP_PKEY_free(). */
dd_err_t dd_noise_dh_keypair(const uint8_t priv[DD_X25519_LEN],
			     const uint8_t *pub, EVP_PKEY **out,
			     uint8_t *pub_out);

/* Fresh random key pair. Caller frees *out with EVP_PKEY_free(). */
dd_err_t dd_noise_dh_generate(EVP_PKEY **out, uint8_t pub[DD_X25519_LEN]);

/* out = X25519(priv, pub). DD_ERR_CRYPTO for a low-order pub or an
 * all-zero result (out is then wiped). */
dd_err_t dd_noise_dh(EVP_PKEY *priv, const uint8_t pub[DD_X25519_LEN],
		     uint8_t out[DD_X25519_LEN]);

#endif
