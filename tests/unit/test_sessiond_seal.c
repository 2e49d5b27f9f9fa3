/*
 * test_sessiond_seal.c: sealed transcript records (format v2): the spec's
 * vector byte for byte both ways, the right device opens and another does
 * not, every tampered byte fails, several recipients, low-order keys,
 * legacy lines, the record plaintext, and allocation failures.
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

#include "core/alloc.h"
#include "core/buf.h"
#include "core/strutil.h"
#include "sessiond/seal.h"

typedef struct vec {
	json_t *doc;
	uint8_t dev_sk[32], dev_pk[32];
	uint8_t rnd[32 + 12 + 32 + 12];  /* cek, bn, esk, n: the order used */
	const char *record, *line;
} vec;

static void hex(const json_t *doc, const char *key, uint8_t *out, size_t n)
{
	const char *s = json_string_value(json_object_get(doc, key));

	assert_non_null(s);
	assert_int_equal(dd_hex_decode(s, strlen(s), out, n), DD_OK);
}

static void load(vec *v)
{
	const char *dir = getenv("DD_TEST_DATA");
	char path[1024];
	json_error_t je;

	snprintf(path, sizeof path, "%s/sessiond/seal_vector.json",
		 dir != NULL ? dir : "tests/data");
	v->doc = json_load_file(path, 0, &je);
	if (v->doc == NULL)
		fail_msg("%s: %s", path, je.text);
	hex(v->doc, "device_priv", v->dev_sk, 32);
	hex(v->doc, "device_pub", v->dev_pk, 32);
	hex(v->doc, "cek", v->rnd, 32);
	hex(v->doc, "bn", v->rnd + 32, 12);
	hex(v->doc, "eph_priv", v->rnd + 44, 32);
	hex(v->doc, "stanza_n", v->rnd + 76, 12);
	v->record = json_string_value(json_object_get(v->doc, "record"));
	v->line = json_string_value(json_object_get(v->doc, "line"));
}

struct tape {
	const uint8_t *p;
	size_t left;
};

static dd_err_t from_tape(void *ud, void *out, size_t n)
{
	struct tape *t = ud;

	assert_true(n <= t->left);
	memcpy(out, t->p, n);
	t->p += n;
	t->left -= n;
	return DD_OK;
}

static void key(uint8_t sk[32], uint8_t pk[32])
{
	assert_int_equal(dd_random_bytes(sk, 32), DD_OK);
	assert_int_equal(dd_seal_public(sk, pk), DD_OK);
}

static void test_vector_seal(void **state)
{
	vec v;
	struct tape t;
	uint8_t pk[32];
	dd_buf out;

	(void)state;
	load(&v);
	assert_int_equal(dd_seal_public(v.dev_sk, pk), DD_OK);
	assert_memory_equal(pk, v.dev_pk, 32);
	t.p = v.rnd;
	t.left = sizeof v.rnd;
	dd_buf_init(&out, 1 << 20);
	assert_int_equal(dd_seal_with((const uint8_t(*)[32])v.dev_pk, 1,
				      v.record, strlen(v.record), from_tape,
				      &t, &out),
			 DD_OK);
	assert_int_equal(t.left, 0);
	assert_string_equal(dd_buf_str(&out), v.line);
	dd_buf_free(&out);
	json_decref(v.doc);
}

