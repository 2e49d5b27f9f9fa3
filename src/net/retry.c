#include "net/retry.h"

#include <string.h>

#include "core/strutil.h"

static const long default_statuses[] = {429, 502, 503, 504};

static const char *const short_days[] = {
	"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
};
static const char *const long_days[] = {
	"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
	"Sunday",
};
static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static unsigned attempts_of(const dd_retry_policy *p)
{
	return p->max_attempts ? p->max_attempts : DD_RETRY_DEFAULT_ATTEMPTS;
}

static uint64_t max_wait_of(const dd_retry_policy *p)
{
	return p->max_wait_ms ? p->max_wait_ms : DD_RETRY_DEFAULT_MAX_WAIT_MS;
}

uint64_t dd_retry_backoff_ms(const dd_retry_policy *p, unsigned retry,
			     uint64_t rnd)
{
	uint64_t base = p->base_ms ? p->base_ms : DD_RETRY_DEFAULT_BASE_MS;
	uint64_t cap = p->cap_ms ? p->cap_ms : DD_RETRY_DEFAULT_CAP_MS;
	uint64_t d = base, lo, span;

	/* Doubling stops at the cap, so no shift can overflow. */
	for (unsigned i = 1; i < retry && d < cap; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	if (d > cap)
		d = cap;
	lo = d / 2;
	span = d - lo;
	d = lo + rnd % (span + 1);
	return d < max_wait_of(p) ? d : max_wait_of(p);
}

/* A tiny bounds-checked scanner over the date text. */
typedef struct scan {
	const char *s;
	size_t n;
	size_t pos;
} scan;

static int take_lit(scan *sc, const char *lit)
{
	size_t len = strlen(lit);

	if (len > sc->n - sc->pos || memcmp(sc->s + sc->pos, lit, len) != 0)
		return 0;
	sc->pos += len;
	return 1;
}

static int take_digits(scan *sc, unsigned count, int *out)
{
	int v = 0;

	if (count > sc->n - sc->pos)
		return 0;
	for (unsigned i = 0; i < count; i++) {
		char c = sc->s[sc->pos + i];
		if (c < '0' || c > '9')
			return 0;
		v = v * 10 + (c - '0');
	}
	sc->pos += count;
	*out = v;
	return 1;
}

/* Index of the name that matches at the cursor, or -1. */
static int take_name(scan *sc, const char *const *names, int count)
{
	for (int i = 0; i < count; i++) {
		if (take_lit(sc, names[i]))
			return i;
	}
	return -1;
}

/* "HH:MM:SS" with range checks (60 s admits a leap second). */
static int take_time(scan *sc, int *h, int *m, int *s)
{
	if (!take_digits(sc, 2, h) || !take_lit(sc, ":") ||
	    !take_digits(sc, 2, m) || !take_lit(sc, ":") ||
	    !take_digits(sc, 2, s))
		return 0;
	return *h <= 23 && *m <= 59 && *s <= 60;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	return yoe + era * 400 + (mp >= 10);
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* RFC 9110: a two-digit year more than 50 years ahead is in the past. */
static int expand_year(int yy, int64_t now)
{
	int64_t cur = year_of_days(now >= 0 ? now / 86400
					    : -((-now + 86399) / 86400));
	int64_t y = cur - cur % 100 + yy;

	if (y > cur + 50)
		y -= 100;
	return (int)y;
}

dd_err_t dd_http_date_parse(const char *s, size_t n, int64_t now,
			    int64_t *out)
{
	scan sc = {s, n, 0};
	int day = 0, mon, year = 0, hh, mm, ss, wd;

	wd = take_name(&sc, long_days, 7);
	if (wd >= 0) {
		/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
		if (!take_lit(&sc, ", ") || !take_digits(&sc, 2, &day) ||
		    !take_lit(&sc, "-"))
			return DD_ERR_INVALID;
		mon = take_name(&sc, months, 12);
		if (mon < 0 || !take_lit(&sc, "-") ||
		    !take_digits(&sc, 2, &year))
			return DD_ERR_INVALID;
		year = expand_year(year, now);
		if (!take_lit(&sc, " ") || !take_time(&sc, &hh, &mm, &ss) ||
		    !take_lit(&sc, " GMT"))
			return DD_ERR_INVALID;
	} else {
		wd = take_name(&sc, short_days, 7);
		if (wd < 0)
			return DD_ERR_INVALID;
		if (take_lit(&sc, ", ")) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!take_digits(&sc, 2, &day) || !take_lit(&sc, " "))
				return DD_ERR_INVALID;
			mon = take_name(&sc, months, 12);
			if (mon < 0 || !take_lit(&sc, " ") ||
			    !take_digits(&sc, 4, &year) ||
			    !take_lit(&sc, " ") ||
			    !take_time(&sc, &hh, &mm, &ss) ||
			    !take_lit(&sc, " GMT"))
				return DD_ERR_INVALID;
		} else {
			/* asctime-date: Sun Nov  6 08:49:37 1994 */
			if (!take_lit(&sc, " "))
				return DD_ERR_INVALID;
			mon = take_name(&sc, months, 12);
			if (mon < 0 || !take_lit(&sc, " "))
				return DD_ERR_INVALID;
			if (take_lit(&sc, " ")) {
				if (!take_digits(&sc, 1, &day))
					return DD_ERR_INVALID;
			} else if (!take_digits(&sc, 2, &day)) {
				return DD_ERR_INVALID;
			}
			if (!take_lit(&sc, " ") ||
			    !take_time(&sc, &hh, &mm, &ss) ||
			    !take_lit(&sc, " ") || !take_digits(&sc, 4, &year))
				return DD_ERR_INVALID;
		}
	}
	if (sc.pos != sc.n)
		return DD_ERR_INVALID;
	mon += 1;
	if (day < 1 || day > days_in_month(year, mon))
		return DD_ERR_INVALID;
	*out = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 +
	       ss;
	return DD_OK;
}

