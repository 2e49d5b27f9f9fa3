/*
 * The whole development attestation loop on one event loop, every piece
 * the production one: a simulated quote from the provider, minted into a
 * token by the real ITA client against the local issuer's ITA API, then
 * accepted by the real ITA verifier from the local issuer's JWKS, with
 * the quote's report data and MRTD in the claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "attest/ita.h"
#include "attest/ita_verify.h"
#include "attest/local_ita.h"
#include "attest/provider.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/http.h"

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_httpc *http;
	dd_local_ita *local;
	dd_quote_provider *prov;
	char base[64];
	uint8_t mrtd[48];
	/* results */
	int calls;
	dd_err_t err;
	uint8_t quote[8192];
	size_t quote_len;
	char token[4096];
	char why[512];
	dd_ita_verdict verdict;
};

static void spin(struct env *e)
{
	int before = e->calls;

	for (int i = 0; i < 20000 && e->calls == before; i++)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_int_equal(e->calls, before + 1);
}

static void on_quote(dd_err_t err, const uint8_t *q, size_t len, const char *why,
		     void *ud)
{
	struct env *e = ud;

	(void)why;
	e->calls++;
	e->err = err;
	assert_true(len <= sizeof e->quote);
	memcpy(e->quote, q, len);
	e->quote_len = len;
}

static void on_token(dd_err_t err, const char *token, const char *why, void *ud)
{
	struct env *e = ud;

	e->calls++;
	e->err = err;
	snprintf(e->token, sizeof e->token, "%s", token ? token : "");
	snprintf(e->why, sizeof e->why, "%s", why);
}

static void on_verdict(const dd_ita_verdict *v, json_t *c, void *ud)
{
	struct env *e = ud;

	(void)c;
	e->calls++;
	e->verdict = *v;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 1 << 20,
		.max_body_unauth = 65536, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	dd_httpc_opts ho = {.timeout_ms = 5000};
	dd_local_ita_opts lo = {.env = "dev", .api_key = "local-key"};

	uv_loop_init(&e->loop);
	assert_int_equal(dd_http_server_new(&e->loop, &lim, "local-ita", &e->srv), DD_OK);
	assert_int_equal(dd_http_server_listen(e->srv, "127.0.0.1", 0), DD_OK);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%u",
		 dd_http_server_port(e->srv));
	lo.issuer = e->base;
	assert_int_equal(dd_local_ita_new(&lo, &e->local), DD_OK);
	assert_int_equal(dd_local_ita_mount(e->local, e->srv), DD_OK);
	assert_int_equal(dd_httpc_new(&e->loop, &ho, &e->http), DD_OK);
	memset(e->mrtd, 0xd1, sizeof e->mrtd);
	assert_int_equal(dd_quote_provider_sim(&e->loop, e->mrtd, &e->prov), DD_OK);
	*state = e;
	return 0;
}

static void httpc_closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

static void srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	(void)ud;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dd_quote_provider_close(e->prov);
	dd_httpc_close(e->http, httpc_closed, NULL);
	dd_http_server_shutdown(e->srv, 100, srv_closed, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	dd_http_server_free(e->srv);
	dd_local_ita_free(e->local);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

static void mint(struct env *e, const char *key)
{
	dd_ita *ita = NULL;
	dd_ita_opts o = {.base_url = e->base, .api_key = key};

	assert_int_equal(dd_ita_new(e->http, &o, &ita), DD_OK);
	assert_int_equal(dd_ita_attest_v1(ita, e->quote, e->quote_len, on_token, e), DD_OK);
	spin(e);
	dd_ita_free(ita);
}

static void quote_to_token_to_verdict(void **state)
{
	struct env *e = *state;
	uint8_t rd[64];
	char rd_hex[129], mrtd_hex[97], url[96];
	dd_ita_verifier *v = NULL;
	dd_ita_verifier_opts vo = {.issuer = e->base};
	dd_pin_policy pins;
	char why[128];

	memset(rd, 0x3c, sizeof rd);
	assert_int_equal(dd_quote_request(e->prov, rd, on_quote, e), DD_OK);
	spin(e);
	assert_int_equal(e->err, DD_OK);
	mint(e, "local-key");
	assert_int_equal(e->err, DD_OK);
	dd_hex_encode(e->mrtd, 48, mrtd_hex);
	assert_int_equal(dd_pin_policy_parse(mrtd_hex, NULL, NULL, 1, &pins, why,
					     sizeof why), DD_OK);
	snprintf(url, sizeof url, "%s/certs", e->base);
	vo.jwks_url = url;
	vo.pins = &pins;
	assert_int_equal(dd_ita_verifier_new(&e->loop, e->http, &vo, &v), DD_OK);
	assert_int_equal(dd_ita_verify(v, e->token, strlen(e->token), (int64_t)time(NULL),
				       on_verdict, e), DD_OK);
	spin(e);
	assert_int_equal(e->verdict.err, DD_OK);
	assert_int_equal(e->verdict.pin, DD_PIN_PASS);
	dd_hex_encode(rd, 64, rd_hex);
	assert_string_equal(e->verdict.claims.report_data, rd_hex);
	assert_string_equal(e->verdict.claims.mrtd, mrtd_hex);
	dd_ita_verifier_free(v);
}

static void refusals(void **state)
{
	struct env *e = *state;
	uint8_t rd[64] = {0};
	dd_local_ita *prod = NULL;
	dd_local_ita_opts po = {.env = "production", .issuer = "x", .api_key = "k"};

	assert_int_equal(dd_quote_request(e->prov, rd, on_quote, e), DD_OK);
	spin(e);
	mint(e, "wrong-key");
	assert_int_equal(e->err, DD_ERR_UNAUTHORIZED);
	/* A tampered quote no longer verifies, so no token is issued. */
	e->quote[184] ^= 1;
	mint(e, "local-key");
	assert_int_equal(e->err, DD_ERR_INVALID);
	assert_non_null(strstr(e->why, "does not verify"));
	assert_int_equal(dd_local_ita_new(&po, &prod), DD_ERR_FORBIDDEN);
	po.env = "staging";
	assert_int_equal(dd_local_ita_new(&po, &prod), DD_ERR_FORBIDDEN);
}

static void on_raw(dd_httpc_result *res, void *ud)
{
	struct env *e = ud;

	e->calls++;
	e->err = (dd_err_t)res->status; /* the status, for the assertion */
}

static void malformed_requests_get_400(void **state)
{
	struct env *e = *state;
	static const char *const bodies[] = {
		"not json", "{}", "{\"quote\":5}", "{\"quote\":\"!!!\"}",
		"{\"quote\":\"\"}", "{\"quote\":\"AAAA\"}",
	};
	const char *headers[] = {"x-api-key: local-key",
				 "Content-Type: application/json"};
	char url[96];

	snprintf(url, sizeof url, "%s/appraisal/v1/attest", e->base);
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		dd_httpc_request rq = {.method = "POST", .url = url,
				       .headers = headers, .n_headers = 2,
				       .body = bodies[i],
				       .body_len = strlen(bodies[i])};
		assert_int_equal(dd_httpc_start(e->http, &rq, on_raw, e, NULL), DD_OK);
		spin(e);
		assert_int_equal((int)e->err, 400);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(quote_to_token_to_verdict, setup, teardown),
		cmocka_unit_test_setup_teardown(refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_requests_get_400, setup, teardown),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
