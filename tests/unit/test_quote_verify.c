#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "attest/collateral.h"
#include "attest/quote.h"
#include "attest/quote_sim.h"
#include "attest/quote_verify.h"
#include "core/alloc.h"
#include "core/json.h"
#include "tdx_data.h"

#define PROPER_LEN 4936u
#define OFF_QE_REPORT 770u
#define OFF_QE_REPORT_DATA (770u + 320u)
#define OFF_QE_SIG 1154u
#define OFF_AUTH 1220u
#define OFF_PEM 1258u

#define ALL_OFFLINE                                                         \
	(DD_QV_CHECK_QUOTE_SIG | DD_QV_CHECK_QE_BINDING |                   \
	 DD_QV_CHECK_PCK_CHAIN | DD_QV_CHECK_QE_REPORT_SIG |                 \
	 DD_QV_CHECK_PCK_EXT | DD_QV_CHECK_TD_ATTRS)
#define ALL_CHECKS                                                          \
	(ALL_OFFLINE | DD_QV_CHECK_CRL | DD_QV_CHECK_COLLATERAL |           \
	 DD_QV_CHECK_QE_IDENTITY | DD_QV_CHECK_TCB)

static dd_collateral *load_collateral(void)
{
	size_t len;
	uint8_t *json = tdx_load("dcap-qvl-tdx_quote_collateral.json", &len);
	dd_collateral *c = NULL;
	char why[200];

	assert_int_equal(dd_collateral_parse(json, len, &c, why, sizeof why),
			 DD_OK);
	free(json);
	return c;
}

static dd_err_t verify(const uint8_t *q, size_t len, int64_t now,
		       const dd_collateral *c, dd_quote_result *res)
{
	dd_quote_verify_opts o = {.now = now, .collateral = c};

	return dd_quote_verify_bytes(q, len, &o, res);
}

static void real_quotes_verify_offline(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);
		uint8_t fmspc[6];
		dd_quote_result r;

		assert_int_equal(verify(raw, len, TDX_NOW, NULL, &r), DD_OK);
		assert_int_equal(r.reason, DD_QV_OK);
		assert_int_equal(r.err, DD_OK);
		assert_string_equal(r.detail, "");
		assert_int_equal(r.checks, ALL_OFFLINE);
		assert_int_equal(r.tcb_status, DD_TCB_NOT_EVALUATED);
		assert_false(r.simulated);
		assert_false(r.td_debug);
		tdx_unhex(tdx_samples[i].fmspc, fmspc, 6);
		assert_memory_equal(r.fmspc, fmspc, 6);
		assert_int_equal(r.n_advisory_ids, 0);
		dd_quote_result_free(&r);
		free(raw);
	}
}

/* The caller's "now" decides certificate validity, both ways. */
static void certificate_validity_window(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_quote_result r;

	(void)state;
	/* Leaf: 2025-02-06T23:25:51Z .. 2032-02-06T23:25:51Z. */
	assert_int_equal(verify(raw, len, 1738884351, NULL, &r), DD_OK);
	dd_quote_result_free(&r);
	assert_int_equal(verify(raw, len, 1738884350, NULL, &r),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_CERT_NOT_YET_VALID);
	assert_non_null(strstr(r.detail, "PCK chain"));
	assert_true(r.checks & DD_QV_CHECK_QE_BINDING);
	assert_false(r.checks & DD_QV_CHECK_PCK_CHAIN);
	dd_quote_result_free(&r);
	assert_int_equal(verify(raw, len, 1960000000, NULL, &r),
			 DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_CERT_EXPIRED);
	dd_quote_result_free(&r);
	free(raw);
}

/* What dcap-qvl's own test expects for its sample: UpToDate, no IDs. */
static void collateral_up_to_date(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_collateral *c = load_collateral();
	dd_quote_result r;
	int64_t crl_next;

	(void)state;
	assert_int_equal(verify(raw, len, TDX_NOW, c, &r), DD_OK);
	assert_int_equal(r.reason, DD_QV_OK);
	assert_int_equal(r.checks, ALL_CHECKS);
	assert_int_equal(r.tcb_status, DD_TCB_UP_TO_DATE);
	assert_string_equal(dd_tcb_status_name(r.tcb_status), "UpToDate");
	assert_int_equal(r.platform_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.qe_status, DD_TCB_UP_TO_DATE);
	assert_int_equal(r.module_status, DD_TCB_UP_TO_DATE);
	assert_string_equal(r.tcb_date, "2024-03-13T00:00:00Z");
	assert_int_equal(r.n_advisory_ids, 0);
	assert_int_equal(r.pcesvn, 11);
	/* The PCK CRL's nextUpdate is the first thing to run out. */
	assert_int_equal(dd_collateral_parse_time("2025-07-19T10:00:35Z",
						  &crl_next), DD_OK);
	assert_int_equal(r.collateral_expires, crl_next);
	dd_quote_result_free(&r);
	dd_collateral_free(c);
	free(raw);
}

