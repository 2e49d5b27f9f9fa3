/*
 * test_jwk.c: JWKS parsing (src/auth/jwk.c) with keys generated here by
 * OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "auth/jwk.h"
#include "core/alloc.h"
#include "core/json.h"
#include "jwt_helper.h"

static EVP_PKEY *rsa2048, *rsa3072, *rsa1024, *ec256, *ec384, *ec521;

static int group_setup(void **state)
{
	(void)state;
	rsa2048 = th_rsa(2048);
	rsa3072 = th_rsa(3072);
	rsa1024 = th_rsa(1024);
	ec256 = th_ec("P-256");
	ec384 = th_ec("P-384");
	ec521 = th_ec("P-521");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa3072);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ec521);
	return 0;
}

/* ---- JWKS ---- */

static dd_err_t parse(const char *doc, dd_jwks **set, char *why,
		      size_t why_len)
{
	return dd_jwks_parse(doc, strlen(doc), 0, set, why, why_len);
}

/* Parses a one-key JWKS built from jwk and expects rc. */
static void expect_one(json_t *jwk, dd_err_t want, const char *why_part)
{
	char *doc = th_jwks(json_pack("[o]", jwk));
	dd_jwks *set = (dd_jwks *)1;
	char why[256] = "";
	dd_err_t rc;

	rc = parse(doc, &set, why, sizeof why);
	if (rc != want)
		fail_msg("want %s, got %s (%s) for %s", dd_errname(want),
			 dd_errname(rc), why, doc);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", why, why_part);
	if (rc == DD_OK)
		dd_jwks_free(set);
	else
		assert_null(set);
	free(doc);
}

/* Expects a one-key JWKS to parse with no usable key. */
static void expect_skipped(json_t *jwk)
{
	char *doc = th_jwks(json_pack("[o]", jwk));
	dd_jwks *set = NULL;
	char why[256] = "";
	dd_err_t rc;

	rc = parse(doc, &set, why, sizeof why);
	if (rc != DD_OK)
		fail_msg("%s: %s for %s", dd_errname(rc), why, doc);
	assert_int_equal(dd_jwks_count(set), 0);
	dd_jwks_free(set);
	free(doc);
}

