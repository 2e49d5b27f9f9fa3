/*
 * test_jwt.c: compact JWS verification and claim checks (src/auth/jwt.c)
 * against tokens signed here with OpenSSL, plus the vectors that
 * python3-jwt made (tests/data/jwt/, see make_vectors.py there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/jwk.h"
#include "auth/jwt.h"
#include "auth/signer.h"
#include "core/alloc.h"
#include "core/json.h"
#include "jwt_helper.h"

#define NOW 1750000000LL
#define ISS "https://issuer.example"
#define AUD "dd-agent"
#define HDR "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}"

static EVP_PKEY *rsa2048, *rsa3072, *rsa_rs, *ec256, *ec384, *stranger;
static dd_jwks *keys;
static char *jwks_doc;

static const dd_jwt_policy pol = {
	.algs = DD_JWA_ALL, .issuer = ISS, .audience = AUD, .leeway_s = 60,
	.max_age_s = 900,
};

static int group_setup(void **state)
{
	json_t *arr = json_array();

	(void)state;
	rsa2048 = th_rsa(2048);
	rsa3072 = th_rsa(3072);
	rsa_rs = th_rsa(2048);
	ec256 = th_ec("P-256");
	ec384 = th_ec("P-384");
	stranger = th_ec("P-256");
	json_array_append_new(arr, th_jwk(rsa2048, "rsa1", NULL));
	json_array_append_new(arr, th_jwk(rsa3072, "rsa3", "PS384"));
	json_array_append_new(arr, th_jwk(rsa_rs, "rs-only", "RS256"));
	json_array_append_new(arr, th_jwk(ec256, "ec1", "ES256"));
	json_array_append_new(arr, th_jwk(ec384, "ec384", NULL));
	jwks_doc = th_jwks(arr);
	assert_int_equal(dd_jwks_parse(jwks_doc, strlen(jwks_doc), 0, &keys,
				       NULL, 0), DD_OK);
	assert_int_equal(dd_jwks_count(keys), 5);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dd_jwks_free(keys);
	free(jwks_doc);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa3072);
	EVP_PKEY_free(rsa_rs);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(stranger);
	return 0;
}

/* Claims that pass pol at NOW, with one member replaced or added. */
static char *claims_with(const char *extra)
{
	return th_fmt("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
		      "\"sub\":\"repo:o/r:ref:refs/heads/main\","
		      "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld%s%s}",
		      NOW - 10, NOW - 10, NOW + 600, extra[0] ? "," : "",
		      extra);
}

/* Claims from scratch (JSON members without braces). */
static char *claims_raw(const char *members)
{
	return th_fmt("{%s}", members);
}

static dd_jwt_reason verify_at(const char *tok, const dd_jwt_policy *p,
			       long long now, json_t **claims)
{
	dd_jwt_result res;
	dd_err_t rc;

	rc = dd_jwt_verify(tok, strlen(tok), p, keys, now, claims, &res);
	assert_int_equal(rc, dd_jwt_reason_err(res.reason));
	if (res.reason == DD_JWT_OK)
		assert_string_equal(res.why, "");
	else
		assert_true(strlen(res.why) > 0);
	return res.reason;
}

static dd_jwt_reason verify(const char *tok)
{
	return verify_at(tok, &pol, NOW, NULL);
}

/* Signs claims (freed here) and expects the verdict. */
static void expect(EVP_PKEY *k, const char *alg, const char *kid,
		   char *claims, dd_jwt_reason want)
{
	char *tok = th_token(k, alg, kid, claims);
	dd_jwt_reason got = verify(tok);

	if (got != want)
		fail_msg("%s/%s: want %s, got %s for %s", alg, kid,
			 dd_jwt_reason_name(want), dd_jwt_reason_name(got),
			 claims);
	free(tok);
	free(claims);
}

