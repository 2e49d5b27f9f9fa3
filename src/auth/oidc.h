/*
 * oidc.h: verifying GitHub Actions OIDC tokens, the only credential CI
 * holds.
 *
 * A token passes when, in order:
 *   1. it is a JWT of at most DD_OIDC_MAX_TOKEN bytes, RS256 only (what
 *      GitHub signs with), with a kid found in the issuer's JWKS (one
 *      refetch for an unknown kid, throttled: jwks_cache.h);
 *   2. the signature verifies and the claims hold: exact "iss"; "aud"
 *      equal to, or an array containing, the configured audience;
 *      exp/nbf/iat with 60 s leeway; and our own maximum age counted from
 *      iat (GitHub's tokens live for hours; a deploy needs minutes);
 *   3. it speaks for one of the accepted principals (principal.h):
 *      user/org match repository_owner + repository_owner_id, repo
 *      matches repository + repository_id; ids as JSON numbers or
 *      decimal strings (GitHub sends strings);
 *   4. its "jti" has not been used before (replay.h); it is recorded only
 *      now, so a token refused above can still be used where it fits.
 *      A token without a "jti" (or with an empty, non-string or over-long
 *      one) is refused: nothing could stop it being replayed. The id is
 *      kept until the token could no longer pass step 2: the earlier of
 *      exp and iat + max_age, plus the leeway.
 *
 * Names and ids are compared exactly; an id that is absent, 0, negative,
 * a real, or a string that is not canonical decimal (digits only, no
 * leading zero, at most 2^64 - 1) counts as 0 and never matches. The
 * identity claims (repository, repository_owner) are never cut: one too
 * long for its field is taken as absent. The descriptive ones (sub, ref,
 * workflow, actor) are cut at a UTF-8 boundary to fit, so decisions must
 * not rest on them.
 *
 * Everything runs on the loop thread.
 */
#ifndef DD_AUTH_OIDC_H
#define DD_AUTH_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "auth/jwt.h"
#include "auth/principal.h"
#include "auth/replay.h"
#include "core/err.h"
#include "net/httpc.h"

#define DD_OIDC_MAX_TOKEN (8u * 1024)
#define DD_OIDC_DEFAULT_ISSUER "https://token.actions.githubusercontent.com"
#define DD_OIDC_DEFAULT_JWKS \
	"https://token.actions.githubusercontent.com/.well-known/jwks"
#define DD_OIDC_DEFAULT_AUDIENCE "dd-agent"
#define DD_OIDC_MAX_ACCEPTED 64     /* principals per dd_oidc_verify() */

typedef struct dd_oidc dd_oidc;

/* Strings are copied; an empty issuer or audience is CONFIG. */
typedef struct dd_oidc_opts {
	const char *issuer;      /* NULL: DD_OIDC_DEFAULT_ISSUER */
	const char *jwks_url;    /* NULL: DD_OIDC_DEFAULT_JWKS */
	const char *audience;    /* NULL: DD_OIDC_DEFAULT_AUDIENCE */
	uint64_t max_age_s;      /* 0: 900 */
	uint64_t leeway_s;       /* 0: 60 */
	uint64_t jwks_refresh_ms; /* 0: the cache's default */
	size_t replay_capacity;  /* 0: 65536 */
} dd_oidc_opts;

/* What a verified token says (strings NUL-terminated, "" when absent). */
typedef struct dd_oidc_claims {
	char sub[256];
	char repository[DD_PRINCIPAL_MAX_NAME + 1];
	uint64_t repository_id;
	char repository_owner[DD_PRINCIPAL_MAX_NAME + 1];
	uint64_t repository_owner_id;
	char ref[256];
	char workflow[256];
	char actor[64];
	char jti[DD_REPLAY_MAX_ID + 1];
	int64_t iat, exp;        /* reals rounded up */
	int matched;             /* index into the accepted principals */
} dd_oidc_claims;

