/*
 * github.h: the few GitHub calls browser sign-in needs, against
 * configurable base URLs (tests point them at a fake GitHub on loopback):
 *
 *   oauth_base (https://github.com):
 *     POST /login/oauth/access_token   code (or device code) -> user token
 *     POST /login/device/code          device flow start
 *   api_base (https://api.github.com):
 *     GET  /user                        login, id
 *     GET  /user/orgs?per_page=100      org logins (lower-cased)
 *     GET  /orgs/{org}                  the org's id (owner kind org)
 *     GET  /orgs/{org}/public_members/{login}   2xx: member
 *     GET  /repos/{owner}/{repo}        id and the user's permissions
 *
 * Every call has a timeout and a capped body; every field GitHub returns
 * is checked (login [A-Za-z0-9-]{1,39}, ids non-zero integers) and a
 * hostile reply is an error with a one-line reason, never a crash.
 * Secrets (client secret, user tokens) are never logged or put in error
 * texts, and are wiped once used. Only the idempotent GETs are retried;
 * a code is single-use, so the POSTs never are. Runs on the loop thread;
 * nothing here logs (the caller does, from why).
 */
#ifndef DD_AUTH_GITHUB_H
#define DD_AUTH_GITHUB_H

#include <stdint.h>

#include "auth/principal.h"
#include "core/err.h"
#include "net/httpc.h"
#include "net/retry.h"

#define DD_GITHUB_DEFAULT_OAUTH "https://github.com"
#define DD_GITHUB_DEFAULT_API "https://api.github.com"
#define DD_GITHUB_MAX_ORGS 48     /* = DD_SESSION_MAX_ORGS (session.h) */

typedef struct dd_github dd_github;

typedef struct dd_github_opts {
	const char *oauth_base;   /* NULL: DD_GITHUB_DEFAULT_OAUTH */
	const char *api_base;     /* NULL: DD_GITHUB_DEFAULT_API */
	uint64_t timeout_ms;      /* per request; 0: 10 s */
	const dd_retry_policy *retry; /* GETs only; NULL: 2 attempts (copied) */
} dd_github_opts;

/* An app's OAuth credentials (secret: never logged). */
typedef struct dd_github_app {
	const char *client_id;
	const char *client_secret;
} dd_github_app;

/*
 * Who signed in, and whether they administer the fleet:
 *   owner kind user: the user's id is the owner's id;
 *   org:  the org named by the owner still has the owner's id (a renamed
 *         org's old name may belong to someone else now) and the user is
 *         a public member of it;
 *   repo: the repository named by the owner still has the owner's id and
 *         the user may push to it (visibility alone would make everyone
 *         an admin of a public repository's fleet).
 * Any error in these checks means "not an admin" (fail closed), as any
 * error fetching orgs means none; more than DD_GITHUB_MAX_ORGS orgs are
 * cut to the first ones.
 */
typedef struct dd_github_user {
	char login[40];
	uint64_t id;
	char orgs[DD_GITHUB_MAX_ORGS][40];   /* lower-cased */
	size_t n_orgs;
	int is_fleet_admin;
} dd_github_user;

/*
 * why explains a failure in one line: UNAUTHORIZED (GitHub refused the
 * code or token), UPSTREAM (GitHub unreachable or answering badly, with
 * its error_description when it sent one), TIMEOUT, CANCELLED, NOMEM,
 * BUSY (device poll only). user is NULL unless err is DD_OK. Everything
 * is valid only during the call; the callback may free the client.
 */
typedef void (*dd_github_user_cb)(dd_err_t err, const dd_github_user *user,
				  const char *why, void *ud);

/*
 * http is borrowed and must outlive the client. CONFIG for a base URL
 * that is not http(s). Free with dd_github_free (pending calls complete
 * with CANCELLED before it returns).
 */
dd_err_t dd_github_new(dd_httpc *http, const dd_github_opts *opts,
		       dd_github **out);
void dd_github_free(dd_github *g);

/*
 * The whole sign-in after the callback: exchange code for a user token
 * (redirect_uri must equal the one sent to /authorize), fetch the user,
 * their orgs, and classify them against the fleet owner (see
 * dd_github_user). The user token is wiped afterwards.
 *
 * All the asynchronous calls below return INVALID for malformed
 * arguments (a code or client id of characters GitHub never issues, an
 * owner with id 0), or NOMEM / BUSY / CLOSED from the HTTP client; the
 * callback then never runs. On DD_OK it runs exactly once, later.
 */
dd_err_t dd_github_sign_in(dd_github *g, const dd_github_app *app,
			   const char *code, const char *redirect_uri,
			   const dd_principal *owner, dd_github_user_cb cb,
			   void *ud);

/* Device flow (native clients), scope read:org. */
typedef struct dd_github_device {
	char device_code[128];
	char user_code[32];
	char verification_uri[256];
	uint64_t interval_s;      /* 1..3600; 5 when GitHub sends none */
	uint64_t expires_in_s;    /* 1..86400 */
} dd_github_device;

typedef void (*dd_github_device_cb)(dd_err_t err,
				    const dd_github_device *dev,
				    const char *why, void *ud);
dd_err_t dd_github_device_start(dd_github *g, const dd_github_app *app,
				dd_github_device_cb cb, void *ud);

/*
 * One poll. BUSY: why is exactly "authorization_pending" or "slow_down"
 * (then add 5 s to the interval, as GitHub asks); UNAUTHORIZED: denied,
 * expired or unknown device code; DD_OK: signed in (user classified as
 * for dd_github_sign_in).
 */
dd_err_t dd_github_device_poll(dd_github *g, const dd_github_app *app,
			       const char *device_code,
			       const dd_principal *owner, dd_github_user_cb cb,
			       void *ud);

#endif
