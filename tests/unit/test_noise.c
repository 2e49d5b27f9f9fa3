/*
 * Noise building blocks beyond the vectors (test_noise_vectors.c): hash,
 * HKDF, SymmetricState and CipherState against known answers computed
 * independently (Python hashlib/hmac and cryptography), nonce encoding
 * and exhaustion, and the refusal of low-order and zero keys wherever a
 * key enters. Whole handshakes: test_noise_hs.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/strutil.h"
#include "noise/noise.h"
#include "noise/noise_cipher.h"
#include "noise/noise_dh.h"
#include "noise/noise_hash.h"
#include "noise/noise_symmetric.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(s), 2 * n);
	assert_int_equal(dd_hex_decode(s, 2 * n, out, n), DD_OK);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
	uint8_t w[256];

	assert_true(n <= sizeof w);
	hex(want, w, n);
	assert_memory_equal(got, w, n);
}

static void key_from(uint8_t seed, dd_static_key *k)
{
	size_t i;

	for (i = 0; i < DD_X25519_LEN; i++)
		k->priv[i] = (uint8_t)(seed + i);
	assert_int_equal(dd_static_key_public(k->priv, k->pub), DD_OK);
}

/* The small-order points and their top-bit twins, as big-endian-free hex
 * (little-endian u-coordinates as on the wire). */
static const char *const low_order_hex[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"0100000000000000000000000000000000000000000000000000000000000080",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};
#define N_LOW_ORDER (sizeof low_order_hex / sizeof low_order_hex[0])

/* ---- building blocks against known answers ---- */

static void protocol_name_and_prologue_hash(void **state)
{
	dd_noise_symmetric ss;

	(void)state;
	assert_int_equal(dd_noise_sym_init(&ss, DD_NOISE_PROTOCOL_NAME), DD_OK);
	/* Spec 2.1 and 2.2. */
	assert_hex(ss.h, 32, "bbea022b948cf3bc5857d70804229179e1116bc40cb8cc07"
			     "4835349c464bca36");
	assert_memory_equal(ss.ck, ss.h, 32);
	assert_int_equal(dd_noise_sym_mix_hash(&ss, NULL, 0), DD_OK);
	assert_hex(ss.h, 32, "2f289177342da72536c1c74b8e1cf18b28b8a914918d02dc"
			     "bce0f57c61e585b8");
	dd_noise_sym_cleanup(&ss);
	/* A short name is zero-padded, not hashed (Noise 5.2). */
	assert_int_equal(dd_noise_sym_init(&ss, "Noise_NN"), DD_OK);
	assert_memory_equal(ss.h, "Noise_NN\0\0\0\0\0\0\0\0", 16);
	dd_noise_sym_cleanup(&ss);
}

static void hkdf_known_answers(void **state)
{
	dd_noise_hash hh;
	uint8_t ck[32], o1[32], o2[32], o3[32];
	size_t i;

	(void)state;
	for (i = 0; i < 32; i++)
		ck[i] = (uint8_t)i;
	assert_int_equal(dd_noise_hash_init(&hh), DD_OK);
	assert_int_equal(dd_noise_hkdf(&hh, ck,
				       (const uint8_t *)"input key material",
				       18, o1, o2, o3),
			 DD_OK);
	assert_hex(o1, 32, "93e2a65883e34ac95485f5d0aa4b09163a4e944dab8cf9406d"
			   "3a138e362851c6");
	assert_hex(o2, 32, "dd6fae42afdb2a41170f44dc5b885ec4cfd17c8dd324d38b39"
			   "0c548630dd0a83");
	assert_hex(o3, 32, "4125e0adfa9b7e736615e99dde6f3f0b64b949d8b480e82cab"
			   "2e685dc286e45d");
	/* Empty ikm, as in Split(); the output may alias ck. */
	assert_int_equal(dd_noise_hkdf(&hh, ck, NULL, 0, ck, o2, NULL), DD_OK);
	assert_hex(ck, 32, "7a38c34bf2b8738d7374ca77c44ecb309a11d2b2528304fa86"
			   "052c365e722624");
	assert_hex(o2, 32, "1a17621f346abdc520746a9fb64d8eb03231d674fc15687537"
			   "b0780fd9c060fd");
	dd_noise_hash_cleanup(&hh);
}

