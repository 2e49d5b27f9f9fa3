/*
 * test_replay.c: the jti replay set (src/auth/replay.c): first use and
 * replay, expiry at the exact second, BUSY when full without evicting,
 * ids as bytes, many ids at once (chaining must stay short: a quadratic
 * set would not finish within the test's timeout), and allocation failure
 * at every step leaving the set as it was. Time is always passed in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/replay.h"
#include "core/alloc.h"

#define T0 1750000000

static dd_err_t use(dd_replay *r, const char *id, int64_t until, int64_t now)
{
	return dd_replay_use(r, id, strlen(id), until, now);
}

static void test_first_use_then_replay(void **state)
{
	dd_replay *r = NULL;

	(void)state;
	assert_int_equal(dd_replay_new(8, &r), DD_OK);
	assert_int_equal(dd_replay_count(r), 0);
	assert_int_equal(use(r, "jti-1", T0 + 60, T0), DD_OK);
	assert_int_equal(use(r, "jti-1", T0 + 60, T0), DD_ERR_EXISTS);
	/* A later expiry does not make the same id new. */
	assert_int_equal(use(r, "jti-1", T0 + 9999, T0 + 1), DD_ERR_EXISTS);
	assert_int_equal(use(r, "jti-2", T0 + 60, T0), DD_OK);
	/* Prefixes, case and length all count. */
	assert_int_equal(use(r, "jti-", T0 + 60, T0), DD_OK);
	assert_int_equal(use(r, "JTI-1", T0 + 60, T0), DD_OK);
	assert_int_equal(use(r, "jti-1 ", T0 + 60, T0), DD_OK);
	/* Bytes, not strings. */
	assert_int_equal(dd_replay_use(r, "a\0b", 3, T0 + 60, T0), DD_OK);
	assert_int_equal(dd_replay_use(r, "a\0c", 3, T0 + 60, T0), DD_OK);
	assert_int_equal(dd_replay_use(r, "a\0b", 3, T0 + 60, T0),
			 DD_ERR_EXISTS);
	assert_int_equal(dd_replay_count(r), 7);
	dd_replay_free(r);
	dd_replay_free(NULL);
}

static void test_ids_and_capacity_limits(void **state)
{
	char id[DD_REPLAY_MAX_ID + 2];
	dd_replay *r = (dd_replay *)id;

	(void)state;
	assert_int_equal(dd_replay_new(0, &r), DD_ERR_INVALID);
	assert_null(r);
	assert_int_equal(dd_replay_new(((size_t)1 << 26) + 1, &r),
			 DD_ERR_INVALID);
	/* A huge capacity costs nothing until ids arrive. */
	assert_int_equal(dd_replay_new((size_t)1 << 26, &r), DD_OK);
	dd_replay_free(r);
	assert_int_equal(dd_replay_new(4, &r), DD_OK);
	assert_int_equal(dd_replay_use(r, "", 0, T0 + 60, T0), DD_ERR_INVALID);
	memset(id, 'j', sizeof id);
	assert_int_equal(dd_replay_use(r, id, DD_REPLAY_MAX_ID + 1, T0 + 60,
				       T0), DD_ERR_INVALID);
	assert_int_equal(dd_replay_use(r, id, DD_REPLAY_MAX_ID, T0 + 60, T0),
			 DD_OK);
	assert_int_equal(dd_replay_use(r, id, DD_REPLAY_MAX_ID, T0 + 60, T0),
			 DD_ERR_EXISTS);
	assert_int_equal(dd_replay_count(r), 1);
	dd_replay_free(r);
}

static void test_expiry(void **state)
{
	dd_replay *r = NULL;

	(void)state;
	assert_int_equal(dd_replay_new(8, &r), DD_OK);
	assert_int_equal(use(r, "a", T0 + 100, T0), DD_OK);
	assert_int_equal(use(r, "b", T0 + 50, T0), DD_OK);
	assert_int_equal(use(r, "c", T0 + 200, T0), DD_OK);
	/* Held through the second before expires_at, gone at it. */
	assert_int_equal(use(r, "b", T0 + 50, T0 + 49), DD_ERR_EXISTS);
	assert_int_equal(use(r, "b", T0 + 500, T0 + 50), DD_OK);
	assert_int_equal(use(r, "a", T0 + 100, T0 + 99), DD_ERR_EXISTS);
	assert_int_equal(dd_replay_count(r), 3);
	/* Dropped as a side effect of the next use, earliest first. */
	assert_int_equal(use(r, "x", T0 + 1000, T0 + 150), DD_OK);
	assert_int_equal(dd_replay_count(r), 3);
	assert_int_equal(use(r, "a", T0 + 1000, T0 + 150), DD_OK);
	assert_int_equal(use(r, "c", T0 + 1000, T0 + 150), DD_ERR_EXISTS);
	/* Already expired: nothing to remember. */
	assert_int_equal(use(r, "old", T0, T0 + 150), DD_OK);
	assert_int_equal(use(r, "old", T0 + 150, T0 + 150), DD_OK);
	/* Everything has expired by then; "c" is new again. */
	assert_int_equal(use(r, "c", T0 + 20000, T0 + 10000), DD_OK);
	assert_int_equal(dd_replay_count(r), 1);
	dd_replay_free(r);
}

