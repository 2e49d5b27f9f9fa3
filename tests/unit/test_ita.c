/*
 * The ITA mint client against a fake Intel Trust Authority served by our
 * own HTTP server on the same loop (loopback, real HTTP in between), with
 * knobs for rate limits, failures and malformed replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "attest/ita.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/http.h"

enum reply { R_GOOD, R_BAD_JSON, R_NO_TOKEN, R_BAD_TOKEN };

static struct fake {
	int fail_429;       /* answer 429 this many times first */
	int fail_500;       /* then 500 this many times */
	enum reply reply;
	int requests;
	char last_runtime[64];
	int saw_nonce;
	size_t quote_len;
} fk;

static void fake_attest(dd_http_req *req, void *ud)
{
	const char *key = dd_http_req_header(req, "x-api-key");
	const uint8_t *b;
	size_t n;
	json_t *v = NULL;
	const char *q = NULL;
	dd_buf raw;

	(void)ud;
	fk.requests++;
	if (fk.fail_429 > 0) {
		fk.fail_429--;
		dd_http_set_header(req, "Retry-After", "0");
		dd_http_respond_error(req, 429, "RATE", "too many requests");
		return;
	}
	if (fk.fail_500 > 0) {
		fk.fail_500--;
		dd_http_respond_error(req, 500, "INTERNAL", "boom");
		return;
	}
	if (key == NULL || strcmp(key, "test-key") != 0) {
		dd_http_respond_error(req, 401, "UNAUTHORIZED", "bad api key");
		return;
	}
	b = dd_http_req_body(req, &n);
	dd_buf_init(&raw, 1 << 16);
	if (dd_json_parse(b, n, 1 << 20, &v, NULL, 0) == DD_OK) {
		json_t *tdx = json_object_get(v, "tdx");
		q = json_string_value(json_object_get(tdx ? tdx : v, "quote"));
		if (tdx != NULL) {
			const char *rt = json_string_value(json_object_get(tdx, "runtime_data"));
			snprintf(fk.last_runtime, sizeof fk.last_runtime, "%s", rt ? rt : "");
			fk.saw_nonce = json_object_get(json_object_get(tdx, "verifier_nonce"),
						       "signature") != NULL;
		}
	}
	if (q == NULL || dd_b64_decode(DD_B64_STD, q, strlen(q), &raw) != DD_OK ||
	    raw.len < 48) {
		dd_http_respond(req, 400, "application/json",
				"{\"error\":\"Quote cannot be empty\"}", 32);
	} else {
		static const char *const replies[] = {
			"{\"token\":\"eyJh.eyJi.c2ln\"}", "{\"token\":",
			"{\"other\":1}", "{\"token\":\"a b.c\\nd.e\"}",
		};
		fk.quote_len = raw.len;
		dd_http_respond(req, 200, "application/json", replies[fk.reply],
				strlen(replies[fk.reply]));
	}
	json_decref(v);
	dd_buf_free(&raw);
}

static void fake_nonce(dd_http_req *req, void *ud)
{
	static const char body[] =
		"{\"val\":\"bm9uY2UtdmFsdWUtYnl0ZXM=\",\"iat\":\"MTcxNzQwMDAwMA==\","
		"\"signature\":\"c2ln\"}";

	(void)ud;
	fk.requests++;
	dd_http_respond(req, 200, "application/json", body, sizeof body - 1);
}

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_httpc *http;
	dd_ita *ita;
	char base[64];
};

struct got {
	int calls;
	dd_err_t err;
	char token[256];
	char why[512];
	dd_ita_nonce nonce;
};

static void on_token(dd_err_t err, const char *token, const char *why, void *ud)
{
	struct got *g = ud;

	g->calls++;
	g->err = err;
	snprintf(g->token, sizeof g->token, "%s", token ? token : "");
	snprintf(g->why, sizeof g->why, "%s", why);
}

static void on_nonce(dd_err_t err, const dd_ita_nonce *n, const char *why, void *ud)
{
	struct got *g = ud;

	g->calls++;
	g->err = err;
	snprintf(g->why, sizeof g->why, "%s", why);
	if (err == DD_OK)
		assert_int_equal(dd_ita_nonce_set(&g->nonce, n->val, n->iat, n->signature),
				 DD_OK);
}

