/*
 * The power-off primitive: the recorded variant in a forked child (it
 * never returns), and the selection rule that keeps dev fleets safe.
 * The real variant is never called here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "core/poweroff.h"

static void test_selection(void **state)
{
	dd_config cfg = {0};
	dd_poweroff p;

	(void)state;
	p = dd_poweroff_from_config(&cfg);
	assert_int_equal(p.kind, DD_POWEROFF_RECORDED);
	cfg.poweroff_real = 1;
	p = dd_poweroff_from_config(&cfg);
	assert_int_equal(p.kind, DD_POWEROFF_REAL);
	/* The dev fleet never powers anything off, whatever it asks. */
	cfg.dev = 1;
	p = dd_poweroff_from_config(&cfg);
	assert_int_equal(p.kind, DD_POWEROFF_RECORDED);
	assert_string_equal(dd_poweroff_kind_name(DD_POWEROFF_REAL), "real");
	assert_string_equal(dd_poweroff_kind_name(DD_POWEROFF_RECORDED),
			    "recorded");
}

static void test_recorded_exit_and_marker(void **state)
{
	char dir[] = "/tmp/dd-poweroff-XXXXXX";
	char path[128], line[256] = "";
	dd_poweroff p = {.kind = DD_POWEROFF_RECORDED};
	FILE *f;
	pid_t pid;
	int st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/marker", dir);
	p.marker_path = path;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		dd_poweroff_now(&p, "test eviction");
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), DD_POWEROFF_EXIT_CODE);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	assert_non_null(strstr(line, "poweroff pid="));
	assert_non_null(strstr(line, "reason=test eviction"));
	unlink(path);
	rmdir(dir);
}

static void test_recorded_without_marker(void **state)
{
	dd_poweroff p = {.kind = DD_POWEROFF_RECORDED};
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		dd_poweroff_now(&p, "no marker");
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), DD_POWEROFF_EXIT_CODE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_recorded_exit_and_marker),
		cmocka_unit_test(test_recorded_without_marker),
	};

	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
