/*
 * The public Noise_IK_25519_ChaChaPoly_BLAKE2s vectors and the spec's DD
 * vector (tests/data/noise/vectors.json, see PROVENANCE there), run through
 * both sides: every handshake and transport message must come out byte for
 * byte, decrypt on the other side to its payload, and produce the vector's
 * handshake hash; then every byte of every message is flipped in turn and
 * must fail to decrypt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/strutil.h"
#include "noise/noise.h"
#include "noise/noise_test_hook.h"

#define MAX_MSGS 16
#define MAX_MSG_LEN 512

typedef struct vmsg {
	uint8_t payload[MAX_MSG_LEN];
	size_t payload_len;
	uint8_t ct[MAX_MSG_LEN];
	size_t ct_len;
} vmsg;

typedef struct vector {
	char source[32];
	uint8_t prologue[128];
	size_t prologue_len;
	dd_static_key is, rs;
	uint8_t ie[32], re[32];
	uint8_t init_remote[32];
	uint8_t hash[32];
	int has_hash;
	uint8_t init_pub_want[32];
	int has_init_pub;
	vmsg msgs[MAX_MSGS];
	size_t n_msgs;
} vector;

/* The two sides with the first `upto` messages of v exchanged. */
typedef struct sides {
	dd_noise_hs *ini, *resp;
	dd_noise_transport *tini, *tresp;
} sides;

static vector vectors[8];
static size_t n_vectors;

static void hex_field(json_t *o, const char *key, uint8_t *out, size_t cap,
		      size_t *len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t n;

	assert_non_null(s);
	n = strlen(s) / 2;
	assert_true(n <= cap);
	assert_int_equal(dd_hex_decode(s, 2 * n, out, n), DD_OK);
	if (len != NULL)
		*len = n;
	else
		assert_int_equal(n, cap);
}

static void load_vectors(void)
{
	const char *dir = getenv("DD_TEST_DATA");
	char path[512];
	json_error_t err;
	json_t *root, *arr, *o, *m;
	size_t i, j, n;

	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/noise/vectors.json", dir);
	root = json_load_file(path, 0, &err);
	assert_non_null(root);
	arr = json_object_get(root, "vectors");
	assert_true(json_array_size(arr) >= 3);
	assert_true(json_array_size(arr) <= 8);
	json_array_foreach(arr, i, o) {
		vector *v = &vectors[n_vectors++];

		assert_string_equal(json_string_value(json_object_get(
					    o, "protocol_name")),
				    DD_NOISE_PROTOCOL_NAME);
		snprintf(v->source, sizeof v->source, "%s",
			 json_string_value(json_object_get(o, "source")));
		hex_field(o, "init_prologue", v->prologue, sizeof v->prologue,
			  &v->prologue_len);
		hex_field(o, "init_static", v->is.priv, 32, NULL);
		hex_field(o, "resp_static", v->rs.priv, 32, NULL);
		hex_field(o, "init_ephemeral", v->ie, 32, NULL);
		hex_field(o, "resp_ephemeral", v->re, 32, NULL);
		hex_field(o, "init_remote_static", v->init_remote, 32, NULL);
		assert_int_equal(dd_static_key_public(v->is.priv, v->is.pub),
				 DD_OK);
		assert_int_equal(dd_static_key_public(v->rs.priv, v->rs.pub),
				 DD_OK);
		/* The vector's idea of the responder key is the derived one. */
		assert_memory_equal(v->init_remote, v->rs.pub, 32);
		if (json_object_get(o, "handshake_hash") != NULL) {
			hex_field(o, "handshake_hash", v->hash, 32, NULL);
			v->has_hash = 1;
		}
		if (json_object_get(o, "init_static_public") != NULL) {
			hex_field(o, "init_static_public", v->init_pub_want, 32,
				  NULL);
			v->has_init_pub = 1;
		}
		n = json_array_size(json_object_get(o, "messages"));
		assert_true(n >= 2 && n <= MAX_MSGS);
		json_array_foreach(json_object_get(o, "messages"), j, m) {
			hex_field(m, "payload", v->msgs[j].payload, MAX_MSG_LEN,
				  &v->msgs[j].payload_len);
			hex_field(m, "ciphertext", v->msgs[j].ct, MAX_MSG_LEN,
				  &v->msgs[j].ct_len);
		}
		v->n_msgs = n;
	}
	json_decref(root);
}

