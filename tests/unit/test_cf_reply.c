/*
 * Cloudflare replies: the v4 envelope and list pages (cf_envelope.c),
 * and the pure snapshot and map builders with the degraded rule
 * (cf_drift.c, cf_map.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_snapshot.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/json.h"

#define REPLY_MAX (1u << 20)

struct parsed {
	dd_err_t rc;
	json_t *env;
	long code;
	char msg[DD_CF_MSG_MAX + 1];
};

static struct parsed parse(long status, const char *body)
{
	struct parsed p = {0};
	dd_buf msg;

	dd_buf_init(&msg, DD_CF_MSG_MAX);
	p.rc = dd_cf_envelope_parse(status, body, strlen(body), REPLY_MAX, &p.env,
				    &p.code, &msg);
	snprintf(p.msg, sizeof p.msg, "%s", dd_buf_str(&msg));
	dd_buf_free(&msg);
	return p;
}

static void good_envelope(void **state)
{
	struct parsed p = parse(200, "{\"success\":true,\"errors\":[],"
				"\"messages\":[],\"result\":{\"id\":\"t1\"}}");

	(void)state;
	assert_int_equal(p.rc, DD_OK);
	assert_non_null(p.env);
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(p.env, "result"), "id")), "t1");
	assert_string_equal(p.msg, "");
	json_decref(p.env);
	/* No result at all is still a good envelope (DELETE replies). */
	p = parse(200, "{\"success\":true}");
	assert_int_equal(p.rc, DD_OK);
	json_decref(p.env);
}

static void success_false_keeps_codes(void **state)
{
	struct parsed p = parse(200, "{\"success\":false,\"errors\":["
		"{\"code\":1003,\"message\":\"Invalid or missing name\"},"
		"{\"code\":1004,\"message\":\"DNS Validation Error\"}],"
		"\"result\":null}");

	(void)state;
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	assert_null(p.env);
	assert_int_equal(p.code, 1003);
	assert_non_null(strstr(p.msg, "-> 200: "));
	assert_non_null(strstr(p.msg, "[1003] Invalid or missing name"));
	assert_non_null(strstr(p.msg, "[1004] DNS Validation Error"));
	p = parse(200, "{\"success\":false,\"errors\":[]}");
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	assert_non_null(strstr(p.msg, "without errors"));
}

static void http_errors(void **state)
{
	struct parsed p = parse(403, "{\"success\":false,\"errors\":[{\"code\":"
		"10000,\"message\":\"Authentication error\"}]}");

	(void)state;
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	assert_int_equal(p.code, 10000);
	assert_non_null(strstr(p.msg, "-> 403: [10000] Authentication error"));
	/* A 2xx envelope saying success true cannot rescue a 500. */
	p = parse(500, "{\"success\":true}");
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	p = parse(502, "<html>bad gateway</html>");
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	assert_non_null(strstr(p.msg, "-> 502: <html>bad gateway</html>"));
	p = parse(503, "");
	assert_non_null(strstr(p.msg, "(empty body)"));
}

static void malformed_replies(void **state)
{
	static const char *const bodies[] = {
		"", "not json", "[]", "\"success\"", "{}",
		"{\"success\":\"true\"}", "{\"success\":1}",
		"{\"success\":null}", "{\"success\":true", "{\"success\":true}x",
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		p = parse(200, bodies[i]);
		if (p.rc != DD_ERR_UPSTREAM || p.env != NULL)
			fail_msg("%s: %s", bodies[i], dd_errname(p.rc));
		assert_non_null(strstr(p.msg, "-> 200: "));
	}
	/* Errors of the wrong types are skipped, never trusted. */
	p = parse(400, "{\"success\":false,\"errors\":[1,\"x\",{\"code\":"
		       "\"9\",\"message\":7},{\"code\":81057}]}");
	assert_int_equal(p.rc, DD_ERR_UPSTREAM);
	assert_int_equal(p.code, 81057);
	assert_non_null(strstr(p.msg, "(no message)"));
}

