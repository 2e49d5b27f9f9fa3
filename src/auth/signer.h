/*
 * signer.h: issuing ES256 JWTs with a key generated in memory, and the
 * JWKS that lets the ordinary verifier (auth/jwt.h) check them.
 *
 * This is what makes development exercise the production code path: the
 * local ITA-shaped issuer and the local OIDC issuer sign with a fresh
 * P-256 key and publish its JWKS, and the verifiers fetch that JWKS like
 * any other (no shared HMAC secret). The key never leaves the process.
 * The kid is the RFC 7638 JWK thumbprint (base64url of SHA-256 over the
 * canonical {"crv","kty","x","y"} object).
 */
#ifndef DD_AUTH_SIGNER_H
#define DD_AUTH_SIGNER_H

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct dd_signer dd_signer;

/* Generates a P-256 key. Caller frees with dd_signer_free(). */
dd_err_t dd_signer_new(dd_signer **out);
/*
 * Generates an RSA-2048 key and signs RS256: for the local stand-in of
 * GitHub's OIDC issuer, whose tokens the verifier accepts only as RS256.
 */
dd_err_t dd_signer_new_rs256(dd_signer **out);
void dd_signer_free(dd_signer *s);

const char *dd_signer_kid(const dd_signer *s);

/* {"keys":[{kty, crv, x, y, kid, alg: ES256, use: sig}]}: new reference. */
dd_err_t dd_signer_jwks(const dd_signer *s, json_t **out);

/*
 * Appends header.payload.signature to out; the header is
 * {"alg":"ES256","typ":"JWT","kid":<kid>}, the payload the claims object.
 */
dd_err_t dd_signer_sign(const dd_signer *s, const json_t *claims, dd_buf *out);

#endif
