#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"

static void append_and_read_back(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 1024);
	assert_string_equal(dd_buf_str(&b), "");
	assert_int_equal(dd_buf_append_str(&b, "hello"), DD_OK);
	assert_int_equal(dd_buf_appendf(&b, " %d-%s", 42, "x"), DD_OK);
	assert_int_equal(dd_buf_append_byte(&b, '!'), DD_OK);
	assert_string_equal(dd_buf_str(&b), "hello 42-x!");
	assert_int_equal(b.len, 11);
	dd_buf_free(&b);
	assert_null(b.data);
}

static void cap_is_a_distinct_error_and_leaves_contents(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 8);
	assert_int_equal(dd_buf_append(&b, "12345678", 8), DD_OK);
	assert_int_equal(dd_buf_append(&b, "9", 1), DD_ERR_TOO_LARGE);
	assert_int_equal(dd_buf_appendf(&b, "%s", "x"), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, "12345678", 8);
	/* A huge request must not overflow the size arithmetic. */
	assert_int_equal(dd_buf_reserve(&b, SIZE_MAX), DD_ERR_TOO_LARGE);
	assert_int_equal(dd_buf_reserve(&b, SIZE_MAX - 4), DD_ERR_TOO_LARGE);
	dd_buf_free(&b);
}

static void reserve_alone_still_reads_as_empty_text(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_buf_reserve(&b, 10), DD_OK);
	assert_non_null(b.data);
	assert_string_equal(dd_buf_str(&b), "");
	dd_buf_free(&b);
}

static void consume_and_reset(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_buf_append_str(&b, "abcdef"), DD_OK);
	dd_buf_consume(&b, 2);
	assert_string_equal(dd_buf_str(&b), "cdef");
	dd_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(dd_buf_str(&b), "");
	assert_int_equal(dd_buf_append_str(&b, "x"), DD_OK);
	dd_buf_reset(&b);
	assert_string_equal(dd_buf_str(&b), "");
	dd_buf_free(&b);
}

static void steal_transfers_ownership(void **state)
{
	dd_buf b;
	char *s = NULL;
	size_t n = 99;

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_buf_steal(&b, &s, &n), DD_OK);
	assert_string_equal(s, "");
	assert_int_equal(n, 0);
	dd_free(s);
	assert_int_equal(dd_buf_append_str(&b, "token"), DD_OK);
	assert_int_equal(dd_buf_steal(&b, &s, &n), DD_OK);
	assert_string_equal(s, "token");
	assert_int_equal(n, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	dd_free(s);
	dd_buf_freezero(&b);
}

static void grows_across_many_appends(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 100000);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(dd_buf_append(&b, "0123456789", 10), DD_OK);
	assert_int_equal(b.len, 100000);
	assert_int_equal(dd_buf_append(&b, "x", 1), DD_ERR_TOO_LARGE);
	assert_true(b.alloc <= 100001);
	dd_buf_free(&b);
}

/* R17: every allocation failure is a clean error with nothing leaked. */
static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	for (unsigned long n = 1; n < 64; n++) {
		dd_buf b;
		dd_err_t rc = DD_OK;

		dd_buf_init(&b, 1 << 20);
		dd_alloc_fail_at(n);
		for (int i = 0; i < 100 && rc == DD_OK; i++)
			rc = dd_buf_appendf(&b, "%0100d", i);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		dd_buf_free(&b);
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(append_and_read_back),
		cmocka_unit_test(cap_is_a_distinct_error_and_leaves_contents),
		cmocka_unit_test(reserve_alone_still_reads_as_empty_text),
		cmocka_unit_test(consume_and_reset),
		cmocka_unit_test(steal_transfers_ownership),
		cmocka_unit_test(grows_across_many_appends),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