static void hostile_text_is_cleaned(void **state)
{
	char big[4096];
	struct parsed p;

	(void)state;
	p = parse(400, "{\"success\":false,\"errors\":[{\"code\":1,\"message\":"
		       "\"a\\nb\\u001bc\"}]}");
	assert_non_null(strstr(p.msg, "a?b?c"));
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	p = parse(500, big);
	assert_true(strlen(p.msg) < 300);
	assert_non_null(strstr(p.msg, "..."));
}

static void huge_reply(void **state)
{
	json_t *env = NULL;
	long code;
	dd_buf msg;
	const char body[] = "{\"success\":true,\"result\":[1,2,3]}";

	(void)state;
	dd_buf_init(&msg, DD_CF_MSG_MAX);
	assert_int_equal(dd_cf_envelope_parse(200, body, sizeof body - 1, 10,
					      &env, &code, &msg),
			 DD_ERR_TOO_LARGE);
	assert_null(env);
	assert_non_null(strstr(dd_buf_str(&msg), "larger than 10"));
	dd_buf_free(&msg);
}

static void pages(void **state)
{
	const json_t *items;
	uint64_t total;
	dd_buf msg;
	struct parsed p;

	(void)state;
	dd_buf_init(&msg, DD_CF_MSG_MAX);
	p = parse(200, "{\"success\":true,\"result\":[{\"id\":\"a\"}],"
		       "\"result_info\":{\"page\":1,\"per_page\":1,"
		       "\"total_pages\":3}}");
	assert_int_equal(dd_cf_page_parse(p.env, &items, &total, &msg), DD_OK);
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(total, 3);
	json_decref(p.env);
	p = parse(200, "{\"success\":true,\"result\":[],\"result_info\":"
		       "{\"total_pages\":\"3\"}}");
	assert_int_equal(dd_cf_page_parse(p.env, &items, &total, &msg), DD_OK);
	assert_int_equal(total, 0);
	json_decref(p.env);
	p = parse(200, "{\"success\":true}");
	assert_int_equal(dd_cf_page_parse(p.env, &items, &total, &msg),
			 DD_ERR_UPSTREAM);
	assert_non_null(strstr(dd_buf_str(&msg), "no \"result\" list"));
	json_decref(p.env);
	dd_buf_reset(&msg);
	p = parse(200, "{\"success\":true,\"result\":{\"id\":1}}");
	assert_int_equal(dd_cf_page_parse(p.env, &items, &total, &msg),
			 DD_ERR_UPSTREAM);
	assert_non_null(strstr(dd_buf_str(&msg), "not a list"));
	json_decref(p.env);
	dd_buf_free(&msg);
}

static void ids(void **state)
{
	(void)state;
	assert_true(dd_cf_id_ok("c1744f8b-faa1-48a4-9e5c-02ac921467fa"));
	assert_true(dd_cf_id_ok("023e105f4ecef8ad9ca31a8372d0c353"));
	assert_false(dd_cf_id_ok(""));
	assert_false(dd_cf_id_ok("a/b"));
	assert_false(dd_cf_id_ok("a?b"));
	assert_false(dd_cf_id_ok("../x"));
	assert_false(dd_cf_id_ok(NULL));
}

/* --- snapshot and map --------------------------------------------------- */

#define T_A "aaaaaaaa-0000-4000-8000-000000000001"
#define T_ORPHAN "aaaaaaaa-0000-4000-8000-000000000002"
#define T_CP "aaaaaaaa-0000-4000-8000-000000000003"
#define T_OTHER "aaaaaaaa-0000-4000-8000-000000000004"
#define T_GONE "aaaaaaaa-0000-4000-8000-000000000005"
#define T_MISSING "aaaaaaaa-0000-4000-8000-000000000006"
#define HOST_A "dd-pr-7-agent-" T_A ".x.com"

