#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/json.h"

static void parse_reports_where_and_why(void **state)
{
	json_t *v = NULL;
	char why[256];

	(void)state;
	assert_int_equal(dd_json_parse("{\"a\":1}", 7, 100, &v, why, sizeof why), DD_OK);
	assert_true(json_is_object(v));
	json_decref(v);
	assert_int_equal(dd_json_parse("{\"a\":}", 6, 100, &v, why, sizeof why),
			 DD_ERR_INVALID);
	assert_null(v);
	assert_non_null(strstr(why, "line 1 column"));
	assert_int_equal(dd_json_parse("{\"a\":1}", 7, 6, &v, why, sizeof why),
			 DD_ERR_TOO_LARGE);
	/* Duplicate keys hide one value from some readers: refused. */
	assert_int_equal(dd_json_parse("{\"a\":1,\"a\":2}", 13, 100, &v, NULL, 0),
			 DD_ERR_INVALID);
	/* Invalid UTF-8 and trailing garbage are refused. */
	assert_int_equal(dd_json_parse("\"\xff\"", 3, 100, &v, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_json_parse("{} x", 4, 100, &v, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_json_parse("", 0, 100, &v, NULL, 0), DD_ERR_INVALID);
	/* NUL escapes would cut C strings short; integers must be exact. */
	assert_int_equal(dd_json_parse("\"a\\u0000b\"", 10, 100, &v, NULL, 0),
			 DD_ERR_INVALID);
	assert_int_equal(dd_json_parse("18446744073709551616", 20, 100, &v, NULL, 0),
			 DD_ERR_INVALID);
}

static void typed_getters(void **state)
{
	const char *text = "{\"s\":\"x\",\"n\":42,\"neg\":-1,\"b\":true,\"z\":null}";
	json_t *v = NULL;
	const char *s;
	uint64_t n;
	int b;

	(void)state;
	assert_int_equal(dd_json_parse(text, strlen(text), 1000, &v, NULL, 0), DD_OK);
	assert_int_equal(dd_json_get_str(v, "s", &s), DD_OK);
	assert_string_equal(s, "x");
	assert_int_equal(dd_json_get_str(v, "n", &s), DD_ERR_INVALID);
	assert_int_equal(dd_json_get_str(v, "missing", &s), DD_ERR_NOT_FOUND);
	assert_int_equal(dd_json_get_str(v, "z", &s), DD_ERR_NOT_FOUND);
	assert_int_equal(dd_json_get_u64(v, "n", 0, 100, &n), DD_OK);
	assert_true(n == 42);
	assert_int_equal(dd_json_get_u64(v, "n", 0, 41, &n), DD_ERR_INVALID);
	assert_int_equal(dd_json_get_u64(v, "neg", 0, 100, &n), DD_ERR_INVALID);
	assert_int_equal(dd_json_get_u64(v, "s", 0, 100, &n), DD_ERR_INVALID);
	assert_int_equal(dd_json_get_bool(v, "b", &b), DD_OK);
	assert_true(b);
	assert_int_equal(dd_json_get_bool(v, "n", &b), DD_ERR_INVALID);
	json_decref(v);
	/* A non-object never has members. */
	v = json_array();
	assert_int_equal(dd_json_get_str(v, "s", &s), DD_ERR_NOT_FOUND);
	json_decref(v);
}

static void append_is_all_or_nothing(void **state)
{
	dd_buf b;
	json_t *v = json_pack("{s:s}", "key", "a somewhat long value here");

	(void)state;
	dd_buf_init(&b, 16);
	assert_int_equal(dd_buf_append_str(&b, "ab"), DD_OK);
	assert_int_equal(dd_json_append(&b, v), DD_ERR_TOO_LARGE);
	assert_string_equal(dd_buf_str(&b), "ab");
	dd_buf_free(&b);
	dd_buf_init(&b, 1024);
	assert_int_equal(dd_json_append(&b, v), DD_OK);
	assert_string_equal(dd_buf_str(&b), "{\"key\":\"a somewhat long value here\"}");
	dd_buf_free(&b);
	json_decref(v);
}

/*
 * Every cap between nothing and the whole text: either the complete JSON
 * or TOO_LARGE with the buffer untouched; never a dump with a key lost
 * (jansson carries on after a failed key write).
 */
static void no_cap_yields_broken_json(void **state)
{
	json_t *v = json_pack("{s:s, s:i, s:{s:s}}", "a-long-key-name", "v",
			      "another-long-key", 1, "nested-key-name", "x",
			      "yy");
	char *full = json_dumps(v, JSON_COMPACT);
	size_t n = strlen(full);

	(void)state;
	for (size_t cap = 0; cap <= n; cap++) {
		dd_buf b;
		dd_err_t rc;

		dd_buf_init(&b, cap);
		rc = dd_json_append(&b, v);
		if (cap < n) {
			assert_int_equal(rc, DD_ERR_TOO_LARGE);
			assert_int_equal(b.len, 0);
		} else {
			assert_int_equal(rc, DD_OK);
			assert_string_equal(dd_buf_str(&b), full);
		}
		dd_buf_free(&b);
	}
	free(full);
	json_decref(v);
}

static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	const char *text = "{\"a\":[1,2,3,{\"b\":\"c\"}],\"d\":\"eeeeeeeeeeeeeeee\"}";

	dd_json_setup();
	for (unsigned long n = 1; n < 64; n++) {
		json_t *v = NULL;
		dd_buf b;
		dd_err_t rc;

		dd_buf_init(&b, 4096);
		dd_alloc_fail_at(n);
		rc = dd_json_parse(text, strlen(text), 1000, &v, NULL, 0);
		if (rc == DD_OK)
			rc = dd_json_append(&b, v);
		dd_alloc_fail_at(0);
		/* jansson reports some allocation failures as syntax errors. */
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM || rc == DD_ERR_INVALID);
		json_decref(v);
		dd_buf_free(&b);
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_reports_where_and_why),
		cmocka_unit_test(typed_getters),
		cmocka_unit_test(append_is_all_or_nothing),
		cmocka_unit_test(no_cap_yields_broken_json),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
