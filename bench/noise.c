/*
 * noise_bench: what the Noise core (src/noise) costs, as ratios against
 * the primitive floor measured in the same run on the same machine
 * (docs/noise.md). Ratios are reported, never judged by the exit status.
 *
 *   handshake  a full Noise_IK handshake, both sides, DD's configuration
 *              (empty prologue and payloads, random ephemerals): both
 *              dd_noise_hs_new_*, both messages written and read, both
 *              splits, everything freed; against the floor: the same
 *              cryptography done directly with OpenSSL, i.e. per side
 *              one X25519 key generation and four X25519 derivations,
 *              seven BLAKE2s hashes, fifteen HMAC-BLAKE2s, six
 *              ChaCha20-Poly1305 key setups and three AEAD operations,
 *              on contexts and static keys prepared outside the timing.
 *              Target: at most 1.5x.
 *   transport  1 KiB messages through dd_noise_transport_encrypt and
 *              dd_noise_transport_decrypt against raw ChaCha20-Poly1305
 *              encryption and decryption of 1 KiB on one reused context
 *              each; reported as throughput ratio (MB/s of plaintext).
 *              Target: at least 0.5x (the WebSocket part of issue 7's
 *              target is measured with the gateway).
 *
 * Each round times the floor and the subject (alternating which goes
 * first) for a fixed number of iterations; the figures are medians over
 * many short rounds, so that a machine whose load changes weighs on both
 * alike.
 *
 * Exit status: 0 whatever the ratios; 1 when an operation fails (the
 * figures would time an error path); 2 on bad usage.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/strutil.h"
#include "noise/noise.h"

#define MAX_ROUNDS 101
#define MSG_LEN 1024
#define HS_HASHES 7
#define HS_HMACS 15
#define HS_KEYS 6

typedef int (*op_fn)(void *ctx);

/* The floor's prepared objects. */
typedef struct floor_ctx {
	EVP_PKEY *is, *rs;        /* static keys, built once */
	uint8_t is_pub[32], rs_pub[32];
	EVP_MD *md;
	EVP_MD_CTX *md_ctx;
	EVP_MAC_CTX *hmac;
	EVP_CIPHER_CTX *aead;
	uint8_t h[32], k[32];
} floor_ctx;

typedef struct noise_ctx {
	dd_static_key ik, rk;
} noise_ctx;

typedef struct transport_ctx {
	dd_noise_transport *ti, *tr;
	EVP_CIPHER_CTX *enc, *dec;
	uint64_t n;
	uint8_t pt[MSG_LEN], ct[MSG_LEN + 16], out[MSG_LEN];
} transport_ctx;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double time_op(op_fn op, void *ctx, int iters)
{
	double t0 = now_ns();
	int i;

	for (i = 0; i < iters; i++) {
		if (!op(ctx)) {
			fprintf(stderr, "noise_bench: an operation failed\n");
			exit(1);
		}
	}
	return (now_ns() - t0) / iters;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the handshake floor ---- */

static int floor_dh(EVP_PKEY *priv, const uint8_t pub[32], uint8_t out[32])
{
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL,
						     pub, 32);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
	size_t n = 32;
	int ok = peer != NULL && c != NULL && EVP_PKEY_derive_init(c) == 1 &&
		 EVP_PKEY_derive_set_peer_ex(c, peer, 0) == 1 &&
		 EVP_PKEY_derive(c, out, &n) == 1;

	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(peer);
	return ok;
}

static int floor_keygen(EVP_PKEY **k, uint8_t pub[32])
{
	size_t n = 32;

	*k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	return *k != NULL && EVP_PKEY_get_raw_public_key(*k, pub, &n) == 1;
}

