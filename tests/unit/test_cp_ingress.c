/*
 * The socket-free half of agents' Cloudflare ingress (cp_ingress.h):
 * a request's extras, the plan of an agent's tunnel (hostname, ports
 * from configuration, and through dd_cf_ingress_build the rules in the
 * spec's order), what the store keeps and what /register answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "cp/cp_ingress.h"

#define AID "dd-pr-9-agent-0123456789abcdef"

static const dd_cp_ingress_cfg CFG = {.domain = "example.com",
				      .agent_port = 18080,
				      .api_port = 18081};

static json_t *parse(const char *s)
{
	json_t *v = json_loads(s, 0, NULL);

	assert_non_null(v);
	return v;
}

static void extras_in_order(void **state)
{
	dd_cf_extra ex[4];
	char why[200];
	size_t n = 99;
	json_t *l;

	(void)state;
	assert_int_equal(dd_cp_ingress_extras(NULL, ex, 4, &n, why, sizeof why),
			 DD_OK);
	assert_int_equal(n, 0);
	l = json_null();
	assert_int_equal(dd_cp_ingress_extras(l, ex, 4, &n, why, sizeof why),
			 DD_OK);
	assert_int_equal(n, 0);
	json_decref(l);
	l = parse("[{\"hostname_label\":\"oracle\",\"port\":8082},"
		  "{\"hostname_label\":\"web\",\"port\":65535}]");
	assert_int_equal(dd_cp_ingress_extras(l, ex, 4, &n, why, sizeof why),
			 DD_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ex[0].label, "oracle");
	assert_int_equal(ex[0].port, 8082);
	assert_string_equal(ex[1].label, "web");
	assert_int_equal(ex[1].port, 65535);
	/* More than max. */
	assert_int_equal(dd_cp_ingress_extras(l, ex, 1, &n, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(n, 0);
	json_decref(l);
}

static void extras_refused(void **state)
{
	static const char *const bad[] = {
		"{}",
		"[{\"hostname_label\":\"Web\",\"port\":80}]",
		"[{\"hostname_label\":\"a_b\",\"port\":80}]",
		"[{\"hostname_label\":\"-a\",\"port\":80}]",
		"[{\"hostname_label\":\"\",\"port\":80}]",
		"[{\"hostname_label\":7,\"port\":80}]",
		"[{\"port\":80}]",
		"[{\"hostname_label\":\"a\",\"port\":0}]",
		"[{\"hostname_label\":\"a\",\"port\":65536}]",
		"[{\"hostname_label\":\"a\",\"port\":\"80\"}]",
		"[{\"hostname_label\":\"a\"}]",
		"[{\"hostname_label\":\"ok\",\"port\":1},7]",
	};
	dd_cf_extra ex[4];
	char why[200];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *l = parse(bad[i]);

		why[0] = '\0';
		assert_int_equal(dd_cp_ingress_extras(l, ex, 4, &n, why,
						      sizeof why),
				 DD_ERR_INVALID);
		assert_true(why[0] != '\0');
		json_decref(l);
	}
	/* The message names the entry. */
	{
		json_t *l = parse("[{\"hostname_label\":\"ok\",\"port\":1},"
				  "{\"hostname_label\":\"No\",\"port\":2}]");

		assert_int_equal(dd_cp_ingress_extras(l, ex, 4, &n, why,
						      sizeof why),
				 DD_ERR_INVALID);
		assert_non_null(strstr(why, "extra_ingress[1]"));
		json_decref(l);
	}
}

static void registration_plan_and_rules(void **state)
{
	dd_cp_ingress_plan p;
	json_t *l = parse("[{\"hostname_label\":\"oracle\",\"port\":8082}]");
	json_t *rules = NULL, *hosts = NULL, *want;
	char why[200];

	(void)state;
	assert_int_equal(dd_cp_ingress_plan_make(&CFG, AID, NULL, l, &p, why,
						 sizeof why), DD_OK);
	assert_string_equal(p.host, AID ".example.com");
	assert_ptr_equal(p.spec.primary, p.host);
	assert_int_equal(p.spec.primary_port, 18080);
	assert_int_equal(p.spec.api_port, 18081);
	assert_int_equal(p.spec.n_extras, 1);
	assert_ptr_equal(p.spec.extras, p.extras);
	/* Extras, the API hostname, the primary, the catch-all. */
	assert_int_equal(dd_cf_ingress_build(&p.spec, &rules, &hosts, why,
					     sizeof why), DD_OK);
	want = parse("[{\"hostname\":\"" AID "-oracle.example.com\","
		     "\"service\":\"http://localhost:8082\"},"
		     "{\"hostname\":\"dd-pr-9-api-0123456789abcdef.example.com\","
		     "\"service\":\"http://localhost:18081\"},"
		     "{\"hostname\":\"" AID ".example.com\","
		     "\"service\":\"http://localhost:18080\"},"
		     "{\"service\":\"http_status:404\"}]");
	assert_true(json_equal(rules, want));
	json_decref(want);
	want = parse("[\"" AID "-oracle.example.com\","
		     "\"dd-pr-9-api-0123456789abcdef.example.com\"]");
	assert_true(json_equal(hosts, want));
	json_decref(want);
	json_decref(rules);
	json_decref(hosts);
	json_decref(l);
}

