/*
 * test_oidc.c: the GitHub Actions OIDC verifier (src/auth/oidc.c) with the
 * real JWKS cache and HTTP client against a JWKS served on the test's own
 * loop. Tokens come from python3-jwt (tests/data/oidc, see its README),
 * each with the verdict it must get, for an org and for a repository
 * principal; the tests around them pin the why, the replay record, key
 * rotation, an unreachable JWKS, the bearer forms, cancellation and
 * allocation failure. "now" is always the vectors' fixed instant.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "auth/oidc.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "jwks_srv.h"

/* ---- the vectors ---- */

static json_t *doc;
static int64_t NOW;
static dd_principal org, repo;

static const json_t *vcase(const char *name)
{
	const json_t *c;
	size_t i;

	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		if (strcmp(json_string_value(json_object_get(c, "name")),
			   name) == 0)
			return c;
	}
	fail_msg("no vector %s", name);
	return NULL;
}

static const char *token(const char *name)
{
	return json_string_value(json_object_get(vcase(name), "token"));
}

static char *jwks_text(const char *which)
{
	char *s = json_dumps(json_object_get(doc, which), JSON_COMPACT);
	char *copy;

	/* jsrv frees its body with free(); jansson allocates with dd_malloc. */
	assert_non_null(s);
	copy = strdup(s);
	assert_non_null(copy);
	dd_free(s);
	return copy;
}

static int group_setup(void **state)
{
	const char *dir = getenv("DD_TEST_DATA");
	char path[1024];
	json_error_t je;
	const json_t *o;

	(void)state;
	snprintf(path, sizeof path, "%s/oidc/vectors.json",
		 dir != NULL ? dir : "tests/data");
	doc = json_load_file(path, 0, &je);
	if (doc == NULL)
		fail_msg("%s: %s", path, je.text);
	NOW = json_integer_value(json_object_get(doc, "now"));
	o = json_object_get(doc, "owner");
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_ORG,
		json_string_value(json_object_get(o, "name")),
		(uint64_t)json_integer_value(json_object_get(o, "id")), &org,
		NULL, 0), DD_OK);
	o = json_object_get(doc, "repo");
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_REPO,
		json_string_value(json_object_get(o, "name")),
		(uint64_t)json_integer_value(json_object_get(o, "id")), &repo,
		NULL, 0), DD_OK);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	json_decref(doc);
	return 0;
}

/* ---- fixture ---- */

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	jsrv s;
	dd_httpc *http;
	dd_oidc *oidc;
	int http_closed;
	char url[128];
	char auth[DD_JWT_MAX_LEN + 64];
} fx;

typedef struct got {
	int calls;
	dd_oidc_result r;
	dd_oidc **free_me;       /* freed from inside the callback */
} got;

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void on_http_closed(dd_httpc *c, void *ud)
{
	(void)c;
	((fx *)ud)->http_closed = 1;
}

static void on_result(const dd_oidc_result *res, void *ud)
{
	got *g = ud;

	g->calls++;
	g->r = *res;
	if (g->free_me != NULL) {
		dd_oidc_free(*g->free_me);
		*g->free_me = NULL;
	}
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	dd_httpc_opts ho = {.timeout_ms = 5000};

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	jsrv_listen(&f->loop, &f->s, 0);
	jsrv_serve(&f->s, jwks_text("jwks"));
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/jwks",
		 f->s.port);
	assert_int_equal(dd_httpc_new(&f->loop, &ho, &f->http), DD_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	dd_oidc_free(f->oidc);
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

static void run_until(fx *f, const int *counter, int n)
{
	uint64_t deadline = dd_now_ms() + 20000;

	uv_timer_start(&f->tick, on_tick, 10, 10);
	while (*counter < n) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&f->tick);
}

/* Lets the loop's clock move past a JWKS refresh interval of ms. */
static void advance(fx *f, uint64_t ms)
{
	uint64_t end = uv_now(&f->loop) + ms;

	uv_timer_start(&f->tick, on_tick, 1, 1);
	while (uv_now(&f->loop) <= end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->tick);
}

/* A verifier for the fixture's JWKS; opts may override the defaults. */
static void verifier(fx *f, dd_oidc_opts *o)
{
	dd_oidc_opts def = {0};

	if (o == NULL)
		o = &def;
	if (o->jwks_url == NULL)
		o->jwks_url = f->url;
	dd_oidc_free(f->oidc);
	f->oidc = NULL;
	assert_int_equal(dd_oidc_new(&f->loop, f->http, o, &f->oidc), DD_OK);
}