static dd_cf_listing listing(void)
{
	dd_cf_listing l = {0};

	l.tunnels = json_pack(
		"[{s:s, s:s, s:n}, {s:s, s:s, s:n}, {s:s, s:s, s:n},"
		" {s:s, s:s, s:n}, {s:s, s:s, s:n}]",
		"id", T_A, "name", "dd-pr-7-agent-" T_A, "deleted_at",
		"id", T_ORPHAN, "name", "dd-pr-7-agent-" T_ORPHAN, "deleted_at",
		"id", T_CP, "name", "dd-pr-7-cp-" T_CP, "deleted_at",
		"id", T_OTHER, "name", "dd-pr-9-agent-" T_OTHER, "deleted_at",
		"id", "zz", "name", "unrelated", "deleted_at");
	l.dns = json_pack(
		"[{s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:b},"
		" {s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:b},"
		" {s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:b}]",
		"id", "r1", "name", HOST_A, "content", T_A ".cfargotunnel.com",
		"proxied", 1,
		"id", "r2", "name", "dd-pr-7-agent-" T_A "-oracle.x.com",
		"content", T_A ".cfargotunnel.com", "proxied", 1,
		"id", "r3", "name", "stale.x.com", "content",
		T_ORPHAN ".cfargotunnel.com", "proxied", 1,
		"id", "r4", "name", "pr-7.x.com", "content",
		T_CP ".cfargotunnel.com", "proxied", 1,
		"id", "r5", "name", "leak.x.com", "content",
		T_GONE ".cfargotunnel.com", "proxied", 0,
		"id", "r6", "name", "dd-pr-7-api-" T_A ".x.com", "content",
		T_A ".cfargotunnel.com", "proxied", 1);
	l.apps = json_pack(
		"[{s:s, s:s, s:s, s:[{s:s}]}, {s:s, s:s, s:s},"
		" {s:s, s:s, s:s, s:[{s:s, s:[{s:{s:s}}]}]}]",
		"id", "app1", "name", "dd-pr-7-term", "domain",
		"pr-7-term.x.com", "policies", "decision", "bypass",
		"id", "app2", "name", "unrelated", "domain", "other.y.com",
		"id", "app3", "name", "dd-pr-42-agent-q", "domain",
		"pr-7-block.x.com", "policies", "decision", "allow", "include",
		"emails", "email", "a@b.c");
	l.errors = json_array();
	return l;
}

static json_t *agents(void)
{
	return json_pack(
		"[{s:s, s:s, s:s, s:s, s:s, s:[[s, i]]},"
		" {s:s, s:s, s:s, s:s, s:s, s:[]}]",
		"agent_id", "dd-pr-7-agent-" T_MISSING, "hostname",
		"dd-pr-7-agent-" T_MISSING ".x.com", "status", "healthy",
		"vm_name", "vm2", "tunnel_id", T_MISSING, "extras", "web", 9000,
		"agent_id", "dd-pr-7-agent-" T_A, "hostname", HOST_A, "status",
		"healthy", "vm_name", "vm1", "tunnel_id", T_A, "extras");
}

static const char *const cp_labels[] = {"shell"};

static const dd_cf_scope scope = {
	.env = "pr-7", .cp_hostname = "pr-7.x.com", .account_id = "acct",
	.zone_id = "zone", .fetched_at = "2026-06-01T12:00:00+00:00",
	.cp_labels = cp_labels, .n_cp_labels = 1,
};

static json_t *drift(const json_t *snap, const char *list)
{
	return json_object_get(json_object_get(snap, "drift"), list);
}

static int has(const json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(json_object_get(v, key));
		if (s != NULL && strcmp(s, value) == 0)
			return 1;
	}
	return 0;
}