static void test_vector_open(void **state)
{
	vec v;
	uint8_t other_sk[32], other_pk[32];
	dd_buf out;
	size_t n = 0;

	(void)state;
	load(&v);
	dd_buf_init(&out, 1 << 20);
	assert_int_equal(dd_seal_open(v.dev_sk, v.line, strlen(v.line), &out),
			 DD_OK);
	assert_string_equal(dd_buf_str(&out), v.record);
	dd_buf_reset(&out);
	key(other_sk, other_pk);
	assert_int_equal(dd_seal_open(other_sk, v.line, strlen(v.line), &out),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(out.len, 0);
	assert_int_equal(dd_seal_check(v.line, strlen(v.line), &n), DD_OK);
	assert_int_equal(n, 1);
	dd_buf_free(&out);
	json_decref(v.doc);
}

/* Every byte of every field flipped: the line never opens. */
static void test_tampered(void **state)
{
	vec v;
	char *line;
	size_t len;
	dd_buf out;
	dd_err_t rc;

	(void)state;
	load(&v);
	len = strlen(v.line);
	line = malloc(len + 1);
	assert_non_null(line);
	dd_buf_init(&out, 1 << 20);
	for (size_t i = 0; i < len; i++) {
		memcpy(line, v.line, len + 1);
		/* An alphabet-preserving change, so it still parses often. */
		line[i] = line[i] == 'A' ? 'B' : line[i] == '0' ? '1'
			  : line[i] == 'a' ? 'b' : (char)(line[i] ^ 1);
		dd_buf_reset(&out);
		rc = dd_seal_open(v.dev_sk, line, len, &out);
		if (rc == DD_OK)
			/* Only non-data bits (the 2 pad bits) may change. */
			assert_string_equal(dd_buf_str(&out), v.record);
		else
			assert_true(rc == DD_ERR_INVALID ||
				    rc == DD_ERR_NOT_FOUND ||
				    rc == DD_ERR_CRYPTO);
	}
	/* The body alone changed: the stanza opens, the body does not. */
	memcpy(line, v.line, len + 1);
	line[len - 6] = line[len - 6] == 'J' ? 'K' : 'J';
	dd_buf_reset(&out);
	assert_int_equal(dd_seal_open(v.dev_sk, line, len, &out),
			 DD_ERR_CRYPTO);
	assert_int_equal(out.len, 0);
	free(line);
	dd_buf_free(&out);
	json_decref(v.doc);
}

static void test_recipients(void **state)
{
	uint8_t sk[3][32], pk[3][32], other_sk[32], other_pk[32];
	const char msg[] = "{\"ts\":1,\"kind\":\"pty\",\"data_b64\":\"\"}";
	dd_buf line, out;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 3; i++)
		key(sk[i], pk[i]);
	key(other_sk, other_pk);
	dd_buf_init(&line, 1 << 20);
	dd_buf_init(&out, 1 << 20);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 3, msg,
				 sizeof msg - 1, &line),
			 DD_OK);
	assert_int_equal(dd_seal_check(line.data, line.len, &n), DD_OK);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		dd_buf_reset(&out);
		assert_int_equal(dd_seal_open(sk[i], line.data, line.len,
					      &out),
				 DD_OK);
		assert_string_equal(dd_buf_str(&out), msg);
	}
	assert_int_equal(dd_seal_open(other_sk, line.data, line.len, &out),
			 DD_ERR_NOT_FOUND);
	/* No recipients, too many: refused. */
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 0, msg, 3, &line),
			 DD_ERR_INVALID);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk,
				 DD_SEAL_MAX_RECIPIENTS + 1, msg, 3, &line),
			 DD_ERR_INVALID);
	/* A cap too small: TOO_LARGE, and out untouched. */
	dd_buf_free(&line);
	dd_buf_init(&line, 64);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 1, msg, 3, &line),
			 DD_ERR_TOO_LARGE);
	assert_int_equal(line.len, 0);
	dd_buf_free(&line);
	dd_buf_free(&out);
}

static void test_low_order(void **state)
{
	uint8_t zero[32] = {0}, one[32] = {1}, sk[32], pk[32];
	dd_buf line;

	(void)state;
	key(sk, pk);
	assert_int_equal(dd_seal_key_ok(pk), DD_OK);
	assert_int_equal(dd_seal_key_ok(zero), DD_ERR_CRYPTO);
	assert_int_equal(dd_seal_key_ok(one), DD_ERR_CRYPTO);
	dd_buf_init(&line, 1 << 20);
	assert_int_equal(dd_seal((const uint8_t(*)[32])zero, 1, "x", 1, &line),
			 DD_ERR_CRYPTO);
	dd_buf_free(&line);
}

static void test_not_sealed(void **state)
{
	static const char *const bad[] = {
		"", "null", "[]", "{}", "AAAA", /* a legacy base64 line */
		"{\"v\":1,\"rcpts\":[],\"bn\":\"\",\"body\":\"\"}",
		"{\"v\":2,\"rcpts\":[],\"bn\":\"0102030405060708090a0b0c\","
		"\"body\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
		"{\"v\":2,\"rcpts\":[{\"epk\":\"00\",\"n\":\"00\",\"wk\":\"\"}],"
		"\"bn\":\"0102030405060708090a0b0c\",\"body\":\"\"}",
		"{\"v\":\"2\"}",
	};
	uint8_t sk[32], pk[32];
	dd_buf out;
	size_t n;

	(void)state;
	key(sk, pk);
	dd_buf_init(&out, 1024);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(dd_seal_check(bad[i], strlen(bad[i]), &n),
				 DD_ERR_INVALID);
		assert_int_equal(dd_seal_open(sk, bad[i], strlen(bad[i]),
					      &out),
				 DD_ERR_INVALID);
	}
	dd_buf_free(&out);
}

