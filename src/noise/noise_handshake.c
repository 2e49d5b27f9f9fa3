/*
 * The IK HandshakeState (Noise revision 34, sections 5.3 and 7.5):
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/cursor.h"
#include "noise/noise.h"
#include "noise/noise_dh.h"
#include "noise/noise_symmetric.h"
#include "noise/noise_test_hook.h"
#include "noise/noise_transport.h"

#define KEYLEN DD_X25519_LEN
#define SEALED_KEYLEN (KEYLEN + DD_NOISE_TAG_LEN)

enum step {
	STEP_MSG1,   /* message 1 not yet written / read */
	STEP_MSG2,   /* message 2 not yet written / read */
	STEP_DONE,   /* both processed: split may follow */
	STEP_SPLIT,  /* transport handed out */
	STEP_FAILED, /* an error ended the handshake */
};

struct dd_noise_hs {
	dd_noise_symmetric ss;
	EVP_PKEY *s;          /* local static; freed once done */
	EVP_PKEY *e;          /* local ephemeral; freed once done */
	uint8_t s_pub[KEYLEN];
	uint8_t e_pub[KEYLEN];
	uint8_t rs[KEYLEN];
	uint8_t re[KEYLEN];
	uint8_t fixed_e[KEYLEN]; /* test hook only */
	int has_fixed_e;
	int has_rs;
	int initiator;
	enum step step;
};

int dd_noise_pubkey_ok(const uint8_t pub[DD_X25519_LEN])
{
	return !dd_noise_dh_low_order(pub);
}

/* Drops every private key; ss is kept for the handshake hash. */
static void drop_keys(dd_noise_hs *hs)
{
	EVP_PKEY_free(hs->s);
	EVP_PKEY_free(hs->e);
	hs->s = hs->e = NULL;
	OPENSSL_cleanse(hs->fixed_e, sizeof hs->fixed_e);
	hs->has_fixed_e = 0;
}

/* Ends the handshake after an error; every later call is DD_ERR_CLOSED. */
static dd_err_t fail(dd_noise_hs *hs, dd_err_t rc)
{
	drop_keys(hs);
	dd_noise_sym_cleanup(&hs->ss);
	hs->has_rs = 0;
	hs->step = STEP_FAILED;
	return rc;
}

static dd_err_t hs_new(const dd_static_key *s, int initiator,
		       const uint8_t *prologue, size_t prologue_len,
		       dd_noise_hs **out)
{
	dd_noise_hs *hs = dd_calloc(1, sizeof *hs);
	dd_err_t rc;

	*out = NULL;
	if (hs == NULL)
		return DD_ERR_NOMEM;
	hs->initiator = initiator;
	rc = dd_noise_sym_init(&hs->ss, DD_NOISE_PROTOCOL_NAME);
	if (rc == DD_OK)
		rc = dd_noise_dh_keypair(s->priv, s->pub, &hs->s, hs->s_pub);
	/* The prologue is mixed in even when empty (spec 2.2). */
	if (rc == DD_OK)
		rc = dd_noise_sym_mix_hash(&hs->ss, prologue, prologue_len);
	if (rc) {
		dd_noise_hs_free(hs);
		return rc;
	}
	*out = hs;
	return DD_OK;
}

dd_err_t dd_noise_hs_new_initiator(const dd_static_key *s,
				   const uint8_t rs[DD_X25519_LEN],
				   const uint8_t *prologue, size_t prologue_len,
				   dd_noise_hs **out)
{
	dd_noise_hs *hs = NULL;
	dd_err_t rc;

	*out = NULL;
	if (dd_noise_dh_low_order(rs))
		return DD_ERR_CRYPTO;
	rc = hs_new(s, 1, prologue, prologue_len, &hs);
	if (rc)
		return rc;
	memcpy(hs->rs, rs, KEYLEN);
	hs->has_rs = 1;
	/* Pre-message "<- s": the responder's static key. */
	rc = dd_noise_sym_mix_hash(&hs->ss, hs->rs, KEYLEN);
	if (rc) {
		dd_noise_hs_free(hs);
		return rc;
	}
	*out = hs;
	return DD_OK;
}