static const char *bearer(fx *f, const char *name)
{
	snprintf(f->auth, sizeof f->auth, "Bearer %s", token(name));
	return f->auth;
}

/* One verification to the end; *sync: answered before verify returned. */
static dd_oidc_result check_as(fx *f, const char *authz,
			       const dd_principal *acc, size_t n, int64_t now,
			       int *sync)
{
	got g = {0};

	assert_int_equal(dd_oidc_verify(f->oidc, authz, acc, n, now,
					on_result, &g), DD_OK);
	if (sync != NULL)
		*sync = g.calls == 1;
	run_until(f, &g.calls, 1);
	assert_int_equal(g.calls, 1);
	return g.r;
}

static dd_oidc_result check(fx *f, const char *name, const dd_principal *p)
{
	return check_as(f, bearer(f, name), p, 1, NOW, NULL);
}

static void want(const dd_oidc_result *r, dd_oidc_status st,
		 const char *why_part, const char *ctx)
{
	if (r->status != st)
		fail_msg("%s: want %s, got %s (%s)", ctx,
			 dd_oidc_status_name(st),
			 dd_oidc_status_name(r->status), r->why);
	if (why_part != NULL && strstr(r->why, why_part) == NULL)
		fail_msg("%s: why \"%s\" lacks \"%s\"", ctx, r->why, why_part);
	if ((st == DD_OIDC_OK) != (r->why[0] == '\0'))
		fail_msg("%s: why \"%s\" for %s", ctx, r->why,
			 dd_oidc_status_name(st));
}

/* ---- the vectors, both principal kinds ---- */

static dd_oidc_status status_by_name(const char *s)
{
	for (int i = 0; i <= DD_OIDC_INTERNAL; i++)
		if (strcmp(dd_oidc_status_name(i), s) == 0)
			return i;
	fail_msg("unknown status %s", s);
	return DD_OIDC_INTERNAL;
}

/* An identity claim too long for its field comes out empty, never cut. */
static void same_str(const json_t *claims, const char *key, const char *have,
		     size_t cap, const char *ctx)
{
	const char *w = json_string_value(json_object_get(claims, key));

	if (w == NULL || strlen(w) >= cap)
		w = "";
	if (strcmp(w, have) != 0)
		fail_msg("%s: %s is \"%s\", want \"%s\"", ctx, key, have, w);
}

static void run_table(fx *f, const dd_principal *p, const char *field)
{
	const json_t *c;
	size_t i;

	jsrv_serve(&f->s, jwks_text("jwks_rotated"));
	verifier(f, NULL);
	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		const char *name = json_string_value(json_object_get(c,
								     "name"));
		const char *tok = json_string_value(json_object_get(c,
								    "token"));
		const char *reason = json_string_value(
			json_object_get(c, "reason"));
		const json_t *cl = json_object_get(c, "claims");
		dd_oidc_status st = status_by_name(json_string_value(
			json_object_get(c, field)));
		dd_oidc_result r = check(f, name, p);

		want(&r, st, NULL, name);
		if (reason != NULL && strcmp(dd_jwt_reason_name(r.jwt.reason),
					     reason) != 0)
			fail_msg("%s: want reason %s, got %s (%s)", name,
				 reason, dd_jwt_reason_name(r.jwt.reason),
				 r.jwt.why);
		/* Never token bytes: not even the signature's tail. */
		assert_null(strstr(r.why, tok + strlen(tok) - 16));
		if (r.status != DD_OIDC_OK)
			continue;
		assert_int_equal(r.claims.matched, 0);
#define SAME(key) same_str(cl, #key, r.claims.key, sizeof r.claims.key, name)
		SAME(jti);
		SAME(repository);
		SAME(repository_owner);
		SAME(ref);
		SAME(workflow);
		SAME(actor);
		if (strcmp(name, "long_sub_utf8") != 0)
			SAME(sub);
#undef SAME
		assert_int_equal(r.claims.iat, json_integer_value(
			json_object_get(cl, "iat")));
		assert_int_equal(r.claims.exp, json_integer_value(
			json_object_get(cl, "exp")));
	}
}

static void test_vectors_org(void **state)
{
	run_table(*state, &org, "expect");
}

