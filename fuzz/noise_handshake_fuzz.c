/*
 * noise_handshake_fuzz.c: the Noise IK handshake on hostile bytes, as the
 * agent's gateway meets them (a responder with a fixed static key reading
 * message 1), and the initiator reading message 2.
 *
 * Every input is used three ways:
 *   1. as message 1 for a fresh responder (payload kept or discarded);
 *      a failure must end the handshake, a success (the seed is a valid
 *      message 1) must carry an acceptable key and lead to message 2;
 *   2. as the payload of a genuine handshake (fixed keys and ephemerals,
 *      through the test hook): both messages must be read back with the
 *      same payloads, and the transports must carry the input both ways;
 *   3. as a mask XORed over that genuine message 1 and, separately,
 *      message 2: the receiver must accept exactly when the mask changes
 *      nothing, with the message length taken from the input's tail.
 *
 * Seeds (fuzz/seeds/noise_handshake/): the spec 8.1 DD message 1, an
 * empty input, a short one and one of 96 zero bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise.h"
#include "noise/noise_test_hook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX DD_NOISE_MAX_MSG

static dd_static_key ik, rk;
static uint8_t ie[32], re[32];
static uint8_t *msg, *out, *pt;

static void init_once(void)
{
	size_t i;

	if (msg != NULL)
		return;
	for (i = 0; i < 32; i++) {
		ik.priv[i] = (uint8_t)i;
		rk.priv[i] = (uint8_t)(0x20 + i);
		ie[i] = (uint8_t)(0x40 + i);
		re[i] = (uint8_t)(0x60 + i);
	}
	if (dd_static_key_public(ik.priv, ik.pub) != DD_OK ||
	    dd_static_key_public(rk.priv, rk.pub) != DD_OK)
		abort();
	msg = malloc(MAX + 1);
	out = malloc(MAX + 1);
	pt = malloc(MAX + 1);
	if (msg == NULL || out == NULL || pt == NULL)
		abort();
}

static void as_message1(const uint8_t *data, size_t size)
{
	dd_noise_hs *r = NULL;
	dd_noise_transport *t = NULL;
	uint8_t rs[32], m2[DD_NOISE_MSG2_OVERHEAD];
	size_t n = 0;
	dd_err_t rc;

	if (dd_noise_hs_new_responder(&rk, NULL, 0, &r) != DD_OK)
		abort();
	if (size % 2 == 0)
		rc = dd_noise_hs_read_message(r, data, size, pt, MAX + 1, &n);
	else
		rc = dd_noise_hs_read_message(r, data, size, NULL, 0, NULL);
	/* Anyone who knows the agent's public key can write a valid message
	 * 1 (the seed is one): then the rest must work, and the key it
	 * carries must be one we accept. */
	if (rc == DD_OK &&
	    (dd_noise_hs_remote_static(r, rs) != DD_OK ||
	     !dd_noise_pubkey_ok(rs) ||
	     dd_noise_hs_write_message(r, NULL, 0, m2, sizeof m2, &n) !=
		     DD_OK ||
	     dd_noise_hs_split(r, &t) != DD_OK))
		abort();
	if (rc != DD_OK && dd_noise_hs_remote_static(r, rs) != DD_ERR_CLOSED)
		abort();
	dd_noise_transport_free(t);
	dd_noise_hs_free(r);
}

/* The two sides, message 1 written by the initiator. */
static void start(dd_noise_hs **i, dd_noise_hs **r, const uint8_t *payload,
		  size_t len, size_t *n1)
{
	if (dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, i) != DD_OK ||
	    dd_noise_hs_new_responder(&rk, NULL, 0, r) != DD_OK ||
	    dd_noise_hs_fix_ephemeral(*i, ie) != DD_OK ||
	    dd_noise_hs_fix_ephemeral(*r, re) != DD_OK ||
	    dd_noise_hs_write_message(*i, payload, len, msg, MAX, n1) != DD_OK)
		abort();
}

static void genuine(const uint8_t *data, size_t size)
{
	size_t len = size > MAX - DD_NOISE_MSG1_OVERHEAD
			     ? MAX - DD_NOISE_MSG1_OVERHEAD
			     : size;
	dd_noise_hs *i = NULL, *r = NULL;
	dd_noise_transport *ti = NULL, *tr = NULL;
	size_t n1 = 0, n2 = 0, got = 0, k = 0;
	uint8_t h1[32], h2[32];

	start(&i, &r, data, len, &n1);
	if (n1 != len + DD_NOISE_MSG1_OVERHEAD ||
	    dd_noise_hs_read_message(r, msg, n1, pt, MAX, &got) != DD_OK ||
	    got != len || (len > 0 && memcmp(pt, data, len) != 0) ||
	    dd_noise_hs_write_message(r, data, len, out, MAX, &n2) != DD_OK ||
	    dd_noise_hs_read_message(i, out, n2, pt, MAX, &got) != DD_OK ||
	    got != len || (len > 0 && memcmp(pt, data, len) != 0) ||
	    dd_noise_hs_handshake_hash(i, h1) != DD_OK ||
	    dd_noise_hs_handshake_hash(r, h2) != DD_OK ||
	    memcmp(h1, h2, 32) != 0 || dd_noise_hs_split(i, &ti) != DD_OK ||
	    dd_noise_hs_split(r, &tr) != DD_OK)
		abort();
	if (len <= DD_NOISE_MAX_PLAINTEXT &&
	    (dd_noise_transport_encrypt(tr, data, len, out, MAX, &k) != DD_OK ||
	     dd_noise_transport_decrypt(ti, out, k, pt, MAX, &got) != DD_OK ||
	     got != len || (len > 0 && memcmp(pt, data, len) != 0)))
		abort();
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
	dd_noise_transport_free(ti);
	dd_noise_transport_free(tr);
}

/* XORs data over buf[0..n) and says whether that changed anything. */
static int mask(uint8_t *buf, size_t n, const uint8_t *data, size_t size)
{
	size_t j;
	int changed = 0;

	for (j = 0; j < n && j < size; j++) {
		buf[j] ^= data[j];
		changed |= data[j] != 0;
	}
	return changed;
}

static void masked(const uint8_t *data, size_t size)
{
	dd_noise_hs *i = NULL, *r = NULL;
	size_t n1 = 0, n2 = 0, len;
	int changed, ok;

	/* Message 1, its length cut by the last input byte. */
	start(&i, &r, NULL, 0, &n1);
	changed = mask(msg, n1, data, size);
	len = n1;
	if (size > 0 && data[size - 1] >= 0xf0) {
		len = (size_t)(data[size - 1] - 0xf0) * 7;
		changed |= len != n1;
	}
	ok = dd_noise_hs_read_message(r, msg, len, NULL, 0, NULL) == DD_OK;
	if (ok == changed)
		abort();
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
	/* Message 2 the same way. */
	start(&i, &r, NULL, 0, &n1);
	if (dd_noise_hs_read_message(r, msg, n1, NULL, 0, NULL) != DD_OK ||
	    dd_noise_hs_write_message(r, NULL, 0, out, MAX, &n2) != DD_OK)
		abort();
	changed = mask(out, n2, data, size);
	ok = dd_noise_hs_read_message(i, out, n2, NULL, 0, NULL) == DD_OK;
	if (ok == changed)
		abort();
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	as_message1(data, size);
	genuine(data, size);
	masked(data, size);
	return 0;
}