/* MixKeyAndHash then EncryptAndHash / DecryptAndHash (no PSK in IK, so
 * the vectors never reach MixKeyAndHash). */
static void mix_key_and_hash_known_answer(void **state)
{
	dd_noise_symmetric a, b;
	uint8_t ct[64], pt[64];
	size_t n = 0, m = 0;

	(void)state;
	assert_int_equal(dd_noise_sym_init(&a, DD_NOISE_PROTOCOL_NAME), DD_OK);
	assert_int_equal(dd_noise_sym_init(&b, DD_NOISE_PROTOCOL_NAME), DD_OK);
	/* No key yet: EncryptAndHash is the identity plus MixHash. */
	assert_false(dd_noise_cipher_has_key(&a.cs));
	assert_int_equal(dd_noise_sym_mix_key_and_hash(
				 &a, (const uint8_t *)"input key material", 18),
			 DD_OK);
	assert_int_equal(dd_noise_sym_mix_key_and_hash(
				 &b, (const uint8_t *)"input key material", 18),
			 DD_OK);
	assert_true(dd_noise_cipher_has_key(&a.cs));
	assert_hex(a.ck, 32, "60fc93c6663bfd13bec45fc68d72b2a647947badea664c8f"
			     "ce79004932ffee7b");
	assert_hex(a.h, 32, "b6beb8253780324939ff544f6d9b7c41cea2af2cf2b4d5cd"
			    "ef996cb583b55928");
	assert_int_equal(dd_noise_sym_encrypt_and_hash(
				 &a, (const uint8_t *)"hello", 5, ct,
				 sizeof ct, &n),
			 DD_OK);
	assert_int_equal(n, 21);
	assert_hex(ct, n, "973c5cc048297b03c20c6ef6e8ac0f5fcdb23e53b1");
	assert_hex(a.h, 32, "8346ab2d5d43f3408a820a4dcc1447b3006a762c9e54c518"
			    "5f549e79dfd728b6");
	assert_int_equal(dd_noise_sym_decrypt_and_hash(&b, ct, n, pt,
						       sizeof pt, &m),
			 DD_OK);
	assert_int_equal(m, 5);
	assert_memory_equal(pt, "hello", 5);
	assert_memory_equal(a.h, b.h, 32);
	dd_noise_sym_cleanup(&a);
	dd_noise_sym_cleanup(&b);
}

static void cipher_state(dd_noise_cipher *c, uint8_t first)
{
	uint8_t k[32];
	size_t i;

	for (i = 0; i < 32; i++)
		k[i] = (uint8_t)(first + i);
	dd_noise_cipher_init(c);
	assert_int_equal(dd_noise_cipher_set_key(c, k), DD_OK);
}

/*
 * The CipherState tests' fixture: c and d keyed alike (bytes 32..63), at
 * nonce 0, one to encrypt and one to decrypt; released after the test.
 */
struct ciphers {
	dd_noise_cipher c, d;
};

static int ciphers_setup(void **state)
{
	struct ciphers *f = calloc(1, sizeof *f);

	assert_non_null(f);
	cipher_state(&f->c, 32);
	cipher_state(&f->d, 32);
	*state = f;
	return 0;
}

static int ciphers_teardown(void **state)
{
	struct ciphers *f = *state;

	dd_noise_cipher_cleanup(&f->c);
	dd_noise_cipher_cleanup(&f->d);
	free(f);
	return 0;
}

/* The nonce is 4 zero bytes then the counter little-endian: checked at a
 * counter whose every byte differs. */
