/*
 * retry.h: when and how long to wait before retrying an outbound call.
 *
 * Pure functions only: no clock, no randomness and no I/O of their own.
 * The caller passes the current wall-clock time (for HTTP-date
 * Retry-After values) and a uniformly random 64-bit number (for jitter),
 * so every decision can be unit tested exactly. dd_httpc drives these
 * from the loop; other callers (the agent registration loop) may use them
 * directly.
 *
 * Back-off is exponential with "equal jitter": the un-jittered delay
 * before retry n (n = 1 for the first retry) is min(cap, base * 2^(n-1));
 * the actual delay is half of that plus a random share of the other half,
 * so retries never bunch at zero and never exceed the cap. A Retry-After
 * header on 429 or 503 replaces the back-off; every wait, Retry-After
 * included, is clamped to max_wait_ms so a hostile or confused server
 * cannot park us for hours.
 */
#ifndef DD_NET_RETRY_H
#define DD_NET_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Zero in any field selects the default shown. */
#define DD_RETRY_DEFAULT_ATTEMPTS 3u
#define DD_RETRY_DEFAULT_BASE_MS 250u
#define DD_RETRY_DEFAULT_CAP_MS 10000u
#define DD_RETRY_DEFAULT_MAX_WAIT_MS 60000u
#define DD_RETRY_MAX_STATUSES 16u

typedef struct dd_retry_policy {
	unsigned max_attempts;  /* total attempts, the first included */
	uint64_t base_ms;       /* back-off scale before the first retry */
	uint64_t cap_ms;        /* ceiling of the exponential back-off */
	uint64_t max_wait_ms;   /* ceiling of any single wait */
	/*
	 * HTTP statuses worth retrying; n_statuses == 0 selects 429, 502,
	 * 503 and 504. At most DD_RETRY_MAX_STATUSES entries are honoured.
	 */
	const long *statuses;
	size_t n_statuses;
	/*
	 * Non-zero: do not retry DD_ERR_UPSTREAM / DD_ERR_TIMEOUT. Set it
	 * for non-idempotent calls where a request that reached the server
	 * must not be sent twice.
	 */
	int no_transport_retry;
} dd_retry_policy;

/*
 * Jittered back-off before retry number `retry` (1-based), clamped to
 * max_wait_ms. rnd is any uniformly distributed 64-bit value.
 */
uint64_t dd_retry_backoff_ms(const dd_retry_policy *p, unsigned retry,
			     uint64_t rnd);

/*
 * Parses an HTTP-date (RFC 9110 section 5.6.7) in any of its three forms:
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
 * now (Unix seconds) resolves RFC 850's two-digit years. INVALID on
 * anything else, including impossible dates such as 31 Feb.
 */
dd_err_t dd_http_date_parse(const char *s, size_t n, int64_t now,
			    int64_t *out);

/*
 * Parses a Retry-After value, delta-seconds or HTTP-date, into a wait in
 * milliseconds from now (dates in the past give 0). Huge delta-seconds
 * saturate rather than fail. Surrounding whitespace is ignored. INVALID
 * when it is neither form.
 */
dd_err_t dd_retry_after_parse(const char *s, size_t n, int64_t now,
			      uint64_t *out_ms);

/* Non-zero when a result (err, and status when err is DD_OK) is retryable. */
int dd_retry_retryable(const dd_retry_policy *p, dd_err_t err, long status);

/*
 * The whole decision after attempt number `attempts` (1-based) ended with
 * err/status. Returns non-zero and sets *delay_ms when another attempt
 * should run. retry_after is the response's Retry-After value or NULL;
 * it is honoured on 429 and 503 and ignored when unparseable (the
 * back-off applies instead).
 */
int dd_retry_next(const dd_retry_policy *p, unsigned attempts, dd_err_t err,
		  long status, const char *retry_after, int64_t now,
		  uint64_t rnd, uint64_t *delay_ms);

#endif