static void test_vectors_repo(void **state)
{
	run_table(*state, &repo, "expect_repo");
}

/* ---- what a good token says ---- */

static void test_good_claims(void **state)
{
	fx *f = *state;
	dd_principal other;
	dd_principal acc[2];
	dd_oidc_result r;

	verifier(f, NULL);
	/* GitHub's strings: "74", "65". */
	r = check(f, "good", &org);
	want(&r, DD_OIDC_OK, NULL, "good");
	assert_int_equal(dd_oidc_http_status(r.status), 200);
	assert_int_equal(r.jwt.reason, DD_JWT_OK);
	assert_string_equal(r.claims.repository, "octo-org/octo-repo");
	assert_int_equal(r.claims.repository_id, 74);
	assert_string_equal(r.claims.repository_owner, "octo-org");
	assert_int_equal(r.claims.repository_owner_id, 65);
	assert_string_equal(r.claims.sub,
			    "repo:octo-org/octo-repo:ref:refs/heads/main");
	assert_string_equal(r.claims.ref, "refs/heads/main");
	assert_string_equal(r.claims.workflow, "Deploy");
	assert_string_equal(r.claims.actor, "octocat");
	assert_int_equal(r.claims.iat, NOW - 30);
	assert_int_equal(r.claims.exp, NOW - 30 + 21600);
	/* The same ids as JSON numbers; the first match wins. */
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_ORG, "octo-org2", 65,
					   &other, NULL, 0), DD_OK);
	acc[0] = other;
	acc[1] = repo;
	r = check_as(f, bearer(f, "good_int_ids"), acc, 2, NOW, NULL);
	want(&r, DD_OIDC_OK, NULL, "good_int_ids");
	assert_int_equal(r.claims.matched, 1);
	assert_int_equal(r.claims.repository_id, 74);
	assert_int_equal(r.claims.repository_owner_id, 65);
	r = check(f, "big_ids", &org);
	assert_true(r.claims.repository_id == UINT64_MAX);
	/* Cut to 254 bytes: the 255th would split a two-byte character. */
	r = check(f, "long_sub_utf8", &org);
	want(&r, DD_OIDC_OK, NULL, "long_sub_utf8");
	assert_int_equal(strlen(r.claims.sub), 254);
	assert_int_equal((unsigned char)r.claims.sub[253], 0xa9);
}

/* ---- precise refusals ---- */

static void test_whys(void **state)
{
	static const struct {
		const char *name;
		int repo;          /* judged for the repo principal */
		dd_oidc_status st;
		const char *why;
	} t[] = {
		{"owner_wrong_id", 0, DD_OIDC_WRONG_OWNER, "repository_owner "
		 "is octo-org but repository_owner_id is 66, not 65"},
		{"owner_wrong_name", 0, DD_OIDC_WRONG_OWNER, "repository_owner"
		 "_id is 65 but repository_owner is not octo-org"},
		{"owner_id_zero", 0, DD_OIDC_WRONG_OWNER,
		 "no usable repository_owner_id"},
		{"owner_id_real", 0, DD_OIDC_WRONG_OWNER,
		 "no usable repository_owner_id"},
		{"other_repo_same_owner", 1, DD_OIDC_WRONG_OWNER, "not an "
		 "accepted principal (repository_owner_id 65, "
		 "repository_id 75)"},
		{"repo_wrong_id", 1, DD_OIDC_WRONG_OWNER, "repository is "
		 "octo-org/octo-repo but repository_id is 76, not 74"},
		{"expired", 0, DD_OIDC_BAD_TOKEN,
		 "token refused (expired): expired at"},
		{"nbf_future", 0, DD_OIDC_BAD_TOKEN, "not valid before"},
		{"iat_future", 0, DD_OIDC_BAD_TOKEN, "issued in the future"},
		{"too_old", 0, DD_OIDC_BAD_TOKEN, "older than 900 s"},
		{"aud_github_default", 0, DD_OIDC_BAD_TOKEN,
		 "\"aud\" does not match"},
		{"aud_array_without_ours", 0, DD_OIDC_BAD_TOKEN,
		 "does not contain the expected audience"},
		{"aud_missing", 0, DD_OIDC_BAD_TOKEN, "\"aud\" is missing"},
		{"iss_trailing_slash", 0, DD_OIDC_BAD_TOKEN,
		 "\"iss\" does not match"},
		{"no_jti", 0, DD_OIDC_BAD_TOKEN, "could be replayed"},
		{"alg_none", 0, DD_OIDC_BAD_TOKEN, "not an allowed algorithm"},
		{"hs256_with_public_pem", 0, DD_OIDC_BAD_TOKEN,
		 "not an allowed algorithm"},
		{"es256", 0, DD_OIDC_BAD_TOKEN, "not an allowed algorithm"},
		{"tampered_payload", 0, DD_OIDC_BAD_TOKEN,
		 "signature does not verify"},
		{"tampered_signature", 0, DD_OIDC_BAD_TOKEN,
		 "signature does not verify"},
		{"oversized", 0, DD_OIDC_BAD_TOKEN, "longer than 8192 bytes"},
	};
	fx *f = *state;
	dd_oidc_result r;

	verifier(f, NULL);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		r = check(f, t[i].name, t[i].repo ? &repo : &org);
		want(&r, t[i].st, t[i].why, t[i].name);
		assert_int_equal(dd_oidc_http_status(r.status),
				 t[i].st == DD_OIDC_WRONG_OWNER ? 403 : 401);
	}
	/* Refused, but verified: the caller may log who it was. */
	r = check(f, "owner_wrong_id", &org);
	assert_string_equal(r.claims.repository_owner, "octo-org");
}

