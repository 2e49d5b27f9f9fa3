/*
 * test_fleet_html.c: the CP's fleet pages and /api/fleet's JSON
 * (src/cp/fleet_html.c, fleet_html_agent.c). Expectations come from the
 * spec (7.1, 7.2, 3.6) and the issue: hostile record values stay text,
 * only http(s) URLs become links, status and TCB colours follow the
 * spec's tables, the SIMULATED banner shows exactly when the fleet or a
 * record runs on simulated quotes, the 404 page does not depend on the
 * id, and the JSON carries the summary and full records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/json.h"
#include "cp/fleet_html.h"

#define NOW INT64_C(1780315230000) /* 2026-06-01T12:00:30Z */

static void record(dd_store_agent *a, const char *id, const char *vm,
		   dd_agent_status st)
{
	dd_store_agent_init(a);
	snprintf(a->agent_id, sizeof a->agent_id, "%s", id);
	snprintf(a->hostname, sizeof a->hostname, "%s.example.com", id);
	snprintf(a->vm_name, sizeof a->vm_name, "%s", vm);
	snprintf(a->env, sizeof a->env, "dev");
	snprintf(a->attestation_type, sizeof a->attestation_type, "tdx");
	a->status = st;
	a->last_seen_ms = NOW - 12000;
	a->registered_at_ms = NOW - 60000;
	a->ingress = DD_INGRESS_DIRECT;
	snprintf(a->ingress_url, sizeof a->ingress_url,
		 "http://127.0.0.1:8090");
	snprintf(a->ita.tcb_status, sizeof a->ita.tcb_status, "UpToDate");
	snprintf(a->ita.mrtd, sizeof a->ita.mrtd, "%s",
		 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
		 "a1b2c3d4e5f60718293a4b5c6d7e8f90");
	a->ita.exp = NOW / 1000 + 600;
	a->ita.iat = NOW / 1000 - 60;
	a->health = json_pack("{s:i, s:[s, s], s:i, s:i, s:i}",
			      "deployment_count", 2, "deployment_names",
			      "hello-world", "web", "cpu_percent", 7,
			      "memory_used_mb", 300, "memory_total_mb", 2000);
	assert_non_null(a->health);
}

static dd_fleet_ctx ctx(bool simulated)
{
	return (dd_fleet_ctx){.env = "dev", .hostname = "cp<x>",
			      .simulated = simulated, .now_ms = NOW,
			      .login = "al\"ice", .admin = true,
			      .csrf = "c'srf"};
}

static const char *render_fragment(dd_buf *b, const dd_fleet_ctx *c,
				   dd_store_agent *v, size_t n)
{
	const dd_store_agent *p[4];

	for (size_t i = 0; i < n; i++)
		p[i] = &v[i];
	dd_buf_reset(b);
	assert_int_equal(dd_fleet_html_fragment(b, c, p, n), DD_OK);
	return dd_buf_str(b);
}

static void test_classes(void **state)
{
	(void)state;
	assert_string_equal(dd_fleet_status_class("healthy"), "running");
	assert_string_equal(dd_fleet_status_class("running"), "running");
	assert_string_equal(dd_fleet_status_class("registering"), "deploying");
	assert_string_equal(dd_fleet_status_class("stale"), "deploying");
	assert_string_equal(dd_fleet_status_class("unknown"), "deploying");
	assert_string_equal(dd_fleet_status_class("dead"), "failed");
	assert_string_equal(dd_fleet_status_class("exited"), "failed");
	assert_string_equal(dd_fleet_status_class("Healthy"), "idle");
	assert_string_equal(dd_fleet_status_class(""), "idle");
	assert_string_equal(dd_fleet_tcb_class("UpToDate"), "running");
	assert_string_equal(dd_fleet_tcb_class("OK"), "running");
	assert_string_equal(dd_fleet_tcb_class("OutOfDate"), "deploying");
	assert_string_equal(dd_fleet_tcb_class("SWHardeningNeeded"),
			    "deploying");
	assert_string_equal(dd_fleet_tcb_class("Revoked"), "failed");
	assert_string_equal(dd_fleet_tcb_class("Invalid"), "failed");
	assert_string_equal(dd_fleet_tcb_class(""), "idle");
	assert_string_equal(dd_fleet_tcb_class("uptodate"), "idle");
}

