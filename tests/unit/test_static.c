#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/assets.h"

static void table_is_sorted_and_complete(void **state)
{
	(void)state;
	assert_true(dd_assets_count >= 2);
	for (size_t i = 1; i < dd_assets_count; i++)
		assert_true(strcmp(dd_assets[i - 1].path, dd_assets[i].path) < 0);
	for (size_t i = 0; i < dd_assets_count; i++) {
		const dd_asset *a = &dd_assets[i];
		assert_ptr_equal(dd_asset_find(a->path), a);
		assert_int_equal(a->etag[0], '"');
		assert_int_equal(a->etag[strlen(a->etag) - 1], '"');
		assert_true(a->len > 0);
	}
	assert_string_equal(dd_asset_find("dd.css")->ctype, "text/css; charset=utf-8");
	assert_null(dd_asset_find("nope.css"));
	assert_null(dd_asset_find(""));
}

static void etag_matching(void **state)
{
	const char *e = "\"abc\"";

	(void)state;
	assert_true(dd_etag_matches("\"abc\"", e));
	assert_true(dd_etag_matches("W/\"abc\"", e));
	assert_true(dd_etag_matches("\"x\", \"abc\"", e));
	assert_true(dd_etag_matches(" \"x\" ,W/\"abc\" ", e));
	assert_true(dd_etag_matches("*", e));
	assert_false(dd_etag_matches("\"abcd\"", e));
	assert_false(dd_etag_matches("abc", e));
	assert_false(dd_etag_matches("", e));
	assert_false(dd_etag_matches(",,,", e));
	assert_false(dd_etag_matches("\"ab\"c\"", e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_is_sorted_and_complete),
		cmocka_unit_test(etag_matching),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