dd_err_t dd_noise_hs_new_responder(const dd_static_key *s,
				   const uint8_t *prologue, size_t prologue_len,
				   dd_noise_hs **out)
{
	dd_noise_hs *hs = NULL;
	dd_err_t rc;

	*out = NULL;
	rc = hs_new(s, 0, prologue, prologue_len, &hs);
	if (rc)
		return rc;
	rc = dd_noise_sym_mix_hash(&hs->ss, hs->s_pub, KEYLEN);
	if (rc) {
		dd_noise_hs_free(hs);
		return rc;
	}
	*out = hs;
	return DD_OK;
}

void dd_noise_hs_free(dd_noise_hs *hs)
{
	if (hs == NULL)
		return;
	drop_keys(hs);
	dd_noise_sym_cleanup(&hs->ss);
	dd_freezero(hs, sizeof *hs);
}

dd_err_t dd_noise_hs_fix_ephemeral(dd_noise_hs *hs,
				   const uint8_t priv[DD_X25519_LEN])
{
	if (hs->e != NULL || hs->step > STEP_MSG2 ||
	    (hs->initiator && hs->step != STEP_MSG1))
		return DD_ERR_INVALID;
	memcpy(hs->fixed_e, priv, KEYLEN);
	hs->has_fixed_e = 1;
	return DD_OK;
}

/* Token "e" on the writing side: a fresh (or the injected) ephemeral,
 * sent in clear and mixed into h. */
static dd_err_t write_e(dd_noise_hs *hs, uint8_t *out)
{
	dd_err_t rc;

	if (hs->has_fixed_e)
		rc = dd_noise_dh_keypair(hs->fixed_e, NULL, &hs->e, hs->e_pub);
	else
		rc = dd_noise_dh_generate(&hs->e, hs->e_pub);
	OPENSSL_cleanse(hs->fixed_e, sizeof hs->fixed_e);
	hs->has_fixed_e = 0;
	if (rc)
		return rc;
	memcpy(out, hs->e_pub, KEYLEN);
	return dd_noise_sym_mix_hash(&hs->ss, hs->e_pub, KEYLEN);
}

/* Token "e" on the reading side. */
static dd_err_t read_e(dd_noise_hs *hs, dd_cursor *c)
{
	dd_err_t rc = dd_cur_get_bytes(c, hs->re, KEYLEN);

	if (rc)
		return DD_ERR_INVALID;
	if (dd_noise_dh_low_order(hs->re))
		return DD_ERR_CRYPTO;
	return dd_noise_sym_mix_hash(&hs->ss, hs->re, KEYLEN);
}

/* Tokens "ee", "es", "se", "ss": MixKey(DH(priv, pub)). */
static dd_err_t mix_dh(dd_noise_hs *hs, EVP_PKEY *priv, const uint8_t *pub)
{
	uint8_t dh[KEYLEN];
	dd_err_t rc = dd_noise_dh(priv, pub, dh);

	if (rc == DD_OK)
		rc = dd_noise_sym_mix_key(&hs->ss, dh, sizeof dh);
	OPENSSL_cleanse(dh, sizeof dh);
	return rc;
}

/* -> e, es, s, ss, payload */
static dd_err_t write_msg1(dd_noise_hs *hs, const uint8_t *payload,
			   size_t payload_len, uint8_t *out, size_t out_cap,
			   size_t *out_len)
{
	size_t n = 0, m = 0;
	dd_err_t rc;

	rc = write_e(hs, out);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->e, hs->rs);
	if (rc == DD_OK)
		rc = dd_noise_sym_encrypt_and_hash(&hs->ss, hs->s_pub, KEYLEN,
						   out + KEYLEN, SEALED_KEYLEN,
						   &n);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->s, hs->rs);
	if (rc == DD_OK)
		rc = dd_noise_sym_encrypt_and_hash(
			&hs->ss, payload, payload_len, out + KEYLEN + n,
			out_cap - KEYLEN - n, &m);
	if (rc == DD_OK)
		*out_len = KEYLEN + n + m;
	return rc;
}