/* One side's symmetric work: hashes, HMACs, key setups, AEAD calls. */
static int floor_symmetric(floor_ctx *f)
{
	uint8_t buf[64], iv[12] = { 0 };
	unsigned int hn = 0;
	size_t mn = 0;
	int i, l = 0, ok = 1;

	for (i = 0; ok && i < HS_HASHES; i++)
		ok = EVP_DigestInit_ex2(f->md_ctx, f->md, NULL) == 1 &&
		     EVP_DigestUpdate(f->md_ctx, f->h, 32) == 1 &&
		     EVP_DigestUpdate(f->md_ctx, f->k, 32) == 1 &&
		     EVP_DigestFinal_ex(f->md_ctx, f->h, &hn) == 1;
	for (i = 0; ok && i < HS_HMACS; i++)
		ok = EVP_MAC_init(f->hmac, f->k, 32, NULL) == 1 &&
		     EVP_MAC_update(f->hmac, f->h, 32) == 1 &&
		     EVP_MAC_final(f->hmac, f->k, &mn, 32) == 1;
	for (i = 0; ok && i < HS_KEYS; i++)
		ok = EVP_CipherInit_ex(f->aead, NULL, NULL, f->k, NULL, 1) == 1;
	/* s (32 bytes) and two empty payloads, with h as associated data. */
	for (i = 0; ok && i < 3; i++)
		ok = EVP_CipherInit_ex(f->aead, NULL, NULL, NULL, iv, 1) == 1 &&
		     EVP_CipherUpdate(f->aead, NULL, &l, f->h, 32) == 1 &&
		     (i > 0 ||
		      EVP_CipherUpdate(f->aead, buf, &l, f->is_pub, 32) == 1) &&
		     EVP_CipherFinal_ex(f->aead, buf + 32, &l) == 1 &&
		     EVP_CIPHER_CTX_ctrl(f->aead, EVP_CTRL_AEAD_GET_TAG, 16,
					 buf + 32) == 1;
	return ok;
}

static int floor_handshake(void *p)
{
	floor_ctx *f = p;
	EVP_PKEY *ie = NULL, *re = NULL;
	uint8_t ie_pub[32], re_pub[32], dh[32];
	int ok;

	/* initiator: e, es, ss; responder: es, ss, e, ee, se; initiator:
	 * ee, se: eight derivations, two key generations. */
	ok = floor_keygen(&ie, ie_pub) && floor_dh(ie, f->rs_pub, dh) &&
	     floor_dh(f->is, f->rs_pub, dh) && floor_dh(f->rs, ie_pub, dh) &&
	     floor_dh(f->rs, f->is_pub, dh) && floor_keygen(&re, re_pub) &&
	     floor_dh(re, ie_pub, dh) && floor_dh(re, f->is_pub, dh) &&
	     floor_dh(ie, re_pub, dh) && floor_dh(f->is, re_pub, dh) &&
	     floor_symmetric(f) && floor_symmetric(f);
	EVP_PKEY_free(ie);
	EVP_PKEY_free(re);
	return ok;
}

static int noise_handshake(void *p)
{
	noise_ctx *c = p;
	uint8_t m1[DD_NOISE_MSG1_OVERHEAD], m2[DD_NOISE_MSG2_OVERHEAD];
	dd_noise_hs *i = NULL, *r = NULL;
	dd_noise_transport *ti = NULL, *tr = NULL;
	size_t n1 = 0, n2 = 0;
	int ok;

	ok = dd_noise_hs_new_initiator(&c->ik, c->rk.pub, NULL, 0, &i) ==
		     DD_OK &&
	     dd_noise_hs_new_responder(&c->rk, NULL, 0, &r) == DD_OK &&
	     dd_noise_hs_write_message(i, NULL, 0, m1, sizeof m1, &n1) ==
		     DD_OK &&
	     dd_noise_hs_read_message(r, m1, n1, NULL, 0, NULL) == DD_OK &&
	     dd_noise_hs_write_message(r, NULL, 0, m2, sizeof m2, &n2) ==
		     DD_OK &&
	     dd_noise_hs_read_message(i, m2, n2, NULL, 0, NULL) == DD_OK &&
	     dd_noise_hs_split(i, &ti) == DD_OK &&
	     dd_noise_hs_split(r, &tr) == DD_OK;
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
	dd_noise_transport_free(ti);
	dd_noise_transport_free(tr);
	return ok;
}

/* ---- transport ---- */

