/*
 * TCB evaluation rules on crafted TCB info / QE identity (the signed
 * sample, edited; signatures are dd_collateral_check's business and are
 * covered in test_quote_verify).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "attest/collateral.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "tdx_data.h"

typedef struct fixture {
	uint8_t *raw;
	dd_quote q;
	dd_pck_ext ext;
	json_t *tcb, *qe;     /* the sample documents, never edited */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	size_t len, clen;
	uint8_t *json;
	json_t *c;
	dd_pck_ders d;
	X509 *leaf = NULL;

	f->raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	assert_int_equal(dd_quote_parse(f->raw, len, &f->q), DD_OK);
	assert_int_equal(dd_pck_pem_split(f->q.pck_chain, f->q.pck_chain_len,
					  &d), DD_OK);
	assert_int_equal(dd_pck_cert_from_der(d.der.data, d.len[0], &leaf),
			 DD_OK);
	assert_int_equal(dd_pck_parse_ext(leaf, &f->ext), DD_OK);
	X509_free(leaf);
	dd_pck_ders_free(&d);
	json = tdx_load("dcap-qvl-tdx_quote_collateral.json", &clen);
	c = json_loadb((const char *)json, clen, 0, NULL);
	assert_non_null(c);
	f->tcb = json_loads(json_string_value(json_object_get(c, "tcb_info")),
			    0, NULL);
	f->qe = json_loads(json_string_value(json_object_get(c, "qe_identity")),
			   0, NULL);
	assert_non_null(f->tcb);
	assert_non_null(f->qe);
	json_decref(c);
	free(json);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	json_decref(f->tcb);
	json_decref(f->qe);
	free(f->raw);
	free(f);
	return 0;
}

/* The member at a dotted path ("tcbLevels.0.tcb.pcesvn"), borrowed. */
static json_t *at(json_t *root, const char *path, const char **last)
{
	char buf[128];
	char *seg, *next;
	json_t *cur = root;

	snprintf(buf, sizeof buf, "%s", path);
	seg = buf;
	for (;;) {
		next = strchr(seg, '.');
		if (next == NULL)
			break;
		*next = '\0';
		if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(seg, NULL, 10));
		else
			cur = json_object_get(cur, seg);
		assert_non_null(cur);
		seg = next + 1;
	}
	*last = path + (seg - buf);
	return cur;
}

/* Sets (value) or deletes (NULL) the member at path. Steals value. */
static void set(json_t *root, const char *path, json_t *value)
{
	const char *last;
	json_t *parent = at(root, path, &last);

	if (json_is_array(parent)) {
		size_t i = strtoul(last, NULL, 10);

		if (value == NULL)
			json_array_remove(parent, i);
		else
			json_array_set_new(parent, i, value);
	} else if (value == NULL) {
		json_object_del(parent, last);
	} else {
		json_object_set_new(parent, last, value);
	}
}

typedef struct edit {
	int in_qe;            /* edit the QE identity, not the TCB info */
	const char *path;
	json_t *value;        /* NULL deletes */
} edit;

static dd_err_t run(fixture *f, const dd_quote *q, const edit *edits,
		    size_t n, dd_quote_result *res)
{
	json_t *tcb = json_deep_copy(f->tcb);
	json_t *qe = json_deep_copy(f->qe);
	dd_err_t rc;

	for (size_t i = 0; i < n; i++)
		set(edits[i].in_qe ? qe : tcb, edits[i].path, edits[i].value);
	memset(res, 0, sizeof *res);
	rc = dd_tcb_evaluate(tcb, qe, q ? q : &f->q, &f->ext, res);
	json_decref(tcb);
	json_decref(qe);
	return rc;
}

#define RUN(f, q, res, ...)                                                 \
	run(f, q, (const edit[]){__VA_ARGS__},                               \
	    sizeof((const edit[]){__VA_ARGS__}) / sizeof(edit), res)

