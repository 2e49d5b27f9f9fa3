#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/log_follow.h"
#include "core/alloc.h"
#include "core/json.h"

/* "a b c" -> ["a", "b", "c"]; "" -> []. */
static json_t *lines(const char *words)
{
	json_t *a = json_array();
	char buf[256], *save = NULL;

	snprintf(buf, sizeof buf, "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		json_array_append_new(a, json_string(w));
	return a;
}

static size_t overlap(const char *prev, const char *next)
{
	json_t *p = lines(prev), *n = lines(next);
	size_t k = 99;

	assert_int_equal(dd_log_overlap(p, n, &k), DD_OK);
	json_decref(p);
	json_decref(n);
	return k;
}

static void finds_the_new_lines(void **state)
{
	(void)state;
	/* Nothing changed: everything overlaps, nothing is new. */
	assert_int_equal(overlap("a b c", "a b c"), 3);
	/* The window slid by two. */
	assert_int_equal(overlap("a b c d", "c d e f"), 2);
	/* The window grew. */
	assert_int_equal(overlap("a b", "a b c"), 2);
	/* No overlap: a gap (or a restarted log). */
	assert_int_equal(overlap("a b c", "x y z"), 0);
	/* Empty sides. */
	assert_int_equal(overlap("", "a"), 0);
	assert_int_equal(overlap("a", ""), 0);
	assert_int_equal(overlap("", ""), 0);
}

static void takes_the_longest_overlap(void **state)
{
	(void)state;
	/* "a" alone also matches, but "x a" is longer. */
	assert_int_equal(overlap("q x a", "x a x a b"), 2);
	/* KMP must fall back inside the pattern, not restart. */
	assert_int_equal(overlap("a a b a a", "a a b a a c"), 5);
	assert_int_equal(overlap("a b a b a", "a b a c"), 3);
	assert_int_equal(overlap("z a a a", "a a a a"), 3);
	/* A full match in the middle of prev is not an overlap at its end. */
	assert_int_equal(overlap("a b c d", "a b"), 0);
	/* Repeated lines: indistinguishable from no new output (documented). */
	assert_int_equal(overlap("t t t", "t t t"), 3);
}

static void non_strings_never_match(void **state)
{
	json_t *p = json_pack("[s, i]", "a", 1), *n = json_pack("[i, s]", 1, "b");
	size_t k = 99;

	(void)state;
	assert_int_equal(dd_log_overlap(p, n, &k), DD_OK);
	assert_int_equal(k, 0);
	json_decref(p);
	json_decref(n);
	/* Same bytes, different lengths (an embedded NUL). */
	p = json_array();
	n = json_array();
	json_array_append_new(p, json_stringn("a\0b", 3));
	json_array_append_new(n, json_string("a"));
	assert_int_equal(dd_log_overlap(p, n, &k), DD_OK);
	assert_int_equal(k, 0);
	json_decref(p);
	json_decref(n);
}

static void allocation_failure_is_reported(void **state)
{
	json_t *p = lines("a b"), *n = lines("b c");
	size_t k = 99;
	dd_err_t rc;

	(void)state;
#ifdef DD_TORTURE
	dd_alloc_fail_at(1);
	rc = dd_log_overlap(p, n, &k);
	dd_alloc_fail_at(0);
	assert_int_equal(rc, DD_ERR_NOMEM);
#else
	(void)rc;
#endif
	assert_int_equal(dd_log_overlap(p, n, &k), DD_OK);
	assert_int_equal(k, 1);
	json_decref(p);
	json_decref(n);
}

/* Against the quadratic definition, on many small random windows. */
static void agrees_with_the_definition(void **state)
{
	uint32_t seed = 12345;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		char pw[64] = "", nw[64] = "";
		size_t best = 0, pn, nn, k;
		json_t *p, *n;

		for (int i = 0, len = (int)(seed % 7); i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			strcat(pw, (seed >> 16) % 2 ? "a " : "b ");
		}
		seed = seed * 1103515245u + 12345u;
		for (int i = 0, len = (int)(seed % 7); i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			strcat(nw, (seed >> 16) % 2 ? "a " : "b ");
		}
		seed = seed * 1103515245u + 12345u;
		p = lines(pw);
		n = lines(nw);
		pn = json_array_size(p);
		nn = json_array_size(n);
		for (size_t c = 1; c <= pn && c <= nn; c++) {
			int ok = 1;

			for (size_t i = 0; i < c && ok; i++)
				ok = json_equal(json_array_get(p, pn - c + i),
						json_array_get(n, i));
			if (ok)
				best = c;
		}
		assert_int_equal(dd_log_overlap(p, n, &k), DD_OK);
		assert_int_equal(k, best);
		json_decref(p);
		json_decref(n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_the_new_lines),
		cmocka_unit_test(takes_the_longest_overlap),
		cmocka_unit_test(non_strings_never_match),
		cmocka_unit_test(allocation_failure_is_reported),
		cmocka_unit_test(agrees_with_the_definition),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
