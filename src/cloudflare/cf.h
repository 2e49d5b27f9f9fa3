/*
 * cf.h: the Cloudflare v4 API client (spec/integrations.md 1.1-1.4).
 *
 * Asynchronous on the libuv loop through dd_httpc: every call returns at
 * once and its callback runs later on the loop thread. Policy, fixed here
 * rather than left to callers (DESIGN.md 5.13):
 *   - every request has a timeout (opts.timeout_ms per attempt);
 *   - idempotent calls (GET, PUT, DELETE) are retried on 429, 5xx and
 *     transport failures with jittered exponential back-off; POSTs only on
 *     429 (Cloudflare did not act on it); Retry-After is honoured on 429
 *     and 503, clamped to opts.max_wait_ms;
 *   - lists are paginated to the end (page/per_page, result_info) and never
 *     silently truncated: past opts.max_items the list fails TOO_LARGE;
 *   - replies are size-capped and parsed as the v4 envelope: a non-2xx
 *     status, a body that is not an envelope, and "success": false (which
 *     Cloudflare sends with 200 on validation errors) are all failures
 *     whose message keeps Cloudflare's error codes and texts.
 * The bearer token is never logged and never appears in a message; nothing
 * here logs at all.
 *
 * Error messages read "CF {METHOD} {path} -> {status}: [code] text; ..."
 * (path without the query string), capped at DD_CF_MSG_MAX bytes.
 */
#ifndef DD_CLOUDFLARE_CF_H
#define DD_CLOUDFLARE_CF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "net/httpc.h"

#define DD_CF_DEFAULT_BASE_URL "https://api.cloudflare.com/client/v4"
#define DD_CF_DEFAULT_TIMEOUT_MS 20000u
#define DD_CF_DEFAULT_ATTEMPTS 4u
#define DD_CF_DEFAULT_MAX_WAIT_MS 30000u
#define DD_CF_DEFAULT_MAX_ITEMS 100000u
#define DD_CF_DEFAULT_MAX_RESPONSE (8u << 20)
#define DD_CF_MSG_MAX 600
#define DD_CF_ID_MAX 64

typedef struct dd_cf dd_cf;

/* Strings are copied. Zero numbers select the defaults above. */
typedef struct dd_cf_opts {
	const char *base_url;   /* NULL: DD_CF_DEFAULT_BASE_URL */
	const char *api_token;  /* required; a secret */
	const char *account_id; /* required for /accounts/... calls */
	const char *zone_id;    /* required for /zones/... calls */
	uint64_t timeout_ms;    /* per attempt */
	unsigned max_attempts;  /* 1 = no retries */
	uint64_t base_backoff_ms; /* first back-off (default 500) */
	uint64_t max_wait_ms;   /* longest single wait, Retry-After included */
	size_t max_response;    /* body cap per reply */
	size_t max_items;       /* longest list accepted */
} dd_cf_opts;

typedef struct dd_cf_reply {
	dd_err_t err;          /* DD_OK, UPSTREAM, TIMEOUT, TOO_LARGE, ... */
	long status;           /* last HTTP status; 0 when none was read */
	long cf_code;          /* first Cloudflare error code, 0 if none */
	const char *message;   /* "" on success; never NULL */
	/*
	 * Single calls: the envelope's "result" (NULL when absent). Lists:
	 * an array of every item of every page. Borrowed: valid during the
	 * callback only (json_incref to keep it).
	 */
	const json_t *result;
} dd_cf_reply;

/*
 * Runs exactly once per started call, on the loop thread (also during
 * dd_cf_shutdown, with CANCELLED). It may start new calls.
 */
typedef void (*dd_cf_cb)(const dd_cf_reply *r, void *ud);

/*
 * The options of the CP's configuration (DD_CF_*); strings borrowed from
 * cfg. Token NULL means Cloudflare is not configured.
 */
void dd_cf_opts_from_config(const dd_config *cfg, dd_cf_opts *o);

/*
 * A client over http (borrowed; must outlive the client). CONFIG for a
 * missing token or a bad base URL, with why filled. Caller frees with
 * dd_cf_free().
 */
dd_err_t dd_cf_new(dd_httpc *http, const dd_cf_opts *opts, dd_cf **out,
		   char *why, size_t why_len);

/*
 * Completes every call in flight with CANCELLED (callbacks run before
 * this returns) and refuses new ones with CLOSED. Idempotent.
 */
void dd_cf_shutdown(dd_cf *cf);
/* Shuts down if needed, then frees (wiping the token). NULL: no-op. */
void dd_cf_free(dd_cf *cf);

const char *dd_cf_account(const dd_cf *cf); /* "" when unset */
const char *dd_cf_zone(const dd_cf *cf);

/*
 * One call. path starts with '/' and may carry a query string (the
 * caller encodes it); body may be NULL. On error the callback is never
 * called: INVALID (bad path), CLOSED, BUSY, NOMEM, TOO_LARGE (body).
 */
dd_err_t dd_cf_call(dd_cf *cf, const char *method, const char *path,
		    const json_t *body, dd_cf_cb cb, void *ud);

/*
 * A paginated GET: path (with any filter query, without page/per_page)
 * is fetched page by page with per_page items until result_info says the
 * last page was read (or, without total_pages, a page comes back short).
 * The callback gets every item in one array.
 */
dd_err_t dd_cf_list(dd_cf *cf, const char *path, unsigned per_page,
		    dd_cf_cb cb, void *ud);

/* Number of calls in flight (a paginated list counts once). */
unsigned dd_cf_inflight(const dd_cf *cf);

/*
 * Socket-free pieces, public for tests and the fuzzer.
 */

/*
 * Interprets one reply: status and body[0..len). On DD_OK *env is the
 * envelope object (caller json_decref) and success was true. Otherwise
 * *env is NULL, msg holds "-> {status}: ..." text (appended; the caller
 * prefixes method and path) and *cf_code the first Cloudflare code.
 * UPSTREAM for every refusal and malformed reply; NOMEM.
 */
dd_err_t dd_cf_envelope_parse(long status, const void *body, size_t len,
			      size_t max, json_t **env, long *cf_code,
			      dd_buf *msg);

/*
 * Reads a list page from an envelope: *items is the borrowed "result"
 * array, *total_pages result_info.total_pages (0 when absent or not a
 * positive integer). UPSTREAM with msg when result is not an array.
 */
dd_err_t dd_cf_page_parse(const json_t *env, const json_t **items,
			  uint64_t *total_pages, dd_buf *msg);

/* An id Cloudflare gave us, safe in a path: 1..64 of [A-Za-z0-9-]. */
int dd_cf_id_ok(const char *id);

/* Appends s percent-encoded for a query value. */
dd_err_t dd_cf_query_append(dd_buf *b, const char *s);

#endif
