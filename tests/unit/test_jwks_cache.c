/*
 * test_jwks_cache.c: the async JWKS cache (src/auth/jwks_cache.c) with
 * the real HTTP client against a tiny JWKS server on the test's own
 * libuv loop: first fetch, coalescing, rotation, refresh throttling,
 * failures that keep the old keys, oversized and invalid documents,
 * background refresh, verification through the cache, cancel and free.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <uv.h>

#include "auth/jwks_cache.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "jwks_srv.h"
#include "jwt_helper.h"

#define ISS "https://issuer.example"
#define NOW 1750000000LL

/* ---- keys ---- */

static EVP_PKEY *k1, *k2, *k3, *rsa;

static int group_setup(void **state)
{
	(void)state;
	k1 = th_ec("P-256");
	k2 = th_ec("P-256");
	k3 = th_ec("P-384");
	rsa = th_rsa(2048);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	EVP_PKEY_free(rsa);
	return 0;
}

/* A JWKS of up to three keys, NULL-terminated pairs (key, kid). */
static char *jwks_of(EVP_PKEY *a, const char *ka, EVP_PKEY *b,
		     const char *kb, EVP_PKEY *c, const char *kc)
{
	json_t *arr = json_array();

	if (a != NULL)
		json_array_append_new(arr, th_jwk(a, ka, NULL));
	if (b != NULL)
		json_array_append_new(arr, th_jwk(b, kb, NULL));
	if (c != NULL)
		json_array_append_new(arr, th_jwk(c, kc, NULL));
	return th_jwks(arr);
}

/* ---- fixture ---- */

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	jsrv s;
	dd_httpc *http;
	dd_jwks_cache *cache;
	int http_closed;
	char url[128];
} fx;

typedef struct ans {
	int called;
	dd_err_t err;
	char kid[64];
	/* verify */
	dd_jwt_reason reason;
	char sub[64];
	/* behaviour inside the callback */
	dd_jwks_cache **free_me;
	dd_jwks_wait **cancel_me;
} ans;

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void on_http_closed(dd_httpc *c, void *ud)
{
	(void)c;
	((fx *)ud)->http_closed = 1;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	dd_httpc_opts ho = {.timeout_ms = 5000};

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	jsrv_listen(&f->loop, &f->s, 0);
	jsrv_serve(&f->s, jwks_of(k1, "k1", NULL, NULL, NULL, NULL));
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/jwks",
		 f->s.port);
	assert_int_equal(dd_httpc_new(&f->loop, &ho, &f->http), DD_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	dd_jwks_cache_free(f->cache);
	dd_httpc_close(f->http, on_http_closed, f);
	jsrv_stop(&f->s);
	uv_close((uv_handle_t *)&f->tick, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_true(f->http_closed);
	assert_int_equal(f->s.open, 0);
	dd_httpc_free(f->http);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f->s.body);
	free(f);
	return 0;
}

static void cache(fx *f, uint64_t refresh, uint64_t retry, uint64_t max_age)
{
	dd_jwks_cache_opts o = {.url = f->url, .refresh_interval_ms = refresh,
				.retry_interval_ms = retry,
				.max_age_ms = max_age, .timeout_ms = 3000};

	assert_null(f->cache);
	assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &o, &f->cache),
			 DD_OK);
}

static void run_until(fx *f, const int *counter, int n)
{
	uint64_t deadline = dd_now_ms() + 20000;

	uv_timer_start(&f->tick, on_tick, 10, 10);
	while (*counter < n) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&f->tick);
	uv_update_time(&f->loop);
}

static void run_for(fx *f, uint64_t ms)
{
	uint64_t end = dd_now_ms() + ms;

	uv_timer_start(&f->tick, on_tick, 5, 5);
	while (dd_now_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->tick);
	uv_update_time(&f->loop);
}

static void on_key(dd_err_t err, const dd_jwk *key, void *ud)
{
	ans *a = ud;

	a->called++;
	a->err = err;
	a->kid[0] = '\0';
	assert_true((err == DD_OK) == (key != NULL));
	if (key != NULL)
		snprintf(a->kid, sizeof a->kid, "%s", dd_jwk_kid(key));
	if (a->cancel_me != NULL && *a->cancel_me != NULL) {
		dd_jwks_cache_cancel(*a->cancel_me);
		*a->cancel_me = NULL;
	}
	if (a->free_me != NULL) {
		dd_jwks_cache_free(*a->free_me);
		*a->free_me = NULL;
	}
}

