#include "auth/jwt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"

struct dd_jwt {
	json_t *header;
	json_t *claims;
	const char *kid;        /* borrowed from header */
	size_t kid_len;
	dd_jwa alg;
	dd_buf sig;
	char *input;            /* the signing input: header "." payload */
	size_t input_len;
	int sig_ok;
	int claims_ok;
};

static const struct {
	const char *name;
	dd_err_t err;
} reasons[DD_JWT__COUNT] = {
	[DD_JWT_OK] = {"ok", DD_OK},
	[DD_JWT_MALFORMED] = {"malformed", DD_ERR_INVALID},
	[DD_JWT_TOO_LARGE] = {"too_large", DD_ERR_TOO_LARGE},
	[DD_JWT_BAD_ALG] = {"bad_alg", DD_ERR_INVALID},
	[DD_JWT_NO_KID] = {"no_kid", DD_ERR_INVALID},
	[DD_JWT_UNKNOWN_KID] = {"unknown_kid", DD_ERR_NOT_FOUND},
	[DD_JWT_KEYS_UNAVAILABLE] = {"keys_unavailable", DD_ERR_UPSTREAM},
	[DD_JWT_BAD_SIGNATURE] = {"bad_signature", DD_ERR_CRYPTO},
	[DD_JWT_MISSING_CLAIM] = {"missing_claim", DD_ERR_UNAUTHORIZED},
	[DD_JWT_EXPIRED] = {"expired", DD_ERR_UNAUTHORIZED},
	[DD_JWT_NOT_YET_VALID] = {"not_yet_valid", DD_ERR_UNAUTHORIZED},
	[DD_JWT_IAT_FUTURE] = {"iat_future", DD_ERR_UNAUTHORIZED},
	[DD_JWT_TOO_OLD] = {"too_old", DD_ERR_UNAUTHORIZED},
	[DD_JWT_BAD_ISSUER] = {"bad_issuer", DD_ERR_UNAUTHORIZED},
	[DD_JWT_BAD_AUDIENCE] = {"bad_audience", DD_ERR_UNAUTHORIZED},
	[DD_JWT_INTERNAL] = {"internal", DD_ERR_INTERNAL},
};

const char *dd_jwt_reason_name(dd_jwt_reason r)
{
	if ((unsigned)r >= DD_JWT__COUNT)
		return "unknown";
	return reasons[r].name;
}

dd_err_t dd_jwt_reason_err(dd_jwt_reason r)
{
	if ((unsigned)r >= DD_JWT__COUNT)
		return DD_ERR_INTERNAL;
	return reasons[r].err;
}

static void res_ok(dd_jwt_result *res)
{
	res->reason = DD_JWT_OK;
	res->why[0] = '\0';
}

/* Records a refusal and returns the dd_err_t it maps to. */
static dd_err_t fail(dd_jwt_result *res, dd_jwt_reason r, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

static dd_err_t fail(dd_jwt_result *res, dd_jwt_reason r, const char *fmt,
		     ...)
{
	va_list ap;

	res->reason = r;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof res->why, fmt, ap);
	va_end(ap);
	return dd_jwt_reason_err(r);
}

static dd_err_t nomem(dd_jwt_result *res)
{
	fail(res, DD_JWT_INTERNAL, "out of memory");
	return DD_ERR_NOMEM;
}

/* ---- decoding ---- */

/*
 * Decodes one base64url part into a JSON object. MALFORMED with what
 * names the part; NOMEM keeps its own code.
 */
static dd_err_t part_json(const char *s, size_t n, const char *what,
			  json_t **out, dd_jwt_result *res)
{
	json_t *v = NULL;
	dd_buf b;
	dd_err_t rc;

	/* n is under DD_JWT_MAX_LEN, so the cap never bites. */
	dd_buf_init(&b, DD_JWT_MAX_LEN);
	rc = dd_b64_decode(DD_B64_URL, s, n, &b);
	if (rc == DD_ERR_NOMEM) {
		rc = nomem(res);
		goto out;
	}
	if (rc) {
		rc = fail(res, DD_JWT_MALFORMED, "%s is not canonical "
			  "unpadded base64url", what);
		goto out;
	}
	rc = dd_json_parse(dd_buf_str(&b), b.len, DD_JWT_MAX_LEN, &v, NULL,
			   0);
	if (rc == DD_ERR_NOMEM) {
		rc = nomem(res);
		goto out;
	}
	if (rc || !json_is_object(v)) {
		rc = fail(res, DD_JWT_MALFORMED, "%s is not a JSON object "
			  "(or has duplicate keys)", what);
		goto out;
	}
	*out = v;
	v = NULL; /* transferred */
out:
	json_decref(v);
	dd_buf_free(&b);
	return rc;
}

