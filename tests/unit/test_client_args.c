/*
 * test_client_args.c: the command line of `devopsdefender client`, good
 * and bad, including the URL policy (plain http only to loopback).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/client_args.h"
#include "client/client_http.h"

#define MAX_ARGV 16

/* argv as main gets it: writable strings, which --token relies on. */
struct argv_copy {
	int argc;
	char *argv[MAX_ARGV];
};

static void make(struct argv_copy *a, const char *const *words)
{
	a->argc = 0;
	for (; words[a->argc] != NULL; a->argc++) {
		assert_true(a->argc < MAX_ARGV);
		a->argv[a->argc] = strdup(words[a->argc]);
		assert_non_null(a->argv[a->argc]);
	}
}

static void drop(struct argv_copy *a)
{
	for (int i = 0; i < a->argc; i++)
		free(a->argv[i]);
	a->argc = 0;
}

/* The last parse's argv stays alive: the result borrows from it. */
static struct argv_copy last;

static dd_err_t parse(const char *const *words, dd_client_args *out,
		      char *why, size_t why_len, struct argv_copy *keep)
{
	dd_err_t rc;

	drop(&last);
	make(&last, words);
	rc = dd_client_args_parse(last.argc, last.argv, out, why, why_len);
	if (keep != NULL) {
		*keep = last;
		last.argc = 0;
	}
	return rc;
}

static int drop_last(void **state)
{
	(void)state;
	drop(&last);
	last.argc = 0;
	return 0;
}

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})

static void refused(const char *const *words, const char *needle)
{
	dd_client_args a;
	char why[256];

	assert_int_equal(parse(words, &a, why, sizeof why, NULL),
			 DD_ERR_INVALID);
	if (strstr(why, needle) == NULL)
		fail_msg("'%s' does not mention '%s'", why, needle);
}

static void help_and_nothing(void **state)
{
	dd_client_args a;
	char why[256];

	(void)state;
	assert_int_equal(dd_client_args_parse(0, NULL, &a, why, sizeof why),
			 DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_HELP);
	assert_int_equal(parse(A("help"), &a, why, sizeof why, NULL), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_HELP);
	assert_int_equal(parse(A("--help"), &a, why, sizeof why, NULL), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_HELP);
	assert_int_equal(parse(A("deploy", "--help"), &a, why, sizeof why,
			       NULL), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_HELP);
	assert_non_null(strstr(dd_client_usage(), "Exit status"));
}

static void deploy_defaults_and_forms(void **state)
{
	struct argv_copy keep;
	dd_client_args a;
	char why[256];

	(void)state;
	assert_int_equal(parse(A("deploy", "--agent", "https://agent.example",
				 "w.json"), &a, why, sizeof why, &keep), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_DEPLOY);
	assert_string_equal(a.agent_url, "https://agent.example");
	assert_string_equal(a.workload, "w.json");
	assert_int_equal(a.timeout_s, DD_CLIENT_DEFAULT_TIMEOUT_S);
	assert_int_equal(a.wait, 1);
	assert_null(a.audience);
	assert_null(a.token);
	assert_null(a.token_file);
	/* Borrowed from argv, not copied. */
	assert_ptr_equal(a.workload, keep.argv[3]);
	drop(&keep);

	assert_int_equal(parse(A("deploy", "w.json",
				 "--agent=http://127.0.0.1:8081/",
				 "--timeout=30", "--no-wait", "--audience",
				 "custom", "--token-file", "-"), &a, why,
			       sizeof why, NULL), DD_OK);
	assert_string_equal(a.agent_url, "http://127.0.0.1:8081/");
	assert_int_equal(a.timeout_s, 30);
	assert_int_equal(a.wait, 0);
	assert_string_equal(a.audience, "custom");
	assert_string_equal(a.token_file, "-");
	assert_int_equal(a.wait_timeout_s, 0);
	assert_int_equal(parse(A("deploy", "w.json", "--agent", "https://a",
				 "--wait-timeout", "90"), &a, why, sizeof why,
			       NULL), DD_OK);
	assert_int_equal(a.wait_timeout_s, 90);

	assert_int_equal(parse(A("deploy", "--cp", "https://cp.example",
				 "--vm", "dd-local-prod", "--wait", "--",
				 "-odd.json"), &a, why, sizeof why, NULL),
			 DD_OK);
	assert_string_equal(a.cp_url, "https://cp.example");
	assert_string_equal(a.vm_name, "dd-local-prod");
	assert_string_equal(a.workload, "-odd.json");
	assert_int_equal(a.wait, 1);

	/* Standard input as the workload. */
	assert_int_equal(parse(A("deploy", "--agent", "http://localhost", "-"),
			       &a, why, sizeof why, NULL), DD_OK);
	assert_string_equal(a.workload, "-");
}

static void token_points_into_argv(void **state)
{
	struct argv_copy keep;
	dd_client_args a;
	char why[256];

	(void)state;
	assert_int_equal(parse(A("logs", "--agent", "http://[::1]:9/", "web",
				 "--token", "abc.def-ghi_"), &a, why,
			       sizeof why, &keep), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_LOGS);
	assert_string_equal(a.app, "web");
	assert_ptr_equal(a.token, keep.argv[5]);
	drop(&keep);
	assert_int_equal(parse(A("logs", "--agent", "http://127.0.0.2", "web",
				 "--token=tok=="), &a, why, sizeof why, &keep),
			 DD_OK);
	assert_string_equal(a.token, "tok==");
	assert_ptr_equal(a.token, keep.argv[4] + strlen("--token="));
	drop(&keep);
}