static void test_fragment_shows_the_fleet(void **state)
{
	dd_store_agent v[2];
	dd_fleet_ctx c = ctx(false);
	dd_buf b;
	const char *s;

	(void)state;
	record(&v[0], "dd-dev-agent-aaaa", "dev-agent-1", DD_AGENT_HEALTHY);
	record(&v[1], "dd-dev-agent-bbbb", "dev-agent-2", DD_AGENT_STALE);
	v[1].failures = 2;
	snprintf(v[1].last_error, sizeof v[1].last_error, "connect refused");
	dd_buf_init(&b, 1 << 20);
	s = render_fragment(&b, &c, v, 2);
	assert_non_null(strstr(s, "cp&lt;x&gt; · env dev · 2 agents"));
	assert_non_null(strstr(s, "<div class=value>1/2</div>"));
	assert_non_null(strstr(s, "data-agent=\"dd-dev-agent-aaaa\" "
				  "data-status=\"healthy\""));
	assert_non_null(strstr(s, "data-status=\"stale\""));
	assert_non_null(strstr(s, "<span class=\"pill status-running\">"
				  "healthy</span>"));
	assert_non_null(strstr(s, "<span class=\"pill status-deploying\">"
				  "stale</span>"));
	assert_non_null(strstr(s, "title=\"connect refused\""));
	assert_non_null(strstr(s, ">UpToDate</span>"));
	/* MRTD cut to 16 characters in the table, whole in the title. */
	assert_non_null(strstr(s, ">a1b2c3d4e5f60718…</code>"));
	assert_non_null(strstr(s, "<span class=wl-name>hello-world</span>, "
				  "<span class=wl-name>web</span>"));
	assert_non_null(strstr(s, ">12s ago</time>"));
	assert_non_null(strstr(s, "datetime=\"2026-06-01T12:00:18.000Z\""));
	assert_non_null(strstr(s, "300/2000 MB"));
	assert_non_null(strstr(s, "href=\"/agent/dd-dev-agent-bbbb\""));
	assert_non_null(strstr(s, "href=\"http://127.0.0.1:8090/\" "
				  "target=_blank rel=noopener>dashboard"));
	assert_non_null(strstr(s, "No managed units reported yet"));
	assert_null(strstr(s, "SIMULATED"));
	/* Sorted by the caller: rows keep its order. */
	assert_true(strstr(s, "dev-agent-1") < strstr(s, "dev-agent-2"));
	dd_buf_free(&b);
	dd_store_agent_clear(&v[0]);
	dd_store_agent_clear(&v[1]);
}

