#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/router.h"

static int r_health, r_logs, r_dev, r_agent_new, r_agent_id, r_static, r_root;
static int r_post_devices;

static dd_router *build(void)
{
	dd_router *r = dd_router_new();

	assert_non_null(r);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/health", &r_health), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/logs/{app}", &r_logs), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_DELETE, "/api/v1/devices/{pubkey}", &r_dev), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_POST, "/api/v1/devices", &r_post_devices), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/agent/{id}", &r_agent_id), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/agent/new", &r_agent_new), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/static/{path*}", &r_static), DD_OK);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/", &r_root), DD_OK);
	return r;
}

static dd_err_t match(dd_router *r, unsigned m, const char *path, dd_route_match *out)
{
	return dd_router_match(r, m, path, strlen(path), out);
}

static void literal_and_param_routes(void **state)
{
	dd_router *r = build();
	dd_route_match m;

	(void)state;
	assert_int_equal(match(r, DD_M_GET, "/health", &m), DD_OK);
	assert_ptr_equal(m.route, &r_health);
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/logs/web-app", &m), DD_OK);
	assert_ptr_equal(m.route, &r_logs);
	assert_string_equal(dd_route_param_get(&m, "app"), "web-app");
	assert_null(dd_route_param_get(&m, "ap"));
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_DELETE, "/api/v1/devices/ab%43d", &m), DD_OK);
	assert_string_equal(dd_route_param_get(&m, "pubkey"), "abCd");
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/", &m), DD_OK);
	assert_ptr_equal(m.route, &r_root);
	dd_route_match_clear(&m);
	dd_router_free(r);
}

static void literal_beats_param(void **state)
{
	dd_router *r = build();
	dd_route_match m;

	(void)state;
	assert_int_equal(match(r, DD_M_GET, "/agent/new", &m), DD_OK);
	assert_ptr_equal(m.route, &r_agent_new);
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/agent/x1", &m), DD_OK);
	assert_ptr_equal(m.route, &r_agent_id);
	assert_string_equal(dd_route_param_get(&m, "id"), "x1");
	dd_route_match_clear(&m);
	dd_router_free(r);
}

static void rest_parameter(void **state)
{
	dd_router *r = build();
	dd_route_match m;

	(void)state;
	assert_int_equal(match(r, DD_M_GET, "/static/css/app.css", &m), DD_OK);
	assert_ptr_equal(m.route, &r_static);
	assert_string_equal(dd_route_param_get(&m, "path"), "css/app.css");
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/static", &m), DD_ERR_NOT_FOUND);
	dd_route_match_clear(&m);
	dd_router_free(r);
}

static void not_found_vs_method_not_allowed(void **state)
{
	dd_router *r = build();
	dd_route_match m;
	char allow[64];

	(void)state;
	assert_int_equal(match(r, DD_M_GET, "/nope", &m), DD_ERR_NOT_FOUND);
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/health/", &m), DD_ERR_NOT_FOUND);
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_GET, "/logs/", &m), DD_ERR_NOT_FOUND);
	dd_route_match_clear(&m);
	assert_int_equal(match(r, DD_M_POST, "/health", &m), DD_ERR_UNSUPPORTED);
	dd_method_allow_str(m.allow, allow, sizeof allow);
	assert_string_equal(allow, "GET, HEAD");
	dd_route_match_clear(&m);
	assert_int_equal(match(r, 0, "/api/v1/devices/k", &m), DD_ERR_UNSUPPORTED);
	dd_method_allow_str(m.allow, allow, sizeof allow);
	assert_string_equal(allow, "DELETE");
	dd_route_match_clear(&m);
	/* HEAD is answered by GET routes. */
	assert_int_equal(match(r, DD_M_HEAD, "/health", &m), DD_OK);
	dd_route_match_clear(&m);
	dd_router_free(r);
}

static void hostile_paths_are_invalid(void **state)
{
	dd_router *r = build();
	dd_route_match m;
	static const char *const bad[] = {
		"/logs/a%2Fb", "/logs/a%00", "/logs/%zz", "/logs/%4", "/logs/..",
		"/static/../etc/passwd", "/logs/%2e%2e", "health", "",
		"/static/a/./b",
	};
	char deep[200];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(match(r, DD_M_GET, bad[i], &m), DD_ERR_INVALID);
		dd_route_match_clear(&m);
	}
	deep[0] = '\0';
	for (int i = 0; i < 40; i++)
		strcat(deep, "/a");
	assert_int_equal(match(r, DD_M_GET, deep, &m), DD_ERR_TOO_LARGE);
	dd_route_match_clear(&m);
	dd_router_free(r);
}

static void bad_patterns_are_refused(void **state)
{
	dd_router *r = dd_router_new();
	int x;

	(void)state;
	assert_int_equal(dd_router_add(r, DD_M_GET, "nope", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a/{}", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a/{x*}/b", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a/{x-y}", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a//b", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, 0, "/a", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a/{id}", &x), DD_OK);
	/* Same shape and method twice is ambiguous. */
	assert_int_equal(dd_router_add(r, DD_M_GET, "/a/{other}", &x), DD_ERR_INVALID);
	assert_int_equal(dd_router_add(r, DD_M_POST, "/a/{other}", &x), DD_OK);
	dd_router_free(r);
}

static void method_names(void **state)
{
	(void)state;
	assert_int_equal(dd_method_bit("GET"), DD_M_GET);
	assert_int_equal(dd_method_bit("PATCH"), DD_M_PATCH);
	assert_int_equal(dd_method_bit("get"), 0);
	assert_int_equal(dd_method_bit("PROPFIND"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(literal_and_param_routes),
		cmocka_unit_test(literal_beats_param),
		cmocka_unit_test(rest_parameter),
		cmocka_unit_test(not_found_vs_method_not_allowed),
		cmocka_unit_test(hostile_paths_are_invalid),
		cmocka_unit_test(bad_patterns_are_refused),
		cmocka_unit_test(method_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