static void collateral_with_other_quotes(void **state)
{
	size_t len;
	uint8_t *raw;
	dd_collateral *c = load_collateral();
	dd_quote_result r;

	(void)state;
	/* Another platform model: the TCB info is for another FMSPC. */
	raw = tdx_load("edgeless-tdx-v4.bin", &len);
	assert_int_equal(verify(raw, len, TDX_NOW, c, &r), DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_INFO_MISMATCH);
	assert_true(r.checks & DD_QV_CHECK_CRL);
	assert_true(r.checks & DD_QV_CHECK_QE_IDENTITY);
	dd_quote_result_free(&r);
	free(raw);
	/* Same FMSPC, but its SEAMLDR ACM SVN (3) is below every level. */
	raw = tdx_load("tappd-tdx-v4.hex", &len);
	assert_int_equal(verify(raw, len, TDX_NOW, c, &r), DD_ERR_CRYPTO);
	assert_int_equal(r.reason, DD_QV_TCB_NOT_SUPPORTED);
	assert_non_null(strstr(r.detail, "SGX TCB"));
	dd_quote_result_free(&r);
	free(raw);
	dd_collateral_free(c);
}

static void collateral_dates(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_collateral *c = load_collateral();
	const struct {
		const char *when;
		dd_qv_reason want;
	} cases[] = {
		/* After the PCK CRL's nextUpdate, before the TCB info's. */
		{"2025-07-19T10:05:00Z", DD_QV_CRL},
		{"2025-07-20T00:00:00Z", DD_QV_COLLATERAL_EXPIRED},
		/* TCB info issued, QE identity not yet. */
		{"2025-06-19T10:20:00Z", DD_QV_COLLATERAL_EXPIRED},
		{"2025-06-19T10:32:27Z", DD_QV_OK},
	};
	dd_quote_result r;
	int64_t t;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(dd_collateral_parse_time(cases[i].when, &t),
				 DD_OK);
		(void)verify(raw, len, t, c, &r);
		assert_int_equal(r.reason, cases[i].want);
		dd_quote_result_free(&r);
	}
	dd_collateral_free(c);
	free(raw);
}

/* Re-serialises the sample collateral with field key set to value. */
static dd_err_t collateral_with(const char *key, json_t *value,
				dd_collateral **out)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote_collateral.json", &len);
	json_t *j = json_loadb((const char *)raw, len, 0, NULL);
	char *text;
	dd_err_t rc;

	assert_non_null(j);
	if (value == NULL)
		json_object_del(j, key);
	else
		json_object_set_new(j, key, value);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	rc = dd_collateral_parse(text, strlen(text), out, NULL, 0);
	free(text);
	json_decref(j);
	free(raw);
	return rc;
}

static const char *sample_field(const char *key, json_t **holder)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote_collateral.json", &len);

	*holder = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	assert_non_null(*holder);
	return json_string_value(json_object_get(*holder, key));
}

