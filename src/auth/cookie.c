#include "auth/cookie.h"

#include <string.h>

#include "core/cursor.h"
#include "core/strutil.h"

/* "=", "; Path=/", "; Domain=", "; Max-Age=" + 20 digits, the rest. */
#define ATTRS_MAX 80

/* Bytes before the next ch (or to the end), without consuming them. */
static size_t span_to(const dd_cursor *c, char ch)
{
	const uint8_t *p = dd_cur_ptr(c);
	const uint8_t *hit = memchr(p, ch, dd_cur_remaining(c));

	return hit != NULL ? (size_t)(hit - p) : dd_cur_remaining(c);
}

dd_err_t dd_cookie_get(const char *header, const char *name,
		       const char **value, size_t *len)
{
	size_t nlen;
	dd_cursor c;

	*value = NULL;
	*len = 0;
	if (header == NULL || name == NULL || name[0] == '\0')
		return DD_ERR_NOT_FOUND;
	nlen = strlen(name);
	dd_cur_init(&c, header, strlen(header));
	while (dd_cur_remaining(&c) > 0) {
		const uint8_t *pair;
		const char *s;
		size_t n = span_to(&c, ';'), klen;
		dd_cursor pc;

		(void)dd_cur_get_span(&c, n, &pair);
		(void)dd_cur_skip(&c, 1);   /* the ';', if any */
		s = (const char *)pair;
		dd_str_trim(&s, &n);
		dd_cur_init(&pc, s, n);
		klen = span_to(&pc, '=');
		if (klen == n || klen != nlen || memcmp(s, name, nlen) != 0)
			continue;
		(void)dd_cur_skip(&pc, klen + 1);
		*value = (const char *)dd_cur_ptr(&pc);
		*len = dd_cur_remaining(&pc);
		return DD_OK;
	}
	return DD_ERR_NOT_FOUND;
}

static int is_tchar(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* RFC 6265 section 4.1.1: no controls, space, '"', ',', ';' or '\'. */
static int is_cookie_octet(unsigned char ch)
{
	return ch >= 0x21 && ch <= 0x7e && ch != '"' && ch != ',' &&
	       ch != ';' && ch != '\\';
}

static int host_ok(const char *d)
{
	size_t n = strlen(d);

	/* A leading dot is obsolete and a trailing one a different host. */
	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
			return 0;
	}
	return 1;
}

dd_err_t dd_cookie_format(const char *name, const char *value,
			  const char *domain, int64_t max_age, int secure,
			  dd_buf *out)
{
	dd_buf tmp;
	size_t need;
	dd_err_t rc;

	if (name == NULL || name[0] == '\0' || value == NULL || max_age < 0)
		return DD_ERR_INVALID;
	for (const char *p = name; *p != '\0'; p++)
		if (!is_tchar(*p))
			return DD_ERR_INVALID;
	for (const char *p = value; *p != '\0'; p++)
		if (!is_cookie_octet((unsigned char)*p))
			return DD_ERR_INVALID;
	if (domain != NULL && !host_ok(domain))
		return DD_ERR_INVALID;
	/*
	 * Built aside so that out is never left half-written, in one
	 * allocation so that no stray copy of the value is left behind.
	 */
	dd_buf_init(&tmp, out->cap);
	need = strlen(name) + strlen(value) + ATTRS_MAX +
	       (domain != NULL ? strlen(domain) : 0);
	rc = dd_buf_reserve(&tmp, need < tmp.cap ? need : tmp.cap);
	if (rc)
		goto out;
	rc = dd_buf_appendf(&tmp, "%s=%s; Path=/", name, value);
	if (rc)
		goto out;
	if (domain != NULL) {
		rc = dd_buf_appendf(&tmp, "; Domain=%s", domain);
		if (rc)
			goto out;
	}
	rc = dd_buf_appendf(&tmp, "; Max-Age=%lld%s; SameSite=Lax; HttpOnly",
			    (long long)max_age, secure ? "; Secure" : "");
	if (rc)
		goto out;
	rc = dd_buf_append(out, tmp.data, tmp.len);
out:
	/* The value is usually a session token. */
	dd_buf_freezero(&tmp);
	return rc;
}
