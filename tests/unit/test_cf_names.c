/*
 * Cloudflare naming (spec/integrations.md 1.3), label validation, the
 * ingress rules and their order (1.5), and the Access app matching of
 * the cleanup (1.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cloudflare/cf_access.h"
#include "cloudflare/cf_names.h"
#include "cloudflare/cf_ops.h"
#include "core/alloc.h"
#include "core/json.h"

#define H (DD_CF_HOST_MAX + 1)

static void env_kinds(void **state)
{
	(void)state;
	assert_int_equal(dd_cf_env_kind_of("production"), DD_CF_ENV_PRODUCTION);
	assert_int_equal(dd_cf_env_kind_of("staging"), DD_CF_ENV_STAGING);
	assert_int_equal(dd_cf_env_kind_of("dev"), DD_CF_ENV_DEV);
	assert_int_equal(dd_cf_env_kind_of("pr-42"), DD_CF_ENV_PREVIEW);
	/* "pr-" alone is not longer than 3 bytes: a named env. */
	assert_int_equal(dd_cf_env_kind_of("pr-"), DD_CF_ENV_NAMED);
	assert_int_equal(dd_cf_env_kind_of("dogfood"), DD_CF_ENV_NAMED);
	assert_string_equal(dd_cf_env_kind_name(DD_CF_ENV_PREVIEW), "preview");
	assert_true(dd_cf_env_ok("pr-7"));
	assert_false(dd_cf_env_ok("-pr"));
	assert_false(dd_cf_env_ok("Prod"));
	assert_false(dd_cf_env_ok(""));
	assert_false(dd_cf_env_ok("a234567890123456789012345678901234567890x"));
}

