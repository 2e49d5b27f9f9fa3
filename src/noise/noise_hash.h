/*
 * noise_hash.h: HASH = BLAKE2s-256, HMAC-BLAKE2s and the Noise HKDF
 * (Noise revision 34, section 4.3), on OpenSSL EVP_MD and EVP_MAC.
 *
 * The algorithms are fetched and the contexts created once per object and
 * reused for every hash of a handshake, since a handshake does about
 * twenty of them. The struct is visible only so that it can be embedded;
 * use it through these functions.
 */
#ifndef DD_NOISE_HASH_H
#define DD_NOISE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

#define DD_NOISE_HASHLEN 32
#define DD_NOISE_BLOCKLEN 64

typedef struct dd_noise_hash {
	EVP_MD *md;
	EVP_MD_CTX *md_ctx;
	EVP_MAC_CTX *hmac;
} dd_noise_hash;

/* Sets up hh; on failure hh is left cleaned up. */
dd_err_t dd_noise_hash_init(dd_noise_hash *hh);
/* Frees what init made; safe on a zeroed or cleaned-up struct. */
void dd_noise_hash_cleanup(dd_noise_hash *hh);

/* out = BLAKE2s(a || b); b may be NULL when b_len is 0. out may alias a. */
dd_err_t dd_noise_hash2(dd_noise_hash *hh, const uint8_t *a, size_t a_len,
			const uint8_t *b, size_t b_len,
			uint8_t out[DD_NOISE_HASHLEN]);

/*
 * HKDF(chaining_key, input_key_material, num_outputs) of Noise 4.3 with
 * HMAC-BLAKE2s: o1, o2 and, when o3 is not NULL, o3. ikm may be NULL when
 * ikm_len is 0. Outputs may alias ck.
 */
dd_err_t dd_noise_hkdf(dd_noise_hash *hh, const uint8_t ck[DD_NOISE_HASHLEN],
		       const uint8_t *ikm, size_t ikm_len,
		       uint8_t o1[DD_NOISE_HASHLEN],
		       uint8_t o2[DD_NOISE_HASHLEN], uint8_t *o3);

#endif