/* The header's own rules, before any key is looked at. */
static dd_err_t check_header(dd_jwt *t, const dd_jwt_policy *pol,
			     dd_jwt_result *res)
{
	const json_t *b64 = json_object_get(t->header, "b64");
	const char *alg = NULL, *kid = NULL;
	dd_err_t rc;

	if (json_object_get(t->header, "crit") != NULL)
		return fail(res, DD_JWT_MALFORMED, "\"crit\" header "
			    "extensions are not supported");
	if (b64 != NULL && !json_is_true(b64))
		return fail(res, DD_JWT_MALFORMED, "unencoded payloads "
			    "(\"b64\") are not supported");
	rc = dd_json_get_str(t->header, "alg", &alg);
	if (rc)
		return fail(res, DD_JWT_BAD_ALG, "header \"alg\" is missing "
			    "or not a string");
	t->alg = dd_jwa_parse(alg, strlen(alg));
	if (t->alg == 0 || (pol->algs & (unsigned)t->alg) == 0)
		return fail(res, DD_JWT_BAD_ALG, "header \"alg\" is not an "
			    "allowed algorithm");
	rc = dd_json_get_str(t->header, "kid", &kid);
	if (rc == DD_ERR_NOT_FOUND || (rc == DD_OK && kid[0] == '\0'))
		return fail(res, DD_JWT_NO_KID, "header has no \"kid\"");
	if (rc || strlen(kid) > DD_JWK_MAX_KID)
		return fail(res, DD_JWT_MALFORMED, "header \"kid\" is not a "
			    "string of at most %u bytes", DD_JWK_MAX_KID);
	t->kid = kid;
	t->kid_len = strlen(kid);
	return DD_OK;
}

dd_err_t dd_jwt_decode(const char *token, size_t len,
		       const dd_jwt_policy *pol, dd_jwt **out,
		       dd_jwt_result *res)
{
	size_t max = DD_JWT_MAX_LEN, d1, d2;
	const char *p;
	dd_jwt *t = NULL;
	dd_err_t rc;

	*out = NULL;
	res_ok(res);
	if (pol->max_len != 0 && pol->max_len < max)
		max = pol->max_len;
	if (len > max)
		return fail(res, DD_JWT_TOO_LARGE, "token is longer than %zu "
			    "bytes", max);
	if (len == 0)
		return fail(res, DD_JWT_MALFORMED, "token is empty");
	p = memchr(token, '.', len);
	if (p == NULL)
		return fail(res, DD_JWT_MALFORMED, "token has one part, not "
			    "three");
	d1 = (size_t)(p - token);
	p = memchr(token + d1 + 1, '.', len - d1 - 1);
	if (p == NULL)
		return fail(res, DD_JWT_MALFORMED, "token has two parts, not "
			    "three");
	d2 = (size_t)(p - token);
	if (memchr(token + d2 + 1, '.', len - d2 - 1) != NULL)
		return fail(res, DD_JWT_MALFORMED, "token has more than three "
			    "parts");
	if (d1 == 0 || d2 == d1 + 1)
		return fail(res, DD_JWT_MALFORMED, "token has an empty part");
	t = dd_calloc(1, sizeof *t);
	if (t == NULL)
		return nomem(res);
	dd_buf_init(&t->sig, DD_JWT_MAX_LEN);
	rc = part_json(token, d1, "header", &t->header, res);
	if (rc)
		goto out;
	/* Header rules first: "alg":"none" tokens often have no signature. */
	rc = check_header(t, pol, res);
	if (rc)
		goto out;
	rc = part_json(token + d1 + 1, d2 - d1 - 1, "payload", &t->claims,
		       res);
	if (rc)
		goto out;
	if (d2 + 1 == len) {
		rc = fail(res, DD_JWT_MALFORMED, "token has an empty "
			  "signature");
		goto out;
	}
	t->input = dd_strndup(token, d2);
	if (t->input == NULL) {
		rc = nomem(res);
		goto out;
	}
	t->input_len = d2;
	rc = dd_b64_decode(DD_B64_URL, token + d2 + 1, len - d2 - 1, &t->sig);
	if (rc == DD_ERR_NOMEM) {
		rc = nomem(res);
		goto out;
	}
	if (rc) {
		rc = fail(res, DD_JWT_MALFORMED, "signature is not canonical "
			  "unpadded base64url");
		goto out;
	}
	*out = t;
	t = NULL; /* transferred */
out:
	dd_jwt_free(t);
	return rc;
}