static void on_never(dd_err_t err, const dd_jwk *key, void *ud)
{
	(void)err;
	(void)key;
	(void)ud;
	fail_msg("callback of a cancelled lookup ran");
}

/* Starts a lookup; returns whether it was answered at once. */
static int get(fx *f, const char *kid, ans *a)
{
	dd_jwks_wait *w = (dd_jwks_wait *)&w;

	memset(a, 0, sizeof *a);
	assert_int_equal(dd_jwks_cache_get(f->cache, kid, strlen(kid), on_key,
					   a, &w), DD_OK);
	assert_true((a->called == 1) == (w == NULL));
	return a->called;
}

/* A lookup that must be answered at once with err. */
static void get_now(fx *f, const char *kid, dd_err_t err)
{
	ans a;

	assert_true(get(f, kid, &a));
	if (a.err != err)
		fail_msg("%s: want %s, got %s", kid, dd_errname(err),
			 dd_errname(a.err));
}

/* A lookup that needs a fetch, then answers err. */
static void get_fetch(fx *f, const char *kid, dd_err_t err)
{
	ans a;

	assert_false(get(f, kid, &a));
	run_until(f, &a.called, 1);
	if (a.err != err)
		fail_msg("%s: want %s, got %s", kid, dd_errname(err),
			 dd_errname(a.err));
}

static dd_jwks_cache_stats stats(fx *f)
{
	dd_jwks_cache_stats st;

	dd_jwks_cache_stats_get(f->cache, &st);
	return st;
}

/* ---- tests ---- */

static void test_first_fetch_then_hits(void **state)
{
	fx *f = *state;
	ans a;

	cache(f, 0, 0, 0);
	assert_null(dd_jwks_cache_keys(f->cache));
	assert_int_equal(stats(f).fetches, 0);
	assert_false(get(f, "k1", &a));
	assert_int_equal(stats(f).waiting, 1);
	run_until(f, &a.called, 1);
	assert_int_equal(a.err, DD_OK);
	assert_string_equal(a.kid, "k1");
	assert_int_equal(f->s.hits, 1);
	/* From now on, answers come from the cache without a fetch. */
	for (int i = 0; i < 20; i++)
		get_now(f, "k1", DD_OK);
	/* An unknown kid right after a fetch is throttled, not fetched. */
	get_now(f, "k9", DD_ERR_NOT_FOUND);
	run_for(f, 20);
	assert_int_equal(f->s.hits, 1);
	assert_int_equal(stats(f).fetches, 1);
	assert_int_equal(stats(f).failures, 0);
	assert_int_equal(stats(f).keys, 1);
	assert_int_equal(stats(f).waiting, 0);
	assert_int_equal(stats(f).last_err, DD_OK);
	assert_non_null(dd_jwks_cache_keys(f->cache));
}

static void test_coalescing(void **state)
{
	fx *f = *state;
	ans a[12];
	int total = 0;

	cache(f, 0, 0, 0);
	for (int i = 0; i < 12; i++)
		assert_false(get(f, i % 2 ? "k1" : "nope", &a[i]));
	assert_int_equal(stats(f).waiting, 12);
	for (int i = 0; i < 12; i++)
		run_until(f, &a[i].called, 1);
	for (int i = 0; i < 12; i++) {
		total += a[i].called;
		assert_int_equal(a[i].err, i % 2 ? DD_OK : DD_ERR_NOT_FOUND);
	}
	assert_int_equal(total, 12);
	assert_int_equal(f->s.hits, 1);
	assert_int_equal(stats(f).fetches, 1);
}

static void test_rotation(void **state)
{
	fx *f = *state;

	cache(f, 1000, 1000, 0);
	get_fetch(f, "k1", DD_OK);
	/* The issuer adds k2: too soon after our fetch, so not yet. */
	jsrv_serve(&f->s, jwks_of(k1, "k1", k2, "k2", NULL, NULL));
	get_now(f, "k2", DD_ERR_NOT_FOUND);
	assert_int_equal(f->s.hits, 1);
	/* After the interval, the first token naming k2 refetches once. */
	run_for(f, 1010);
	get_fetch(f, "k2", DD_OK);
	assert_int_equal(f->s.hits, 2);
	get_now(f, "k2", DD_OK);
	get_now(f, "k1", DD_OK);
	assert_int_equal(f->s.hits, 2);
	assert_int_equal(stats(f).keys, 2);
}

