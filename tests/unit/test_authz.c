/*
 * The authorization table, walked: every endpoint of the CP and of the
 * agent is mounted behind dd_authz with a handler that only says who
 * reached it, and every kind of caller knocks on every door. The
 * expectations below are written from the rules (issue and DESIGN.md),
 * not derived from authz_table.c, so a change to the table that is not
 * also a decision shows up here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "jwks_srv.h"
#include "jwt_helper.h"

#include "auth/authz.h"
#include "auth/cookie.h"
#include "auth/oidc.h"
#include "auth/session.h"
#include "net/http.h"
#include "net/httpc.h"

enum { ANON, USER, ADMIN, OWNER, STRANGER, TENANT, TUSER, FORGED, NCALLERS };

static const char *const caller_names[NCALLERS] = {
	"anonymous", "user session", "admin session", "owner OIDC",
	"stranger OIDC", "tenant OIDC", "tenant's session", "forged cookie",
};

/*
 * Expected status per caller: 200 means the handler ran. On the CP the
 * tenant columns are just another user's token and session.
 */
struct expect {
	const char *service;
	const char *method;
	const char *path;
	int st[NCALLERS];
};

#define OK 200
static const struct expect expects[] = {
	/* anon user admin owner stranger tenant tuser forged */
	{"cp", "GET", "/health", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/static/dd.css", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/cp/attest", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/auth/keys", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/auth/github/start", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/auth/github/callback", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "POST", "/auth/device/start", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "POST", "/auth/device/poll", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/auth/dev", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "POST", "/auth/dev", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "POST", "/auth/logout", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/auth/me", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/auth/agent", {401, OK, OK, 401, 401, 401, OK, 401}},
	/* Agents prove themselves in the body; the handler checks. */
	{"cp", "GET", "/register/nonce", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/register/a1", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "POST", "/register", {OK, 403, 403, OK, OK, OK, 403, OK}},
	{"cp", "POST", "/ingress/replace", {OK, 403, 403, OK, OK, OK, 403, OK}},
	/* Public fields for anyone, full records for owner and admins. */
	{"cp", "GET", "/api/agents", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"cp", "GET", "/", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/api/fleet", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/agent/a1", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/agent/a1/logs/web", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/admin/enroll", {401, OK, OK, 401, 401, 401, OK, 401}},
	{"cp", "GET", "/api/v1/admin/export", {OK, 403, OK, OK, 403, 403, 403, OK}},
	{"cp", "GET", "/admin/cf/snapshot", {401, 403, OK, OK, 403, 403, 403, 401}},
	{"cp", "GET", "/admin/cf/map", {401, 403, OK, OK, 403, 403, 403, 401}},

	{"agent", "GET", "/health", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"agent", "GET", "/static/dd.css", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"agent", "GET", "/noise/ws", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"agent", "GET", "/auth/ticket", {OK, OK, OK, OK, OK, OK, OK, OK}},
	{"agent", "POST", "/auth/logout", {OK, OK, OK, OK, OK, OK, OK, OK}},
	/* Workloads: CI tokens of the owner or the tenant, nothing else. */
	{"agent", "POST", "/deploy", {401, 403, 403, OK, 403, OK, 403, 401}},
	{"agent", "POST", "/exec", {401, 403, 403, OK, 403, OK, 403, 401}},
	{"agent", "GET", "/logs/web", {401, 403, OK, OK, 403, OK, OK, 401}},
	{"agent", "POST", "/owner", {401, 403, 403, OK, 403, 403, 403, 401}},
	/* People: admins and the tenant's own session; signed in is not enough. */
	{"agent", "GET", "/", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/workload/w1", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/admin/enroll", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/api/v1/devices", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "POST", "/api/v1/devices", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "DELETE", "/api/v1/devices/abc", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "POST", "/api/v1/devices/abc/revoke", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/api/sessions", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "POST", "/api/sessions", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/api/sessions/s1/replay", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "POST", "/api/sessions/s1/resize", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "POST", "/api/sessions/s1/close", {401, 403, OK, 401, 401, 401, OK, 401}},
	{"agent", "GET", "/api/sessions/s1/attach", {401, 403, OK, 401, 401, 401, OK, 401}},
};

#define NOW 1800000000
#define ISSUER "https://oidc.test"

struct env {
	uv_loop_t loop;
	jsrv jwks;
	EVP_PKEY *rsa;
	dd_httpc *http;
	dd_session_keys *keys;
	dd_principal owner, tenant;
	int has_tenant;
	/* per service */
	dd_http_server *srv;
	dd_oidc *oidc;
	dd_authz *authz;
	char base[64];
	int jti;
	/* the last response */
	int done;
	long status;
	char body[2048];
	char location[2048];
	char who[32];
	char tok[NCALLERS][4096];   /* cookie or bearer per caller */
	char csrf[NCALLERS][DD_CSRF_LEN + 1];
};

static int64_t fixed_now(void)
{
	return NOW;
}

static void echo(dd_http_req *req, const dd_caller *who, void *ud)
{
	char body[64];
	int n = snprintf(body, sizeof body, "{\"kind\":%u}", who->kind);

	(void)ud;
	dd_http_respond(req, 200, "application/json", body, (size_t)n);
}

static const dd_principal *tenant_of(void *ud)
{
	struct env *e = ud;

	return e->has_tenant ? &e->tenant : NULL;
}

static void mount_all(struct env *e, const char *service, int dev)
{
	size_t n, k = 0;
	const dd_authz_entry *t = dd_authz_table(&n);
	dd_authz_route *routes = calloc(n, sizeof *routes);
	char why[160];

	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].service, service) != 0 ||
		    ((t[i].flags & DD_AUTHZ_DEV_ONLY) && !dev))
			continue;
		routes[k++] = (dd_authz_route){t[i].methods, t[i].pattern, echo,
					       e, 0, 0};
	}
	assert_int_equal(dd_authz_mount(e->authz, e->srv, routes, k, why,
					sizeof why), DD_OK);
	free(routes);
}

