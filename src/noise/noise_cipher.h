/*
 * noise_cipher.h: the Noise CipherState (revision 34, section 5.1) with
 * ChaCha20-Poly1305 (IETF, 96-bit nonce = 4 zero bytes || 64-bit counter
 * little-endian), on one OpenSSL EVP_CIPHER_CTX per state. The context is
 * keyed once per InitializeKey and only re-nonced per message, so a
 * transport pays no key setup or allocation per message.
 *
 * The key lives only in the context (OpenSSL wipes it on free or re-key);
 * no copy is kept here. The struct is visible only so it can be embedded.
 *
 * Limits: a ciphertext is at most DD_NOISE_CIPHER_MAX bytes (the Noise
 * message limit); nonce 2^64-1 is reserved, reaching it is DD_ERR_RANGE.
 * A failed decryption leaves the nonce unchanged (Noise 5.1) and the
 * output wiped.
 */
#ifndef DD_NOISE_CIPHER_H
#define DD_NOISE_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

#define DD_NOISE_KEYLEN 32
#define DD_NOISE_AEAD_TAG 16
#define DD_NOISE_CIPHER_MAX 65535

typedef struct dd_noise_cipher {
	EVP_CIPHER_CTX *ctx; /* NULL until the first key */
	uint64_t n;
	int has_key;
} dd_noise_cipher;

/* InitializeKey(empty): a zeroed struct is also a valid empty state. */
void dd_noise_cipher_init(dd_noise_cipher *c);
/* Wipes and frees; the state is empty afterwards. */
void dd_noise_cipher_cleanup(dd_noise_cipher *c);

/* InitializeKey(k): n = 0. On failure the state is empty. */
dd_err_t dd_noise_cipher_set_key(dd_noise_cipher *c,
				 const uint8_t k[DD_NOISE_KEYLEN]);
int dd_noise_cipher_has_key(const dd_noise_cipher *c);
void dd_noise_cipher_set_nonce(dd_noise_cipher *c, uint64_t n);

/*
 * EncryptWithAd(ad, plaintext). With no key: copies (out_len = in_len).
 * With a key: out_len = in_len + 16, out_cap must allow it. ad may be
 * NULL when ad_len is 0; out may equal in, no other overlap.
 */
dd_err_t dd_noise_cipher_encrypt(dd_noise_cipher *c, const uint8_t *ad,
				 size_t ad_len, const uint8_t *in,
				 size_t in_len, uint8_t *out, size_t out_cap,
				 size_t *out_len);

/*
 * DecryptWithAd(ad, ciphertext). out may be NULL with out_cap 0: the
 * message is authenticated and its plaintext discarded. out may equal in.
 * DD_ERR_CRYPTO when authentication fails (out wiped, n unchanged).
 */
dd_err_t dd_noise_cipher_decrypt(dd_noise_cipher *c, const uint8_t *ad,
				 size_t ad_len, const uint8_t *in,
				 size_t in_len, uint8_t *out, size_t out_cap,
				 size_t *out_len);

/* Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zeros).
 * Offered by Noise, never used by DD (spec 2.10). */
dd_err_t dd_noise_cipher_rekey(dd_noise_cipher *c);

#endif
