/*
 * p256.h: the ECDSA P-256 / SHA-256 primitives the quote verifier needs,
 * on OpenSSL 3 EVP.
 *
 * Quotes carry keys as raw x||y and signatures as raw r||s (32 bytes
 * each, big-endian); OpenSSL wants an encoded point and a DER
 * ECDSA-Sig-Value. These helpers do that conversion and nothing else.
 * Internal to src/attest. Thread-safe.
 */
#ifndef DD_ATTEST_P256_H
#define DD_ATTEST_P256_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/err.h"

/*
 * Builds a public key from raw x||y. CRYPTO when the point is not on the
 * curve (or is otherwise unusable). Caller frees with EVP_PKEY_free().
 */
dd_err_t dd_p256_key_from_xy(const uint8_t xy[64], EVP_PKEY **out);

/* 1 when key is an EC key on P-256, else 0. */
int dd_p256_is_p256(const EVP_PKEY *key);

/*
 * Checks the raw r||s signature over msg with ECDSA-SHA256. DD_OK when
 * it verifies, CRYPTO when it does not (or key is not P-256).
 */
dd_err_t dd_p256_verify(EVP_PKEY *key, const void *msg, size_t len,
			const uint8_t sig[64]);

/*
 * Signs msg, writing raw r||s into sig. Used to build simulated quotes;
 * CRYPTO when key is not a P-256 private key.
 */
dd_err_t dd_p256_sign(EVP_PKEY *key, const void *msg, size_t len,
		      uint8_t sig[64]);

/* Writes raw x||y of key's public point. CRYPTO when not P-256. */
dd_err_t dd_p256_key_to_xy(const EVP_PKEY *key, uint8_t xy[64]);

/* SHA-256 of the concatenation a || b (b may be NULL when blen is 0). */
dd_err_t dd_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
		     uint8_t out[32]);

#endif
