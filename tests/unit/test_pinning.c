#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "attest/pinning.h"

#define M1 "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
#define M2 "b65ea009e424e6f761fdd3d7c8962439453b37ecdf62da04f7bc5d327686bb8bafc8a5d24a9c31cee60e4aba87c2f71b"
#define M3 "c68518a0ebb42136c12b2275164f8c72f25fa9a34392228687ed6e9caeb9c0f1dbd895e9cf475121c029dc47e70e91fd"

static dd_att_claims claims(const char *mrtd, const char *tcb)
{
	dd_att_claims c;

	memset(&c, 0, sizeof c);
	strcpy(c.mrtd, mrtd);
	strcpy(c.tcb_status, tcb);
	strcpy(c.attester_type, "TDX");
	return c;
}

static void unpinned_passes_and_says_so(void **state)
{
	dd_pin_policy p;
	char why[128];
	dd_att_claims c = claims(M1, "OutOfDate");

	(void)state;
	assert_int_equal(dd_pin_policy_parse(NULL, NULL, NULL, 1, &p, why, sizeof why), DD_OK);
	assert_int_equal(dd_pin_check(&p, &c, why, sizeof why), DD_PIN_UNPINNED);
	assert_int_equal(dd_pin_policy_parse(" \n, ", "", NULL, 1, &p, why, sizeof why), DD_OK);
	assert_int_equal(p.n_mrtd, 0);
}

static void allowlist_and_tcb_floor(void **state)
{
	dd_pin_policy p;
	char why[128];
	dd_att_claims good = claims(M2, "UpToDate");
	dd_att_claims other = claims(M3, "UpToDate");
	dd_att_claims stale = claims(M1, "OutOfDate");
	dd_att_claims none = claims(M1, "");
	dd_att_claims weird = claims(M1, "Fantastic");
	dd_att_claims hard = claims(M1, "SWHardeningNeeded");

	(void)state;
	/* Mixed separators and upper case are accepted and normalised. */
	assert_int_equal(dd_pin_policy_parse(M1 ",\n\t  B65EA009E424E6F761FDD3D7C8962439453B37ECDF62DA04F7BC5D327686BB8BAFC8A5D24A9C31CEE60E4ABA87C2F71B",
					     NULL, NULL, 1, &p, why, sizeof why), DD_OK);
	assert_int_equal(p.n_mrtd, 2);
	assert_string_equal(p.min_tcb, "UpToDate");
	assert_int_equal(dd_pin_check(&p, &good, why, sizeof why), DD_PIN_PASS);
	assert_int_equal(dd_pin_check(&p, &other, why, sizeof why), DD_PIN_BAD_MRTD);
	assert_non_null(strstr(why, "allowlist"));
	assert_int_equal(dd_pin_check(&p, &stale, why, sizeof why), DD_PIN_LOW_TCB);
	assert_int_equal(dd_pin_check(&p, &none, why, sizeof why), DD_PIN_LOW_TCB);
	assert_int_equal(dd_pin_check(&p, &weird, why, sizeof why), DD_PIN_LOW_TCB);
	assert_int_equal(dd_pin_check(&p, &hard, why, sizeof why), DD_PIN_LOW_TCB);
	/* A lower floor admits better statuses too. */
	assert_int_equal(dd_pin_policy_parse(M1, "SWHardeningNeeded", NULL, 0, &p, why,
					     sizeof why), DD_OK);
	assert_int_equal(dd_pin_check(&p, &hard, why, sizeof why), DD_PIN_PASS);
	assert_int_equal(dd_pin_check(&p, &stale, why, sizeof why), DD_PIN_LOW_TCB);
	assert_int_equal(p.enforce, 0);
}

static void rtmrs_when_pinned(void **state)
{
	dd_pin_policy p;
	char why[128];
	const char *rtmrs[4] = {"", NULL, M3, ""};
	dd_att_claims c = claims(M1, "UpToDate");

	(void)state;
	assert_int_equal(dd_pin_policy_parse(M1, NULL, rtmrs, 1, &p, why, sizeof why), DD_OK);
	assert_int_equal(dd_pin_check(&p, &c, why, sizeof why), DD_PIN_BAD_RTMR);
	assert_non_null(strstr(why, "RTMR2"));
	strcpy(c.rtmr[2], M3);
	assert_int_equal(dd_pin_check(&p, &c, why, sizeof why), DD_PIN_PASS);
}

static void malformed_policies_are_refused(void **state)
{
	dd_pin_policy p;
	char why[128];
	const char *bad_rtmr[4] = {"xyz", NULL, NULL, NULL};

	(void)state;
	assert_int_equal(dd_pin_policy_parse("abcd", NULL, NULL, 1, &p, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse(M1 "00", NULL, NULL, 1, &p, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse(M1, "Great", NULL, 1, &p, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "unknown TCB status"));
	assert_int_equal(dd_pin_policy_parse(M1, NULL, bad_rtmr, 1, &p, why, sizeof why),
			 DD_ERR_INVALID);
	assert_true(dd_tcb_rank("UpToDate") > dd_tcb_rank("OutOfDate"));
	assert_true(dd_tcb_rank("Revoked") >= 0);
	assert_true(dd_tcb_rank("Revoked") < dd_tcb_rank("OutOfDateConfigurationNeeded"));
	assert_true(dd_tcb_rank("TDRelaunchAdvised") >= 0);
	assert_int_equal(dd_tcb_rank("uptodate"), -1);
}

static void named_entries(void **state)
{
	dd_pin_policy p;
	char why[128];
	dd_att_claims c = claims(M2, "UpToDate");

	(void)state;
	assert_int_equal(dd_pin_policy_parse("web-2026.11=" M1 ", " M2, NULL, NULL,
					     1, &p, why, sizeof why), DD_OK);
	assert_int_equal(p.n_mrtd, 2);
	assert_string_equal(dd_pin_name_of(&p, M1), "web-2026.11");
	assert_string_equal(dd_pin_name_of(&p, M2), "");
	assert_null(dd_pin_name_of(&p, M3));
	assert_int_equal(dd_pin_check(&p, &c, why, sizeof why), DD_PIN_PASS);
	/* Names are bounded and plain; an empty name is a typo. */
	assert_int_equal(dd_pin_policy_parse("=" M1, NULL, NULL, 1, &p, why,
					     sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse("a b=" M1, NULL, NULL, 1, &p, why,
					     sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse("we/b=" M1, NULL, NULL, 1, &p, why,
					     sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse(
		"abcdefghijabcdefghijabcdefghijabc=" M1, NULL, NULL, 1, &p, why,
		sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_pin_policy_parse("x=y=" M1, NULL, NULL, 1, &p, why,
					     sizeof why), DD_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unpinned_passes_and_says_so),
		cmocka_unit_test(allowlist_and_tcb_floor),
		cmocka_unit_test(rtmrs_when_pinned),
		cmocka_unit_test(malformed_policies_are_refused),
		cmocka_unit_test(named_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