static void setup_service(struct env *e, const char *service)
{
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 1 << 20,
		.max_body_unauth = 65536, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	char jwks_url[96];
	dd_oidc_opts oo = {.issuer = ISSUER, .jwks_url = jwks_url};
	int agent = strcmp(service, "agent") == 0;
	dd_authz_opts zo = {
		.service = service, .owner = &e->owner, .keys = e->keys,
		.cookie_name = agent ? "dd_agent_session" : DD_SESSION_COOKIE,
		.accept_bearer_sessions = !agent, .tenant = agent ? tenant_of
								 : NULL,
		.tenant_ud = e, .dev = 1, .now = fixed_now,
	};

	snprintf(jwks_url, sizeof jwks_url, "http://127.0.0.1:%d/jwks",
		 e->jwks.port);
	assert_int_equal(dd_http_server_new(&e->loop, &lim, service, &e->srv),
			 DD_OK);
	assert_int_equal(dd_http_server_listen(e->srv, "127.0.0.1", 0), DD_OK);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%u",
		 dd_http_server_port(e->srv));
	assert_int_equal(dd_oidc_new(&e->loop, e->http, &oo, &e->oidc), DD_OK);
	zo.oidc = e->oidc;
	zo.public_origin = e->base;
	assert_int_equal(dd_authz_new(&zo, &e->authz), DD_OK);
	assert_int_equal(dd_authz_set_sign_in(e->authz,
					      "https://app.test/auth/github/start"),
			 DD_OK);
	e->has_tenant = agent;
	mount_all(e, service, 1);
}

static void srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	(void)ud;
}