static void nonce_encoding_known_answer(void **state)
{
	struct ciphers *f = *state;
	dd_noise_cipher *c = &f->c, *d = &f->d;
	uint8_t ct[64], pt[64];
	size_t n = 0, m = 0;

	dd_noise_cipher_set_nonce(c, 0x0102030405060708ULL);
	assert_int_equal(dd_noise_cipher_encrypt(c, (const uint8_t *)"ad", 2,
						 (const uint8_t *)"abc", 3, ct,
						 sizeof ct, &n),
			 DD_OK);
	assert_hex(ct, n, "5d66744cf8e6e15f516f4a5f4a899945ddbfe0");
	/* The wrong ad or the wrong nonce: refused. */
	dd_noise_cipher_set_nonce(d, 0x0102030405060708ULL);
	assert_int_equal(dd_noise_cipher_decrypt(d, (const uint8_t *)"ae", 2,
						 ct, n, pt, sizeof pt, &m),
			 DD_ERR_CRYPTO);
	dd_noise_cipher_set_nonce(d, 0x0102030405060709ULL);
	assert_int_equal(dd_noise_cipher_decrypt(d, (const uint8_t *)"ad", 2,
						 ct, n, pt, sizeof pt, &m),
			 DD_ERR_CRYPTO);
	dd_noise_cipher_set_nonce(d, 0x0102030405060708ULL);
	assert_int_equal(dd_noise_cipher_decrypt(d, (const uint8_t *)"ad", 2,
						 ct, n, pt, sizeof pt, &m),
			 DD_OK);
	assert_memory_equal(pt, "abc", 3);
}

static void rekey_known_answer(void **state)
{
	struct ciphers *f = *state;
	dd_noise_cipher *c = &f->c;
	uint8_t ct[32];
	size_t n = 0;

	dd_noise_cipher_set_nonce(c, 5);
	assert_int_equal(dd_noise_cipher_rekey(c), DD_OK);
	/* The counter is kept across Rekey. */
	assert_int_equal(c->n, 5);
	assert_int_equal(dd_noise_cipher_encrypt(c, NULL, 0,
						 (const uint8_t *)"x", 1, ct,
						 sizeof ct, &n),
			 DD_OK);
	assert_hex(ct, n, "4dad76f3b317dfa404e443bca0140d229c");
	dd_noise_cipher_cleanup(c);
	dd_noise_cipher_init(c);
	assert_int_equal(dd_noise_cipher_rekey(c), DD_ERR_INVALID);
}

/* Nonce 2^64-1 is reserved: the message at 2^64-2 is the last one. */
static void nonce_exhaustion(void **state)
{
	struct ciphers *f = *state;
	dd_noise_cipher *c = &f->c, *d = &f->d;
	uint8_t ct[64], pt[64];
	size_t n = 0, m = 0;

	dd_noise_cipher_set_nonce(c, UINT64_MAX - 1);
	dd_noise_cipher_set_nonce(d, UINT64_MAX - 1);
	assert_int_equal(dd_noise_cipher_encrypt(c, NULL, 0,
						 (const uint8_t *)"abc", 3, ct,
						 sizeof ct, &n),
			 DD_OK);
	assert_hex(ct, n, "a9e1c6fef51a435ba11aa9e230e7f10b7f44ee");
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, n, pt,
						 sizeof pt, &m),
			 DD_OK);
	assert_int_equal(dd_noise_cipher_encrypt(c, NULL, 0,
						 (const uint8_t *)"abc", 3, ct,
						 sizeof ct, &n),
			 DD_ERR_RANGE);
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, 19, pt,
						 sizeof pt, &m),
			 DD_ERR_RANGE);
	/* And it stays exhausted. */
	assert_int_equal(dd_noise_cipher_encrypt(c, NULL, 0, NULL, 0, ct,
						 sizeof ct, &n),
			 DD_ERR_RANGE);
}