static void test_good_tokens(void **state)
{
	json_t *claims = NULL;
	char *c = claims_with(""), *tok;

	(void)state;
	tok = th_token(rsa2048, "RS256", "rsa1", c);
	assert_int_equal(verify_at(tok, &pol, NOW, &claims), DD_JWT_OK);
	assert_non_null(claims);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")),
			    "repo:o/r:ref:refs/heads/main");
	json_decref(claims);
	free(tok);
	free(c);
	expect(rsa3072, "PS384", "rsa3", claims_with(""), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_with(""), DD_JWT_OK);
	expect(ec384, "ES384", "ec384", claims_with(""), DD_JWT_OK);
	expect(rsa_rs, "RS256", "rs-only", claims_with(""), DD_JWT_OK);
	/* A key without "alg" serves every algorithm of its family. */
	expect(rsa2048, "RS384", "rsa1", claims_with(""), DD_JWT_OK);
	expect(rsa2048, "RS512", "rsa1", claims_with(""), DD_JWT_OK);
	expect(rsa2048, "PS256", "rsa1", claims_with(""), DD_JWT_OK);
	expect(rsa2048, "PS512", "rsa1", claims_with(""), DD_JWT_OK);
	/* aud as an array containing ours; reals for times. */
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],"
		"\"iat\":1749999990.5,\"exp\":1750000600.25"), DD_JWT_OK);
	/* No nbf, and no iat when no age limit is set. */
	{
		dd_jwt_policy p = pol;
		char *cl = claims_raw("\"iss\":\"" ISS "\",\"aud\":\"" AUD
				      "\",\"exp\":1750000100");

		p.max_age_s = 0;
		tok = th_token(rsa2048, "RS256", "rsa1", cl);
		assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_OK);
		assert_int_equal(verify_at(tok, &pol, NOW, NULL),
				 DD_JWT_MISSING_CLAIM);
		free(tok);
		free(cl);
	}
}

static void test_times(void **state)
{
	(void)state;
	/* exp: leeway 60 s, and "now >= exp" is already expired. */
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1749999500,"
		"\"exp\":1749999941"), DD_JWT_OK);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1749999500,"
		"\"exp\":1749999940"), DD_JWT_EXPIRED);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1749999500,"
		"\"exp\":1749999940.9"), DD_JWT_EXPIRED);
	/* nbf */
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"nbf\":1750000060,\"exp\":1750000600"), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"nbf\":1750000061,\"exp\":1750000600"),
	       DD_JWT_NOT_YET_VALID);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"nbf\":1750000060.1,\"exp\":1750000600"),
	       DD_JWT_NOT_YET_VALID);
	/* iat in the future beyond the leeway */
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000060,"
		"\"exp\":1750000600"), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000061,"
		"\"exp\":1750000600"), DD_JWT_IAT_FUTURE);
	/* Maximum age 900 s (+60 s leeway) from iat, exp notwithstanding. */
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1749999040,"
		"\"exp\":1750003600"), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1749999039,"
		"\"exp\":1750003600"), DD_JWT_TOO_OLD);
	/* Types: strings, booleans, null are not NumericDates. */
	expect(ec256, "ES256", "ec1", claims_with("\"exp\":\"1750000600\""),
	       DD_JWT_MALFORMED);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"exp\":\"1750000600\""), DD_JWT_MALFORMED);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":true,"
		"\"exp\":1750000600"), DD_JWT_MALFORMED);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"nbf\":null,\"exp\":1750000600"), DD_JWT_MALFORMED);
	/* Missing exp; huge and negative values saturate, never wrap. */
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000"),
	       DD_JWT_MISSING_CLAIM);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"exp\":9223372036854775807"), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"exp\":1e300"), DD_JWT_OK);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"exp\":-9223372036854775807"), DD_JWT_EXPIRED);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":-1e300,"
		"\"exp\":1750000600"), DD_JWT_TOO_OLD);
	expect(ec256, "ES256", "ec1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1750000000,"
		"\"nbf\":9223372036854775807,\"exp\":1750000600"),
	       DD_JWT_NOT_YET_VALID);
}

