/*
 * test_runtime_logring.c: a deployment's bounded log: line splitting
 * across chunks and streams, long lines, ageing out by bytes, and
 * allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "runtime/logring.h"

static void put(dd_rt_log *l, int stream, const char *s)
{
	assert_int_equal(dd_rt_log_write(l, stream, (const uint8_t *)s,
					 strlen(s)), DD_OK);
}

static void expect_line(const dd_rt_log *l, size_t i, const char *want,
			int want_stream)
{
	const uint8_t *data;
	size_t len;
	int stream;

	assert_true(i < dd_rt_log_count(l));
	dd_rt_log_get(l, i, &data, &len, &stream);
	if (len != strlen(want) || memcmp(data, want, len) != 0)
		fail_msg("line %zu: \"%.*s\", want \"%s\"", i, (int)len, data,
			 want);
	assert_int_equal(stream, want_stream);
}

/* Bytes the kept lines cost: never above the cap. */
static size_t cost(const dd_rt_log *l)
{
	const uint8_t *data;
	size_t len, total = 0;

	for (size_t i = 0; i < dd_rt_log_count(l); i++) {
		dd_rt_log_get(l, i, &data, &len, NULL);
		total += len + DD_RT_LOG_LINE_COST;
	}
	return total;
}

static void lines_and_streams(void **state)
{
	dd_rt_log *l = NULL;

	(void)state;
	assert_int_equal(dd_rt_log_new(10, 5, &l), DD_ERR_INVALID);
	assert_int_equal(dd_rt_log_new(4096, 0, &l), DD_ERR_INVALID);
	assert_int_equal(dd_rt_log_new(4096, 1024, &l), DD_OK);
	put(l, DD_RT_STDOUT, "one\ntw");
	put(l, DD_RT_STDERR, "err-a\r\n");
	put(l, DD_RT_STDOUT, "o\r");
	put(l, DD_RT_STDOUT, "\n\nthree");
	assert_int_equal(dd_rt_log_count(l), 4);
	expect_line(l, 0, "one", DD_RT_STDOUT);
	expect_line(l, 1, "err-a", DD_RT_STDERR);
	expect_line(l, 2, "two", DD_RT_STDOUT);
	expect_line(l, 3, "", DD_RT_STDOUT);
	/* The unterminated line waits for its newline or its stream's end. */
	assert_int_equal(dd_rt_log_flush(l, DD_RT_STDERR), DD_OK);
	assert_int_equal(dd_rt_log_count(l), 4);
	assert_int_equal(dd_rt_log_flush(l, DD_RT_STDOUT), DD_OK);
	expect_line(l, 4, "three", DD_RT_STDOUT);
	/* Bytes, not text: NULs and invalid UTF-8 are kept as they are. */
	assert_int_equal(dd_rt_log_write(l, DD_RT_STDOUT,
					 (const uint8_t *)"a\0\xff\n", 4),
			 DD_OK);
	{
		const uint8_t *data;
		size_t len;

		dd_rt_log_get(l, 5, &data, &len, NULL);
		assert_int_equal(len, 3);
		assert_memory_equal(data, "a\0\xff", 3);
	}
	assert_int_equal(dd_rt_log_dropped(l), 0);
	dd_rt_log_free(l);
	dd_rt_log_free(NULL);
}

static void long_lines_are_cut(void **state)
{
	dd_rt_log *l = NULL;
	char big[25];

	(void)state;
	assert_int_equal(dd_rt_log_new(4096, 10, &l), DD_OK);
	memset(big, 'x', 24);
	big[24] = '\0';
	put(l, DD_RT_STDOUT, "abc");
	put(l, DD_RT_STDOUT, big);
	put(l, DD_RT_STDOUT, "\n");
	assert_int_equal(dd_rt_log_count(l), 3);
	expect_line(l, 0, "abcxxxxxxx", DD_RT_STDOUT);
	expect_line(l, 1, "xxxxxxxxxx", DD_RT_STDOUT);
	expect_line(l, 2, "xxxxxxx", DD_RT_STDOUT);
	/* Exactly max_line, then a newline: one line, no empty extra. */
	put(l, DD_RT_STDERR, "0123456789\n");
	assert_int_equal(dd_rt_log_count(l), 4);
	expect_line(l, 3, "0123456789", DD_RT_STDERR);
	dd_rt_log_free(l);
	/* max_line is lowered to what the byte cap can hold. */
	assert_int_equal(dd_rt_log_new(2 * DD_RT_LOG_LINE_COST, 1000, &l),
			 DD_OK);
	memset(big, 'y', 24);
	put(l, DD_RT_STDOUT, big);
	put(l, DD_RT_STDOUT, big);
	put(l, DD_RT_STDOUT, "\n");
	assert_true(cost(l) <= 2 * DD_RT_LOG_LINE_COST);
	dd_rt_log_free(l);
}

