#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "attest/quote.h"
#include "attest/quote_sim.h"
#include "core/buf.h"
#include "core/strutil.h"
#include "tdx_data.h"

/* The quote proper of every sample (without padding). */
#define PROPER_LEN 4936u
/* Offsets in the v4 samples (QE auth data is 32 bytes in all three). */
#define OFF_SIG_LEN 632u
#define OFF_CERT_TYPE 764u
#define OFF_CERT_SIZE 766u
#define OFF_QE_REPORT 770u
#define OFF_AUTH_LEN 1218u
#define OFF_INNER_TYPE 1252u
#define OFF_INNER_SIZE 1254u
#define OFF_PEM 1258u

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void assert_hex(const uint8_t *got, size_t n, const char *hex)
{
	char buf[300];

	assert_true(2 * n < sizeof buf);
	dd_hex_encode(got, n, buf);
	assert_string_equal(buf, hex);
}

static void every_sample_parses(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		const tdx_sample *s = &tdx_samples[i];
		size_t len;
		uint8_t *raw = tdx_load(s->file, &len);
		uint8_t want_vendor[16];
		char prefix[80];
		dd_quote q;

		assert_int_equal(len, s->len);
		assert_int_equal(dd_quote_parse(raw, len, &q), DD_OK);
		assert_int_equal(q.header.version, 4);
		assert_int_equal(q.header.att_key_type, DD_QUOTE_AK_ECDSA_P256);
		assert_int_equal(q.header.tee_type, DD_QUOTE_TEE_TDX);
		tdx_unhex("939a7233f79c4ca9940a0db3957f0607", want_vendor, 16);
		assert_memory_equal(q.header.qe_vendor_id, want_vendor, 16);
		assert_memory_equal(dd_quote_intel_vendor_id, want_vendor, 16);
		assert_int_equal(q.body.type, DD_QUOTE_BODY_TD10);
		assert_string_equal(dd_quote_body_name(&q), "TD1.0");
		assert_hex(q.body.mrtd, 48, s->mrtd);
		dd_hex_encode(q.body.report_data, strlen(s->rd_prefix) / 2,
			      prefix);
		assert_string_equal(prefix, s->rd_prefix);
		assert_false(dd_quote_td_is_debug(&q));
		assert_int_equal(q.sig_data_len, 4300);
		assert_int_equal(q.cert_type, DD_QUOTE_CERT_QE_REPORT);
		assert_int_equal(q.cert_size, 4166);
		assert_int_equal(q.qe_auth_data_len, 32);
		assert_int_equal(q.pck_cert_type, DD_QUOTE_CERT_PCK_CHAIN);
		assert_int_equal(q.pck_chain_len, 3678);
		assert_int_equal(q.padding_len, s->padding);
		assert_int_equal(q.signed_len, 632);
		assert_ptr_equal(q.signed_data, raw);
		assert_int_equal(q.raw_len, len);
		assert_int_equal(q.qe_report.isvprodid, 2);
		assert_hex(q.qe_report.mrsigner, 32,
			   "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf"
			   "6340c82e0e54a8c5");
		assert_memory_equal(q.pck_chain, "-----BEGIN CERTIFICATE-----",
				    27);
		assert_false(dd_quote_is_simulated(&q));
		assert_false(dd_quote_bytes_are_simulated(raw, len));
		free(raw);
	}
}