static void sample_is_up_to_date(void **state)
{
	fixture *f = *state;
	dd_quote_result r;

	memset(&r, 0, sizeof r);
	assert_int_equal(dd_tcb_evaluate(f->tcb, f->qe, &f->q, &f->ext, &r),
			 DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.platform_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.module_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.qe_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.checks, DD_QV_CHECK_QE_IDENTITY | DD_QV_CHECK_TCB);
	assert_int_equal(r.n_advisory_ids, 0);
	dd_quote_result_free(&r);
}

static void platform_levels(void **state)
{
	fixture *f = *state;
	dd_quote_result r;

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tcbLevels.0.tcbStatus",
			      json_string("SWHardeningNeeded")},
			     {0, "tcbLevels.0.advisoryIDs",
			      json_pack("[ss]", "INTEL-SA-00001",
					"INTEL-SA-00001")}),
			 DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_SW_HARDENING_NEEDED);
	assert_int_equal(r.n_advisory_ids, 1);
	assert_string_equal(r.advisory_ids[0], "INTEL-SA-00001");
	dd_quote_result_free(&r);

	/* PCESVN 11 no longer meets level 0: level 1, with its advisories. */
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tcbLevels.0.tcb.pcesvn", json_integer(12)}),
			 DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	assert_string_equal(r.tcb_date, "2018-01-04T00:00:00Z");
	assert_int_equal(r.n_advisory_ids, 14);
	assert_string_equal(r.advisory_ids[13], "INTEL-SA-00837");
	dd_quote_result_free(&r);

	/* TEE_TCB_SVN[2] = 3 below both levels' TDX component 2. */
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tcbLevels.0.tcb.tdxtcbcomponents.2.svn",
			      json_integer(4)},
			     {0, "tcbLevels.1.tcb.tdxtcbcomponents.2.svn",
			      json_integer(4)}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	assert_non_null(strstr(r.detail, "TEE_TCB_SVN"));
	dd_quote_result_free(&r);

	/* An SGX component above the PCK's in every level. */
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tcbLevels.0.tcb.sgxtcbcomponents.7.svn",
			      json_integer(6)},
			     {0, "tcbLevels.1.tcb.sgxtcbcomponents.7.svn",
			      json_integer(6)}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tcbLevels.0.tcbStatus",
			      json_string("Revoked")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_REVOKED);
	assert_int_equal(r.tcb_status, DD_TCB_REVOKED);
	assert_true(r.checks & DD_QV_CHECK_TCB);
	dd_quote_result_free(&r);
}

static void module_rules(void **state)
{
	fixture *f = *state;
	dd_quote q = f->q;
	dd_quote_result r;

	/* Module SVN 6 only meets TDX_01's OutOfDate level (isvsvn 2). */
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.tcbLevels.0.tcb.isvsvn",
			      json_integer(7)}),
			 DD_OK);
	assert_int_equal(r.module_status, DD_TCB_OUT_OF_DATE);
	assert_int_equal(r.platform_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	dd_quote_result_free(&r);

	/* ... and the configuration part of the platform status stays. */
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.tcbLevels.0.tcb.isvsvn",
			      json_integer(7)},
			     {0, "tcbLevels.0.tcbStatus",
			      json_string("ConfigurationNeeded")}),
			 DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.tcbLevels.0.tcbStatus",
			      json_string("Revoked")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_REVOKED);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.tcbLevels.0.tcb.isvsvn",
			      json_integer(7)},
			     {0, "tdxModuleIdentities.1.tcbLevels.1.tcb.isvsvn",
			      json_integer(7)}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.id",
			      json_string("TDX_02")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TDX_MODULE_MISMATCH);
	dd_quote_result_free(&r);
	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.id",
			      json_string("tdx_01")}),
			 DD_OK);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "tdxModuleIdentities.1.mrsigner",
			      json_string("01000000000000000000000000000000"
					  "00000000000000000000000000000000"
					  "00000000000000000000000000000000")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TDX_MODULE_MISMATCH);
	dd_quote_result_free(&r);

	q.body.seam_attributes[0] = 1;
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TDX_MODULE_MISMATCH);
	dd_quote_result_free(&r);

	/* No module version: tdxModule applies and all 16 SVNs count. */
	q = f->q;
	q.body.tee_tcb_svn[1] = 0;
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_UP_TO_DATE);
	dd_quote_result_free(&r);
	q.body.tee_tcb_svn[0] = 4; /* below component 0 (5) everywhere */
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	dd_quote_result_free(&r);
}