static void test_good_set(void **state)
{
	json_t *keys = json_array(), *okp, *oct;
	dd_jwks *set = NULL;
	const dd_jwk *k;
	char why[256], *doc;

	(void)state;
	json_array_append_new(keys, th_jwk(rsa2048, "rsa-a", NULL));
	json_array_append_new(keys, th_jwk(rsa3072, "rsa-b", "PS384"));
	json_array_append_new(keys, th_jwk(ec256, "ec-a", "ES256"));
	json_array_append_new(keys, th_jwk(ec384, "ec-b", NULL));
	/* Keys that are not for us are skipped, not errors. */
	okp = json_pack("{ssssssss}", "kty", "OKP", "crv", "Ed25519", "x",
			"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid",
			"ed");
	oct = json_pack("{ssssss}", "kty", "oct", "k", "c2VjcmV0", "kid",
			"hmac");
	json_array_append_new(keys, okp);
	json_array_append_new(keys, oct);
	json_array_append_new(keys, th_jwk(ec521, "ec-521", NULL));
	k = NULL;
	{
		json_t *enc = th_jwk(rsa2048, "rsa-enc", NULL);
		json_t *nokid = th_jwk(rsa2048, "x", NULL);
		json_t *ops = th_jwk(rsa2048, "rsa-ops", NULL);
		json_t *eda = th_jwk(rsa2048, "rsa-oaep", "RSA-OAEP");

		json_object_set_new(enc, "use", json_string("enc"));
		json_object_del(nokid, "kid");
		json_object_set_new(ops, "key_ops", json_pack("[s]", "sign"));
		json_array_append_new(keys, enc);
		json_array_append_new(keys, nokid);
		json_array_append_new(keys, ops);
		json_array_append_new(keys, eda);
	}
	doc = th_jwks(keys);
	if (parse(doc, &set, why, sizeof why) != DD_OK)
		fail_msg("%s", why);
	assert_string_equal(why, "");
	assert_int_equal(dd_jwks_count(set), 4);

	k = dd_jwks_find(set, "rsa-a", 5);
	assert_non_null(k);
	assert_int_equal(dd_jwk_get_type(k), DD_JWK_RSA);
	assert_int_equal(dd_jwk_bits(k), 2048);
	assert_int_equal(dd_jwk_alg(k), 0);
	assert_string_equal(dd_jwk_use(k), "sig");
	assert_int_equal(EVP_PKEY_eq(dd_jwk_pkey(k), rsa2048), 1);
	k = dd_jwks_find(set, "rsa-b", 5);
	assert_int_equal(dd_jwk_bits(k), 3072);
	assert_int_equal(dd_jwk_alg(k), DD_JWA_PS384);
	assert_int_equal(EVP_PKEY_eq(dd_jwk_pkey(k), rsa3072), 1);
	k = dd_jwks_find(set, "ec-a", 4);
	assert_int_equal(dd_jwk_get_type(k), DD_JWK_EC_P256);
	assert_int_equal(EVP_PKEY_eq(dd_jwk_pkey(k), ec256), 1);
	k = dd_jwks_find(set, "ec-b", 4);
	assert_int_equal(dd_jwk_get_type(k), DD_JWK_EC_P384);
	assert_int_equal(dd_jwk_bits(k), 384);
	assert_int_equal(EVP_PKEY_eq(dd_jwk_pkey(k), ec384), 1);
	/* Lookups are exact, length included. */
	assert_null(dd_jwks_find(set, "rsa-", 4));
	assert_null(dd_jwks_find(set, "rsa-a2", 6));
	assert_null(dd_jwks_find(set, "RSA-A", 5));
	assert_null(dd_jwks_find(set, "ed", 2));
	assert_null(dd_jwks_find(set, "hmac", 4));
	assert_null(dd_jwks_find(set, "rsa-enc", 7));
	assert_string_equal(dd_jwk_kid(dd_jwks_at(set, 2)), "ec-a");
	assert_null(dd_jwks_at(set, 4));
	/* References keep a set alive. */
	assert_ptr_equal(dd_jwks_ref(set), set);
	dd_jwks_free(set);
	assert_int_equal(dd_jwks_count(set), 4);
	dd_jwks_free(set);
	dd_jwks_free(NULL);
	free(doc);

	/* Empty sets are fine; "keys" itself is required. */
	assert_int_equal(parse("{\"keys\":[]}", &set, why, sizeof why), DD_OK);
	assert_int_equal(dd_jwks_count(set), 0);
	dd_jwks_free(set);
	/* Unknown members are ignored, leading zeros on n tolerated. */
	{
		json_t *j = th_jwk(rsa2048, "lz", NULL);
		const char *n64 = json_string_value(json_object_get(j, "n"));
		unsigned char nb[300], *raw;
		size_t nl;
		char *n2;

		raw = th_unb64(n64, &nl);
		assert_true(nl < sizeof nb);
		nb[0] = 0;
		memcpy(nb + 1, raw, nl);
		free(raw);
		n2 = th_b64(nb, nl + 1);
		json_object_set_new(j, "n", json_string(n2));
		json_object_set_new(j, "x5c", json_pack("[s]", "MIIB"));
		free(n2);
		expect_one(j, DD_OK, NULL);
	}
}