static void teardown_service(struct env *e)
{
	dd_authz_close(e->authz);
	dd_oidc_free(e->oidc);
	dd_http_server_shutdown(e->srv, 100, srv_closed, NULL);
	for (int i = 0; i < 50; i++)
		uv_run(&e->loop, UV_RUN_NOWAIT);
	dd_http_server_free(e->srv);
	dd_authz_free(e->authz);
	e->srv = NULL;
	e->oidc = NULL;
	e->authz = NULL;
}

static void session_token(struct env *e, const char *login, uint64_t id,
			  int admin, char *out, char *csrf)
{
	dd_session s;
	dd_buf b;

	memset(&s, 0, sizeof s);
	snprintf(s.login, sizeof s.login, "%s", login);
	s.user_id = id;
	s.exp = NOW + 3600;
	s.owner = e->owner;
	s.is_fleet_admin = admin;
	dd_buf_init(&b, 4096);
	assert_int_equal(dd_session_sign(e->keys, &s, &b), DD_OK);
	snprintf(out, 4096, "%s", dd_buf_str(&b));
	assert_int_equal(dd_csrf_token(e->keys, b.data ? dd_buf_str(&b) : "",
				       b.len, csrf), DD_OK);
	dd_buf_free(&b);
}

/* A fresh GitHub-shaped token (its own jti: tokens are single-use). */
static char *oidc_token(struct env *e, const char *owner, const char *id)
{
	char *claims = th_fmt(
		"{\"iss\":\"%s\",\"aud\":\"dd-agent\",\"iat\":%d,\"nbf\":%d,"
		"\"exp\":%d,\"jti\":\"j-%d\",\"sub\":\"repo:%s/app:ref:main\","
		"\"repository\":\"%s/app\",\"repository_id\":\"55\","
		"\"repository_owner\":\"%s\",\"repository_owner_id\":\"%s\"}",
		ISSUER, NOW - 10, NOW - 10, NOW + 300, e->jti++, owner, owner,
		owner, id);
	char *tok = th_token(e->rsa, "RS256", "k1", claims);

	free(claims);
	return tok;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_httpc_opts ho = {.timeout_ms = 5000};
	uint8_t secret[32];
	char why[128];
	json_t *keys;

	memset(secret, 7, sizeof secret);
	uv_loop_init(&e->loop);
	e->rsa = th_rsa(2048);
	keys = json_array();
	json_array_append_new(keys, th_jwk(e->rsa, "k1", "RS256"));
	jsrv_listen(&e->loop, &e->jwks, 0);
	jsrv_serve(&e->jwks, th_jwks(keys)); /* takes keys */
	assert_int_equal(dd_httpc_new(&e->loop, &ho, &e->http), DD_OK);
	assert_int_equal(dd_session_keys_new(secret, sizeof secret, &e->keys),
			 DD_OK);
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_ORG, "acme", 4242,
					   &e->owner, why, sizeof why), DD_OK);
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_USER, "tenant-bob", 777,
					   &e->tenant, why, sizeof why), DD_OK);
	session_token(e, "mallory", 999, 0, e->tok[USER], e->csrf[USER]);
	session_token(e, "root", 1, 1, e->tok[ADMIN], e->csrf[ADMIN]);
	session_token(e, "tenant-bob", 777, 0, e->tok[TUSER], e->csrf[TUSER]);
	/* Signed with another key: must read as no session at all. */
	snprintf(e->tok[FORGED], sizeof e->tok[FORGED], "%s", e->tok[ADMIN]);
	e->tok[FORGED][strlen(e->tok[FORGED]) - 2] ^= 1;
	*state = e;
	return 0;
}

static void httpc_closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

