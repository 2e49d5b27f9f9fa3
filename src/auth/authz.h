/*
 * authz.h: who may call what, decided in one place.
 *
 * One table (authz_table.c) lists every endpoint of the CP and the agent
 * with the callers it admits. A service mounts its handlers only through
 * dd_authz_mount, which refuses at boot any route the table does not
 * list, so no handler can exist without a stated rule. At request time
 * the caller is identified, checked against the entry, and only then is
 * the handler called, with the caller in hand:
 *
 *   anonymous  no credentials (or none this entry looks at)
 *   USER       a signed-in browser (or native bearer) session
 *   ADMIN      a session of a fleet admin (classified at sign-in)
 *   OWNER      a GitHub Actions OIDC token of the fleet principal
 *   TENANT     on an agent: a GitHub Actions OIDC token of the runtime
 *              tenant (POST /owner sets it)
 *   TENANT_USER on an agent: a session whose user is the runtime tenant
 *              (or the fleet owner): the people side of TENANT
 *   AGENT      an attested agent; its evidence (ITA token over a CP nonce)
 *              travels in the body and the handler verifies it, because
 *              only the handler knows which nonce it must bind
 *
 * Signed in is not allowed: a session that is neither admin nor tenant
 * reaches only entries admitting USER (dashboards, which the handlers
 * scope to the user's own agents). No caller is trusted for where it
 * connects from (cloudflared forwards the public internet from
 * loopback). A credential that is presented and bad is refused with its
 * reason even where anonymous callers are admitted: a client should learn
 * that its token is wrong rather than silently get less. (A valid OIDC
 * token of someone other than the owner or tenant is not "bad": where
 * anyone may call, its bearer is served as anyone.)
 *
 * Cookie-authenticated requests that change state need the CSRF token
 * (session.h) in X-CSRF-Token or a "csrf" form field, and a same-origin
 * Origin header when one is sent.
 */
#ifndef DD_AUTH_AUTHZ_H
#define DD_AUTH_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth/oidc.h"
#include "auth/principal.h"
#include "auth/session.h"
#include "core/err.h"
#include "net/http.h"

enum {
	DD_CALLER_ANON = 1u << 0,
	DD_CALLER_USER = 1u << 1,
	DD_CALLER_ADMIN = 1u << 2,
	DD_CALLER_OWNER = 1u << 3,
	DD_CALLER_TENANT = 1u << 4,
	DD_CALLER_AGENT = 1u << 5,
	DD_CALLER_TENANT_USER = 1u << 6,
};

/* Entry flags. */
enum {
	/* A browser page: an anonymous caller is sent to sign in (307). */
	DD_AUTHZ_PAGE = 1u << 0,
	/* Exists only with DD_DEV; the table test checks it is absent otherwise. */
	DD_AUTHZ_DEV_ONLY = 1u << 1,
	/* Rate-limited or expensive: anonymous bodies stay tiny. */
	DD_AUTHZ_SMALL_BODY = 1u << 2,
};

typedef struct dd_authz_entry {
	const char *service;      /* "cp" or "agent" */
	unsigned methods;         /* DD_M_* */
	const char *pattern;
	unsigned allow;           /* DD_CALLER_* */
	unsigned flags;           /* DD_AUTHZ_* */
	const char *what;         /* one line: for docs/auth.md and errors */
} dd_authz_entry;

/* The whole table, for the table test and docs. */
const dd_authz_entry *dd_authz_table(size_t *n);

/* The entry for (service, methods, pattern), or NULL. */
const dd_authz_entry *dd_authz_find(const char *service, unsigned methods,
				    const char *pattern);

/* Who is calling, as established for this request. */
typedef struct dd_caller {
	unsigned kind;            /* exactly one DD_CALLER_* bit */
	int via_cookie;           /* the session came from the cookie */
	dd_session session;       /* USER, ADMIN, TENANT_USER */
	dd_oidc_claims oidc;      /* OWNER, or TENANT by OIDC */
	const char *session_token;/* borrowed, for CSRF tokens in pages */
	size_t session_token_len;
} dd_caller;

typedef void (*dd_authz_handler)(dd_http_req *req, const dd_caller *who,
				 void *ud);

typedef struct dd_authz_route {
	unsigned methods;
	const char *pattern;
	dd_authz_handler handler;
	void *ud;
	uint64_t max_body;        /* 0: the server's limits */
	uint64_t max_body_unauth;
} dd_authz_route;

/*
 * The runtime tenant of an agent (NULL: none set). Called per request;
 * the returned principal is copied before the call returns.
 */
typedef const dd_principal *(*dd_authz_tenant_fn)(void *ud);

typedef struct dd_authz_opts {
	const char *service;              /* "cp" or "agent" */
	const dd_principal *owner;        /* the fleet principal (copied) */
	const dd_session_keys *keys;      /* borrowed; NULL: no sessions */
	const char *cookie_name;          /* DD_SESSION_COOKIE on the CP */
	int accept_bearer_sessions;       /* native clients (CP) */
	dd_oidc *oidc;                    /* borrowed; NULL: no OIDC callers */
	dd_authz_tenant_fn tenant;        /* agent only */
	void *tenant_ud;
	const char *public_origin;        /* "https://host" for Origin checks */
	/* Where anonymous page requests go: URL prefix + return_to. */
	const char *sign_in_url;          /* e.g. https://app.d/auth/github/start */
	int dev;                          /* mount DEV_ONLY entries */
	int64_t (*now)(void);             /* NULL: wall clock */
} dd_authz_opts;

typedef struct dd_authz dd_authz;

/*
 * At shutdown, before the OIDC verifier is freed: OIDC callers get 503
 * from now on.
 */
void dd_authz_close(dd_authz *a);

/* Strings are copied; borrowed objects must outlive it. */
dd_err_t dd_authz_new(const dd_authz_opts *opts, dd_authz **out);
void dd_authz_free(dd_authz *a);

/*
 * The public origin and the sign-in URL, once known (a dev listener on
 * port 0 learns its port only after listening). Copied.
 */
dd_err_t dd_authz_set_origin(dd_authz *a, const char *origin);
dd_err_t dd_authz_set_sign_in(dd_authz *a, const char *url);
const char *dd_authz_origin(const dd_authz *a);

/*
 * Mounts routes on srv behind their table entries. CONFIG (with the
 * offending pattern in why) when a route has no entry, or a DEV_ONLY
 * entry outside dev mode; all routes are checked before any is mounted.
 */
dd_err_t dd_authz_mount(dd_authz *a, dd_http_server *srv,
			const dd_authz_route *routes, size_t n, char *why,
			size_t why_len);

/*
 * Scoping for handlers of USER entries: whether a session user may see
 * something owned by p (admins see everything; user: same id; org: a
 * member per the session's org list; repo: its owner is the user or one
 * of their orgs). NULL p (no owner): admins only.
 */
int dd_authz_session_owns(const dd_session *s, const dd_principal *p);

#endif
