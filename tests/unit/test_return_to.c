#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/return_to.h"

static dd_err_t check(const dd_return_to_policy *p, const char *url,
		      char origin[256], char path[1100])
{
	char why[128];

	return dd_return_to_check(p, url, origin, 256, path, 1100, why,
				  sizeof why);
}

static void fleet_hosts_pass(void **state)
{
	dd_return_to_policy p = {.own_origin = "https://app.example.com",
				 .domain = "example.com"};
	char o[256], path[1100];

	(void)state;
	assert_int_equal(check(&p, "https://app.example.com/agent/a1?x=1", o,
			       path), DD_OK);
	assert_string_equal(o, "https://app.example.com");
	assert_string_equal(path, "/agent/a1?x=1");
	assert_int_equal(check(&p, "https://vm-1.example.com", o, path), DD_OK);
	assert_string_equal(path, "/");
	assert_int_equal(check(&p, "https://EXAMPLE.com:8443/a", o, path), DD_OK);
	assert_string_equal(o, "https://EXAMPLE.com:8443");
}

static void everything_else_is_refused(void **state)
{
	dd_return_to_policy p = {.own_origin = "https://app.example.com",
				 .domain = "example.com"};
	const char *bad[] = {
		NULL, "", "/relative", "//evil.com/x", "https://evil.com/",
		"https://example.com.evil.com/", "https://evilexample.com/",
		"http://app.example.com/", "javascript:alert(1)",
		"https://user:pw@app.example.com/", "https://app.example.com/a b",
		"ftp://app.example.com/", "https://app.example.com/\x01",
		"http://127.0.0.1:8080/",
	};
	char o[256], path[1100], big[2000];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(check(&p, bad[i], o, path), DD_ERR_INVALID);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "https://app.example.com/", 24);
	assert_int_equal(check(&p, big, o, path), DD_ERR_INVALID);
	/* Without a domain only our own origin passes. */
	p.domain = NULL;
	assert_int_equal(check(&p, "https://vm-1.example.com/", o, path),
			 DD_ERR_INVALID);
	assert_int_equal(check(&p, "https://app.example.com/", o, path), DD_OK);
}

static void dev_admits_loopback_http(void **state)
{
	dd_return_to_policy p = {.own_origin = "http://127.0.0.1:8080",
				 .dev = 1};
	char o[256], path[1100];

	(void)state;
	assert_int_equal(check(&p, "http://127.0.0.1:8090/x", o, path), DD_OK);
	assert_string_equal(o, "http://127.0.0.1:8090");
	assert_int_equal(check(&p, "http://localhost:1/", o, path), DD_OK);
	assert_int_equal(check(&p, "http://10.0.0.1:8080/", o, path),
			 DD_ERR_INVALID);
	p.dev = 0;
	assert_int_equal(check(&p, "http://127.0.0.1:8090/x", o, path),
			 DD_ERR_INVALID);
	assert_int_equal(check(&p, "http://127.0.0.1:8080/x", o, path), DD_OK);
}

static void local_paths(void **state)
{
	(void)state;
	assert_true(dd_return_to_local_path("/"));
	assert_true(dd_return_to_local_path("/workload/w1?tab=logs"));
	assert_false(dd_return_to_local_path("//evil.com"));
	assert_false(dd_return_to_local_path("/\\evil.com"));
	assert_false(dd_return_to_local_path("https://evil.com"));
	assert_false(dd_return_to_local_path("/a b"));
	assert_false(dd_return_to_local_path(""));
	assert_false(dd_return_to_local_path(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fleet_hosts_pass),
		cmocka_unit_test(everything_else_is_refused),
		cmocka_unit_test(dev_admits_loopback_http),
		cmocka_unit_test(local_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