static int teardown(void **state)
{
	struct env *e = *state;

	/* A failed assertion leaves the service up: take it down here. */
	if (e->srv != NULL)
		teardown_service(e);
	dd_httpc_close(e->http, httpc_closed, NULL);
	jsrv_stop(&e->jwks);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	free(e->jwks.body);
	dd_session_keys_free(e->keys);
	EVP_PKEY_free(e->rsa);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

static void on_reply(dd_httpc_result *res, void *ud)
{
	struct env *e = ud;
	const char *loc = dd_httpc_result_header(res, "Location");

	e->done = 1;
	e->status = res->status;
	snprintf(e->body, sizeof e->body, "%s", dd_buf_str(&res->body));
	snprintf(e->location, sizeof e->location, "%s", loc ? loc : "");
}

static int overridden(const char *const *extra, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strncmp(extra[i], name, strlen(name)) == 0)
			return 1;
	}
	return 0;
}

/* One request as `caller`; extra headers may add to or override. */
static long call(struct env *e, const char *service, const char *method,
		 const char *path, int caller, const char *const *extra,
		 size_t n_extra)
{
	const char *hdrs[8];
	size_t n = 0;
	char url[256], cookie[4200], csrf[96], *bearer = NULL;
	dd_httpc_request rq = {.method = method, .url = url};
	int agent = strcmp(service, "agent") == 0;

	snprintf(url, sizeof url, "%s%s", e->base, path);
	if (!overridden(extra, n_extra, "Accept:"))
		hdrs[n++] = "Accept: application/json";
	if (caller == USER || caller == ADMIN || caller == TUSER ||
	    caller == FORGED) {
		snprintf(cookie, sizeof cookie, "Cookie: %s=%s",
			 agent ? "dd_agent_session" : DD_SESSION_COOKIE,
			 e->tok[caller]);
		hdrs[n++] = cookie;
		if (caller != FORGED &&
		    !overridden(extra, n_extra, "X-CSRF-Token:")) {
			snprintf(csrf, sizeof csrf, "X-CSRF-Token: %s",
				 e->csrf[caller]);
			hdrs[n++] = csrf;
		}
	}
	if (caller == OWNER || caller == STRANGER || caller == TENANT) {
		char *tok = caller == OWNER ? oidc_token(e, "acme", "4242")
			    : caller == STRANGER ? oidc_token(e, "evil", "666")
						 : oidc_token(e, "tenant-bob", "777");
		bearer = th_fmt("Authorization: Bearer %s", tok);
		free(tok);
		hdrs[n++] = bearer;
	}
	for (size_t i = 0; i < n_extra; i++)
		hdrs[n++] = extra[i];
	rq.headers = hdrs;
	rq.n_headers = n;
	if (strcmp(method, "POST") == 0) {
		rq.body = "{}";
		rq.body_len = 2;
	}
	e->done = 0;
	assert_int_equal(dd_httpc_start(e->http, &rq, on_reply, e, NULL), DD_OK);
	while (!e->done)
		uv_run(&e->loop, UV_RUN_ONCE);
	free(bearer);
	return e->status;
}

static void walk(struct env *e, const char *service)
{
	int failures = 0;

	for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++) {
		const struct expect *x = &expects[i];

		if (strcmp(x->service, service) != 0)
			continue;
		for (int c = 0; c < NCALLERS; c++) {
			long got = call(e, service, x->method, x->path, c, NULL, 0);

			if (got != x->st[c]) {
				print_error("%s %s %s as %s: got %ld, want %d (%s)\n",
					    service, x->method, x->path,
					    caller_names[c], got, x->st[c], e->body);
				failures++;
			}
		}
	}
	assert_int_equal(failures, 0);
}

static void cp_table_walk(void **state)
{
	struct env *e = *state;

	setup_service(e, "cp");
	walk(e, "cp");
	teardown_service(e);
}

static void agent_table_walk(void **state)
{
	struct env *e = *state;

	setup_service(e, "agent");
	walk(e, "agent");
	teardown_service(e);
}

/*
 * Every table entry has an expectation and vice versa: the counts match,
 * and the walks never see a 404 (an expectation without a route).
 */
