#include "noise/noise_symmetric.h"

#include <string.h>

#include <openssl/crypto.h>

dd_err_t dd_noise_sym_init(dd_noise_symmetric *ss, const char *protocol_name)
{
	size_t len = strlen(protocol_name);
	dd_err_t rc;

	memset(ss, 0, sizeof *ss);
	rc = dd_noise_hash_init(&ss->hash);
	if (rc)
		return rc;
	/* A name longer than HASHLEN is hashed, a shorter one zero-padded. */
	if (len <= DD_NOISE_HASHLEN) {
		memcpy(ss->h, protocol_name, len);
	} else {
		rc = dd_noise_hash2(&ss->hash, (const uint8_t *)protocol_name,
				    len, NULL, 0, ss->h);
		if (rc)
			return rc;
	}
	memcpy(ss->ck, ss->h, sizeof ss->ck);
	dd_noise_cipher_init(&ss->cs);
	return DD_OK;
}

void dd_noise_sym_cleanup(dd_noise_symmetric *ss)
{
	dd_noise_cipher_cleanup(&ss->cs);
	dd_noise_hash_cleanup(&ss->hash);
	OPENSSL_cleanse(ss, sizeof *ss);
}

dd_err_t dd_noise_sym_mix_key(dd_noise_symmetric *ss, const uint8_t *ikm,
			      size_t ikm_len)
{
	uint8_t k[DD_NOISE_HASHLEN];
	dd_err_t rc;

	rc = dd_noise_hkdf(&ss->hash, ss->ck, ikm, ikm_len, ss->ck, k, NULL);
	if (rc == DD_OK)
		rc = dd_noise_cipher_set_key(&ss->cs, k);
	OPENSSL_cleanse(k, sizeof k);
	return rc;
}

dd_err_t dd_noise_sym_mix_hash(dd_noise_symmetric *ss, const uint8_t *data,
			       size_t len)
{
	return dd_noise_hash2(&ss->hash, ss->h, sizeof ss->h, data, len, ss->h);
}

dd_err_t dd_noise_sym_mix_key_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *ikm, size_t ikm_len)
{
	uint8_t th[DD_NOISE_HASHLEN], k[DD_NOISE_HASHLEN];
	dd_err_t rc;

	rc = dd_noise_hkdf(&ss->hash, ss->ck, ikm, ikm_len, ss->ck, th, k);
	if (rc == DD_OK)
		rc = dd_noise_sym_mix_hash(ss, th, sizeof th);
	if (rc == DD_OK)
		rc = dd_noise_cipher_set_key(&ss->cs, k);
	OPENSSL_cleanse(th, sizeof th);
	OPENSSL_cleanse(k, sizeof k);
	return rc;
}

void dd_noise_sym_handshake_hash(const dd_noise_symmetric *ss,
				 uint8_t out[DD_NOISE_HASHLEN])
{
	memcpy(out, ss->h, DD_NOISE_HASHLEN);
}

dd_err_t dd_noise_sym_encrypt_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *in, size_t in_len,
				       uint8_t *out, size_t out_cap,
				       size_t *out_len)
{
	dd_err_t rc;

	rc = dd_noise_cipher_encrypt(&ss->cs, ss->h, sizeof ss->h, in, in_len,
				     out, out_cap, out_len);
	if (rc)
		return rc;
	return dd_noise_sym_mix_hash(ss, out, *out_len);
}

dd_err_t dd_noise_sym_decrypt_and_hash(dd_noise_symmetric *ss,
				       const uint8_t *in, size_t in_len,
				       uint8_t *out, size_t out_cap,
				       size_t *out_len)
{
	dd_err_t rc;

	rc = dd_noise_cipher_decrypt(&ss->cs, ss->h, sizeof ss->h, in, in_len,
				     out, out_cap, out_len);
	if (rc)
		return rc;
	return dd_noise_sym_mix_hash(ss, in, in_len);
}

dd_err_t dd_noise_sym_split(dd_noise_symmetric *ss, dd_noise_cipher *c1,
			    dd_noise_cipher *c2)
{
	uint8_t k1[DD_NOISE_HASHLEN], k2[DD_NOISE_HASHLEN];
	dd_err_t rc;

	rc = dd_noise_hkdf(&ss->hash, ss->ck, NULL, 0, k1, k2, NULL);
	if (rc == DD_OK)
		rc = dd_noise_cipher_set_key(c1, k1);
	if (rc == DD_OK)
		rc = dd_noise_cipher_set_key(c2, k2);
	if (rc) {
		dd_noise_cipher_cleanup(c1);
		dd_noise_cipher_cleanup(c2);
	}
	OPENSSL_cleanse(k1, sizeof k1);
	OPENSSL_cleanse(k2, sizeof k2);
	return rc;
}
