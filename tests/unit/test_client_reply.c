/*
 * test_client_reply.c: how the client reads what agents and the control
 * plane answer: exit codes, error bodies, deploy results (ok:false is a
 * failure), /health in both shapes, logs, agent discovery, and the
 * sanitizing of everything that reaches a terminal or a CI log.
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

#include "client/client_reply.h"
#include "core/alloc.h"
#include "core/json.h"

static json_t *J(const char *text)
{
	json_t *v = NULL;

	assert_int_equal(dd_json_parse(text, strlen(text), 1 << 20, &v, NULL,
				       0), DD_OK);
	return v;
}

static void exit_codes(void **state)
{
	(void)state;
	assert_int_equal(dd_client_exit_for(DD_ERR_UPSTREAM, 0),
			 DD_CLIENT_EXIT_TRANSPORT);
	assert_int_equal(dd_client_exit_for(DD_ERR_TIMEOUT, 0),
			 DD_CLIENT_EXIT_TRANSPORT);
	assert_int_equal(dd_client_exit_for(DD_OK, 401), DD_CLIENT_EXIT_AUTH);
	assert_int_equal(dd_client_exit_for(DD_OK, 403), DD_CLIENT_EXIT_AUTH);
	assert_int_equal(dd_client_exit_for(DD_OK, 400), DD_CLIENT_EXIT_FAILED);
	assert_int_equal(dd_client_exit_for(DD_OK, 404), DD_CLIENT_EXIT_FAILED);
	assert_int_equal(dd_client_exit_for(DD_OK, 500), DD_CLIENT_EXIT_FAILED);
	assert_int_equal(dd_client_exit_for(DD_OK, 502), DD_CLIENT_EXIT_FAILED);
}

static void sanitized(const char *in, size_t n, const char *want)
{
	dd_buf b;

	dd_buf_init(&b, 4096);
	assert_int_equal(dd_client_sanitize(in, n, &b), DD_OK);
	assert_int_equal(b.len, n); /* one byte out per byte in */
	assert_string_equal(dd_buf_str(&b), want);
	dd_buf_free(&b);
}

#define S(lit, want) sanitized(lit, sizeof(lit) - 1, want)

static void sanitizing(void **state)
{
	dd_buf b;

	(void)state;
	S("plain text\twith tab", "plain text\twith tab");
	S("\x1b[31mred\x1b[0m", "?[31mred?[0m");
	S("line\nbreak\rcr", "line?break?cr");
	S("nul\0byte", "nul?byte");
	S("del\x7f", "del?");
	S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* C1 controls, the 8-bit CSI among them. */
	S("\xc2\x9b" "31m", "??31m");
	S("\xc2\x85", "??");
	S("\xc2\xa0", "\xc2\xa0");
	/* Overlong, surrogate, beyond U+10FFFF, stray and cut sequences. */
	S("\xc0\xaf", "??");
	S("\xe0\x80\xaf", "???");
	S("\xed\xa0\x80", "???");
	S("\xf4\x90\x80\x80", "????");
	S("\x80x", "?x");
	S("\xe2\x82", "??");
	S("\xff\xfe", "??");
	/* A capped buffer refuses whole. */
	dd_buf_init(&b, 4);
	assert_int_equal(dd_client_sanitize("abcdef", 6, &b), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, 0);
	assert_int_equal(dd_client_sanitize("abcd", 4, &b), DD_OK);
	dd_buf_free(&b);
}

static void error_texts(void **state)
{
	char out[256], big[2000];
	const char *b;

	(void)state;
	b = "{\"code\":\"UNAUTHORIZED\",\"message\":\"unauthorized\"}";
	dd_client_error_text(401, b, strlen(b), out, sizeof out);
	assert_string_equal(out, "HTTP 401 UNAUTHORIZED: unauthorized");
	b = "{\"code\":\"x\",\"message\":\"evil\\u001b[2J\\nnext\"}";
	dd_client_error_text(400, b, strlen(b), out, sizeof out);
	assert_string_equal(out, "HTTP 400 x: evil?[2J?next");
	b = "<html>Bad Gateway</html>\n";
	dd_client_error_text(502, b, strlen(b), out, sizeof out);
	assert_string_equal(out, "HTTP 502: <html>Bad Gateway</html>?");
	dd_client_error_text(500, "", 0, out, sizeof out);
	assert_string_equal(out, "HTTP 500");
	b = "{\"code\":\"x\"}";
	dd_client_error_text(500, b, strlen(b), out, sizeof out);
	assert_string_equal(out, "HTTP 500: {\"code\":\"x\"}");
	memset(big, 'z', sizeof big);
	dd_client_error_text(500, big, sizeof big, out, sizeof out);
	assert_true(strlen(out) < 220);
	/* A tiny buffer still ends in a NUL. */
	dd_client_error_text(500, big, sizeof big, out, 6);
	assert_string_equal(out, "HTTP ");
}

