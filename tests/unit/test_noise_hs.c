/*
 * Noise handshakes and transports through the public API (noise.h):
 * DD's configuration with random ephemerals, wrong keys and prologues,
 * the 65,535-byte limits, forged transport messages, wrong-state calls,
 * and allocation failure at every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/err.h"
#include "noise/noise.h"
#include "noise/noise_test_hook.h"

static void key_from(uint8_t seed, dd_static_key *k)
{
	size_t i;

	for (i = 0; i < DD_X25519_LEN; i++)
		k->priv[i] = (uint8_t)(seed + i);
	assert_int_equal(dd_static_key_public(k->priv, k->pub), DD_OK);
}

typedef struct pair {
	dd_static_key ik, rk;
	dd_noise_hs *i, *r;
	dd_noise_transport *ti, *tr;
} pair;

static void pair_free(pair *p)
{
	dd_noise_hs_free(p->i);
	dd_noise_hs_free(p->r);
	dd_noise_transport_free(p->ti);
	dd_noise_transport_free(p->tr);
	p->i = p->r = NULL;
	p->ti = p->tr = NULL;
}

/* Random ephemerals, empty prologue and payloads: DD's configuration. */
static void handshake(pair *p)
{
	uint8_t m1[DD_NOISE_MSG1_OVERHEAD], m2[DD_NOISE_MSG2_OVERHEAD];
	size_t n1 = 0, n2 = 0;

	memset(p, 0, sizeof *p);
	key_from(1, &p->ik);
	key_from(100, &p->rk);
	assert_int_equal(dd_noise_hs_new_initiator(&p->ik, p->rk.pub, NULL, 0,
						   &p->i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&p->rk, NULL, 0, &p->r),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(p->i, NULL, 0, m1, sizeof m1,
						   &n1),
			 DD_OK);
	assert_int_equal(n1, 96);
	assert_int_equal(dd_noise_hs_read_message(p->r, m1, n1, NULL, 0, NULL),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(p->r, NULL, 0, m2, sizeof m2,
						   &n2),
			 DD_OK);
	assert_int_equal(n2, 48);
	assert_int_equal(dd_noise_hs_read_message(p->i, m2, n2, NULL, 0, NULL),
			 DD_OK);
	assert_int_equal(dd_noise_hs_split(p->i, &p->ti), DD_OK);
	assert_int_equal(dd_noise_hs_split(p->r, &p->tr), DD_OK);
}

static void random_handshake_and_transport(void **state)
{
	uint8_t h1[32], h2[32], rs[32], a[64], b[64];
	size_t n = 0, m = 0;
	pair p, q;

	(void)state;
	handshake(&p);
	assert_int_equal(dd_noise_hs_handshake_hash(p.i, h1), DD_OK);
	assert_int_equal(dd_noise_hs_handshake_hash(p.r, h2), DD_OK);
	assert_memory_equal(h1, h2, 32);
	assert_int_equal(dd_noise_hs_remote_static(p.r, rs), DD_OK);
	assert_memory_equal(rs, p.ik.pub, 32);
	/* Both directions, in place on the receiving side. */
	assert_int_equal(dd_noise_transport_encrypt(p.ti, (const uint8_t *)"ping",
						    4, a, sizeof a, &n),
			 DD_OK);
	assert_int_equal(dd_noise_transport_decrypt(p.tr, a, n, a, sizeof a,
						    &m),
			 DD_OK);
	assert_memory_equal(a, "ping", 4);
	assert_int_equal(dd_noise_transport_encrypt(p.tr, (const uint8_t *)"pong",
						    4, b, sizeof b, &n),
			 DD_OK);
	assert_int_equal(dd_noise_transport_decrypt(p.ti, b, n, b, sizeof b,
						    &m),
			 DD_OK);
	assert_memory_equal(b, "pong", 4);
	/* A message sent one way does not decrypt the other way. */
	assert_int_equal(dd_noise_transport_encrypt(p.ti, (const uint8_t *)"x",
						    1, a, sizeof a, &n),
			 DD_OK);
	assert_int_equal(dd_noise_transport_decrypt(p.ti, a, n, b, sizeof b,
						    &m),
			 DD_ERR_CRYPTO);
	/* Fresh ephemerals: another handshake, another hash. */
	handshake(&q);
	assert_int_equal(dd_noise_hs_handshake_hash(q.i, h2), DD_OK);
	assert_memory_not_equal(h1, h2, 32);
	pair_free(&p);
	pair_free(&q);
}