static void labels_are_checked(void **state)
{
	char why[DD_CF_WHY_MAX];
	char l63[64], l64[65];

	(void)state;
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	assert_int_equal(dd_cf_check_label("oracle", why, sizeof why), DD_OK);
	assert_int_equal(dd_cf_check_label(l63, why, sizeof why), DD_OK);
	assert_int_equal(dd_cf_check_label(l64, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "64 bytes"));
	assert_int_equal(dd_cf_check_label("Shell", why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "a-z, 0-9"));
	assert_int_equal(dd_cf_check_label("a_b", why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_label("a.b", why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_label("-a", why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "start or end"));
	assert_int_equal(dd_cf_check_label("a-", why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_label("", why, sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_label(NULL, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_hostname("a.b.c", why, sizeof why), DD_OK);
	assert_int_equal(dd_cf_check_hostname("a..c", why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "empty label"));
	assert_int_equal(dd_cf_check_hostname("a.b.", why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_check_hostname(".a", why, sizeof why),
			 DD_ERR_INVALID);
}

static void tunnel_names(void **state)
{
	char name[H], pfx[64], why[DD_CF_WHY_MAX], other[H];

	(void)state;
	assert_int_equal(dd_cf_tunnel_prefix("pr-7", "agent", pfx, sizeof pfx),
			 DD_OK);
	assert_string_equal(pfx, "dd-pr-7-agent-");
	assert_int_equal(dd_cf_tunnel_prefix("production", "cp", pfx,
					     sizeof pfx), DD_OK);
	assert_string_equal(pfx, "dd-production-cp-");
	assert_int_equal(dd_cf_tunnel_prefix("Prod", "cp", pfx, sizeof pfx),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_tunnel_prefix("dev", "web", pfx, sizeof pfx),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_tunnel_name("production", "agent", name,
					   sizeof name, why, sizeof why), DD_OK);
	/* dd-production-agent- (20) + UUID (36) = 56 bytes. */
	assert_int_equal(strlen(name), 56);
	assert_memory_equal(name, "dd-production-agent-", 20);
	assert_int_equal(name[20 + 14], '4'); /* UUID version 4 */
	assert_true(strchr("89ab", name[20 + 19]) != NULL);
	assert_int_equal(dd_cf_tunnel_name("production", "agent", other,
					   sizeof other, why, sizeof why), DD_OK);
	assert_string_not_equal(name, other);
	/* A 40-byte env makes the name longer than a DNS label. */
	assert_int_equal(dd_cf_tunnel_name(
		"a234567890123456789012345678901234567890", "agent", name,
		sizeof name, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "at most 63"));
}

static void hostnames(void **state)
{
	char out[H], why[DD_CF_WHY_MAX];

	(void)state;
	assert_int_equal(dd_cf_label_hostname("pr-144.devopsdefender.com",
		"shell", out, sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "pr-144-shell.devopsdefender.com");
	assert_int_equal(dd_cf_label_hostname(
		"dd-pr-144-agent-abc.devopsdefender.com", "api", out, sizeof out,
		why, sizeof why), DD_OK);
	assert_string_equal(out, "dd-pr-144-agent-abc-api.devopsdefender.com");
	assert_int_equal(dd_cf_label_hostname("localhost", "shell", out,
		sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "localhost-shell");
	assert_int_equal(dd_cf_agent_api_hostname(
		"dd-pr-144-agent-abc.devopsdefender.com", out, sizeof out, why,
		sizeof why), DD_OK);
	assert_string_equal(out, "dd-pr-144-api-abc.devopsdefender.com");
	/* Only the first "-agent-" of the base changes. */
	assert_int_equal(dd_cf_agent_api_hostname(
		"dd-x-agent-agent-y.example.com", out, sizeof out, why,
		sizeof why), DD_OK);
	assert_string_equal(out, "dd-x-api-agent-y.example.com");
	assert_int_equal(dd_cf_agent_api_hostname("app.example.com", out,
		sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "app-agent-api.example.com");
	assert_int_equal(dd_cf_agent_api_hostname("box", out, sizeof out, why,
		sizeof why), DD_OK);
	assert_string_equal(out, "box-agent-api");
	assert_int_equal(dd_cf_extra_hostname("dd-e-agent-u.x.com", "agent-api",
		out, sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "dd-e-api-u.x.com");
	assert_int_equal(dd_cf_extra_hostname("dd-e-agent-u.x.com", "oracle",
		out, sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "dd-e-agent-u-oracle.x.com");
	assert_int_equal(dd_cf_agent_hostname("dd-dev-agent-u", "example.com",
		out, sizeof out, why, sizeof why), DD_OK);
	assert_string_equal(out, "dd-dev-agent-u.example.com");
	/* Bad labels are refused with the reason. */
	assert_int_equal(dd_cf_label_hostname("a.example.com", "Web", out,
		sizeof out, why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "'Web'"));
}

/* The 63-byte first label: a production agent fits a 6-byte label. */
static void production_label_budget(void **state)
{
	char host[H], out[H], why[DD_CF_WHY_MAX];
	const char *name =
		"dd-production-agent-73744f46-0000-4000-8000-000000000000";

	(void)state;
	snprintf(host, sizeof host, "%s.devopsdefender.com", name);
	assert_int_equal(dd_cf_label_hostname(host, "oracle", out, sizeof out,
					      why, sizeof why), DD_OK);
	assert_int_equal(strchr(out, '.') - out, 63);
	assert_int_equal(dd_cf_label_hostname(host, "oracles", out, sizeof out,
					      why, sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "64 bytes"));
}

static void env_attribution(void **state)
{
	char env[DD_CF_ENV_MAX + 1];

	(void)state;
	assert_true(dd_cf_env_from_name("dd-pr-42-agent-bbbb", env, sizeof env));
	assert_string_equal(env, "pr-42");
	assert_true(dd_cf_env_from_name("dd-pr-42-api-cccc.devopsdefender.com",
					env, sizeof env));
	assert_string_equal(env, "pr-42");
	assert_true(dd_cf_env_from_name("dd-production-cp-1", env, sizeof env));
	assert_string_equal(env, "production");
	/* The earliest marker wins. */
	assert_true(dd_cf_env_from_name("dd-x-api-y-agent-z", env, sizeof env));
	assert_string_equal(env, "x");
	assert_false(dd_cf_env_from_name("app.devopsdefender.com", env,
					 sizeof env));
	assert_false(dd_cf_env_from_name("dd-no-marker-here", env, sizeof env));
	assert_false(dd_cf_env_from_name("dd--agent-x", env, sizeof env));
	assert_false(dd_cf_env_from_name("dd-Bad-agent-x", env, sizeof env));
}

static void ingress_order(void **state)
{
	dd_cf_extra ex[2] = {{"oracle", 8082}, {"web", 9000}};
	dd_cf_ingress_spec s = {
		.primary = "dd-pr-7-agent-u.example.com", .primary_port = 8080,
		.api_port = 8081, .extras = ex, .n_extras = 2,
	};
	json_t *rules = NULL, *hosts = NULL;
	char why[DD_CF_WHY_MAX];
	char *dump;

	(void)state;
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_OK);
	dump = json_dumps(rules, JSON_COMPACT);
	assert_string_equal(dump,
		"[{\"hostname\":\"dd-pr-7-agent-u-oracle.example.com\","
		"\"service\":\"http://localhost:8082\"},"
		"{\"hostname\":\"dd-pr-7-agent-u-web.example.com\","
		"\"service\":\"http://localhost:9000\"},"
		"{\"hostname\":\"dd-pr-7-api-u.example.com\","
		"\"service\":\"http://localhost:8081\"},"
		"{\"hostname\":\"dd-pr-7-agent-u.example.com\","
		"\"service\":\"http://localhost:8080\"},"
		"{\"service\":\"http_status:404\"}]");
	free(dump);
	assert_int_equal(json_array_size(hosts), 3);
	json_decref(rules);
	json_decref(hosts);

	/* Ports are configuration: a CP on 9443 without an API extra. */
	s.primary = "app.example.com";
	s.primary_port = 9443;
	s.api_port = 0;
	s.n_extras = 0;
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_OK);
	dump = json_dumps(rules, JSON_COMPACT);
	assert_string_equal(dump, "[{\"hostname\":\"app.example.com\","
				  "\"service\":\"http://localhost:9443\"},"
				  "{\"service\":\"http_status:404\"}]");
	free(dump);
	json_decref(rules);
	json_decref(hosts);

	/* An agent-api extra already given is not added twice. */
	ex[0] = (dd_cf_extra){"agent-api", 7000};
	s.primary = "dd-e-agent-u.x.com";
	s.api_port = 8081;
	s.n_extras = 1;
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_OK);
	assert_int_equal(json_array_size(rules), 3);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(rules, 0), "service")), "http://localhost:7000");
	json_decref(rules);
	json_decref(hosts);
}

static void ingress_refusals(void **state)
{
	dd_cf_extra ex[2] = {{"web", 9000}, {"web", 9001}};
	dd_cf_ingress_spec s = {
		.primary = "dd-e-agent-u.x.com", .primary_port = 8080,
		.extras = ex, .n_extras = 2,
	};
	json_t *rules = NULL, *hosts = NULL;
	char why[DD_CF_WHY_MAX];

	(void)state;
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "twice"));
	assert_null(rules);
	s.n_extras = 1;
	ex[0].port = 0;
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "port"));
	ex[0] = (dd_cf_extra){"We b", 1};
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_ERR_INVALID);
	s.n_extras = 0;
	s.primary = "bad_host.x";
	assert_int_equal(dd_cf_ingress_build(&s, &rules, &hosts, why,
					     sizeof why), DD_ERR_INVALID);
}