static void every_entry_is_expected(void **state)
{
	size_t n, table_cp = 0, table_agent = 0, want_cp = 0, want_agent = 0;
	const dd_authz_entry *t = dd_authz_table(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].service, "cp") == 0)
			table_cp++;
		else
			table_agent++;
	}
	for (size_t j = 0; j < sizeof expects / sizeof expects[0]; j++) {
		if (strcmp(expects[j].service, "cp") == 0)
			want_cp++;
		else
			want_agent++;
	}
	assert_int_equal(table_cp, want_cp);
	assert_int_equal(table_agent, want_agent);
}

/* Anonymous browsers are sent to sign in, and come back where they were. */
static void pages_redirect_anonymous_browsers(void **state)
{
	struct env *e = *state;
	const char *html[] = {"Accept: text/html"};

	setup_service(e, "agent");
	assert_int_equal(call(e, "agent", "GET", "/workload/w1?tab=logs", ANON,
			      html, 1), 307);
	assert_non_null(strstr(e->location,
			       "https://app.test/auth/github/start?return_to="));
	assert_non_null(strstr(e->location, "%2Fworkload%2Fw1%3Ftab%3Dlogs"));
	/* An API entry never redirects; a signed-in stranger is not sent away. */
	assert_int_equal(call(e, "agent", "GET", "/api/sessions", ANON, html, 1),
			 401);
	assert_int_equal(call(e, "agent", "GET", "/workload/w1", USER, html, 1),
			 403);
	assert_non_null(strstr(e->body, "mallory"));
	teardown_service(e);
}

static void cookie_writes_need_csrf_and_same_origin(void **state)
{
	struct env *e = *state;
	char bad[128], origin[128];
	const char *wrong[] = {bad};
	const char *foreign[] = {"Origin: https://evil.test"};
	const char *own[] = {origin};

	setup_service(e, "agent");
	snprintf(bad, sizeof bad, "X-CSRF-Token: %s", e->csrf[USER]);
	snprintf(origin, sizeof origin, "Origin: %s", e->base);
	/* The admin's cookie with mallory's token: refused. */
	assert_int_equal(call(e, "agent", "POST", "/api/v1/devices", ADMIN,
			      wrong, 1), 403);
	assert_non_null(strstr(e->body, "csrf"));
	assert_int_equal(call(e, "agent", "POST", "/api/v1/devices", ADMIN,
			      foreign, 1), 403);
	assert_int_equal(call(e, "agent", "POST", "/api/v1/devices", ADMIN, own,
			      1), 200);
	/* A foreign page cannot post anonymous forms either. */
	assert_int_equal(call(e, "agent", "POST", "/auth/logout", ANON, foreign,
			      1), 403);
	/* Bearer callers carry no ambient authority: no token needed. */
	assert_int_equal(call(e, "agent", "POST", "/deploy", OWNER, NULL, 0), 200);
	teardown_service(e);
}

static void bad_tokens_are_refused_where_they_matter(void **state)
{
	struct env *e = *state;
	char *claims, *tok, *hdr;
	const char *h[1];

	setup_service(e, "cp");
	/* An expired CI token is refused even where anyone may call. */
	claims = th_fmt("{\"iss\":\"%s\",\"aud\":\"dd-agent\",\"iat\":%d,"
			"\"exp\":%d,\"jti\":\"old\",\"repository_owner\":\"acme\","
			"\"repository_owner_id\":\"4242\"}", ISSUER, NOW - 7200,
			NOW - 3600);
	tok = th_token(e->rsa, "RS256", "k1", claims);
	hdr = th_fmt("Authorization: Bearer %s", tok);
	h[0] = hdr;
	assert_int_equal(call(e, "cp", "GET", "/api/agents", ANON, h, 1), 401);
	/* ...but ignored where CI tokens are not taken at all. */
	assert_int_equal(call(e, "cp", "GET", "/health", ANON, h, 1), 200);
	free(claims);
	free(tok);
	free(hdr);
	/* A native bearer session that does not verify: 401 with a reason. */
	hdr = th_fmt("Authorization: Bearer %s", e->tok[FORGED]);
	h[0] = hdr;
	assert_int_equal(call(e, "cp", "GET", "/auth/me", ANON, h, 1), 401);
	assert_non_null(strstr(e->body, "bad_session"));
	free(hdr);
	/* A valid one works like the cookie, without CSRF. */
	hdr = th_fmt("Authorization: Bearer %s", e->tok[ADMIN]);
	h[0] = hdr;
	assert_int_equal(call(e, "cp", "GET", "/admin/cf/map", ANON, h, 1), 200);
	free(hdr);
	teardown_service(e);
}