static void test_hostile_values_stay_text(void **state)
{
	dd_store_agent v[1];
	dd_fleet_ctx c = ctx(false);
	dd_buf b;
	const char *s;

	(void)state;
	record(&v[0], "dd-dev-agent-x", "<script>alert(1)</script>",
	       DD_AGENT_HEALTHY);
	json_array_append_new(json_object_get(v[0].health, "deployment_names"),
			      json_string("<img src=x onerror=alert(1)>"));
	snprintf(v[0].ingress_url, sizeof v[0].ingress_url,
		 "javascript:alert(1)");
	dd_buf_init(&b, 1 << 20);
	s = render_fragment(&b, &c, v, 1);
	assert_null(strstr(s, "<script"));
	assert_null(strstr(s, "<img"));
	assert_null(strstr(s, "javascript:"));
	assert_null(strstr(s, ">dashboard<"));
	assert_non_null(strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	/* Two names, then "+1 more" (three shown at most). */
	json_object_set_new(v[0].health, "deployment_count", json_integer(5));
	s = render_fragment(&b, &c, v, 1);
	assert_non_null(strstr(s, "&lt;img src=x onerror=alert(1)&gt;</span> "
				  "<span class=dim>+2 more</span>"));
	dd_buf_reset(&b);
	assert_int_equal(dd_fleet_html_agent(&b, &c, &v[0], NULL, 0), DD_OK);
	s = dd_buf_str(&b);
	assert_null(strstr(s, "<script>"));
	assert_null(strstr(s, "javascript:"));
	assert_non_null(strstr(s, "<title>DD — &lt;script&gt;"));
	assert_non_null(strstr(s, "al&quot;ice"));
	assert_non_null(strstr(s, "value=\"c&#39;srf\""));
	dd_buf_free(&b);
	dd_store_agent_clear(&v[0]);
}

static void test_simulated_banner(void **state)
{
	dd_store_agent v[1];
	dd_fleet_ctx c = ctx(false);
	dd_buf b;
	const char *s;

	(void)state;
	record(&v[0], "dd-dev-agent-a", "vm", DD_AGENT_HEALTHY);
	dd_buf_init(&b, 1 << 20);
	s = render_fragment(&b, &c, v, 1);
	assert_null(strstr(s, "SIMULATED"));
	assert_null(strstr(s, ">SIM<"));
	/* An agent whose quote was simulated flags itself and the fleet. */
	v[0].ita.claims = json_pack("{s:b}", "dd_simulated", 1);
	s = render_fragment(&b, &c, v, 1);
	assert_non_null(strstr(s, "banner-simulated"));
	assert_non_null(strstr(s, ">SIM</span>"));
	json_decref(v[0].ita.claims);
	v[0].ita.claims = json_pack("{s:b}", "dd_simulated", 0);
	s = render_fragment(&b, &c, v, 1);
	assert_null(strstr(s, "SIMULATED"));
	/* A simulated CP shows the banner even over an empty fleet. */
	c = ctx(true);
	s = render_fragment(&b, &c, v, 0);
	assert_non_null(strstr(s, "SIMULATED"));
	assert_non_null(strstr(s, "No agents registered"));
	c.admin = false;
	s = render_fragment(&b, &c, v, 0);
	assert_non_null(strstr(s, "No agents registered that you may see"));
	dd_buf_free(&b);
	dd_store_agent_clear(&v[0]);
}

static void test_page_and_not_found(void **state)
{
	dd_store_agent v[1];
	const dd_store_agent *p[1] = {&v[0]};
	dd_store_event ev[2] = {
		{.at_ms = NOW - 5000, .has_from = true, .from = DD_AGENT_HEALTHY,
		 .to = DD_AGENT_STALE, .reason = "timeout <5s>"},
		{.at_ms = NOW - 50000, .to = DD_AGENT_REGISTERING,
		 .reason = "registered"},
	};
	dd_fleet_ctx c = ctx(true);
	dd_buf b, nf;
	const char *s;

	(void)state;
	record(&v[0], "dd-dev-agent-a", "dev-agent-1", DD_AGENT_STALE);
	dd_buf_init(&b, 1 << 20);
	assert_int_equal(dd_fleet_html_page(&b, &c, p, 1), DD_OK);
	s = dd_buf_str(&b);
	assert_non_null(strstr(s, "<title>DD Fleet</title>"));
	assert_non_null(strstr(s, "id=fleet-status"));
	assert_non_null(strstr(s, "<div id=fleet-body data-poll-ms=2000>"));
	assert_non_null(strstr(s, "<script src=\"/static/fleet.js\"></script>"));
	/* Nothing from outside our origin. */
	assert_null(strstr(s, "//cdn"));
	assert_null(strstr(s, "https://"));
	dd_buf_reset(&b);
	assert_int_equal(dd_fleet_html_agent(&b, &c, &v[0], ev, 2), DD_OK);
	s = dd_buf_str(&b);
	assert_non_null(strstr(s, "<h1>dev-agent-1</h1>"));
	assert_non_null(strstr(s, "Intel Trust Authority"));
	/* The whole MRTD on the detail page. */
	assert_non_null(strstr(s, v[0].ita.mrtd));
	assert_non_null(strstr(s, "in 10m"));
	assert_non_null(strstr(s, "timeout &lt;5s&gt;"));
	assert_true(strstr(s, "timeout") < strstr(s, "registered<"));
	assert_non_null(strstr(s, "<td class=wl-name>hello-world</td>"));
	assert_non_null(strstr(s, "SIMULATED"));
	assert_null(strstr(s, "<script"));
	dd_buf_init(&nf, 1 << 20);
	assert_int_equal(dd_fleet_html_not_found(&nf, &c), DD_OK);
	s = dd_buf_str(&nf);
	assert_non_null(strstr(s, "<title>Not found</title>"));
	assert_non_null(strstr(s, "<h1>Not found</h1>"));
	assert_null(strstr(s, "dev-agent"));
	dd_buf_free(&nf);
	dd_buf_free(&b);
	dd_store_agent_clear(&v[0]);
}

static void test_json(void **state)
{
	dd_store_agent v[2];
	const dd_store_agent *p[2] = {&v[0], &v[1]};
	dd_fleet_ctx c = ctx(false);
	json_t *o = NULL, *sum, *agents;

	(void)state;
	record(&v[0], "dd-dev-agent-a", "dev-agent-1", DD_AGENT_HEALTHY);
	record(&v[1], "dd-dev-agent-b", "dev-agent-2", DD_AGENT_DEAD);
	json_object_set_new(v[1].health, "units",
			    json_pack("[{s:s}, {s:s}]", "app_name", "a",
				      "app_name", "b"));
	json_object_set_new(v[1].health, "oracles", json_pack("[{}]"));
	assert_int_equal(dd_fleet_json(&c, p, 2, &o), DD_OK);
	assert_string_equal(json_string_value(json_object_get(o, "generated_at")),
			    "2026-06-01T12:00:30.000+00:00");
	assert_string_equal(json_string_value(json_object_get(o, "env")), "dev");
	assert_true(json_is_false(json_object_get(o, "simulated")));
	sum = json_object_get(o, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "agents")), 2);
	assert_int_equal(json_integer_value(json_object_get(sum, "healthy")), 1);
	assert_int_equal(json_integer_value(json_object_get(sum, "units")), 2);
	assert_int_equal(json_integer_value(json_object_get(sum, "oracles")), 1);
	agents = json_object_get(o, "agents");
	assert_int_equal(json_array_size(agents), 2);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(agents, 1), "status")), "dead");
	/* Full records: the claims and ingress travel. */
	assert_non_null(json_object_get(json_array_get(agents, 0), "ita"));
	json_decref(o);
	dd_store_agent_clear(&v[0]);
	dd_store_agent_clear(&v[1]);
}