static void snapshot_drift(void **state)
{
	dd_cf_listing l = listing();
	json_t *a = agents(), *s = NULL, *cf;

	(void)state;
	assert_int_equal(dd_cf_snapshot_build(&scope, a, &l, &s), DD_OK);
	assert_false(json_is_true(json_object_get(s, "degraded")));
	assert_true(json_is_true(json_object_get(s, "cf_api_reachable")));
	/* Agents come out sorted by agent_id. */
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(json_object_get(s, "cp_state"), "agents"), 0),
		"agent_id")), "dd-pr-7-agent-" T_A);
	cf = json_object_get(s, "cf_state");
	/* pr-7 tunnels only; CNAMEs into them only; the CP's apps only. */
	assert_int_equal(json_array_size(json_object_get(cf, "tunnels")), 3);
	assert_int_equal(json_array_size(json_object_get(cf, "dns")), 5);
	assert_int_equal(json_array_size(json_object_get(cf, "apps")), 2);
	assert_true(has(drift(s, "orphan_tunnels"), "id", T_ORPHAN));
	assert_int_equal(json_array_size(drift(s, "orphan_tunnels")), 1);
	assert_true(has(drift(s, "missing_tunnels"), "expected", T_MISSING));
	assert_true(has(drift(s, "orphan_dns"), "name", "stale.x.com"));
	/* The oracle CNAME's extra is not in the store: orphan. */
	assert_true(has(drift(s, "orphan_dns"), "name",
			"dd-pr-7-agent-" T_A "-oracle.x.com"));
	/* The agent API host is expected (the reference's false positive). */
	assert_false(has(drift(s, "orphan_dns"), "name",
			 "dd-pr-7-api-" T_A ".x.com"));
	assert_true(has(drift(s, "missing_dns"), "expected",
			"dd-pr-7-agent-" T_MISSING "-web.x.com"));
	assert_true(has(drift(s, "missing_dns"), "expected",
			"pr-7-shell.x.com"));
	assert_false(has(drift(s, "missing_dns"), "expected", "pr-7.x.com"));
	assert_int_equal(json_array_size(drift(s, "orphan_apps")), 2);
	assert_int_equal(json_array_size(drift(s, "missing_apps")), 0);
	/* -term with a bypass policy is a mismatch; -block with emails not. */
	assert_true(has(drift(s, "access_mismatch"), "id", "app1"));
	assert_int_equal(json_array_size(drift(s, "access_mismatch")), 1);
	json_decref(s);
	json_decref(a);
	dd_cf_listing_clear(&l);
}

static void snapshot_degraded(void **state)
{
	dd_cf_listing l = listing();
	json_t *a = agents(), *s = NULL;
	const char *lists[] = {"orphan_tunnels", "orphan_dns", "orphan_apps",
			       "missing_tunnels", "missing_dns", "missing_apps",
			       "access_mismatch"};

	(void)state;
	/* The tunnel list failed: every CNAME would look leaked. */
	json_array_clear(l.tunnels);
	json_array_append_new(l.errors, json_string("tunnels: CF GET x -> 503"));
	l.failures = 1;
	assert_int_equal(dd_cf_snapshot_build(&scope, a, &l, &s), DD_OK);
	assert_true(json_is_true(json_object_get(s, "degraded")));
	assert_true(json_is_true(json_object_get(s, "cf_api_reachable")));
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(json_array_size(drift(s, lists[i])), 0);
	assert_int_equal(json_array_size(json_object_get(s, "cf_fetch_errors")),
			 1);
	json_decref(s);
	l.failures = 3;
	assert_int_equal(dd_cf_snapshot_build(&scope, a, &l, &s), DD_OK);
	assert_false(json_is_true(json_object_get(s, "cf_api_reachable")));
	json_decref(s);
	json_decref(a);
	dd_cf_listing_clear(&l);
}

static const json_t *bucket(const json_t *map, const char *env)
{
	size_t i;
	json_t *b;

	json_array_foreach(json_object_get(map, "installations"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "env")), env) == 0)
			return b;
	return NULL;
}

static void map_buckets(void **state)
{
	dd_cf_listing l = listing();
	json_t *a = agents(), *m = NULL, *inst;
	const json_t *b;

	(void)state;
	assert_int_equal(dd_cf_map_build(&scope, a, &l, &m), DD_OK);
	inst = json_object_get(m, "installations");
	/* pr-42 (an app), pr-7, pr-9, then (unattributed) last. */
	assert_int_equal(json_array_size(inst), 4);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(inst, 0), "env")), "pr-42");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(inst, 3), "env")), "(unattributed)");
	b = bucket(m, "pr-7");
	assert_true(json_is_true(json_object_get(b, "has_live_cp")));
	assert_true(json_is_true(json_object_get(b, "is_serving_env")));
	assert_int_equal(json_integer_value(json_object_get(b, "known_agents")),
			 2);
	assert_string_equal(json_string_value(json_object_get(b, "kind")),
			    "preview");
	assert_int_equal(json_array_size(json_object_get(b, "tunnels")), 3);
	assert_int_equal(json_array_size(json_object_get(b, "dns")), 5);
	b = bucket(m, "pr-9");
	assert_false(json_is_true(json_object_get(b, "has_live_cp")));
	assert_int_equal(json_integer_value(json_object_get(b, "known_agents")),
			 0);
	/* The CNAME into a tunnel that is not listed is a leaked record. */
	b = bucket(m, "(unattributed)");
	assert_int_equal(json_array_size(json_object_get(b, "dns")), 1);
	assert_string_equal(json_string_value(json_object_get(b, "kind")),
			    "unattributed");
	assert_int_equal(json_array_size(json_object_get(bucket(m, "pr-42"),
							 "apps")), 1);
	json_decref(m);
	json_decref(a);
	dd_cf_listing_clear(&l);
}

