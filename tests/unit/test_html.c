#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/html.h"

static void escapes_what_html_cares_about(void **state)
{
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 256);
	assert_int_equal(dd_html_escape(&b, "<a href=\"x\">Tom & Jerry's</a>"),
			 DD_OK);
	assert_string_equal(dd_buf_str(&b), "&lt;a href=&quot;x&quot;&gt;Tom "
			    "&amp; Jerry&#39;s&lt;/a&gt;");
	dd_buf_reset(&b);
	assert_int_equal(dd_html_escape(&b, "plain é text"), DD_OK);
	assert_string_equal(dd_buf_str(&b), "plain é text");
	dd_buf_free(&b);
	/* Past the cap: an error, never a cut entity. */
	dd_buf_init(&b, 8);
	assert_int_equal(dd_html_escape(&b, "<<<<"), DD_ERR_TOO_LARGE);
	dd_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escapes_what_html_cares_about),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