static int raw_aead(void *p)
{
	transport_ctx *t = p;
	uint8_t iv[12] = { 0 }, tag[16];
	int i, l = 0;

	for (i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(t->n >> (8 * i));
	t->n++;
	if (EVP_CipherInit_ex(t->enc, NULL, NULL, NULL, iv, 1) != 1 ||
	    EVP_CipherUpdate(t->enc, t->ct, &l, t->pt, MSG_LEN) != 1 ||
	    EVP_CipherFinal_ex(t->enc, t->ct + MSG_LEN, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(t->enc, EVP_CTRL_AEAD_GET_TAG, 16,
				t->ct + MSG_LEN) != 1)
		return 0;
	memcpy(tag, t->ct + MSG_LEN, 16);
	return EVP_CipherInit_ex(t->dec, NULL, NULL, NULL, iv, 0) == 1 &&
	       EVP_CIPHER_CTX_ctrl(t->dec, EVP_CTRL_AEAD_SET_TAG, 16, tag) ==
		       1 &&
	       EVP_CipherUpdate(t->dec, t->out, &l, t->ct, MSG_LEN) == 1 &&
	       EVP_CipherFinal_ex(t->dec, iv, &l) == 1;
}

static int noise_transport(void *p)
{
	transport_ctx *t = p;
	size_t n = 0, m = 0;

	return dd_noise_transport_encrypt(t->ti, t->pt, MSG_LEN, t->ct,
					  sizeof t->ct, &n) == DD_OK &&
	       dd_noise_transport_decrypt(t->tr, t->ct, n, t->out,
					  sizeof t->out, &m) == DD_OK &&
	       m == MSG_LEN;
}

/* ---- setup ---- */

static void setup_floor(floor_ctx *f, const noise_ctx *c)
{
	char digest[] = "BLAKE2S-256";
	OSSL_PARAM params[2];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	memset(f, 0, sizeof *f);
	f->is = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL,
					     c->ik.priv, 32);
	f->rs = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL,
					     c->rk.priv, 32);
	memcpy(f->is_pub, c->ik.pub, 32);
	memcpy(f->rs_pub, c->rk.pub, 32);
	f->md = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
	f->md_ctx = EVP_MD_CTX_new();
	f->hmac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	f->aead = EVP_CIPHER_CTX_new();
	if (f->is == NULL || f->rs == NULL || f->md == NULL ||
	    f->md_ctx == NULL || f->hmac == NULL || f->aead == NULL ||
	    EVP_MAC_CTX_set_params(f->hmac, params) != 1 ||
	    EVP_CipherInit_ex(f->aead, EVP_chacha20_poly1305(), NULL, f->k,
			      NULL, 1) != 1) {
		fprintf(stderr, "noise_bench: floor setup failed\n");
		exit(1);
	}
	EVP_MAC_free(mac);
}

static void setup_transport(transport_ctx *t, noise_ctx *c)
{
	uint8_t key[32];
	size_t i;

	memset(t, 0, sizeof *t);
	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < MSG_LEN; i++)
		t->pt[i] = (uint8_t)(i * 7);
	/* A real transport from a real handshake. */
	{
		uint8_t m1[96], m2[48];
		dd_noise_hs *a = NULL, *b = NULL;
		size_t n1 = 0, n2 = 0;

		if (dd_noise_hs_new_initiator(&c->ik, c->rk.pub, NULL, 0, &a) ||
		    dd_noise_hs_new_responder(&c->rk, NULL, 0, &b) ||
		    dd_noise_hs_write_message(a, NULL, 0, m1, 96, &n1) ||
		    dd_noise_hs_read_message(b, m1, n1, NULL, 0, NULL) ||
		    dd_noise_hs_write_message(b, NULL, 0, m2, 48, &n2) ||
		    dd_noise_hs_read_message(a, m2, n2, NULL, 0, NULL) ||
		    dd_noise_hs_split(a, &t->ti) || dd_noise_hs_split(b, &t->tr)) {
			fprintf(stderr, "noise_bench: handshake failed\n");
			exit(1);
		}
		dd_noise_hs_free(a);
		dd_noise_hs_free(b);
	}
	t->enc = EVP_CIPHER_CTX_new();
	t->dec = EVP_CIPHER_CTX_new();
	if (t->enc == NULL || t->dec == NULL ||
	    EVP_CipherInit_ex(t->enc, EVP_chacha20_poly1305(), NULL, key, NULL,
			      1) != 1 ||
	    EVP_CipherInit_ex(t->dec, EVP_chacha20_poly1305(), NULL, key, NULL,
			      0) != 1) {
		fprintf(stderr, "noise_bench: cipher setup failed\n");
		exit(1);
	}
}

static int arg_int(int argc, char **argv, const char *name, int dflt,
		   int lo, int hi)
{
	uint64_t v = 0;
	int i;

	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], name) != 0)
			continue;
		if (dd_parse_u64(argv[i + 1], (uint64_t)lo, (uint64_t)hi, &v) !=
		    DD_OK) {
			fprintf(stderr, "usage: noise_bench [--rounds R] "
				"[--handshakes N] [--messages M]\n");
			exit(2);
		}
		return (int)v;
	}
	return dflt;
}

