/*
 * json.h: strict helpers on jansson for hostile JSON.
 *
 * Parsing is size-capped and rejects duplicate keys and NUL escapes; the
 * error detail (line, column, text) is written into a caller buffer so the
 * HTTP layer can put it in a 400 body. Getters check types and say which
 * field was wrong.
 */
#ifndef DD_CORE_JSON_H
#define DD_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

/*
 * Parses one JSON value from data[0..len). TOO_LARGE if len > max,
 * INVALID on bad JSON with a human-readable reason in why (may be NULL).
 * *out is a new reference: caller releases it with json_decref().
 */
dd_err_t dd_json_parse(const void *data, size_t len, size_t max,
		       json_t **out, char *why, size_t why_len);

/*
 * Typed member lookups. NOT_FOUND if absent (or null), INVALID if of the
 * wrong type or (for integers) out of [min,max]. Borrowed pointers: the
 * string lives as long as obj.
 */
dd_err_t dd_json_get_str(const json_t *obj, const char *key, const char **out);
dd_err_t dd_json_get_u64(const json_t *obj, const char *key, uint64_t min,
			 uint64_t max, uint64_t *out);
dd_err_t dd_json_get_bool(const json_t *obj, const char *key, int *out);

/* Appends the compact serialisation of v to b (TOO_LARGE at the cap). */
dd_err_t dd_json_append(dd_buf *b, const json_t *v);

/* Installs dd_malloc/dd_free as jansson's allocator (torture-testable). */
void dd_json_setup(void);

#endif
