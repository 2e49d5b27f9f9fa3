/*
 * noise_transport_fuzz.c: Noise transport decryption on hostile bytes.
 *
 * Each input is a script of frames, each a control byte and up to 255
 * bytes (length from the control byte's low bits and the next byte):
 *   bit 7 clear  the sender encrypts the frame's bytes and the receiver
 *                decrypts them: must succeed and round-trip exactly,
 *                unless the transport was already closed;
 *   bit 7 set    the frame's bytes go to the receiver as a transport
 *                message: must fail (a forgery), and from then on the
 *                receiver's transport must refuse everything, sending
 *                included (DD_ERR_CLOSED);
 *   bit 6        the direction (initiator to responder or back).
 * A fresh handshake (fixed keys and ephemerals) starts every input, so
 * the counters start at 0 as after a real split.
 *
 * Seeds (fuzz/seeds/noise_transport/): a few small scripts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "noise/noise.h"
#include "noise/noise_test_hook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dd_static_key ik, rk;
static uint8_t ie[32], re[32];
static int ready;

static void init_once(void)
{
	size_t i;

	if (ready)
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
	ready = 1;
}

static void handshake(dd_noise_transport **ti, dd_noise_transport **tr)
{
	uint8_t m1[DD_NOISE_MSG1_OVERHEAD], m2[DD_NOISE_MSG2_OVERHEAD];
	dd_noise_hs *i = NULL, *r = NULL;
	size_t n1 = 0, n2 = 0;

	if (dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i) != DD_OK ||
	    dd_noise_hs_new_responder(&rk, NULL, 0, &r) != DD_OK ||
	    dd_noise_hs_fix_ephemeral(i, ie) != DD_OK ||
	    dd_noise_hs_fix_ephemeral(r, re) != DD_OK ||
	    dd_noise_hs_write_message(i, NULL, 0, m1, sizeof m1, &n1) != DD_OK ||
	    dd_noise_hs_read_message(r, m1, n1, NULL, 0, NULL) != DD_OK ||
	    dd_noise_hs_write_message(r, NULL, 0, m2, sizeof m2, &n2) != DD_OK ||
	    dd_noise_hs_read_message(i, m2, n2, NULL, 0, NULL) != DD_OK ||
	    dd_noise_hs_split(i, ti) != DD_OK ||
	    dd_noise_hs_split(r, tr) != DD_OK)
		abort();
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ct[300], pt[300];
	dd_noise_transport *t[2] = { NULL, NULL };
	size_t off = 0, len, n, m;
	int closed[2] = { 0, 0 };
	dd_err_t rc;

	init_once();
	handshake(&t[0], &t[1]);
	while (off + 2 <= size) {
		uint8_t ctl = data[off];
		int dir = (ctl >> 6) & 1; /* 0: initiator sends */
		dd_noise_transport *snd = t[dir], *rcv = t[1 - dir];
		int *rclosed = &closed[1 - dir];

		len = data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		if (ctl & 0x80) {
			rc = dd_noise_transport_decrypt(rcv, data + off, len, pt,
							sizeof pt, &m);
			if (*rclosed ? rc != DD_ERR_CLOSED
				     : (rc == DD_OK || rc == DD_ERR_CLOSED))
				abort();
			*rclosed = 1; /* that side refuses both ways now */
		} else {
			rc = dd_noise_transport_encrypt(snd, data + off, len, ct,
							sizeof ct, &n);
			if (closed[dir]) {
				if (rc != DD_ERR_CLOSED)
					abort();
			} else if (rc != DD_OK) {
				abort();
			} else {
				rc = dd_noise_transport_decrypt(rcv, ct, n, pt,
								sizeof pt, &m);
				if (*rclosed ? rc != DD_ERR_CLOSED
					     : (rc != DD_OK || m != len ||
						(len > 0 &&
						 memcmp(pt, data + off, len))))
					abort();
			}
		}
		off += len;
	}
	dd_noise_transport_free(t[0]);
	dd_noise_transport_free(t[1]);
	return 0;
}