static void test_issuer_audience(void **state)
{
	dd_jwt_policy p = pol;
	char *tok, *c;

	(void)state;
	expect(rsa2048, "RS256", "rsa1", claims_with(
		"\"iss\":\"https://issuer.example/\""), DD_JWT_MALFORMED);
	/* (duplicate "iss" above: refused before any claim is read) */
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"https://issuer.example/\",\"aud\":\"" AUD "\","
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_ISSUER);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"HTTPS://ISSUER.EXAMPLE\",\"aud\":\"" AUD "\","
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_ISSUER);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\","
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_ISSUER);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"aud\":\"" AUD "\",\"iat\":1750000000,\"exp\":1750000600"),
	       DD_JWT_MISSING_CLAIM);
	/* aud: string, array, empty array, wrong types, missing. */
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"dd-agent2\","
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":\"dd-agen\","
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":[],"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",7],"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":{\"" AUD "\":1},"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":1,"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"aud\":[[\"" AUD "\"]],"
		"\"iat\":1750000000,\"exp\":1750000600"), DD_JWT_BAD_AUDIENCE);
	expect(rsa2048, "RS256", "rsa1", claims_raw(
		"\"iss\":\"" ISS "\",\"iat\":1750000000,\"exp\":1750000600"),
	       DD_JWT_MISSING_CLAIM);
	/* No audience configured: tokens for anyone are refused. */
	p.audience = NULL;
	c = claims_raw("\"iss\":\"" ISS "\",\"iat\":1750000000,"
		       "\"exp\":1750000600");
	tok = th_token(rsa2048, "RS256", "rsa1", c);
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_OK);
	free(tok);
	free(c);
	c = claims_with("");
	tok = th_token(rsa2048, "RS256", "rsa1", c);
	free(c);
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_BAD_AUDIENCE);
	/* No issuer configured: nothing passes. */
	p = pol;
	p.issuer = NULL;
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_BAD_ISSUER);
	free(tok);
}

/* Builds a token from raw header and payload texts. */
static char *raw_token(EVP_PKEY *k, const char *alg, const char *header,
		       const char *payload)
{
	return th_sign_raw(k, alg, header, payload, NULL, 0);
}

static void test_algorithms(void **state)
{
	dd_jwt_policy p = pol;
	char *c = claims_with(""), *tok, *pem = NULL;
	BIO *bio;
	long pem_len;

	(void)state;
	/* alg "none", with and without a signature. */
	{
		char *h = th_b64s("{\"alg\":\"none\",\"kid\":\"rsa1\"}");
		char *b = th_b64s(c);

		tok = th_fmt("%s.%s.", h, b);
		assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
		free(tok);
		tok = th_fmt("%s.%s.c2ln", h, b);
		assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
		free(tok);
		free(h);
		free(b);
	}
	/* HS256 keyed with the RSA public key's PEM: the classic attack. */
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa2048), 1);
	pem_len = BIO_get_mem_data(bio, &pem);
	tok = th_sign_raw(NULL, "HS256", "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}",
			  c, pem, (size_t)pem_len);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	p.algs = ~0u;
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_BAD_ALG);
	free(tok);
	BIO_free(bio);
	/* Unknown, missing, mistyped, lower-case alg. */
	tok = raw_token(rsa2048, "RS256", "{\"alg\":\"RS1\",\"kid\":\"rsa1\"}",
			c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"kid\":\"rsa1\"}", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"alg\":256,\"kid\":\"rsa1\"}", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = raw_token(rsa2048, "RS256",
			"{\"alg\":\"rs256\",\"kid\":\"rsa1\"}", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	/* Allowed by nobody: the caller's allowlist rules. */
	p = pol;
	p.algs = DD_JWA_RS256;
	tok = th_token(rsa3072, "PS384", "rsa3", c);
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_BAD_ALG);
	p.algs = 0;
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_BAD_ALG);
	free(tok);
	/* Family mismatch both ways, and a curve mismatch. */
	tok = th_token(ec256, "ES256", "rsa1", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = th_token(rsa2048, "RS256", "ec1", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = th_token(rsa2048, "PS256", "ec384", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = th_token(ec384, "ES384", "ec1", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	/* The JWK says RS256 (or PS384): another RSA alg is refused. */
	tok = th_token(rsa_rs, "PS256", "rs-only", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = th_token(rsa_rs, "RS512", "rs-only", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	tok = th_token(rsa3072, "RS384", "rsa3", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_ALG);
	free(tok);
	/* PS and RS with the same hash are not interchangeable. */
	{
		char *rs = th_token(rsa2048, "RS256", "rsa1", c);
		char *h = th_b64s("{\"alg\":\"PS256\",\"kid\":\"rsa1\","
				  "\"typ\":\"JWT\"}");
		char *swapped = th_fmt("%s%s", h, strchr(rs, '.'));

		assert_int_equal(verify(swapped), DD_JWT_BAD_SIGNATURE);
		free(swapped);
		free(h);
		free(rs);
	}
	free(c);
}

static void test_kid(void **state)
{
	char *c = claims_with(""), *tok;

	(void)state;
	tok = th_token(rsa2048, "RS256", "nobody", c);
	assert_int_equal(verify(tok), DD_JWT_UNKNOWN_KID);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\"}", c);
	assert_int_equal(verify(tok), DD_JWT_NO_KID);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"\"}",
			c);
	assert_int_equal(verify(tok), DD_JWT_NO_KID);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":null}",
			c);
	assert_int_equal(verify(tok), DD_JWT_NO_KID);
	free(tok);
	tok = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":1}", c);
	assert_int_equal(verify(tok), DD_JWT_MALFORMED);
	free(tok);
	/* A case-variant kid is another kid. */
	tok = th_token(rsa2048, "RS256", "RSA1", c);
	assert_int_equal(verify(tok), DD_JWT_UNKNOWN_KID);
	free(tok);
	/* Signed by a key we do not know, under a kid we do. */
	tok = th_token(stranger, "ES256", "ec1", c);
	assert_int_equal(verify(tok), DD_JWT_BAD_SIGNATURE);
	free(tok);
	/* Token-supplied key material is ignored, never trusted. */
	{
		json_t *jwk = th_jwk(stranger, "ec1", NULL);
		char *js = json_dumps(jwk, JSON_COMPACT);
		char *h = th_fmt("{\"alg\":\"ES256\",\"kid\":\"ec1\","
				 "\"jwk\":%s,\"jku\":"
				 "\"https://evil.example/jwks\"}", js);

		tok = raw_token(stranger, "ES256", h, c);
		assert_int_equal(verify(tok), DD_JWT_BAD_SIGNATURE);
		free(tok);
		free(h);
		free(js);
		json_decref(jwk);
	}
	free(c);
}

/* Replaces part i (0..2) of tok with s; returns a new token. */
static char *with_part(const char *tok, int i, const char *s)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');

	if (i == 0)
		return th_fmt("%s%s", s, d1);
	if (i == 1)
		return th_fmt("%.*s.%s%s", (int)(d1 - tok), tok, s, d2);
	return th_fmt("%.*s.%s", (int)(d2 - tok), tok, s);
}