static void deploy_replies(void **state)
{
	dd_client_deploy_reply r;
	const char *b;

	(void)state;
	b = "{\"ok\":true,\"id\":\"2b1c-4e\",\"status\":\"deploying\"}";
	assert_int_equal(dd_client_deploy_reply_parse(b, strlen(b), &r), DD_OK);
	assert_true(r.ok);
	assert_string_equal(r.id, "2b1c-4e");
	assert_string_equal(r.status, "deploying");
	assert_string_equal(r.error, "");

	/* ok:false is a parsed reply saying "failed" (DESIGN 5 item 15). */
	b = "{\"ok\":false,\"error\":\"invalid deploy request: missing "
	    "field\\u001b\"}";
	assert_int_equal(dd_client_deploy_reply_parse(b, strlen(b), &r), DD_OK);
	assert_false(r.ok);
	assert_string_equal(r.error, "invalid deploy request: missing field?");
	b = "{\"ok\":false}";
	assert_int_equal(dd_client_deploy_reply_parse(b, strlen(b), &r), DD_OK);
	assert_false(r.ok);
	assert_string_equal(r.error, "the runtime gave no reason");

	/* Odd ids and statuses are dropped, not printed. */
	b = "{\"ok\":true,\"id\":\"a b\\n\",\"status\":\"RUN\\u001b\"}";
	assert_int_equal(dd_client_deploy_reply_parse(b, strlen(b), &r), DD_OK);
	assert_string_equal(r.id, "");
	assert_string_equal(r.status, "");
	b = "{\"ok\":true,\"id\":7}";
	assert_int_equal(dd_client_deploy_reply_parse(b, strlen(b), &r), DD_OK);
	assert_string_equal(r.id, "");

	/* Without a boolean ok it is no deploy result at all. */
	static const char *const bad[] = {
		"{}", "{\"ok\":\"true\"}", "{\"ok\":1}", "[{\"ok\":true}]",
		"null", "ok", "", "{\"ok\":true", "{\"ok\":true,\"ok\":false}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(dd_client_deploy_reply_parse(bad[i],
							      strlen(bad[i]),
							      &r),
				 DD_ERR_INVALID);
}

static dd_client_wl find(const char *health, const char *app, const char *id,
			 dd_err_t want)
{
	json_t *h = J(health);
	dd_client_wl w;

	assert_int_equal(dd_client_health_find(h, app, id, &w), want);
	json_decref(h);
	return w;
}

static void health_names(void **state)
{
	const char *h = "{\"ok\":true,\"service\":\"agent\",\"deployments\":"
			"[\"cloudflared\",\"dd-agent\",\"web\"]}";
	dd_client_wl w;

	(void)state;
	w = find(h, "web", "", DD_OK);
	assert_int_equal(w.state, DD_WL_LISTED);
	assert_int_equal(dd_client_wl_verdict(w.state), 1);
	w = find(h, "api", "some-id", DD_OK);
	assert_int_equal(w.state, DD_WL_ABSENT);
	assert_int_equal(dd_client_wl_verdict(w.state), 0);
	w = find("{\"deployments\":[]}", "web", NULL, DD_OK);
	assert_int_equal(w.state, DD_WL_ABSENT);
	/* Junk entries are skipped. */
	w = find("{\"deployments\":[1,null,{\"x\":1},\"web\"]}", "web", NULL,
		 DD_OK);
	assert_int_equal(w.state, DD_WL_LISTED);
	find("{\"ok\":true}", "web", NULL, DD_ERR_INVALID);
	find("{\"deployments\":{}}", "web", NULL, DD_ERR_INVALID);
	find("[\"web\"]", "web", NULL, DD_ERR_INVALID);
}