/*
 * A JWT from another issuer than the OIDC one (an ITA token) is agent
 * evidence where agents may call: the handler gets it as AGENT and
 * verifies it. Elsewhere it stays an OIDC token and is refused as one.
 */
static void attestation_bearers_reach_agent_handlers(void **state)
{
	struct env *e = *state;
	char *claims, *tok, *hdr, kind[32];
	const char *h[1];

	claims = th_fmt("{\"iss\":\"https://ita.test\",\"iat\":%d,"
			"\"exp\":%d}", NOW, NOW + 600);
	tok = th_token(e->rsa, "RS256", "ita-1", claims);
	hdr = th_fmt("Authorization: Bearer %s", tok);
	h[0] = hdr;
	snprintf(kind, sizeof kind, "{\"kind\":%u}", DD_CALLER_AGENT);
	setup_service(e, "cp");
	assert_int_equal(call(e, "cp", "GET", "/api/agents", ANON, h, 1), 200);
	assert_string_equal(e->body, kind);
	assert_int_equal(call(e, "cp", "GET", "/api/v1/admin/export", ANON, h,
			      1), 200);
	assert_string_equal(e->body, kind);
	/* Not where agents are not admitted: an OIDC token, and a bad one. */
	assert_int_equal(call(e, "cp", "GET", "/admin/cf/map", ANON, h, 1),
			 401);
	/* Ignored where tokens are not looked at. */
	assert_int_equal(call(e, "cp", "GET", "/health", ANON, h, 1), 200);
	teardown_service(e);
	setup_service(e, "agent");
	assert_int_equal(call(e, "agent", "POST", "/deploy", ANON, h, 1), 401);
	teardown_service(e);
	free(claims);
	free(tok);
	free(hdr);
	/* A token of the OIDC issuer still goes to the OIDC verifier. */
	claims = th_fmt("{\"iss\":\"%s\",\"aud\":\"dd-agent\",\"iat\":%d,"
			"\"exp\":%d,\"jti\":\"x1\"}", ISSUER, NOW - 7200,
			NOW - 3600);
	tok = th_token(e->rsa, "RS256", "k1", claims);
	hdr = th_fmt("Authorization: Bearer %s", tok);
	h[0] = hdr;
	setup_service(e, "cp");
	assert_int_equal(call(e, "cp", "GET", "/api/v1/admin/export", ANON, h,
			      1), 401);
	assert_null(strstr(e->body, "\"kind\""));
	teardown_service(e);
	free(claims);
	free(tok);
	free(hdr);
}

static char *claims_with(const char *iss, const char *aud, int iat, int exp,
			 const char *jti, const char *owner, const char *id)
{
	return th_fmt("{\"iss\":\"%s\",\"aud\":%s,\"iat\":%d,\"exp\":%d,"
		      "\"jti\":\"%s\",\"repository\":\"%s/app\","
		      "\"repository_id\":\"55\",\"repository_owner\":\"%s\","
		      "\"repository_owner_id\":\"%s\"}", iss, aud, iat, exp, jti,
		      owner, owner, id);
}

static char *rsa_public_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *copy;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &data);
	copy = strndup(data, (size_t)n);
	BIO_free(b);
	return copy;
}