const char *dd_jwt_kid(const dd_jwt *t, size_t *kid_len)
{
	if (kid_len != NULL)
		*kid_len = t->kid_len;
	return t->kid;
}

dd_jwa dd_jwt_alg(const dd_jwt *t)
{
	return t->alg;
}

void dd_jwt_free(dd_jwt *t)
{
	if (t == NULL)
		return;
	json_decref(t->header);
	json_decref(t->claims);
	dd_buf_free(&t->sig);
	dd_free(t->input);
	dd_free(t);
}

/* ---- signature ---- */

static const EVP_MD *alg_md(dd_jwa alg)
{
	switch (alg) {
	case DD_JWA_RS256:
	case DD_JWA_PS256:
	case DD_JWA_ES256:
		return EVP_sha256();
	case DD_JWA_RS384:
	case DD_JWA_PS384:
	case DD_JWA_ES384:
		return EVP_sha384();
	case DD_JWA_RS512:
	case DD_JWA_PS512:
		return EVP_sha512();
	}
	return NULL;
}

/*
 * JWS carries ECDSA as fixed-width r || s; OpenSSL verifies the DER
 * SEQUENCE of two INTEGERs. *der is OPENSSL_malloc'ed.
 */
static dd_err_t ec_raw_to_der(const uint8_t *sig, size_t half,
			      unsigned char **der, size_t *der_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	dd_err_t rc = DD_ERR_NOMEM;
	int n;

	*der = NULL;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, (int)half, NULL);
	s = BN_bin2bn(sig + half, (int)half, NULL);
	if (es == NULL || r == NULL || s == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* transferred */
	n = i2d_ECDSA_SIG(es, der);
	if (n <= 0)
		goto out;
	*der_len = (size_t)n;
	rc = DD_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rc;
}

dd_err_t dd_jwt_verify_signature(dd_jwt *t, const dd_jwk *key,
				 dd_jwt_result *res)
{
	const EVP_MD *md = alg_md(t->alg);
	EVP_PKEY *pkey = dd_jwk_pkey(key);
	dd_jwk_type type = dd_jwk_get_type(key);
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *sig = t->sig.data;
	size_t sig_len = t->sig.len, half;
	dd_err_t rc;

	res_ok(res);
	t->sig_ok = 0;
	if (strlen(dd_jwk_kid(key)) != t->kid_len ||
	    memcmp(dd_jwk_kid(key), t->kid, t->kid_len) != 0)
		return fail(res, DD_JWT_UNKNOWN_KID, "the key's kid differs "
			    "from the token's");
	/* The key decides the family: no token can pick another one. */
	if (md == NULL || !dd_jwa_fits(t->alg, type))
		return fail(res, DD_JWT_BAD_ALG, "%s cannot be verified with "
			    "this %s key", dd_jwa_name(t->alg),
			    type == DD_JWK_RSA ? "RSA" : "EC");
	if (dd_jwk_alg(key) != 0 && dd_jwk_alg(key) != t->alg)
		return fail(res, DD_JWT_BAD_ALG, "the key is for %s, the token "
			    "says %s", dd_jwa_name(dd_jwk_alg(key)),
			    dd_jwa_name(t->alg));
	if (type == DD_JWK_RSA) {
		if (sig_len != (size_t)EVP_PKEY_get_size(pkey))
			return fail(res, DD_JWT_BAD_SIGNATURE, "signature "
				    "length does not match the key");
	} else {
		half = (size_t)dd_jwk_bits(key) / 8;
		if (sig_len != 2 * half)
			return fail(res, DD_JWT_BAD_SIGNATURE, "%s signature "
				    "must be %zu bytes", dd_jwa_name(t->alg),
				    2 * half);
		rc = ec_raw_to_der(t->sig.data, half, &der, &sig_len);
		if (rc) {
			rc = nomem(res);
			goto out;
		}
		sig = der;
	}
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL) {
		rc = nomem(res);
		goto out;
	}
	rc = fail(res, DD_JWT_INTERNAL, "OpenSSL could not set up the "
		  "verification");
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) != 1)
		goto out;
	if (t->alg & (DD_JWA_PS256 | DD_JWA_PS384 | DD_JWA_PS512)) {
		/* RFC 7518 3.5: MGF1 with the same hash, salt = hash size. */
		if (EVP_PKEY_CTX_set_rsa_padding(pctx,
						 RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
						     EVP_MD_get_size(md)) != 1)
			goto out;
	} else if (type == DD_JWK_RSA) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
			goto out;
	}
	if (EVP_DigestVerify(mctx, sig, sig_len,
			     (const unsigned char *)t->input,
			     t->input_len) != 1) {
		rc = fail(res, DD_JWT_BAD_SIGNATURE, "signature does not "
			  "verify");
		goto out;
	}
	res_ok(res);
	t->sig_ok = 1;
	rc = DD_OK;