static const dd_retry_policy fast = {
	.max_attempts = 3, .base_ms = 1, .cap_ms = 5, .max_wait_ms = 50,
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 1 << 20,
		.max_body_unauth = 1 << 20, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	dd_http_route r1 = {.methods = DD_M_POST, .pattern = "/appraisal/v1/attest",
			    .handler = fake_attest};
	dd_http_route r2 = {.methods = DD_M_POST, .pattern = "/appraisal/v2/attest",
			    .handler = fake_attest};
	dd_http_route r3 = {.methods = DD_M_GET, .pattern = "/appraisal/v2/nonce",
			    .handler = fake_nonce};
	dd_ita_opts o = {.api_key = "test-key", .retry = &fast};
	dd_httpc_opts ho = {.timeout_ms = 5000};

	memset(&fk, 0, sizeof fk);
	uv_loop_init(&e->loop);
	assert_int_equal(dd_http_server_new(&e->loop, &lim, "fake-ita", &e->srv), DD_OK);
	assert_int_equal(dd_http_server_route(e->srv, &r1), DD_OK);
	assert_int_equal(dd_http_server_route(e->srv, &r2), DD_OK);
	assert_int_equal(dd_http_server_route(e->srv, &r3), DD_OK);
	assert_int_equal(dd_http_server_listen(e->srv, "127.0.0.1", 0), DD_OK);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%u/",
		 dd_http_server_port(e->srv));
	assert_int_equal(dd_httpc_new(&e->loop, &ho, &e->http), DD_OK);
	o.base_url = e->base;
	assert_int_equal(dd_ita_new(e->http, &o, &e->ita), DD_OK);
	*state = e;
	return 0;
}

static void on_httpc_closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

