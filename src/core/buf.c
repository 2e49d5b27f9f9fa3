#include "core/buf.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/alloc.h"

void dd_buf_init(dd_buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

void dd_buf_free(dd_buf *b)
{
	dd_free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

void dd_buf_freezero(dd_buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->alloc);
	dd_buf_free(b);
}

void dd_buf_reset(dd_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

dd_err_t dd_buf_reserve(dd_buf *b, size_t n)
{
	size_t want, next;
	uint8_t *p;

	if (n > b->cap || b->len > b->cap - n)
		return DD_ERR_TOO_LARGE;
	want = b->len + n + 1; /* room for the terminating NUL */
	if (want <= b->alloc)
		return DD_OK;
	next = b->alloc ? b->alloc : 64;
	while (next < want)
		next = next > SIZE_MAX / 2 ? want : next * 2;
	if (next > b->cap + 1)
		next = b->cap + 1;
	p = dd_realloc(b->data, next);
	if (p == NULL)
		return DD_ERR_NOMEM;
	b->data = p;
	b->alloc = next;
	b->data[b->len] = '\0'; /* a fresh allocation must read as text too */
	return DD_OK;
}

dd_err_t dd_buf_append(dd_buf *b, const void *data, size_t n)
{
	dd_err_t rc;

	/* Fast path: fits in the allocation (which never exceeds cap + 1). */
	if (b->alloc > b->len && n < b->alloc - b->len) {
		memcpy(b->data + b->len, data, n);
		b->len += n;
		b->data[b->len] = '\0';
		return DD_OK;
	}
	rc = dd_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return DD_OK;
}

dd_err_t dd_buf_append_str(dd_buf *b, const char *s)
{
	return dd_buf_append(b, s, strlen(s));
}

dd_err_t dd_buf_append_byte(dd_buf *b, uint8_t c)
{
	return dd_buf_append(b, &c, 1);
}

dd_err_t dd_buf_vappendf(dd_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
	int n;
	dd_err_t rc;

	/* Format straight into the spare room; measure only if it overflows. */
	va_copy(ap2, ap);
	n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return DD_ERR_INVALID;
	if ((size_t)n < room) {
		if ((size_t)n > b->cap - b->len) {
			b->data[b->len] = '\0';
			return DD_ERR_TOO_LARGE;
		}
		b->len += (size_t)n;
		return DD_OK;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
	rc = dd_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	if (vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap) != n)
		return DD_ERR_INTERNAL;
	b->len += (size_t)n;
	return DD_OK;
}

dd_err_t dd_buf_appendf(dd_buf *b, const char *fmt, ...)
{
	va_list ap;
	dd_err_t rc;

	va_start(ap, fmt);
	rc = dd_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void dd_buf_consume(dd_buf *b, size_t n)
{
	if (n >= b->len) {
		dd_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *dd_buf_str(const dd_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

dd_err_t dd_buf_steal(dd_buf *b, char **out, size_t *out_len)
{
	if (b->data == NULL) {
		*out = dd_strdup("");
		if (*out == NULL)
			return DD_ERR_NOMEM;
	} else {
		*out = (char *)b->data;
	}
	if (out_len != NULL)
		*out_len = b->len;
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return DD_OK;
}