static void list_targets(void **state)
{
	dd_client_args a;
	char why[256];

	(void)state;
	assert_int_equal(parse(A("list", "--agent", "https://a.example"), &a,
			       why, sizeof why, NULL), DD_OK);
	assert_int_equal(a.cmd, DD_CLIENT_CMD_LIST);
	/* The fleet's agents: --cp alone is enough for list. */
	assert_int_equal(parse(A("list", "--cp", "https://cp.example"), &a, why,
			       sizeof why, NULL), DD_OK);
	assert_null(a.vm_name);
	refused(A("deploy", "--cp", "https://cp.example", "w.json"),
		"--cp needs --vm");
	refused(A("logs", "--cp", "https://cp.example", "web"),
		"--cp needs --vm");
}

static void bad_command_lines(void **state)
{
	(void)state;
	refused(A("destroy"), "unknown command");
	refused(A("deploy", "--agent", "https://a", "w.json", "--force"),
		"unknown option");
	refused(A("deploy", "--agent"), "needs a value");
	refused(A("deploy", "w.json", "--no-wait=1", "--agent", "https://a"),
		"takes no value");
	refused(A("deploy", "--agent", "https://a", "--agent", "https://b",
		  "w.json"), "twice");
	refused(A("deploy", "--agent", "https://a", "--cp", "https://b", "--vm",
		  "x", "w.json"), "not both");
	refused(A("deploy", "w.json"), "which agent");
	refused(A("deploy", "--vm", "x", "--agent", "https://a", "w.json"),
		"not both");
	refused(A("list", "--vm", "x"), "which agent");
	refused(A("deploy", "--agent", "https://a"), "one WORKLOAD");
	refused(A("deploy", "--agent", "https://a", "a.json", "b.json"),
		"one WORKLOAD");
	refused(A("logs", "--agent", "https://a"), "one APP");
	refused(A("list", "--agent", "https://a", "extra"), "no arguments");
	refused(A("deploy", "--agent", "https://a", "w.json", "--token", "t",
		  "--token-file", "f"), "not both");
	refused(A("deploy", "--agent", "https://a", "w.json", "--token", "a b"),
		"not a bearer token");
	refused(A("deploy", "--agent", "https://a", "w.json", "--token", ""),
		"not a bearer token");
	refused(A("deploy", "--agent", "https://a", "w.json", "--timeout", "0"),
		"--timeout");
	refused(A("deploy", "--agent", "https://a", "w.json", "--timeout",
		  "86401"), "--timeout");
	refused(A("deploy", "--agent", "https://a", "w.json", "--timeout",
		  "-5"), "--timeout");
	refused(A("deploy", "--agent", "https://a", "w.json", "--timeout",
		  "1m"), "--timeout");
	refused(A("deploy", "--agent", "https://a", "w.json", "--wait",
		  "--no-wait"), "twice");
	refused(A("logs", "--agent", "https://a", "web", "--no-wait"),
		"deploy only");
	refused(A("logs", "--agent", "https://a", "web", "--wait-timeout",
		  "5"), "deploy only");
	refused(A("deploy", "--agent", "https://a", "w.json", "--no-wait",
		  "--wait-timeout", "5"), "--no-wait");
	refused(A("deploy", "--agent", "https://a", "w.json", "--wait-timeout",
		  "0"), "--wait-timeout");
	refused(A("logs", "--agent", "https://a", "../etc"), "APP");
	refused(A("logs", "--agent", "https://a", "a/b"), "APP");
	refused(A("deploy", "--cp", "https://a", "--vm", "", "w.json"), "--vm");
}

static void url_policy(void **state)
{
	static const char *const good[] = {
		"https://agent.example.com", "https://agent.example.com:8443/",
		"https://agent.example.com/prefix", "http://127.0.0.1:8081",
		"http://127.9.9.9", "http://localhost:1", "http://LOCALHOST",
		"http://[::1]:8081/", "https://10.0.0.1",
	};
	static const struct {
		const char *url;
		const char *why;
	} bad[] = {
		{"http://agent.example.com", "loopback"},
		{"http://10.0.0.1:8081", "loopback"},
		{"http://128.0.0.1", "loopback"},
		{"http://localhost.evil.example", "loopback"},
		{"ftp://agent.example.com", "http(s)"},
		{"agent.example.com", "http(s)"},
		{"", "http(s)"},
		{"https://user:pw@agent.example.com", "passwords"},
		{"https://agent.example.com/#frag", "fragments"},
		{"https://agent.example.com/?x=1", "query"},
		{"https://agent example.com", "http(s)"},
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (dd_client_url_check(good[i], 0, why, sizeof why) != DD_OK)
			fail_msg("%s refused: %s", good[i], why);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(dd_client_url_check(bad[i].url, 0, why,
						     sizeof why),
				 DD_ERR_INVALID);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s: '%s' lacks '%s'", bad[i].url, why,
				 bad[i].why);
	}
	/* The token endpoint comes with its own query. */
	assert_int_equal(dd_client_url_check("https://t.example/x?api-"
					     "version=2.0", 1, why, sizeof why),
			 DD_OK);
	refused(A("deploy", "--agent", "http://agent.example.com", "w.json"),
		"loopback");
	refused(A("list", "--cp", "https://cp.example/?a=b"), "query");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_and_nothing),
		cmocka_unit_test(deploy_defaults_and_forms),
		cmocka_unit_test(token_points_into_argv),
		cmocka_unit_test(list_targets),
		cmocka_unit_test(bad_command_lines),
		cmocka_unit_test(url_policy),
	};
	return cmocka_run_group_tests(tests, NULL, drop_last);
}