static void test_signatures(void **state)
{
	char *c = claims_with(""), *tok, *bad, *s64;
	const char *d2;
	unsigned char *sig;
	size_t n;

	(void)state;
	/* Tampered payload (same header and signature). */
	tok = th_token(rsa2048, "RS256", "rsa1", c);
	{
		char *c2 = claims_with("\"admin\":true");
		char *p = th_b64s(c2);

		bad = with_part(tok, 1, p);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(p);
		free(c2);
		c2 = claims_raw("\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
				"\"iat\":1750000000,\"exp\":1760000000");
		p = th_b64s(c2);
		bad = with_part(tok, 1, p);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(p);
		free(c2);
	}
	/* Tampered signature, kept canonical base64url. */
	d2 = strrchr(tok, '.') + 1;
	sig = th_unb64(d2, &n);
	for (size_t i = 0; i < n; i += 37) {
		sig[i] ^= 0x01;
		s64 = th_b64(sig, n);
		bad = with_part(tok, 2, s64);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(s64);
		sig[i] ^= 0x01;
	}
	/* Truncated and extended RSA signatures. */
	s64 = th_b64(sig, n - 1);
	bad = with_part(tok, 2, s64);
	assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
	free(bad);
	free(s64);
	free(sig);
	free(tok);

	/* ES256: raw r||s of exactly 64 bytes; DER and other sizes fail. */
	tok = th_token(ec256, "ES256", "ec1", c);
	assert_int_equal(verify(tok), DD_JWT_OK);
	d2 = strrchr(tok, '.') + 1;
	sig = th_unb64(d2, &n);
	assert_int_equal(n, 64);
	{
		unsigned char big[66] = {0};
		size_t lens[] = {0, 1, 32, 63, 65, 66};

		memcpy(big, sig, 64);
		for (size_t i = 1; i < sizeof lens / sizeof lens[0]; i++) {
			s64 = th_b64(big, lens[i]);
			bad = with_part(tok, 2, s64);
			assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
			free(bad);
			free(s64);
		}
		/* r = 0 and s = 0 are never valid. */
		memset(big, 0, 32);
		s64 = th_b64(big, 64);
		bad = with_part(tok, 2, s64);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(s64);
		/* s and r swapped. */
		memcpy(big, sig + 32, 32);
		memcpy(big + 32, sig, 32);
		s64 = th_b64(big, 64);
		bad = with_part(tok, 2, s64);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(s64);
	}
	/* The DER form OpenSSL produces is not JWS. */
	{
		unsigned char der[80];
		unsigned char *pp = der;
		ECDSA_SIG *es = ECDSA_SIG_new();
		int dl;

		ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
			       BN_bin2bn(sig + 32, 32, NULL));
		dl = i2d_ECDSA_SIG(es, &pp);
		assert_true(dl > 0 && dl != 64);
		s64 = th_b64(der, (size_t)dl);
		bad = with_part(tok, 2, s64);
		assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
		free(bad);
		free(s64);
		ECDSA_SIG_free(es);
	}
	free(sig);
	free(tok);
	/* ES384 signature sizes. */
	tok = th_token(ec384, "ES384", "ec384", c);
	sig = th_unb64(strrchr(tok, '.') + 1, &n);
	assert_int_equal(n, 96);
	s64 = th_b64(sig, 64);
	bad = with_part(tok, 2, s64);
	assert_int_equal(verify(bad), DD_JWT_BAD_SIGNATURE);
	free(bad);
	free(s64);
	free(sig);
	free(tok);
	free(c);
}