static void on_srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	(void)ud;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dd_ita_free(e->ita);
	dd_httpc_close(e->http, on_httpc_closed, NULL);
	dd_http_server_shutdown(e->srv, 100, on_srv_closed, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	dd_http_server_free(e->srv);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

static void run_until(struct env *e, const int *calls)
{
	for (int i = 0; i < 10000 && *calls == 0; i++)
		uv_run(&e->loop, UV_RUN_ONCE);
}

static const uint8_t quote[100] = {4, 0, 2, 0, 0x81};

static void v1_mints_a_token(void **state)
{
	struct env *e = *state;
	struct got g = {0};

	assert_int_equal(dd_ita_attest_v1(e->ita, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_OK);
	assert_string_equal(g.token, "eyJh.eyJi.c2ln");
	assert_int_equal(fk.quote_len, sizeof quote);
	assert_int_equal(fk.requests, 1);
}

static void rate_limit_is_retried(void **state)
{
	struct env *e = *state;
	struct got g = {0};

	fk.fail_429 = 2;
	assert_int_equal(dd_ita_attest_v1(e->ita, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(fk.requests, 3);
}

static void persistent_rate_limit_is_busy(void **state)
{
	struct env *e = *state;
	struct got g = {0};

	fk.fail_429 = 10;
	assert_int_equal(dd_ita_attest_v1(e->ita, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_BUSY);
	assert_int_equal(fk.requests, 3);
	assert_non_null(strstr(g.why, "rate limit"));
}

static void server_errors_are_upstream(void **state)
{
	struct env *e = *state;
	struct got g = {0};

	fk.fail_500 = 10;
	assert_int_equal(dd_ita_attest_v1(e->ita, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "HTTP 500"));
}

static void refused_evidence_says_why(void **state)
{
	struct env *e = *state;
	struct got g = {0};

	assert_int_equal(dd_ita_attest_v1(e->ita, quote, 10, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_INVALID);
	assert_non_null(strstr(g.why, "Quote cannot be empty"));
	assert_int_equal(dd_ita_attest_v1(e->ita, quote, 0, on_token, &g), DD_ERR_INVALID);
}

static void wrong_key_is_unauthorized_and_not_echoed(void **state)
{
	struct env *e = *state;
	struct got g = {0};
	dd_ita *bad = NULL;
	dd_ita_opts o = {.base_url = e->base, .api_key = "wrong-secret-key", .retry = &fast};

	assert_int_equal(dd_ita_new(e->http, &o, &bad), DD_OK);
	assert_int_equal(dd_ita_attest_v1(bad, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UNAUTHORIZED);
	assert_null(strstr(g.why, "wrong-secret-key"));
	dd_ita_free(bad);
}

static void malformed_replies_are_upstream(void **state)
{
	struct env *e = *state;

	for (enum reply r = R_BAD_JSON; r <= R_BAD_TOKEN; r++) {
		struct got g = {0};
		fk.reply = r;
		assert_int_equal(dd_ita_attest_v1(e->ita, quote, sizeof quote, on_token, &g),
				 DD_OK);
		run_until(e, &g.calls);
		assert_int_equal(g.err, DD_ERR_UPSTREAM);
		assert_string_equal(g.token, "");
	}
}

static void v2_nonce_binding_and_attest(void **state)
{
	struct env *e = *state;
	struct got g = {0}, t = {0};
	uint8_t rd[64], want[64];
	static const char want_hex[] =
		"c77ccfe1363ab0937bdc4f8fda909af60981d4e984cb9c90e2777e7909b247b4"
		"acc6f3b8281d2c29140b4d458eacdce4ea038002b0c0a0b39f12ce371c58d33a";

	assert_int_equal(dd_ita_nonce_get(e->ita, on_nonce, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_OK);
	assert_string_equal(g.nonce.signature, "c2ln");
	/* Independently computed: SHA-512(val || iat || runtime). */
	assert_int_equal(dd_ita_v2_report_data(&g.nonce, (const uint8_t *)"runtime!", 8, rd),
			 DD_OK);
	assert_int_equal(dd_hex_decode(want_hex, 128, want, 64), DD_OK);
	assert_memory_equal(rd, want, 64);
	assert_int_equal(dd_ita_attest_v2(e->ita, &g.nonce, quote, sizeof quote,
					  (const uint8_t *)"runtime!", 8, on_token, &t), DD_OK);
	run_until(e, &t.calls);
	assert_int_equal(t.err, DD_OK);
	assert_string_equal(fk.last_runtime, "cnVudGltZSE=");
	assert_true(fk.saw_nonce);
	dd_ita_nonce_clear(&g.nonce);
}

static void free_cancels_in_flight(void **state)
{
	struct env *e = *state;
	struct got g = {0};
	dd_ita *other = NULL;
	dd_ita_opts o = {.base_url = e->base, .api_key = "test-key"};

	assert_int_equal(dd_ita_new(e->http, &o, &other), DD_OK);
	assert_int_equal(dd_ita_attest_v1(other, quote, sizeof quote, on_token, &g), DD_OK);
	dd_ita_free(other);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.err, DD_ERR_CANCELLED);
}

static void unreachable_and_bad_config(void **state)
{
	struct env *e = *state;
	struct got g = {0};
	dd_ita *dead = NULL;
	dd_ita_opts o = {.base_url = "http://127.0.0.1:1", .api_key = "k",
			 .retry = &fast};
	dd_ita_opts bad1 = {.base_url = "ftp://x", .api_key = "k"};
	dd_ita_opts bad2 = {.base_url = "http://x", .api_key = "a\\r\\nb"};

	assert_int_equal(dd_ita_new(e->http, &bad1, &dead), DD_ERR_CONFIG);
	bad2.api_key = "a\r\nInjected: 1";
	assert_int_equal(dd_ita_new(e->http, &bad2, &dead), DD_ERR_CONFIG);
	assert_int_equal(dd_ita_new(e->http, &o, &dead), DD_OK);
	assert_int_equal(dd_ita_attest_v1(dead, quote, sizeof quote, on_token, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "unreachable"));
	dd_ita_free(dead);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(v1_mints_a_token, setup, teardown),
		cmocka_unit_test_setup_teardown(rate_limit_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(persistent_rate_limit_is_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(server_errors_are_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_evidence_says_why, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_key_is_unauthorized_and_not_echoed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_replies_are_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(v2_nonce_binding_and_attest, setup, teardown),
		cmocka_unit_test_setup_teardown(free_cancels_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable_and_bad_config, setup, teardown),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