static void collateral_tampering(void **state)
{
	size_t len;
	uint8_t *quote = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	json_t *holder;
	const char *s;
	char *edited;
	dd_collateral *c = NULL;
	dd_quote_result r;
	const struct {
		const char *field, *from, *to;
		dd_qv_reason want;
	} edits[] = {
		{"tcb_info", "\"pcesvn\":11", "\"pcesvn\":10",
		 DD_QV_COLLATERAL_SIGNATURE},
		{"qe_identity", "\"isvprodid\":2", "\"isvprodid\":3",
		 DD_QV_COLLATERAL_SIGNATURE},
		{"tcb_info_signature", "027e", "027f",
		 DD_QV_COLLATERAL_SIGNATURE},
		{"qe_identity_signature", "d6d7", "d6d8",
		 DD_QV_COLLATERAL_SIGNATURE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		const char *hit;
		size_t n;

		s = sample_field(edits[i].field, &holder);
		hit = strstr(s, edits[i].from);
		assert_non_null(hit);
		n = strlen(s);
		edited = malloc(n + 1);
		memcpy(edited, s, n + 1);
		memcpy(edited + (hit - s), edits[i].to, strlen(edits[i].to));
		assert_int_equal(collateral_with(edits[i].field,
						 json_string(edited), &c),
				 DD_OK);
		(void)verify(quote, len, TDX_NOW, c, &r);
		assert_int_equal(r.reason, edits[i].want);
		dd_quote_result_free(&r);
		dd_collateral_free(c);
		free(edited);
		json_decref(holder);
	}
	/* The PCK CRL in place of the root CRL: not signed by the root. */
	s = sample_field("pck_crl", &holder);
	assert_int_equal(collateral_with("root_ca_crl", json_string(s), &c),
			 DD_OK);
	(void)verify(quote, len, TDX_NOW, c, &r);
	assert_int_equal(r.reason, DD_QV_CRL);
	dd_quote_result_free(&r);
	dd_collateral_free(c);
	/* The PCK CRL issuer chain in place of the TCB signing chain. */
	s = json_string_value(json_object_get(holder, "pck_crl_issuer_chain"));
	assert_int_equal(collateral_with("tcb_info_issuer_chain",
					 json_string(s), &c), DD_OK);
	(void)verify(quote, len, TDX_NOW, c, &r);
	assert_int_equal(r.reason, DD_QV_COLLATERAL_SIGNATURE);
	assert_non_null(strstr(r.detail, "TCB Signing"));
	dd_quote_result_free(&r);
	dd_collateral_free(c);
	/* The root CRL in place of the PCK CRL: the leaf has no CRL. */
	s = json_string_value(json_object_get(holder, "root_ca_crl"));
	assert_int_equal(collateral_with("pck_crl", json_string(s), &c),
			 DD_OK);
	(void)verify(quote, len, TDX_NOW, c, &r);
	assert_int_equal(r.reason, DD_QV_CRL);
	dd_quote_result_free(&r);
	dd_collateral_free(c);
	json_decref(holder);
	free(quote);
}

static void collateral_parse_errors(void **state)
{
	static const char *const fields[] = {
		"tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
		"qe_identity", "qe_identity_signature",
		"qe_identity_issuer_chain", "pck_crl_issuer_chain",
		"root_ca_crl", "pck_crl",
	};
	dd_collateral *c = NULL;
	char why[200];

	(void)state;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		assert_int_equal(collateral_with(fields[i], NULL, &c),
				 DD_ERR_INVALID);
		assert_null(c);
		assert_int_equal(collateral_with(fields[i], json_integer(1),
						 &c), DD_ERR_INVALID);
		assert_int_equal(collateral_with(fields[i], json_string("ab"),
						 &c), DD_ERR_INVALID);
		assert_int_equal(collateral_with(fields[i], json_string(""),
						 &c), DD_ERR_INVALID);
	}
	assert_int_equal(collateral_with("tcb_info", json_string("[1]"), &c),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collateral_parse("[]", 2, &c, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collateral_parse("{", 1, &c, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collateral_parse("{}", DD_COLLATERAL_MAX_LEN + 1,
					     &c, why, sizeof why),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_collateral_parse("{}", 2, &c, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "tcb_info"));
	dd_collateral_free(NULL);
}

/*
 * Every bit of header, body, signature and attestation key of the first
 * sample, one bit of every other byte (QE report, its signature, auth
 * data, lengths, the PEM chain, padding; all of the other samples): no
 * flip verifies, and each region fails for its own reason.
 */
static void bit_flips_never_verify(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);
		dd_quote_result r;

		for (size_t bit = 0; bit < len * 8; bit++) {
			size_t at = bit / 8;
			dd_err_t rc;

			/* First sample: every bit up to the attestation
			 * key, then one bit per byte. The others: one bit
			 * per byte, every 5th byte of the chain. Keeps the
			 * valgrind run within its time limit. */
			if ((at >= 764 || i > 0) && bit % 8 != at % 8)
				continue;
			if (at >= OFF_PEM && i > 0 && at % 5 != 0)
				continue;
			raw[at] ^= (uint8_t)(1u << (bit % 8));
			rc = verify(raw, len, TDX_NOW, NULL, &r);
			assert_int_not_equal(rc, DD_OK);
			assert_int_not_equal(r.reason, DD_QV_OK);
			if (at >= 8 && at < 632)
				assert_int_equal(r.reason,
						 DD_QV_QUOTE_SIGNATURE);
			else if (at >= 636 && at < 700)
				assert_int_equal(r.reason,
						 DD_QV_QUOTE_SIGNATURE);
			else if (at >= 700 && at < 764)
				assert_true(r.reason == DD_QV_ATTESTATION_KEY ||
					    r.reason == DD_QV_QUOTE_SIGNATURE);
			else if (at >= OFF_QE_REPORT_DATA && at < OFF_QE_SIG)
				assert_int_equal(r.reason,
						 DD_QV_QE_REPORT_DATA);
			else if (at >= OFF_QE_REPORT && at < OFF_AUTH - 2)
				assert_int_equal(r.reason,
						 DD_QV_QE_REPORT_SIGNATURE);
			else if (at >= OFF_AUTH && at < OFF_AUTH + 32)
				assert_int_equal(r.reason,
						 DD_QV_QE_REPORT_DATA);
			dd_quote_result_free(&r);
			raw[at] ^= (uint8_t)(1u << (bit % 8));
		}
		free(raw);
	}
}

