/*
 * test_client_workload.c: local validation of workload specs: the good
 * shapes (including the repository's example), every field's wrong
 * types and bounds, oversized files, mutations of valid specs, and
 * allocation failures.
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

#include "client/workload.h"
#include "core/alloc.h"
#include "core/json.h"

static const char *const good[] = {
	"{\"app_name\":\"web\",\"cmd\":[\"/bin/web\",\"--port\",\"9000\"]}",
	"{\"app_name\":\"fetch-only\",\"github_release\":"
	"{\"repo\":\"org/repo\",\"asset\":\"tool.tar.gz\"}}",
	"{\"app_name\":\"web.v2_x\",\"github_release\":{\"repo\":\"org/repo\","
	"\"asset\":\"web-linux-amd64\",\"tag\":\"v1\",\"rename\":\"web\"},"
	"\"cmd\":[\"web\"],\"env\":[\"PORT=9000\",\"EMPTY=\",\"_X=a=b\"],"
	"\"tty\":false,\"expose\":{\"hostname_label\":\"web\",\"port\":9000},"
	"\"requires_agent_mode\":\"read_write\"}",
	"{\"cmd\":[\"sh\",\"\"],\"app_name\":\"A1\",\"tty\":true,\"env\":[]}",
};

static dd_err_t check(const char *spec, char *why, size_t why_len)
{
	json_t *v = NULL;
	dd_err_t rc = dd_workload_check(spec, strlen(spec), &v, why, why_len);

	assert_true((rc == DD_OK) == (v != NULL));
	json_decref(v);
	return rc;
}

static void refused(const char *spec, const char *needle)
{
	char why[256];

	assert_int_equal(check(spec, why, sizeof why), DD_ERR_INVALID);
	if (strstr(why, needle) == NULL)
		fail_msg("%s: '%s' lacks '%s'", spec, why, needle);
}

static void good_specs_pass(void **state)
{
	char why[256];
	json_t *v = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (check(good[i], why, sizeof why) != DD_OK)
			fail_msg("%s: %s", good[i], why);
	/* The spec comes back as parsed, for compaction by the caller. */
	assert_int_equal(dd_workload_check(good[0], strlen(good[0]), &v, NULL,
					   0), DD_OK);
	assert_string_equal(json_string_value(json_object_get(v, "app_name")),
			    "web");
	json_decref(v);
}

static void the_example_workload_is_valid(void **state)
{
	const char *data = getenv("DD_TEST_DATA");
	char path[1024], buf[8192], why[256];
	json_t *v = NULL;
	size_t n;
	FILE *f;

	(void)state;
	assert_non_null(data);
	snprintf(path, sizeof path, "%s/../../apps/hello-world/workload.json",
		 data);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	if (dd_workload_check(buf, n, &v, why, sizeof why) != DD_OK)
		fail_msg("%s: %s", path, why);
	assert_string_equal(json_string_value(json_object_get(v, "app_name")),
			    "hello-world");
	json_decref(v);
}

static void required_fields(void **state)
{
	(void)state;
	refused("{\"cmd\":[\"x\"]}", "app_name: required");
	refused("{\"app_name\":\"x\"}", "non-empty cmd or a github_release");
	refused("{\"app_name\":\"x\",\"cmd\":[]}", "non-empty cmd");
	refused("{\"app_name\":\"x\",\"cmd\":[\"\"]}", "cmd[0]");
	refused("{\"app_name\":\"x\",\"github_release\":{\"asset\":\"a\"}}",
		"github_release.repo: required");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/r\"}}",
		"github_release.asset: required");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":{\"port\":1}}",
		"expose.hostname_label");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"w\"}}", "expose.port");
}

