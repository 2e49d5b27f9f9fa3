/*
 * The ES256 signer, checked without the project's own verifier: the
 * public key is rebuilt from the published JWKS with OpenSSL, the
 * signature checked over header.payload, and the kid recomputed as the
 * RFC 7638 thumbprint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "auth/jwt.h"
#include "auth/signer.h"
#include "core/b64.h"
#include "core/json.h"

static EVP_PKEY *key_from_jwks(const json_t *jwks)
{
	json_t *k = json_array_get(json_object_get(jwks, "keys"), 0);
	const char *x = json_string_value(json_object_get(k, "x"));
	const char *y = json_string_value(json_object_get(k, "y"));
	uint8_t pt[65];
	dd_buf bx, by;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;

	dd_buf_init(&bx, 64);
	dd_buf_init(&by, 64);
	assert_int_equal(dd_b64_decode(DD_B64_URL, x, strlen(x), &bx), DD_OK);
	assert_int_equal(dd_b64_decode(DD_B64_URL, y, strlen(y), &by), DD_OK);
	assert_int_equal(bx.len, 32);
	assert_int_equal(by.len, 32);
	pt[0] = 4;
	memcpy(pt + 1, bx.data, 32);
	memcpy(pt + 33, by.data, 32);
	OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
	OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 65);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	dd_buf_free(&bx);
	dd_buf_free(&by);
	return pkey;
}

static int verify(EVP_PKEY *pkey, const char *token)
{
	const char *dot2 = strrchr(token, '.');
	dd_buf sig;
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *der = NULL;
	int der_len, ok;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	dd_buf_init(&sig, 128);
	if (dd_b64_decode(DD_B64_URL, dot2 + 1, strlen(dot2 + 1), &sig) != DD_OK ||
	    sig.len != 64) {
		ok = 0;
		goto out;
	}
	ECDSA_SIG_set0(es, BN_bin2bn(sig.data, 32, NULL), BN_bin2bn(sig.data + 32, 32, NULL));
	der_len = i2d_ECDSA_SIG(es, &der);
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)token,
			      (size_t)(dot2 - token)) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	dd_buf_free(&sig);
	return ok;
}

static json_t *part(const char *token, int which)
{
	const char *a = token, *b;
	dd_buf raw;
	json_t *v = NULL;

	for (int i = 0; i < which; i++)
		a = strchr(a, '.') + 1;
	b = strchr(a, '.');
	dd_buf_init(&raw, 4096);
	assert_int_equal(dd_b64_decode(DD_B64_URL, a, (size_t)(b - a), &raw), DD_OK);
	assert_int_equal(dd_json_parse(raw.data, raw.len, 4096, &v, NULL, 0), DD_OK);
	dd_buf_free(&raw);
	return v;
}

static void signs_verifiable_tokens(void **state)
{
	dd_signer *s = NULL;
	json_t *jwks = NULL, *claims, *h, *p;
	EVP_PKEY *pkey;
	dd_buf tok;
	char *bad;

	(void)state;
	assert_int_equal(dd_signer_new(&s), DD_OK);
	assert_int_equal(dd_signer_jwks(s, &jwks), DD_OK);
	pkey = key_from_jwks(jwks);
	claims = json_pack("{s:s, s:I, s:s}", "iss", "local", "exp", (json_int_t)2000000000,
			   "tdx_mrtd", "ab");
	dd_buf_init(&tok, 8192);
	assert_int_equal(dd_signer_sign(s, claims, &tok), DD_OK);
	assert_true(verify(pkey, dd_buf_str(&tok)));
	h = part(dd_buf_str(&tok), 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), dd_signer_kid(s));
	p = part(dd_buf_str(&tok), 1);
	assert_true(json_equal(p, claims));
	/* Any change to the signed part breaks the signature. */
	bad = strdup(dd_buf_str(&tok));
	bad[strchr(bad, '.') - bad + 3] ^= 1;
	assert_false(verify(pkey, bad));
	free(bad);
	json_decref(h);
	json_decref(p);
	json_decref(claims);
	json_decref(jwks);
	EVP_PKEY_free(pkey);
	dd_buf_free(&tok);
	dd_signer_free(s);
}