static void health_workloads(void **state)
{
	const char *h;
	dd_client_wl w;

	(void)state;
	/* The agent's richer shape wins over the names. */
	h = "{\"deployments\":[\"web\"],\"workloads\":[{\"id\":\"1\","
	    "\"app_name\":\"web\",\"status\":\"deploying\",\"pid\":null}]}";
	w = find(h, "web", "1", DD_OK);
	assert_int_equal(w.state, DD_WL_DEPLOYING);
	assert_string_equal(w.status, "deploying");
	assert_int_equal(dd_client_wl_verdict(w.state), 0);

	h = "{\"workloads\":[{\"id\":\"1\",\"app_name\":\"web\","
	    "\"status\":\"running\",\"pid\":42}]}";
	w = find(h, "web", "1", DD_OK);
	assert_int_equal(w.state, DD_WL_RUNNING);
	assert_int_equal(dd_client_wl_verdict(w.state), 1);

	h = "{\"workloads\":[{\"id\":\"1\",\"app_name\":\"web\","
	    "\"status\":\"failed\",\"error_message\":\"spawn failed: No such "
	    "file\\u001b\"}]}";
	w = find(h, "web", "1", DD_OK);
	assert_int_equal(w.state, DD_WL_FAILED);
	assert_string_equal(w.error, "spawn failed: No such file?");
	assert_int_equal(dd_client_wl_verdict(w.state), -1);

	w = find("{\"workloads\":[{\"id\":\"1\",\"app_name\":\"t\",\"status\":"
		 "\"completed\"}]}", "t", "1", DD_OK);
	assert_int_equal(dd_client_wl_verdict(w.state), 1);
	w = find("{\"workloads\":[{\"id\":\"1\",\"app_name\":\"t\",\"status\":"
		 "\"stopped\"}]}", "t", "1", DD_OK);
	assert_int_equal(dd_client_wl_verdict(w.state), -1);
	w = find("{\"workloads\":[{\"id\":\"1\",\"app_name\":\"t\",\"status\":"
		 "\"paused\"}]}", "t", "1", DD_OK);
	assert_int_equal(w.state, DD_WL_OTHER);
	assert_string_equal(w.status, "paused");
	assert_int_equal(dd_client_wl_verdict(w.state), 0);

	/* The old deployment of the app, still running, is not ours. */
	h = "{\"workloads\":[{\"id\":\"old\",\"app_name\":\"web\",\"status\":"
	    "\"running\"},{\"id\":\"new\",\"app_name\":\"web\",\"status\":"
	    "\"deploying\"}]}";
	w = find(h, "web", "new", DD_OK);
	assert_int_equal(w.state, DD_WL_DEPLOYING);
	w = find("{\"workloads\":[{\"id\":\"old\",\"app_name\":\"web\","
		 "\"status\":\"running\"}]}", "web", "new", DD_OK);
	assert_int_equal(w.state, DD_WL_ABSENT);
	/* Without an id to go by, the most final entry of the app. */
	w = find(h, "web", "", DD_OK);
	assert_int_equal(w.state, DD_WL_RUNNING);
	/* Entries without ids match by name. */
	w = find("{\"workloads\":[{\"app_name\":\"web\",\"status\":"
		 "\"running\"}]}", "web", "new", DD_OK);
	assert_int_equal(w.state, DD_WL_RUNNING);
	/* A non-array workloads falls back to the names. */
	w = find("{\"workloads\":null,\"deployments\":[\"web\"]}", "web", "x",
		 DD_OK);
	assert_int_equal(w.state, DD_WL_LISTED);
	assert_string_equal(dd_client_wl_name(DD_WL_RUNNING), "running");
	assert_string_equal(dd_client_wl_name(DD_WL_ABSENT), "not listed yet");
}

static void logs_replies(void **state)
{
	const json_t *lines;
	json_t *v;
	char why[128];

	(void)state;
	v = J("{\"ok\":true,\"lines\":[\"a\",\"b\"]}");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_OK);
	assert_int_equal(json_array_size(lines), 2);
	json_decref(v);
	v = J("{\"lines\":[]}");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_OK);
	json_decref(v);
	v = J("{\"ok\":false,\"error\":\"deployment not found\"}");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_ERR_UPSTREAM);
	assert_string_equal(why, "deployment not found");
	assert_null(lines);
	json_decref(v);
	v = J("{\"ok\":true,\"lines\":[\"a\",3]}");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_ERR_INVALID);
	json_decref(v);
	v = J("{\"ok\":true}");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_ERR_INVALID);
	json_decref(v);
	v = J("[\"a\"]");
	assert_int_equal(dd_client_logs_lines(v, &lines, why, sizeof why),
			 DD_ERR_INVALID);
	json_decref(v);
}

