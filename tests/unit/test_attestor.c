/*
 * The attestor end to end on one loop: simulated quotes, the real ITA
 * client against the local issuer's ITA API, the real verifier against
 * its JWKS. Refusals: a wrong key, a wrong issuer, an enforced pin, and
 * a token replayed from another round (its report data is not ours).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/attestor.h"
#include "attest/local_ita.h"
#include "core/strutil.h"
#include "net/http.h"

/* 48 bytes of e1: an MRTD no simulated quote here carries. */
#define E1x8 "e1e1e1e1e1e1e1e1"
#define OTHER_MRTD E1x8 E1x8 E1x8 E1x8 E1x8 E1x8

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_httpc *http;
	dd_local_ita *local;
	char base[64], certs[96], replay_base[96];
	char replay_token[4096];
	/* round results */
	int rounds, first;
	dd_err_t err;
	char why[512];
};

static void on_round(dd_err_t err, int first, const char *why, void *ud)
{
	struct env *e = ud;

	e->rounds++;
	e->first = first;
	e->err = err;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static void spin_until(struct env *e, int rounds)
{
	for (int i = 0; i < 200000 && e->rounds < rounds; i++)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_int_equal(e->rounds, rounds);
}

/* An "ITA" that hands out the same token to everyone: a replay. */
static void replay(dd_http_req *req, void *ud)
{
	struct env *e = ud;
	char body[4200];
	int n = snprintf(body, sizeof body, "{\"token\":\"%s\"}", e->replay_token);

	dd_http_respond(req, 200, "application/json", body, (size_t)n);
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
	dd_http_route r = {.methods = DD_M_POST,
			   .pattern = "/replay/appraisal/v1/attest",
			   .handler = replay, .ud = e};

	uv_loop_init(&e->loop);
	assert_int_equal(dd_http_server_new(&e->loop, &lim, "ita", &e->srv), DD_OK);
	assert_int_equal(dd_http_server_listen(e->srv, "127.0.0.1", 0), DD_OK);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%u",
		 dd_http_server_port(e->srv));
	snprintf(e->certs, sizeof e->certs, "%s/certs", e->base);
	snprintf(e->replay_base, sizeof e->replay_base, "%s/replay", e->base);
	lo.issuer = e->base;
	assert_int_equal(dd_local_ita_new(&lo, &e->local), DD_OK);
	assert_int_equal(dd_local_ita_mount(e->local, e->srv), DD_OK);
	assert_int_equal(dd_http_server_route(e->srv, &r), DD_OK);
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
	dd_local_ita_free(e->local);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

struct spec {
	const char *base;
	const char *key;
	const char *issuer;
	const char *pin_mrtd;
	int enforce;
	uint64_t refresh_ms;
};

static dd_attestor *make(struct env *e, const struct spec *s)
{
	uint8_t mrtd[48];
	dd_quote_provider *prov = NULL;
	dd_attestor *a = NULL;
	dd_pin_policy pins;
	char why[128];
	int before;
	dd_ita_opts io = {.base_url = s->base ? s->base : e->base,
			  .api_key = s->key ? s->key : "local-key"};
	dd_ita_verifier_opts vo = {.jwks_url = e->certs,
				   .issuer = s->issuer ? s->issuer : e->base,
				   .pins = &pins};
	dd_attestor_opts ao = {.ita = &io, .verify = &vo,
			       .refresh_ms = s->refresh_ms};

	memset(mrtd, 0xd1, sizeof mrtd);
	assert_int_equal(dd_pin_policy_parse(s->pin_mrtd, NULL, NULL, s->enforce,
					     &pins, why, sizeof why), DD_OK);
	assert_int_equal(dd_quote_provider_sim(&e->loop, mrtd, &prov), DD_OK);
	assert_int_equal(dd_attestor_new(&e->loop, e->http, prov, &ao, &a), DD_OK);
	assert_null(dd_attestor_token(a));
	assert_null(dd_attestor_verdict(a));
	before = e->rounds;
	assert_int_equal(dd_attestor_start(a, on_round, e), DD_OK);
	/* The callback never runs before start returns. */
	assert_int_equal(e->rounds, before);
	return a;
}

static void boots_and_refreshes(void **state)
{
	struct env *e = *state;
	struct spec s = {.refresh_ms = 20};
	dd_attestor *a = make(e, &s);
	char first_token[4096];
	const dd_ita_verdict *v;

	spin_until(e, 1);
	assert_int_equal(e->err, DD_OK);
	assert_true(e->first);
	v = dd_attestor_verdict(a);
	assert_non_null(v);
	assert_int_equal(v->pin, DD_PIN_UNPINNED);
	for (int i = 0; i < 96; i++)
		assert_int_equal(v->claims.mrtd[i], i % 2 ? '1' : 'd');
	assert_int_equal(v->claims.mrtd[96], '\0');
	assert_non_null(dd_attestor_claims_json(a));
	assert_string_equal(dd_quote_provider_kind(dd_attestor_provider(a)),
			    "simulated");
	snprintf(first_token, sizeof first_token, "%s", dd_attestor_token(a));
	/* A later round mints over a fresh nonce: a different token. */
	spin_until(e, 2);
	assert_int_equal(e->err, DD_OK);
	assert_false(e->first);
	assert_string_not_equal(first_token, dd_attestor_token(a));
	dd_attestor_free(a);
}

static void boot_refusals_name_the_step(void **state)
{
	struct env *e = *state;
	struct spec wrong_key = {.key = "nope"};
	struct spec wrong_iss = {.issuer = "https://someone-else.example"};
	struct spec pinned = {.pin_mrtd = OTHER_MRTD, .enforce = 1};
	const struct spec *cases[] = {&wrong_key, &wrong_iss, &pinned};
	const char *steps[] = {"minting a token", "verifying the token",
			       "verifying the token"};
	const char *details[] = {"API key", "\"iss\" does not match", "allowlist"};

	for (int i = 0; i < 3; i++) {
		dd_attestor *a = make(e, cases[i]);

		spin_until(e, i + 1);
		assert_int_equal(e->err, DD_ERR_UNAUTHORIZED);
		assert_true(e->first);
		assert_non_null(strstr(e->why, steps[i]));
		assert_non_null(strstr(e->why, details[i]));
		assert_null(dd_attestor_token(a));
		dd_attestor_free(a);
	}
}

static void unenforced_pin_is_reported_not_refused(void **state)
{
	struct env *e = *state;
	struct spec s = {.pin_mrtd = OTHER_MRTD, .enforce = 0};
	dd_attestor *a = make(e, &s);

	spin_until(e, 1);
	assert_int_equal(e->err, DD_OK);
	assert_int_equal(dd_attestor_verdict(a)->pin, DD_PIN_BAD_MRTD);
	dd_attestor_free(a);
}

/*
 * A genuine, valid token from an earlier round is refused: it binds that
 * round's nonce, not ours.
 */
static void replayed_token_is_refused(void **state)
{
	struct env *e = *state;
	struct spec good = {0}, replaying = {.base = e->replay_base};
	dd_attestor *a = make(e, &good);

	spin_until(e, 1);
	assert_int_equal(e->err, DD_OK);
	snprintf(e->replay_token, sizeof e->replay_token, "%s",
		 dd_attestor_token(a));
	dd_attestor_free(a);
	a = make(e, &replaying);
	spin_until(e, 2);
	assert_int_equal(e->err, DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(e->why, "report_data is not the one"));
	assert_null(dd_attestor_token(a));
	dd_attestor_free(a);
}

/* Freed mid-round: nothing is reported, nothing leaks. */
static void free_during_a_round(void **state)
{
	struct env *e = *state;
	struct spec s = {0};

	for (int stop_after = 0; stop_after < 12; stop_after++) {
		dd_attestor *a = make(e, &s);

		for (int i = 0; i < stop_after && e->rounds == 0; i++)
			uv_run(&e->loop, UV_RUN_ONCE);
		if (e->rounds != 0) {
			e->rounds = 0;
			dd_attestor_free(a);
			continue;
		}
		dd_attestor_free(a);
		uv_run(&e->loop, UV_RUN_NOWAIT);
		assert_int_equal(e->rounds, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(boots_and_refreshes, setup, teardown),
		cmocka_unit_test_setup_teardown(boot_refusals_name_the_step, setup,
						teardown),
		cmocka_unit_test_setup_teardown(unenforced_pin_is_reported_not_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(replayed_token_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(free_during_a_round, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
