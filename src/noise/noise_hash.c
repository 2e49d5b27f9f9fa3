#include "noise/noise_hash.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define BLAKE2S_NAME "BLAKE2S-256"

dd_err_t dd_noise_hash_init(dd_noise_hash *hh)
{
	char digest[] = BLAKE2S_NAME;
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	memset(hh, 0, sizeof *hh);
	hh->md = EVP_MD_fetch(NULL, BLAKE2S_NAME, NULL);
	hh->md_ctx = EVP_MD_CTX_new();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (hh->md == NULL || hh->md_ctx == NULL || mac == NULL ||
	    EVP_MD_get_size(hh->md) != DD_NOISE_HASHLEN ||
	    EVP_MD_get_block_size(hh->md) != DD_NOISE_BLOCKLEN)
		goto out;
	hh->hmac = EVP_MAC_CTX_new(mac);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (hh->hmac == NULL || EVP_MAC_CTX_set_params(hh->hmac, params) != 1)
		goto out;
	rc = DD_OK;
out:
	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (rc)
		dd_noise_hash_cleanup(hh);
	return rc;
}

void dd_noise_hash_cleanup(dd_noise_hash *hh)
{
	/* Both contexts may hold key-dependent state: the free functions of
	 * OpenSSL 3 wipe them. */
	EVP_MAC_CTX_free(hh->hmac);
	EVP_MD_CTX_free(hh->md_ctx);
	EVP_MD_free(hh->md);
	memset(hh, 0, sizeof *hh);
}

dd_err_t dd_noise_hash2(dd_noise_hash *hh, const uint8_t *a, size_t a_len,
			const uint8_t *b, size_t b_len,
			uint8_t out[DD_NOISE_HASHLEN])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex2(hh->md_ctx, hh->md, NULL) != 1 ||
	    EVP_DigestUpdate(hh->md_ctx, a, a_len) != 1 ||
	    (b_len > 0 && EVP_DigestUpdate(hh->md_ctx, b, b_len) != 1) ||
	    EVP_DigestFinal_ex(hh->md_ctx, out, &n) != 1 ||
	    n != DD_NOISE_HASHLEN)
		return DD_ERR_CRYPTO;
	return DD_OK;
}

/* out = HMAC-BLAKE2s(key, a || b). */
static dd_err_t hmac(dd_noise_hash *hh, const uint8_t key[DD_NOISE_HASHLEN],
		     const uint8_t *a, size_t a_len, const uint8_t *b,
		     size_t b_len, uint8_t out[DD_NOISE_HASHLEN])
{
	size_t n = 0;

	if (EVP_MAC_init(hh->hmac, key, DD_NOISE_HASHLEN, NULL) != 1 ||
	    (a_len > 0 && EVP_MAC_update(hh->hmac, a, a_len) != 1) ||
	    (b_len > 0 && EVP_MAC_update(hh->hmac, b, b_len) != 1) ||
	    EVP_MAC_final(hh->hmac, out, &n, DD_NOISE_HASHLEN) != 1 ||
	    n != DD_NOISE_HASHLEN)
		return DD_ERR_CRYPTO;
	return DD_OK;
}

dd_err_t dd_noise_hkdf(dd_noise_hash *hh, const uint8_t ck[DD_NOISE_HASHLEN],
		       const uint8_t *ikm, size_t ikm_len,
		       uint8_t o1[DD_NOISE_HASHLEN],
		       uint8_t o2[DD_NOISE_HASHLEN], uint8_t *o3)
{
	static const uint8_t one = 1, two = 2, three = 3;
	uint8_t temp[DD_NOISE_HASHLEN];
	dd_err_t rc;

	rc = hmac(hh, ck, ikm, ikm_len, NULL, 0, temp);
	if (rc)
		goto out;
	rc = hmac(hh, temp, &one, 1, NULL, 0, o1);
	if (rc)
		goto out;
	rc = hmac(hh, temp, o1, DD_NOISE_HASHLEN, &two, 1, o2);
	if (rc || o3 == NULL)
		goto out;
	rc = hmac(hh, temp, o2, DD_NOISE_HASHLEN, &three, 1, o3);
out:
	OPENSSL_cleanse(temp, sizeof temp);
	return rc;
}
