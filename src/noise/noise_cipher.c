#include "noise/noise_cipher.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define NONCE_LEN 12
/* Plaintext streamed through the stack when the caller discards it. */
#define DISCARD_CHUNK 64

void dd_noise_cipher_init(dd_noise_cipher *c)
{
	memset(c, 0, sizeof *c);
}

void dd_noise_cipher_cleanup(dd_noise_cipher *c)
{
	EVP_CIPHER_CTX_free(c->ctx); /* the provider wipes the key */
	memset(c, 0, sizeof *c);
}

dd_err_t dd_noise_cipher_set_key(dd_noise_cipher *c,
				 const uint8_t k[DD_NOISE_KEYLEN])
{
	const EVP_CIPHER *type = NULL;

	c->has_key = 0;
	c->n = 0;
	if (c->ctx == NULL) {
		c->ctx = EVP_CIPHER_CTX_new();
		if (c->ctx == NULL)
			return DD_ERR_NOMEM;
		type = EVP_chacha20_poly1305();
	}
	/* type NULL: same cipher, new key, context and memory reused. */
	if (EVP_CipherInit_ex(c->ctx, type, NULL, k, NULL, 1) != 1) {
		dd_noise_cipher_cleanup(c);
		return DD_ERR_CRYPTO;
	}
	c->has_key = 1;
	return DD_OK;
}

int dd_noise_cipher_has_key(const dd_noise_cipher *c)
{
	return c->has_key;
}

void dd_noise_cipher_set_nonce(dd_noise_cipher *c, uint64_t n)
{
	c->n = n;
}

static void nonce_bytes(uint64_t n, uint8_t iv[NONCE_LEN])
{
	int i;

	memset(iv, 0, 4);
	for (i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(n >> (8 * i));
}

/* One AEAD operation at nonce n; in_len is the plaintext length. */
static dd_err_t seal(dd_noise_cipher *c, uint64_t n, const uint8_t *ad,
		     size_t ad_len, const uint8_t *in, size_t in_len,
		     uint8_t *out)
{
	uint8_t iv[NONCE_LEN];
	int l = 0;

	nonce_bytes(n, iv);
	if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, iv, 1) != 1 ||
	    (ad_len > 0 &&
	     EVP_CipherUpdate(c->ctx, NULL, &l, ad, (int)ad_len) != 1) ||
	    (in_len > 0 &&
	     EVP_CipherUpdate(c->ctx, out, &l, in, (int)in_len) != 1) ||
	    EVP_CipherFinal_ex(c->ctx, out + in_len, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG,
				DD_NOISE_AEAD_TAG, out + in_len) != 1)
		return DD_ERR_CRYPTO;
	return DD_OK;
}

/* Decrypts in_len bytes (tag excluded) into out, or through a stack
 * buffer when out is NULL; the caller checks the tag with Final. */
static int open_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t in_len,
		       uint8_t *out)
{
	uint8_t scratch[DISCARD_CHUNK];
	size_t off, chunk;
	int l = 0, ok = 1;

	if (out != NULL)
		return in_len == 0 ||
		       EVP_CipherUpdate(ctx, out, &l, in, (int)in_len) == 1;
	for (off = 0; ok && off < in_len; off += chunk) {
		chunk = in_len - off < sizeof scratch ? in_len - off
						      : sizeof scratch;
		ok = EVP_CipherUpdate(ctx, scratch, &l, in + off,
				      (int)chunk) == 1;
	}
	OPENSSL_cleanse(scratch, sizeof scratch);
	return ok;
}

dd_err_t dd_noise_cipher_encrypt(dd_noise_cipher *c, const uint8_t *ad,
				 size_t ad_len, const uint8_t *in,
				 size_t in_len, uint8_t *out, size_t out_cap,
				 size_t *out_len)
{
	dd_err_t rc;

	if (!c->has_key) {
		if (in_len > DD_NOISE_CIPHER_MAX || out_cap < in_len)
			return DD_ERR_TOO_LARGE;
		if (in_len > 0 && out != in)
			memmove(out, in, in_len);
		*out_len = in_len;
		return DD_OK;
	}
	if (c->n == UINT64_MAX)
		return DD_ERR_RANGE;
	if (in_len > DD_NOISE_CIPHER_MAX - DD_NOISE_AEAD_TAG ||
	    out_cap < in_len + DD_NOISE_AEAD_TAG)
		return DD_ERR_TOO_LARGE;
	rc = seal(c, c->n, ad, ad_len, in, in_len, out);
	if (rc) {
		OPENSSL_cleanse(out, in_len + DD_NOISE_AEAD_TAG);
		return rc;
	}
	c->n++;
	*out_len = in_len + DD_NOISE_AEAD_TAG;
	return DD_OK;
}

dd_err_t dd_noise_cipher_decrypt(dd_noise_cipher *c, const uint8_t *ad,
				 size_t ad_len, const uint8_t *in,
				 size_t in_len, uint8_t *out, size_t out_cap,
				 size_t *out_len)
{
	uint8_t iv[NONCE_LEN], tag[DD_NOISE_AEAD_TAG];
	size_t pt_len;
	int l = 0, ok;

	if (in_len > DD_NOISE_CIPHER_MAX)
		return DD_ERR_TOO_LARGE;
	if (!c->has_key) {
		if (out != NULL) {
			if (out_cap < in_len)
				return DD_ERR_TOO_LARGE;
			if (in_len > 0 && out != in)
				memmove(out, in, in_len);
		}
		if (out_len != NULL)
			*out_len = in_len;
		return DD_OK;
	}
	if (c->n == UINT64_MAX)
		return DD_ERR_RANGE;
	if (in_len < DD_NOISE_AEAD_TAG)
		return DD_ERR_INVALID;
	pt_len = in_len - DD_NOISE_AEAD_TAG;
	if (out != NULL && out_cap < pt_len)
		return DD_ERR_TOO_LARGE;
	/* Copied: ctrl wants a non-const pointer. */
	memcpy(tag, in + pt_len, sizeof tag);
	nonce_bytes(c->n, iv);
	ok = EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, iv, 0) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, sizeof tag,
				 tag) == 1 &&
	     (ad_len == 0 ||
	      EVP_CipherUpdate(c->ctx, NULL, &l, ad, (int)ad_len) == 1) &&
	     open_update(c->ctx, in, pt_len, out) &&
	     /* Final writes nothing for this cipher; iv is only a target. */
	     EVP_CipherFinal_ex(c->ctx, iv, &l) == 1;
	if (!ok) {
		/* Unauthenticated plaintext never reaches the caller. */
		if (out != NULL)
			OPENSSL_cleanse(out, pt_len);
		return DD_ERR_CRYPTO;
	}
	c->n++;
	if (out_len != NULL)
		*out_len = pt_len;
	return DD_OK;
}

dd_err_t dd_noise_cipher_rekey(dd_noise_cipher *c)
{
	uint8_t zeros[DD_NOISE_KEYLEN] = { 0 };
	uint8_t buf[DD_NOISE_KEYLEN + DD_NOISE_AEAD_TAG];
	uint64_t n = c->n;
	dd_err_t rc;

	if (!c->has_key)
		return DD_ERR_INVALID;
	rc = seal(c, UINT64_MAX, NULL, 0, zeros, sizeof zeros, buf);
	if (rc == DD_OK)
		rc = dd_noise_cipher_set_key(c, buf);
	/* Rekey keeps the counter (Noise 4.2). */
	c->n = n;
	OPENSSL_cleanse(buf, sizeof buf);
	return rc;
}