struct refusal {
	const char *name;
	char *token;
	int status;
	const char *code;
};

/*
 * CI tokens refused over HTTP, each with its status and JSON code: what
 * a deploy step sees. (tests/unit/test_oidc.c covers every reason with
 * python3-jwt vectors; this is the same verdict through the dispatcher.)
 */
static void ci_token_refusals_over_http(void **state)
{
	struct env *e = *state;
	char *pem = rsa_public_pem(e->rsa), *big;
	struct refusal cases[16];
	char *h64, *p64;
	size_t n = 0;
	char *c;

	setup_service(e, "agent");
#define CASE(nm, tok, st, cd) \
	cases[n++] = (struct refusal){nm, tok, st, cd}
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 7200, NOW - 3600, "j1",
			"acme", "4242");
	CASE("expired", th_token(e->rsa, "RS256", "k1", c), 401, "bad_token");
	free(c);
	c = claims_with(ISSUER, "\"someone-else\"", NOW - 10, NOW + 300, "j2",
			"acme", "4242");
	CASE("wrong aud", th_token(e->rsa, "RS256", "k1", c), 401, "bad_token");
	free(c);
	c = claims_with(ISSUER, "[\"a\",\"b\"]", NOW - 10, NOW + 300, "j3",
			"acme", "4242");
	CASE("aud array without ours", th_token(e->rsa, "RS256", "k1", c), 401,
	     "bad_token");
	free(c);
	c = claims_with("https://evil.test", "\"dd-agent\"", NOW - 10, NOW + 300,
			"j4", "acme", "4242");
	CASE("wrong iss", th_token(e->rsa, "RS256", "k1", c), 401, "bad_token");
	free(c);
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 3000, NOW + 300, "j5",
			"acme", "4242");
	CASE("older than the maximum age", th_token(e->rsa, "RS256", "k1", c),
	     401, "bad_token");
	free(c);
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 10, NOW + 300, "j6",
			"acme", "4243");
	CASE("right name, wrong id", th_token(e->rsa, "RS256", "k1", c), 403,
	     "wrong_owner");
	free(c);
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 10, NOW + 300, "j7",
			"acme-corp", "4242");
	CASE("wrong name, right id", th_token(e->rsa, "RS256", "k1", c), 403,
	     "wrong_owner");
	free(c);
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 10, NOW + 300, "j8",
			"acme", "4242");
	CASE("unknown kid", th_token(e->rsa, "RS256", "k9", c), 401, "bad_token");
	CASE("HS256 keyed with the RSA public key",
	     th_sign_raw(e->rsa, "HS256",
			 "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", c,
			 pem, strlen(pem)), 401, "bad_token");
	h64 = th_b64s("{\"alg\":\"none\",\"kid\":\"k1\"}");
	p64 = th_b64s(c);
	CASE("alg none", th_fmt("%s.%s.", h64, p64), 401, "bad_token");
	free(h64);
	free(p64);
	free(c);
	CASE("garbage", th_fmt("not.a.jwt"), 401, "bad_token");
#undef CASE
	for (size_t i = 0; i < n; i++) {
		char *hdr = th_fmt("Authorization: Bearer %s", cases[i].token);
		const char *h[] = {hdr};
		char code[64];

		snprintf(code, sizeof code, "\"code\":\"%s\"", cases[i].code);
		if (call(e, "agent", "POST", "/deploy", ANON, h, 1) !=
			    cases[i].status || strstr(e->body, code) == NULL)
			fail_msg("%s: got %ld %s", cases[i].name, e->status,
				 e->body);
		free(hdr);
		free(cases[i].token);
	}
	/* A good token once, then replayed: the second use is refused. */
	c = claims_with(ISSUER, "\"dd-agent\"", NOW - 10, NOW + 300, "once",
			"acme", "4242");
	big = th_token(e->rsa, "RS256", "k1", c);
	{
		char *hdr = th_fmt("Authorization: Bearer %s", big);
		const char *h[] = {hdr};

		assert_int_equal(call(e, "agent", "POST", "/deploy", ANON, h, 1),
				 200);
		assert_int_equal(call(e, "agent", "POST", "/deploy", ANON, h, 1),
				 401);
		assert_non_null(strstr(e->body, "replayed"));
		free(hdr);
	}
	free(big);
	free(c);
	free(pem);
	teardown_service(e);
}