static void test_structure(void **state)
{
	char *c = claims_with(""), *tok, *bad, *big;
	dd_jwt_policy p = pol;
	const char *d1;

	(void)state;
	tok = th_token(rsa2048, "RS256", "rsa1", c);
	d1 = strchr(tok, '.');
	/* Part counts. */
	bad = th_fmt("%.*s", (int)(strrchr(tok, '.') - tok), tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%s.AAAA", tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%.*s", (int)(d1 - tok), tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%.*s.%s", (int)(d1 - tok), tok, d1);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%s", d1);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	/* Padding, standard alphabet, spaces, trailing newline, NUL. */
	bad = th_fmt("%.*s=%s", (int)(d1 - tok), tok, d1);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%s=", tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt("%s\n", tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = th_fmt(" %s", tok);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = strdup(tok);
	bad[3] = '+';
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	bad[3] = tok[3];
	bad[strlen(bad) - 1] = '/';
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	{
		dd_jwt_result res;
		dd_jwt *t = NULL;

		bad[strlen(bad) - 1] = tok[strlen(tok) - 1];
		bad[5] = '\0';
		assert_int_equal(dd_jwt_decode(bad, strlen(tok), &pol, &t,
					       &res), DD_ERR_INVALID);
		assert_int_equal(res.reason, DD_JWT_MALFORMED);
		assert_null(t);
	}
	free(bad);
	/* Header / payload not JSON objects; duplicate keys; bad JSON. */
	bad = raw_token(rsa2048, "RS256", "[\"RS256\",\"rsa1\"]", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", HDR, "[1,2]");
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", HDR, "\"just a string\"");
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"alg\":\"none\"}", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"",
			c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"x\":\"a\\u0000b\"}", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	{
		char *dup = th_fmt("{\"exp\":1,%s", c + 1);

		bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\","
				"\"kid\":\"rsa1\"}", dup);
		assert_int_equal(verify(bad), DD_JWT_MALFORMED);
		free(bad);
		free(dup);
	}
	/* crit, even listing nothing we know; b64:false. */
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"crit\":[\"exp\"],\"exp\":1}", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"crit\":[]}", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"b64\":false}", c);
	assert_int_equal(verify(bad), DD_JWT_MALFORMED);
	free(bad);
	bad = raw_token(rsa2048, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
			"\"b64\":true}", c);
	assert_int_equal(verify(bad), DD_JWT_OK);
	free(bad);
	/* Garbage. */
	assert_int_equal(verify(""), DD_JWT_MALFORMED);
	{
		dd_jwt_result res;

		assert_int_equal(dd_jwt_verify(NULL, 0, &pol, keys, NOW, NULL,
					       &res), DD_ERR_INVALID);
		assert_int_equal(res.reason, DD_JWT_MALFORMED);
	}
	assert_int_equal(verify(".."), DD_JWT_MALFORMED);
	assert_int_equal(verify("a.b.c"), DD_JWT_MALFORMED);
	assert_int_equal(verify("Bearer x.y.z"), DD_JWT_MALFORMED);
	assert_int_equal(verify("\xff\xfe.\x01.\x7f"), DD_JWT_MALFORMED);
	/* Size: the global cap and a tighter caller cap. */
	big = malloc(DD_JWT_MAX_LEN + 2);
	memset(big, 'A', DD_JWT_MAX_LEN + 1);
	big[DD_JWT_MAX_LEN + 1] = '\0';
	big[10] = '.';
	big[20] = '.';
	assert_int_equal(verify(big), DD_JWT_TOO_LARGE);
	p.max_len = DD_JWT_MAX_LEN * 4;
	assert_int_equal(verify_at(big, &p, NOW, NULL), DD_JWT_TOO_LARGE);
	big[DD_JWT_MAX_LEN] = '\0';
	assert_int_equal(verify(big), DD_JWT_MALFORMED);
	free(big);
	p.max_len = strlen(tok) - 1;
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_TOO_LARGE);
	p.max_len = strlen(tok);
	assert_int_equal(verify_at(tok, &p, NOW, NULL), DD_JWT_OK);
	/* A big but legal token (a large claim) still verifies. */
	{
		char *pad = malloc(10001), *cl, *all;

		memset(pad, 'x', 10000);
		pad[10000] = '\0';
		cl = th_fmt("\"pad\":\"%s\"", pad);
		all = claims_with(cl);
		bad = th_token(rsa2048, "RS256", "rsa1", all);
		free(all);
		assert_true(strlen(bad) > 13000 &&
			    strlen(bad) <= DD_JWT_MAX_LEN);
		assert_int_equal(verify(bad), DD_JWT_OK);
		free(bad);
		free(cl);
		free(pad);
	}
	free(tok);
	free(c);
}