/* Every allocation failure is reported as NOMEM, never a crash or leak. */
static void builders_under_allocation_failure(void **state)
{
	dd_cf_listing l = listing();
	json_t *a = agents(), *out;
	dd_err_t rc;

	(void)state;
	for (int which = 0; which < 2; which++) {
		for (unsigned long n = 1;; n++) {
			out = NULL;
			dd_alloc_fail_at(n);
			rc = which ? dd_cf_map_build(&scope, a, &l, &out)
				   : dd_cf_snapshot_build(&scope, a, &l, &out);
			dd_alloc_fail_at(0);
			json_decref(out);
			if (rc == DD_OK)
				break;
			assert_int_equal(rc, DD_ERR_NOMEM);
			assert_true(n < 100000);
		}
	}
	json_decref(a);
	dd_cf_listing_clear(&l);
}

/* Every allocation failure in the envelope is NOMEM, never a wrong verdict. */
static void envelope_under_allocation_failure(void **state)
{
	static const char body[] = "{\"success\":false,\"errors\":[{\"code\":"
		"1003,\"message\":\"Invalid or missing name\"}],\"result\":null}";
	static const char good[] = "{\"success\":true,\"result\":[{\"id\":"
		"\"a\"}],\"result_info\":{\"total_pages\":2}}";
	json_t *env;
	long code;
	dd_buf msg;
	dd_err_t rc;

	(void)state;
	for (unsigned long n = 1;; n++) {
		dd_buf_init(&msg, DD_CF_MSG_MAX);
		env = NULL;
		dd_alloc_fail_at(n);
		rc = dd_cf_envelope_parse(200, body, sizeof body - 1, REPLY_MAX,
					  &env, &code, &msg);
		dd_alloc_fail_at(0);
		assert_null(env);
		dd_buf_free(&msg);
		if (rc == DD_ERR_UPSTREAM)
			break;
		assert_int_equal(rc, DD_ERR_NOMEM);
	}
	for (unsigned long n = 1;; n++) {
		dd_buf_init(&msg, DD_CF_MSG_MAX);
		env = NULL;
		dd_alloc_fail_at(n);
		rc = dd_cf_envelope_parse(200, good, sizeof good - 1, REPLY_MAX,
					  &env, &code, &msg);
		dd_alloc_fail_at(0);
		dd_buf_free(&msg);
		json_decref(env);
		if (rc == DD_OK)
			break;
		assert_int_equal(rc, DD_ERR_NOMEM);
	}
}

/* Mutations of a valid page never crash and never pass as valid garbage. */
static void mutated_replies(void **state)
{
	static const char good[] = "{\"success\":true,\"errors\":[],\"result\":"
		"[{\"id\":\"t1\",\"name\":\"dd-pr-7-agent-a\"}],"
		"\"result_info\":{\"page\":1,\"total_pages\":1}}";
	static const char subst[] = {'\0', '"', '{', '}', '[', ']', ',', ':',
				     'x', '0', '\\', (char)0xff};
	char buf[sizeof good];
	const json_t *items;
	uint64_t pages;
	json_t *env;
	long code;
	dd_buf msg;
	dd_err_t rc;

	(void)state;
	for (size_t i = 0; i < sizeof good - 1; i++) {
		for (size_t k = 0; k < sizeof subst; k++) {
			memcpy(buf, good, sizeof good);
			buf[i] = subst[k];
			dd_buf_init(&msg, DD_CF_MSG_MAX);
			rc = dd_cf_envelope_parse(200, buf, sizeof good - 1,
						  REPLY_MAX, &env, &code, &msg);
			if ((rc == DD_OK) != (env != NULL) ||
			    (rc != DD_OK && rc != DD_ERR_UPSTREAM))
				fail_msg("at %zu/%zu: %s", i, k, dd_errname(rc));
			if (rc == DD_OK)
				(void)dd_cf_page_parse(env, &items, &pages, &msg);
			assert_true(msg.len <= DD_CF_MSG_MAX);
			json_decref(env);
			dd_buf_free(&msg);
		}
	}
}

