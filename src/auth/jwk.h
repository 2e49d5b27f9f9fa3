/*
 * jwk.h: JSON Web Key Sets (RFC 7517) as verification keys.
 *
 * A JWKS document comes from an issuer over the network and is parsed as
 * hostile input: size-capped, duplicate JSON keys refused, every field
 * type-checked. Each usable key becomes an OpenSSL EVP_PKEY once, at
 * parse time (EVP_PKEY_fromdata), so verification never re-imports it.
 *
 * Accepted: RSA (n, e; modulus of 2048..8192 bits, odd; odd e >= 3 of at
 * most 64 bits) and EC on P-256 or P-384 (x, y exactly the field size,
 * the point on the curve and in the prime-order group). "kid", "kty",
 * "alg" and "use" are kept.
 *
 * Skipped without error, because a JWKS may legitimately hold keys that
 * are not for us: other key types (OKP, oct, ...), other curves, keys
 * without a "kid" (tokens must name their key), "use" other than "sig",
 * "key_ops" without "verify", and an "alg" outside the set dd_jwt
 * supports (encryption algorithms, EdDSA, HS*).
 *
 * Refused (the whole document, INVALID with a reason): malformed JSON, a
 * missing or non-array "keys", a member that is not an object, a missing
 * or non-string "kty", a supported key with missing, mistyped, badly
 * encoded or out-of-range parameters, a weak RSA modulus, an EC point
 * off the curve, an "alg" of the wrong family for its key (RS256 on an
 * EC key, ES384 on P-256), an empty or over-long "kid", and two kept keys
 * with the same "kid" (a token could not say which one it means).
 *
 * A set is immutable and reference-counted, so a cache can replace its
 * current set while a verification still holds the old one. Everything
 * here is synchronous and allocates; any thread may use a set it holds.
 */
#ifndef DD_AUTH_JWK_H
#define DD_AUTH_JWK_H

#include <stddef.h>

#include <openssl/evp.h>

#include "core/err.h"

#define DD_JWKS_MAX_BYTES (64u * 1024u) /* document size cap */
#define DD_JWKS_MAX_KEYS 64u            /* members of "keys", kept or not */
#define DD_JWK_MAX_KID 256u             /* bytes */
#define DD_JWK_MIN_RSA_BITS 2048
#define DD_JWK_MAX_RSA_BITS 8192

typedef enum {
	DD_JWK_RSA = 1,
	DD_JWK_EC_P256,
	DD_JWK_EC_P384,
} dd_jwk_type;

typedef struct dd_jwk dd_jwk;
typedef struct dd_jwks dd_jwks;

/*
 * The JWS algorithms (RFC 7518 section 3) this project verifies, as bits
 * so that a caller's allowlist is one unsigned. Nothing else exists here:
 * "none", HS* and every unknown name have no value at all.
 */
typedef enum {
	DD_JWA_RS256 = 1u << 0,
	DD_JWA_RS384 = 1u << 1,
	DD_JWA_RS512 = 1u << 2,
	DD_JWA_PS256 = 1u << 3,
	DD_JWA_PS384 = 1u << 4,
	DD_JWA_PS512 = 1u << 5,
	DD_JWA_ES256 = 1u << 6,
	DD_JWA_ES384 = 1u << 7,
} dd_jwa;

#define DD_JWA_ALL_RSA (DD_JWA_RS256 | DD_JWA_RS384 | DD_JWA_RS512 | \
			DD_JWA_PS256 | DD_JWA_PS384 | DD_JWA_PS512)
#define DD_JWA_ALL (DD_JWA_ALL_RSA | DD_JWA_ES256 | DD_JWA_ES384)

/* The algorithm named s[0..n) (case-sensitive), or 0 if not supported. */
dd_jwa dd_jwa_parse(const char *s, size_t n);
/* "RS256" etc.; "?" for anything that is not exactly one dd_jwa bit. */
const char *dd_jwa_name(dd_jwa alg);
/* Whether a key of this type may verify alg (family and curve). */
int dd_jwa_fits(dd_jwa alg, dd_jwk_type type);

/*
 * Parses a JWKS document from data[0..len). On DD_OK *out is a new set
 * with one reference (release with dd_jwks_free()); it may hold zero
 * keys. TOO_LARGE over max bytes (0 selects DD_JWKS_MAX_BYTES) or over
 * DD_JWKS_MAX_KEYS members; INVALID as described above; NOMEM; CRYPTO
 * when OpenSSL fails for a reason other than the key itself. why (may be
 * NULL) gets a human-readable reason that names the offending member by
 * index, never key material.
 */
dd_err_t dd_jwks_parse(const void *data, size_t len, size_t max,
		       dd_jwks **out, char *why, size_t why_len);

/* Adds a reference; returns set. */
dd_jwks *dd_jwks_ref(dd_jwks *set);

/* Drops a reference; the last one frees the set. NULL is a no-op. */
void dd_jwks_free(dd_jwks *set);

size_t dd_jwks_count(const dd_jwks *set);

/* The i-th kept key (i < count), in document order. Borrowed from set. */
const dd_jwk *dd_jwks_at(const dd_jwks *set, size_t i);

/*
 * The key whose kid equals kid[0..kid_len) byte for byte, or NULL.
 * Borrowed: valid while the caller holds a reference to set.
 */
const dd_jwk *dd_jwks_find(const dd_jwks *set, const char *kid,
			   size_t kid_len);

/* Accessors; strings are NUL-terminated and borrowed from the set. */
const char *dd_jwk_kid(const dd_jwk *k);
dd_jwk_type dd_jwk_get_type(const dd_jwk *k);
/* The JWK's "alg", or 0 when it has none. */
dd_jwa dd_jwk_alg(const dd_jwk *k);
/* The JWK's "use" ("sig"), or NULL when it has none. */
const char *dd_jwk_use(const dd_jwk *k);
int dd_jwk_bits(const dd_jwk *k);         /* modulus or field size */
/* The verification key, borrowed: up-ref it to keep it past the set. */
EVP_PKEY *dd_jwk_pkey(const dd_jwk *k);

#endif