static void wrong_types(void **state)
{
	(void)state;
	refused("[]", "JSON object");
	refused("\"web\"", "not JSON");
	refused("{\"app_name\":7,\"cmd\":[\"a\"]}",
		"app_name: must be a string");
	refused("{\"app_name\":null,\"cmd\":[\"a\"]}", "app_name: must be");
	refused("{\"app_name\":\"x\",\"cmd\":\"a b\"}",
		"cmd: must be an array");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\",1]}", "cmd[1]");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":{\"A\":\"1\"}}",
		"env: must be an array");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":[\"A=1\",true]}",
		"env[1]: must be a string");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"tty\":\"yes\"}", "tty");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"tty\":1}", "tty");
	refused("{\"app_name\":\"x\",\"github_release\":\"org/repo\"}",
		"github_release: must be an object");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":1,"
		"\"asset\":\"a\"}}", "github_release.repo: must be a string");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":[1]}",
		"expose: must be an object");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"w\",\"port\":\"80\"}}", "expose.port");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"w\",\"port\":80.5}}", "expose.port");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],"
		"\"requires_agent_mode\":true}", "requires_agent_mode");
}

static void values_and_names(void **state)
{
	(void)state;
	refused("{\"app_name\":\"\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\"../etc\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\".hidden\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\"a/b\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\"a b\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\"caf\xc3\xa9\",\"cmd\":[\"a\"]}", "app_name");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":[\"NOEQUALS\"]}",
		"env[0]: must be KEY=VALUE");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":[\"=v\"]}",
		"env[0]");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":[\"A-B=v\"]}",
		"env[0]");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"env\":[\"1A=v\"]}",
		"env[0]");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"orgrepo\","
		"\"asset\":\"a\"}}", "owner/name");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/r/x\","
		"\"asset\":\"a\"}}", "owner/name");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"/r\","
		"\"asset\":\"a\"}}", "owner/name");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/\","
		"\"asset\":\"a\"}}", "owner/name");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/r\","
		"\"asset\":\"../a\"}}", "asset: must not contain '/'");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/r\","
		"\"asset\":\"a\",\"tag\":\"\"}}", "github_release.tag");
	refused("{\"app_name\":\"x\",\"github_release\":{\"repo\":\"o/r\","
		"\"asset\":\"a\",\"sha256\":\"00\"}}",
		"unknown field 'sha256'");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"Web\",\"port\":80}}", "DNS label");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"-web\",\"port\":80}}", "DNS label");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"web\",\"port\":0}}", "1-65535");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"web\",\"port\":65536}}", "1-65535");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"expose\":"
		"{\"hostname_label\":\"web\",\"port\":80,\"tls\":true}}",
		"unknown field 'tls'");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],"
		"\"requires_agent_mode\":\"root\"}", "requires_agent_mode");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"comand\":[\"b\"]}",
		"unknown field 'comand'");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"oracle\":{}}",
		"boot workloads only");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\"],\"inherit_token\":true}",
		"boot workloads only");
	refused("{\"app_name\":\"x\",\"app_name\":\"y\",\"cmd\":[\"a\"]}",
		"not JSON");
	refused("{\"app_name\":\"x\",\"cmd\":[\"a\\u0000b\"]}", "not JSON");
	refused("{\"app_name\":\"x\",", "not JSON");
	refused("", "not JSON");
}