static const char *cfg_get(void *ud, const char *name)
{
	static const char *const vals[][2] = {
		{"DD_ENV", "dev"}, {"DD_OWNER", "acme"}, {"DD_OWNER_ID", "1"},
		{"DD_OWNER_KIND", "org"}, {"DD_ITA_BASE_URL", "https://ita"},
		{"DD_ITA_API_KEY", "k"}, {"DD_ITA_JWKS_URL", "https://ita/certs"},
		{"DD_ITA_ISSUER", "i"},
		{"DD_AUTH_COOKIE_SECRET", "0123456789abcdef0123456789abcdef"},
		{"DD_CF_API_TOKEN", "tok"}, {"DD_CF_ACCOUNT_ID", "acct"},
		{"DD_CF_ZONE_ID", "zone"}, {"DD_CF_DOMAIN", "example.com"},
		{"DD_CF_API_URL", "http://127.0.0.1:9/client/v4/"},
		{"DD_CF_ATTEMPTS", "7"},
	};
	const char *drop = ud;

	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		if (strcmp(name, vals[i][0]) == 0)
			return drop && strcmp(drop, name) == 0 ? NULL : vals[i][1];
	return NULL;
}

/* DD_CF_* from the table, secret kept out of dumps, all-or-nothing. */
static void configuration(void **state)
{
	dd_config *cfg = NULL;
	dd_cf_opts o;
	dd_buf errs;
	char *dump = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	dd_buf_init(&errs, 4096);
	assert_int_equal(dd_config_load(DD_MODE_CP, cfg_get, NULL, &cfg, &errs),
			 DD_OK);
	dd_cf_opts_from_config(cfg, &o);
	assert_string_equal(o.api_token, "tok");
	assert_string_equal(o.base_url, "http://127.0.0.1:9/client/v4");
	assert_int_equal(o.max_attempts, 7);
	assert_int_equal(o.timeout_ms, 20000);
	assert_int_equal(cfg->cf.agent_port, 8080);
	assert_int_equal(cfg->cf.agent_api_port, 8081);
	assert_string_equal(cfg->cf.cp_extras, "shell:7682");
	f = open_memstream(&dump, &len);
	dd_config_describe(DD_MODE_CP, cfg, f);
	fclose(f);
	assert_non_null(strstr(dump, "DD_CF_API_TOKEN"));
	assert_null(strstr(dump, "= tok\n"));
	free(dump);
	dd_config_free(cfg);
	cfg = NULL;
	/* A token without its zone is a boot error naming what is missing. */
	assert_int_equal(dd_config_load(DD_MODE_CP, cfg_get,
					(void *)(uintptr_t)"DD_CF_ZONE_ID", &cfg,
					&errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_CF_ZONE_ID"));
	dd_buf_free(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_envelope),
		cmocka_unit_test(success_false_keeps_codes),
		cmocka_unit_test(http_errors),
		cmocka_unit_test(malformed_replies),
		cmocka_unit_test(hostile_text_is_cleaned),
		cmocka_unit_test(huge_reply),
		cmocka_unit_test(pages),
		cmocka_unit_test(ids),
		cmocka_unit_test(snapshot_drift),
		cmocka_unit_test(snapshot_degraded),
		cmocka_unit_test(map_buckets),
		cmocka_unit_test(builders_under_allocation_failure),
		cmocka_unit_test(envelope_under_allocation_failure),
		cmocka_unit_test(mutated_replies),
		cmocka_unit_test(configuration),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