static void test_throttled_spray(void **state)
{
	fx *f = *state;
	uint64_t start, elapsed;
	char kid[32];
	ans a;
	int n = 0, pending = 0;

	cache(f, 300, 300, 0);
	get_fetch(f, "k1", DD_OK);
	/* Random kids as fast as we can for about a second. */
	start = dd_now_ms();
	while (dd_now_ms() - start < 1000) {
		snprintf(kid, sizeof kid, "spray-%d", n++);
		if (!get(f, kid, &a))
			pending++;
		run_for(f, 3);
	}
	elapsed = dd_now_ms() - start;
	run_for(f, 50);
	/* One fetch up front, then at most one per 300 ms interval. */
	assert_true(n > 100);
	assert_true(f->s.hits >= 2);
	assert_true((uint64_t)f->s.hits <= 2 + elapsed / 300);
	assert_int_equal(stats(f).fetches, (uint64_t)f->s.hits);
	(void)pending;
	/* k1 was served all along. */
	get_now(f, "k1", DD_OK);
}

static void test_server_down_keeps_keys(void **state)
{
	fx *f = *state;

	cache(f, 100, 100, 0);
	get_fetch(f, "k1", DD_OK);
	/* 5xx: the refresh fails, the old set stays. */
	f->s.mode = JSRV_STATUS;
	f->s.status = 503;
	run_for(f, 110);
	get_fetch(f, "k2", DD_ERR_UPSTREAM);
	get_now(f, "k1", DD_OK);
	assert_int_equal(stats(f).failures, 1);
	assert_int_equal(stats(f).last_err, DD_ERR_UPSTREAM);
	/* Connection dropped without an answer; then nobody listening. */
	f->s.mode = JSRV_DROP;
	run_for(f, 110);
	get_fetch(f, "k2", DD_ERR_UPSTREAM);
	jsrv_unlisten(&f->s);
	run_for(f, 110);
	get_fetch(f, "k2", DD_ERR_UPSTREAM);
	get_now(f, "k1", DD_OK);
	assert_int_equal(stats(f).keys, 1);
	assert_int_equal(stats(f).failures, 3);
	/* The issuer comes back with a rotated set. */
	jsrv_listen(&f->loop, &f->s, f->s.port);
	jsrv_serve(&f->s, jwks_of(k2, "k2", NULL, NULL, NULL, NULL));
	run_for(f, 110);
	get_fetch(f, "k2", DD_OK);
	assert_int_equal(stats(f).last_err, DD_OK);
	get_now(f, "k2", DD_OK);
	assert_int_equal(stats(f).keys, 1);
	/* A good fetch replaces the whole set: k1 is gone. */
	assert_null(dd_jwks_find(dd_jwks_cache_keys(f->cache), "k1", 2));
}

/* Right after a failed fetch, misses report it instead of refetching. */
static void test_failure_throttled(void **state)
{
	fx *f = *state;

	cache(f, 0, 0, 0);
	f->s.mode = JSRV_STATUS;
	f->s.status = 503;
	get_fetch(f, "k1", DD_ERR_UPSTREAM);
	get_now(f, "k1", DD_ERR_UPSTREAM);
	get_now(f, "k2", DD_ERR_UPSTREAM);
	assert_int_equal(f->s.hits, 1);
	assert_null(dd_jwks_cache_keys(f->cache));
}

static void test_timeout(void **state)
{
	fx *f = *state;
	dd_jwks_cache_opts o = {.url = f->url, .timeout_ms = 200};

	assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &o, &f->cache),
			 DD_OK);
	f->s.mode = JSRV_SILENT;
	get_fetch(f, "k1", DD_ERR_TIMEOUT);
	get_now(f, "k1", DD_ERR_TIMEOUT);
}