static void test_skipped_keys(void **state)
{
	json_t *j;

	(void)state;
	expect_skipped(json_pack("{ss}", "kty", "OKP"));
	expect_skipped(json_pack("{ssss}", "kty", "oct", "kid", "k"));
	expect_skipped(th_jwk(ec521, "p521", NULL));
	j = th_jwk(ec256, "secp", NULL);
	json_object_set_new(j, "crv", json_string("secp256k1"));
	expect_skipped(j);
	j = th_jwk(rsa2048, "enc", NULL);
	json_object_set_new(j, "use", json_string("enc"));
	expect_skipped(j);
	j = th_jwk(rsa2048, "nokid", NULL);
	json_object_del(j, "kid");
	expect_skipped(j);
	j = th_jwk(rsa2048, "null-kid", NULL);
	json_object_set_new(j, "kid", json_null());
	expect_skipped(j);
	expect_skipped(th_jwk(rsa2048, "hs", "HS256"));
	expect_skipped(th_jwk(ec256, "eddsa", "EdDSA"));
	j = th_jwk(rsa2048, "ops", NULL);
	json_object_set_new(j, "key_ops", json_array());
	expect_skipped(j);
	/* Skipped keys are not validated further. */
	expect_skipped(json_pack("{sssi}", "kty", "OKP", "x", 5));
}

static void test_refused_keys(void **state)
{
	json_t *j;
	char *s;

	(void)state;
	/* Weak RSA. */
	expect_one(th_jwk(rsa1024, "weak", NULL), DD_ERR_INVALID,
		   "1024 bits");
	/* An EC point off the curve: change the last byte of y. */
	j = th_jwk(ec256, "off", NULL);
	s = strdup(json_string_value(json_object_get(j, "y")));
	s[strlen(s) - 2] = s[strlen(s) - 2] == 'A' ? 'B' : 'A';
	json_object_set_new(j, "y", json_string(s));
	free(s);
	expect_one(j, DD_ERR_INVALID, "not on P-256");
	/* x of one P-384 key with y of another. */
	{
		EVP_PKEY *other = th_ec("P-384");
		json_t *t = th_jwk(other, "t", NULL);

		j = th_jwk(ec384, "off384", NULL);
		json_object_set(j, "x", json_object_get(t, "x"));
		json_decref(t);
		EVP_PKEY_free(other);
		expect_one(j, DD_ERR_INVALID, "not on P-384");
	}
	/* A P-384 point on a P-256 label. */
	j = th_jwk(ec384, "mislabel", NULL);
	json_object_set_new(j, "crv", json_string("P-256"));
	expect_one(j, DD_ERR_INVALID, "too long");
	/* Short and long coordinates. */
	j = th_jwk(ec256, "short", NULL);
	json_object_set_new(j, "x", json_string("AAAA"));
	expect_one(j, DD_ERR_INVALID, "32 bytes");
	/* Missing and mistyped members. */
	j = th_jwk(rsa2048, "no-n", NULL);
	json_object_del(j, "n");
	expect_one(j, DD_ERR_INVALID, "\"n\"");
	j = th_jwk(rsa2048, "int-e", NULL);
	json_object_set_new(j, "e", json_integer(65537));
	expect_one(j, DD_ERR_INVALID, "\"e\"");
	j = th_jwk(ec256, "no-crv", NULL);
	json_object_del(j, "crv");
	expect_one(j, DD_ERR_INVALID, "crv");
	j = th_jwk(ec256, "no-y", NULL);
	json_object_del(j, "y");
	expect_one(j, DD_ERR_INVALID, "\"y\"");
	expect_one(json_pack("{ss}", "kid", "x"), DD_ERR_INVALID, "kty");
	expect_one(json_pack("{si}", "kty", 1), DD_ERR_INVALID, "kty");
	j = th_jwk(rsa2048, "k", NULL);
	json_object_set_new(j, "kid", json_integer(7));
	expect_one(j, DD_ERR_INVALID, "wrong type");
	j = th_jwk(rsa2048, "k", NULL);
	json_object_set_new(j, "alg", json_true());
	expect_one(j, DD_ERR_INVALID, "wrong type");
	j = th_jwk(rsa2048, "k", NULL);
	json_object_set_new(j, "key_ops", json_string("verify"));
	expect_one(j, DD_ERR_INVALID, "wrong type");
	/* Padded or standard-alphabet base64. */
	j = th_jwk(rsa2048, "pad", NULL);
	json_object_set_new(j, "e", json_string("AQAB=="));
	expect_one(j, DD_ERR_INVALID, "base64url");
	j = th_jwk(rsa2048, "plus", NULL);
	s = strdup(json_string_value(json_object_get(j, "n")));
	s[10] = '+';
	json_object_set_new(j, "n", json_string(s));
	free(s);
	expect_one(j, DD_ERR_INVALID, "base64url");
	/* Even modulus, even or tiny exponent, huge exponent. */
	j = th_jwk(rsa2048, "even", NULL);
	s = strdup(json_string_value(json_object_get(j, "n")));
	s[strlen(s) - 1] = 'A'; /* the last 6 bits become 0 */
	json_object_set_new(j, "n", json_string(s));
	free(s);
	expect_one(j, DD_ERR_INVALID, "not a valid RSA value");
	j = th_jwk(rsa2048, "e2", NULL);
	json_object_set_new(j, "e", json_string("Ag"));
	expect_one(j, DD_ERR_INVALID, "not a valid RSA value");
	j = th_jwk(rsa2048, "e1", NULL);
	json_object_set_new(j, "e", json_string("AQ"));
	expect_one(j, DD_ERR_INVALID, "not a valid RSA value");
	j = th_jwk(rsa2048, "ebig", NULL);
	json_object_set_new(j, "e", json_string("AQAAAAAAAAAAAQ"));
	expect_one(j, DD_ERR_INVALID, "too long");
	/* An "alg" of the wrong family or curve. */
	expect_one(th_jwk(ec256, "rs-on-ec", "RS256"), DD_ERR_INVALID,
		   "does not fit");
	expect_one(th_jwk(ec256, "es384-on-p256", "ES384"), DD_ERR_INVALID,
		   "does not fit");
	expect_one(th_jwk(rsa2048, "es-on-rsa", "ES256"), DD_ERR_INVALID,
		   "does not fit");
	/* kid: empty, too long. */
	expect_one(th_jwk(rsa2048, "", NULL), DD_ERR_INVALID, "kid");
	s = malloc(DD_JWK_MAX_KID + 2);
	memset(s, 'k', DD_JWK_MAX_KID + 1);
	s[DD_JWK_MAX_KID + 1] = '\0';
	expect_one(th_jwk(rsa2048, s, NULL), DD_ERR_INVALID, "kid");
	s[DD_JWK_MAX_KID] = '\0';
	expect_one(th_jwk(rsa2048, s, NULL), DD_OK, NULL);
	free(s);
}