int main(int argc, char **argv)
{
	int rounds = arg_int(argc, argv, "--rounds", 41, 1, MAX_ROUNDS);
	int hs_iters = arg_int(argc, argv, "--handshakes", 50, 1, 1000000);
	int msg_iters = arg_int(argc, argv, "--messages", 4000, 1, 100000000);
	static double hf[MAX_ROUNDS], hs[MAX_ROUNDS], tf[MAX_ROUNDS],
		ts[MAX_ROUNDS];
	double hf_m, hs_m, tf_m, ts_m, f_mbs, s_mbs;
	noise_ctx c;
	floor_ctx f;
	transport_ctx t;
	int r;

	if (argc > 1 && argc % 2 == 0) {
		fprintf(stderr, "usage: noise_bench [--rounds R] "
			"[--handshakes N] [--messages M]\n");
		return 2;
	}
	if (dd_random_bytes(c.ik.priv, 32) || dd_random_bytes(c.rk.priv, 32) ||
	    dd_static_key_public(c.ik.priv, c.ik.pub) ||
	    dd_static_key_public(c.rk.priv, c.rk.pub)) {
		fprintf(stderr, "noise_bench: key setup failed\n");
		return 1;
	}
	setup_floor(&f, &c);
	setup_transport(&t, &c);
	/* Warm-up: first fetches and page faults out of the figures. */
	time_op(floor_handshake, &f, 3);
	time_op(noise_handshake, &c, 3);
	time_op(raw_aead, &t, 100);
	time_op(noise_transport, &t, 100);
	/* Short rounds, alternating which goes first, so that a machine
	 * whose load changes from second to second weighs on both alike. */
	for (r = 0; r < rounds; r++) {
		if (r % 2 == 0) {
			hf[r] = time_op(floor_handshake, &f, hs_iters);
			hs[r] = time_op(noise_handshake, &c, hs_iters);
			tf[r] = time_op(raw_aead, &t, msg_iters);
			ts[r] = time_op(noise_transport, &t, msg_iters);
		} else {
			hs[r] = time_op(noise_handshake, &c, hs_iters);
			hf[r] = time_op(floor_handshake, &f, hs_iters);
			ts[r] = time_op(noise_transport, &t, msg_iters);
			tf[r] = time_op(raw_aead, &t, msg_iters);
		}
	}
	hf_m = median(hf, rounds);
	hs_m = median(hs, rounds);
	tf_m = median(tf, rounds);
	ts_m = median(ts, rounds);
	/* Plaintext MB/s, one encryption and one decryption per message. */
	f_mbs = MSG_LEN / tf_m * 1e3;
	s_mbs = MSG_LEN / ts_m * 1e3;
	printf("| measure (median of %d rounds) | floor | src/noise | ratio | "
	       "target |\n", rounds);
	printf("|---|---|---|---|---|\n");
	printf("| IK handshake, both sides (µs) | %.1f | %.1f | %.2fx | "
	       "<= 1.5x: %s |\n", hf_m / 1e3, hs_m / 1e3, hs_m / hf_m,
	       hs_m / hf_m <= 1.5 ? "met" : "MISSED");
	printf("| 1 KiB encrypt+decrypt (MB/s) | %.0f | %.0f | %.2fx | "
	       ">= 0.5x: %s |\n", f_mbs, s_mbs, s_mbs / f_mbs,
	       s_mbs / f_mbs >= 0.5 ? "met" : "MISSED");
	printf("\nhandshake: %.1f µs above the floor per handshake; "
	       "transport: %.0f ns per 1 KiB message round trip "
	       "(floor %.0f ns)\n", (hs_m - hf_m) / 1e3, ts_m, tf_m);
	dd_noise_transport_free(t.ti);
	dd_noise_transport_free(t.tr);
	EVP_CIPHER_CTX_free(t.enc);
	EVP_CIPHER_CTX_free(t.dec);
	EVP_PKEY_free(f.is);
	EVP_PKEY_free(f.rs);
	EVP_MD_free(f.md);
	EVP_MD_CTX_free(f.md_ctx);
	EVP_MAC_CTX_free(f.hmac);
	EVP_CIPHER_CTX_free(f.aead);
	return 0;
}
