/*
 * session.h: signed browser sessions, OAuth state and CSRF tokens, all
 * under one server secret (DD_AUTH_COOKIE_SECRET, at least 32 bytes).
 *
 * Token format (cookie, native bearer, OAuth state):
 *   base64url(JSON payload) "." base64url(HMAC-SHA256(key, first part))
 * both unpadded. Verification splits at the first '.', recomputes the MAC
 * over the received first part and compares it in constant time with the
 * second part (the text: a non-canonical encoding of the right MAC fails)
 * before anything is decoded; then the JSON must have exactly the
 * expected shape: required fields present, optional ones of the right
 * type when present (null is a wrong type), unknown fields refused.
 * Keys are derived per purpose (session, state, csrf) from the secret as
 * HMAC-SHA256(secret, "devopsdefender/<purpose>/v1"), so a token of one
 * kind never verifies as another.
 *
 * Session JSON: login, user_id, exp, owner_name, owner_id, owner_kind
 * ("user" | "org" | "repo"), orgs (optional, default []),
 * is_fleet_admin and dev (optional, default false). State JSON:
 * return_to, nonce, app, exp. Signing writes every field.
 *
 * Nothing here touches the network or the clock: now is passed in.
 */
#ifndef DD_AUTH_SESSION_H
#define DD_AUTH_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "auth/cookie.h"        /* dd_cookie_get, dd_cookie_format */
#include "auth/principal.h"
#include "core/buf.h"
#include "core/err.h"

#define DD_SESSION_MIN_SECRET 32
#define DD_SESSION_MAX_TOKEN 4096      /* longer tokens are refused */
/*
 * A session with every field at its longest must stay a cookie browsers
 * keep (name + value within 4096 bytes): 48 orgs of 39 characters sign
 * to about 3.2 KB, 64 would not fit. Longer org lists are cut (fail
 * closed: orgs only ever grant).
 */
#define DD_SESSION_MAX_ORGS 48
#define DD_SESSION_LIFETIME_S (7 * 24 * 3600)
#define DD_NONCE_LIFETIME_S 600        /* OAuth state and nonce cookie */
#define DD_SESSION_COOKIE "dd_session"
#define DD_NONCE_COOKIE "dd_oauth_nonce"
#define DD_CSRF_HEADER "X-CSRF-Token"

typedef struct dd_session_keys dd_session_keys;

/*
 * Shapes enforced when signing and verifying: login 1-39 characters of
 * [A-Za-z0-9-]; user_id non-zero unless dev; owner kind valid, name
 * 1-DD_PRINCIPAL_MAX_NAME characters of [A-Za-z0-9._/-], id non-zero;
 * each org 1-39 characters of [a-z0-9-]; ids at most INT64_MAX (JSON).
 */
typedef struct dd_session {
	char login[40];                  /* GitHub login (or dev user name) */
	uint64_t user_id;                /* GitHub numeric id (dev: 0) */
	int64_t exp;
	dd_principal owner;              /* the fleet it was minted for */
	char orgs[DD_SESSION_MAX_ORGS][40]; /* lower-cased org logins */
	size_t n_orgs;
	int is_fleet_admin;
	int dev;                         /* minted by dev sign-in */
} dd_session;

#define DD_OAUTH_NONCE_LEN 43

/*
 * Shapes enforced when signing and verifying: return_to under 1024
 * bytes of printable ASCII without spaces, '"' or '\', and either a local
 * path (one leading '/') or an http(s):// URL. Which URLs a sign-in may
 * return to is return_to.h's decision (dd_return_to_check), made by the
 * caller before signing; the MAC only keeps it from being swapped. nonce
 * exactly DD_OAUTH_NONCE_LEN base64url characters; app 1-15 characters
 * of [a-z0-9-].
 */
typedef struct dd_oauth_state {
	char return_to[1024];
	char nonce[64];                  /* base64url of 32 random bytes */
	char app[16];                    /* "production" or "staging" */
	int64_t exp;
} dd_oauth_state;

/*
 * Derives the per-purpose keys. CONFIG when secret is shorter than
 * DD_SESSION_MIN_SECRET bytes. Free with dd_session_keys_free (wipes).
 */
dd_err_t dd_session_keys_new(const uint8_t *secret, size_t len,
			     dd_session_keys **out);
void dd_session_keys_free(dd_session_keys *k);

/*
 * Appends the signed token for s to out. INVALID when s breaks a shape
 * rule above (it could never verify), TOO_LARGE when the token would pass
 * DD_SESSION_MAX_TOKEN or out's cap; out is unchanged on any error.
 */
dd_err_t dd_session_sign(const dd_session_keys *k, const dd_session *s,
			 dd_buf *out);

/*
 * Verifies a session token: signature, shape, exp >= now (no leeway), and
 * the owner equal to expect_owner in kind, name and id (a session minted
 * for another fleet is not ours; id 0 never matches). UNAUTHORIZED with
 * why on any failure; why never holds token bytes. NOMEM and CRYPTO
 * (the MAC primitive failed) are reported as such, not as UNAUTHORIZED.
 * *out is written only on success.
 */
dd_err_t dd_session_verify(const dd_session_keys *k, const char *token,
			   size_t len, const dd_principal *expect_owner,
			   int64_t now, dd_session *out, char *why,
			   size_t why_len);

/* As dd_session_sign, for the OAuth state. */
dd_err_t dd_oauth_state_sign(const dd_session_keys *k,
			     const dd_oauth_state *st, dd_buf *out);
/* Signature, shape and exp >= now; otherwise as dd_session_verify. */
dd_err_t dd_oauth_state_verify(const dd_session_keys *k, const char *token,
			       size_t len, int64_t now, dd_oauth_state *out,
			       char *why, size_t why_len);

/* A fresh nonce: base64url of 32 bytes from the OS CSPRNG. */
dd_err_t dd_oauth_nonce_new(char out[DD_OAUTH_NONCE_LEN + 1]);
/*
 * Non-zero when the nonce cookie value (cookie[0..len), may be NULL)
 * equals st->nonce; constant time, a length mismatch fails.
 */
int dd_oauth_nonce_check(const dd_oauth_state *st, const char *cookie,
			 size_t len);

/*
 * CSRF token for a session token: base64url(HMAC(csrf key, session
 * token)), 43 characters + NUL. Pages embed it; state-changing requests
 * authenticated by the cookie must send it back (header DD_CSRF_HEADER or
 * form field "csrf"); dd_csrf_check compares in constant time and returns
 * non-zero on a match (presented may be NULL). Neither checks the session
 * itself: verify it first. INVALID for an empty session token or one
 * longer than DD_SESSION_MAX_TOKEN.
 */
#define DD_CSRF_LEN 43
dd_err_t dd_csrf_token(const dd_session_keys *k, const char *session_token,
		       size_t len, char out[DD_CSRF_LEN + 1]);
int dd_csrf_check(const dd_session_keys *k, const char *session_token,
		  size_t len, const char *presented);

#endif
