/*
 * cursor.h: a consuming, bounds-checked reader over untrusted bytes (R6).
 *
 * Every getter checks the remaining length first, advances only on
 * success, and leaves the cursor untouched on failure (DD_ERR_TRUNCATED).
 * Parsers of outside input (TDX quotes, Noise messages, WebSocket frames)
 * never do raw pointer arithmetic; they go through this.
 */
#ifndef DD_CORE_CURSOR_H
#define DD_CORE_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct dd_cursor {
	const uint8_t *p;
	size_t len;
	size_t off;
} dd_cursor;

void dd_cur_init(dd_cursor *c, const void *data, size_t len);
size_t dd_cur_remaining(const dd_cursor *c);
/* Current position; the pointer is valid for dd_cur_remaining() bytes. */
const uint8_t *dd_cur_ptr(const dd_cursor *c);

dd_err_t dd_cur_get_u8(dd_cursor *c, uint8_t *v);
dd_err_t dd_cur_get_u16le(dd_cursor *c, uint16_t *v);
dd_err_t dd_cur_get_u32le(dd_cursor *c, uint32_t *v);
dd_err_t dd_cur_get_u64le(dd_cursor *c, uint64_t *v);
dd_err_t dd_cur_get_u16be(dd_cursor *c, uint16_t *v);
dd_err_t dd_cur_get_u32be(dd_cursor *c, uint32_t *v);
dd_err_t dd_cur_get_u64be(dd_cursor *c, uint64_t *v);
/* Copies n bytes into out. */
dd_err_t dd_cur_get_bytes(dd_cursor *c, void *out, size_t n);
/* Points *out at the next n bytes (no copy) and advances past them. */
dd_err_t dd_cur_get_span(dd_cursor *c, size_t n, const uint8_t **out);
/* Splits off the next n bytes as a cursor of its own and skips them. */
dd_err_t dd_cur_sub(dd_cursor *c, size_t n, dd_cursor *sub);
dd_err_t dd_cur_skip(dd_cursor *c, size_t n);

#endif