typedef enum {
	DD_OIDC_OK = 0,
	DD_OIDC_NO_TOKEN,        /* no or empty bearer: 401 */
	DD_OIDC_BAD_TOKEN,       /* the JWT check failed (jwt says why): 401 */
	DD_OIDC_KEYS_UNAVAILABLE,/* the JWKS cannot be fetched: 502 */
	DD_OIDC_WRONG_OWNER,     /* verified, not an accepted principal: 403 */
	DD_OIDC_REPLAYED,        /* jti seen before: 401 */
	DD_OIDC_BUSY,            /* replay set full: 503 */
	DD_OIDC_INTERNAL,        /* out of memory, cancelled: 500 */
} dd_oidc_status;

typedef struct dd_oidc_result {
	dd_oidc_status status;
	dd_jwt_result jwt;       /* the JWT reason when status is BAD_TOKEN */
	/*
	 * Valid when status is OK, and also for WRONG_OWNER, REPLAYED and
	 * BUSY (a verified token refused later: what the caller logs).
	 */
	dd_oidc_claims claims;
	char why[192];           /* one line, never token bytes; "" on OK */
} dd_oidc_result;

/* The HTTP status and the JSON "code" for a result. */
int dd_oidc_http_status(dd_oidc_status s);
const char *dd_oidc_status_name(dd_oidc_status s);

/*
 * http is borrowed and must outlive o. CONFIG for an empty issuer or
 * audience, a bad JWKS URL or a replay capacity over replay.h's bound;
 * NOMEM; IO. Free with dd_oidc_free: checks still waiting for the JWKS
 * get their callback with INTERNAL ("cancelled") before it returns, or,
 * when it is called from inside a dd_oidc callback, once that returns.
 */
dd_err_t dd_oidc_new(uv_loop_t *loop, dd_httpc *http,
		     const dd_oidc_opts *opts, dd_oidc **out);
void dd_oidc_free(dd_oidc *o);

/* The configured issuer (borrowed; lives as long as o). */
const char *dd_oidc_issuer(const dd_oidc *o);

/* res is valid only during the call. */
typedef void (*dd_oidc_cb)(const dd_oidc_result *res, void *ud);

/*
 * Checks an Authorization header value (dd_oidc_bearer(); NULL or no
 * bearer gives NO_TOKEN) against the accepted principals at time now.
 * accepted[0..n_accepted) is copied (1 to DD_OIDC_MAX_ACCEPTED; the first
 * that matches wins); the token is copied. cb runs exactly once, possibly
 * before this returns; the return value is DD_OK whenever cb will run or
 * has run. Otherwise cb is not called: BUSY (too many checks waiting for
 * the JWKS), NOMEM, INVALID (no or too many principals), CLOSED (o is
 * being freed). cb may free o, even while dd_oidc_free(o) is running.
 */
dd_err_t dd_oidc_verify(dd_oidc *o, const char *authorization,
			const dd_principal *accepted, size_t n_accepted,
			int64_t now, dd_oidc_cb cb, void *ud);

/*
 * The synchronous pieces of dd_oidc_verify(), exposed for the fuzzer, the
 * benchmark and tests; the verifier is exactly these around the JWKS
 * cache.
 *
 * dd_oidc_bearer: the token of an Authorization value: "Bearer" or
 * "bearer", then spaces or tabs, then a non-empty token; surrounding
 * whitespace is ignored. *tok points into authorization. INVALID with a
 * one-line why otherwise (why may be NULL).
 */
dd_err_t dd_oidc_bearer(const char *authorization, const char **tok,
			size_t *tok_len, char *why, size_t why_len);

/*
 * The claims of a token whose signature and registered claims passed
 * (dd_jwt_claims()) into *out, matched = -1. Refuses only over "jti"
 * (res says why: MISSING_CLAIM when absent or empty, MALFORMED when not a
 * string or longer than DD_REPLAY_MAX_ID) and returns
 * dd_jwt_reason_err() of the reason; every other field is best effort as
 * described above.
 */
dd_err_t dd_oidc_claims_parse(const json_t *claims, dd_oidc_claims *out,
			      dd_jwt_result *res);

/*
 * The index of the first of accepted[0..n) that c speaks for, or -1 with
 * a one-line why (names only the configured principal and numeric ids;
 * why may be NULL).
 */
int dd_oidc_match(const dd_oidc_claims *c, const dd_principal *accepted,
		  size_t n, char *why, size_t why_len);

#endif
