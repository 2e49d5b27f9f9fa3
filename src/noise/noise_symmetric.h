/*
 * noise_symmetric.h: the Noise SymmetricState (revision 34, section 5.2):
 * chaining key ck, handshake hash h and the handshake CipherState.
 *
 * The struct is visible only so that the handshake can embed it; use it
 * through these functions. Every function leaves the state unusable for
 * the handshake after an error (the caller abandons the handshake).
 */
#ifndef DD_NOISE_SYMMETRIC_H
#define DD_NOISE_SYMMETRIC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "noise/noise_cipher.h"
#include "noise/noise_hash.h"

typedef struct dd_noise_symmetric {
	dd_noise_hash hash;
	dd_noise_cipher cs;
	uint8_t ck[DD_NOISE_HASHLEN];
	uint8_t h[DD_NOISE_HASHLEN];
} dd_noise_symmetric;

/* InitializeSymmetric(protocol_name). Clean up with
 * dd_noise_sym_cleanup() whatever it returns. */
dd_err_t dd_noise_sym_init(dd_noise_symmetric *ss, const char *protocol_name);
/* Wipes ck, h and the key; frees the contexts. */
void dd_noise_sym_cleanup(dd_noise_symmetric *ss);

dd_err_t dd_noise_sym_mix_key(dd_noise_symmetric *ss, const uint8_t *ikm,
			      size_t ikm_len);
dd_err_t dd_noise_sym_mix_hash(dd_noise_symmetric *ss, const uint8_t *data,
			       size_t len);
dd_err_t dd_noise_sym_mix_key_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *ikm, size_t ikm_len);
void dd_noise_sym_handshake_hash(const dd_noise_symmetric *ss,
				 uint8_t out[DD_NOISE_HASHLEN]);

/* EncryptAndHash / DecryptAndHash: buffers as in noise_cipher.h (out must
 * not overlap in here, since the ciphertext is hashed afterwards). */
dd_err_t dd_noise_sym_encrypt_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *in, size_t in_len,
				       uint8_t *out, size_t out_cap,
				       size_t *out_len);
dd_err_t dd_noise_sym_decrypt_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *in, size_t in_len,
				       uint8_t *out, size_t out_cap,
				       size_t *out_len);

/* Split(): c1 (initiator to responder) and c2, which must be empty
 * states (e.g. zeroed). On failure both are left empty. */
dd_err_t dd_noise_sym_split(dd_noise_symmetric *ss, dd_noise_cipher *c1,
			    dd_noise_cipher *c2);

#endif