static void mounting_refuses_what_the_table_lacks(void **state)
{
	struct env *e = *state;
	dd_authz_route stray = {DD_M_GET, "/debug/secrets", echo, e, 0, 0};
	dd_authz_route wrong_method = {DD_M_DELETE, "/health", echo, e, 0, 0};
	dd_authz_route dev_only = {DD_M_GET, "/auth/dev", echo, e, 0, 0};
	dd_authz_opts zo = {.service = "cp", .owner = &e->owner,
			    .keys = e->keys, .dev = 0};
	dd_authz *prod = NULL;
	char why[160];

	setup_service(e, "cp");
	assert_int_equal(dd_authz_mount(e->authz, e->srv, &stray, 1, why,
					sizeof why), DD_ERR_CONFIG);
	assert_non_null(strstr(why, "/debug/secrets"));
	assert_int_equal(dd_authz_mount(e->authz, e->srv, &wrong_method, 1, why,
					sizeof why), DD_ERR_CONFIG);
	assert_int_equal(dd_authz_new(&zo, &prod), DD_OK);
	assert_int_equal(dd_authz_mount(prod, e->srv, &dev_only, 1, why,
					sizeof why), DD_ERR_CONFIG);
	assert_non_null(strstr(why, "dev mode"));
	dd_authz_free(prod);
	teardown_service(e);
}

static void ownership_scoping(void **state)
{
	dd_session s;
	dd_principal u = {DD_PRINCIPAL_USER, "bob", 7};
	dd_principal o = {DD_PRINCIPAL_ORG, "Acme", 9};
	dd_principal r = {DD_PRINCIPAL_REPO, "acme/app", 11};

	(void)state;
	memset(&s, 0, sizeof s);
	snprintf(s.login, sizeof s.login, "bob");
	s.user_id = 7;
	assert_true(dd_authz_session_owns(&s, &u));
	assert_false(dd_authz_session_owns(&s, &o));
	assert_false(dd_authz_session_owns(&s, &r));
	assert_false(dd_authz_session_owns(&s, NULL));
	/* Same login, other id: a squatter. */
	s.user_id = 8;
	assert_false(dd_authz_session_owns(&s, &u));
	snprintf(s.orgs[0], sizeof s.orgs[0], "acme");
	s.n_orgs = 1;
	assert_true(dd_authz_session_owns(&s, &o));
	assert_true(dd_authz_session_owns(&s, &r));
	snprintf(s.orgs[0], sizeof s.orgs[0], "acm");
	assert_false(dd_authz_session_owns(&s, &o));
	assert_false(dd_authz_session_owns(&s, &r));
	s.is_fleet_admin = 1;
	assert_true(dd_authz_session_owns(&s, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_entry_is_expected),
		cmocka_unit_test(ownership_scoping),
		cmocka_unit_test_setup_teardown(cp_table_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(agent_table_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(pages_redirect_anonymous_browsers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(cookie_writes_need_csrf_and_same_origin,
						setup, teardown),
		cmocka_unit_test_setup_teardown(bad_tokens_are_refused_where_they_matter,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			attestation_bearers_reach_agent_handlers, setup,
			teardown),
		cmocka_unit_test_setup_teardown(ci_token_refusals_over_http, setup,
						teardown),
		cmocka_unit_test_setup_teardown(mounting_refuses_what_the_table_lacks,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
