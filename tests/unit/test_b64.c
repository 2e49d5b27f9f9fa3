#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"

/* RFC 4648 section 10 test vectors. */
static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const std_enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
				      "Zm9vYmE=", "Zm9vYmFy"};
static const char *const url_enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
				      "Zm9vYmFy"};

static void rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
		dd_buf b;

		dd_buf_init(&b, 64);
		assert_int_equal(dd_b64_encode(DD_B64_STD, plain[i], strlen(plain[i]), &b), DD_OK);
		assert_string_equal(dd_buf_str(&b), std_enc[i]);
		dd_buf_reset(&b);
		assert_int_equal(dd_b64_encode(DD_B64_URL, plain[i], strlen(plain[i]), &b), DD_OK);
		assert_string_equal(dd_buf_str(&b), url_enc[i]);
		dd_buf_reset(&b);
		assert_int_equal(dd_b64_decode(DD_B64_STD, std_enc[i], strlen(std_enc[i]), &b), DD_OK);
		assert_string_equal(dd_buf_str(&b), plain[i]);
		dd_buf_reset(&b);
		assert_int_equal(dd_b64_decode(DD_B64_URL, url_enc[i], strlen(url_enc[i]), &b), DD_OK);
		assert_string_equal(dd_buf_str(&b), plain[i]);
		dd_buf_free(&b);
	}
}

static void alphabets_differ(void **state)
{
	const uint8_t raw[] = {0xfb, 0xff, 0xbf};
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_b64_encode(DD_B64_STD, raw, 3, &b), DD_OK);
	assert_string_equal(dd_buf_str(&b), "+/+/");
	dd_buf_reset(&b);
	assert_int_equal(dd_b64_encode(DD_B64_URL, raw, 3, &b), DD_OK);
	assert_string_equal(dd_buf_str(&b), "-_-_");
	dd_buf_reset(&b);
	assert_int_equal(dd_b64_decode(DD_B64_URL, "+/+/", 4, &b), DD_ERR_INVALID);
	assert_int_equal(dd_b64_decode(DD_B64_STD, "-_-_", 4, &b), DD_ERR_INVALID);
	dd_buf_free(&b);
}

static void malformed_is_refused(void **state)
{
	static const char *const bad_std[] = {
		"Zg=", "Zg", "Z===", "Zg=a", "Zm9v\n", " Zm9v", "Zh==", "Zm9=",
		"====", "Zm9vY", "Zm9vYg=", "Z!==",
	};
	static const char *const bad_url[] = {"Zg==", "Z", "Zh", "Zm9", "Zm=9", "Z+"};
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_buf_append_str(&b, "keep"), DD_OK);
	for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
		assert_int_equal(dd_b64_decode(DD_B64_STD, bad_std[i], strlen(bad_std[i]), &b),
				 DD_ERR_INVALID);
	for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++) {
		/* "Zh" and "Zm9" leave non-zero bits: not canonical. */
		assert_int_equal(dd_b64_decode(DD_B64_URL, bad_url[i], strlen(bad_url[i]), &b),
				 DD_ERR_INVALID);
		assert_string_equal(dd_buf_str(&b), "keep");
	}
	dd_buf_free(&b);
}

static void cap_is_respected(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 4);
	assert_int_equal(dd_b64_decode(DD_B64_STD, "Zm9vYmFy", 8, &b), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, 0);
	assert_int_equal(dd_b64_encode(DD_B64_STD, "foobar", 6, &b), DD_ERR_TOO_LARGE);
	dd_buf_free(&b);
}

static void round_trip_all_lengths(void **state)
{
	uint8_t raw[300];
	dd_buf e, d;

	(void)state;
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n < sizeof raw; n++) {
		for (int a = 0; a < 2; a++) {
			dd_buf_init(&e, 1024);
			dd_buf_init(&d, 1024);
			assert_int_equal(dd_b64_encode((dd_b64_alphabet)a, raw, n, &e), DD_OK);
			assert_int_equal(dd_b64_decode((dd_b64_alphabet)a, dd_buf_str(&e), e.len, &d),
					 DD_OK);
			assert_int_equal(d.len, n);
			if (n > 0)
				assert_memory_equal(d.data, raw, n);
			assert_true(dd_b64_decoded_max(e.len) >= n);
			dd_buf_free(&e);
			dd_buf_free(&d);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc4648_vectors),
		cmocka_unit_test(alphabets_differ),
		cmocka_unit_test(malformed_is_refused),
		cmocka_unit_test(cap_is_respected),
		cmocka_unit_test(round_trip_all_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