static void extras_list(void **state)
{
	dd_cf_extra ex[4];
	size_t n;
	char why[DD_CF_WHY_MAX];

	(void)state;
	assert_int_equal(dd_cf_extras_parse(" oracle:8082, ,web:9000,", ex, 4,
					    &n, why, sizeof why), DD_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ex[1].label, "web");
	assert_int_equal(ex[1].port, 9000);
	assert_int_equal(dd_cf_extras_parse("", ex, 4, &n, why, sizeof why),
			 DD_OK);
	assert_int_equal(n, 0);
	assert_int_equal(dd_cf_extras_parse("web", ex, 4, &n, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_extras_parse("web:0", ex, 4, &n, why,
					    sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_cf_extras_parse("web:65536", ex, 4, &n, why,
					    sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_cf_extras_parse(":80", ex, 4, &n, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_cf_extras_parse("a:1,b:2,c:3", ex, 2, &n, why,
					    sizeof why), DD_ERR_INVALID);
}

static void domain_matching(void **state)
{
	(void)state;
	assert_int_equal(dd_cf_domain_match("a.x.com", "a.x.com"),
			 DD_CF_MATCH_EXACT);
	assert_int_equal(dd_cf_domain_match("a.x.com/health", "a.x.com/deploy"),
			 DD_CF_MATCH_EXACT);
	assert_int_equal(dd_cf_domain_match("*.x.com", "a.x.com"),
			 DD_CF_MATCH_WILDCARD);
	assert_int_equal(dd_cf_domain_match("*.x.com", "a.x.com/health"),
			 DD_CF_MATCH_WILDCARD);
	assert_int_equal(dd_cf_domain_match("*.x.com", "x.com"),
			 DD_CF_MATCH_NONE);
	assert_int_equal(dd_cf_domain_match("*.x.com", "ax.com"),
			 DD_CF_MATCH_NONE);
	assert_int_equal(dd_cf_domain_match("b.x.com", "a.x.com"),
			 DD_CF_MATCH_NONE);
	assert_int_equal(dd_cf_domain_match("", "a.x.com"), DD_CF_MATCH_NONE);
}

static void app_matching(void **state)
{
	json_t *targets = json_pack("[s, s]", "dd-e-agent-u.x.com",
				    "dd-e-agent-u.x.com/health");
	json_t *app;

	(void)state;
	app = json_pack("{s:s}", "domain", "dd-e-agent-u.x.com/logs");
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_EXACT);
	json_decref(app);
	app = json_pack("{s:s, s:[{s:s, s:s}]}", "domain", "other.y.com",
			"destinations", "type", "public", "uri",
			"dd-e-agent-u.x.com");
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_EXACT);
	json_decref(app);
	/* A private destination does not count. */
	app = json_pack("{s:[{s:s, s:s}]}", "destinations", "type", "private",
			"uri", "dd-e-agent-u.x.com");
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_NONE);
	json_decref(app);
	app = json_pack("{s:[s, {s:s}]}", "self_hosted_domains", "z.y.com",
			"uri", "dd-e-agent-u.x.com/exec");
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_EXACT);
	json_decref(app);
	app = json_pack("{s:s}", "domain", "*.x.com");
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_WILDCARD);
	json_decref(app);
	app = json_pack("{s:i}", "domain", 7);
	assert_int_equal(dd_cf_app_match(app, targets), DD_CF_MATCH_NONE);
	json_decref(app);
	json_decref(targets);
}

