/*
 * jwks_cache.h: an issuer's JWKS, fetched with dd_httpc and kept on the
 * libuv loop, for the ITA and GitHub OIDC verifiers.
 *
 * Policy (not options): the set starts empty and the first lookup
 * fetches it. A lookup for a kid the set lacks refetches, but only when
 * refresh_interval_ms has passed since the last fetch started after a
 * success, or retry_interval_ms after a failure; otherwise it is
 * answered from what we have. So an attacker spraying random kids causes
 * at most one fetch per interval, and rotation (a new kid appearing) is
 * picked up on the first token that names it. A set older than
 * max_age_ms is still served, while one background refetch (same
 * throttle) replaces it, so keys the issuer has withdrawn stop working.
 * A failed fetch (transport error, timeout, non-200, body over the cap,
 * invalid JWKS) keeps the previous set. Concurrent lookups that need a
 * fetch wait on the one fetch in flight. No retries inside a fetch: the
 * throttle is the retry policy.
 *
 * Lookup answers: DD_OK with the key; NOT_FOUND when the set (fresh or
 * throttled) has no such kid; when the last fetch failed and the kid is
 * not in the old set, that fetch's error (UPSTREAM, TIMEOUT, TOO_LARGE,
 * INVALID, NOMEM), which callers map to 502; CANCELLED when the cache is
 * freed while waiting.
 *
 * Loop thread only. The cache logs one line per fetch outcome (URL and
 * key count, or the error); it never logs key material.
 */
#ifndef DD_AUTH_JWKS_CACHE_H
#define DD_AUTH_JWKS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "auth/jwk.h"
#include "auth/jwt.h"
#include "core/err.h"
#include "net/httpc.h"

#define DD_JWKS_DEFAULT_REFRESH_MS 60000u      /* after a good fetch */
#define DD_JWKS_DEFAULT_RETRY_MS 5000u         /* after a failed fetch */
#define DD_JWKS_DEFAULT_MAX_AGE_MS 3600000u    /* background refresh */
#define DD_JWKS_DEFAULT_TIMEOUT_MS 10000u
#define DD_JWKS_DEFAULT_MAX_WAITERS 1024u

typedef struct dd_jwks_cache dd_jwks_cache;
typedef struct dd_jwks_wait dd_jwks_wait;

/* Zero selects the default. url is copied. */
typedef struct dd_jwks_cache_opts {
	const char *url;              /* required; http:// or https:// */
	uint64_t refresh_interval_ms;
	uint64_t retry_interval_ms;
	uint64_t max_age_ms;
	uint64_t timeout_ms;          /* per fetch */
	size_t max_bytes;             /* default and most: 64 KiB */
	unsigned max_waiters;         /* lookups waiting at once; then BUSY */
} dd_jwks_cache_opts;

typedef struct dd_jwks_cache_stats {
	uint64_t fetches;             /* started */
	uint64_t failures;            /* completed without a new set */
	size_t keys;                  /* in the current set */
	unsigned waiting;             /* lookups waiting for a fetch */
	dd_err_t last_err;            /* of the last completed fetch */
} dd_jwks_cache_stats;

/*
 * Key lookup result. key is borrowed: valid only during the callback
 * (verify inside it, or dd_jwks_ref() the set from dd_jwks_cache_keys()).
 * NULL unless err is DD_OK.
 */
typedef void (*dd_jwks_cache_cb)(dd_err_t err, const dd_jwk *key, void *ud);

/*
 * Verification result: err is dd_jwt_reason_err(res->reason) (or NOMEM,
 * CANCELLED); claims is borrowed, valid during the callback
 * (json_incref() it to keep it), NULL unless err is DD_OK.
 */
typedef void (*dd_jwks_verify_cb)(dd_err_t err, json_t *claims,
				  const dd_jwt_result *res, void *ud);

/*
 * Creates a cache that fetches with http (not owned; it must outlive the
 * cache). Nothing is fetched yet. CONFIG for a missing or bad URL; NOMEM.
 * Caller releases it with dd_jwks_cache_free().
 */
dd_err_t dd_jwks_cache_new(uv_loop_t *loop, dd_httpc *http,
			   const dd_jwks_cache_opts *opts,
			   dd_jwks_cache **out);

/*
 * Looks kid up. DD_OK means cb runs exactly once (unless cancelled):
 * either before this returns (the answer was known: *out is then NULL)
 * or from the loop after the fetch (*out, if out is not NULL, is a
 * handle for dd_jwks_cache_cancel(), valid until cb starts). Any other
 * return means cb never runs: BUSY (too many waiters), NOMEM, CLOSED
 * (cache being freed), INVALID (empty or over-long kid).
 */
dd_err_t dd_jwks_cache_get(dd_jwks_cache *c, const char *kid, size_t kid_len,
			   dd_jwks_cache_cb cb, void *ud, dd_jwks_wait **out);

/*
 * Decodes token, looks its kid up as above and verifies it against pol
 * at time now. DD_OK means cb runs exactly once, possibly before this
 * returns (then *out is NULL); every verdict, refusals included, goes
 * through cb. Otherwise cb never runs: BUSY, NOMEM, CLOSED. pol and its
 * strings must stay valid until cb has run or the wait is cancelled; the
 * token is copied.
 */
dd_err_t dd_jwks_cache_verify(dd_jwks_cache *c, const char *token,
			      size_t len, const dd_jwt_policy *pol,
			      int64_t now, dd_jwks_verify_cb cb, void *ud,
			      dd_jwks_wait **out);

/*
 * Withdraws a waiting lookup: its callback never runs and w is freed.
 * Never call it from w's own callback.
 */
void dd_jwks_cache_cancel(dd_jwks_wait *w);

/* The current set (borrowed; NULL before the first good fetch). */
dd_jwks *dd_jwks_cache_keys(const dd_jwks_cache *c);

void dd_jwks_cache_stats_get(const dd_jwks_cache *c, dd_jwks_cache_stats *st);

/*
 * Cancels the fetch in flight, runs every waiting callback with
 * CANCELLED, then frees the cache. Safe to call from a cache callback
 * (the free then happens once that callback returns). NULL is a no-op.
 */
void dd_jwks_cache_free(dd_jwks_cache *c);

#endif
