#include "core/cursor.h"

#include <string.h>

void dd_cur_init(dd_cursor *c, const void *data, size_t len)
{
	c->p = data;
	c->len = data ? len : 0;
	c->off = 0;
}

size_t dd_cur_remaining(const dd_cursor *c)
{
	return c->len - c->off;
}

const uint8_t *dd_cur_ptr(const dd_cursor *c)
{
	return c->p + c->off;
}

/* Overflow-safe: off <= len is an invariant, so len - off cannot wrap. */
static int have(const dd_cursor *c, size_t n)
{
	return n <= c->len - c->off;
}

dd_err_t dd_cur_get_span(dd_cursor *c, size_t n, const uint8_t **out)
{
	if (!have(c, n))
		return DD_ERR_TRUNCATED;
	*out = c->p + c->off;
	c->off += n;
	return DD_OK;
}

dd_err_t dd_cur_get_bytes(dd_cursor *c, void *out, size_t n)
{
	const uint8_t *s;
	dd_err_t rc = dd_cur_get_span(c, n, &s);

	if (rc)
		return rc;
	if (n > 0)
		memcpy(out, s, n);
	return DD_OK;
}

dd_err_t dd_cur_skip(dd_cursor *c, size_t n)
{
	const uint8_t *s;

	return dd_cur_get_span(c, n, &s);
}

dd_err_t dd_cur_sub(dd_cursor *c, size_t n, dd_cursor *sub)
{
	const uint8_t *s;
	dd_err_t rc = dd_cur_get_span(c, n, &s);

	if (rc)
		return rc;
	dd_cur_init(sub, s, n);
	return DD_OK;
}

static dd_err_t get_uint(dd_cursor *c, size_t n, int big, uint64_t *v)
{
	const uint8_t *s;
	uint64_t x = 0;
	dd_err_t rc = dd_cur_get_span(c, n, &s);

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		size_t idx = big ? i : n - 1 - i;
		x = (x << 8) | s[idx];
	}
	*v = x;
	return DD_OK;
}

#define DEFINE_GET(name, type, width, big)                                   \
	dd_err_t name(dd_cursor *c, type *v)                                 \
	{                                                                    \
		uint64_t x;                                                  \
		dd_err_t rc = get_uint(c, width, big, &x);                   \
		if (rc == DD_OK)                                             \
			*v = (type)x;                                        \
		return rc;                                                   \
	}

DEFINE_GET(dd_cur_get_u8, uint8_t, 1, 0)
DEFINE_GET(dd_cur_get_u16le, uint16_t, 2, 0)
DEFINE_GET(dd_cur_get_u32le, uint32_t, 4, 0)
DEFINE_GET(dd_cur_get_u64le, uint64_t, 8, 0)
DEFINE_GET(dd_cur_get_u16be, uint16_t, 2, 1)
DEFINE_GET(dd_cur_get_u32be, uint32_t, 4, 1)
DEFINE_GET(dd_cur_get_u64be, uint64_t, 8, 1)