static void lenient_matching(void **state)
{
	const char *host = "dd-e-agent-u.x.com";
	json_t *app;
	static const struct {
		const char *domain;
		int match;
	} cases[] = {
		{"dd-e-agent-u.x.com", 1},
		{"dd-e-agent-u.x.com/deploy", 1},
		{"dd-e-api-u.x.com", 1},
		{"dd-e-agent-u-oracle.x.com", 1},
		{"dd-e-agent-u-oracle.y.com", 0},
		{"dd-e-agent-uu.x.com", 0},
		{"*.x.com", 0},
		{"dd-e-agent-u.x.comx", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		app = json_pack("{s:s}", "domain", cases[i].domain);
		if (dd_cf_app_match_lenient(app, host) != cases[i].match)
			fail_msg("%s", cases[i].domain);
		json_decref(app);
	}
}

static void domain_sets(void **state)
{
	const char *labels[] = {"oracle"};
	json_t *d = NULL;

	(void)state;
	assert_int_equal(dd_cf_access_agent_domains("dd-e-agent-u.x.com",
						    labels, 1, &d), DD_OK);
	/* host, API host, 6 paths, 1 extra. */
	assert_int_equal(json_array_size(d), 9);
	assert_string_equal(json_string_value(json_array_get(d, 1)),
			    "dd-e-api-u.x.com");
	assert_string_equal(json_string_value(json_array_get(d, 8)),
			    "dd-e-agent-u-oracle.x.com");
	json_decref(d);
	labels[0] = "shell";
	assert_int_equal(dd_cf_access_cp_domains("app.x.com", labels, 1, &d),
			 DD_OK);
	assert_int_equal(json_array_size(d), 8);
	assert_string_equal(json_string_value(json_array_get(d, 7)),
			    "app-shell.x.com");
	json_decref(d);
	assert_int_equal(dd_cf_access_cp_domains("bad host", NULL, 0, &d),
			 DD_ERR_INVALID);
	assert_null(d);
}

/* Allocation failures in the builders are NOMEM and leak nothing. */
static void builders_under_allocation_failure(void **state)
{
	dd_cf_extra ex[1] = {{"oracle", 8082}};
	dd_cf_ingress_spec s = {
		.primary = "dd-e-agent-u.x.com", .primary_port = 8080,
		.api_port = 8081, .extras = ex, .n_extras = 1,
	};
	const char *labels[] = {"oracle"};
	json_t *rules, *hosts, *d;
	char why[DD_CF_WHY_MAX];
	dd_err_t rc;

	(void)state;
	for (unsigned long n = 1;; n++) {
		rules = hosts = NULL;
		dd_alloc_fail_at(n);
		rc = dd_cf_ingress_build(&s, &rules, &hosts, why, sizeof why);
		dd_alloc_fail_at(0);
		json_decref(rules);
		json_decref(hosts);
		if (rc == DD_OK)
			break;
		assert_int_equal(rc, DD_ERR_NOMEM);
		assert_null(rules);
	}
	for (unsigned long n = 1;; n++) {
		d = NULL;
		dd_alloc_fail_at(n);
		rc = dd_cf_access_agent_domains("dd-e-agent-u.x.com", labels, 1,
						&d);
		dd_alloc_fail_at(0);
		json_decref(d);
		if (rc == DD_OK)
			break;
		assert_int_equal(rc, DD_ERR_NOMEM);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_kinds),
		cmocka_unit_test(labels_are_checked),
		cmocka_unit_test(tunnel_names),
		cmocka_unit_test(hostnames),
		cmocka_unit_test(production_label_budget),
		cmocka_unit_test(env_attribution),
		cmocka_unit_test(ingress_order),
		cmocka_unit_test(ingress_refusals),
		cmocka_unit_test(extras_list),
		cmocka_unit_test(domain_matching),
		cmocka_unit_test(app_matching),
		cmocka_unit_test(lenient_matching),
		cmocka_unit_test(domain_sets),
		cmocka_unit_test(builders_under_allocation_failure),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