/* Builds a P-256 JWK from raw coordinates. */
static json_t *p256_jwk(const BIGNUM *x, const BIGNUM *y)
{
	unsigned char xb[32], yb[32];
	char *xs, *ys;
	json_t *j;

	assert_int_equal(BN_bn2binpad(x, xb, 32), 32);
	assert_int_equal(BN_bn2binpad(y, yb, 32), 32);
	xs = th_b64(xb, 32);
	ys = th_b64(yb, 32);
	j = json_pack("{ssssssssss}", "kty", "EC", "crv", "P-256", "kid",
		      "nc", "x", xs, "y", ys);
	free(xs);
	free(ys);
	return j;
}

/*
 * A coordinate c and c + p name the same field element; only the reduced
 * spelling is a valid JWK, or one key would have two encodings.
 */
static void test_ec_noncanonical_coordinate(void **state)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *pt = EC_POINT_new(g);
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = BN_new(), *x = BN_new(), *y = BN_new();
	unsigned long v;

	(void)state;
	assert_int_equal(EC_GROUP_get_curve(g, p, NULL, NULL, ctx), 1);
	/* The smallest x that is on the curve. */
	for (v = 1;; v++) {
		BN_set_word(x, v);
		if (EC_POINT_set_compressed_coordinates(g, pt, x, 0, ctx) == 1)
			break;
	}
	ERR_clear_error();
	assert_int_equal(EC_POINT_get_affine_coordinates(g, pt, x, y, ctx), 1);
	expect_one(p256_jwk(x, y), DD_OK, NULL);
	BN_add(x, x, p);
	assert_true(BN_num_bits(x) <= 256);
	expect_one(p256_jwk(x, y), DD_ERR_INVALID, NULL);
	/* And a coordinate equal to p itself. */
	expect_one(p256_jwk(p, y), DD_ERR_INVALID, NULL);
	BN_free(p);
	BN_free(x);
	BN_free(y);
	BN_CTX_free(ctx);
	EC_POINT_free(pt);
	EC_GROUP_free(g);
}