out:
	/* A failed verify leaves errors that would confuse later TLS calls. */
	if (rc)
		ERR_clear_error();
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(der);
	return rc;
}

/* ---- claims ---- */

/*
 * A NumericDate (RFC 7519 2) as whole seconds. Reals are rounded up or
 * down as the caller asks, so a fraction never helps a token; values
 * beyond int64 saturate. INVALID for anything but a finite number.
 */
static dd_err_t num_date(const json_t *v, int round_up, int64_t *out)
{
	double d;
	int64_t t;

	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return DD_OK;
	}
	if (!json_is_real(v))
		return DD_ERR_INVALID;
	d = json_real_value(v);
	if (!isfinite(d))
		return DD_ERR_INVALID;
	if (d >= 9.2e18) {
		*out = INT64_MAX;
	} else if (d <= -9.2e18) {
		*out = INT64_MIN;
	} else {
		/* The cast truncates toward zero; finish the rounding. */
		t = (int64_t)d;
		if (round_up && (double)t < d)
			t++;
		else if (!round_up && (double)t > d)
			t--;
		*out = t;
	}
	return DD_OK;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t u_sat(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static dd_err_t check_times(const json_t *c, const dd_jwt_policy *pol,
			    int64_t now, dd_jwt_result *res)
{
	const json_t *exp = json_object_get(c, "exp");
	const json_t *nbf = json_object_get(c, "nbf");
	const json_t *iat = json_object_get(c, "iat");
	int64_t lw = u_sat(pol->leeway_s), age = u_sat(pol->max_age_s), v;

	if (exp == NULL)
		return fail(res, DD_JWT_MISSING_CLAIM, "\"exp\" is missing");
	if (num_date(exp, 0, &v))
		return fail(res, DD_JWT_MALFORMED, "\"exp\" is not a number");
	if (now >= add_sat(v, lw))
		return fail(res, DD_JWT_EXPIRED, "expired at %lld (now %lld, "
			    "leeway %lld s)", (long long)v, (long long)now,
			    (long long)lw);
	if (nbf != NULL) {
		if (num_date(nbf, 1, &v))
			return fail(res, DD_JWT_MALFORMED, "\"nbf\" is not a "
				    "number");
		if (add_sat(now, lw) < v)
			return fail(res, DD_JWT_NOT_YET_VALID, "not valid "
				    "before %lld (now %lld, leeway %lld s)",
				    (long long)v, (long long)now,
				    (long long)lw);
	}
	if (iat == NULL && age > 0)
		return fail(res, DD_JWT_MISSING_CLAIM, "\"iat\" is missing");
	if (iat == NULL)
		return DD_OK;
	if (num_date(iat, 1, &v))
		return fail(res, DD_JWT_MALFORMED, "\"iat\" is not a number");
	if (v > add_sat(now, lw))
		return fail(res, DD_JWT_IAT_FUTURE, "issued in the future at "
			    "%lld (now %lld, leeway %lld s)", (long long)v,
			    (long long)now, (long long)lw);
	(void)num_date(iat, 0, &v);
	if (age > 0 && add_sat(now, -lw) > add_sat(v, age))
		return fail(res, DD_JWT_TOO_OLD, "issued at %lld, older than "
			    "%lld s (now %lld)", (long long)v, (long long)age,
			    (long long)now);
	return DD_OK;
}

static int str_is(const json_t *v, const char *want)
{
	size_t n = strlen(want);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), want, n) == 0;
}