static void test_bad_documents(void **state)
{
	fx *f = *state;
	json_t *arr;
	EVP_PKEY *weak;

	cache(f, 30, 30, 0);
	/* Oversized with nothing cached yet. */
	f->s.mode = JSRV_BIG;
	get_fetch(f, "k1", DD_ERR_TOO_LARGE);
	assert_null(dd_jwks_cache_keys(f->cache));
	jsrv_serve(&f->s, jwks_of(k1, "k1", NULL, NULL, NULL, NULL));
	run_for(f, 40);
	get_fetch(f, "k1", DD_OK);
	/* Each of these fails the refresh and keeps k1. */
	f->s.mode = JSRV_BIG;
	run_for(f, 40);
	get_fetch(f, "k2", DD_ERR_TOO_LARGE);
	jsrv_serve(&f->s, strdup("{\"keys\":[{\"kty\":\"EC\"}"));
	run_for(f, 40);
	get_fetch(f, "k2", DD_ERR_INVALID);
	jsrv_serve(&f->s, strdup("<html>rate limited</html>"));
	run_for(f, 40);
	get_fetch(f, "k2", DD_ERR_INVALID);
	weak = th_rsa(1024);
	arr = json_array();
	json_array_append_new(arr, th_jwk(k2, "k2", NULL));
	json_array_append_new(arr, th_jwk(weak, "weak", NULL));
	jsrv_serve(&f->s, th_jwks(arr));
	EVP_PKEY_free(weak);
	run_for(f, 40);
	get_fetch(f, "k2", DD_ERR_INVALID);
	f->s.mode = JSRV_STATUS;
	f->s.status = 404;
	run_for(f, 40);
	get_fetch(f, "k2", DD_ERR_UPSTREAM);
	get_now(f, "k1", DD_OK);
	assert_int_equal(stats(f).failures, 6);
	assert_int_equal(stats(f).keys, 1);
}

static void test_small_cap(void **state)
{
	fx *f = *state;
	dd_jwks_cache_opts o = {.url = f->url, .max_bytes = 100};

	assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &o, &f->cache),
			 DD_OK);
	get_fetch(f, "k1", DD_ERR_TOO_LARGE);
}

static void test_background_refresh(void **state)
{
	fx *f = *state;
	uint64_t deadline;

	cache(f, 1000, 1000, 1100);
	get_fetch(f, "k1", DD_OK);
	/* The issuer withdraws k1. */
	jsrv_serve(&f->s, jwks_of(k2, "k2", NULL, NULL, NULL, NULL));
	run_for(f, 60);
	get_now(f, "k1", DD_OK);
	assert_int_equal(f->s.hits, 1);
	/* Stale: still answered at once, while one refresh runs. */
	run_for(f, 1100);
	get_now(f, "k1", DD_OK);
	get_now(f, "k1", DD_OK);
	deadline = dd_now_ms() + 5000;
	while (stats(f).keys != 1 ||
	       dd_jwks_find(dd_jwks_cache_keys(f->cache), "k2", 2) == NULL) {
		assert_true(dd_now_ms() < deadline);
		run_for(f, 5);
	}
	assert_int_equal(f->s.hits, 2);
	get_now(f, "k1", DD_ERR_NOT_FOUND);
	get_now(f, "k2", DD_OK);
}

typedef struct vans {
	int called;
	dd_err_t err;
	dd_jwt_reason reason;
	char sub[64];
} vans;

static void on_verify(dd_err_t err, json_t *claims, const dd_jwt_result *res,
		      void *ud)
{
	vans *v = ud;
	const char *sub;

	v->called++;
	v->err = err;
	v->reason = res->reason;
	assert_int_equal(err == DD_OK, claims != NULL);
	if (claims != NULL) {
		sub = json_string_value(json_object_get(claims, "sub"));
		snprintf(v->sub, sizeof v->sub, "%s", sub ? sub : "");
	}
}

/* Runs a verification; returns whether it was answered at once. */
static int verify(fx *f, const char *tok, vans *v)
{
	static const dd_jwt_policy pol = {.algs = DD_JWA_ALL, .issuer = ISS,
					  .audience = "dd-agent",
					  .leeway_s = 60, .max_age_s = 900};
	dd_jwks_wait *w = (dd_jwks_wait *)&w;

	memset(v, 0, sizeof *v);
	assert_int_equal(dd_jwks_cache_verify(f->cache, tok, strlen(tok), &pol,
					      NOW, on_verify, v, &w), DD_OK);
	assert_true((v->called == 1) == (w == NULL));
	return v->called;
}