/* A device that pinned the wrong agent key never gets past message 1. */
static void wrong_responder_key_fails(void **state)
{
	dd_static_key ik, rk, other;
	dd_noise_hs *i = NULL, *r = NULL;
	uint8_t msg[128], rs[32];
	size_t n = 0;

	(void)state;
	key_from(1, &ik);
	key_from(100, &rk);
	key_from(150, &other);
	assert_int_equal(dd_noise_hs_new_initiator(&ik, other.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, msg, sizeof msg,
						   &n),
			 DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, n, NULL, 0, NULL),
			 DD_ERR_CRYPTO);
	assert_int_equal(dd_noise_hs_remote_static(r, rs), DD_ERR_CLOSED);
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
}

/* A prologue mismatch is a handshake failure too. */
static void prologue_mismatch_fails(void **state)
{
	dd_static_key ik, rk;
	dd_noise_hs *i = NULL, *r = NULL;
	uint8_t msg[128];
	size_t n = 0;

	(void)state;
	key_from(1, &ik);
	key_from(100, &rk);
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub,
						   (const uint8_t *)"v1", 2,
						   &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, msg, sizeof msg,
						   &n),
			 DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, n, NULL, 0, NULL),
			 DD_ERR_CRYPTO);
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
}

/* ---- limits ---- */

static void handshake_size_limits(void **state)
{
	const size_t max1 = DD_NOISE_MAX_MSG - DD_NOISE_MSG1_OVERHEAD;
	dd_static_key ik, rk;
	dd_noise_hs *i = NULL, *r = NULL;
	uint8_t *payload = calloc(1, DD_NOISE_MAX_MSG + 1);
	uint8_t *msg = calloc(1, DD_NOISE_MAX_MSG + 1);
	uint8_t small[8];
	size_t n = 0, got = 0;

	(void)state;
	assert_non_null(payload);
	assert_non_null(msg);
	key_from(1, &ik);
	key_from(100, &rk);
	/* One byte over: refused before anything is written. */
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, payload, max1 + 1, msg,
						   DD_NOISE_MAX_MSG + 1, &n),
			 DD_ERR_TOO_LARGE);
	dd_noise_hs_free(i);
	/* Output buffer too small. */
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, msg, 95, &n),
			 DD_ERR_TOO_LARGE);
	dd_noise_hs_free(i);
	/* Exactly the limit: a 65,535-byte message 1, read with the payload
	 * discarded and again into a buffer. */
	memset(payload, 'p', max1);
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, payload, max1, msg,
						   DD_NOISE_MAX_MSG, &n),
			 DD_OK);
	assert_int_equal(n, DD_NOISE_MAX_MSG);
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, n, NULL, 0, NULL),
			 DD_OK);
	dd_noise_hs_free(r);
	memset(payload, 0, max1);
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, n, payload, max1,
						  &got),
			 DD_OK);
	assert_int_equal(got, max1);
	assert_int_equal(payload[0], 'p');
	assert_int_equal(payload[max1 - 1], 'p');
	dd_noise_hs_free(r);
	/* A payload buffer too small for what the message carries. */
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, n, small,
						  sizeof small, &got),
			 DD_ERR_TOO_LARGE);
	dd_noise_hs_free(r);
	/* 65,536 bytes: refused as too large, whatever they hold. */
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, msg, DD_NOISE_MAX_MSG + 1,
						  NULL, 0, NULL),
			 DD_ERR_TOO_LARGE);
	dd_noise_hs_free(r);
	/* Every length short of the fixed part: refused as malformed. */
	for (n = 0; n < DD_NOISE_MSG1_OVERHEAD; n++) {
		assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r),
				 DD_OK);
		assert_int_equal(dd_noise_hs_read_message(r, msg, n, NULL, 0,
							  NULL),
				 DD_ERR_INVALID);
		dd_noise_hs_free(r);
	}
	dd_noise_hs_free(i);
	free(payload);
	free(msg);
}

