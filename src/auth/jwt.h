/*
 * jwt.h: compact JWS / JWT verification (RFC 7515, 7519) against keys
 * from a JWKS (auth/jwk.h). The ITA and GitHub OIDC verifiers sit on it.
 *
 * Accepted: exactly three non-empty base64url parts (strict and unpadded,
 * core/b64.h) in at most DD_JWT_MAX_LEN bytes; a header and a
 * payload that are JSON objects without duplicate keys; a header "alg"
 * from the caller's allowlist of RS256/384/512, PS256/384/512, ES256/384
 * and a non-empty "kid". Anything else is refused before any key is
 * touched: "none", HS*, unknown or missing alg, missing kid, a "crit"
 * header (we implement no extensions, so RFC 7515 4.1.11 says reject),
 * "b64" other than true. Token-supplied key hints (jku, jwk, x5u, x5c)
 * are ignored: keys come only from the configured JWKS.
 *
 * Signature: the key's type must fit the algorithm (RSA for RS/PS, the
 * matching curve for ES), so one key can never verify under another
 * family and no algorithm confusion is possible; when the JWK names an
 * "alg" it must equal the header's. PS uses MGF1 with the same hash and
 * a salt of the hash length. ES signatures are the raw r || s of exactly
 * twice the field size (RFC 7518 3.4), converted to DER for OpenSSL.
 *
 * Claims are checked only after the signature: "exp" required; "nbf"
 * optional; "iat" required when a maximum age is set; all within the
 * caller's leeway. Times may be JSON integers or reals (rounded toward
 * the stricter verdict). "iss" must equal the configured issuer; "aud",
 * a string or a non-empty array of strings, must contain the configured
 * audience, and when no audience is configured a token carrying "aud"
 * is refused (it was meant for someone else, RFC 7519 4.1.3).
 *
 * Every refusal carries a dd_jwt_reason and a short text, so the HTTP
 * layer can answer with a precise JSON error; texts never contain token
 * or key bytes. Everything is synchronous; the current time is passed
 * in, so tests are deterministic.
 */
#ifndef DD_AUTH_JWT_H
#define DD_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/jwk.h"
#include "core/err.h"

#define DD_JWT_MAX_LEN (16u * 1024u) /* whole compact token, bytes */

typedef enum {
	DD_JWT_OK = 0,
	DD_JWT_MALFORMED,        /* structure, encoding, JSON, header, types */
	DD_JWT_TOO_LARGE,        /* longer than the cap */
	DD_JWT_BAD_ALG,          /* not allowed, or wrong for the key */
	DD_JWT_NO_KID,           /* header without "kid" */
	DD_JWT_UNKNOWN_KID,      /* not in the JWKS, even after a refresh */
	DD_JWT_KEYS_UNAVAILABLE, /* the JWKS could not be fetched */
	DD_JWT_BAD_SIGNATURE,
	DD_JWT_MISSING_CLAIM,    /* exp, iss, iat (with max age), aud */
	DD_JWT_EXPIRED,
	DD_JWT_NOT_YET_VALID,    /* nbf in the future */
	DD_JWT_IAT_FUTURE,       /* issued in the future */
	DD_JWT_TOO_OLD,          /* iat older than the maximum age */
	DD_JWT_BAD_ISSUER,
	DD_JWT_BAD_AUDIENCE,
	DD_JWT_INTERNAL,         /* out of memory, cancelled, library failure */
	DD_JWT__COUNT
} dd_jwt_reason;

/* Why a verification failed; reason DD_JWT_OK and why "" on success. */
typedef struct dd_jwt_result {
	dd_jwt_reason reason;
	char why[160];
} dd_jwt_result;

/* What a caller accepts. Strings are borrowed for the call's duration. */
typedef struct dd_jwt_policy {
	unsigned algs;          /* DD_JWA_* bits; 0 refuses every token */
	const char *issuer;     /* required; NULL refuses every token */
	const char *audience;   /* NULL: the token must carry no "aud" */
	uint64_t leeway_s;      /* clock skew allowed on exp/nbf/iat/age */
	uint64_t max_age_s;     /* 0: no age limit (and iat optional) */
	size_t max_len;         /* 0: DD_JWT_MAX_LEN; never above it */
} dd_jwt_policy;

typedef struct dd_jwt dd_jwt;

/* Stable token for JSON "code" fields and logs ("expired"). */
const char *dd_jwt_reason_name(dd_jwt_reason r);

/*
 * The dd_err_t a reason maps to: TOO_LARGE, INVALID (malformed, alg,
 * kid), NOT_FOUND (unknown kid), UPSTREAM (keys unavailable), CRYPTO
 * (signature), UNAUTHORIZED (claims), INTERNAL.
 */
dd_err_t dd_jwt_reason_err(dd_jwt_reason r);

/*
 * Step 1: splits and decodes token[0..len) and checks the header against
 * pol (size cap and alg allowlist). On DD_OK *out is a new token object
 * (release with dd_jwt_free()); otherwise *out is NULL, res says why and
 * the return value is dd_jwt_reason_err(res->reason) or NOMEM.
 */
dd_err_t dd_jwt_decode(const char *token, size_t len,
		       const dd_jwt_policy *pol, dd_jwt **out,
		       dd_jwt_result *res);

/* Header fields of a decoded token; borrowed from t. kid is never NULL. */
const char *dd_jwt_kid(const dd_jwt *t, size_t *kid_len);
dd_jwa dd_jwt_alg(const dd_jwt *t);

/*
 * Step 2: checks that key may verify this token (type, JWK alg, kid) and
 * verifies the signature. CRYPTO with BAD_SIGNATURE, INVALID with
 * BAD_ALG, NOT_FOUND with UNKNOWN_KID when key's kid differs, NOMEM.
 */
dd_err_t dd_jwt_verify_signature(dd_jwt *t, const dd_jwk *key,
				 dd_jwt_result *res);

/*
 * Step 3: checks the registered claims against pol at time now (Unix
 * seconds). Pure: it does not depend on step 2, so fuzzers and tests can
 * reach it alone, but claims are only handed out once both passed.
 */
dd_err_t dd_jwt_check_claims(dd_jwt *t, const dd_jwt_policy *pol,
			     int64_t now, dd_jwt_result *res);

/*
 * The claims of a token whose signature and claims both passed: *claims
 * is a new reference (caller releases it with json_decref()). INVALID
 * (and *claims NULL) if either step has not passed.
 */
dd_err_t dd_jwt_claims(const dd_jwt *t, json_t **claims);

/* Frees a token; NULL is a no-op. */
void dd_jwt_free(dd_jwt *t);

/*
 * All three steps with a key set: decode, find the key by kid
 * (UNKNOWN_KID when absent), verify, check claims. On DD_OK *claims is a
 * new reference to the verified claims (caller releases it with
 * json_decref()); on error *claims is NULL and res says why. claims may
 * be NULL when the caller only wants the verdict.
 */
dd_err_t dd_jwt_verify(const char *token, size_t len,
		       const dd_jwt_policy *pol, const dd_jwks *keys,
		       int64_t now, json_t **claims, dd_jwt_result *res);

#endif