static void sizes(void **state)
{
	size_t big = DD_WORKLOAD_MAX_BYTES + 1, n = 0;
	char *s = malloc(big + 64), why[256];
	json_t *v = NULL;

	(void)state;
	assert_non_null(s);
	/* A file over the limit, whatever it holds. */
	memset(s, ' ', big);
	s[0] = '{';
	s[big - 1] = '}';
	assert_int_equal(dd_workload_check(s, big, &v, why, sizeof why),
			 DD_ERR_TOO_LARGE);
	assert_null(v);
	assert_non_null(strstr(why, "larger than"));

	/* 256 arguments pass, 257 do not. */
	for (int count = 256; count <= 257; count++) {
		n = (size_t)snprintf(s, big, "{\"app_name\":\"x\",\"cmd\":[");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(s + n, big - n, "%s\"a\"",
					      i ? "," : "");
		snprintf(s + n, big - n, "]}");
		assert_int_equal(check(s, why, sizeof why),
				 count == 256 ? DD_OK : DD_ERR_INVALID);
	}
	assert_non_null(strstr(why, "more than 256"));

	/* One argument of 4095 bytes passes, 4096 does not. */
	for (size_t len = 4095; len <= 4096; len++) {
		n = (size_t)snprintf(s, big, "{\"app_name\":\"x\",\"cmd\":[\"");
		memset(s + n, 'a', len);
		snprintf(s + n + len, big - n - len, "\"]}");
		assert_int_equal(check(s, why, sizeof why),
				 len == 4095 ? DD_OK : DD_ERR_INVALID);
	}
	assert_non_null(strstr(why, "cmd[0]: longer than"));

	/* 257 env entries, and one of 32 KiB. */
	n = (size_t)snprintf(s, big, "{\"app_name\":\"x\",\"cmd\":[\"a\"],"
			     "\"env\":[");
	for (int i = 0; i < 257; i++)
		n += (size_t)snprintf(s + n, big - n, "%s\"A=1\"",
				      i ? "," : "");
	snprintf(s + n, big - n, "]}");
	refused(s, "env: more than 256");
	n = (size_t)snprintf(s, big, "{\"app_name\":\"x\",\"cmd\":[\"a\"],"
			     "\"env\":[\"A=");
	memset(s + n, 'v', 32 * 1024);
	snprintf(s + n + 32 * 1024, big - n - 32 * 1024, "\"]}");
	refused(s, "env[0]: longer than");

	/* 64-byte names pass, 65 do not. */
	memset(s, 0, big);
	n = (size_t)snprintf(s, big, "{\"cmd\":[\"a\"],\"app_name\":\"");
	memset(s + n, 'a', 64);
	snprintf(s + n + 64, big - n - 64, "\"}");
	assert_int_equal(check(s, why, sizeof why), DD_OK);
	memset(s + n, 'a', 65);
	snprintf(s + n + 65, big - n - 65, "\"}");
	refused(s, "app_name");
	free(s);
}

/* Truncations and single-byte flips of valid specs fail cleanly. */
static void mutations(void **state)
{
	char buf[1024];
	json_t *v;

	(void)state;
	for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
		size_t n = strlen(good[g]);

		for (size_t cut = 0; cut < n; cut++) {
			v = NULL;
			assert_int_not_equal(dd_workload_check(good[g], cut, &v,
							       NULL, 0), DD_OK);
			assert_null(v);
		}
		for (size_t i = 0; i < n; i++) {
			for (unsigned bit = 0; bit < 8; bit++) {
				memcpy(buf, good[g], n);
				buf[i] = (char)(buf[i] ^ (1u << bit));
				v = NULL;
				/* Either verdict, but a consistent one. */
				if (dd_workload_check(buf, n, &v, NULL, 0) ==
				    DD_OK)
					assert_non_null(v);
				else
					assert_null(v);
				json_decref(v);
			}
		}
	}
}

static void app_names(void **state)
{
	(void)state;
	assert_true(dd_workload_app_name_ok("hello-world"));
	assert_true(dd_workload_app_name_ok("A.b_c-9"));
	assert_true(dd_workload_app_name_ok("9"));
	assert_false(dd_workload_app_name_ok(""));
	assert_false(dd_workload_app_name_ok("-x"));
	assert_false(dd_workload_app_name_ok("_x"));
	assert_false(dd_workload_app_name_ok(".."));
	assert_false(dd_workload_app_name_ok("a%2fb"));
	assert_false(dd_workload_app_name_ok("a?b"));
}

/* R14: every allocation of a check, failed in turn. */
static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	const char *spec = good[2];
	unsigned long n, used;
	json_t *v;
	dd_err_t rc;

	for (n = 1;; n++) {
		v = NULL;
		dd_alloc_fail_at(n);
		rc = dd_workload_check(spec, strlen(spec), &v, NULL, 0);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		if (rc != DD_OK && rc != DD_ERR_NOMEM)
			fail_msg("n=%lu: %s", n, dd_errname(rc));
		assert_true((rc == DD_OK) == (v != NULL));
		json_decref(v);
		if (used < n) {
			assert_int_equal(rc, DD_OK);
			break;
		}
	}
	assert_true(n > 10);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_specs_pass),
		cmocka_unit_test(the_example_workload_is_valid),
		cmocka_unit_test(required_fields),
		cmocka_unit_test(wrong_types),
		cmocka_unit_test(values_and_names),
		cmocka_unit_test(sizes),
		cmocka_unit_test(mutations),
		cmocka_unit_test(app_names),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