static void oldest_lines_age_out(void **state)
{
	dd_rt_log *l = NULL;
	char line[64];
	size_t cap = 40 * (DD_RT_LOG_LINE_COST + 8);

	(void)state;
	assert_int_equal(dd_rt_log_new(cap, 100, &l), DD_OK);
	for (int i = 0; i < 1000; i++) {
		snprintf(line, sizeof line, "line%04d\n", i);
		put(l, i % 2 ? DD_RT_STDERR : DD_RT_STDOUT, line);
		assert_true(cost(l) <= cap);
	}
	assert_int_equal(dd_rt_log_count(l), 40);
	expect_line(l, 0, "line0960", DD_RT_STDOUT);
	expect_line(l, 39, "line0999", DD_RT_STDERR);
	/* A big line pushes several small ones out. */
	memset(line, 'z', 40);
	line[40] = '\n';
	line[41] = '\0';
	put(l, DD_RT_STDOUT, line);
	assert_true(cost(l) <= cap);
	expect_line(l, dd_rt_log_count(l) - 1,
		    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", DD_RT_STDOUT);
	dd_rt_log_free(l);
}

/* However output is chunked, the same lines come out. */
static void chunking_does_not_matter(void **state)
{
	static const char text[] =
		"alpha\nbeta\r\n\ngamma delta epsilon zeta eta theta\niota\r"
		"kappa\nlambda mu nu xi omicron pi rho sigma tau\nend";
	dd_rt_log *whole = NULL, *bits = NULL;
	size_t n = sizeof text - 1, off, k;
	unsigned seed = 99;
	const uint8_t *a, *b;
	size_t alen, blen;

	(void)state;
	for (int round = 0; round < 200; round++) {
		assert_int_equal(dd_rt_log_new(8192, 16, &whole), DD_OK);
		assert_int_equal(dd_rt_log_new(8192, 16, &bits), DD_OK);
		put(whole, DD_RT_STDOUT, text);
		for (off = 0; off < n; off += k) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 9;
			if (k > n - off)
				k = n - off;
			assert_int_equal(dd_rt_log_write(bits, DD_RT_STDOUT,
					 (const uint8_t *)text + off, k),
					 DD_OK);
		}
		(void)dd_rt_log_flush(whole, DD_RT_STDOUT);
		(void)dd_rt_log_flush(bits, DD_RT_STDOUT);
		assert_int_equal(dd_rt_log_count(whole), dd_rt_log_count(bits));
		for (size_t i = 0; i < dd_rt_log_count(whole); i++) {
			dd_rt_log_get(whole, i, &a, &alen, NULL);
			dd_rt_log_get(bits, i, &b, &blen, NULL);
			assert_int_equal(alen, blen);
			assert_memory_equal(a, b, alen);
		}
		dd_rt_log_free(whole);
		dd_rt_log_free(bits);
	}
}

/*
 * R17: under every failed allocation the log stays consistent and
 * bounded, drops (and counts) lines rather than corrupting, and leaks
 * nothing.
 */
static void torture(void **state)
{
	static const char text[] = "a\nbb\nccc\n0123456789abcdefXYZ\npartial";
	dd_rt_log *l;
	unsigned long n, used;
	dd_err_t rc;

	(void)state;
	for (n = 1;; n++) {
		l = NULL;
		dd_alloc_fail_at(n);
		rc = dd_rt_log_new(2048, 16, &l);
		for (int i = 0; rc == DD_OK && i < 40; i++)
			(void)dd_rt_log_write(l, i % 2 + 1,
					      (const uint8_t *)text,
					      sizeof text - 1);
		if (rc == DD_OK)
			(void)dd_rt_log_flush(l, DD_RT_STDOUT);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (l != NULL) {
			assert_true(cost(l) <= 2048);
			for (size_t i = 0; i < dd_rt_log_count(l); i++) {
				const uint8_t *d;
				size_t len;

				dd_rt_log_get(l, i, &d, &len, NULL);
				assert_true(len <= 16);
			}
		}
		dd_rt_log_free(l);
		if (used < n)
			break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_and_streams),
		cmocka_unit_test(long_lines_are_cut),
		cmocka_unit_test(oldest_lines_age_out),
		cmocka_unit_test(chunking_does_not_matter),
		cmocka_unit_test(torture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