static void test_full_is_busy(void **state)
{
	dd_replay *r = NULL;

	(void)state;
	assert_int_equal(dd_replay_new(3, &r), DD_OK);
	assert_int_equal(use(r, "a", T0 + 10, T0), DD_OK);
	assert_int_equal(use(r, "b", T0 + 30, T0), DD_OK);
	assert_int_equal(use(r, "c", T0 + 20, T0), DD_OK);
	assert_int_equal(use(r, "d", T0 + 60, T0), DD_ERR_BUSY);
	/* Refusing the newcomer kept every old id: no eviction. */
	assert_int_equal(use(r, "a", T0 + 10, T0 + 1), DD_ERR_EXISTS);
	assert_int_equal(use(r, "b", T0 + 30, T0 + 1), DD_ERR_EXISTS);
	assert_int_equal(use(r, "c", T0 + 20, T0 + 1), DD_ERR_EXISTS);
	/* A replay is still a replay when full. */
	assert_int_equal(dd_replay_count(r), 3);
	/* Only expiry makes room: "a" goes at T0 + 10. */
	assert_int_equal(use(r, "d", T0 + 60, T0 + 9), DD_ERR_BUSY);
	assert_int_equal(use(r, "d", T0 + 60, T0 + 10), DD_OK);
	assert_int_equal(use(r, "e", T0 + 60, T0 + 10), DD_ERR_BUSY);
	assert_int_equal(use(r, "e", T0 + 60, T0 + 20), DD_OK);
	/* "c" expired, so it is a newcomer like any other. */
	assert_int_equal(use(r, "c", T0 + 60, T0 + 20), DD_ERR_BUSY);
	assert_int_equal(dd_replay_count(r), 3);
	dd_replay_free(r);
}

/*
 * Many similar ids (the shapes a naive hash maps together: same length,
 * one differing byte, long shared prefixes), with expiries out of order
 * so the heap is exercised, then all of them again as replays.
 */
static void test_many_ids(void **state)
{
	enum { N = 100000 };
	char id[DD_REPLAY_MAX_ID + 1];
	dd_replay *r = NULL;
	int n;

	(void)state;
	memset(id, 'p', sizeof id);
	assert_int_equal(dd_replay_new(N, &r), DD_OK);
	for (int i = 0; i < N; i++) {
		n = snprintf(id + 200, 40, "%08d", i);
		assert_int_equal(dd_replay_use(r, id, 200 + (size_t)n,
					       T0 + 1 + (i * 7919) % N, T0),
				 DD_OK);
	}
	assert_int_equal(dd_replay_count(r), N);
	assert_int_equal(dd_replay_use(r, "new", 3, T0 + 5, T0), DD_ERR_BUSY);
	for (int i = 0; i < N; i++) {
		n = snprintf(id + 200, 40, "%08d", i);
		assert_int_equal(dd_replay_use(r, id, 200 + (size_t)n,
					       T0 + 1, T0), DD_ERR_EXISTS);
	}
	/* Half of them have expired by T0 + N / 2 + 1. */
	assert_int_equal(dd_replay_use(r, "new", 3, T0 + 2 * N, T0 + N / 2 + 1),
			 DD_OK);
	assert_int_equal(dd_replay_count(r), N - N / 2 - 1 + 1);
	for (int i = 0; i < N; i++) {
		int64_t until = T0 + 1 + (i * 7919) % N;
		dd_err_t want = until <= T0 + N / 2 + 1 ? DD_OK : DD_ERR_EXISTS;

		n = snprintf(id + 200, 40, "%08d", i);
		if (want == DD_OK)
			continue;
		assert_int_equal(dd_replay_use(r, id, 200 + (size_t)n,
					       T0 + 1, T0 + N / 2 + 1), want);
	}
	dd_replay_free(r);
}

/*
 * R17: every allocation fails in turn, from creation through the growth
 * of both structures; a failed use records nothing, so retrying works.
 */
static void test_torture(void **state)
{
	unsigned long n, used;
	dd_replay *r;
	dd_err_t rc;
	char id[16];
	int done;

	(void)state;
	for (n = 1;; n++) {
		r = NULL;
		done = 0;
		dd_alloc_fail_at(n);
		rc = dd_replay_new(100, &r);
		for (int i = 0; rc == DD_OK && i < 80; i++) {
			snprintf(id, sizeof id, "id-%d", i);
			rc = use(r, id, T0 + 10 + i % 7, T0);
			if (rc == DD_OK)
				done++;
		}
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (r != NULL) {
			assert_int_equal(dd_replay_count(r), done);
			if (rc == DD_ERR_NOMEM) {
				snprintf(id, sizeof id, "id-%d", done);
				assert_int_equal(use(r, id, T0 + 10, T0),
						 DD_OK);
				assert_int_equal(use(r, id, T0 + 10, T0),
						 DD_ERR_EXISTS);
			}
		}
		dd_replay_free(r);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
	assert_int_equal(done, 80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_then_replay),
		cmocka_unit_test(test_ids_and_capacity_limits),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_full_is_busy),
		cmocka_unit_test(test_many_ids),
		cmocka_unit_test(test_torture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