/* ---- replay ---- */

static void test_replay(void **state)
{
	fx *f = *state;
	dd_principal stranger;
	dd_oidc_result r;

	verifier(f, NULL);
	r = check(f, "good", &org);
	want(&r, DD_OIDC_OK, NULL, "first use");
	r = check(f, "good", &org);
	want(&r, DD_OIDC_REPLAYED, "already used", "second use");
	assert_int_equal(dd_oidc_http_status(r.status), 401);
	r = check(f, "good", &repo);
	want(&r, DD_OIDC_REPLAYED, NULL, "second use, other principal");
	/* Still held at the last second its age allows (iat + 900 + 60). */
	r = check_as(f, bearer(f, "good"), &org, 1, NOW - 30 + 960, NULL);
	want(&r, DD_OIDC_REPLAYED, NULL, "last valid second");
	r = check_as(f, bearer(f, "good"), &org, 1, NOW - 30 + 961, NULL);
	want(&r, DD_OIDC_BAD_TOKEN, "older than", "too old by then");

	/* Refusals before step 4 leave the jti unused. */
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_USER, "someone", 99,
					   &stranger, NULL, 0), DD_OK);
	r = check(f, "good_int_ids", &stranger);
	want(&r, DD_OIDC_WRONG_OWNER, NULL, "wrong principal first");
	r = check_as(f, bearer(f, "good_int_ids"), &org, 1, NOW + 86400,
		     NULL);
	want(&r, DD_OIDC_BAD_TOKEN, "expired", "expired then");
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_OK, NULL, "then the right one");
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_REPLAYED, NULL, "and only once");
}

static void test_replay_full(void **state)
{
	fx *f = *state;
	dd_oidc_opts o = {.replay_capacity = 1};
	dd_oidc_result r;

	verifier(f, &o);
	r = check(f, "good", &org);
	want(&r, DD_OIDC_OK, NULL, "fills the set");
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_BUSY, "retry later", "full");
	assert_int_equal(dd_oidc_http_status(r.status), 503);
	/* Full means refusing newcomers, never forgetting the old one. */
	r = check(f, "good", &org);
	want(&r, DD_OIDC_REPLAYED, NULL, "still held");
	/* Once "good" can no longer pass, its room is free again. */
	r = check_as(f, bearer(f, "good"), &org, 1, NOW + 931, NULL);
	want(&r, DD_OIDC_BAD_TOKEN, "older than", "good, too old by then");
	r = check_as(f, bearer(f, "iat_within_leeway"), &org, 1, NOW + 931,
		     NULL);
	want(&r, DD_OIDC_OK, NULL, "room again");
}

/* ---- keys ---- */