/* With collateral the chain is checked against CRLs too: a sparser run. */
static void bit_flips_with_collateral(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_collateral *c = load_collateral();
	dd_quote_result r;

	(void)state;
	for (size_t at = 0; at < len; at += 7) {
		raw[at] ^= (uint8_t)(1u << (at % 8));
		assert_int_not_equal(verify(raw, len, TDX_NOW, c, &r), DD_OK);
		dd_quote_result_free(&r);
		raw[at] ^= (uint8_t)(1u << (at % 8));
	}
	dd_collateral_free(c);
	free(raw);
}

static void truncation_and_extension(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);
		uint8_t *ext = calloc(1, len + 16);
		dd_quote_result r;

		for (size_t n = 0; n < PROPER_LEN; n++) {
			assert_int_equal(verify(raw, n, TDX_NOW, NULL, &r),
					 DD_ERR_TRUNCATED);
			assert_int_equal(r.reason, DD_QV_MALFORMED);
			dd_quote_result_free(&r);
		}
		memcpy(ext, raw, len);
		for (size_t extra = 1; extra <= 16; extra++) {
			ext[len + extra - 1] = 0x5a;
			assert_int_not_equal(verify(ext, len + extra, TDX_NOW,
						    NULL, &r), DD_OK);
			assert_int_equal(r.reason, DD_QV_MALFORMED);
			dd_quote_result_free(&r);
			ext[len + extra - 1] = 0;
		}
		free(ext);
		free(raw);
	}
}

static void simulated_quotes(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	dd_quote_verify_opts dev = {.now = TDX_NOW, .allow_simulated = 1};
	dd_quote_verify_opts prod = {.now = TDX_NOW};
	dd_quote_sim_params p;
	dd_quote_result r;
	dd_buf b;

	(void)state;
	assert_non_null(key);
	memset(&p, 0, sizeof p);
	memset(p.body.mrtd, 0x42, sizeof p.body.mrtd);
	for (int v = 4; v <= 5; v++) {
		p.version = (uint16_t)v;
		p.body_type = v == 5 ? DD_QUOTE_BODY_TD15 : 0;
		dd_buf_init(&b, DD_QUOTE_MAX_LEN);
		assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_OK);

		assert_int_equal(dd_quote_verify_bytes(b.data, b.len, &prod,
						       &r), DD_ERR_FORBIDDEN);
		assert_int_equal(r.reason, DD_QV_SIMULATED_REFUSED);
		assert_int_equal(r.checks, 0);
		dd_quote_result_free(&r);

		assert_int_equal(dd_quote_verify_bytes(b.data, b.len, &dev,
						       &r), DD_OK);
		assert_true(r.simulated);
		assert_int_equal(r.checks,
				 DD_QV_CHECK_QUOTE_SIG | DD_QV_CHECK_TD_ATTRS);
		assert_int_equal(r.tcb_status, DD_TCB_NOT_EVALUATED);
		dd_quote_result_free(&r);

		/* Integrity is still checked: no flip verifies. */
		for (size_t bit = 0; bit < b.len * 8; bit++) {
			b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(dd_quote_verify_bytes(
				b.data, b.len, &dev, &r), DD_OK);
			dd_quote_result_free(&r);
			b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		dd_buf_free(&b);
	}

	/* A debug TD is refused unless asked for. */
	p.version = 4;
	p.body_type = 0;
	p.body.td_attributes[0] = DD_TD_ATTR_DEBUG;
	dd_buf_init(&b, DD_QUOTE_MAX_LEN);
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_OK);
	assert_int_equal(dd_quote_verify_bytes(b.data, b.len, &dev, &r),
			 DD_ERR_FORBIDDEN);
	assert_int_equal(r.reason, DD_QV_TD_DEBUG);
	assert_true(r.td_debug);
	dd_quote_result_free(&r);
	dev.allow_debug = 1;
	assert_int_equal(dd_quote_verify_bytes(b.data, b.len, &dev, &r),
			 DD_OK);
	assert_true(r.td_debug);
	dd_quote_result_free(&r);
	dd_buf_free(&b);
	EVP_PKEY_free(key);
}

