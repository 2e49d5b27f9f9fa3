/*
 * test_client_sargs.c: the shell client's command line
 * (client/client_sargs.h) and the /noise/ws URL derivation
 * (dd_cn_ws_url, spec noise-sessions 2.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/client_noise.h"
#include "client/client_sargs.h"
#include "core/strutil.h"

#define MAX_ARGV 16

static dd_err_t parse(const char *const *words, dd_sargs *a, char *why,
		      size_t n)
{
	/* Writable, and alive while the caller reads the borrowed strings. */
	static char store[MAX_ARGV][256];
	char *argv[MAX_ARGV];
	int argc = 0;

	for (; words[argc] != NULL; argc++) {
		assert_true(argc < MAX_ARGV);
		snprintf(store[argc], sizeof store[argc], "%s", words[argc]);
		argv[argc] = store[argc];
	}
	return dd_sargs_parse(argc, argv, a, why, n);
}

static const char uuid[] = "0f8fad5b-d9cb-469f-a165-70867728950e";

static void good(void **state)
{
	const char *pair[] = {"pair", "cp.example.com", "--label", "my laptop",
			      "--key=/k", NULL};
	const char *shell[] = {"shell", "http://127.0.0.1:8080/", "--recipe",
			       "shell", "--allow-simulated", "--expect-mrtd",
			       "00112233445566778899aabbccddeeff00112233445566"
			       "778899aabbccddeeff00112233445566778899aabbccdd"
			       "eeff", "--timeout", "5", NULL};
	const char *replay[] = {"replay", "https://a.example.com", uuid,
				"--ca-file", "/ca.pem", NULL};
	const char *sess[] = {"sessions", "https://a.example.com", NULL};
	char why[200];
	dd_sargs a;

	(void)state;
	assert_int_equal(parse(pair, &a, why, sizeof why), DD_OK);
	assert_int_equal(a.cmd, DD_SC_PAIR);
	assert_string_equal(a.url, "https://cp.example.com");
	assert_string_equal(a.label, "my laptop");
	assert_string_equal(a.key_path, "/k");
	assert_int_equal(parse(shell, &a, why, sizeof why), DD_OK);
	assert_int_equal(a.cmd, DD_SC_SHELL);
	assert_true(a.allow_simulated && a.has_mrtd);
	assert_int_equal(a.mrtd[1], 0x11);
	assert_int_equal(a.mrtd[47], 0xff);
	assert_int_equal(a.timeout_s, 5);
	assert_string_equal(a.recipe, "shell");
	assert_int_equal(parse(replay, &a, why, sizeof why), DD_OK);
	assert_int_equal(a.cmd, DD_SC_REPLAY);
	assert_string_equal(a.session, uuid);
	assert_string_equal(a.ca_file, "/ca.pem");
	assert_int_equal(a.timeout_s, DD_SARGS_DEFAULT_TIMEOUT_S);
	assert_int_equal(parse(sess, &a, why, sizeof why), DD_OK);
	assert_false(a.allow_simulated || a.has_mrtd);
	assert_true(dd_sargs_is_cmd("shell") && !dd_sargs_is_cmd("deploy"));
}

static void bad(void **state)
{
	static const struct {
		const char *argv[8];
		const char *why;
	} cases[] = {
		{{"shell", NULL}, "which agent"},
		{{"pair", NULL}, "control plane"},
		{{"replay", "https://a", NULL}, "SESSION_ID"},
		{{"replay", "https://a", "0F8FAD5B-D9CB-469F-A165-70867728950E",
		  NULL}, "UUID"},
		{{"shell", "https://a", "extra", NULL}, "takes 1"},
		{{"shell", "http://10.1.2.3", NULL}, "loopback"},
		{{"shell", "ftp://a", NULL}, "ftp"},
		{{"shell", "https://a", "--expect-mrtd", "abcd", NULL}, "96 hex"},
		{{"shell", "https://a", "--session", "x", NULL}, "UUID"},
		{{"shell", "https://a", "--recipe", "a b", NULL}, "--recipe"},
		{{"shell", "https://a", "--recipe", "r", "--session", uuid,
		  NULL}, "not both"},
		{{"sessions", "https://a", "--recipe", "r", NULL}, "shell only"},
		{{"pair", "https://a", "--allow-simulated", NULL}, "pair takes"},
		{{"pair", "https://a", "--label", "a\tb", NULL}, "--label"},
		{{"shell", "https://a", "--label", "x", NULL}, "pair only"},
		{{"shell", "https://a", "--timeout", "0", NULL}, "--timeout"},
		{{"shell", "https://a", "--key", NULL}, "needs a value"},
		{{"shell", "https://a", "--allow-simulated=1", NULL}, "no value"},
		{{"shell", "https://a", "--bogus", NULL}, "unknown option"},
	};
	char why[200];
	dd_sargs a;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].argv, &a, why, sizeof why),
				 DD_ERR_INVALID);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: '%s'", i, why);
	}
}

static void help(void **state)
{
	const char *h[] = {"shell", "--help", NULL};
	char why[100];
	dd_sargs a;

	(void)state;
	assert_int_equal(parse(h, &a, why, sizeof why), DD_OK);
	assert_int_equal(a.cmd, DD_SC_NONE);
	assert_non_null(strstr(dd_sargs_usage(), "Ctrl-]"));
}

static void ws_urls(void **state)
{
	static const char *const map[][2] = {
		{"https://a.example.com", "wss://a.example.com/noise/ws"},
		{"https://a.example.com/", "wss://a.example.com/noise/ws"},
		{"HTTPS://a.example.com:8443", "wss://a.example.com:8443/noise/ws"},
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/noise/ws"},
		{"http://[::1]:8080//", "ws://[::1]:8080/noise/ws"},
		{"a.example.com", "wss://a.example.com/noise/ws"},
		{"https://gw.example.com/agent1", "wss://gw.example.com/agent1/noise/ws"},
	};
	static const char *const refused[] = {
		"ftp://a", "https://", "https:///x", "https://a?x=1",
		"https://a#f", "",
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		assert_int_equal(dd_cn_ws_url(map[i][0], out, sizeof out), DD_OK);
		assert_string_equal(out, map[i][1]);
	}
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		assert_int_equal(dd_cn_ws_url(refused[i], out, sizeof out),
				 DD_ERR_INVALID);
	assert_int_equal(dd_cn_ws_url("https://a.example.com", out, 10),
			 DD_ERR_TOO_LARGE);
}

static void ids_and_labels(void **state)
{
	(void)state;
	assert_true(dd_uuid_ok(uuid));
	assert_false(dd_uuid_ok("0f8fad5b-d9cb-469f-a165-70867728950"));
	assert_false(dd_uuid_ok("0f8fad5bxd9cb-469f-a165-70867728950e"));
	assert_false(dd_uuid_ok("../../../../etc/passwd-aaaaaaaaaaaaa"));
	assert_true(dd_sargs_label_ok("alice@laptop"));
	assert_false(dd_sargs_label_ok(""));
	assert_false(dd_sargs_label_ok("a\nb"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good),
		cmocka_unit_test(bad),
		cmocka_unit_test(help),
		cmocka_unit_test(ws_urls),
		cmocka_unit_test(ids_and_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