static void test_unknown_kid_and_rotation(void **state)
{
	fx *f = *state;
	dd_oidc_opts o = {.jwks_refresh_ms = 1};
	dd_oidc_result r;
	int sync;

	verifier(f, &o);
	r = check_as(f, bearer(f, "good"), &org, 1, NOW, &sync);
	want(&r, DD_OIDC_OK, NULL, "first");
	assert_false(sync);
	assert_int_equal(f->s.hits, 1);
	/* An unknown kid refetches once, then is refused. */
	advance(f, 2);
	r = check_as(f, bearer(f, "unknown_kid"), &org, 1, NOW, &sync);
	want(&r, DD_OIDC_BAD_TOKEN, "kid not in the issuer's JWKS",
	     "unknown kid");
	assert_int_equal(r.jwt.reason, DD_JWT_UNKNOWN_KID);
	assert_false(sync);
	assert_int_equal(f->s.hits, 2);
	/* The issuer rotates: the next token naming the new kid gets in. */
	jsrv_serve(&f->s, jwks_text("jwks_rotated"));
	advance(f, 2);
	r = check(f, "rotated_kid", &org);
	want(&r, DD_OIDC_OK, NULL, "rotated");
	assert_int_equal(f->s.hits, 3);

	/* With the default throttle, a sprayed kid costs no fetch. */
	verifier(f, NULL);
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_OK, NULL, "first");
	assert_int_equal(f->s.hits, 4);
	r = check_as(f, bearer(f, "unknown_kid"), &org, 1, NOW, &sync);
	want(&r, DD_OIDC_BAD_TOKEN, NULL, "throttled unknown kid");
	assert_int_equal(r.jwt.reason, DD_JWT_UNKNOWN_KID);
	assert_true(sync);
	assert_int_equal(f->s.hits, 4);
}

static void test_keys_unavailable(void **state)
{
	fx *f = *state;
	dd_oidc_result r;

	f->s.mode = JSRV_STATUS;
	f->s.status = 500;
	verifier(f, NULL);
	r = check(f, "good", &org);
	want(&r, DD_OIDC_KEYS_UNAVAILABLE, "could not be fetched", "500");
	assert_int_equal(r.jwt.reason, DD_JWT_KEYS_UNAVAILABLE);
	assert_int_equal(dd_oidc_http_status(r.status), 502);
	/* Nobody listening at all. */
	jsrv_unlisten(&f->s);
	verifier(f, NULL);
	r = check(f, "good", &org);
	want(&r, DD_OIDC_KEYS_UNAVAILABLE, NULL, "refused connection");
	/* A token refused before any key is needed still says why. */
	r = check(f, "alg_none", &org);
	want(&r, DD_OIDC_BAD_TOKEN, NULL, "no key needed");
}

/* ---- the Authorization header ---- */

static void test_bearer_forms(void **state)
{
	static const char *const none[] = {
		"", "   ", "Bearer", "Bearer   ", "bearer\t", "Basic b2N0bzpv",
		"Bearerx.y.z", "Token x.y.z", "BEARER x.y.z", "Bear x",
	};
	fx *f = *state;
	const char *tok;
	size_t len;
	dd_oidc_result r;
	int sync;

	verifier(f, NULL);
	r = check_as(f, NULL, &org, 1, NOW, &sync);
	want(&r, DD_OIDC_NO_TOKEN, "no Authorization header", "NULL");
	assert_true(sync);
	assert_int_equal(dd_oidc_http_status(r.status), 401);
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		r = check_as(f, none[i], &org, 1, NOW, &sync);
		want(&r, DD_OIDC_NO_TOKEN, NULL, none[i]);
		assert_true(sync);
	}
	r = check_as(f, "Bearer", &org, 1, NOW, NULL);
	want(&r, DD_OIDC_NO_TOKEN, "empty", "Bearer alone");
	r = check_as(f, "Basic b2N0bzpv", &org, 1, NOW, NULL);
	want(&r, DD_OIDC_NO_TOKEN, "not a Bearer credential", "Basic");
	assert_int_equal(f->s.hits, 0);

	/* Both spellings, surrounding whitespace trimmed. */
	snprintf(f->auth, sizeof f->auth, " \tbearer \t %s \r\n",
		 token("good"));
	r = check_as(f, f->auth, &org, 1, NOW, NULL);
	want(&r, DD_OIDC_OK, NULL, "lower-case bearer");
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_OK, NULL, "Bearer");
	assert_int_equal(dd_oidc_bearer("Bearer  a.b.c ", &tok, &len, NULL,
					0), DD_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(tok, "a.b.c", 5);
}