/* The step-by-step API: kid and alg before lookup; claims only after. */
static void test_steps(void **state)
{
	char *c = claims_with(""), *tok;
	dd_jwt_result res;
	json_t *claims = NULL;
	dd_jwt *t = NULL;
	size_t kl;

	(void)state;
	tok = th_token(ec256, "ES256", "ec1", c);
	assert_int_equal(dd_jwt_decode(tok, strlen(tok), &pol, &t, &res),
			 DD_OK);
	assert_string_equal(dd_jwt_kid(t, &kl), "ec1");
	assert_int_equal(kl, 3);
	assert_int_equal(dd_jwt_alg(t), DD_JWA_ES256);
	assert_int_equal(dd_jwt_claims(t, &claims), DD_ERR_INVALID);
	assert_null(claims);
	assert_int_equal(dd_jwt_check_claims(t, &pol, NOW, &res), DD_OK);
	assert_int_equal(dd_jwt_claims(t, &claims), DD_ERR_INVALID);
	/* The wrong key object for this kid. */
	assert_int_equal(dd_jwt_verify_signature(t, dd_jwks_find(keys, "rsa1",
								 4), &res),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(res.reason, DD_JWT_UNKNOWN_KID);
	assert_int_equal(dd_jwt_verify_signature(t, dd_jwks_find(keys, "ec1",
								 3), &res),
			 DD_OK);
	assert_int_equal(dd_jwt_claims(t, &claims), DD_OK);
	assert_true(json_is_object(claims));
	json_decref(claims);
	/* A later failed check withdraws the claims. */
	assert_int_equal(dd_jwt_check_claims(t, &pol, NOW + 100000, &res),
			 DD_ERR_UNAUTHORIZED);
	assert_int_equal(res.reason, DD_JWT_EXPIRED);
	assert_int_equal(dd_jwt_claims(t, &claims), DD_ERR_INVALID);
	dd_jwt_free(t);
	dd_jwt_free(NULL);
	/* No key set at all. */
	assert_int_equal(dd_jwt_verify(tok, strlen(tok), &pol, NULL, NOW,
				       &claims, &res), DD_ERR_NOT_FOUND);
	free(tok);
	free(c);
	/* Reason names and codes. */
	assert_string_equal(dd_jwt_reason_name(DD_JWT_EXPIRED), "expired");
	assert_string_equal(dd_jwt_reason_name(DD_JWT_BAD_AUDIENCE),
			    "bad_audience");
	assert_string_equal(dd_jwt_reason_name(DD_JWT__COUNT), "unknown");
	assert_int_equal(dd_jwt_reason_err(DD_JWT_TOO_LARGE),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_jwt_reason_err(DD_JWT_UNKNOWN_KID),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(dd_jwt_reason_err(DD_JWT_BAD_SIGNATURE),
			 DD_ERR_CRYPTO);
	assert_int_equal(dd_jwt_reason_err(DD_JWT_KEYS_UNAVAILABLE),
			 DD_ERR_UPSTREAM);
	for (int r = 0; r < DD_JWT__COUNT; r++)
		assert_string_not_equal(dd_jwt_reason_name(r), "unknown");
}

/*
 * R14: every one-byte change and every truncation of valid tokens is
 * refused (strict base64url means no byte has a second spelling).
 */
static void test_mutations(void **state)
{
	static const char subst[] = {'A', '_', '.', '=', '\0'};
	EVP_PKEY *ks[] = {rsa2048, ec256};
	const char *algs[] = {"PS256", "ES256"}, *kids[] = {"rsa1", "ec1"};
	char *c = claims_with(""), *tok, *m;
	size_t len;

	(void)state;
	for (int k = 0; k < 2; k++) {
		tok = th_token(ks[k], algs[k], kids[k], c);
		len = strlen(tok);
		m = malloc(len + 1);
		assert_int_equal(verify(tok), DD_JWT_OK);
		for (size_t i = 0; i < len; i++) {
			/* One substitute per position keeps valgrind quick. */
			memcpy(m, tok, len + 1);
			m[i] = subst[i % sizeof subst];
			if (m[i] != tok[i])
				assert_int_not_equal(verify(m), DD_JWT_OK);
			memcpy(m, tok, len + 1);
			m[i] ^= 0x20;
			if (m[i] != tok[i])
				assert_int_not_equal(verify(m), DD_JWT_OK);
			memcpy(m, tok, i);
			m[i] = '\0';
			assert_int_not_equal(verify(m), DD_JWT_OK);
		}
		free(m);
		free(tok);
	}
	free(c);
}

/* R17: each allocation of a full verification fails in turn, cleanly. */
static void test_torture(void **state)
{
	char *c = claims_with(""), *tok;
	unsigned long n, used;
	json_t *claims;
	dd_jwt_result res;
	dd_err_t rc;

	(void)state;
	tok = th_token(ec256, "ES256", "ec1", c);
	for (n = 1;; n++) {
		claims = NULL;
		dd_alloc_fail_at(n);
		rc = dd_jwt_verify(tok, strlen(tok), &pol, keys, NOW, &claims,
				   &res);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		/*
		 * Any refusal is acceptable: jansson 2.14 reports some
		 * allocation failures as syntax errors and, worse, drops a
		 * character from a string when growing its buffer fails
		 * (so "iss" may then not match). What must hold: no crash,
		 * no leak, a consistent result.
		 */
		assert_int_equal(rc == DD_OK, res.reason == DD_JWT_OK);
		assert_true(rc == DD_OK || claims == NULL);
		assert_true(rc != DD_OK || claims != NULL);
		json_decref(claims);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
	free(tok);
	free(c);
}

/* The local issuer (auth/signer.h) must produce what we accept. */
static void test_local_signer(void **state)
{
	dd_signer *sg = NULL;
	json_t *jwks = NULL, *cl, *got = NULL;
	dd_jwks *set = NULL;
	dd_jwt_result res;
	char *doc;
	dd_buf tok;

	(void)state;
	assert_int_equal(dd_signer_new(&sg), DD_OK);
	assert_int_equal(dd_signer_jwks(sg, &jwks), DD_OK);
	doc = json_dumps(jwks, JSON_COMPACT);
	assert_int_equal(dd_jwks_parse(doc, strlen(doc), 0, &set, NULL, 0),
			 DD_OK);
	assert_int_equal(dd_jwks_count(set), 1);
	cl = json_pack("{sssssIsI}", "iss", ISS, "aud", AUD, "iat",
		       (json_int_t)NOW, "exp", (json_int_t)(NOW + 300));
	dd_buf_init(&tok, DD_JWT_MAX_LEN);
	assert_int_equal(dd_signer_sign(sg, cl, &tok), DD_OK);
	assert_int_equal(dd_jwt_verify(dd_buf_str(&tok), tok.len, &pol, set,
				       NOW, &got, &res), DD_OK);
	assert_true(json_equal(got, cl));
	json_decref(got);
	/* ... and a key set it did not publish does not verify it. */
	assert_int_equal(dd_jwt_verify(dd_buf_str(&tok), tok.len, &pol, keys,
				       NOW, NULL, &res), DD_ERR_NOT_FOUND);
	dd_buf_free(&tok);
	json_decref(cl);
	dd_jwks_free(set);
	free(doc);
	json_decref(jwks);
	dd_signer_free(sg);
}

/* ---- vectors made by python3-jwt (tests/data/jwt/make_vectors.py) ---- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static dd_jwt_reason reason_by_name(const char *name)
{
	for (int r = 0; r < DD_JWT__COUNT; r++) {
		if (strcmp(dd_jwt_reason_name(r), name) == 0)
			return r;
	}
	fail_msg("unknown reason %s", name);
	return DD_JWT__COUNT;
}

static void test_python_vectors(void **state)
{
	const char *dir = getenv("DD_TEST_DATA");
	char path[1024], *text, *jwks;
	json_t *doc, *cases, *cs, *pj;
	dd_jwt_policy p = {0};
	dd_jwks *set = NULL;
	json_error_t je;
	size_t len, i;
	long long now;

	(void)state;
	snprintf(path, sizeof path, "%s/jwt/vectors.json",
		 dir != NULL ? dir : "tests/data");
	text = read_file(path, &len);
	doc = json_loadb(text, len, 0, &je);
	assert_non_null(doc);
	jwks = json_dumps(json_object_get(doc, "jwks"), JSON_COMPACT);
	assert_int_equal(dd_jwks_parse(jwks, strlen(jwks), 0, &set, NULL, 0),
			 DD_OK);
	assert_int_equal(dd_jwks_count(set),
			 json_integer_value(json_object_get(doc,
							    "usable_keys")));
	pj = json_object_get(doc, "policy");
	now = json_integer_value(json_object_get(doc, "now"));
	p.issuer = json_string_value(json_object_get(pj, "iss"));
	p.audience = json_string_value(json_object_get(pj, "aud"));
	p.leeway_s = (uint64_t)json_integer_value(json_object_get(pj,
								  "leeway"));
	p.max_age_s = (uint64_t)json_integer_value(json_object_get(pj,
								   "max_age"));
	p.algs = DD_JWA_ALL;
	cases = json_object_get(doc, "cases");
	assert_true(json_array_size(cases) >= 10);
	json_array_foreach(cases, i, cs) {
		const char *tok = json_string_value(json_object_get(cs,
								    "token"));
		const char *want = json_string_value(json_object_get(cs,
								     "expect"));
		const char *name = json_string_value(json_object_get(cs,
								     "name"));
		dd_jwt_result res;
		json_t *claims = NULL;

		dd_jwt_verify(tok, strlen(tok), &p, set, now, &claims, &res);
		if (res.reason != reason_by_name(want))
			fail_msg("vector %s: want %s, got %s (%s)", name, want,
				 dd_jwt_reason_name(res.reason), res.why);
		if (res.reason == DD_JWT_OK)
			assert_true(json_equal(claims,
					       json_object_get(cs, "claims")));
		json_decref(claims);
	}
	dd_jwks_free(set);
	free(jwks);
	json_decref(doc);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_tokens),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_issuer_audience),
		cmocka_unit_test(test_algorithms),
		cmocka_unit_test(test_kid),
		cmocka_unit_test(test_signatures),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_torture),
		cmocka_unit_test(test_local_signer),
		cmocka_unit_test(test_python_vectors),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