static void test_verify(void **state)
{
	fx *f = *state;
	char *claims = th_fmt("{\"iss\":\"" ISS "\",\"aud\":\"dd-agent\","
			      "\"sub\":\"s1\",\"iat\":%lld,\"exp\":%lld}",
			      NOW, NOW + 300), *old, *tok;
	vans v;

	cache(f, 0, 0, 0);
	jsrv_serve(&f->s, jwks_of(k1, "k1", rsa, "r1", NULL, NULL));
	/* The first verification waits for the fetch. */
	tok = th_token(rsa, "RS256", "r1", claims);
	assert_false(verify(f, tok, &v));
	run_until(f, &v.called, 1);
	assert_int_equal(v.err, DD_OK);
	assert_int_equal(v.reason, DD_JWT_OK);
	assert_string_equal(v.sub, "s1");
	free(tok);
	/* Later ones are answered at once. */
	tok = th_token(k1, "ES256", "k1", claims);
	assert_true(verify(f, tok, &v));
	assert_int_equal(v.err, DD_OK);
	free(tok);
	/* Refusals are verdicts too, also before any key is needed. */
	assert_true(verify(f, "not.a.jwt", &v));
	assert_int_equal(v.reason, DD_JWT_MALFORMED);
	assert_int_equal(v.err, DD_ERR_INVALID);
	old = th_fmt("{\"iss\":\"" ISS "\",\"aud\":\"dd-agent\","
		     "\"iat\":%lld,\"exp\":%lld}", NOW - 600, NOW - 100);
	tok = th_token(k1, "ES256", "k1", old);
	assert_true(verify(f, tok, &v));
	assert_int_equal(v.reason, DD_JWT_EXPIRED);
	assert_int_equal(v.err, DD_ERR_UNAUTHORIZED);
	free(tok);
	free(old);
	tok = th_token(k2, "ES256", "k1", claims);
	assert_true(verify(f, tok, &v));
	assert_int_equal(v.reason, DD_JWT_BAD_SIGNATURE);
	free(tok);
	/* Unknown kid inside the interval: answered, no fetch. */
	tok = th_token(k2, "ES256", "k2", claims);
	assert_true(verify(f, tok, &v));
	assert_int_equal(v.reason, DD_JWT_UNKNOWN_KID);
	assert_int_equal(v.err, DD_ERR_NOT_FOUND);
	assert_int_equal(f->s.hits, 1);
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;

	/* Issuer down: the kid cannot be looked up -> keys unavailable. */
	cache(f, 100, 100, 0);
	f->s.mode = JSRV_STATUS;
	f->s.status = 500;
	assert_false(verify(f, tok, &v));
	run_until(f, &v.called, 1);
	assert_int_equal(v.reason, DD_JWT_KEYS_UNAVAILABLE);
	assert_int_equal(v.err, DD_ERR_UPSTREAM);
	/* It comes back with k2: the next token naming k2 fetches it. */
	jsrv_serve(&f->s, jwks_of(k1, "k1", k2, "k2", NULL, NULL));
	run_for(f, 110);
	assert_false(verify(f, tok, &v));
	run_until(f, &v.called, 1);
	assert_int_equal(v.err, DD_OK);
	assert_string_equal(v.sub, "s1");
	free(tok);
	free(claims);
}

static void test_cancel_and_free(void **state)
{
	fx *f = *state;
	dd_jwks_wait *w1 = NULL, *w2 = NULL;
	ans a, b;

	cache(f, 0, 0, 0);
	/* A cancelled lookup never answers; the fetch still fills the set. */
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_never, NULL,
					   &w1), DD_OK);
	assert_non_null(w1);
	assert_false(get(f, "k1", &a));
	dd_jwks_cache_cancel(w1);
	dd_jwks_cache_cancel(NULL);
	assert_int_equal(stats(f).waiting, 1);
	run_until(f, &a.called, 1);
	assert_int_equal(a.err, DD_OK);
	assert_int_equal(stats(f).keys, 1);
	/* A callback may cancel another waiter of the same fetch. */
	f->s.mode = JSRV_SILENT;
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;
	cache(f, 0, 0, 0);
	f->s.mode = JSRV_OK;
	memset(&a, 0, sizeof a);
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_key, &a,
					   &w1), DD_OK);
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_never, NULL,
					   &w2), DD_OK);
	/* Waiters are answered in order: w2 would come after a. */
	a.cancel_me = &w2;
	(void)w1;
	run_until(f, &a.called, 1);
	assert_null(w2);
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;

	/* Freeing with waiters answers them CANCELLED, at once. */
	cache(f, 0, 0, 0);
	f->s.mode = JSRV_SILENT;
	assert_false(get(f, "k1", &a));
	assert_false(get(f, "k2", &b));
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;
	assert_int_equal(a.called, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	assert_int_equal(b.called, 1);
	assert_int_equal(b.err, DD_ERR_CANCELLED);
	run_for(f, 20);

	/* A callback may free the cache; the others are then cancelled. */
	cache(f, 0, 0, 0);
	f->s.mode = JSRV_OK;
	assert_false(get(f, "k1", &a));
	assert_false(get(f, "k1", &b));
	a.free_me = &f->cache; /* a is answered first */
	run_until(f, &a.called, 1);
	assert_null(f->cache);
	assert_int_equal(a.err, DD_OK);
	assert_int_equal(b.called, 1);
	assert_int_equal(b.err, DD_ERR_CANCELLED);

	/* ... and so may a callback that runs before get() returns. */
	cache(f, 0, 0, 0);
	get_fetch(f, "k1", DD_OK);
	memset(&a, 0, sizeof a);
	a.free_me = &f->cache;
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_key, &a,
					   NULL), DD_OK);
	assert_int_equal(a.called, 1);
	assert_null(f->cache);
}