static dd_err_t check_aud(const json_t *c, const char *want,
			  dd_jwt_result *res)
{
	const json_t *aud = json_object_get(c, "aud"), *v;
	size_t i;
	int hit = 0;

	if (want == NULL && aud != NULL)
		return fail(res, DD_JWT_BAD_AUDIENCE, "token names an "
			    "audience and none is accepted here");
	if (want == NULL)
		return DD_OK;
	if (aud == NULL)
		return fail(res, DD_JWT_MISSING_CLAIM, "\"aud\" is missing");
	if (json_is_string(aud)) {
		if (str_is(aud, want))
			return DD_OK;
		return fail(res, DD_JWT_BAD_AUDIENCE, "\"aud\" does not match");
	}
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return fail(res, DD_JWT_BAD_AUDIENCE, "\"aud\" is neither a "
			    "string nor a non-empty array of strings");
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v))
			return fail(res, DD_JWT_BAD_AUDIENCE, "\"aud\" array "
				    "holds a non-string");
		if (str_is(v, want))
			hit = 1;
	}
	if (!hit)
		return fail(res, DD_JWT_BAD_AUDIENCE, "\"aud\" does not "
			    "contain the expected audience");
	return DD_OK;
}

dd_err_t dd_jwt_check_claims(dd_jwt *t, const dd_jwt_policy *pol,
			     int64_t now, dd_jwt_result *res)
{
	const json_t *iss = json_object_get(t->claims, "iss");
	dd_err_t rc;

	res_ok(res);
	t->claims_ok = 0;
	rc = check_times(t->claims, pol, now, res);
	if (rc)
		return rc;
	if (iss == NULL)
		return fail(res, DD_JWT_MISSING_CLAIM, "\"iss\" is missing");
	if (pol->issuer == NULL)
		return fail(res, DD_JWT_BAD_ISSUER, "no issuer is configured");
	if (!str_is(iss, pol->issuer))
		return fail(res, DD_JWT_BAD_ISSUER, "\"iss\" does not match");
	rc = check_aud(t->claims, pol->audience, res);
	if (rc)
		return rc;
	t->claims_ok = 1;
	return DD_OK;
}

dd_err_t dd_jwt_claims(const dd_jwt *t, json_t **claims)
{
	*claims = NULL;
	if (!t->sig_ok || !t->claims_ok)
		return DD_ERR_INVALID;
	*claims = json_incref(t->claims);
	return DD_OK;
}

dd_err_t dd_jwt_verify(const char *token, size_t len,
		       const dd_jwt_policy *pol, const dd_jwks *keys,
		       int64_t now, json_t **claims, dd_jwt_result *res)
{
	dd_jwt *t = NULL;
	const dd_jwk *key;
	size_t kid_len;
	const char *kid;
	dd_err_t rc;

	if (claims != NULL)
		*claims = NULL;
	rc = dd_jwt_decode(token, len, pol, &t, res);
	if (rc)
		goto out;
	kid = dd_jwt_kid(t, &kid_len);
	key = keys != NULL ? dd_jwks_find(keys, kid, kid_len) : NULL;
	if (key == NULL) {
		rc = fail(res, DD_JWT_UNKNOWN_KID, "no key with this kid");
		goto out;
	}
	rc = dd_jwt_verify_signature(t, key, res);
	if (rc)
		goto out;
	rc = dd_jwt_check_claims(t, pol, now, res);
	if (rc)
		goto out;
	if (claims != NULL)
		rc = dd_jwt_claims(t, claims);
out:
	dd_jwt_free(t);
	return rc;
}