/* Every field comes from exactly its documented offset. */
static void field_offsets(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_quote q;
	const struct {
		const void *field;
		size_t off, n;
	} f[] = {
		{q.header.qe_vendor_id, 12, 16},
		{q.header.user_data, 28, 20},
		{q.body.tee_tcb_svn, 48, 16},
		{q.body.mrseam, 64, 48},
		{q.body.mrsignerseam, 112, 48},
		{q.body.seam_attributes, 160, 8},
		{q.body.td_attributes, 168, 8},
		{q.body.xfam, 176, 8},
		{q.body.mrtd, 184, 48},
		{q.body.mrconfigid, 232, 48},
		{q.body.mrowner, 280, 48},
		{q.body.mrownerconfig, 328, 48},
		{q.body.rtmr[0], 376, 48},
		{q.body.rtmr[1], 424, 48},
		{q.body.rtmr[2], 472, 48},
		{q.body.rtmr[3], 520, 48},
		{q.body.report_data, 568, 64},
		{q.signature, 636, 64},
		{q.attestation_key, 700, 64},
		{q.qe_report_raw, 770, 384},
		{q.qe_report.cpusvn, 770, 16},
		{q.qe_report.miscselect, 786, 4},
		{q.qe_report.attributes, 818, 16},
		{q.qe_report.mrenclave, 834, 32},
		{q.qe_report.mrsigner, 898, 32},
		{q.qe_report.report_data, 1090, 64},
		{q.qe_report_signature, 1154, 64},
	};

	(void)state;
	assert_int_equal(dd_quote_parse(raw, len, &q), DD_OK);
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		assert_memory_equal(f[i].field, raw + f[i].off, f[i].n);
	assert_int_equal(q.header.reserved1, raw[8] | raw[9] << 8);
	assert_int_equal(q.header.reserved2, raw[10] | raw[11] << 8);
	assert_int_equal(q.qe_report.isvprodid, raw[1026] | raw[1027] << 8);
	assert_int_equal(q.qe_report.isvsvn, raw[1028] | raw[1029] << 8);
	assert_ptr_equal(q.qe_auth_data, raw + 1220);
	assert_ptr_equal(q.pck_chain, raw + OFF_PEM);
	assert_int_equal(OFF_PEM + q.pck_chain_len, PROPER_LEN);
	/* TD 1.0 bodies carry no TD 1.5 fields. */
	for (size_t i = 0; i < 48; i++)
		assert_int_equal(q.body.mrservicetd[i], 0);
	free(raw);
}

static void debug_bit(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("edgeless-tdx-v4.bin", &len);
	dd_quote q;

	(void)state;
	raw[168] |= DD_TD_ATTR_DEBUG;
	assert_int_equal(dd_quote_parse(raw, len, &q), DD_OK);
	assert_true(dd_quote_td_is_debug(&q));
	free(raw);
}

/* Cutting anywhere inside the quote proper is TRUNCATED, nothing else. */
static void truncation_at_every_length(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);
		dd_quote q;

		for (size_t n = 0; n <= len; n++) {
			/* A fresh copy of exactly n bytes, so ASan sees any
			 * read past the end. */
			uint8_t *cut = malloc(n ? n : 1);
			dd_err_t rc;

			memcpy(cut, raw, n);
			rc = dd_quote_parse(cut, n, &q);
			if (n < PROPER_LEN) {
				assert_int_equal(rc, DD_ERR_TRUNCATED);
			} else {
				assert_int_equal(rc, DD_OK);
				assert_int_equal(q.padding_len, n - PROPER_LEN);
			}
			free(cut);
		}
		free(raw);
	}
}

static void trailing_bytes(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("edgeless-tdx-v4.bin", &len);
	uint8_t *ext = calloc(1, DD_QUOTE_MAX_LEN + 1);
	dd_quote q;

	(void)state;
	memcpy(ext, raw, len);
	/* Zero padding is tolerated up to the size cap, and counted. */
	assert_int_equal(dd_quote_parse(ext, len + 1, &q), DD_OK);
	assert_int_equal(q.padding_len, 1);
	assert_int_equal(dd_quote_parse(ext, DD_QUOTE_MAX_LEN, &q), DD_OK);
	assert_int_equal(dd_quote_parse(ext, DD_QUOTE_MAX_LEN + 1, &q),
			 DD_ERR_TOO_LARGE);
	/* Any non-zero trailing byte is garbage. */
	for (size_t extra = 1; extra <= 64; extra++) {
		for (size_t at = 0; at < extra; at++) {
			ext[len + at] = (uint8_t)(1 + at);
			assert_int_equal(dd_quote_parse(ext, len + extra, &q),
					 DD_ERR_INVALID);
			ext[len + at] = 0;
		}
	}
	free(ext);
	free(raw);
}

/*
 * Every single-bit flip anywhere: the parser never reads out of bounds
 * (ASan) and each region fails (or not) for the documented reason.
 */