static int setup(void **state)
{
	(void)state;
	if (n_vectors == 0)
		load_vectors();
	return 0;
}

static void sides_free(sides *s)
{
	dd_noise_hs_free(s->ini);
	dd_noise_hs_free(s->resp);
	dd_noise_transport_free(s->tini);
	dd_noise_transport_free(s->tresp);
	memset(s, 0, sizeof *s);
}

/* Message i goes from the initiator when i is even. */
static int from_initiator(size_t i)
{
	return i % 2 == 0;
}

/* Sends message i of v from its sender, checks the bytes against the
 * vector, and delivers it to the receiver, checking the payload. */
static void exchange(const vector *v, sides *s, size_t i)
{
	uint8_t out[MAX_MSG_LEN], pt[MAX_MSG_LEN];
	size_t out_len = 0, pt_len = 0;
	const vmsg *m = &v->msgs[i];
	int ini = from_initiator(i);

	if (i < 2) {
		assert_int_equal(dd_noise_hs_write_message(
					 ini ? s->ini : s->resp, m->payload,
					 m->payload_len, out, sizeof out,
					 &out_len),
				 DD_OK);
		assert_int_equal(out_len, m->ct_len);
		assert_memory_equal(out, m->ct, m->ct_len);
		assert_int_equal(dd_noise_hs_read_message(
					 ini ? s->resp : s->ini, out, out_len,
					 pt, sizeof pt, &pt_len),
				 DD_OK);
	} else {
		assert_int_equal(dd_noise_transport_encrypt(
					 ini ? s->tini : s->tresp, m->payload,
					 m->payload_len, out, sizeof out,
					 &out_len),
				 DD_OK);
		assert_int_equal(out_len, m->ct_len);
		assert_memory_equal(out, m->ct, m->ct_len);
		assert_int_equal(dd_noise_transport_decrypt(
					 ini ? s->tresp : s->tini, out, out_len,
					 pt, sizeof pt, &pt_len),
				 DD_OK);
	}
	assert_int_equal(pt_len, m->payload_len);
	assert_memory_equal(pt, m->payload, pt_len);
}

static void split_both(sides *s)
{
	assert_int_equal(dd_noise_hs_split(s->ini, &s->tini), DD_OK);
	assert_int_equal(dd_noise_hs_split(s->resp, &s->tresp), DD_OK);
}

/* Both sides with the vector's keys and the first upto messages done. */
static void run_prefix(const vector *v, sides *s, size_t upto)
{
	size_t i;

	memset(s, 0, sizeof *s);
	assert_int_equal(dd_noise_hs_new_initiator(&v->is, v->rs.pub,
						   v->prologue,
						   v->prologue_len, &s->ini),
			 DD_OK);
	assert_int_equal(dd_noise_hs_new_responder(&v->rs, v->prologue,
						   v->prologue_len, &s->resp),
			 DD_OK);
	assert_int_equal(dd_noise_hs_fix_ephemeral(s->ini, v->ie), DD_OK);
	assert_int_equal(dd_noise_hs_fix_ephemeral(s->resp, v->re), DD_OK);
	for (i = 0; i < upto; i++) {
		exchange(v, s, i);
		if (i == 1)
			split_both(s);
	}
}

static void vectors_byte_exact(void **state)
{
	uint8_t h1[32], h2[32], rs[32];
	size_t i, k;
	sides s;

	(void)state;
	for (k = 0; k < n_vectors; k++) {
		const vector *v = &vectors[k];

		print_message("vector %s: %zu messages\n", v->source,
			      v->n_msgs);
		if (v->has_init_pub)
			assert_memory_equal(v->is.pub, v->init_pub_want, 32);
		run_prefix(v, &s, 2);
		assert_true(dd_noise_hs_done(s.ini));
		assert_int_equal(dd_noise_hs_handshake_hash(s.ini, h1), DD_OK);
		assert_int_equal(dd_noise_hs_handshake_hash(s.resp, h2), DD_OK);
		assert_memory_equal(h1, h2, 32);
		if (v->has_hash)
			assert_memory_equal(h1, v->hash, 32);
		assert_int_equal(dd_noise_hs_remote_static(s.resp, rs), DD_OK);
		assert_memory_equal(rs, v->is.pub, 32);
		assert_int_equal(dd_noise_hs_remote_static(s.ini, rs), DD_OK);
		assert_memory_equal(rs, v->rs.pub, 32);
		for (i = 2; i < v->n_msgs; i++)
			exchange(v, &s, i);
		sides_free(&s);
	}
}