static void test_garbage(void **state)
{
	static const char *const junk[] = {
		"Bearer not-a-jwt", "Bearer a.b.c", "Bearer ..", "Bearer x..y",
		"Bearer e30.e30.e30", "Bearer \x01\x02\x03", "Bearer a.b.c.d",
	};
	fx *f = *state;
	dd_oidc_result r;
	char *big;
	int sync;

	verifier(f, NULL);
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		r = check_as(f, junk[i], &org, 1, NOW, &sync);
		want(&r, DD_OIDC_BAD_TOKEN, NULL, junk[i]);
		assert_true(sync);
		assert_true(r.jwt.reason == DD_JWT_MALFORMED ||
			    r.jwt.reason == DD_JWT_BAD_ALG);
	}
	/* A good token with something after it is not a token. */
	snprintf(f->auth, sizeof f->auth, "Bearer %s x", token("good"));
	r = check_as(f, f->auth, &org, 1, NOW, NULL);
	want(&r, DD_OIDC_BAD_TOKEN, NULL, "trailing word");
	assert_int_equal(r.jwt.reason, DD_JWT_MALFORMED);
	/* Far too long: refused on size before anything is decoded. */
	big = malloc(100000);
	assert_non_null(big);
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'a', 100000 - 8);
	big[100000 - 1] = '\0';
	r = check_as(f, big, &org, 1, NOW, &sync);
	want(&r, DD_OIDC_BAD_TOKEN, NULL, "huge");
	assert_int_equal(r.jwt.reason, DD_JWT_TOO_LARGE);
	assert_true(sync);
	free(big);
	assert_int_equal(f->s.hits, 0);
}

/* ---- options, statuses, lifetime ---- */

static void test_options(void **state)
{
	fx *f = *state;
	dd_oidc_opts o = {0};
	dd_oidc *x = (dd_oidc *)&o;
	dd_principal many[DD_OIDC_MAX_ACCEPTED + 1];
	got g = {0};
	dd_oidc_result r;

	o.issuer = "";
	assert_int_equal(dd_oidc_new(&f->loop, f->http, &o, &x), DD_ERR_CONFIG);
	assert_null(x);
	o = (dd_oidc_opts){.audience = ""};
	assert_int_equal(dd_oidc_new(&f->loop, f->http, &o, &x), DD_ERR_CONFIG);
	o = (dd_oidc_opts){.jwks_url = "ftp://example.com/jwks"};
	assert_int_equal(dd_oidc_new(&f->loop, f->http, &o, &x), DD_ERR_CONFIG);
	o = (dd_oidc_opts){.replay_capacity = (size_t)1 << 40};
	assert_int_equal(dd_oidc_new(&f->loop, f->http, &o, &x), DD_ERR_CONFIG);
	/* All defaults: GitHub's URLs, nothing fetched yet. */
	assert_int_equal(dd_oidc_new(&f->loop, f->http, NULL, &x), DD_OK);
	dd_oidc_free(x);

	verifier(f, NULL);
	for (size_t i = 0; i < DD_OIDC_MAX_ACCEPTED + 1; i++)
		many[i] = org;
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good"), NULL, 1,
					NOW, on_result, &g), DD_ERR_INVALID);
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good"), &org, 0,
					NOW, on_result, &g), DD_ERR_INVALID);
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good"), many,
					DD_OIDC_MAX_ACCEPTED + 1, NOW,
					on_result, &g), DD_ERR_INVALID);
	assert_int_equal(g.calls, 0);
	r = check_as(f, bearer(f, "good"), many, DD_OIDC_MAX_ACCEPTED, NOW,
		     NULL);
	want(&r, DD_OIDC_OK, NULL, "64 principals");

	/* Audience, issuer and maximum age are the operator's. */
	o = (dd_oidc_opts){.audience = "https://github.com/octo-org"};
	verifier(f, &o);
	r = check(f, "aud_github_default", &org);
	want(&r, DD_OIDC_OK, NULL, "own audience");
	r = check(f, "good_int_ids", &org);
	want(&r, DD_OIDC_BAD_TOKEN, "\"aud\" does not match", "dd-agent now");
	o = (dd_oidc_opts){.issuer = DD_OIDC_DEFAULT_ISSUER
			   "/octo-enterprise"};
	verifier(f, &o);
	r = check(f, "iss_enterprise", &org);
	want(&r, DD_OIDC_OK, NULL, "enterprise issuer");
	r = check(f, "good", &org);
	want(&r, DD_OIDC_BAD_TOKEN, "\"iss\" does not match", "default iss");
	o = (dd_oidc_opts){.max_age_s = 60};
	verifier(f, &o);
	r = check(f, "good", &org);
	want(&r, DD_OIDC_OK, NULL, "30 s old");
	r = check(f, "age_at_limit", &org);
	want(&r, DD_OIDC_BAD_TOKEN, "older than 60 s", "960 s old");
}