static void bit_flips_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);
		dd_quote q;

		for (size_t bit = 0; bit < len * 8; bit++) {
			size_t at = bit / 8;
			dd_err_t rc;

			raw[at] ^= (uint8_t)(1u << (bit % 8));
			rc = dd_quote_parse(raw, len, &q);
			if (at < 8)
				/* version (4^1 = 5 is a v5 misread), key
				 * type, TEE type */
				assert_int_not_equal(rc, DD_OK);
			else if (at >= 12 && at < 28 && rc != DD_OK)
				/* only the simulated vendor id could matter */
				fail();
			else if (at < OFF_SIG_LEN || (at >= 636 && at < 764) ||
				 (at >= OFF_QE_REPORT && at < OFF_AUTH_LEN) ||
				 (at >= 1220 && at < OFF_INNER_TYPE) ||
				 (at >= OFF_PEM && at < PROPER_LEN))
				/* opaque to the parser: the verifier's job */
				assert_int_equal(rc, DD_OK);
			else if (at >= PROPER_LEN)
				assert_int_equal(rc, DD_ERR_INVALID);
			else
				assert_int_not_equal(rc, DD_OK);
			raw[at] ^= (uint8_t)(1u << (bit % 8));
		}
		free(raw);
	}
}

static void length_fields(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("edgeless-tdx-v4.bin", &len);
	uint8_t *m = malloc(len);
	dd_quote q;
	const struct {
		size_t off;
		int width;
		uint32_t value;
		dd_err_t want;
	} cases[] = {
		{OFF_SIG_LEN, 4, 4301, DD_ERR_TRUNCATED}, /* past the end */
		{OFF_SIG_LEN, 4, 4299, DD_ERR_INVALID},   /* inner too long */
		{OFF_SIG_LEN, 4, 0xffffffffu, DD_ERR_TRUNCATED},
		{OFF_SIG_LEN, 4, 0, DD_ERR_INVALID},
		{OFF_CERT_SIZE, 4, 4165, DD_ERR_INVALID},
		{OFF_CERT_SIZE, 4, 4167, DD_ERR_INVALID},
		{OFF_CERT_TYPE, 2, 5, DD_ERR_UNSUPPORTED},
		{OFF_CERT_TYPE, 2, 7, DD_ERR_UNSUPPORTED},
		{OFF_CERT_TYPE, 2, DD_QUOTE_CERT_SIMULATED, DD_ERR_INVALID},
		/* The nested type is then read from the wrong place. */
		{OFF_AUTH_LEN, 2, 33, DD_ERR_UNSUPPORTED},
		{OFF_AUTH_LEN, 2, 31, DD_ERR_UNSUPPORTED},
		{OFF_AUTH_LEN, 2, 0xffff, DD_ERR_INVALID},
		{OFF_INNER_TYPE, 2, 4, DD_ERR_UNSUPPORTED},
		{OFF_INNER_TYPE, 2, 6, DD_ERR_UNSUPPORTED},
		{OFF_INNER_SIZE, 4, 3677, DD_ERR_INVALID},
		{OFF_INNER_SIZE, 4, 3679, DD_ERR_INVALID},
		{OFF_INNER_SIZE, 4, 0, DD_ERR_INVALID},
		{0, 2, 3, DD_ERR_UNSUPPORTED},
		{0, 2, 6, DD_ERR_UNSUPPORTED},
		{2, 2, 3, DD_ERR_UNSUPPORTED},            /* ECDSA P-384 */
		{4, 4, 0, DD_ERR_UNSUPPORTED},            /* SGX */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(m, raw, len);
		if (cases[i].width == 2)
			put16(m + cases[i].off, (uint16_t)cases[i].value);
		else
			put32(m + cases[i].off, cases[i].value);
		assert_int_equal(dd_quote_parse(m, len, &q), cases[i].want);
	}
	/* A zero-length chain: shrink every enclosing length to match. */
	memcpy(m, raw, len);
	put32(m + OFF_SIG_LEN, 4300 - 3678);
	put32(m + OFF_CERT_SIZE, 4166 - 3678);
	put32(m + OFF_INNER_SIZE, 0);
	assert_int_equal(dd_quote_parse(m, OFF_PEM, &q), DD_ERR_INVALID);
	assert_int_equal(dd_quote_parse(NULL, 0, &q), DD_ERR_TRUNCATED);
	free(m);
	free(raw);
}