/* <- e, ee, se, payload */
static dd_err_t write_msg2(dd_noise_hs *hs, const uint8_t *payload,
			   size_t payload_len, uint8_t *out, size_t out_cap,
			   size_t *out_len)
{
	size_t m = 0;
	dd_err_t rc;

	rc = write_e(hs, out);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->e, hs->re);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->e, hs->rs);
	if (rc == DD_OK)
		rc = dd_noise_sym_encrypt_and_hash(&hs->ss, payload,
						   payload_len, out + KEYLEN,
						   out_cap - KEYLEN, &m);
	if (rc == DD_OK)
		*out_len = KEYLEN + m;
	return rc;
}

dd_err_t dd_noise_hs_write_message(dd_noise_hs *hs, const uint8_t *payload,
				   size_t payload_len, uint8_t *out,
				   size_t out_cap, size_t *out_len)
{
	enum step want = hs->initiator ? STEP_MSG1 : STEP_MSG2;
	size_t overhead = hs->initiator ? DD_NOISE_MSG1_OVERHEAD
					: DD_NOISE_MSG2_OVERHEAD;
	dd_err_t rc;

	if (hs->step == STEP_FAILED)
		return DD_ERR_CLOSED;
	if (hs->step != want)
		return fail(hs, DD_ERR_INVALID);
	if (payload_len > DD_NOISE_MAX_MSG - overhead ||
	    out_cap < payload_len + overhead)
		return fail(hs, DD_ERR_TOO_LARGE);
	if (hs->initiator)
		rc = write_msg1(hs, payload, payload_len, out, out_cap, out_len);
	else
		rc = write_msg2(hs, payload, payload_len, out, out_cap, out_len);
	if (rc)
		return fail(hs, rc);
	hs->step++;
	if (hs->step == STEP_DONE)
		drop_keys(hs);
	return DD_OK;
}

/* Decrypts the rest of the message as the payload. */
static dd_err_t read_payload(dd_noise_hs *hs, dd_cursor *c, uint8_t *payload,
			     size_t payload_cap, size_t *payload_len)
{
	size_t n = dd_cur_remaining(c);

	return dd_noise_sym_decrypt_and_hash(&hs->ss, dd_cur_ptr(c), n,
					     payload, payload_cap,
					     payload_len);
}

/* -> e, es, s, ss, payload (responder) */
static dd_err_t read_msg1(dd_noise_hs *hs, dd_cursor *c, uint8_t *payload,
			  size_t payload_cap, size_t *payload_len)
{
	const uint8_t *sealed = NULL;
	size_t n = 0;
	dd_err_t rc;

	rc = read_e(hs, c);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->s, hs->re);
	if (rc == DD_OK && dd_cur_get_span(c, SEALED_KEYLEN, &sealed) != DD_OK)
		rc = DD_ERR_INVALID;
	if (rc == DD_OK)
		rc = dd_noise_sym_decrypt_and_hash(&hs->ss, sealed,
						   SEALED_KEYLEN, hs->rs,
						   KEYLEN, &n);
	/* The initiator's key is authenticated now, but may still be one no
	 * DH should be done with. */
	if (rc == DD_OK && dd_noise_dh_low_order(hs->rs))
		rc = DD_ERR_CRYPTO;
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->s, hs->rs);
	if (rc == DD_OK)
		rc = read_payload(hs, c, payload, payload_cap, payload_len);
	if (rc == DD_OK)
		hs->has_rs = 1;
	return rc;
}