static void agent_discovery(void **state)
{
	json_t *a;
	char host[256];
	dd_buf seen;

	(void)state;
	a = J("[{\"vm_name\":\"prod\",\"hostname\":\"dd-p-agent-1.ex.com\","
	      "\"status\":\"healthy\",\"last_seen\":\"2026-06-01T12:00:00Z\"},"
	      "{\"vm_name\":\"prod\",\"hostname\":\"dd-p-agent-2.ex.com\","
	      "\"status\":\"stale\",\"last_seen\":\"2026-06-01T12:05:00Z\"},"
	      "{\"vm_name\":\"prod\",\"hostname\":\"dd-p-agent-3.ex.com\","
	      "\"status\":\"dead\",\"last_seen\":\"2026-06-01T13:00:00Z\"},"
	      "{\"vm_name\":\"prod\",\"hostname\":\"bad host!\","
	      "\"status\":\"healthy\",\"last_seen\":\"2027-01-01T00:00:00Z\"},"
	      "{\"vm_name\":\"other\",\"hostname\":\"dd-p-agent-4.ex.com\","
	      "\"status\":\"healthy\",\"last_seen\":\"2028-01-01T00:00:00Z\"},"
	      "{\"agent_id\":\"control-plane\"}, 7]");
	dd_buf_init(&seen, 4096);
	assert_int_equal(dd_client_pick_agent(a, "prod", host, sizeof host,
					      &seen), DD_OK);
	/* The latest of the usable entries; dead and malformed ones lose. */
	assert_string_equal(host, "dd-p-agent-2.ex.com");
	assert_non_null(strstr(dd_buf_str(&seen), "dd-p-agent-3.ex.com "
			       "status=dead"));
	assert_null(strstr(dd_buf_str(&seen), "agent-4"));
	dd_buf_reset(&seen);
	assert_int_equal(dd_client_pick_agent(a, "nope", host, sizeof host,
					      &seen), DD_ERR_NOT_FOUND);
	assert_int_equal(seen.len, 0);
	assert_int_equal(dd_client_pick_agent(a, "prod", host, 5, NULL),
			 DD_ERR_TOO_LARGE);
	json_decref(a);
	a = J("[{\"vm_name\":\"x\",\"hostname\":\"h\\u001b.com\",\"status\":"
	      "\"dead\"}]");
	assert_int_equal(dd_client_pick_agent(a, "x", host, sizeof host, &seen),
			 DD_ERR_NOT_FOUND);
	assert_non_null(strstr(dd_buf_str(&seen), "h?.com status=dead "
			       "last_seen=?"));
	json_decref(a);
	a = J("{\"agents\":[]}");
	assert_int_equal(dd_client_pick_agent(a, "x", host, sizeof host, NULL),
			 DD_ERR_INVALID);
	json_decref(a);
	dd_buf_free(&seen);
}

static void api_hosts(void **state)
{
	char out[300], long_name[300];

	(void)state;
	assert_int_equal(dd_client_api_host("dd-production-agent-1f2e."
					    "example.com", out, sizeof out),
			 DD_OK);
	assert_string_equal(out, "dd-production-api-1f2e.example.com");
	assert_int_equal(dd_client_api_host("myvm.example.com", out,
					    sizeof out), DD_OK);
	assert_string_equal(out, "myvm-agent-api.example.com");
	assert_int_equal(dd_client_api_host("solo", out, sizeof out), DD_OK);
	assert_string_equal(out, "solo-agent-api");
	/* Only the first label counts, and only the first occurrence. */
	assert_int_equal(dd_client_api_host("x.my-agent-z.com", out,
					    sizeof out), DD_OK);
	assert_string_equal(out, "x-agent-api.my-agent-z.com");
	assert_int_equal(dd_client_api_host("a-agent-b-agent-c.d", out,
					    sizeof out), DD_OK);
	assert_string_equal(out, "a-api-b-agent-c.d");
	static const char *const bad[] = {
		"", ".", "a..b", "-a.b", "a-.b", "a b", "a/b", "a.b.", "a_b.c",
		"https://a.b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(dd_client_api_host(bad[i], out, sizeof out),
				 DD_ERR_INVALID);
	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	assert_int_equal(dd_client_api_host(long_name, out, 20),
			 DD_ERR_TOO_LARGE);
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(dd_client_api_host(long_name, out, sizeof out),
			 DD_ERR_INVALID);
}

static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	const char *b = "{\"ok\":false,\"error\":\"boom\",\"id\":\"x\"}";
	dd_client_deploy_reply r;
	unsigned long n, used;
	char out[128];
	dd_err_t rc;

	for (n = 1;; n++) {
		dd_alloc_fail_at(n);
		rc = dd_client_deploy_reply_parse(b, strlen(b), &r);
		dd_client_error_text(500, b, strlen(b), out, sizeof out);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_true(strncmp(out, "HTTP 500", 8) == 0);
		if (used < n) {
			assert_int_equal(rc, DD_OK);
			assert_false(r.ok);
			break;
		}
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_codes),
		cmocka_unit_test(sanitizing),
		cmocka_unit_test(error_texts),
		cmocka_unit_test(deploy_replies),
		cmocka_unit_test(health_names),
		cmocka_unit_test(health_workloads),
		cmocka_unit_test(logs_replies),
		cmocka_unit_test(agent_discovery),
		cmocka_unit_test(api_hosts),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
