/*
 * cp_collect's pure part: the URL a tunnel agent is scraped at
 * (spec/integrations.md 3.4: https://{agent_api_hostname(host)}/health).
 * The wiring to the store and the scrape itself are covered end to end
 * by tests/e2e/test_cf_scrape.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cloudflare/cf_names.h"
#include "cp/collector.h"
#include "cp/cp_collect.h"

#define U (DD_COLLECT_URL_MAX + 1)

static void url_ok(const char *host, const char *want)
{
	char out[U], why[DD_CF_WHY_MAX];

	assert_int_equal(dd_cp_collect_tunnel_url(host, out, sizeof out, why,
						  sizeof why), DD_OK);
	assert_string_equal(out, want);
}

static void url_bad(const char *host, size_t cap)
{
	char out[U], why[DD_CF_WHY_MAX] = "";

	memset(out, 'x', sizeof out);
	assert_int_equal(dd_cp_collect_tunnel_url(host, out, cap, why,
						  sizeof why), DD_ERR_INVALID);
	assert_string_equal(out, "");
	assert_true(strlen(why) > 0);
}

static void test_the_api_hostname(void **state)
{
	(void)state;
	/* The registered agent's name: its first -agent- becomes -api-. */
	url_ok("dd-pr-9-agent-0123456789abcdef.example.com",
	       "https://dd-pr-9-api-0123456789abcdef.example.com");
	url_ok("dd-dev-agent-6f1c0a52-1f7e-4a6e-9b1c-2f0d3c4b5a69.dev.example.org",
	       "https://dd-dev-api-6f1c0a52-1f7e-4a6e-9b1c-2f0d3c4b5a69"
	       ".dev.example.org");
	/* Only the first label is looked at, and only its first -agent-. */
	url_ok("dd-x-agent-y-agent-z.agent-zone.example",
	       "https://dd-x-api-y-agent-z.agent-zone.example");
	/* A name without it gets the reserved label appended. */
	url_ok("vm7.example.com", "https://vm7-agent-api.example.com");
}

static void test_no_url_without_a_valid_name(void **state)
{
	char label[64];
	char host[96];

	(void)state;
	url_bad("", U);
	url_bad("dd-pr-9-agent-x.bad_label.example.com", U);
	url_bad("dd-pr-9-agent-x..example.com", U);
	url_bad("-agent-.example.com", U);
	/* 60 bytes plus "-agent-api" passes the 63-byte label limit. */
	memset(label, 'a', 60);
	label[60] = '\0';
	snprintf(host, sizeof host, "%s.example.com", label);
	url_bad(host, U);
	/* A URL that does not fit the caller's buffer is refused whole. */
	url_bad("dd-pr-9-agent-0123456789abcdef.example.com", 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_api_hostname),
		cmocka_unit_test(test_no_url_without_a_valid_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