static void names(void **state)
{
	dd_tcb_status s;

	(void)state;
	for (int i = 0; i < DD_QV__COUNT; i++)
		assert_string_not_equal(dd_qv_reason_name((dd_qv_reason)i),
					"unknown");
	assert_string_equal(dd_qv_reason_name(DD_QV__COUNT), "unknown");
	for (int i = 1; i < DD_TCB__COUNT; i++) {
		assert_int_equal(dd_tcb_status_parse(
			dd_tcb_status_name((dd_tcb_status)i), &s), DD_OK);
		assert_int_equal(s, i);
	}
	assert_int_equal(dd_tcb_status_parse("NotEvaluated", &s),
			 DD_ERR_INVALID);
	assert_int_equal(dd_tcb_status_parse("uptodate", &s), DD_ERR_INVALID);
	assert_string_equal(dd_tcb_status_name(DD_TCB__COUNT), "Unknown");
}

/* R17: every allocation failure is clean (ASan reports any leak). */
static void allocation_failures(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	size_t qlen, clen;
	uint8_t *quote = tdx_load("dcap-qvl-tdx_quote.bin", &qlen);
	uint8_t *json = tdx_load("dcap-qvl-tdx_quote_collateral.json", &clen);
	unsigned long n;
	int done = 0;

	dd_json_setup();
	for (n = 1; !done && n < 2000; n++) {
		dd_collateral *c = NULL;
		dd_quote_result r;
		dd_err_t rc;

		dd_alloc_fail_at(n);
		rc = dd_collateral_parse(json, clen, &c, NULL, 0);
		if (rc == DD_OK) {
			rc = verify(quote, qlen, TDX_NOW, c, &r);
			/*
			 * jansson can drop a member when an allocation
			 * inside json_loadb fails yet still return the
			 * object; the verifier then sees a malformed (but
			 * still signed) document: INVALID, never a pass.
			 */
			assert_true(rc == DD_OK || rc == DD_ERR_NOMEM ||
				    (rc == DD_ERR_INVALID &&
				     r.reason == DD_QV_COLLATERAL_FORMAT));
			if (rc == DD_OK)
				assert_int_equal(r.tcb_status,
						 DD_TCB_UP_TO_DATE);
			dd_quote_result_free(&r);
		} else {
			assert_true(rc == DD_ERR_NOMEM ||
				    rc == DD_ERR_INVALID);
			assert_null(c);
		}
		/* Stop once the nth allocation is past everything done. */
		done = dd_alloc_count() < n;
		dd_alloc_fail_at(0);
		dd_collateral_free(c);
	}
	assert_true(done);
	free(json);
	free(quote);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(real_quotes_verify_offline),
		cmocka_unit_test(certificate_validity_window),
		cmocka_unit_test(collateral_up_to_date),
		cmocka_unit_test(collateral_with_other_quotes),
		cmocka_unit_test(collateral_dates),
		cmocka_unit_test(collateral_tampering),
		cmocka_unit_test(collateral_parse_errors),
		cmocka_unit_test(bit_flips_never_verify),
		cmocka_unit_test(bit_flips_with_collateral),
		cmocka_unit_test(truncation_and_extension),
		cmocka_unit_test(simulated_quotes),
		cmocka_unit_test(names),
		cmocka_unit_test(allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
