/*
 * jwt_helper.h: test-only key generation, JWK export and JWS signing with
 * OpenSSL, so the verifier in src/auth is tested against tokens it did
 * not make itself. Everything here aborts the test on failure and
 * returns malloc'ed memory (free with free()).
 */
#ifndef DD_TEST_JWT_HELPER_H
#define DD_TEST_JWT_HELPER_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/b64.h"

static inline EVP_PKEY *th_rsa(unsigned bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);

	assert_non_null(k);
	return k;
}

static inline EVP_PKEY *th_ec(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	assert_non_null(k);
	return k;
}

static inline char *th_b64(const void *data, size_t n)
{
	dd_buf b;
	char *s;

	dd_buf_init(&b, n * 2 + 16);
	assert_int_equal(dd_b64_encode(DD_B64_URL, data, n, &b), DD_OK);
	s = strdup(dd_buf_str(&b));
	assert_non_null(s);
	dd_buf_free(&b);
	return s;
}

/* Decodes base64url into a malloc'ed buffer; *n gets its length. */
static inline unsigned char *th_unb64(const char *s, size_t *n)
{
	unsigned char *p;
	dd_buf b;

	dd_buf_init(&b, strlen(s) + 16);
	assert_int_equal(dd_b64_decode(DD_B64_URL, s, strlen(s), &b), DD_OK);
	p = malloc(b.len + 1);
	assert_non_null(p);
	if (b.len > 0)
		memcpy(p, b.data, b.len);
	*n = b.len;
	dd_buf_free(&b);
	return p;
}

static inline char *th_b64s(const char *s)
{
	return th_b64(s, strlen(s));
}

/* A BIGNUM parameter of k as base64url, left-padded to pad bytes. */
static inline char *th_bn_param(EVP_PKEY *k, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1100];
	int n;
	char *s;

	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	assert_true(n > 0 && (size_t)n <= sizeof buf);
	s = th_b64(buf, (size_t)n);
	BN_free(bn);
	return s;
}

/* Field size in bytes of an EC key (0 for RSA). */
static inline int th_ec_bytes(EVP_PKEY *k)
{
	if (EVP_PKEY_is_a(k, "RSA"))
		return 0;
	return (EVP_PKEY_get_bits(k) + 7) / 8;
}

/*
 * The public JWK of k as a new JSON object: {"kty","kid",["alg"],"use",
 * "n","e"} or {"kty","kid",["alg"],"use","crv","x","y"}.
 */
static inline json_t *th_jwk(EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *o = json_object();
	int fb = th_ec_bytes(k);
	char *a, *b;

	assert_non_null(o);
	if (fb == 0) {
		a = th_bn_param(k, OSSL_PKEY_PARAM_RSA_N, 0);
		b = th_bn_param(k, OSSL_PKEY_PARAM_RSA_E, 0);
		json_object_set_new(o, "kty", json_string("RSA"));
		json_object_set_new(o, "n", json_string(a));
		json_object_set_new(o, "e", json_string(b));
	} else {
		a = th_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, fb);
		b = th_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, fb);
		json_object_set_new(o, "kty", json_string("EC"));
		json_object_set_new(o, "crv", json_string(fb == 32 ? "P-256" :
							  fb == 48 ? "P-384" :
							  "P-521"));
		json_object_set_new(o, "x", json_string(a));
		json_object_set_new(o, "y", json_string(b));
	}
	free(a);
	free(b);
	json_object_set_new(o, "kid", json_string(kid));
	json_object_set_new(o, "use", json_string("sig"));
	if (alg != NULL)
		json_object_set_new(o, "alg", json_string(alg));
	return o;
}

/* {"keys":[...]} serialised; takes the references in keys. */
static inline char *th_jwks(json_t *keys)
{
	json_t *doc = json_pack("{so}", "keys", keys);
	char *s;

	assert_non_null(doc);
	s = json_dumps(doc, JSON_COMPACT);
	assert_non_null(s);
	json_decref(doc);
	return s;
}

static inline const EVP_MD *th_md(const char *alg)
{
	if (strstr(alg, "256") != NULL)
		return EVP_sha256();
	if (strstr(alg, "384") != NULL)
		return EVP_sha384();
	return EVP_sha512();
}

/*
 * Raw JWS signature of input under alg ("RS256", "PS384", "ES256",
 * "HS256" with secret as the key, ...). *len gets its length.
 */
static inline unsigned char *th_sig(EVP_PKEY *k, const char *alg,
				    const void *secret, size_t secret_len,
				    const char *input, size_t *len)
{
	const EVP_MD *md = th_md(alg);
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig, *raw;
	const unsigned char *p;
	ECDSA_SIG *es;
	unsigned int hl = 0;
	size_t n = 0;
	int fb;

	if (alg[0] == 'H') {
		sig = malloc(EVP_MAX_MD_SIZE);
		assert_non_null(sig);
		assert_non_null(HMAC(md, secret, (int)secret_len,
				     (const unsigned char *)input,
				     strlen(input), sig, &hl));
		*len = hl;
		return sig;
	}
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k), 1);
	if (alg[0] == 'P') {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx,
			RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
			EVP_MD_get_size(md)), 1);
	}
	assert_int_equal(EVP_DigestSign(ctx, NULL, &n,
					(const unsigned char *)input,
					strlen(input)), 1);
	sig = malloc(n);
	assert_non_null(sig);
	assert_int_equal(EVP_DigestSign(ctx, sig, &n,
					(const unsigned char *)input,
					strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	*len = n;
	if (alg[0] != 'E')
		return sig;
	/* JWS wants r || s, each the field size, not DER. */
	fb = th_ec_bytes(k);
	p = sig;
	es = d2i_ECDSA_SIG(NULL, &p, (long)n);
	assert_non_null(es);
	raw = malloc((size_t)fb * 2);
	assert_non_null(raw);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, fb), fb);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + fb, fb), fb);
	ECDSA_SIG_free(es);
	free(sig);
	*len = (size_t)fb * 2;
	return raw;
}

/* header.payload.signature over the given JSON texts. */
static inline char *th_sign_raw(EVP_PKEY *k, const char *alg,
				const char *header, const char *payload,
				const void *secret, size_t secret_len)
{
	char *h = th_b64s(header), *p = th_b64s(payload), *s, *input, *tok;
	unsigned char *sig;
	size_t n, sl;

	n = strlen(h) + strlen(p) + 2;
	input = malloc(n);
	assert_non_null(input);
	snprintf(input, n, "%s.%s", h, p);
	sig = th_sig(k, alg, secret, secret_len, input, &sl);
	s = th_b64(sig, sl);
	tok = malloc(n + strlen(s) + 1);
	assert_non_null(tok);
	snprintf(tok, n + strlen(s) + 1, "%s.%s", input, s);
	free(h);
	free(p);
	free(s);
	free(sig);
	free(input);
	return tok;
}

/* A token with header {"alg","kid","typ":"JWT"} over claims (JSON text). */
static inline char *th_token(EVP_PKEY *k, const char *alg, const char *kid,
			     const char *claims)
{
	char header[512];

	snprintf(header, sizeof header,
		 "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
	return th_sign_raw(k, alg, header, claims, NULL, 0);
}

/* printf into a malloc'ed string. */
static inline char *th_fmt(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static inline char *th_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

#endif
