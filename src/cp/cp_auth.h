/*
 * cp_auth.h: the CP's identity machinery, built from its configuration:
 * the session keys (DD_AUTH_COOKIE_SECRET), the GitHub client and the
 * sign-in broker, dev sign-in (DD_DEV only), the GitHub Actions OIDC
 * verifier, and the authorization table in front of every route.
 */
#ifndef DD_CP_CP_AUTH_H
#define DD_CP_CP_AUTH_H

#include <stddef.h>

#include <uv.h>

#include "auth/authz.h"
#include "auth/session.h"
#include "core/config.h"
#include "core/err.h"
#include "net/httpc.h"

#define DD_CP_AUTH_ROUTES 12

typedef struct dd_cp_auth dd_cp_auth;

/* http is borrowed. CONFIG/INVALID with why for unusable settings. */
dd_err_t dd_cp_auth_new(const dd_config *cfg, uv_loop_t *loop,
			dd_httpc *http, dd_cp_auth **out, char *why,
			size_t why_len);

dd_authz *dd_cp_auth_authz(dd_cp_auth *a);
/* The session keys (borrowed; live as long as a): pages' CSRF tokens. */
const dd_session_keys *dd_cp_auth_keys(const dd_cp_auth *a);

/* The sign-in routes (room for DD_CP_AUTH_ROUTES); returns n. */
size_t dd_cp_auth_routes(dd_cp_auth *a, dd_authz_route *routes);

/*
 * The public origin, once the listener is up: DD_PUBLIC_URL, else
 * https://DD_HOSTNAME, else (dev) http://<bind>:<port>.
 */
dd_err_t dd_cp_auth_listening(dd_cp_auth *a, uint16_t port);

/* Cancels outstanding GitHub and OIDC calls (at shutdown). */
void dd_cp_auth_close(dd_cp_auth *a);
void dd_cp_auth_free(dd_cp_auth *a);

#endif