/* Without a key the CipherState passes bytes through (Noise 5.1). */
static void cipher_without_key(void **state)
{
	dd_noise_cipher c;
	uint8_t out[8];
	size_t n = 0;

	(void)state;
	dd_noise_cipher_init(&c);
	assert_false(dd_noise_cipher_has_key(&c));
	assert_int_equal(dd_noise_cipher_encrypt(&c, NULL, 0,
						 (const uint8_t *)"abc", 3, out,
						 sizeof out, &n),
			 DD_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "abc", 3);
	assert_int_equal(dd_noise_cipher_decrypt(&c, NULL, 0, out, 3, out,
						 sizeof out, &n),
			 DD_OK);
	assert_int_equal(dd_noise_cipher_encrypt(&c, NULL, 0,
						 (const uint8_t *)"abcdefghi",
						 9, out, sizeof out, &n),
			 DD_ERR_TOO_LARGE);
	dd_noise_cipher_cleanup(&c);
}

/* A failed decryption leaves no plaintext and does not move the nonce;
 * decryption in place and discarding the plaintext both work. */
static void cipher_failure_and_buffers(void **state)
{
	struct ciphers *f = *state;
	dd_noise_cipher *c = &f->c, *d = &f->d;
	uint8_t buf[200], ct[200];
	size_t n = 0, m = 0, i;

	for (i = 0; i < 150; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(dd_noise_cipher_encrypt(c, NULL, 0, buf, 150, buf,
						 sizeof buf, &n),
			 DD_OK); /* in place */
	assert_int_equal(n, 166);
	memcpy(ct, buf, n);
	buf[3] ^= 0x80;
	memset(buf + 166, 0x55, 10);
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, buf, n, buf,
						 sizeof buf, &m),
			 DD_ERR_CRYPTO);
	for (i = 0; i < 150; i++)
		assert_int_equal(buf[i], 0); /* wiped, not half-decrypted */
	assert_int_equal(d->n, 0);
	/* Authenticated and discarded: the counter moves. */
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, n, NULL, 0,
						 NULL),
			 DD_OK);
	assert_int_equal(d->n, 1);
	/* Output buffer too small. */
	dd_noise_cipher_set_nonce(d, 0);
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, n, buf, 149,
						 &m),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, n, buf, 150,
						 &m),
			 DD_OK);
	for (i = 0; i < 150; i++)
		assert_int_equal(buf[i], (uint8_t)i);
	/* Shorter than a tag. */
	assert_int_equal(dd_noise_cipher_decrypt(d, NULL, 0, ct, 15, buf,
						 sizeof buf, &m),
			 DD_ERR_INVALID);
}

/* ---- keys ---- */

/*
 * The key tests' fixture: an initiator's and a responder's static keys
 * and, once start() ran, a fresh handshake between them (i, r); all
 * released after the test.
 */
struct peers {
	dd_static_key ini, resp;
	dd_noise_hs *i, *r;
};

static int peers_setup(void **state)
{
	struct peers *f = calloc(1, sizeof *f);

	assert_non_null(f);
	key_from(1, &f->ini);
	key_from(100, &f->resp);
	*state = f;
	return 0;
}

static void stop(struct peers *f)
{
	dd_noise_hs_free(f->i);
	dd_noise_hs_free(f->r);
	f->i = f->r = NULL;
}

static int peers_teardown(void **state)
{
	struct peers *f = *state;

	stop(f);
	free(f);
	return 0;
}

/* Reads a handshake message that carries no payload. */
static dd_err_t read_msg(dd_noise_hs *hs, const uint8_t *msg, size_t n)
{
	return dd_noise_hs_read_message(hs, msg, n, NULL, 0, NULL);
}

/* A new handshake (the last one freed) and the initiator's message 1. */
static size_t start(struct peers *f, uint8_t *m1, size_t size)
{
	size_t n = 0;

	stop(f);
	assert_int_equal(dd_noise_hs_new_initiator(&f->ini, f->resp.pub, NULL,
						   0, &f->i),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&f->resp, NULL, 0, &f->r),
			 DD_OK);
	assert_int_equal(dd_noise_hs_write_message(f->i, NULL, 0, m1, size,
						   &n),
			 DD_OK);
	return n;
}

