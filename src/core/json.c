#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/*
 * jansson 2.14 can lose characters instead of failing when an allocation
 * fails while it grows a string, so a parse that "succeeds" after any
 * failed allocation cannot be trusted. Allocation failures are counted per
 * thread and such a parse is reported as NOMEM.
 */
static _Thread_local unsigned long alloc_failures;

/*
 * It can also overrun its buffer when the allocation that fails is the
 * one closing a string of 14, 30, 62, ... bytes. After a failure counted
 * here, the allocation is retried with the system allocator: under the
 * torture hook that succeeds, so the parse runs on safely and is then
 * reported as NOMEM; under real exhaustion it fails too, which is
 * jansson's behaviour and beyond what we can fix from outside.
 */
static void *json_alloc(size_t n)
{
	void *p = dd_malloc(n);

	if (p == NULL) {
		alloc_failures++;
		p = malloc(n);
	}
	return p;
}

dd_err_t dd_json_parse(const void *data, size_t len, size_t max,
		       json_t **out, char *why, size_t why_len)
{
	json_error_t jerr;
	json_t *v;
	unsigned long failures_before = alloc_failures;

	*out = NULL;
	if (len > max) {
		if (why != NULL)
			snprintf(why, why_len, "body larger than %zu bytes", max);
		return DD_ERR_TOO_LARGE;
	}
	v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (alloc_failures != failures_before) {
		json_decref(v);
		if (why != NULL)
			snprintf(why, why_len, "out of memory while parsing JSON");
		return DD_ERR_NOMEM;
	}
	if (v == NULL) {
		if (why != NULL)
			snprintf(why, why_len, "invalid JSON at line %d column %d: %s",
				 jerr.line, jerr.column, jerr.text);
		return json_error_code(&jerr) == json_error_out_of_memory
			       ? DD_ERR_NOMEM : DD_ERR_INVALID;
	}
	*out = v;
	return DD_OK;
}

static const json_t *member(const json_t *obj, const char *key)
{
	const json_t *v;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, key);
	return json_is_null(v) ? NULL : v;
}

dd_err_t dd_json_get_str(const json_t *obj, const char *key, const char **out)
{
	const json_t *v = member(obj, key);

	if (v == NULL)
		return DD_ERR_NOT_FOUND;
	if (!json_is_string(v))
		return DD_ERR_INVALID;
	/* Embedded NULs would truncate silently in C string handling. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return DD_ERR_INVALID;
	*out = json_string_value(v);
	return DD_OK;
}

dd_err_t dd_json_get_u64(const json_t *obj, const char *key, uint64_t min,
			 uint64_t max, uint64_t *out)
{
	const json_t *v = member(obj, key);
	json_int_t i;

	if (v == NULL)
		return DD_ERR_NOT_FOUND;
	if (!json_is_integer(v))
		return DD_ERR_INVALID;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return DD_ERR_INVALID;
	*out = (uint64_t)i;
	return DD_OK;
}

dd_err_t dd_json_get_bool(const json_t *obj, const char *key, int *out)
{
	const json_t *v = member(obj, key);

	if (v == NULL)
		return DD_ERR_NOT_FOUND;
	if (!json_is_boolean(v))
		return DD_ERR_INVALID;
	*out = json_is_true(v);
	return DD_OK;
}

struct dump {
	dd_buf *b;
	dd_err_t rc;
};

/*
 * jansson 2.14 ignores a failed callback while writing an object key and
 * goes on: later, smaller chunks may still fit. So the first failure is
 * sticky (everything after it is refused too) and decides the result
 * even when jansson reports success.
 */
static int dump_cb(const char *chunk, size_t size, void *ud)
{
	struct dump *d = ud;

	if (d->rc != DD_OK)
		return -1;
	d->rc = dd_buf_append(d->b, chunk, size);
	return d->rc == DD_OK ? 0 : -1;
}

dd_err_t dd_json_append(dd_buf *b, const json_t *v)
{
	struct dump d = {b, DD_OK};
	size_t before = b->len;

	if (json_dump_callback(v, dump_cb, &d,
			       JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) != 0 ||
	    d.rc != DD_OK) {
		/* Leave the buffer as it was, not half-written. */
		b->len = before;
		if (b->data != NULL)
			b->data[before] = '\0';
		/* jansson itself fails only on allocation or bad UTF-8 keys. */
		return d.rc != DD_OK ? d.rc : DD_ERR_NOMEM;
	}
	return DD_OK;
}

void dd_json_setup(void)
{
	json_set_alloc_funcs(json_alloc, dd_free);
}
