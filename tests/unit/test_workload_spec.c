/*
 * test_workload_spec.c: the shared workload check over every workload
 * file in apps/ (so the examples and the boot workloads stay deployable
 * as written, and apps/workload.schema.json keeps describing what the C
 * code accepts), plus the messages the agent returns for bad specs.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/workload_spec.h"

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Checks every *.json below dir but the schema itself; returns the count. */
static int check_tree(const char *dir)
{
	char path[1024], why[256];
	json_error_t err;
	struct dirent *e;
	struct stat st;
	json_t *v;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	assert_non_null(d);
	for (e = readdir(d); e != NULL; e = readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			n += check_tree(path);
			continue;
		}
		if (!ends_with(e->d_name, ".json") ||
		    ends_with(e->d_name, ".schema.json"))
			continue;
		v = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
		if (v == NULL)
			fail_msg("%s: %s", path, err.text);
		if (dd_workload_spec_check(v, why, sizeof why) != DD_OK)
			fail_msg("%s: %s", path, why);
		json_decref(v);
		n++;
	}
	closedir(d);
	return n;
}

static void every_app_is_a_valid_workload(void **state)
{
	const char *data = getenv("DD_TEST_DATA");
	char apps[1024];

	(void)state;
	assert_non_null(data);
	snprintf(apps, sizeof apps, "%s/../../apps", data);
	/* hello-world and the two boot workloads at least. */
	assert_true(check_tree(apps) >= 3);
}

static void refused(const char *text, const char *why_prefix)
{
	char why[256];
	json_t *v = json_loads(text, 0, NULL);

	assert_non_null(v);
	assert_int_equal(dd_workload_spec_check(v, why, sizeof why),
			 DD_ERR_INVALID);
	if (strncmp(why, why_prefix, strlen(why_prefix)) != 0)
		fail_msg("%s: '%s' is not '%s...'", text, why, why_prefix);
	json_decref(v);
}

static void messages_name_the_field(void **state)
{
	(void)state;
	refused("[]", "must be a JSON object");
	refused("{\"cmd\":[\"x\"]}", "app_name: required");
	refused("{\"app_name\":\"a\"}", "needs a non-empty cmd");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"env\":[\"A=1\",\"B=2\","
		"3]}", "env[2]: must be a string");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"env\":[\"NOEQUALS\"]}",
		"env[0]: must be KEY=VALUE");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"comand\":[]}",
		"unknown field 'comand'");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"method\":\"stop\"}",
		"unknown field 'method'");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"inherit_token\":true}",
		"inherit_token: applies to boot workloads only");
	refused("{\"app_name\":\"a\",\"cmd\":[\"x\"],\"expose\":"
		"{\"hostname_label\":\"web\",\"port\":\"80\"}}",
		"expose.port: must be an integer");
	refused("{\"app_name\":\"a\",\"github_release\":{\"repo\":\"o/n\","
		"\"asset\":\"x\",\"sha\":\"1\"}}",
		"github_release: unknown field 'sha'");
}

static void a_null_why_is_allowed(void **state)
{
	json_t *v = json_loads("{\"app_name\":1}", 0, NULL);

	(void)state;
	assert_int_equal(dd_workload_spec_check(v, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_workload_spec_check(NULL, NULL, 0),
			 DD_ERR_INVALID);
	json_decref(v);
}

/* R14: the agent calls this on every deploy; it must not need memory. */
static void the_check_allocates_nothing(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	json_t *v = json_loads("{\"app_name\":\"a\",\"cmd\":[\"x\"],"
			       "\"env\":[\"A=1\"],\"expose\":{"
			       "\"hostname_label\":\"a\",\"port\":1}}",
			       0, NULL);

	assert_non_null(v);
	dd_alloc_fail_at(1);
	assert_int_equal(dd_workload_spec_check(v, NULL, 0), DD_OK);
	dd_alloc_fail_at(0);
	json_decref(v);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_app_is_a_valid_workload),
		cmocka_unit_test(messages_name_the_field),
		cmocka_unit_test(a_null_why_is_allowed),
		cmocka_unit_test(the_check_allocates_nothing),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
