/*
 * buf.h: a growable byte buffer with a hard cap fixed at creation (R5).
 *
 * Appending past the cap fails with DD_ERR_TOO_LARGE and leaves the buffer
 * unchanged, so callers can map "too big" to 413 / close distinctly from
 * running out of memory. The storage is kept NUL-terminated (not counted
 * in len) so text can be handed to C string functions.
 *
 * The struct is public because buffers live embedded in other structs;
 * treat the fields as read-only outside buf.c.
 */
#ifndef DD_CORE_BUF_H
#define DD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct dd_buf {
	uint8_t *data; /* NULL until the first append */
	size_t len;
	size_t alloc;
	size_t cap;    /* maximum len; fixed at init */
} dd_buf;

/* No allocation happens until data is appended. cap must be > 0. */
void dd_buf_init(dd_buf *b, size_t cap);
/* Frees the storage; the buffer may be reused after dd_buf_init(). */
void dd_buf_free(dd_buf *b);
/* Like dd_buf_free, but wipes the bytes first (secrets). */
void dd_buf_freezero(dd_buf *b);
/* Keeps the allocation, drops the contents. */
void dd_buf_reset(dd_buf *b);

dd_err_t dd_buf_append(dd_buf *b, const void *data, size_t n);
dd_err_t dd_buf_append_str(dd_buf *b, const char *s);
dd_err_t dd_buf_append_byte(dd_buf *b, uint8_t c);
/* printf-style append; a format that would pass the cap is TOO_LARGE. */
dd_err_t dd_buf_appendf(dd_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
dd_err_t dd_buf_vappendf(dd_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len), moving the rest to the front. */
void dd_buf_consume(dd_buf *b, size_t n);
/* Makes room for n more bytes without changing len; TOO_LARGE past cap. */
dd_err_t dd_buf_reserve(dd_buf *b, size_t n);

/* Text view of the contents: never NULL, always NUL-terminated. */
const char *dd_buf_str(const dd_buf *b);

/*
 * Takes the storage out of the buffer: *out gets a NUL-terminated copy
 * owned by the caller (free with dd_free()), *out_len its length. The
 * buffer is left empty. Works on an empty buffer too (returns "").
 */
dd_err_t dd_buf_steal(dd_buf *b, char **out, size_t *out_len);

#endif
