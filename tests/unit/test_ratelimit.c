#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/ratelimit.h"

static void burst_then_refill(void **state)
{
	dd_ratelimit rl;
	uint64_t retry = 0;

	(void)state;
	dd_ratelimit_init(&rl, 3, 1000, 5000);
	for (int i = 0; i < 3; i++)
		assert_true(dd_ratelimit_take(&rl, 5000, &retry));
	assert_false(dd_ratelimit_take(&rl, 5000, &retry));
	assert_int_equal(retry, 1000);
	assert_false(dd_ratelimit_take(&rl, 5400, &retry));
	assert_int_equal(retry, 600);
	/* One period buys exactly one token. */
	assert_true(dd_ratelimit_take(&rl, 6000, &retry));
	assert_false(dd_ratelimit_take(&rl, 6999, &retry));
	assert_int_equal(retry, 1);
	/* A long pause refills to the burst, never beyond. */
	for (int i = 0; i < 3; i++)
		assert_true(dd_ratelimit_take(&rl, 100000, NULL));
	assert_false(dd_ratelimit_take(&rl, 100000, NULL));
}

static void partial_periods_are_kept(void **state)
{
	dd_ratelimit rl;

	(void)state;
	dd_ratelimit_init(&rl, 2, 1000, 0);
	assert_true(dd_ratelimit_take(&rl, 0, NULL));
	assert_true(dd_ratelimit_take(&rl, 0, NULL));
	/* 1.5 periods: one token, and the half period counts toward the next. */
	assert_true(dd_ratelimit_take(&rl, 1500, NULL));
	assert_false(dd_ratelimit_take(&rl, 1500, NULL));
	assert_true(dd_ratelimit_take(&rl, 2000, NULL));
}

static void clock_going_backwards(void **state)
{
	dd_ratelimit rl;
	uint64_t retry = 0;

	(void)state;
	dd_ratelimit_init(&rl, 1, 1000, 10000);
	assert_true(dd_ratelimit_take(&rl, 10000, NULL));
	assert_false(dd_ratelimit_take(&rl, 3, &retry));
	assert_int_equal(retry, 1000);
	assert_true(dd_ratelimit_take(&rl, 11000, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_refill),
		cmocka_unit_test(partial_periods_are_kept),
		cmocka_unit_test(clock_going_backwards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