static void transport_size_limits(void **state)
{
	uint8_t *buf = calloc(1, DD_NOISE_MAX_MSG + 2);
	size_t n = 0, m = 0;
	pair p;

	(void)state;
	assert_non_null(buf);
	handshake(&p);
	assert_int_equal(dd_noise_transport_encrypt(p.ti, buf,
						    DD_NOISE_MAX_PLAINTEXT + 1,
						    buf, DD_NOISE_MAX_MSG + 2,
						    &n),
			 DD_ERR_TOO_LARGE);
	/* Nothing consumed: the transport goes on. */
	assert_int_equal(dd_noise_transport_encrypt(p.ti, buf, 10, buf, 25, &n),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_noise_transport_encrypt(p.ti, buf,
						    DD_NOISE_MAX_PLAINTEXT, buf,
						    DD_NOISE_MAX_MSG, &n),
			 DD_OK);
	assert_int_equal(n, DD_NOISE_MAX_MSG);
	assert_int_equal(dd_noise_transport_decrypt(p.tr, buf, n, buf,
						    DD_NOISE_MAX_MSG, &m),
			 DD_OK);
	assert_int_equal(m, DD_NOISE_MAX_PLAINTEXT);
	/* Over the limit on receipt: refused, and the transport closed. */
	assert_int_equal(dd_noise_transport_decrypt(p.tr, buf,
						    DD_NOISE_MAX_MSG + 1, buf,
						    DD_NOISE_MAX_MSG + 2, &m),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_noise_transport_decrypt(p.tr, buf, 16, buf,
						    DD_NOISE_MAX_MSG, &m),
			 DD_ERR_CLOSED);
	assert_int_equal(dd_noise_transport_encrypt(p.tr, buf, 1, buf,
						    DD_NOISE_MAX_MSG, &n),
			 DD_ERR_CLOSED);
	pair_free(&p);
	free(buf);
}

/* One forged transport message closes the transport both ways. */
static void transport_forgery_closes(void **state)
{
	uint8_t a[64], b[64];
	size_t n = 0, m = 0;
	pair p;

	(void)state;
	handshake(&p);
	assert_int_equal(dd_noise_transport_encrypt(p.ti, (const uint8_t *)"hi",
						    2, a, sizeof a, &n),
			 DD_OK);
	a[n - 1] ^= 1;
	assert_int_equal(dd_noise_transport_decrypt(p.tr, a, n, b, sizeof b,
						    &m),
			 DD_ERR_CRYPTO);
	a[n - 1] ^= 1; /* the genuine message is no longer accepted either */
	assert_int_equal(dd_noise_transport_decrypt(p.tr, a, n, b, sizeof b,
						    &m),
			 DD_ERR_CLOSED);
	assert_int_equal(dd_noise_transport_encrypt(p.tr, (const uint8_t *)"x",
						    1, b, sizeof b, &m),
			 DD_ERR_CLOSED);
	/* Discarding is not offered on the transport. */
	assert_int_equal(dd_noise_transport_decrypt(p.ti, a, n, NULL, 0, &m),
			 DD_ERR_INVALID);
	pair_free(&p);
}

/* ---- wrong state ---- */