/* Delivers message i of v with byte j flipped; must fail to decrypt. */
static void deliver_tampered(const vector *v, sides *s, size_t i, size_t j)
{
	uint8_t msg[MAX_MSG_LEN], pt[MAX_MSG_LEN];
	size_t pt_len = 0;
	int ini = from_initiator(i);
	dd_err_t rc;

	memcpy(msg, v->msgs[i].ct, v->msgs[i].ct_len);
	msg[j] ^= 0x01;
	if (i < 2)
		rc = dd_noise_hs_read_message(ini ? s->resp : s->ini, msg,
					      v->msgs[i].ct_len, pt, sizeof pt,
					      &pt_len);
	else
		rc = dd_noise_transport_decrypt(ini ? s->tresp : s->tini, msg,
						v->msgs[i].ct_len, pt,
						sizeof pt, &pt_len);
	if (rc != DD_ERR_CRYPTO)
		fail_msg("%s message %zu byte %zu flipped: rc %d", v->source,
			 i, j, rc);
}

static void every_byte_tampered_fails(void **state)
{
	size_t i, j, k, tried = 0;
	sides s;

	(void)state;
	for (k = 0; k < n_vectors; k++) {
		const vector *v = &vectors[k];

		for (i = 0; i < v->n_msgs; i++) {
			for (j = 0; j < v->msgs[i].ct_len; j++) {
				/* The sender's side is replayed up to i; the
				 * message itself comes from the vector. */
				run_prefix(v, &s, i);
				deliver_tampered(v, &s, i, j);
				sides_free(&s);
				tried++;
			}
		}
	}
	print_message("%zu tampered messages refused\n", tried);
}

/* Truncation and extension are tampering too. */
static void wrong_lengths_fail(void **state)
{
	uint8_t msg[MAX_MSG_LEN + 1], pt[MAX_MSG_LEN + 1];
	size_t i, k, pt_len;
	dd_err_t rc;
	sides s;

	(void)state;
	for (k = 0; k < n_vectors; k++) {
		const vector *v = &vectors[k];

		for (i = 0; i < v->n_msgs; i++) {
			size_t len = v->msgs[i].ct_len;
			int ini = from_initiator(i);
			int d;

			for (d = -1; d <= 1; d += 2) {
				run_prefix(v, &s, i);
				memcpy(msg, v->msgs[i].ct, len);
				msg[len] = 0;
				if (i < 2)
					rc = dd_noise_hs_read_message(
						ini ? s.resp : s.ini, msg,
						len + (size_t)d, pt, sizeof pt,
						&pt_len);
				else
					rc = dd_noise_transport_decrypt(
						ini ? s.tresp : s.tini, msg,
						len + (size_t)d, pt, sizeof pt,
						&pt_len);
				assert_int_not_equal(rc, DD_OK);
				sides_free(&s);
			}
		}
	}
}

/* A transport message delivered twice is refused the second time: the
 * receiving counter has moved on. */
static void replayed_transport_message_fails(void **state)
{
	const vector *v = &vectors[0];
	uint8_t pt[MAX_MSG_LEN];
	size_t pt_len;
	sides s;

	(void)state;
	assert_true(v->n_msgs >= 3);
	run_prefix(v, &s, 3);
	assert_int_equal(dd_noise_transport_decrypt(s.tresp, v->msgs[2].ct,
						    v->msgs[2].ct_len, pt,
						    sizeof pt, &pt_len),
			 DD_ERR_CRYPTO);
	sides_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vectors_byte_exact),
		cmocka_unit_test(every_byte_tampered_fails),
		cmocka_unit_test(wrong_lengths_fail),
		cmocka_unit_test(replayed_transport_message_fails),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
