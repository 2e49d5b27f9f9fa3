#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/cursor.h"

static const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
			       0x08, 0x09, 0x0a, 0x0b};

static void reads_little_and_big_endian(void **state)
{
	dd_cursor c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;

	(void)state;
	dd_cur_init(&c, data, sizeof data);
	assert_int_equal(dd_cur_get_u8(&c, &u8), DD_OK);
	assert_int_equal(u8, 0x01);
	assert_int_equal(dd_cur_get_u16le(&c, &u16), DD_OK);
	assert_int_equal(u16, 0x0302);
	assert_int_equal(dd_cur_get_u16be(&c, &u16), DD_OK);
	assert_int_equal(u16, 0x0405);
	assert_int_equal(dd_cur_get_u32le(&c, &u32), DD_OK);
	assert_int_equal(u32, 0x09080706);
	assert_int_equal(dd_cur_remaining(&c), 2);
}

static void u64_both_orders(void **state)
{
	dd_cursor c;
	uint64_t v;

	(void)state;
	dd_cur_init(&c, data, sizeof data);
	assert_int_equal(dd_cur_get_u64le(&c, &v), DD_OK);
	assert_true(v == 0x0807060504030201ull);
	dd_cur_init(&c, data, sizeof data);
	assert_int_equal(dd_cur_get_u64be(&c, &v), DD_OK);
	assert_true(v == 0x0102030405060708ull);
}

static void failure_leaves_cursor_untouched(void **state)
{
	dd_cursor c;
	uint32_t v = 0xdeadbeef;
	uint8_t out[4];

	(void)state;
	dd_cur_init(&c, data, 3);
	assert_int_equal(dd_cur_get_u32le(&c, &v), DD_ERR_TRUNCATED);
	assert_int_equal(v, 0xdeadbeef);
	assert_int_equal(dd_cur_remaining(&c), 3);
	assert_int_equal(dd_cur_get_bytes(&c, out, 4), DD_ERR_TRUNCATED);
	assert_int_equal(dd_cur_skip(&c, SIZE_MAX), DD_ERR_TRUNCATED);
	assert_int_equal(dd_cur_remaining(&c), 3);
	assert_int_equal(dd_cur_get_bytes(&c, out, 3), DD_OK);
	assert_memory_equal(out, data, 3);
	assert_int_equal(dd_cur_get_bytes(&c, out, 0), DD_OK);
	assert_int_equal(dd_cur_get_bytes(&c, out, 1), DD_ERR_TRUNCATED);
}

static void sub_cursors_are_bounded(void **state)
{
	dd_cursor c, sub;
	const uint8_t *span;
	uint32_t v;

	(void)state;
	dd_cur_init(&c, data, sizeof data);
	assert_int_equal(dd_cur_sub(&c, 3, &sub), DD_OK);
	assert_int_equal(dd_cur_get_u32le(&sub, &v), DD_ERR_TRUNCATED);
	assert_int_equal(dd_cur_remaining(&sub), 3);
	assert_int_equal(dd_cur_remaining(&c), sizeof data - 3);
	assert_int_equal(dd_cur_get_span(&c, 2, &span), DD_OK);
	assert_ptr_equal(span, data + 3);
	assert_int_equal(dd_cur_sub(&c, 100, &sub), DD_ERR_TRUNCATED);
}

static void null_input_is_empty(void **state)
{
	dd_cursor c;
	uint8_t v;

	(void)state;
	dd_cur_init(&c, NULL, 100);
	assert_int_equal(dd_cur_remaining(&c), 0);
	assert_int_equal(dd_cur_get_u8(&c, &v), DD_ERR_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_little_and_big_endian),
		cmocka_unit_test(u64_both_orders),
		cmocka_unit_test(failure_leaves_cursor_untouched),
		cmocka_unit_test(sub_cursors_are_bounded),
		cmocka_unit_test(null_input_is_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
