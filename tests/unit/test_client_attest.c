/*
 * test_client_attest.c: the shell client's check of an agent's Noise
 * identity (client/client_attest.h), both ways: a good simulated quote is
 * accepted only with allow_simulated; a wrong binding, a wrong MRTD, a
 * tampered quote and every missing or malformed bundle field are refused
 * with the step that failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "attest/binding.h"
#include "attest/quote_sim.h"
#include "client/client_attest.h"
#include "core/b64.h"
#include "core/strutil.h"
#include "noise/static_key.h"

struct fx {
	EVP_PKEY *qkey;
	uint8_t pub[32], nonce[32], mrtd[48];
};

static int setup(void **state)
{
	static struct fx f;
	uint8_t priv[32];

	memset(&f, 0, sizeof f);
	f.qkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(f.qkey);
	assert_int_equal(dd_random_bytes(priv, sizeof priv), DD_OK);
	assert_int_equal(dd_static_key_public(priv, f.pub), DD_OK);
	assert_int_equal(dd_random_bytes(f.nonce, sizeof f.nonce), DD_OK);
	memset(f.mrtd, 0x5a, sizeof f.mrtd);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	EVP_PKEY_free(((struct fx *)*state)->qkey);
	return 0;
}

/* A simulated quote over report_data; flip: XOR into the body's MRTD
 * after signing (tampering). */
static json_t *bundle(struct fx *f, const uint8_t *rd_pub, int tamper)
{
	dd_quote_sim_params p;
	char pub_hex[65], nonce_hex[65];
	dd_buf q, b64;
	json_t *h;

	memset(&p, 0, sizeof p);
	p.version = 4;
	memcpy(p.body.mrtd, f->mrtd, sizeof f->mrtd);
	assert_int_equal(dd_binding_noise(f->nonce, 32, rd_pub,
					  p.body.report_data), DD_OK);
	dd_buf_init(&q, 1 << 16);
	assert_int_equal(dd_quote_sim_build(&p, f->qkey, &q), DD_OK);
	if (tamper)
		q.data[48 + 136] ^= 1;
	dd_buf_init(&b64, 1 << 17);
	assert_int_equal(dd_b64_encode(DD_B64_STD, q.data, q.len, &b64), DD_OK);
	dd_hex_encode(f->pub, 32, pub_hex);
	pub_hex[64] = '\0';
	dd_hex_encode(f->nonce, 32, nonce_hex);
	nonce_hex[64] = '\0';
	h = json_pack("{s:b, s:{s:s, s:s, s:s, s:s, s:s}}", "ok", 1, "noise",
		      "pubkey_hex", pub_hex, "quote_b64", dd_buf_str(&b64),
		      "nonce_hex", nonce_hex, "binding", DD_BINDING_NOISE_LABEL,
		      "ita_token", "");
	assert_non_null(h);
	dd_buf_free(&q);
	dd_buf_free(&b64);
	return h;
}

static dd_err_t check(json_t *h, int allow_sim, const uint8_t *mrtd,
		      dd_client_attest_result *res)
{
	dd_client_attest_opts o = {.now = 1767225600, .allow_simulated = allow_sim,
				   .expect_mrtd = mrtd};

	return dd_client_attest_check(h, &o, res);
}

static void simulated_only_with_the_flag(void **state)
{
	struct fx *f = *state;
	dd_client_attest_result res;
	json_t *h = bundle(f, f->pub, 0);

	assert_int_equal(check(h, 0, NULL, &res), DD_ERR_FORBIDDEN);
	assert_non_null(strstr(res.why, "quote: simulated"));
	assert_non_null(strstr(res.why, "--allow-simulated"));
	if (check(h, 1, NULL, &res) != DD_OK)
		fail_msg("%s", res.why);
	assert_int_equal(res.simulated, 1);
	assert_memory_equal(res.pubkey, f->pub, 32);
	assert_memory_equal(res.mrtd, f->mrtd, 48);
	json_decref(h);
}

