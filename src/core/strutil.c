#include "core/strutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

dd_err_t dd_parse_u64n(const char *s, size_t n, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	char tmp[24];
	char *end = NULL;
	unsigned long long v;

	if (n == 0 || n > 20)
		return n == 0 ? DD_ERR_INVALID : DD_ERR_RANGE;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DD_ERR_INVALID;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtoull(tmp, &end, 10);
	if (errno == ERANGE)
		return DD_ERR_RANGE;
	if (errno != 0 || end != tmp + n)
		return DD_ERR_INVALID;
	if (v < min || v > max)
		return DD_ERR_RANGE;
	*out = (uint64_t)v;
	return DD_OK;
}

dd_err_t dd_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return dd_parse_u64n(s, strlen(s), min, max, out);
}

void dd_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int dd_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

dd_err_t dd_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n)
{
	if (in_len != 2 * n)
		return DD_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		int hi = dd_hex_digit(in[2 * i]), lo = dd_hex_digit(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return DD_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return DD_OK;
}

dd_err_t dd_pct_decode(const char *s, size_t n, int form, char *out,
		       size_t *out_len)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' && form) {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (n - i < 3)
				return DD_ERR_INVALID;
			hi = dd_hex_digit(s[i + 1]);
			lo = dd_hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return DD_ERR_INVALID;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		out[w++] = c;
	}
	*out_len = w;
	return DD_OK;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

dd_err_t dd_pct_encode(const char *s, size_t n, dd_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t before = out->len;
	dd_err_t rc = DD_OK;

	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (unreserved(c))
			rc = dd_buf_append_byte(out, c);
		else
			rc = dd_buf_append(out, esc, 3);
	}
	if (rc) {
		out->len = before;
		if (out->data != NULL)
			out->data[before] = '\0';
	}
	return rc;
}

dd_err_t dd_form_field(const char *body, size_t len, const char *name,
		       char *out, size_t cap)
{
	size_t nlen = strlen(name), i = 0;

	while (i < len) {
		const char *pair = body + i;
		const char *amp = memchr(pair, '&', len - i);
		size_t plen = amp ? (size_t)(amp - pair) : len - i;
		size_t vlen;
		dd_err_t rc;

		i += plen + 1;
		if (plen <= nlen || pair[nlen] != '=' ||
		    memcmp(pair, name, nlen) != 0)
			continue;
		vlen = plen - nlen - 1;
		if (vlen >= cap)
			return DD_ERR_TOO_LARGE;
		rc = dd_pct_decode(pair + nlen + 1, vlen, 1, out, &vlen);
		if (rc)
			return rc;
		out[vlen] = '\0';
		return DD_OK;
	}
	return DD_ERR_NOT_FOUND;
}

dd_err_t dd_random_bytes(void *out, size_t n)
{
	uint8_t *p = out;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return DD_ERR_IO;
		}
		p += got;
		n -= (size_t)got;
	}
	return DD_OK;
}

int dd_uuid_ok(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return 0;
	for (size_t i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

dd_err_t dd_random_hex(char *out, size_t nbytes)
{
	uint8_t tmp[64];
	dd_err_t rc;

	if (nbytes > sizeof tmp)
		return DD_ERR_RANGE;
	rc = dd_random_bytes(tmp, nbytes);
	if (rc)
		return rc;
	dd_hex_encode(tmp, nbytes, out);
	return DD_OK;
}

int dd_str_ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

void dd_str_trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

uint64_t dd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t dd_now_ms(void)
{
	return dd_now_us() / 1000u;
}

const char *dd_strerrno(int e)
{
#ifdef __GLIBC__
	/* glibc's strerror writes unknown codes into a static buffer. */
	const char *s = strerrordesc_np(e);
#else
	/* musl's strerror returns entries of a constant table. */
	const char *s = strerror(e);
#endif
	return s != NULL ? s : "unknown error";
}
