#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "attest/claims.h"

/* MRTD of the dcap-qvl sample quote in tests/data/tdx. */
#define MRTD "91EB2B44D141D4ECE09F0C75C2C53D247A3C68EDD7FAFE8A3520C942A604A407" \
	     "DE03AE6DC5F87F27428B2538873118B7"
#define RD128 "7668c6b4eafb62301c72714ecc7d90ce9a0e04b5000000000000000000000000" \
	      "0000000000000000000000000000000000000000000000000000000000000000"

static json_t *v1(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:f}",
			 "attester_type", "TDX", "attester_tcb_status", "UpToDate",
			 "tdx_mrtd", MRTD, "tdx_report_data", RD128,
			 "tdx_rtmr2", MRTD, "tdx_is_debuggable", 0,
			 "iat", (json_int_t)1700000000, "exp", 1700000300.5);
}

static void flat_v1_layout(void **state)
{
	json_t *c = v1();
	dd_att_claims a;
	char why[128];

	(void)state;
	assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why), DD_OK);
	assert_false(a.v2);
	assert_string_equal(a.tcb_status, "UpToDate");
	assert_int_equal(strlen(a.mrtd), 96);
	assert_string_equal(a.mrtd, "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a"
				    "3520c942a604a407de03ae6dc5f87f27428b2538873118b7");
	assert_string_equal(a.report_data, RD128);
	assert_string_equal(a.rtmr[0], "");
	assert_int_equal(strlen(a.rtmr[2]), 96);
	assert_int_equal(a.debuggable, 0);
	assert_true(a.iat == 1700000000 && a.exp == 1700000300);
	json_decref(c);
}

static void nested_v2_layout(void **state)
{
	json_t *c = json_pack("{s:s, s:I, s:{s:s, s:s, s:s, s:s}}", "ver", "2.0.0",
			      "exp", (json_int_t)5, "tdx", "attester_type", "TDX",
			      "attester_tcb_status", "OutOfDate", "tdx_mrtd", MRTD,
			      "tdx_report_data", RD128);
	dd_att_claims a;
	char why[128];

	(void)state;
	assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why), DD_OK);
	assert_true(a.v2);
	assert_string_equal(a.tcb_status, "OutOfDate");
	assert_int_equal(a.debuggable, -1);
	json_decref(c);
}

static void bad_claims_name_the_problem(void **state)
{
	static const struct {
		const char *key;
		const char *value;
		const char *why;
	} cases[] = {
		{"attester_type", "SGX", "attester_type"},
		{"tdx_mrtd", "abc", "tdx_mrtd must be 96"},
		{"tdx_mrtd", NULL, "tdx_mrtd is missing"},
		{"tdx_report_data", "zz", "tdx_report_data must be 128"},
		{"tdx_rtmr2", "g" MRTD, "tdx_rtmr2 must be 96"},
	};
	char why[128];
	dd_att_claims a;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *c = v1();
		if (cases[i].value)
			json_object_set_new(c, cases[i].key, json_string(cases[i].value));
		else
			json_object_del(c, cases[i].key);
		assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why),
				 DD_ERR_INVALID);
		assert_non_null(strstr(why, cases[i].why));
		json_decref(c);
	}
	/* Non-hex at the right length, and a number where hex belongs. */
	json_t *c = v1();
	char nothex[97];
	memset(nothex, 'x', 96);
	nothex[96] = '\0';
	json_object_set_new(c, "tdx_mrtd", json_string(nothex));
	assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why), DD_ERR_INVALID);
	json_object_set_new(c, "tdx_mrtd", json_integer(5));
	assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why), DD_ERR_INVALID);
	json_decref(c);
	c = json_array();
	assert_int_equal(dd_att_claims_from_json(c, &a, why, sizeof why), DD_ERR_INVALID);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flat_v1_layout),
		cmocka_unit_test(nested_v2_layout),
		cmocka_unit_test(bad_claims_name_the_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