static void wrong_binding_refused(void **state)
{
	struct fx *f = *state;
	dd_client_attest_result res;
	uint8_t other[32];
	json_t *h;

	memcpy(other, f->pub, 32);
	other[5] ^= 0x40;
	h = bundle(f, other, 0);
	assert_int_equal(check(h, 1, NULL, &res), DD_ERR_CRYPTO);
	assert_non_null(strstr(res.why, "binding:"));
	json_decref(h);
	/* The nonce is part of it too. */
	h = bundle(f, f->pub, 0);
	json_object_set_new(json_object_get(h, "noise"), "nonce_hex",
			    json_string("00000000000000000000000000000000"
					"00000000000000000000000000000000"));
	assert_int_equal(check(h, 1, NULL, &res), DD_ERR_CRYPTO);
	assert_non_null(strstr(res.why, "binding:"));
	json_decref(h);
}

static void mrtd_pin(void **state)
{
	struct fx *f = *state;
	dd_client_attest_result res;
	uint8_t wrong[48];
	json_t *h = bundle(f, f->pub, 0);

	memset(wrong, 0x5b, sizeof wrong);
	assert_int_equal(check(h, 1, wrong, &res), DD_ERR_CRYPTO);
	assert_non_null(strstr(res.why, "mrtd:"));
	assert_int_equal(check(h, 1, f->mrtd, &res), DD_OK);
	json_decref(h);
}

static void tampered_quote_refused(void **state)
{
	struct fx *f = *state;
	dd_client_attest_result res;
	json_t *h = bundle(f, f->pub, 1);

	assert_int_equal(check(h, 1, NULL, &res), DD_ERR_CRYPTO);
	assert_non_null(strstr(res.why, "quote: quote_signature"));
	json_decref(h);
}

static void set(json_t *h, const char *k, json_t *v)
{
	json_t *n = json_object_get(h, "noise");

	if (v == NULL)
		json_object_del(n, k);
	else
		json_object_set_new(n, k, v);
}

static void bundle_fields(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *key;
		const char *value;  /* NULL: removed */
		const char *why;
	} cases[] = {
		{"binding", NULL, "no `binding`"},
		{"binding", "devopsdefender/register/v1", "unknown binding"},
		{"pubkey_hex", NULL, "pubkey_hex"},
		{"pubkey_hex", "abcd", "pubkey_hex"},
		{"pubkey_hex", "ABCDEF0123456789ABCDEF0123456789"
			       "ABCDEF0123456789ABCDEF0123456789", "pubkey_hex"},
		{"pubkey_hex", "00000000000000000000000000000000"
			       "00000000000000000000000000000000", "low-order"},
		{"nonce_hex", "", "no `nonce_hex`"},
		{"nonce_hex", NULL, "no `nonce_hex`"},
		{"nonce_hex", "zz", "nonce_hex"},
		{"quote_b64", "", "no `quote_b64`"},
		{"quote_b64", NULL, "no `quote_b64`"},
		{"quote_b64", "not base64!", "quote_b64"},
		{"quote_b64", "AAAA", "quote: does not parse"},
	};
	dd_client_attest_result res;
	json_t *h;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		h = bundle(f, f->pub, 0);
		set(h, cases[i].key, cases[i].value != NULL ?
		    json_string(cases[i].value) : NULL);
		assert_int_not_equal(check(h, 1, NULL, &res), DD_OK);
		if (strstr(res.why, cases[i].why) == NULL)
			fail_msg("case %zu: %s", i, res.why);
		json_decref(h);
	}
	h = json_pack("{s:b}", "ok", 1);
	assert_int_equal(check(h, 1, NULL, &res), DD_ERR_INVALID);
	assert_non_null(strstr(res.why, "no `noise` object"));
	json_decref(h);
	h = json_pack("{s:s}", "noise", "x");
	assert_int_equal(check(h, 1, NULL, &res), DD_ERR_INVALID);
	json_decref(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simulated_only_with_the_flag),
		cmocka_unit_test(wrong_binding_refused),
		cmocka_unit_test(mrtd_pin),
		cmocka_unit_test(tampered_quote_refused),
		cmocka_unit_test(bundle_fields),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