/* Inserts a v5 body descriptor into a v4 sample (signature aside). */
static uint8_t *to_v5(const uint8_t *v4, size_t len, uint16_t type,
		      size_t body_len, size_t *out_len)
{
	size_t extra = body_len - DD_QUOTE_TD10_LEN;
	uint8_t *v5 = calloc(1, len + 6 + extra);
	size_t tail = len - 48 - DD_QUOTE_TD10_LEN;

	memcpy(v5, v4, 48);
	put16(v5, 5);
	put16(v5 + 48, type);
	put32(v5 + 50, (uint32_t)body_len);
	memcpy(v5 + 54, v4 + 48, DD_QUOTE_TD10_LEN);
	for (size_t i = 0; i < extra; i++)
		v5[54 + DD_QUOTE_TD10_LEN + i] = (uint8_t)(0xa0 + i);
	memcpy(v5 + 54 + body_len, v4 + 48 + DD_QUOTE_TD10_LEN, tail);
	*out_len = len + 6 + extra;
	return v5;
}

static void version5_layouts(void **state)
{
	size_t len, n;
	uint8_t *raw = tdx_load("edgeless-tdx-v4.bin", &len);
	dd_quote v4, q;
	uint8_t *v5;

	(void)state;
	assert_int_equal(dd_quote_parse(raw, len, &v4), DD_OK);

	v5 = to_v5(raw, len, DD_QUOTE_BODY_TD10, DD_QUOTE_TD10_LEN, &n);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_OK);
	assert_int_equal(q.header.version, 5);
	assert_int_equal(q.body_descriptor_type, DD_QUOTE_BODY_TD10);
	assert_int_equal(q.body_descriptor_size, DD_QUOTE_TD10_LEN);
	assert_memory_equal(&q.body, &v4.body, sizeof q.body);
	assert_int_equal(q.signed_len, 48 + 6 + DD_QUOTE_TD10_LEN);
	assert_memory_equal(q.qe_report_raw, v4.qe_report_raw, 384);
	for (size_t k = 0; k < n; k++) {
		dd_err_t rc = dd_quote_parse(v5, k, &q);

		assert_int_equal(rc, DD_ERR_TRUNCATED);
	}
	put32(v5 + 50, DD_QUOTE_TD15_LEN);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_ERR_INVALID);
	put16(v5 + 48, 1);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_ERR_UNSUPPORTED);
	put16(v5 + 48, 9);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_ERR_UNSUPPORTED);
	free(v5);

	v5 = to_v5(raw, len, DD_QUOTE_BODY_TD15, DD_QUOTE_TD15_LEN, &n);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_OK);
	assert_int_equal(q.body.type, DD_QUOTE_BODY_TD15);
	assert_string_equal(dd_quote_body_name(&q), "TD1.5");
	assert_memory_equal(q.body.mrtd, v4.body.mrtd, 48);
	assert_memory_equal(q.body.report_data, v4.body.report_data, 64);
	assert_int_equal(q.body.tee_tcb_svn2[0], 0xa0);
	assert_int_equal(q.body.tee_tcb_svn2[15], 0xaf);
	assert_int_equal(q.body.mrservicetd[0], 0xb0);
	assert_int_equal(q.body.mrservicetd[47], 0xdf);
	assert_int_equal(q.signed_len, 48 + 6 + DD_QUOTE_TD15_LEN);
	put32(v5 + 50, DD_QUOTE_TD10_LEN);
	assert_int_equal(dd_quote_parse(v5, n, &q), DD_ERR_INVALID);
	free(v5);
	free(raw);
}

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static void simulated_layout(void **state)
{
	EVP_PKEY *key = new_key();
	dd_quote_sim_params p;
	dd_buf b;
	dd_quote q;

	(void)state;
	memset(&p, 0, sizeof p);
	memset(p.body.mrtd, 0x11, sizeof p.body.mrtd);
	memset(p.body.report_data, 0x22, sizeof p.body.report_data);
	dd_buf_init(&b, DD_QUOTE_MAX_LEN);
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_OK);
	assert_int_equal(b.len, 48 + 584 + 4 + 64 + 64 + 6 + 32);
	assert_int_equal(dd_quote_parse(b.data, b.len, &q), DD_OK);
	assert_true(dd_quote_is_simulated(&q));
	assert_true(dd_quote_bytes_are_simulated(b.data, b.len));
	assert_memory_equal(q.header.qe_vendor_id, "DD-SIMULATED-QE!", 16);
	assert_int_equal(q.cert_type, DD_QUOTE_CERT_SIMULATED);
	assert_memory_equal(q.body.mrtd, p.body.mrtd, 48);
	assert_memory_equal(b.data + b.len - 32, DD_QUOTE_SIM_MARKER, 32);
	assert_null(q.pck_chain);

	/* One marker without the other is malformed, never "real". */
	b.data[12] ^= 1;
	assert_int_equal(dd_quote_parse(b.data, b.len, &q), DD_ERR_INVALID);
	assert_false(dd_quote_bytes_are_simulated(b.data, b.len));
	b.data[12] ^= 1;
	b.data[b.len - 1] ^= 1;
	assert_int_equal(dd_quote_parse(b.data, b.len, &q), DD_ERR_INVALID);
	b.data[b.len - 1] ^= 1;
	put16(b.data + 632 + 4 + 128, DD_QUOTE_CERT_QE_REPORT);
	assert_int_equal(dd_quote_parse(b.data, b.len, &q), DD_ERR_INVALID);
	dd_buf_free(&b);

	/* v5 with a TD 1.5 body. */
	dd_buf_init(&b, DD_QUOTE_MAX_LEN);
	p.version = 5;
	p.body_type = DD_QUOTE_BODY_TD15;
	memset(p.body.mrservicetd, 0x33, sizeof p.body.mrservicetd);
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_OK);
	assert_int_equal(dd_quote_parse(b.data, b.len, &q), DD_OK);
	assert_true(dd_quote_is_simulated(&q));
	assert_int_equal(q.body.type, DD_QUOTE_BODY_TD15);
	assert_memory_equal(q.body.mrservicetd, p.body.mrservicetd, 48);
	dd_buf_free(&b);

	/* Unsupported combinations and a cap that is too small. */
	dd_buf_init(&b, 100);
	p.version = 4;
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_ERR_INVALID);
	p.version = 6;
	p.body_type = 0;
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_ERR_INVALID);
	p.version = 4;
	assert_int_equal(dd_quote_sim_build(&p, key, &b), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, 0);
	dd_buf_free(&b);
	EVP_PKEY_free(key);
}

