#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/buf.h"
#include "core/strutil.h"

static void parse_u64_is_strict(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(dd_parse_u64("0", 0, 10, &v), DD_OK);
	assert_int_equal(dd_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), DD_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(dd_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), DD_ERR_RANGE);
	assert_int_equal(dd_parse_u64("123456789012345678901", 0, UINT64_MAX, &v), DD_ERR_RANGE);
	assert_int_equal(dd_parse_u64("", 0, 10, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64("-1", 0, 10, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64("+1", 0, 10, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64(" 1", 0, 10, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64("1 ", 0, 10, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64("0x10", 0, 100, &v), DD_ERR_INVALID);
	assert_int_equal(dd_parse_u64("11", 0, 10, &v), DD_ERR_RANGE);
	assert_int_equal(dd_parse_u64("4", 5, 10, &v), DD_ERR_RANGE);
	assert_int_equal(dd_parse_u64n("12abc", 2, 0, 100, &v), DD_OK);
	assert_true(v == 12);
}

static void hex_round_trip(void **state)
{
	const uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
	uint8_t out[4];
	char hex[9];

	(void)state;
	dd_hex_encode(in, sizeof in, hex);
	assert_string_equal(hex, "00abff10");
	assert_int_equal(dd_hex_decode("00ABff10", 8, out, 4), DD_OK);
	assert_memory_equal(in, out, 4);
	assert_int_equal(dd_hex_decode("00abff1", 7, out, 4), DD_ERR_INVALID);
	assert_int_equal(dd_hex_decode("00abff1g", 8, out, 4), DD_ERR_INVALID);
}

static void percent_decoding(void **state)
{
	char out[32];
	size_t n;

	(void)state;
	assert_int_equal(dd_pct_decode("a%20b+c%2B", 10, 1, out, &n), DD_OK);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "a b c+", 6);
	assert_int_equal(dd_pct_decode("a+b", 3, 0, out, &n), DD_OK);
	assert_memory_equal(out, "a+b", 3);
	assert_int_equal(dd_pct_decode("%2f%2F", 6, 0, out, &n), DD_OK);
	assert_memory_equal(out, "//", 2);
	assert_int_equal(dd_pct_decode("%00", 3, 0, out, &n), DD_ERR_INVALID);
	assert_int_equal(dd_pct_decode("%0", 2, 0, out, &n), DD_ERR_INVALID);
	assert_int_equal(dd_pct_decode("%", 1, 0, out, &n), DD_ERR_INVALID);
	assert_int_equal(dd_pct_decode("%g1", 3, 0, out, &n), DD_ERR_INVALID);
	assert_int_equal(dd_pct_decode("", 0, 0, out, &n), DD_OK);
	assert_int_equal(n, 0);
	assert_int_equal(dd_hex_digit('F'), 15);
	assert_int_equal(dd_hex_digit('g'), -1);
}

static void random_hex_differs(void **state)
{
	char a[33], b[33];

	(void)state;
	assert_int_equal(dd_random_hex(a, 16), DD_OK);
	assert_int_equal(dd_random_hex(b, 16), DD_OK);
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	assert_int_equal(dd_random_hex(a, 65), DD_ERR_RANGE);
}

static void trim_and_ieq(void **state)
{
	const char *s = "  \tvalue \n";
	size_t n = strlen(s);

	(void)state;
	dd_str_trim(&s, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(s, "value", 5);
	s = "   ";
	n = 3;
	dd_str_trim(&s, &n);
	assert_int_equal(n, 0);
	assert_true(dd_str_ieq("Content-Length", 14, "content-length"));
	assert_false(dd_str_ieq("Content-Lengt", 13, "content-length"));
}

static void errors_have_names_and_text(void **state)
{
	(void)state;
	for (int e = 0; e < DD_ERR__COUNT; e++) {
		assert_non_null(dd_strerror((dd_err_t)e));
		assert_non_null(dd_errname((dd_err_t)e));
	}
	assert_string_equal(dd_strerror(DD_ERR_TOO_LARGE), "size limit exceeded");
	assert_string_equal(dd_strerror((dd_err_t)999), "unknown error");
	assert_string_equal(dd_errname(DD_ERR_TIMEOUT), "timeout");
}

static void percent_encoding_and_form_fields(void **state)
{
	dd_buf b;
	char v[16];

	(void)state;
	dd_buf_init(&b, 64);
	assert_int_equal(dd_pct_encode("a b/c?d=é~", 11, &b), DD_OK);
	assert_string_equal(dd_buf_str(&b), "a%20b%2Fc%3Fd%3D%C3%A9~");
	dd_buf_free(&b);
	dd_buf_init(&b, 4);
	assert_int_equal(dd_pct_encode("////", 4, &b), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, 0);
	dd_buf_free(&b);

	assert_int_equal(dd_form_field("a=1&csrf=x%2By+z&csrf=2", 23, "csrf", v,
				       sizeof v), DD_OK);
	assert_string_equal(v, "x+y z");
	/* Prefixes and suffixes of the name are other fields. */
	assert_int_equal(dd_form_field("xcsrf=1&csrfx=2", 15, "csrf", v, sizeof v),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(dd_form_field("csrf=", 5, "csrf", v, sizeof v), DD_OK);
	assert_string_equal(v, "");
	assert_int_equal(dd_form_field("csrf", 4, "csrf", v, sizeof v),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(dd_form_field("csrf=%zz", 8, "csrf", v, sizeof v),
			 DD_ERR_INVALID);
	assert_int_equal(dd_form_field("csrf=0123456789abcdef", 21, "csrf", v,
				       sizeof v), DD_ERR_TOO_LARGE);
	assert_int_equal(dd_form_field("", 0, "csrf", v, sizeof v),
			 DD_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_u64_is_strict),
		cmocka_unit_test(hex_round_trip),
		cmocka_unit_test(percent_decoding),
		cmocka_unit_test(random_hex_differs),
		cmocka_unit_test(trim_and_ieq),
		cmocka_unit_test(errors_have_names_and_text),
		cmocka_unit_test(percent_encoding_and_form_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