/* ---- the synchronous pieces, on inputs no parser would produce ---- */

static void test_claims_and_match(void **state)
{
	dd_oidc_claims c;
	dd_jwt_result res;
	dd_principal hand;
	char why[192];
	json_t *j;

	(void)state;
	j = json_pack("{s:o}", "jti", json_stringn("a\0b", 3));
	assert_int_equal(dd_oidc_claims_parse(j, &c, &res), DD_ERR_INVALID);
	assert_int_equal(res.reason, DD_JWT_MALFORMED);
	json_decref(j);
	/* A NUL cuts a description but voids an identity. */
	j = json_pack("{s:s, s:o, s:I, s:o, s:f, s:s}", "jti", "x",
		      "repository_owner", json_stringn("octo-org\0x", 10),
		      "repository_owner_id", (json_int_t)65,
		      "sub", json_stringn("ab\0cd", 5), "iat", 100.25,
		      "exp", "5");
	assert_int_equal(dd_oidc_claims_parse(j, &c, &res), DD_OK);
	assert_string_equal(c.repository_owner, "");
	assert_int_equal(c.repository_owner_id, 65);
	assert_string_equal(c.sub, "ab");
	assert_int_equal(c.iat, 101);
	assert_int_equal(c.exp, 0);
	assert_int_equal(c.matched, -1);
	json_decref(j);

	/* A principal made by hand with id 0 matches nothing, not even 0. */
	memset(&hand, 0, sizeof hand);
	hand.kind = DD_PRINCIPAL_ORG;
	snprintf(hand.name, sizeof hand.name, "octo-org");
	snprintf(c.repository_owner, sizeof c.repository_owner, "octo-org");
	c.repository_owner_id = 0;
	assert_int_equal(dd_oidc_match(&c, &hand, 1, why, sizeof why), -1);
	assert_non_null(strstr(why, "no usable repository_owner_id"));
	/* Nor does an empty name, whatever the id. */
	hand.id = 65;
	hand.name[0] = '\0';
	c.repository_owner[0] = '\0';
	c.repository_owner_id = 65;
	assert_int_equal(dd_oidc_match(&c, &hand, 1, NULL, 0), -1);
	assert_int_equal(dd_oidc_match(&c, &org, 0, why, sizeof why), -1);
	assert_non_null(strstr(why, "not an accepted principal"));
	/* An org principal never reads the repository claims. */
	snprintf(c.repository, sizeof c.repository, "octo-org");
	c.repository_id = 65;
	assert_int_equal(dd_oidc_match(&c, &org, 1, NULL, 0), -1);
	snprintf(c.repository_owner, sizeof c.repository_owner, "octo-org");
	assert_int_equal(dd_oidc_match(&c, &org, 1, NULL, 0), 0);
}

