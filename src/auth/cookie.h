/*
 * cookie.h: reading one cookie out of a Cookie header and writing
 * Set-Cookie values, for the browser session (session.h).
 *
 * Pure string work: no allocation except appending to the caller's
 * buffer, no clock, no I/O.
 */
#ifndef DD_AUTH_COOKIE_H
#define DD_AUTH_COOKIE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/*
 * The value of cookie `name` in one Cookie header value: pairs split on
 * ';', each trimmed, split at its first '=', exact (case-sensitive) name
 * match, first match wins; a pair without '=' matches nothing. Pass the
 * first Cookie header only. The value is returned as sent: surrounding
 * double quotes are kept (our tokens never hold them, so a quoted token
 * fails verification rather than being silently unwrapped). *value
 * points into header (not NUL-terminated; *len bytes, possibly 0).
 * NOT_FOUND when absent; header may be NULL.
 */
dd_err_t dd_cookie_get(const char *header, const char *name,
		       const char **value, size_t *len);

/*
 * Appends a Set-Cookie value:
 *   name=value; Path=/; [Domain=domain; ]Max-Age=max_age; [Secure; ]
 *   SameSite=Lax; HttpOnly
 * domain NULL: host only. secure is off only for plain-http development.
 * max_age 0 deletes the cookie (value may then be ""). INVALID when name
 * is not an HTTP token, value holds characters outside RFC 6265's
 * cookie-octet, domain is empty or not a bare host name, or max_age is
 * negative; out is then unchanged. TOO_LARGE past out's cap.
 */
dd_err_t dd_cookie_format(const char *name, const char *value,
			  const char *domain, int64_t max_age, int secure,
			  dd_buf *out);

#endif
