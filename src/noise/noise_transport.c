#include "noise/noise_transport.h"

#include "core/alloc.h"
#include "noise/noise_cipher.h"

struct dd_noise_transport {
	dd_noise_cipher send;
	dd_noise_cipher recv;
	int closed; /* a decryption failed: nothing more either way */
};

dd_err_t dd_noise_transport_split(dd_noise_symmetric *ss, int initiator,
				  dd_noise_transport **out)
{
	dd_noise_transport *t = dd_calloc(1, sizeof *t);
	dd_err_t rc;

	*out = NULL;
	if (t == NULL)
		return DD_ERR_NOMEM;
	if (initiator)
		rc = dd_noise_sym_split(ss, &t->send, &t->recv);
	else
		rc = dd_noise_sym_split(ss, &t->recv, &t->send);
	if (rc) {
		dd_noise_transport_free(t);
		return rc;
	}
	*out = t;
	return DD_OK;
}

void dd_noise_transport_free(dd_noise_transport *t)
{
	if (t == NULL)
		return;
	dd_noise_cipher_cleanup(&t->send);
	dd_noise_cipher_cleanup(&t->recv);
	dd_freezero(t, sizeof *t);
}

dd_err_t dd_noise_transport_encrypt(dd_noise_transport *t, const uint8_t *in,
				    size_t in_len, uint8_t *out, size_t out_cap,
				    size_t *out_len)
{
	if (t->closed)
		return DD_ERR_CLOSED;
	if (in_len > DD_NOISE_MAX_PLAINTEXT)
		return DD_ERR_TOO_LARGE;
	return dd_noise_cipher_encrypt(&t->send, NULL, 0, in, in_len, out,
				       out_cap, out_len);
}

dd_err_t dd_noise_transport_decrypt(dd_noise_transport *t, const uint8_t *in,
				    size_t in_len, uint8_t *out, size_t out_cap,
				    size_t *out_len)
{
	dd_err_t rc;

	if (t->closed)
		return DD_ERR_CLOSED;
	/* A null out would mean "discard" to the cipher: not for transport. */
	if (out == NULL) {
		t->closed = 1;
		return DD_ERR_INVALID;
	}
	rc = dd_noise_cipher_decrypt(&t->recv, NULL, 0, in, in_len, out,
				     out_cap, out_len);
	if (rc)
		t->closed = 1;
	return rc;
}