static void low_order_keys_refused(void **state)
{
	struct peers *f = *state;
	EVP_PKEY *k = NULL;
	uint8_t p[32], dh[32], good[32];
	dd_noise_hs *hs = NULL;
	size_t i;

	assert_int_equal(dd_noise_dh_keypair(f->ini.priv, f->ini.pub, &k,
					     NULL),
			 DD_OK);
	for (i = 0; i < N_LOW_ORDER; i++) {
		hex(low_order_hex[i], p, 32);
		assert_false(dd_noise_pubkey_ok(p));
		/* As the responder's key the initiator is given. */
		assert_int_equal(dd_noise_hs_new_initiator(&f->ini, p, NULL, 0,
							   &hs),
				 DD_ERR_CRYPTO);
		assert_null(hs);
		/* In a DH: refused, the output wiped. */
		memset(dh, 0xaa, sizeof dh);
		assert_int_equal(dd_noise_dh(k, p, dh), DD_ERR_CRYPTO);
		memset(good, 0, sizeof good);
		assert_memory_equal(dh, good, 32);
	}
	/* Real keys pass. */
	assert_true(dd_noise_pubkey_ok(f->ini.pub));
	assert_true(dd_noise_pubkey_ok(f->resp.pub));
	assert_int_equal(dd_noise_dh(k, f->resp.pub, dh), DD_OK);
	EVP_PKEY_free(k);
}

/* A message 1 whose ephemeral is a small-order point, with the rest of a
 * real message 1 after it: refused before any DH. */
static void low_order_ephemeral_in_message_refused(void **state)
{
	struct peers *f = *state;
	uint8_t msg[128];
	size_t n, k;

	for (k = 0; k < N_LOW_ORDER; k++) {
		n = start(f, msg, sizeof msg);
		hex(low_order_hex[k], msg, 32);
		assert_int_equal(read_msg(f->r, msg, n), DD_ERR_CRYPTO);
	}
}

/* Message 2 with a small-order ephemeral: the initiator refuses it. */
static void low_order_ephemeral_in_message2_refused(void **state)
{
	struct peers *f = *state;
	uint8_t m1[128], m2[64];
	size_t n, k;

	for (k = 0; k < N_LOW_ORDER; k++) {
		n = start(f, m1, sizeof m1);
		assert_int_equal(read_msg(f->r, m1, n), DD_OK);
		assert_int_equal(dd_noise_hs_write_message(f->r, NULL, 0, m2,
							   sizeof m2, &n),
				 DD_OK);
		hex(low_order_hex[k], m2, 32);
		assert_int_equal(read_msg(f->i, m2, n), DD_ERR_CRYPTO);
	}
}

/*
 * A device whose static public key is a small-order point (an enrolled
 * all-zero key, spec 7.12): its message 1 authenticates, but the
 * responder refuses the key it carries before doing a DH with it.
 */
static void low_order_initiator_static_refused(void **state)
{
	struct peers *f = *state;
	uint8_t msg[128], rs[32];
	size_t n, k;

	for (k = 0; k < N_LOW_ORDER; k++) {
		/* The pub is taken as given, so it can be a bad one. */
		hex(low_order_hex[k], f->ini.pub, 32);
		n = start(f, msg, sizeof msg);
		assert_int_equal(read_msg(f->r, msg, n), DD_ERR_CRYPTO);
		assert_int_equal(dd_noise_hs_remote_static(f->r, rs),
				 DD_ERR_CLOSED);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(protocol_name_and_prologue_hash),
		cmocka_unit_test(hkdf_known_answers),
		cmocka_unit_test(mix_key_and_hash_known_answer),
#define C(t) cmocka_unit_test_setup_teardown(t, ciphers_setup, \
						    ciphers_teardown)
		C(nonce_encoding_known_answer),
		C(rekey_known_answer),
		C(nonce_exhaustion),
		C(cipher_failure_and_buffers),
#undef C
		cmocka_unit_test(cipher_without_key),
#define P(t) cmocka_unit_test_setup_teardown(t, peers_setup, \
						    peers_teardown)
		P(low_order_keys_refused),
		P(low_order_ephemeral_in_message_refused),
		P(low_order_ephemeral_in_message2_refused),
		P(low_order_initiator_static_refused),
#undef P
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
