/*
 * The ITA token verifier end to end on a loop: a local ES256 signer plays
 * Intel, its JWKS is served by our HTTP server on loopback, and tokens
 * vary one property at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "attest/ita_verify.h"
#include "auth/signer.h"
#include "core/json.h"
#include "net/http.h"

#define ISS "https://portal.trustauthority.intel.com"
#define MRTD "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
#define OTHER "b65ea009e424e6f761fdd3d7c8962439453b37ecdf62da04f7bc5d327686bb8bafc8a5d24a9c31cee60e4aba87c2f71b"
#define NOW 1800000000

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_httpc *http;
	dd_signer *intel, *stranger;
	char *jwks;
	char url[96];
};

static void serve_jwks(dd_http_req *req, void *ud)
{
	struct env *e = ud;

	dd_http_respond(req, 200, "application/json", e->jwks, strlen(e->jwks));
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 65536,
		.max_body_unauth = 65536, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	dd_http_route r = {.methods = DD_M_GET, .pattern = "/certs",
			   .handler = serve_jwks, .ud = e};
	dd_httpc_opts ho = {.timeout_ms = 3000};
	json_t *jwks;

	uv_loop_init(&e->loop);
	assert_int_equal(dd_signer_new(&e->intel), DD_OK);
	assert_int_equal(dd_signer_new(&e->stranger), DD_OK);
	assert_int_equal(dd_signer_jwks(e->intel, &jwks), DD_OK);
	e->jwks = json_dumps(jwks, JSON_COMPACT);
	json_decref(jwks);
	assert_int_equal(dd_http_server_new(&e->loop, &lim, "fake-ita", &e->srv), DD_OK);
	assert_int_equal(dd_http_server_route(e->srv, &r), DD_OK);
	assert_int_equal(dd_http_server_listen(e->srv, "127.0.0.1", 0), DD_OK);
	snprintf(e->url, sizeof e->url, "http://127.0.0.1:%u/certs",
		 dd_http_server_port(e->srv));
	assert_int_equal(dd_httpc_new(&e->loop, &ho, &e->http), DD_OK);
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

	dd_httpc_close(e->http, httpc_closed, NULL);
	dd_http_server_shutdown(e->srv, 100, srv_closed, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	dd_http_server_free(e->srv);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	dd_signer_free(e->intel);
	dd_signer_free(e->stranger);
	free(e->jwks);
	free(e);
	return 0;
}

static json_t *claims(const char *mrtd)
{
	return json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "iss", ISS,
			 "iat", (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 300,
			 "attester_type", "TDX", "attester_tcb_status", "UpToDate",
			 "tdx_mrtd", mrtd, "tdx_report_data",
			 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
			 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

struct got {
	int calls;
	dd_ita_verdict v;
};

static void on_verdict(const dd_ita_verdict *v, json_t *c, void *ud)
{
	struct got *g = ud;

	(void)c;
	g->calls++;
	g->v = *v;
}

/* Signs cl with signer and runs it through a verifier built from opts. */
static dd_ita_verdict check(struct env *e, dd_signer *signer, json_t *cl,
			    const dd_pin_policy *pins, const char *url)
{
	dd_ita_verifier *v = NULL;
	dd_ita_verifier_opts o = {.jwks_url = url ? url : e->url, .issuer = ISS,
				  .pins = pins};
	struct got g = {0};
	dd_buf tok;

	dd_buf_init(&tok, 8192);
	assert_int_equal(dd_signer_sign(signer, cl, &tok), DD_OK);
	assert_int_equal(dd_ita_verifier_new(&e->loop, e->http, &o, &v), DD_OK);
	assert_int_equal(dd_ita_verify(v, dd_buf_str(&tok), tok.len, NOW, on_verdict, &g),
			 DD_OK);
	for (int i = 0; i < 10000 && g.calls == 0; i++)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_int_equal(g.calls, 1);
	dd_ita_verifier_free(v);
	dd_buf_free(&tok);
	json_decref(cl);
	return g.v;
}

static void genuine_token_is_accepted(void **state)
{
	struct env *e = *state;
	dd_ita_verdict v = check(e, e->intel, claims(MRTD), NULL, NULL);

	assert_int_equal(v.err, DD_OK);
	assert_int_equal(v.pin, DD_PIN_UNPINNED);
	assert_string_equal(v.claims.mrtd, MRTD);
	assert_string_equal(v.why, "");
}

static void pinning_enforced_and_warned(void **state)
{
	struct env *e = *state;
	dd_pin_policy p;
	char why[128];
	dd_ita_verdict v;

	assert_int_equal(dd_pin_policy_parse(MRTD, NULL, NULL, 1, &p, why, sizeof why), DD_OK);
	v = check(e, e->intel, claims(MRTD), &p, NULL);
	assert_int_equal(v.err, DD_OK);
	assert_int_equal(v.pin, DD_PIN_PASS);
	v = check(e, e->intel, claims(OTHER), &p, NULL);
	assert_int_equal(v.err, DD_ERR_UNAUTHORIZED);
	assert_int_equal(v.pin, DD_PIN_BAD_MRTD);
	assert_non_null(strstr(v.why, "allowlist"));
	p.enforce = 0;
	v = check(e, e->intel, claims(OTHER), &p, NULL);
	assert_int_equal(v.err, DD_OK);
	assert_int_equal(v.pin, DD_PIN_BAD_MRTD);
	assert_non_null(strstr(v.why, "allowlist"));
}

static void bad_tokens_are_refused_with_a_reason(void **state)
{
	struct env *e = *state;
	json_t *c;
	dd_ita_verdict v;

	c = claims(MRTD);
	json_object_set_new(c, "exp", json_integer(NOW - 3600));
	v = check(e, e->intel, c, NULL, NULL);
	assert_int_equal(v.err, DD_ERR_UNAUTHORIZED);
	assert_int_equal(v.jwt.reason, DD_JWT_EXPIRED);

	c = claims(MRTD);
	json_object_set_new(c, "iss", json_string("https://evil.example"));
	v = check(e, e->intel, c, NULL, NULL);
	assert_int_equal(v.jwt.reason, DD_JWT_BAD_ISSUER);

	c = claims(MRTD);
	json_object_set_new(c, "aud", json_string("someone-else"));
	v = check(e, e->intel, c, NULL, NULL);
	assert_int_equal(v.err, DD_ERR_UNAUTHORIZED);
	assert_int_equal(v.jwt.reason, DD_JWT_BAD_AUDIENCE);

	v = check(e, e->stranger, claims(MRTD), NULL, NULL);
	assert_int_equal(v.err, DD_ERR_UNAUTHORIZED);
	assert_int_equal(v.jwt.reason, DD_JWT_UNKNOWN_KID);

	c = claims(MRTD);
	json_object_set_new(c, "attester_type", json_string("SGX"));
	v = check(e, e->intel, c, NULL, NULL);
	assert_int_equal(v.err, DD_ERR_INVALID);
	assert_non_null(strstr(v.why, "TDX"));
}

static void unreachable_jwks_is_upstream(void **state)
{
	struct env *e = *state;
	dd_ita_verdict v = check(e, e->intel, claims(MRTD), NULL,
				 "http://127.0.0.1:1/certs");

	assert_int_equal(v.err, DD_ERR_UPSTREAM);
	assert_int_equal(v.jwt.reason, DD_JWT_KEYS_UNAVAILABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(genuine_token_is_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(pinning_enforced_and_warned, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_tokens_are_refused_with_a_reason,
						setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable_jwks_is_upstream, setup, teardown),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
