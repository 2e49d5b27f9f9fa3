#include "noise/noise_dh.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/*
 * The points of order 1, 2, 4 and 8 on Curve25519 and the non-canonical
 * encodings of 0 and 1 (p and p+1), top bit clear; the top bit is masked
 * before comparing, so each entry stands for two encodings. The list is
 * the one libsodium and others refuse; every other u-coordinate gives a
 * result no attacker can predict.
 */
static const uint8_t low_order[][DD_X25519_LEN] = {
	/* 0 */
	{ 0 },
	/* 1 */
	{ 1 },
	/* order 8 */
	{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
	  0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
	  0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
	/* order 8 */
	{ 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
	  0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
	  0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
	/* p - 1 (order 2) */
	{ 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	/* p (= 0) */
	{ 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
	/* p + 1 (= 1) */
	{ 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

int dd_noise_dh_low_order(const uint8_t pub[DD_X25519_LEN])
{
	uint8_t k[DD_X25519_LEN];
	int hit = 0;
	size_t i;

	memcpy(k, pub, sizeof k);
	k[DD_X25519_LEN - 1] &= 0x7f;
	for (i = 0; i < sizeof low_order / sizeof low_order[0]; i++)
		hit |= CRYPTO_memcmp(k, low_order[i], sizeof k) == 0;
	return hit;
}

dd_err_t dd_noise_dh_keypair(const uint8_t priv[DD_X25519_LEN],
			     const uint8_t *pub, EVP_PKEY **out,
			     uint8_t *pub_out)
{
	uint8_t sk[DD_X25519_LEN], pk[DD_X25519_LEN];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *k = NULL;
	size_t n = DD_X25519_LEN;
	dd_err_t rc = DD_ERR_CRYPTO;

	*out = NULL;
	/* Copies: OSSL_PARAM wants non-const buffers. */
	memcpy(sk, priv, sizeof sk);
	if (pub == NULL) {
		/* OpenSSL derives the public half when it is not given. */
		k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
						 sizeof sk);
		if (k == NULL || EVP_PKEY_get_raw_public_key(k, pk, &n) != 1 ||
		    n != DD_X25519_LEN)
			goto out;
	} else {
		/* Both halves given: no scalar multiplication at all. */
		memcpy(pk, pub, sizeof pk);
		params[0] = OSSL_PARAM_construct_octet_string(
			OSSL_PKEY_PARAM_PRIV_KEY, sk, sizeof sk);
		params[1] = OSSL_PARAM_construct_octet_string(
			OSSL_PKEY_PARAM_PUB_KEY, pk, sizeof pk);
		params[2] = OSSL_PARAM_construct_end();
		pc = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
		if (pc == NULL || EVP_PKEY_fromdata_init(pc) != 1 ||
		    EVP_PKEY_fromdata(pc, &k, EVP_PKEY_KEYPAIR, params) != 1)
			goto out;
	}
	if (pub_out != NULL)
		memcpy(pub_out, pk, sizeof pk);
	*out = k;
	k = NULL; /* transferred */
	rc = DD_OK;
out:
	OPENSSL_cleanse(sk, sizeof sk);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(k);
	return rc;
}

dd_err_t dd_noise_dh_generate(EVP_PKEY **out, uint8_t pub[DD_X25519_LEN])
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	size_t n = DD_X25519_LEN;

	*out = NULL;
	if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub, &n) != 1 ||
	    n != DD_X25519_LEN) {
		EVP_PKEY_free(k);
		return DD_ERR_CRYPTO;
	}
	*out = k;
	return DD_OK;
}

dd_err_t dd_noise_dh(EVP_PKEY *priv, const uint8_t pub[DD_X25519_LEN],
		     uint8_t out[DD_X25519_LEN])
{
	static const uint8_t zero[DD_X25519_LEN];
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *dc = NULL;
	size_t n = DD_X25519_LEN;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (dd_noise_dh_low_order(pub))
		goto out;
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub,
					   DD_X25519_LEN);
	if (peer == NULL)
		goto out;
	dc = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	if (dc == NULL || EVP_PKEY_derive_init(dc) != 1 ||
	    EVP_PKEY_derive_set_peer_ex(dc, peer, 0) != 1 ||
	    EVP_PKEY_derive(dc, out, &n) != 1 || n != DD_X25519_LEN)
		goto out;
	/* OpenSSL refuses this too; checked here so it never depends on it. */
	if (CRYPTO_memcmp(out, zero, DD_X25519_LEN) == 0)
		goto out;
	rc = DD_OK;
out:
	if (rc)
		OPENSSL_cleanse(out, DD_X25519_LEN);
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(peer);
	return rc;
}
