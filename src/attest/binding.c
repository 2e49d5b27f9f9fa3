#include "attest/binding.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <string.h>

#include "core/strutil.h"

static const char register_label[] = "devopsdefender/register/v1";
static const char cp_label[] = "devopsdefender/cp-attest/v1";

/* SHA-512(label || nonce || pubkey); pubkey may be NULL. */
static dd_err_t labelled_hash(const char *label, const uint8_t *nonce,
			      size_t nonce_len, const uint8_t *pubkey,
			      uint8_t out[DD_REPORT_DATA_LEN])
{
	EVP_MD_CTX *md = NULL;
	unsigned int n = 0;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (nonce_len == 0 || nonce_len > DD_BINDING_MAX_NONCE)
		return DD_ERR_INVALID;
	md = EVP_MD_CTX_new();
	if (md == NULL)
		return DD_ERR_NOMEM;
	if (EVP_DigestInit_ex(md, EVP_sha512(), NULL) != 1 ||
	    EVP_DigestUpdate(md, label, strlen(label)) != 1 ||
	    EVP_DigestUpdate(md, nonce, nonce_len) != 1 ||
	    (pubkey != NULL &&
	     EVP_DigestUpdate(md, pubkey, DD_NOISE_PUBKEY_LEN) != 1) ||
	    EVP_DigestFinal_ex(md, out, &n) != 1 || n != DD_REPORT_DATA_LEN)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

dd_err_t dd_binding_register(const uint8_t *nonce, size_t nonce_len,
			     const uint8_t pubkey[DD_NOISE_PUBKEY_LEN],
			     uint8_t out[DD_REPORT_DATA_LEN])
{
	return labelled_hash(register_label, nonce, nonce_len, pubkey, out);
}

dd_err_t dd_binding_noise(const uint8_t *nonce, size_t nonce_len,
			  const uint8_t pubkey[DD_NOISE_PUBKEY_LEN],
			  uint8_t out[DD_REPORT_DATA_LEN])
{
	return labelled_hash(DD_BINDING_NOISE_LABEL, nonce, nonce_len, pubkey,
			     out);
}

dd_err_t dd_binding_cp_attest(const uint8_t *nonce, size_t nonce_len,
			      uint8_t out[DD_REPORT_DATA_LEN])
{
	return labelled_hash(cp_label, nonce, nonce_len, NULL, out);
}

dd_err_t dd_binding_check(const uint8_t report_data[DD_REPORT_DATA_LEN],
			  const uint8_t *nonce, size_t nonce_len,
			  const uint8_t pubkey[DD_NOISE_PUBKEY_LEN])
{
	uint8_t want[DD_REPORT_DATA_LEN];
	dd_err_t rc = dd_binding_register(nonce, nonce_len, pubkey, want);

	if (rc)
		return rc;
	if (CRYPTO_memcmp(want, report_data, sizeof want) != 0)
		return DD_ERR_CRYPTO;
	return DD_OK;
}

dd_err_t dd_binding_check_hex(const char *report_data_hex,
			      const uint8_t *nonce, size_t nonce_len,
			      const uint8_t pubkey[DD_NOISE_PUBKEY_LEN])
{
	uint8_t rd[DD_REPORT_DATA_LEN];

	if (report_data_hex == NULL ||
	    strlen(report_data_hex) != 2 * DD_REPORT_DATA_LEN ||
	    dd_hex_decode(report_data_hex, 2 * DD_REPORT_DATA_LEN, rd,
			  sizeof rd) != DD_OK)
		return DD_ERR_CRYPTO;
	return dd_binding_check(rd, nonce, nonce_len, pubkey);
}