static void test_refused_documents(void **state)
{
	char why[256], *doc, *big;
	dd_jwks *set = NULL;
	json_t *keys;
	size_t n;

	(void)state;
	assert_int_equal(parse("", &set, why, sizeof why), DD_ERR_INVALID);
	assert_int_equal(parse("garbage", &set, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(parse("[]", &set, why, sizeof why), DD_ERR_INVALID);
	assert_int_equal(parse("{}", &set, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "keys"));
	assert_int_equal(parse("{\"keys\":{}}", &set, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(parse("{\"keys\":[1]}", &set, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "keys[0] is not an object"));
	assert_int_equal(parse("{\"keys\":[],\"keys\":[]}", &set, why,
			       sizeof why), DD_ERR_INVALID);
	assert_int_equal(parse("{\"keys\":[{\"kty\":\"RSA\",\"kty\":\"EC\"}]}",
			       &set, why, sizeof why), DD_ERR_INVALID);
	assert_int_equal(parse("{\"keys\":[]} trailing", &set, why,
			       sizeof why), DD_ERR_INVALID);
	assert_null(set);

	/* Duplicate kids, even across key types. */
	keys = json_array();
	json_array_append_new(keys, th_jwk(rsa2048, "same", NULL));
	json_array_append_new(keys, th_jwk(ec256, "same", NULL));
	doc = th_jwks(keys);
	assert_int_equal(parse(doc, &set, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "duplicate"));
	assert_null(set);
	free(doc);
	/* One bad key spoils the set (no partial trust). */
	keys = json_array();
	json_array_append_new(keys, th_jwk(rsa2048, "good", NULL));
	json_array_append_new(keys, th_jwk(rsa1024, "weak", NULL));
	doc = th_jwks(keys);
	assert_int_equal(parse(doc, &set, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "keys[1]"));
	free(doc);

	/* Size: the byte cap and the member cap. */
	keys = json_array();
	for (unsigned i = 0; i <= DD_JWKS_MAX_KEYS; i++)
		json_array_append_new(keys, json_pack("{ss}", "kty", "OKP"));
	doc = th_jwks(keys);
	assert_int_equal(parse(doc, &set, why, sizeof why), DD_ERR_TOO_LARGE);
	free(doc);
	n = DD_JWKS_MAX_BYTES + 1;
	big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"keys\":[]}", 11);
	big[n] = '\0';
	assert_int_equal(dd_jwks_parse(big, n, 0, &set, why, sizeof why),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_jwks_parse(big, 100, 50, &set, NULL, 0),
			 DD_ERR_TOO_LARGE);
	free(big);
}

static void test_alg_names(void **state)
{
	(void)state;
	assert_int_equal(dd_jwa_parse("RS256", 5), DD_JWA_RS256);
	assert_int_equal(dd_jwa_parse("ES384", 5), DD_JWA_ES384);
	assert_int_equal(dd_jwa_parse("PS512", 5), DD_JWA_PS512);
	assert_int_equal(dd_jwa_parse("none", 4), 0);
	assert_int_equal(dd_jwa_parse("HS256", 5), 0);
	assert_int_equal(dd_jwa_parse("ES512", 5), 0);
	assert_int_equal(dd_jwa_parse("EdDSA", 5), 0);
	assert_int_equal(dd_jwa_parse("rs256", 5), 0);
	assert_int_equal(dd_jwa_parse("RS2560", 6), 0);
	assert_int_equal(dd_jwa_parse("RS25", 4), 0);
	assert_string_equal(dd_jwa_name(DD_JWA_PS384), "PS384");
	assert_string_equal(dd_jwa_name(0), "?");
	assert_string_equal(dd_jwa_name(DD_JWA_RS256 | DD_JWA_RS384), "?");
	assert_true(dd_jwa_fits(DD_JWA_PS256, DD_JWK_RSA));
	assert_false(dd_jwa_fits(DD_JWA_ES256, DD_JWK_RSA));
	assert_false(dd_jwa_fits(DD_JWA_RS256 | DD_JWA_ES256, DD_JWK_RSA));
	assert_false(dd_jwa_fits(DD_JWA_RS256 | DD_JWA_RS384, DD_JWK_RSA));
	assert_true(dd_jwa_fits(DD_JWA_ES256, DD_JWK_EC_P256));
	assert_false(dd_jwa_fits(DD_JWA_ES384, DD_JWK_EC_P256));
	assert_false(dd_jwa_fits(DD_JWA_RS256, DD_JWK_EC_P384));
}

/*
 * Every one-byte change, deletion and truncation of a valid JWKS parses
 * or fails cleanly (sanitizers watch for the rest).
 */
static void test_mutations(void **state)
{
	json_t *keys = json_array();
	char *doc, *m;
	dd_jwks *set;
	size_t len;
	dd_err_t rc;

	(void)state;
	json_array_append_new(keys, th_jwk(rsa2048, "r", "RS256"));
	json_array_append_new(keys, th_jwk(ec256, "e", NULL));
	doc = th_jwks(keys);
	len = strlen(doc);
	m = malloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		static const char subst[] = {'\0', 'A', '"', '-', '}', 0x7f};

		/* One substitute per position keeps valgrind quick. */
		memcpy(m, doc, len);
		m[i] = subst[i % sizeof subst];
		set = NULL;
		rc = dd_jwks_parse(m, len, 0, &set, NULL, 0);
		assert_true(rc == DD_OK || rc == DD_ERR_INVALID);
		dd_jwks_free(set);
		memcpy(m, doc, i);
		memcpy(m + i, doc + i + 1, len - i - 1);
		set = NULL;
		rc = dd_jwks_parse(m, len - 1, 0, &set, NULL, 0);
		assert_true(rc == DD_OK || rc == DD_ERR_INVALID);
		dd_jwks_free(set);
		set = NULL;
		rc = dd_jwks_parse(doc, i, 0, &set, NULL, 0);
		assert_int_equal(rc, DD_ERR_INVALID);
	}
	free(m);
	free(doc);
}

/* R17: every allocation of a parse fails in turn, cleanly. */
static void test_torture(void **state)
{
	json_t *keys = json_array();
	unsigned long n, used;
	dd_jwks *set;
	char *doc;
	dd_err_t rc;

	(void)state;
	json_array_append_new(keys, th_jwk(rsa2048, "r", "RS256"));
	json_array_append_new(keys, th_jwk(ec384, "e", NULL));
	json_array_append_new(keys, json_pack("{ss}", "kty", "OKP"));
	doc = th_jwks(keys);
	for (n = 1;; n++) {
		set = NULL;
		dd_alloc_fail_at(n);
		rc = dd_jwks_parse(doc, strlen(doc), 0, &set, NULL, 0);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		/* jansson reports some allocation failures as syntax errors */
		if (rc != DD_OK && rc != DD_ERR_NOMEM && rc != DD_ERR_INVALID)
			fail_msg("n=%lu: %s", n, dd_errname(rc));
		if (rc == DD_OK)
			assert_int_equal(dd_jwks_count(set), 2);
		dd_jwks_free(set);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_names),
		cmocka_unit_test(test_good_set),
		cmocka_unit_test(test_skipped_keys),
		cmocka_unit_test(test_refused_keys),
		cmocka_unit_test(test_ec_noncanonical_coordinate),
		cmocka_unit_test(test_refused_documents),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_torture),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