dd_err_t dd_retry_after_parse(const char *s, size_t n, int64_t now,
			      uint64_t *out_ms)
{
	uint64_t secs = 0;
	int64_t when;
	dd_err_t rc;

	dd_str_trim(&s, &n);
	if (n == 0)
		return DD_ERR_INVALID;
	if (s[0] >= '0' && s[0] <= '9') {
		rc = dd_parse_u64n(s, n, 0, UINT64_MAX, &secs);
		if (rc == DD_ERR_RANGE) {
			/* All digits, too many: saturate; max_wait clamps. */
			for (size_t i = 0; i < n; i++) {
				if (s[i] < '0' || s[i] > '9')
					return DD_ERR_INVALID;
			}
			*out_ms = UINT64_MAX;
			return DD_OK;
		}
		if (rc)
			return DD_ERR_INVALID;
		*out_ms = secs > UINT64_MAX / 1000 ? UINT64_MAX : secs * 1000;
		return DD_OK;
	}
	rc = dd_http_date_parse(s, n, now, &when);
	if (rc)
		return rc;
	*out_ms = when <= now ? 0 : (uint64_t)(when - now) * 1000;
	return DD_OK;
}

int dd_retry_retryable(const dd_retry_policy *p, dd_err_t err, long status)
{
	const long *set = default_statuses;
	size_t n = sizeof default_statuses / sizeof default_statuses[0];

	if (err == DD_ERR_UPSTREAM || err == DD_ERR_TIMEOUT)
		return !p->no_transport_retry;
	if (err != DD_OK)
		return 0;
	if (p->n_statuses > 0 && p->statuses != NULL) {
		set = p->statuses;
		n = p->n_statuses < DD_RETRY_MAX_STATUSES
			    ? p->n_statuses : DD_RETRY_MAX_STATUSES;
	}
	for (size_t i = 0; i < n; i++) {
		if (set[i] == status)
			return 1;
	}
	return 0;
}

int dd_retry_next(const dd_retry_policy *p, unsigned attempts, dd_err_t err,
		  long status, const char *retry_after, int64_t now,
		  uint64_t rnd, uint64_t *delay_ms)
{
	uint64_t ms;

	if (attempts >= attempts_of(p) || !dd_retry_retryable(p, err, status))
		return 0;
	if (err == DD_OK && (status == 429 || status == 503) &&
	    retry_after != NULL &&
	    dd_retry_after_parse(retry_after, strlen(retry_after), now,
				 &ms) == DD_OK) {
		*delay_ms = ms < max_wait_of(p) ? ms : max_wait_of(p);
		return 1;
	}
	*delay_ms = dd_retry_backoff_ms(p, attempts, rnd);
	return 1;
}
