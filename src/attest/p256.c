#include "attest/p256.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/params.h>

/* DER ECDSA-Sig-Value for two 32-byte integers: at most 72 bytes. */
#define DER_SIG_MAX 80

dd_err_t dd_p256_key_from_xy(const uint8_t xy[64], EVP_PKEY **out)
{
	uint8_t point[65];
	char group[] = "prime256v1";
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY *key = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	*out = NULL;
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, xy, 64);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      point, sizeof point);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL)
		goto out;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* Decoding already refuses points off the curve; this adds the
	 * point-at-infinity check explicitly. P-256 has cofactor 1, so an
	 * on-curve point is in the prime-order group and the costly full
	 * check (a scalar multiplication) would add nothing. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (check == NULL || EVP_PKEY_public_check_quick(check) != 1)
		goto out;
	*out = key;
	key = NULL; /* transferred */
	rc = DD_OK;
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	return rc;
}

int dd_p256_is_p256(const EVP_PKEY *key)
{
	char name[32];
	size_t n = 0;

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return 0;
	if (EVP_PKEY_get_group_name(key, name, sizeof name, &n) != 1)
		return 0;
	return strcmp(name, "prime256v1") == 0;
}

/* Raw r||s to DER; *len gets the DER length. */
static dd_err_t sig_to_der(const uint8_t sig[64], uint8_t der[DER_SIG_MAX],
			   size_t *len)
{
	ECDSA_SIG *s = NULL;
	BIGNUM *r = NULL;
	BIGNUM *sv = NULL;
	uint8_t *p = der;
	int n;
	dd_err_t rc = DD_ERR_CRYPTO;

	s = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	sv = BN_bin2bn(sig + 32, 32, NULL);
	if (s == NULL || r == NULL || sv == NULL)
		goto out;
	if (ECDSA_SIG_set0(s, r, sv) != 1)
		goto out;
	r = sv = NULL; /* transferred */
	if (i2d_ECDSA_SIG(s, NULL) > DER_SIG_MAX)
		goto out;
	n = i2d_ECDSA_SIG(s, &p);
	if (n <= 0)
		goto out;
	*len = (size_t)n;
	rc = DD_OK;
out:
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(s);
	return rc;
}

dd_err_t dd_p256_verify(EVP_PKEY *key, const void *msg, size_t len,
			const uint8_t sig[64])
{
	uint8_t der[DER_SIG_MAX];
	size_t der_len = 0;
	EVP_MD_CTX *md = NULL;
	dd_err_t rc;

	if (!dd_p256_is_p256(key))
		return DD_ERR_CRYPTO;
	rc = sig_to_der(sig, der, &der_len);
	if (rc)
		return rc;
	rc = DD_ERR_CRYPTO;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (EVP_DigestVerify(md, der, der_len, msg, len) != 1)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

dd_err_t dd_p256_sign(EVP_PKEY *key, const void *msg, size_t len,
		      uint8_t sig[64])
{
	uint8_t der[DER_SIG_MAX];
	size_t der_len = sizeof der;
	const uint8_t *p = der;
	const BIGNUM *r = NULL;
	const BIGNUM *s = NULL;
	ECDSA_SIG *es = NULL;
	EVP_MD_CTX *md = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (!dd_p256_is_p256(key))
		return DD_ERR_CRYPTO;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (EVP_DigestSign(md, der, &der_len, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (es == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 ||
	    BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	rc = DD_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return rc;
}

dd_err_t dd_p256_key_to_xy(const EVP_PKEY *key, uint8_t xy[64])
{
	uint8_t point[65];
	size_t n = 0;

	if (!dd_p256_is_p256(key))
		return DD_ERR_CRYPTO;
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
					    sizeof point, &n) != 1)
		return DD_ERR_CRYPTO;
	if (n != sizeof point || point[0] != 0x04)
		return DD_ERR_CRYPTO;
	memcpy(xy, point + 1, 64);
	return DD_OK;
}

dd_err_t dd_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
		     uint8_t out[32])
{
	EVP_MD_CTX *md = NULL;
	unsigned int n = 0;
	dd_err_t rc = DD_ERR_CRYPTO;

	md = EVP_MD_CTX_new();
	if (md == NULL)
		return DD_ERR_NOMEM;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, a, alen) != 1 ||
	    (blen > 0 && EVP_DigestUpdate(md, b, blen) != 1) ||
	    EVP_DigestFinal_ex(md, out, &n) != 1 || n != 32)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}
