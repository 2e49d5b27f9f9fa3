/* configfs-tsm against the stand-in of tsm_standin.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "attest/tsm.h"
#include "tsm_standin.h"

static void quote_carries_report_data_and_entry_is_removed(void **state)
{
	struct standin *s = *state;
	uint8_t rd[64];
	dd_buf q;
	char why[256] = "";

	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(i * 3);
	dd_buf_init(&q, 128 * 1024);
	assert_int_equal(dd_tsm_get_quote(s->root, rd, &q, why, sizeof why), DD_OK);
	assert_int_equal(q.len, QUOTE_LEN);
	assert_memory_equal(q.data + 568, rd, 64);
	/* The entry is gone: the root is empty again. */
	assert_int_equal(rmdir(s->root), 0);
	assert_int_equal(mkdir(s->root, 0700), 0);
	dd_buf_free(&q);
}

static void empty_outblob_means_no_quote_service(void **state)
{
	struct standin *s = *state;
	uint8_t rd[64] = {0};
	dd_buf q;
	char why[256] = "";

	s->empty_outblob = 1;
	dd_buf_init(&q, 128 * 1024);
	assert_int_equal(dd_tsm_get_quote(s->root, rd, &q, why, sizeof why),
			 DD_ERR_UPSTREAM);
	assert_non_null(strstr(why, "no quote-generation service"));
	assert_int_equal(q.len, 0);
	dd_buf_free(&q);
}

static void racing_writer_is_detected(void **state)
{
	struct standin *s = *state;
	uint8_t rd[64] = {0};
	dd_buf q;
	char why[256] = "";

	s->gen_step = 2;
	dd_buf_init(&q, 128 * 1024);
	assert_int_equal(dd_tsm_get_quote(s->root, rd, &q, why, sizeof why), DD_ERR_BUSY);
	assert_non_null(strstr(why, "generation"));
	dd_buf_free(&q);
}

static void oversized_quote_is_refused(void **state)
{
	struct standin *s = *state;
	uint8_t rd[64] = {0};
	dd_buf q;

	s->quote_len = 40000;
	dd_buf_init(&q, 32 * 1024);
	assert_int_equal(dd_tsm_get_quote(s->root, rd, &q, NULL, 0), DD_ERR_TOO_LARGE);
	assert_int_equal(q.len, 0);
	dd_buf_free(&q);
}

static void missing_root_is_unsupported(void **state)
{
	uint8_t rd[64] = {0};
	dd_buf q;
	char why[256] = "";

	(void)state;
	dd_buf_init(&q, 1024);
	assert_int_equal(dd_tsm_get_quote("/nonexistent/tsm/report", rd, &q, why,
					  sizeof why), DD_ERR_UNSUPPORTED);
	assert_non_null(strstr(why, "not available"));
	dd_buf_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(quote_carries_report_data_and_entry_is_removed,
						standin_setup, standin_teardown),
		cmocka_unit_test_setup_teardown(empty_outblob_means_no_quote_service,
						standin_setup, standin_teardown),
		cmocka_unit_test_setup_teardown(racing_writer_is_detected, standin_setup, standin_teardown),
		cmocka_unit_test_setup_teardown(oversized_quote_is_refused, standin_setup, standin_teardown),
		cmocka_unit_test(missing_root_is_unsupported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
