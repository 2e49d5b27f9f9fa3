/*
 * core/alloc: dd_grow, the one way arrays in the project grow (doubling,
 * overflow refused, the old array kept on failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"

static void grows_by_doubling_and_keeps_contents(void **state)
{
	size_t cap = 0;
	int *v = NULL, *g;

	(void)state;
	for (int i = 0; i < 100; i++) {
		g = dd_grow(v, &cap, (size_t)i + 1, sizeof *v, 4);
		assert_non_null(g);
		v = g;
		v[i] = i;
		assert_true(cap >= (size_t)i + 1);
	}
	assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
	for (int i = 0; i < 100; i++)
		assert_int_equal(v[i], i);
	/* Room already there: the same array, cap unchanged. */
	assert_ptr_equal(dd_grow(v, &cap, 50, sizeof *v, 4), v);
	assert_int_equal(cap, 128);
	dd_free(v);
}

static void first_zero_still_grows(void **state)
{
	size_t cap = 0;
	char *v;

	(void)state;
	v = dd_grow(NULL, &cap, 3, 1, 0);
	assert_non_null(v);
	assert_int_equal(cap, 4);
	dd_free(v);
}

static void overflow_is_refused_and_leaves_the_array(void **state)
{
	size_t cap = 8;
	char *v = dd_malloc(8), *g;

	(void)state;
	assert_non_null(v);
	memset(v, 'x', 8);
	g = dd_grow(v, &cap, SIZE_MAX, 1, 8);
	assert_null(g);
	assert_int_equal(cap, 8);
	g = dd_grow(v, &cap, SIZE_MAX / 4 + 1, 8, 8);
	assert_null(g);
	assert_int_equal(cap, 8);
	assert_int_equal(v[7], 'x');
	dd_free(v);
}

static void allocation_failure_leaves_the_array(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	size_t cap = 2;
	int *v = dd_malloc(2 * sizeof *v);

	assert_non_null(v);
	v[1] = 7;
	dd_alloc_fail_at(1);
	assert_null(dd_grow(v, &cap, 3, sizeof *v, 2));
	dd_alloc_fail_at(0);
	assert_int_equal(cap, 2);
	assert_int_equal(v[1], 7);
	dd_free(v);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_by_doubling_and_keeps_contents),
		cmocka_unit_test(first_zero_still_grows),
		cmocka_unit_test(overflow_is_refused_and_leaves_the_array),
		cmocka_unit_test(allocation_failure_leaves_the_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