static void test_out_of_memory_and_caps(void **state)
{
	dd_store_agent v[2];
	const dd_store_agent *p[2] = {&v[0], &v[1]};
	dd_fleet_ctx c = ctx(true);
	json_t *o;
	dd_buf b;
	dd_err_t rc;

	(void)state;
	record(&v[0], "dd-dev-agent-a", "dev-agent-1", DD_AGENT_HEALTHY);
	record(&v[1], "dd-dev-agent-b", "dev-agent-2", DD_AGENT_STALE);
	for (unsigned long nth = 1; nth < 300; nth++) {
		o = NULL;
		dd_alloc_fail_at(nth);
		rc = dd_fleet_json(&c, p, 2, &o);
		dd_alloc_fail_at(0);
		if (rc == DD_OK)
			assert_non_null(o);
		else
			assert_int_equal(rc, DD_ERR_NOMEM);
		json_decref(o);
		dd_buf_init(&b, 1 << 20);
		dd_alloc_fail_at(nth);
		rc = dd_fleet_html_page(&b, &c, p, 2);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		dd_buf_free(&b);
	}
	/* A page that does not fit its buffer fails, it is not cut. */
	dd_buf_init(&b, 512);
	assert_int_equal(dd_fleet_html_page(&b, &c, p, 2), DD_ERR_TOO_LARGE);
	dd_buf_free(&b);
	dd_store_agent_clear(&v[0]);
	dd_store_agent_clear(&v[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_fragment_shows_the_fleet),
		cmocka_unit_test(test_hostile_values_stay_text),
		cmocka_unit_test(test_simulated_banner),
		cmocka_unit_test(test_page_and_not_found),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_out_of_memory_and_caps),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