/* RS256 tokens pass the project's own verifier, RS256 only, via the JWKS. */
static void rs256_tokens_verify(void **state)
{
	dd_signer *s = NULL;
	json_t *jwks = NULL, *claims, *got = NULL, *h;
	dd_jwt_policy pol = {.algs = DD_JWA_RS256, .issuer = "local",
			     .leeway_s = 60};
	dd_jwt_result res;
	dd_jwks *set = NULL;
	char *text;
	dd_buf tok;

	(void)state;
	assert_int_equal(dd_signer_new_rs256(&s), DD_OK);
	assert_int_equal(dd_signer_jwks(s, &jwks), DD_OK);
	text = json_dumps(jwks, JSON_COMPACT);
	assert_int_equal(dd_jwks_parse(text, strlen(text), 65536, &set, NULL, 0),
			 DD_OK);
	claims = json_pack("{s:s, s:I}", "iss", "local", "exp",
			   (json_int_t)2000000000);
	dd_buf_init(&tok, 8192);
	assert_int_equal(dd_signer_sign(s, claims, &tok), DD_OK);
	h = part(dd_buf_str(&tok), 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_int_equal(dd_jwt_verify(dd_buf_str(&tok), tok.len, &pol, set,
				       1900000000, &got, &res), DD_OK);
	assert_true(json_equal(got, claims));
	/* Flip one bit of the signature: refused. */
	tok.data[tok.len - 5] ^= 1;
	json_decref(got);
	got = NULL;
	assert_int_not_equal(dd_jwt_verify(dd_buf_str(&tok), tok.len, &pol, set,
					   1900000000, &got, &res), DD_OK);
	json_decref(h);
	json_decref(claims);
	json_decref(jwks);
	free(text);
	dd_jwks_free(set);
	dd_buf_free(&tok);
	dd_signer_free(s);
}

static void kid_is_the_rfc7638_thumbprint(void **state)
{
	dd_signer *s = NULL, *t = NULL;
	json_t *jwks = NULL;
	json_t *k;
	char canon[256];
	uint8_t md[32];
	unsigned int n;
	dd_buf b;

	(void)state;
	assert_int_equal(dd_signer_new(&s), DD_OK);
	assert_int_equal(dd_signer_new(&t), DD_OK);
	assert_string_not_equal(dd_signer_kid(s), dd_signer_kid(t));
	assert_int_equal(dd_signer_jwks(s, &jwks), DD_OK);
	k = json_array_get(json_object_get(jwks, "keys"), 0);
	snprintf(canon, sizeof canon,
		 "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		 json_string_value(json_object_get(k, "x")),
		 json_string_value(json_object_get(k, "y")));
	EVP_Digest(canon, strlen(canon), md, &n, EVP_sha256(), NULL);
	dd_buf_init(&b, 64);
	dd_b64_encode(DD_B64_URL, md, n, &b);
	assert_string_equal(dd_buf_str(&b), dd_signer_kid(s));
	assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
	dd_buf_free(&b);
	json_decref(jwks);
	dd_signer_free(s);
	dd_signer_free(t);
}

static void refuses_non_objects_and_respects_cap(void **state)
{
	dd_signer *s = NULL;
	json_t *arr = json_array(), *big = json_pack("{s:s}", "k", "xxxxxxxxxxxxxxxxxxxxxxxx");
	dd_buf tok;

	(void)state;
	assert_int_equal(dd_signer_new(&s), DD_OK);
	dd_buf_init(&tok, 40);
	assert_int_equal(dd_signer_sign(s, arr, &tok), DD_ERR_INVALID);
	assert_int_equal(dd_signer_sign(s, big, &tok), DD_ERR_TOO_LARGE);
	assert_int_equal(tok.len, 0);
	dd_buf_free(&tok);
	json_decref(arr);
	json_decref(big);
	dd_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signs_verifiable_tokens),
		cmocka_unit_test(rs256_tokens_verify),
		cmocka_unit_test(kid_is_the_rfc7638_thumbprint),
		cmocka_unit_test(refuses_non_objects_and_respects_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