static void test_statuses(void **state)
{
	static const struct {
		dd_oidc_status s;
		int http;
		const char *name;
	} t[] = {
		{DD_OIDC_OK, 200, "ok"},
		{DD_OIDC_NO_TOKEN, 401, "no_token"},
		{DD_OIDC_BAD_TOKEN, 401, "bad_token"},
		{DD_OIDC_KEYS_UNAVAILABLE, 502, "keys_unavailable"},
		{DD_OIDC_WRONG_OWNER, 403, "wrong_owner"},
		{DD_OIDC_REPLAYED, 401, "replayed"},
		{DD_OIDC_BUSY, 503, "busy"},
		{DD_OIDC_INTERNAL, 500, "internal"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_int_equal(dd_oidc_http_status(t[i].s), t[i].http);
		assert_string_equal(dd_oidc_status_name(t[i].s), t[i].name);
	}
	assert_int_equal(dd_oidc_http_status((dd_oidc_status)99), 500);
	assert_string_equal(dd_oidc_status_name((dd_oidc_status)99),
			    "unknown");
}

static void test_cancel_and_free(void **state)
{
	fx *f = *state;
	got a = {0}, b = {0};

	/* Freed while waiting for the JWKS: told, once, before free returns. */
	f->s.mode = JSRV_SILENT;
	verifier(f, NULL);
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good"), &org, 1,
					NOW, on_result, &a), DD_OK);
	assert_int_equal(a.calls, 0);
	/* The callback frees it too, as "free on any answer" code would. */
	a.free_me = &f->oidc;
	dd_oidc_free(f->oidc);
	assert_null(f->oidc);
	assert_int_equal(a.calls, 1);
	want(&a.r, DD_OIDC_INTERNAL, "cancelled", "freed");
	assert_int_equal(dd_oidc_http_status(a.r.status), 500);

	/* Freed by the first of two waiters' callbacks. */
	f->s.mode = JSRV_OK;
	memset(&a, 0, sizeof a);
	verifier(f, NULL);
	/* Whichever is answered first frees; the other hears "cancelled". */
	a.free_me = &f->oidc;
	b.free_me = &f->oidc;
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good"), &org, 1,
					NOW, on_result, &a), DD_OK);
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good_int_ids"),
					&org, 1, NOW, on_result, &b), DD_OK);
	run_until(f, &a.calls, 1);
	run_until(f, &b.calls, 1);
	assert_null(f->oidc);
	assert_int_equal(a.calls + b.calls, 2);
	assert_true(a.r.status == DD_OIDC_OK || b.r.status == DD_OIDC_OK);
	assert_true(a.r.status == DD_OIDC_INTERNAL ||
		    b.r.status == DD_OIDC_INTERNAL);

	/* Freed from a callback that ran before verify returned. */
	memset(&a, 0, sizeof a);
	verifier(f, NULL);
	(void)check(f, "good", &org);
	a.free_me = &f->oidc;
	assert_int_equal(dd_oidc_verify(f->oidc, bearer(f, "good_int_ids"),
					&org, 1, NOW, on_result, &a), DD_OK);
	assert_int_equal(a.calls, 1);
	want(&a.r, DD_OIDC_OK, NULL, "sync free");
	assert_null(f->oidc);
}

/* R17: every allocation of a cold and of a warm check fails in turn. */
static void torture(fx *f, int warm)
{
	unsigned long n, used;
	dd_err_t rc;
	got g;

	for (n = 1;; n++) {
		memset(&g, 0, sizeof g);
		if (warm) {
			verifier(f, NULL);
			(void)check(f, "good", &org);
		}
		dd_alloc_fail_at(n);
		if (!warm) {
			dd_oidc_opts o = {.jwks_url = f->url};

			rc = dd_oidc_new(&f->loop, f->http, &o, &f->oidc);
		} else {
			rc = DD_OK;
		}
		if (rc == DD_OK)
			rc = dd_oidc_verify(f->oidc, bearer(f, "good_int_ids"),
					    &org, 1, NOW, on_result, &g);
		if (rc == DD_OK)
			run_until(f, &g.calls, 1);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		/* jansson may report an allocation failure as bad JSON. */
		if (rc == DD_OK && g.r.status != DD_OIDC_OK &&
		    g.r.status != DD_OIDC_INTERNAL &&
		    g.r.status != DD_OIDC_KEYS_UNAVAILABLE &&
		    !(g.r.status == DD_OIDC_BAD_TOKEN &&
		      g.r.jwt.reason == DD_JWT_MALFORMED))
			fail_msg("n=%lu: %s (%s)", n,
				 dd_oidc_status_name(g.r.status), g.r.why);
		dd_oidc_free(f->oidc);
		f->oidc = NULL;
		if (used < n)
			break;
	}
	assert_int_equal(g.r.status, DD_OIDC_OK);
}

static void test_torture(void **state)
{
	torture(*state, 0);
	torture(*state, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_vectors_org),
		T(test_vectors_repo),
		T(test_good_claims),
		T(test_whys),
		T(test_replay),
		T(test_replay_full),
		T(test_unknown_kid_and_rotation),
		T(test_keys_unavailable),
		T(test_bearer_forms),
		T(test_garbage),
		T(test_options),
		cmocka_unit_test(test_claims_and_match),
		cmocka_unit_test(test_statuses),
		T(test_cancel_and_free),
		T(test_torture),
	};

	signal(SIGPIPE, SIG_IGN);
	dd_json_setup();
	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