/* Random multi-byte damage and random buffers: never a crash. */
static void random_damage(void **state)
{
	uint64_t seed = 0x5eed5eed1234ull;
	dd_quote q;

	(void)state;
	for (size_t i = 0; i < TDX_NSAMPLES; i++) {
		size_t len;
		uint8_t *raw = tdx_load(tdx_samples[i].file, &len);

		for (int round = 0; round < 3000; round++) {
			uint8_t *m = malloc(len);
			size_t n = len, hits = 1 + tdx_rand(&seed) % 8;

			memcpy(m, raw, len);
			for (size_t h = 0; h < hits; h++) {
				size_t at = tdx_rand(&seed) % len;

				m[at] = (uint8_t)tdx_rand(&seed);
			}
			if (tdx_rand(&seed) % 4 == 0)
				n = tdx_rand(&seed) % len;
			(void)dd_quote_parse(m, n, &q);
			free(m);
		}
		free(raw);
	}
	for (int round = 0; round < 2000; round++) {
		size_t n = tdx_rand(&seed) % 6000;
		uint8_t *m = malloc(n ? n : 1);

		for (size_t k = 0; k < n; k++)
			m[k] = (uint8_t)tdx_rand(&seed);
		if (n >= 8) {
			/* Mostly plausible headers, to get past them. */
			put16(m, (uint16_t)(4 + tdx_rand(&seed) % 2));
			put16(m + 2, 2);
			put32(m + 4, DD_QUOTE_TEE_TDX);
		}
		(void)dd_quote_parse(m, n, &q);
		free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_sample_parses),
		cmocka_unit_test(field_offsets),
		cmocka_unit_test(debug_bit),
		cmocka_unit_test(truncation_at_every_length),
		cmocka_unit_test(trailing_bytes),
		cmocka_unit_test(bit_flips_everywhere),
		cmocka_unit_test(length_fields),
		cmocka_unit_test(version5_layouts),
		cmocka_unit_test(simulated_layout),
		cmocka_unit_test(random_damage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