static void qe_identity_rules(void **state)
{
	fixture *f = *state;
	dd_quote_result r;
	const struct {
		const char *path;
		const char *value;
	} mismatches[] = {
		{"mrsigner", "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF"
			     "6340C82E0E54A8C6"},
		{"miscselect", "00000001"},
		{"attributes", "15000000000000000000000000000000"},
		{"attributesMask", "FFFFFFFFFFFFFFFF0000000000000000"},
	};

	for (size_t i = 0; i < sizeof mismatches / sizeof mismatches[0]; i++) {
		assert_int_equal(RUN(f, NULL, &r,
				     {1, mismatches[i].path,
				      json_string(mismatches[i].value)}),
				 DD_ERR_CRYPTO);
		assert_int_equal(r.reason, DD_QV_QE_IDENTITY_MISMATCH);
		dd_quote_result_free(&r);
	}
	assert_int_equal(RUN(f, NULL, &r, {1, "isvprodid", json_integer(3)}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_QE_IDENTITY_MISMATCH);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {1, "tcbLevels.0.tcbStatus",
			      json_string("OutOfDate")},
			     {1, "tcbLevels.0.advisoryIDs",
			      json_pack("[s]", "INTEL-SA-00999")}),
			 DD_OK);
	assert_int_equal(r.qe_status, DD_TCB_OUT_OF_DATE);
	assert_int_equal(r.platform_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	assert_int_equal(r.n_advisory_ids, 1);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {1, "tcbLevels.0.tcbStatus",
			      json_string("Revoked")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_REVOKED);
	dd_quote_result_free(&r);

	assert_int_equal(RUN(f, NULL, &r,
			     {1, "tcbLevels.0.tcb.isvsvn", json_integer(7)}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	dd_quote_result_free(&r);
}

static void tcb_info_identity(void **state)
{
	fixture *f = *state;
	dd_quote_result r;

	assert_int_equal(RUN(f, NULL, &r,
			     {0, "fmspc", json_string("B0C06F000001")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_INFO_MISMATCH);
	dd_quote_result_free(&r);
	assert_int_equal(RUN(f, NULL, &r, {0, "pceId", json_string("0100")}),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_INFO_MISMATCH);
	dd_quote_result_free(&r);
}

/* Malformed (if signed) documents are format errors, never a pass. */
static void malformed_documents(void **state)
{
	fixture *f = *state;
	dd_quote_result r;
	const edit cases[] = {
		{0, "tcbLevels.0.tcbStatus", json_string("Bogus")},
		{0, "tcbLevels.0.tcbStatus", json_string("TDRelaunchAdvised")},
		{0, "tcbLevels.0.tcb.sgxtcbcomponents.15", NULL},
		{0, "tcbLevels.0.tcb.tdxtcbcomponents.3.svn",
		 json_integer(256)},
		{0, "tcbLevels.0.tcb.pcesvn", json_string("11")},
		{0, "tcbLevels.0.advisoryIDs", json_pack("[i]", 1)},
		{0, "tcbLevels.0.advisoryIDs", json_pack("[s]", "bad id!")},
		{0, "tcbLevels.0.advisoryIDs", json_string("INTEL-SA-1")},
		{0, "tcbLevels", NULL},
		{0, "fmspc", json_string("B0C06F")},
		{0, "tdxModuleIdentities.1.attributesMask", NULL},
		{0, "tdxModuleIdentities.1.tcbLevels.0.tcbStatus",
		 json_string("SWHardeningNeeded")},
		{1, "tcbLevels.0.tcbStatus",
		 json_string("ConfigurationNeeded")},
		{1, "mrsigner", json_integer(0)},
		{1, "tcbLevels", json_object()},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(run(f, NULL, &cases[i], 1, &r),
				 DD_ERR_INVALID);
		assert_int_equal(r.reason, DD_QV_COLLATERAL_FORMAT);
		dd_quote_result_free(&r);
	}
}

/* TD 1.5: a TD behind only on its module is told to relaunch. */
static void relaunch_advice(void **state)
{
	fixture *f = *state;
	dd_quote q = f->q;
	dd_quote_result r;

	q.body.type = DD_QUOTE_BODY_TD15;
	q.body.tee_tcb_svn[0] = 3; /* module TDX_01 level isvsvn 2: old */
	memcpy(q.body.tee_tcb_svn2, (const uint8_t[]){4, 1, 3}, 3);
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_OK);
	assert_int_equal(r.module_status, DD_TCB_OUT_OF_DATE);
	assert_int_equal(r.tcb_status, DD_TCB_TD_RELAUNCH_ADVISED);
	dd_quote_result_free(&r);

	assert_int_equal(run(f, &q, &(const edit){0, "tcbLevels.0.tcbStatus",
				      json_string("ConfigurationNeeded")},
			     1, &r),
			 DD_OK);
	assert_int_equal(r.tcb_status,
			 DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED);
	dd_quote_result_free(&r);

	/* A relaunch would not reach the newest module level. */
	q.body.tee_tcb_svn2[0] = 3;
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	dd_quote_result_free(&r);

	/* Unversioned module after relaunch: judged by TDX components. */
	memcpy(q.body.tee_tcb_svn2, (const uint8_t[]){5, 0, 2}, 3);
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_TD_RELAUNCH_ADVISED);
	dd_quote_result_free(&r);

	q.body.tee_tcb_svn2[1] = 9;
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TDX_MODULE_MISMATCH);
	dd_quote_result_free(&r);

	/* The same SVNs in a TD 1.0 body: no relaunch rule. */
	q.body.type = DD_QUOTE_BODY_TD10;
	assert_int_equal(run(f, &q, NULL, 0, &r), DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	dd_quote_result_free(&r);

	/* An out-of-date QE rules relaunch advice out. */
	q.body.type = DD_QUOTE_BODY_TD15;
	memcpy(q.body.tee_tcb_svn2, (const uint8_t[]){4, 1, 3}, 3);
	assert_int_equal(run(f, &q, &(const edit){1, "tcbLevels.0.tcbStatus",
				      json_string("OutOfDate")},
			     1, &r),
			 DD_OK);
	assert_int_equal(r.tcb_status, DD_TCB_OUT_OF_DATE);
	dd_quote_result_free(&r);
}

static void time_format(void **state)
{
	int64_t t;
	static const char *const bad[] = {
		"", "2025-06-25", "2025-06-25T00:00:00",
		"2025-06-25T00:00:00.0Z",
		"2025-06-25 00:00:00Z", "2025-13-01T00:00:00Z",
		"2025-00-01T00:00:00Z", "2025-04-31T00:00:00Z",
		"2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2025-06-25T24:00:00Z", "2025-06-25T00:60:00Z",
		"+025-06-25T00:00:00Z", "1969-12-31T23:59:59Z",
	};

	(void)state;
	assert_int_equal(dd_collateral_parse_time("1970-01-01T00:00:00Z", &t),
			 DD_OK);
	assert_int_equal(t, 0);
	assert_int_equal(dd_collateral_parse_time("2025-06-25T00:00:00Z", &t),
			 DD_OK);
	assert_int_equal(t, TDX_NOW);
	assert_int_equal(dd_collateral_parse_time("2024-02-29T12:34:56Z", &t),
			 DD_OK);
	assert_int_equal(t, 1709210096);
	assert_int_equal(dd_collateral_parse_time("2000-02-29T00:00:00Z", &t),
			 DD_OK);
	assert_int_equal(t, 951782400);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(dd_collateral_parse_time(bad[i], &t),
				 DD_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sample_is_up_to_date),
		cmocka_unit_test(platform_levels),
		cmocka_unit_test(module_rules),
		cmocka_unit_test(qe_identity_rules),
		cmocka_unit_test(tcb_info_identity),
		cmocka_unit_test(malformed_documents),
		cmocka_unit_test(relaunch_advice),
		cmocka_unit_test(time_format),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