static void replacement_plan_keeps_the_recorded_host(void **state)
{
	dd_cp_ingress_plan p;
	char why[200];

	(void)state;
	assert_int_equal(dd_cp_ingress_plan_make(&CFG, AID, "old.example.com",
						 NULL, &p, why, sizeof why),
			 DD_OK);
	assert_string_equal(p.host, "old.example.com");
	assert_int_equal(p.spec.n_extras, 0);
	/* A recorded host that is no DNS name is not sent anywhere. */
	assert_int_equal(dd_cp_ingress_plan_make(&CFG, AID, "e2e-vm_1", NULL,
						 &p, why, sizeof why),
			 DD_ERR_INVALID);
}

static void plan_refusals(void **state)
{
	dd_cp_ingress_plan p;
	json_t *l = parse("[{\"hostname_label\":\"oracles\",\"port\":1}]");
	char why[200];
	/* A 40-byte env leaves the first label too long (66 bytes). */
	const char *long_id =
		"dd-a234567890123456789012345678901234567890-agent-"
		"0123456789abcdef";

	(void)state;
	assert_int_equal(dd_cp_ingress_plan_make(&CFG, long_id, NULL, NULL, &p,
						 why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "63"));
	/*
	 * The flattened label must fit too; that is the client's check,
	 * made when the rules are built (before any call).
	 */
	assert_int_equal(dd_cp_ingress_plan_make(
				 &CFG, "dd-production-agent-"
				 "73744f46-1111-4222-8333-444455556666", NULL,
				 l, &p, why, sizeof why), DD_OK);
	{
		json_t *rules = NULL, *hosts = NULL;

		assert_int_equal(dd_cf_ingress_build(&p.spec, &rules, &hosts,
						     why, sizeof why),
				 DD_ERR_INVALID);
		assert_null(rules);
	}
	json_decref(l);
}

static void detail_and_reply(void **state)
{
	json_t *d = dd_cp_ingress_detail(AID ".example.com", AID);
	json_t *hosts = parse("[\"" AID "-web.example.com\"]");
	json_t *r, *want;

	(void)state;
	want = parse("{\"hostname\":\"" AID ".example.com\",\"url\":\"https://"
		     AID ".example.com\",\"tunnel_name\":\"" AID "\"}");
	assert_true(json_equal(d, want));
	json_decref(want);
	json_decref(d);

	r = dd_cp_ingress_reply(AID, AID ".example.com", "tid-1", hosts, "TOK");
	want = parse("{\"agent_id\":\"" AID "\",\"hostname\":\"" AID
		     ".example.com\",\"ingress\":{\"kind\":\"tunnel\","
		     "\"hostname\":\"" AID ".example.com\",\"url\":\"https://"
		     AID ".example.com\",\"tunnel_id\":\"tid-1\","
		     "\"extra_hostnames\":[\"" AID "-web.example.com\"]},"
		     "\"tunnel_token\":\"TOK\"}");
	assert_true(json_equal(r, want));
	json_decref(want);
	/* A copy: the caller's list is untouched by the answer. */
	assert_int_equal(hosts->refcount, 1);
	json_decref(r);
	r = dd_cp_ingress_reply(AID, "h.example.com", "t", NULL, "TOK");
	assert_int_equal(json_array_size(json_object_get(
		json_object_get(r, "ingress"), "extra_hostnames")), 0);
	json_decref(r);
	json_decref(hosts);
}

static void statuses(void **state)
{
	(void)state;
	assert_int_equal(dd_cp_ingress_status(DD_ERR_UPSTREAM), 502);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_TIMEOUT), 502);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_TOO_LARGE), 502);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_CANCELLED), 503);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_CLOSED), 503);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_BUSY), 503);
	assert_int_equal(dd_cp_ingress_status(DD_ERR_NOMEM), 503);
}

static void allocation_failures(void **state)
{
	json_t *hosts = parse("[\"a.example.com\",\"b.example.com\"]");
	json_t *v;

	(void)state;
	for (unsigned long n = 1;; n++) {
		dd_alloc_fail_at(n);
		v = dd_cp_ingress_reply(AID, "h.example.com", "t", hosts, "TOK");
		dd_alloc_fail_at(0);
		if (v != NULL) {
			json_decref(v);
			break;
		}
	}
	for (unsigned long n = 1;; n++) {
		dd_alloc_fail_at(n);
		v = dd_cp_ingress_detail("h.example.com", AID);
		dd_alloc_fail_at(0);
		if (v != NULL) {
			json_decref(v);
			break;
		}
	}
	assert_int_equal(hosts->refcount, 1);
	json_decref(hosts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(extras_in_order),
		cmocka_unit_test(extras_refused),
		cmocka_unit_test(registration_plan_and_rules),
		cmocka_unit_test(replacement_plan_keeps_the_recorded_host),
		cmocka_unit_test(plan_refusals),
		cmocka_unit_test(detail_and_reply),
		cmocka_unit_test(statuses),
		cmocka_unit_test(allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