static void test_records(void **state)
{
	const uint8_t bytes[] = {'h', 'i', '\r', '\n', 0, 0xff};
	uint64_t ts = 0;
	dd_rec_kind kind = DD_REC_META;
	dd_buf rec, data;

	(void)state;
	dd_buf_init(&rec, 4096);
	dd_buf_init(&data, 4096);
	assert_int_equal(dd_rec_encode(1700000000, DD_REC_PTY, "hello\r\n", 7,
				       &rec),
			 DD_OK);
	assert_string_equal(dd_buf_str(&rec), "{\"ts\":1700000000,\"kind\":"
			    "\"pty\",\"data_b64\":\"aGVsbG8NCg==\"}");
	dd_buf_reset(&rec);
	assert_int_equal(dd_rec_encode(7, DD_REC_META, bytes, sizeof bytes,
				       &rec),
			 DD_OK);
	assert_int_equal(dd_rec_parse(rec.data, rec.len, &ts, &kind, &data),
			 DD_OK);
	assert_int_equal(ts, 7);
	assert_int_equal(kind, DD_REC_META);
	assert_int_equal(data.len, sizeof bytes);
	assert_memory_equal(data.data, bytes, sizeof bytes);
	/* stdout and stderr are terminal bytes too. */
	dd_buf_reset(&data);
	{
		const char *r = "{\"ts\":1,\"kind\":\"stderr\","
				"\"data_b64\":\"eA==\"}";

		assert_int_equal(dd_rec_parse(r, strlen(r), &ts, &kind,
					      &data),
				 DD_OK);
	}
	assert_int_equal(kind, DD_REC_PTY);
	{
		static const char *const bad[] = {
			"{\"ts\":-1,\"kind\":\"pty\",\"data_b64\":\"\"}",
			"{\"ts\":1,\"kind\":\"other\",\"data_b64\":\"\"}",
			"{\"ts\":1,\"kind\":\"pty\",\"data_b64\":\"e\"}",
			"{\"ts\":1,\"kind\":\"pty\"}",
			"[1]", "{",
		};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			dd_buf_reset(&data);
			assert_int_equal(dd_rec_parse(bad[i], strlen(bad[i]),
						      &ts, &kind, &data),
					 DD_ERR_INVALID);
		}
	}
	dd_buf_free(&rec);
	dd_buf_free(&data);
}

static void test_replay(void **state)
{
	uint8_t sk[32], pk[32], other_sk[32], other_pk[32];
	dd_buf l[4], rec, out;
	const char *lines[5];
	size_t opened, skipped;

	(void)state;
	key(sk, pk);
	key(other_sk, other_pk);
	dd_buf_init(&rec, 4096);
	for (int i = 0; i < 4; i++)
		dd_buf_init(&l[i], 1 << 20);
	/* meta, "hel" for us, "XX" for another device, "lo" for us. */
	assert_int_equal(dd_rec_encode(1, DD_REC_META, "{}", 2, &rec), DD_OK);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 1, rec.data,
				 rec.len, &l[0]), DD_OK);
	dd_buf_reset(&rec);
	assert_int_equal(dd_rec_encode(2, DD_REC_PTY, "hel", 3, &rec), DD_OK);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 1, rec.data,
				 rec.len, &l[1]), DD_OK);
	dd_buf_reset(&rec);
	assert_int_equal(dd_rec_encode(3, DD_REC_PTY, "XX", 2, &rec), DD_OK);
	assert_int_equal(dd_seal((const uint8_t(*)[32])other_pk, 1, rec.data,
				 rec.len, &l[2]), DD_OK);
	dd_buf_reset(&rec);
	assert_int_equal(dd_rec_encode(4, DD_REC_PTY, "lo", 2, &rec), DD_OK);
	assert_int_equal(dd_seal((const uint8_t(*)[32])pk, 1, rec.data,
				 rec.len, &l[3]), DD_OK);
	for (int i = 0; i < 4; i++)
		lines[i] = dd_buf_str(&l[i]);
	lines[4] = "AAECAwQF"; /* a legacy line */
	dd_buf_init(&out, 4096);
	assert_int_equal(dd_seal_replay(sk, lines, 5, &out, &opened,
					&skipped), DD_OK);
	assert_string_equal(dd_buf_str(&out), "hello");
	assert_int_equal(opened, 3);
	assert_int_equal(skipped, 2);
	dd_buf_reset(&out);
	assert_int_equal(dd_seal_replay(other_sk, lines, 5, &out, &opened,
					&skipped), DD_OK);
	assert_string_equal(dd_buf_str(&out), "XX");
	for (int i = 0; i < 4; i++)
		dd_buf_free(&l[i]);
	dd_buf_free(&rec);
	dd_buf_free(&out);
}

static void test_alloc_failures(void **state)
{
	vec v;
	struct tape t;
	dd_buf out;
	unsigned long n, used;
	dd_err_t rc;

	(void)state;
	load(&v);
	for (n = 1;; n++) {
		t.p = v.rnd;
		t.left = sizeof v.rnd;
		dd_buf_init(&out, 1 << 20);
		dd_alloc_fail_at(n);
		rc = dd_seal_with((const uint8_t(*)[32])v.dev_pk, 1, v.record,
				  strlen(v.record), from_tape, &t, &out);
		if (rc == DD_OK) {
			dd_buf_reset(&out);
			rc = dd_seal_open(v.dev_sk, v.line, strlen(v.line),
					  &out);
		}
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_OK)
			assert_string_equal(dd_buf_str(&out), v.record);
		dd_buf_free(&out);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
	json_decref(v.doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_seal),
		cmocka_unit_test(test_vector_open),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_low_order),
		cmocka_unit_test(test_not_sealed),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