static void wrong_state_calls(void **state)
{
	dd_static_key ik, rk;
	dd_noise_hs *i = NULL, *r = NULL;
	dd_noise_transport *t = NULL;
	uint8_t m1[128], m2[64], h[32], e[32];
	size_t n1 = 0, n2 = 0;
	pair p;

	(void)state;
	key_from(1, &ik);
	key_from(100, &rk);
	memset(e, 7, sizeof e);
	/* The initiator reading first. */
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_read_message(i, m2, 48, NULL, 0, NULL),
			 DD_ERR_INVALID);
	/* ...ends the handshake. */
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, m1, sizeof m1,
						   &n1),
			 DD_ERR_CLOSED);
	dd_noise_hs_free(i);
	/* The responder writing first; asking for the peer key too early. */
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_remote_static(r, h), DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_handshake_hash(r, h), DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_write_message(r, NULL, 0, m2, sizeof m2,
						   &n2),
			 DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_read_message(r, m1, 96, NULL, 0, NULL),
			 DD_ERR_CLOSED);
	dd_noise_hs_free(r);
	/* Split before the end. */
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_split(r, &t), DD_ERR_INVALID);
	assert_null(t);
	dd_noise_hs_free(r);
	/* A second message 1 (a client sending two handshake messages). */
	assert_int_equal(dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&rk, NULL, 0, &r), DD_OK);
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, m1, sizeof m1,
						   &n1),
			 DD_OK);
	assert_int_equal(dd_noise_hs_fix_ephemeral(i, e), DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_write_message(i, NULL, 0, m1, sizeof m1,
						   &n1),
			 DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_read_message(r, m1, n1, NULL, 0, NULL),
			 DD_OK);
	assert_int_equal(dd_noise_hs_read_message(r, m1, n1, NULL, 0, NULL),
			 DD_ERR_INVALID);
	dd_noise_hs_free(i);
	dd_noise_hs_free(r);
	/* Split twice; writing or reading after the handshake. */
	handshake(&p);
	assert_true(dd_noise_hs_done(p.i));
	assert_int_equal(dd_noise_hs_handshake_hash(p.i, h), DD_OK);
	assert_int_equal(dd_noise_hs_write_message(p.r, NULL, 0, m2, sizeof m2,
						   &n2),
			 DD_ERR_INVALID);
	assert_int_equal(dd_noise_hs_split(p.i, &t), DD_ERR_INVALID);
	assert_null(t);
	assert_int_equal(dd_noise_hs_handshake_hash(p.i, h), DD_ERR_CLOSED);
	pair_free(&p);
	/* Freeing NULL is fine. */
	dd_noise_hs_free(NULL);
	dd_noise_transport_free(NULL);
}

/* ---- allocation failure ---- */

/* Only the torture build (-Dtorture=true) can fail allocations. */
static void allocation_failure_everywhere(void **state)
{
#ifdef DD_TORTURE
	uint8_t m1[128], m2[64], a[64];
	dd_static_key ik, rk;
	unsigned long n, used = 0;

	(void)state;
	key_from(1, &ik);
	key_from(100, &rk);
	for (n = 1;; n++) {
		dd_noise_hs *i = NULL, *r = NULL;
		dd_noise_transport *ti = NULL, *tr = NULL;
		size_t n1 = 0, n2 = 0, k = 0;
		dd_err_t rc;

		dd_alloc_fail_at(n);
		rc = dd_noise_hs_new_initiator(&ik, rk.pub, NULL, 0, &i);
		if (rc == DD_OK)
			rc = dd_noise_hs_new_responder(&rk, NULL, 0, &r);
		if (rc == DD_OK)
			rc = dd_noise_hs_write_message(i, NULL, 0, m1,
						       sizeof m1, &n1);
		if (rc == DD_OK)
			rc = dd_noise_hs_read_message(r, m1, n1, NULL, 0, NULL);
		if (rc == DD_OK)
			rc = dd_noise_hs_write_message(r, NULL, 0, m2,
						       sizeof m2, &n2);
		if (rc == DD_OK)
			rc = dd_noise_hs_read_message(i, m2, n2, NULL, 0, NULL);
		if (rc == DD_OK)
			rc = dd_noise_hs_split(i, &ti);
		if (rc == DD_OK)
			rc = dd_noise_hs_split(r, &tr);
		if (rc == DD_OK)
			rc = dd_noise_transport_encrypt(
				ti, (const uint8_t *)"x", 1, a, sizeof a, &k);
		if (rc == DD_OK)
			rc = dd_noise_transport_decrypt(tr, a, k, a, sizeof a,
							&k);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		if (rc != DD_OK && rc != DD_ERR_NOMEM)
			fail_msg("n=%lu: %s", n, dd_errname(rc));
		dd_noise_hs_free(i);
		dd_noise_hs_free(r);
		dd_noise_transport_free(ti);
		dd_noise_transport_free(tr);
		if (used < n) {
			assert_int_equal(rc, DD_OK);
			break;
		}
	}
	/* Two handshakes and two transports, at least, were failed. */
	assert_true(n > 4);
#else
	(void)state;
	skip();
#endif
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_handshake_and_transport),
		cmocka_unit_test(wrong_responder_key_fails),
		cmocka_unit_test(prologue_mismatch_fails),
		cmocka_unit_test(handshake_size_limits),
		cmocka_unit_test(transport_size_limits),
		cmocka_unit_test(transport_forgery_closes),
		cmocka_unit_test(wrong_state_calls),
		cmocka_unit_test(allocation_failure_everywhere),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
