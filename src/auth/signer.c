#include "auth/signer.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"

struct dd_signer {
	EVP_PKEY *key;
	int rsa;            /* RS256 (RSA-2048) instead of ES256 */
	char x[64], y[64];  /* ES256: base64url coordinates */
	char n[400], e[16]; /* RS256: base64url modulus and exponent */
	char kid[64];
};

void dd_signer_free(dd_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	dd_free(s);
}

static dd_err_t b64url_into(const void *data, size_t n, char *out, size_t cap)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, cap - 1);
	rc = dd_b64_encode(DD_B64_URL, data, n, &b);
	if (rc == DD_OK)
		memcpy(out, dd_buf_str(&b), b.len + 1);
	dd_buf_free(&b);
	return rc;
}

/* x and y as 32-byte big-endian coordinates from the uncompressed point. */
static dd_err_t coordinates(dd_signer *s)
{
	uint8_t pt[65];
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(s->key, OSSL_PKEY_PARAM_PUB_KEY, pt,
					    sizeof pt, &n) != 1 ||
	    n != 65 || pt[0] != 0x04)
		return DD_ERR_CRYPTO;
	if (b64url_into(pt + 1, 32, s->x, sizeof s->x) ||
	    b64url_into(pt + 33, 32, s->y, sizeof s->y))
		return DD_ERR_INTERNAL;
	return DD_OK;
}

/* n and e, big-endian, as base64url. */
static dd_err_t rsa_params(dd_signer *s)
{
	BIGNUM *n = NULL, *e = NULL;
	uint8_t buf[512];
	int len;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (EVP_PKEY_get_bn_param(s->key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(s->key, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
		goto out;
	len = BN_bn2bin(n, buf);
	if (len <= 0 || (size_t)len > sizeof buf ||
	    b64url_into(buf, (size_t)len, s->n, sizeof s->n))
		goto out;
	len = BN_bn2bin(e, buf);
	if (len <= 0 || b64url_into(buf, (size_t)len, s->e, sizeof s->e))
		goto out;
	rc = DD_OK;
out:
	BN_free(n);
	BN_free(e);
	return rc;
}

/* RFC 7638: members in lexicographic order, no whitespace. */
static dd_err_t thumbprint(dd_signer *s)
{
	char canon[512];
	uint8_t md[32];
	unsigned int mdlen = 0;
	int n;

	if (s->rsa)
		n = snprintf(canon, sizeof canon,
			     "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
			     s->e, s->n);
	else
		n = snprintf(canon, sizeof canon,
			     "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
			     "\"y\":\"%s\"}", s->x, s->y);
	if (n < 0 || (size_t)n >= sizeof canon)
		return DD_ERR_INTERNAL;
	if (EVP_Digest(canon, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
		return DD_ERR_CRYPTO;
	return b64url_into(md, mdlen, s->kid, sizeof s->kid);
}

dd_err_t dd_signer_new(dd_signer **out)
{
	dd_signer *s;
	dd_err_t rc;

	*out = NULL;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->key = EVP_EC_gen("P-256");
	rc = s->key ? coordinates(s) : DD_ERR_CRYPTO;
	if (rc == DD_OK)
		rc = thumbprint(s);
	if (rc) {
		dd_signer_free(s);
		return rc;
	}
	*out = s;
	return DD_OK;
}

dd_err_t dd_signer_new_rs256(dd_signer **out)
{
	dd_signer *s;
	dd_err_t rc;

	*out = NULL;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->rsa = 1;
	s->key = EVP_RSA_gen(2048);
	rc = s->key ? rsa_params(s) : DD_ERR_CRYPTO;
	if (rc == DD_OK)
		rc = thumbprint(s);
	if (rc) {
		dd_signer_free(s);
		return rc;
	}
	*out = s;
	return DD_OK;
}

const char *dd_signer_kid(const dd_signer *s)
{
	return s->kid;
}

dd_err_t dd_signer_jwks(const dd_signer *s, json_t **out)
{
	if (s->rsa) {
		*out = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys",
				 "kty", "RSA", "n", s->n, "e", s->e, "kid",
				 s->kid, "alg", "RS256", "use", "sig");
		return *out ? DD_OK : DD_ERR_NOMEM;
	}
	*out = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys",
			 "kty", "EC", "crv", "P-256", "x", s->x, "y", s->y,
			 "kid", s->kid, "alg", "ES256", "use", "sig");
	return *out ? DD_OK : DD_ERR_NOMEM;
}

/* DER ECDSA-Sig-Value -> the fixed 64-byte r || s that JWS wants. */
static dd_err_t der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
	const uint8_t *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *sv;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (sig == NULL)
		return DD_ERR_CRYPTO;
	ECDSA_SIG_get0(sig, &r, &sv);
	if (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(sv, raw + 32, 32) == 32)
		rc = DD_OK;
	ECDSA_SIG_free(sig);
	return rc;
}

static dd_err_t append_b64url_json(const json_t *v, dd_buf *out)
{
	dd_buf text;
	dd_err_t rc;

	dd_buf_init(&text, out->cap);
	rc = dd_json_append(&text, v);
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_URL, text.data, text.len, out);
	dd_buf_free(&text);
	return rc;
}

dd_err_t dd_signer_sign(const dd_signer *s, const json_t *claims, dd_buf *out)
{
	json_t *header = NULL;
	EVP_MD_CTX *md = NULL;
	uint8_t der[512], raw[64];
	size_t der_len = sizeof der, start = out->len;
	dd_err_t rc;

	if (!json_is_object(claims))
		return DD_ERR_INVALID;
	header = json_pack("{s:s, s:s, s:s}", "alg", s->rsa ? "RS256" : "ES256",
			   "typ", "JWT", "kid", s->kid);
	if (header == NULL)
		return DD_ERR_NOMEM;
	rc = append_b64url_json(header, out);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(out, '.');
	if (rc == DD_OK)
		rc = append_b64url_json(claims, out);
	if (rc)
		goto out;
	md = EVP_MD_CTX_new();
	rc = DD_ERR_CRYPTO;
	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->key) != 1 ||
	    EVP_DigestSign(md, der, &der_len, out->data + start,
			   out->len - start) != 1)
		goto out;
	/* RSA signatures are already what JWS wants; ECDSA's are DER. */
	rc = s->rsa ? DD_OK : der_to_raw(der, der_len, raw);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(out, '.');
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_URL, s->rsa ? der : raw,
				   s->rsa ? der_len : sizeof raw, out);
out:
	if (rc) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	EVP_MD_CTX_free(md);
	json_decref(header);
	return rc;
}
