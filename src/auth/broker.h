/*
 * broker.h: the CP's sign-in endpoints, the only place sessions are made.
 *
 *   GET  /auth/github/start?return_to=URL   signed state + nonce cookie,
 *                                            307 to GitHub's authorize page
 *   GET  /auth/github/callback?code&state   state (signature, expiry, single
 *                                            use), nonce cookie, code
 *                                            exchange, user lookup and
 *                                            classification, session cookie,
 *                                            307 to return_to
 *   POST /auth/device/start, /auth/device/poll   the device flow; the
 *                                            session comes back as a bearer
 *   POST /auth/logout                        clears the cookie
 *   GET  /auth/me                            the session as JSON
 *   GET  /auth/agent?return_to=URL           a 60 s ticket (ES256, signed
 *                                            by a key generated at start,
 *                                            published at /auth/keys) that
 *                                            signs the user in to one agent
 *   GET  /auth/keys                          that key as a JWKS
 *
 * Dev sign-in (/auth/dev, DD_DEV only) lives in dev_signin.h.
 *
 * Agents never hold the cookie secret: they trust tickets through the
 * JWKS of the attested CP and keep their own per-boot session key.
 */
#ifndef DD_AUTH_BROKER_H
#define DD_AUTH_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "auth/authz.h"
#include "auth/github.h"
#include "auth/principal.h"
#include "auth/session.h"
#include "core/err.h"

#define DD_TICKET_LIFETIME_S 60
#define DD_BROKER_ROUTES 8

typedef struct dd_broker dd_broker;

typedef struct dd_broker_opts {
	const dd_principal *owner;      /* copied */
	const dd_session_keys *keys;    /* borrowed */
	dd_github *github;              /* borrowed; NULL: no GitHub sign-in */
	const char *oauth_base;         /* GitHub's authorize host */
	/* generic, production, staging; NULL id: not configured */
	dd_github_app apps[3];
	const char *callback_url;       /* NULL: <origin>/auth/github/callback */
	const char *cookie_domain;      /* NULL: host-only cookies */
	const char *domain;             /* return_to hosts; NULL: own origin */
	int dev;
	int64_t (*now)(void);           /* NULL: wall clock */
} dd_broker_opts;

/*
 * Strings are copied, secrets included (wiped on free). Free the GitHub
 * client before the broker: its cancelled calls still come back here.
 */
dd_err_t dd_broker_new(const dd_broker_opts *opts, dd_broker **out);
void dd_broker_free(dd_broker *b);

/*
 * The public origin ("https://app.example.com"), once the listener is up;
 * it is the issuer of tickets and the base of the default callback.
 */
dd_err_t dd_broker_set_origin(dd_broker *b, const char *origin);

/* At shutdown, before the GitHub client is freed: sign-ins get 503. */
void dd_broker_close(dd_broker *b);

/* Fills routes (room for DD_BROKER_ROUTES) for dd_authz_mount; returns n. */
size_t dd_broker_routes(dd_broker *b, dd_authz_route *routes);

/*
 * For dev sign-in (dev_signin.h), the one other maker of sessions:
 * signs s into the session cookie and answers 303 to where.
 */
void dd_broker_issue(dd_broker *b, dd_http_req *req, const dd_session *s,
		     const char *where);
const dd_principal *dd_broker_owner(const dd_broker *b);
int64_t dd_broker_now(const dd_broker *b);
/* Checks a return_to as the broker does; where gets origin + path. */
dd_err_t dd_broker_check_return(const dd_broker *b, const char *url,
				char *where, size_t where_cap, char *why,
				size_t why_len);

#endif
