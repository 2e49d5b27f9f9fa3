#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/log.h"

/* Captures what the logger writes to stderr during fn(). */
static void capture(void (*fn)(void), char *out, size_t n)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t got;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	got = fread(out, 1, n - 1, tmp);
	out[got] = '\0';
	fclose(tmp);
}

static void write_hostile(void)
{
	dd_log_at(DD_LOG_INFO, "fn", "rid1", "user said \"%s\"", "a\nlevel=error b=\x01");
}

static void logfmt_escapes_newlines_and_quotes(void **state)
{
	char out[4096];

	(void)state;
	dd_log_setup(DD_LOG_INFO, DD_LOG_LOGFMT, "test");
	capture(write_hostile, out, sizeof out);
	/* One line only: an injected newline cannot forge a second event. */
	assert_non_null(strchr(out, '\n'));
	assert_null(strchr(strchr(out, '\n') + 1, '\n'));
	assert_non_null(strstr(out, "level=info"));
	assert_non_null(strstr(out, "rid=rid1"));
	assert_non_null(strstr(out, "\\n"));
	assert_non_null(strstr(out, "\\x01"));
	assert_non_null(strstr(out, "\\\"a"));
}

static void json_format_parses(void **state)
{
	char out[4096];
	json_t *v;
	json_error_t e;

	(void)state;
	dd_log_setup(DD_LOG_DEBUG, DD_LOG_JSON, "test");
	capture(write_hostile, out, sizeof out);
	v = json_loads(out, 0, &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(v, "rid")), "rid1");
	assert_string_equal(json_string_value(json_object_get(v, "msg")),
			    "user said \"a\nlevel=error b=\x01\"");
	json_decref(v);
}

static void write_debug(void)
{
	dd_log_debug("hidden");
	dd_log_warn("shown");
}

static void levels_filter(void **state)
{
	char out[4096];
	dd_log_level l;

	(void)state;
	dd_log_setup(DD_LOG_INFO, DD_LOG_LOGFMT, "test");
	capture(write_debug, out, sizeof out);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "shown"));
	assert_int_equal(dd_log_level_parse("warn", &l), DD_OK);
	assert_int_equal(l, DD_LOG_WARN);
	assert_int_equal(dd_log_level_parse("verbose", &l), DD_ERR_INVALID);
}

static void write_long(void)
{
	char big[10000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	dd_log_info("%s", big);
}

static void long_lines_are_bounded(void **state)
{
	char out[16384];

	(void)state;
	dd_log_setup(DD_LOG_INFO, DD_LOG_LOGFMT, "test");
	capture(write_long, out, sizeof out);
	assert_true(strlen(out) <= 4096);
	assert_int_equal(out[strlen(out) - 1], '\n');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(logfmt_escapes_newlines_and_quotes),
		cmocka_unit_test(json_format_parses),
		cmocka_unit_test(levels_filter),
		cmocka_unit_test(long_lines_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
