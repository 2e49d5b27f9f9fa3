/*
 * The pure parts of the CP's STONITH wiring: how Cloudflare's answers
 * are classified for STONITH (the security decision: what may count as
 * "our tunnel is gone") and how tunnel objects and their created_at are
 * read (the tie-break depends on it). The wiring itself runs end to end
 * in tests/e2e/test_stonith.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "cp/cp_stonith.h"

static void test_answers(void **state)
{
	(void)state;
	assert_int_equal(dd_cp_stonith_answer(DD_OK, 200), DD_CF_ANS_OK);
	assert_int_equal(dd_cp_stonith_answer(DD_ERR_UPSTREAM, 404),
			 DD_CF_ANS_NOT_FOUND);
	/* Nothing that says "no such tunnel" counts as gone. */
	static const long ambiguous[] = {0, 401, 403, 408, 429, 500, 502, 503,
					 504, 520, 530, 301, 302};
	for (size_t i = 0; i < sizeof ambiguous / sizeof ambiguous[0]; i++)
		assert_int_equal(dd_cp_stonith_answer(DD_ERR_UPSTREAM,
						      ambiguous[i]),
				 DD_CF_ANS_AMBIGUOUS);
	assert_int_equal(dd_cp_stonith_answer(DD_ERR_TIMEOUT, 0),
			 DD_CF_ANS_AMBIGUOUS);
	/* success:false on a 200: not an answer either way. */
	assert_int_equal(dd_cp_stonith_answer(DD_ERR_UPSTREAM, 200),
			 DD_CF_ANS_AMBIGUOUS);
	assert_int_equal(dd_cp_stonith_answer(DD_ERR_UPSTREAM, 400),
			 DD_CF_ANS_REFUSED);
	assert_int_equal(dd_cp_stonith_answer(DD_ERR_UPSTREAM, 409),
			 DD_CF_ANS_REFUSED);
}

static void test_parse_time(void **state)
{
	int64_t us = 0, us2 = 0;

	(void)state;
	assert_int_equal(dd_cp_stonith_parse_time("1970-01-01T00:00:01Z", &us),
			 DD_OK);
	assert_int_equal(us, 1000000);
	assert_int_equal(dd_cp_stonith_parse_time(
				 "2026-11-30T04:31:12.123456Z", &us), DD_OK);
	assert_int_equal(us, 1796013072123456LL);
	/* Two tunnels created within one millisecond keep their order. */
	assert_int_equal(dd_cp_stonith_parse_time(
				 "2026-11-30T04:31:12.123457Z", &us2), DD_OK);
	assert_true(us2 > us);
	/* Digits past the microsecond are read and ignored. */
	assert_int_equal(dd_cp_stonith_parse_time(
				 "2026-11-30T04:31:12.1234569Z", &us2), DD_OK);
	assert_int_equal(us2, us);
	assert_int_equal(dd_cp_stonith_parse_time(
				 "2026-11-30T05:31:12.1+01:00", &us), DD_OK);
	assert_int_equal(us, 1796013072100000LL);
	assert_int_equal(dd_cp_stonith_parse_time(
				 "2026-11-30T03:31:12-01:00", &us), DD_OK);
	assert_int_equal(us, 1796013072000000LL);
	assert_int_equal(dd_cp_stonith_parse_time(
				 "9999-12-31T23:59:59.999999-23:59", &us), DD_OK);
	static const char *const bad[] = {
		"", "2026-11-30", "2026-11-30T04:31:12", "2026-11-30 04:31:12Z",
		"2026-13-30T04:31:12Z", "2026-11-30T24:00:00Z",
		"2026-11-30T04:31:12.Z", "2026-11-30T04:31:12Zjunk",
		"2026-11-30T04:31:12+0100", "+026-11-30T04:31:12Z",
		"2026-11-30T04:31:12.123456789012345678901234567890",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(dd_cp_stonith_parse_time(bad[i], &us),
				 DD_ERR_INVALID);
}

static void test_tunnel_from_json(void **state)
{
	dd_cf_tunnel t;
	json_t *o;

	(void)state;
	o = json_pack("{s:s, s:s, s:s, s:n, s:[{s:s},{s:s}]}", "id", "abc",
		      "name", "dd-e-cp-x", "created_at", "1970-01-01T00:00:02Z",
		      "deleted_at", "connections", "id", "1", "id", "2");
	assert_int_equal(dd_cp_stonith_tunnel_from_json(o, &t), DD_OK);
	assert_string_equal(t.id, "abc");
	assert_string_equal(t.name, "dd-e-cp-x");
	assert_int_equal(t.created_us, 2000000);
	assert_int_equal(t.connections, 2);
	assert_false(t.deleted);
	json_object_set_new(o, "deleted_at", json_string("2026-01-01T00:00:00Z"));
	/* An unreadable age is the newest: such a tunnel is never evicted. */
	json_object_set_new(o, "created_at", json_string("yesterday"));
	assert_int_equal(dd_cp_stonith_tunnel_from_json(o, &t), DD_OK);
	assert_true(t.deleted);
	assert_true(t.created_us == INT64_MAX);
	json_object_del(o, "name");
	assert_int_equal(dd_cp_stonith_tunnel_from_json(o, &t), DD_ERR_INVALID);
	json_decref(o);
	assert_int_equal(dd_cp_stonith_tunnel_from_json(NULL, &t),
			 DD_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_tunnel_from_json),
	};

	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
