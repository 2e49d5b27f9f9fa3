/*
 * local_oidc.h: a stand-in for GitHub Actions' OIDC issuer, for dev
 * fleets only, so `devopsdefender client` can deploy to a local agent
 * through the production verifier (RS256, JWKS, audience, age, owner,
 * jti) without GitHub:
 *
 *   GET {prefix}/.well-known/jwks         the signing key (RS256)
 *   GET {prefix}/token?audience=A         Authorization: Bearer <request
 *                                         token> -> {"count": 1,
 *                                         "value": "<JWT>"}, shaped like
 *                                         ACTIONS_ID_TOKEN_REQUEST_URL's
 *
 * Tokens speak for the configured owner principal (ids as strings, as
 * GitHub sends them), live 5 minutes and carry a fresh jti. Refused for
 * the production and staging environments.
 */
#ifndef DD_AUTH_LOCAL_OIDC_H
#define DD_AUTH_LOCAL_OIDC_H

#include <stdint.h>

#include "auth/principal.h"
#include "core/err.h"
#include "net/http.h"

typedef struct dd_local_oidc dd_local_oidc;

typedef struct dd_local_oidc_opts {
	const char *env;            /* production/staging: FORBIDDEN */
	const char *issuer;         /* the "iss", e.g. <base>/oidc */
	const char *prefix;         /* route prefix, e.g. "/oidc" */
	const char *request_token;  /* what callers must present (secret) */
	const dd_principal *owner;  /* whom the tokens speak for (copied) */
	int64_t (*now)(void);       /* NULL: wall clock */
} dd_local_oidc_opts;

dd_err_t dd_local_oidc_new(const dd_local_oidc_opts *o, dd_local_oidc **out);
void dd_local_oidc_free(dd_local_oidc *l);
dd_err_t dd_local_oidc_mount(dd_local_oidc *l, dd_http_server *srv);

#endif