static void test_limits(void **state)
{
	fx *f = *state;
	dd_jwks_cache_opts o = {.url = f->url, .max_waiters = 2};
	char big[DD_JWK_MAX_KID + 2];
	ans a, b, c;

	assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &o, &f->cache),
			 DD_OK);
	f->s.mode = JSRV_SILENT;
	assert_false(get(f, "k1", &a));
	assert_false(get(f, "k1", &b));
	memset(&c, 0, sizeof c);
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_key, &c,
					   NULL), DD_ERR_BUSY);
	assert_int_equal(dd_jwks_cache_get(f->cache, "", 0, on_key, &c, NULL),
			 DD_ERR_INVALID);
	memset(big, 'k', sizeof big);
	assert_int_equal(dd_jwks_cache_get(f->cache, big, sizeof big, on_key,
					   &c, NULL), DD_ERR_INVALID);
	assert_int_equal(c.called, 0);
	/* Configuration errors. */
	{
		dd_jwks_cache *x = NULL;
		dd_jwks_cache_opts bad = {.url = "ftp://example.com/jwks"};

		assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &bad, &x),
				 DD_ERR_CONFIG);
		bad.url = NULL;
		assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, &bad, &x),
				 DD_ERR_CONFIG);
		assert_int_equal(dd_jwks_cache_new(&f->loop, f->http, NULL, &x),
				 DD_ERR_CONFIG);
		assert_null(x);
		dd_jwks_cache_free(NULL);
	}
	/* a and b live on this stack: answer them before returning. */
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	assert_int_equal(b.err, DD_ERR_CANCELLED);
}

/* The HTTP client shutting down under a waiting lookup. */
static void test_http_closed(void **state)
{
	fx *f = *state;
	ans a;

	cache(f, 0, 0, 0);
	f->s.mode = JSRV_SILENT;
	assert_false(get(f, "k1", &a));
	dd_httpc_close(f->http, on_http_closed, f);
	assert_int_equal(a.called, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	memset(&a, 0, sizeof a);
	assert_int_equal(dd_jwks_cache_get(f->cache, "k1", 2, on_key, &a,
					   NULL), DD_OK);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	run_for(f, 50);
	/* teardown closes it again: give it a fresh one. */
	assert_true(f->http_closed);
	dd_jwks_cache_free(f->cache);
	f->cache = NULL;
	dd_httpc_free(f->http);
	f->http_closed = 0;
	assert_int_equal(dd_httpc_new(&f->loop, NULL, &f->http), DD_OK);
}

/* R17: fail every allocation of a cold lookup in turn, cleanly. */
static void test_torture(void **state)
{
	fx *f = *state;
	unsigned long n, used;
	dd_err_t rc;
	ans a;

	for (n = 1;; n++) {
		dd_jwks_cache_opts o = {.url = f->url};

		memset(&a, 0, sizeof a);
		dd_alloc_fail_at(n);
		rc = dd_jwks_cache_new(&f->loop, f->http, &o, &f->cache);
		if (rc == DD_OK)
			rc = dd_jwks_cache_get(f->cache, "k1", 2, on_key, &a,
					       NULL);
		if (rc == DD_OK)
			run_until(f, &a.called, 1);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		/* jansson may report an allocation failure as bad JSON. */
		if (rc == DD_OK && a.err != DD_OK && a.err != DD_ERR_NOMEM &&
		    a.err != DD_ERR_INVALID && a.err != DD_ERR_UPSTREAM)
			fail_msg("n=%lu: %s", n, dd_errname(a.err));
		dd_jwks_cache_free(f->cache);
		f->cache = NULL;
		if (used < n)
			break;
	}
	assert_int_equal(a.err, DD_OK);
	run_for(f, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_fetch_then_hits,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttled_spray, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server_down_keeps_keys,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_throttled, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_documents, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_small_cap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_background_refresh, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_free, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_closed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torture, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	dd_json_setup();
	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
