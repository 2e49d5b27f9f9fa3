/*
 * static_key.h: the agent's Noise static X25519 key.
 *
 * Generated inside the VM at first boot and kept only in memory and in a
 * 0600 file on tmpfs (DD_NOISE_KEY_PATH), so a restarted agent keeps its
 * identity for as long as the VM lives and no longer. The public half is
 * bound into the agent's registration quote (attest/binding.h), which is
 * what lets a client trust that the far end of a Noise channel is this
 * VM. The private half is never logged or served.
 */
#ifndef DD_NOISE_STATIC_KEY_H
#define DD_NOISE_STATIC_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_X25519_LEN 32

typedef struct dd_static_key {
	uint8_t priv[DD_X25519_LEN];
	uint8_t pub[DD_X25519_LEN];
} dd_static_key;

/*
 * Loads the key from path (exactly 32 bytes, mode 0600, owned by us) or,
 * when the file is absent, generates one and writes it atomically (temp
 * file, fsync, rename, 0600). path NULL: memory only. A file that exists
 * but is not a valid key is an error (INVALID with why), never silently
 * replaced: that would change the agent's identity under its clients.
 */
dd_err_t dd_static_key_load(const char *path, dd_static_key *out, char *why,
			    size_t why_len);

/* Derives pub from priv (X25519 base-point multiplication). */
dd_err_t dd_static_key_public(const uint8_t priv[DD_X25519_LEN],
			      uint8_t pub[DD_X25519_LEN]);

/* Wipes the key. */
void dd_static_key_wipe(dd_static_key *k);

#endif