/* <- e, ee, se, payload (initiator) */
static dd_err_t read_msg2(dd_noise_hs *hs, dd_cursor *c, uint8_t *payload,
			  size_t payload_cap, size_t *payload_len)
{
	dd_err_t rc;

	rc = read_e(hs, c);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->e, hs->re);
	if (rc == DD_OK)
		rc = mix_dh(hs, hs->s, hs->re);
	if (rc == DD_OK)
		rc = read_payload(hs, c, payload, payload_cap, payload_len);
	return rc;
}

dd_err_t dd_noise_hs_read_message(dd_noise_hs *hs, const uint8_t *msg,
				  size_t msg_len, uint8_t *payload,
				  size_t payload_cap, size_t *payload_len)
{
	enum step want = hs->initiator ? STEP_MSG2 : STEP_MSG1;
	size_t overhead = hs->initiator ? DD_NOISE_MSG2_OVERHEAD
					: DD_NOISE_MSG1_OVERHEAD;
	size_t ignored = 0;
	dd_cursor c;
	dd_err_t rc;

	if (hs->step == STEP_FAILED)
		return DD_ERR_CLOSED;
	if (hs->step != want)
		return fail(hs, DD_ERR_INVALID);
	if (msg_len > DD_NOISE_MAX_MSG)
		return fail(hs, DD_ERR_TOO_LARGE);
	if (msg_len < overhead)
		return fail(hs, DD_ERR_INVALID);
	if (payload == NULL ? payload_cap != 0
			    : payload_cap < msg_len - overhead)
		return fail(hs, payload == NULL ? DD_ERR_INVALID
						: DD_ERR_TOO_LARGE);
	if (payload_len == NULL)
		payload_len = &ignored;
	dd_cur_init(&c, msg, msg_len);
	if (hs->initiator)
		rc = read_msg2(hs, &c, payload, payload_cap, payload_len);
	else
		rc = read_msg1(hs, &c, payload, payload_cap, payload_len);
	if (rc)
		return fail(hs, rc);
	hs->step++;
	if (hs->step == STEP_DONE)
		drop_keys(hs);
	return DD_OK;
}

int dd_noise_hs_done(const dd_noise_hs *hs)
{
	return hs->step == STEP_DONE || hs->step == STEP_SPLIT;
}

dd_err_t dd_noise_hs_remote_static(const dd_noise_hs *hs,
				   uint8_t out[DD_X25519_LEN])
{
	if (hs->step == STEP_FAILED)
		return DD_ERR_CLOSED;
	if (!hs->has_rs)
		return DD_ERR_INVALID;
	memcpy(out, hs->rs, KEYLEN);
	return DD_OK;
}

dd_err_t dd_noise_hs_handshake_hash(const dd_noise_hs *hs,
				    uint8_t out[DD_NOISE_HASH_LEN])
{
	if (hs->step == STEP_FAILED)
		return DD_ERR_CLOSED;
	if (hs->step != STEP_DONE && hs->step != STEP_SPLIT)
		return DD_ERR_INVALID;
	dd_noise_sym_handshake_hash(&hs->ss, out);
	return DD_OK;
}

dd_err_t dd_noise_hs_split(dd_noise_hs *hs, dd_noise_transport **out)
{
	uint8_t h[DD_NOISE_HASH_LEN];
	dd_err_t rc;

	*out = NULL;
	if (hs->step == STEP_FAILED)
		return DD_ERR_CLOSED;
	if (hs->step != STEP_DONE)
		return fail(hs, DD_ERR_INVALID);
	rc = dd_noise_transport_split(&hs->ss, hs->initiator, out);
	if (rc)
		return fail(hs, rc);
	/* Only h outlives the split; ck and the handshake key go. */
	memcpy(h, hs->ss.h, sizeof h);
	dd_noise_sym_cleanup(&hs->ss);
	memcpy(hs->ss.h, h, sizeof h);
	hs->step = STEP_SPLIT;
	return DD_OK;
}
