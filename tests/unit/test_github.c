/*
 * The GitHub sign-in client against a fake GitHub served by our own HTTP
 * server on the same loop (loopback, real HTTP in between). Each endpoint
 * answers faithfully by default and can be told to answer anything else:
 * a status, HTML, a huge body, missing or ill-typed fields, or nothing at
 * all. Every callback also checks that no secret reached its why.
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

#include "auth/github.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/http.h"

#define SECRET "csecret-0123456789"
#define TOKEN "gho_usertoken123"
#define REDIRECT "https://cp.example.com/auth/callback"

enum ep { EP_TOKEN, EP_DEVICE, EP_USER, EP_ORGS, EP_ORG, EP_MEMBER, EP_REPO,
	  EP__COUNT };

/* What an endpoint answers instead of its faithful reply. */
struct ovr {
	int status;          /* 0: no override */
	const char *ctype;   /* NULL: application/json */
	const char *body;    /* NULL: "{}" */
	size_t big;          /* > 0: a body of this many bytes */
	int silent;          /* never answer */
};

enum device { DEV_OK, DEV_PENDING, DEV_SLOW, DEV_DENIED, DEV_EXPIRED };

static struct fake {
	int hits[EP__COUNT];
	struct ovr ovr[EP__COUNT];
	char last_token_body[1024];
	char last_auth[128], last_ua[64], last_accept[64], per_page[8];
	const char *login;
	long long user_id;
	const char *orgs;    /* the /user/orgs body */
	long long org_id;
	int public_member;
	const char *repo;    /* the /repos body */
	enum device device;
	const char *token_reply;  /* NULL: the faithful one */
} fk;

static const char *or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static void dropped(void *ud)
{
	(void)ud;
}

static int overridden(dd_http_req *req, enum ep ep)
{
	const struct ovr *o = &fk.ovr[ep];
	const char *body = o->body ? o->body : "{}";
	char *big;

	fk.hits[ep]++;
	if (o->status == 0)
		return 0;
	if (o->silent) {
		/* Never answered: the server frees it when the peer leaves. */
		dd_http_req_on_abort(req, dropped, NULL);
		return 1;
	}
	if (o->big > 0) {
		big = malloc(o->big);
		assert_non_null(big);
		memset(big, ' ', o->big);
		big[0] = '[';
		big[o->big - 1] = ']';
		dd_http_respond(req, o->status, "application/json", big,
				o->big);
		free(big);
		return 1;
	}
	dd_http_respond(req, o->status,
			o->ctype ? o->ctype : "application/json", body,
			strlen(body));
	return 1;
}

static void reply(dd_http_req *req, int status, const char *body)
{
	dd_http_respond(req, status, "application/json", body, strlen(body));
}

static const char *str(const json_t *v, const char *key)
{
	const char *s = NULL;

	(void)dd_json_get_str(v, key, &s);
	return s != NULL ? s : "";
}

static void fake_token(dd_http_req *req, void *ud)
{
	static const char *const device_errors[] = {
		[DEV_PENDING] = "authorization_pending",
		[DEV_SLOW] = "slow_down", [DEV_DENIED] = "access_denied",
		[DEV_EXPIRED] = "expired_token",
	};
	const uint8_t *b;
	size_t n;
	json_t *v = NULL;
	char out[256];

	(void)ud;
	b = dd_http_req_body(req, &n);
	snprintf(fk.last_token_body, sizeof fk.last_token_body, "%.*s", (int)n,
		 (const char *)b);
	snprintf(fk.last_accept, sizeof fk.last_accept, "%s",
		 or_empty(dd_http_req_header(req, "Accept")));
	if (overridden(req, EP_TOKEN))
		return;
	if (dd_json_parse(b, n, 8192, &v, NULL, 0) != DD_OK) {
		reply(req, 500, "{}");
		return;
	}
	if (strcmp(str(v, "client_id"), "cid") != 0 ||
	    strcmp(str(v, "client_secret"), SECRET) != 0) {
		reply(req, 200, "{\"error\":\"incorrect_client_credentials\","
		      "\"error_description\":\"The client_id and/or "
		      "client_secret passed are incorrect.\"}");
	} else if (fk.token_reply != NULL) {
		reply(req, 200, fk.token_reply);
	} else if (json_object_get(v, "device_code") != NULL) {
		if (strcmp(str(v, "grant_type"), "urn:ietf:params:oauth:"
			   "grant-type:device_code") != 0 ||
		    strcmp(str(v, "device_code"), "dc123") != 0) {
			reply(req, 200,
			      "{\"error\":\"incorrect_device_code\"}");
		} else if (fk.device != DEV_OK) {
			snprintf(out, sizeof out, "{\"error\":\"%s\"}",
				 device_errors[fk.device]);
			reply(req, 200, out);
		} else {
			reply(req, 200, "{\"access_token\":\"" TOKEN "\"}");
		}
	} else if (strcmp(str(v, "code"), "good-code") == 0 &&
		   strcmp(str(v, "redirect_uri"), REDIRECT) == 0) {
		reply(req, 200, "{\"access_token\":\"" TOKEN "\","
		      "\"token_type\":\"bearer\",\"scope\":\"read:org\"}");
	} else {
		reply(req, 200, "{\"error\":\"bad_verification_code\","
		      "\"error_description\":\"The code passed is incorrect or "
		      "expired.\"}");
	}
	json_decref(v);
}

static void fake_device(dd_http_req *req, void *ud)
{
	(void)ud;
	if (overridden(req, EP_DEVICE))
		return;
	reply(req, 200, "{\"device_code\":\"dc123\",\"user_code\":"
	      "\"ABCD-1234\",\"verification_uri\":"
	      "\"https://github.com/login/device\","
	      "\"expires_in\":900,\"interval\":5}");
}

/* API calls need the user token, as GitHub's do. */
static int authorized(dd_http_req *req)
{
	const char *auth = dd_http_req_header(req, "Authorization");

	snprintf(fk.last_auth, sizeof fk.last_auth, "%s", or_empty(auth));
	snprintf(fk.last_ua, sizeof fk.last_ua, "%s",
		 or_empty(dd_http_req_header(req, "User-Agent")));
	snprintf(fk.last_accept, sizeof fk.last_accept, "%s",
		 or_empty(dd_http_req_header(req, "Accept")));
	if (auth != NULL && strcmp(auth, "Bearer " TOKEN) == 0)
		return 1;
	reply(req, 401, "{\"message\":\"Bad credentials\"}");
	return 0;
}

static void fake_user(dd_http_req *req, void *ud)
{
	char out[256];

	(void)ud;
	if (overridden(req, EP_USER) || !authorized(req))
		return;
	snprintf(out, sizeof out, "{\"login\":\"%s\",\"id\":%lld,\"type\":"
		 "\"User\"}", fk.login, fk.user_id);
	reply(req, 200, out);
}

static void fake_orgs(dd_http_req *req, void *ud)
{
	(void)ud;
	snprintf(fk.per_page, sizeof fk.per_page, "%s",
		 or_empty(dd_http_req_query(req, "per_page")));
	if (overridden(req, EP_ORGS) || !authorized(req))
		return;
	reply(req, 200, fk.orgs);
}

static void fake_org(dd_http_req *req, void *ud)
{
	char out[128];

	(void)ud;
	if (overridden(req, EP_ORG) || !authorized(req))
		return;
	if (strcmp(dd_http_req_param(req, "org"), "acme") != 0) {
		reply(req, 404, "{\"message\":\"Not Found\"}");
		return;
	}
	snprintf(out, sizeof out, "{\"login\":\"acme\",\"id\":%lld}",
		 fk.org_id);
	reply(req, 200, out);
}

static void fake_member(dd_http_req *req, void *ud)
{
	(void)ud;
	if (overridden(req, EP_MEMBER) || !authorized(req))
		return;
	if (fk.public_member &&
	    strcmp(dd_http_req_param(req, "org"), "acme") == 0 &&
	    strcmp(dd_http_req_param(req, "login"), fk.login) == 0)
		dd_http_respond(req, 204, NULL, NULL, 0);
	else
		reply(req, 404, "{\"message\":\"Not Found\"}");
}

static void fake_repo(dd_http_req *req, void *ud)
{
	(void)ud;
	if (overridden(req, EP_REPO) || !authorized(req))
		return;
	if (strcmp(dd_http_req_param(req, "owner"), "acme") != 0 ||
	    strcmp(dd_http_req_param(req, "repo"), "fleet") != 0) {
		reply(req, 404, "{\"message\":\"Not Found\"}");
		return;
	}
	reply(req, 200, fk.repo);
}

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_httpc *http;
	dd_github *gh;
	char base[64];
};

struct got {
	int calls;
	dd_err_t err;
	dd_github_user user;
	dd_github_device dev;
	char why[512];
	dd_github **free_me;  /* set: the callback frees the client */
};

static void check_why(const char *why)
{
	assert_non_null(why);
	assert_null(strstr(why, SECRET));
	assert_null(strstr(why, TOKEN));
}

static void on_user(dd_err_t err, const dd_github_user *u, const char *why,
		    void *ud)
{
	struct got *g = ud;

	g->calls++;
	g->err = err;
	check_why(why);
	snprintf(g->why, sizeof g->why, "%s", why);
	assert_true((err == DD_OK) == (u != NULL));
	if (u != NULL)
		g->user = *u;
	if (g->free_me != NULL) {
		dd_github_free(*g->free_me);
		*g->free_me = NULL;
	}
}

static void on_device(dd_err_t err, const dd_github_device *d,
		      const char *why, void *ud)
{
	struct got *g = ud;

	g->calls++;
	g->err = err;
	check_why(why);
	snprintf(g->why, sizeof g->why, "%s", why);
	assert_true((err == DD_OK) == (d != NULL));
	if (d != NULL)
		g->dev = *d;
}

static const dd_retry_policy fast = {
	.max_attempts = 2, .base_ms = 1, .cap_ms = 5, .max_wait_ms = 20,
};

static const dd_github_app app = {"cid", SECRET};

static void new_client(struct env *e, uint64_t timeout_ms)
{
	dd_github_opts o = {.oauth_base = e->base, .api_base = e->base,
			    .timeout_ms = timeout_ms, .retry = &fast};

	dd_github_free(e->gh);
	e->gh = NULL;
	assert_int_equal(dd_github_new(e->http, &o, &e->gh), DD_OK);
}

static void start_fake(uv_loop_t *loop, dd_http_server **srv, char *base,
		       size_t base_len)
{
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 1 << 20,
		.max_body_unauth = 1 << 20, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	const dd_http_route routes[] = {
		{DD_M_POST, "/login/oauth/access_token", fake_token, NULL,
		 NULL, 0, 0},
		{DD_M_POST, "/login/device/code", fake_device, NULL, NULL, 0,
		 0},
		{DD_M_GET, "/user", fake_user, NULL, NULL, 0, 0},
		{DD_M_GET, "/user/orgs", fake_orgs, NULL, NULL, 0, 0},
		{DD_M_GET, "/orgs/{org}", fake_org, NULL, NULL, 0, 0},
		{DD_M_GET, "/orgs/{org}/public_members/{login}", fake_member,
		 NULL, NULL, 0, 0},
		{DD_M_GET, "/repos/{owner}/{repo}", fake_repo, NULL, NULL, 0,
		 0},
	};

	assert_int_equal(dd_http_server_new(loop, &lim, "fake-github", srv),
			 DD_OK);
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		assert_int_equal(dd_http_server_route(*srv, &routes[i]), DD_OK);
	assert_int_equal(dd_http_server_listen(*srv, "127.0.0.1", 0), DD_OK);
	/* A trailing slash, which the client must not double up. */
	snprintf(base, base_len, "http://127.0.0.1:%u/",
		 dd_http_server_port(*srv));
}

static void on_srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	*(int *)ud = 1;
}

static void stop_fake(uv_loop_t *loop, dd_http_server *srv)
{
	int closed = 0;

	dd_http_server_shutdown(srv, 100, on_srv_closed, &closed);
	while (!closed)
		uv_run(loop, UV_RUN_ONCE);
	dd_http_server_free(srv);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_httpc_opts ho = {.timeout_ms = 5000};

	memset(&fk, 0, sizeof fk);
	fk.login = "Octo-Cat";
	fk.user_id = 101;
	fk.orgs = "[{\"login\":\"Acme\",\"id\":4242},{\"login\":\"beta-2\"}]";
	fk.org_id = 4242;
	fk.public_member = 1;
	fk.repo = "{\"id\":777,\"permissions\":{\"admin\":false,"
		  "\"push\":true}}";
	uv_loop_init(&e->loop);
	start_fake(&e->loop, &e->srv, e->base, sizeof e->base);
	assert_int_equal(dd_httpc_new(&e->loop, &ho, &e->http), DD_OK);
	new_client(e, 3000);
	*state = e;
	return 0;
}

static void on_httpc_closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

static int teardown(void **state)
{
	struct env *e = *state;

	dd_github_free(e->gh);
	if (e->http != NULL)
		dd_httpc_close(e->http, on_httpc_closed, NULL);
	stop_fake(&e->loop, e->srv);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

/* Bounded by time: a loop may spin on zero-delay timers for a while. */
static void run_until(struct env *e, const int *calls)
{
	uint64_t end = dd_now_ms() + 20000;

	while (*calls == 0 && dd_now_ms() < end)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_int_equal(*calls, 1);
}

static const dd_principal org_owner = {DD_PRINCIPAL_ORG, "acme", 4242};

static struct got sign_in_as(struct env *e, const dd_principal *owner,
			     const char *code)
{
	struct got g;

	memset(&g, 0, sizeof g);
	assert_int_equal(dd_github_sign_in(e->gh, &app, code, REDIRECT, owner,
					   on_user, &g), DD_OK);
	run_until(e, &g.calls);
	return g;
}

static struct got sign_in(struct env *e)
{
	return sign_in_as(e, &org_owner, "good-code");
}

static void org_member_is_admin(void **state)
{
	struct env *e = *state;
	struct got g = sign_in(e);

	assert_int_equal(g.err, DD_OK);
	assert_string_equal(g.user.login, "Octo-Cat");
	assert_int_equal(g.user.id, 101);
	assert_int_equal(g.user.n_orgs, 2);
	assert_string_equal(g.user.orgs[0], "acme");
	assert_string_equal(g.user.orgs[1], "beta-2");
	assert_true(g.user.is_fleet_admin);
	/* What went over the wire. */
	assert_string_equal(fk.last_token_body,
			    "{\"client_id\":\"cid\",\"client_secret\":\"" SECRET
			    "\",\"code\":\"good-code\",\"redirect_uri\":\""
			    REDIRECT "\"}");
	assert_string_equal(fk.last_auth, "Bearer " TOKEN);
	assert_string_equal(fk.last_ua, "devopsdefender");
	assert_string_equal(fk.last_accept, "application/vnd.github+json");
	assert_string_equal(fk.per_page, "100");
	for (int i = EP_TOKEN; i <= EP_MEMBER; i++)
		assert_int_equal(fk.hits[i], i == EP_DEVICE ? 0 : 1);
	assert_int_equal(fk.hits[EP_REPO], 0);
}

static void org_classification_fails_closed(void **state)
{
	struct env *e = *state;
	struct got g;

	fk.public_member = 0;
	g = sign_in(e);
	assert_int_equal(g.err, DD_OK);
	assert_false(g.user.is_fleet_admin);
	/* The name now belongs to another org: membership is not asked. */
	fk.public_member = 1;
	fk.org_id = 999;
	memset(fk.hits, 0, sizeof fk.hits);
	g = sign_in(e);
	assert_false(g.user.is_fleet_admin);
	assert_int_equal(fk.hits[EP_MEMBER], 0);
	fk.org_id = 4242;
	/* Errors on either call: not an admin, still signed in. */
	fk.ovr[EP_ORG] = (struct ovr){.status = 200, .ctype = "text/html",
				       .body = "<html>hi</html>"};
	g = sign_in(e);
	assert_int_equal(g.err, DD_OK);
	assert_false(g.user.is_fleet_admin);
	fk.ovr[EP_ORG] = (struct ovr){0};
	fk.ovr[EP_MEMBER] = (struct ovr){.status = 500};
	g = sign_in(e);
	assert_false(g.user.is_fleet_admin);
	fk.ovr[EP_MEMBER] = (struct ovr){.status = 302};
	g = sign_in(e);
	assert_false(g.user.is_fleet_admin);
	fk.ovr[EP_MEMBER] = (struct ovr){.status = 200, .silent = 1};
	new_client(e, 200);
	g = sign_in(e);
	assert_int_equal(g.err, DD_OK);
	assert_false(g.user.is_fleet_admin);
}

static void user_owner_is_matched_by_id(void **state)
{
	struct env *e = *state;
	dd_principal owner = {DD_PRINCIPAL_USER, "Octo-Cat", 101};
	struct got g = sign_in_as(e, &owner, "good-code");

	assert_int_equal(g.err, DD_OK);
	assert_true(g.user.is_fleet_admin);
	assert_int_equal(fk.hits[EP_ORG] + fk.hits[EP_MEMBER] +
			 fk.hits[EP_REPO], 0);
	owner.id = 102;
	g = sign_in_as(e, &owner, "good-code");
	assert_false(g.user.is_fleet_admin);
}

static void repo_owner_needs_push(void **state)
{
	struct env *e = *state;
	dd_principal owner = {DD_PRINCIPAL_REPO, "acme/fleet", 777};
	struct got g = sign_in_as(e, &owner, "good-code");
	static const char *const refused[] = {
		("{\"id\":777,\"permissions\":{\"admin\":false,\"push\":false,"
		 "\"pull\":true}}"),
		"{\"id\":777}",
		"{\"id\":777,\"permissions\":{\"push\":\"true\"}}",
		"{\"id\":778,\"permissions\":{\"admin\":true}}",
		"{\"id\":\"777\",\"permissions\":{\"admin\":true}}",
		"[]",
	};

	assert_int_equal(g.err, DD_OK);
	assert_true(g.user.is_fleet_admin);
	assert_int_equal(fk.hits[EP_REPO], 1);
	fk.repo = "{\"id\":777,\"permissions\":{\"maintain\":true}}";
	assert_true(sign_in_as(e, &owner, "good-code").user.is_fleet_admin);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		fk.repo = refused[i];
		g = sign_in_as(e, &owner, "good-code");
		assert_int_equal(g.err, DD_OK);
		assert_false(g.user.is_fleet_admin);
	}
	snprintf(owner.name, sizeof owner.name, "acme/other");
	assert_false(sign_in_as(e, &owner, "good-code").user.is_fleet_admin);
}

static void refused_codes_and_credentials(void **state)
{
	struct env *e = *state;
	dd_github_app wrong = {"cid", "wrong-secret"};
	struct got g = sign_in_as(e, &org_owner, "stale-code");

	assert_int_equal(g.err, DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(g.why, "incorrect or expired"));
	assert_int_equal(fk.hits[EP_USER], 0);
	memset(&g, 0, sizeof g);
	assert_int_equal(dd_github_sign_in(e->gh, &wrong, "good-code", REDIRECT,
					   &org_owner, on_user, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "incorrect_client_credentials"));
	/* A GitHub that echoes the secret does not get it into why. */
	fk.token_reply = "{\"error\":\"bad\",\"error_description\":\"secret "
			 SECRET " is wrong\"}";
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "(redacted)"));
	fk.token_reply = "{\"token_type\":\"bearer\"}";
	assert_int_equal(sign_in(e).err, DD_ERR_UNAUTHORIZED);
	fk.token_reply = "{\"access_token\":\"a b\"}";
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.token_reply = "{\"access_token\":\"tok\\r\\nX-Evil: 1\"}";
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.token_reply = "{\"access_token\":42}";
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.token_reply = "{\"error\":7}";
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.token_reply = "{\"error\":\"x\\u0001\\u007f\",\"error_description\":"
			 "\"<script>\\n\"}";
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_null(strchr(g.why, '\n'));
	assert_int_equal(fk.hits[EP_USER], 0);
}

static void hostile_token_endpoint(void **state)
{
	struct env *e = *state;
	struct got g;

	fk.ovr[EP_TOKEN] = (struct ovr){.status = 500};
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "HTTP 500"));
	/* POSTs are never retried: the code may have been used. */
	fk.ovr[EP_TOKEN] = (struct ovr){.status = 503};
	memset(fk.hits, 0, sizeof fk.hits);
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	assert_int_equal(fk.hits[EP_TOKEN], 1);
	fk.ovr[EP_TOKEN] = (struct ovr){.status = 200, .ctype = "text/html",
					 .body = "<html>Sign in</html>"};
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "not a JSON object"));
	fk.ovr[EP_TOKEN] = (struct ovr){.status = 200, .body = "[\"x\"]"};
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.ovr[EP_TOKEN] = (struct ovr){.status = 200, .big = 200000};
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "too large"));
	fk.ovr[EP_TOKEN] = (struct ovr){.status = 200, .silent = 1};
	new_client(e, 200);
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_TIMEOUT);
	assert_non_null(strstr(g.why, "timed out"));
}

static void hostile_user_endpoint(void **state)
{
	struct env *e = *state;
	static const char *const bad[] = {
		"{\"id\":101}", "{\"login\":\"Octo-Cat\"}",
		"{\"login\":\"bad login\",\"id\":101}",
		("{\"login\":\"a1234567890123456789012345678901234567890\","
		 "\"id\":101}"),
		"{\"login\":\"\",\"id\":101}", "{\"login\":7,\"id\":101}",
		"{\"login\":\"Octo-Cat\",\"id\":0}",
		"{\"login\":\"Octo-Cat\",\"id\":-1}",
		"{\"login\":\"Octo-Cat\",\"id\":\"101\"}",
		"{\"login\":\"Octo-Cat\",\"id\":1.5}",
		"{\"login\":\"Octo-Cat\",\"id\":null}",
		"{\"login\":\"Octo/Cat\",\"id\":101}", "[1]", "null", "",
	};
	struct got g;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fk.ovr[EP_USER] = (struct ovr){.status = 200, .body = bad[i]};
		g = sign_in(e);
		if (g.err != DD_ERR_UPSTREAM)
			fail_msg("%s: %s", bad[i], dd_errname(g.err));
	}
	fk.ovr[EP_USER] = (struct ovr){.status = 401};
	g = sign_in(e);
	assert_int_equal(g.err, DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(g.why, "HTTP 401"));
	fk.ovr[EP_USER] = (struct ovr){.status = 404};
	assert_int_equal(sign_in(e).err, DD_ERR_UNAUTHORIZED);
	/* 503 is retried once (GETs are idempotent), then UPSTREAM. */
	fk.ovr[EP_USER] = (struct ovr){.status = 503};
	memset(fk.hits, 0, sizeof fk.hits);
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	assert_int_equal(fk.hits[EP_USER], 2);
	fk.ovr[EP_USER] = (struct ovr){.status = 200, .big = 100000};
	assert_int_equal(sign_in(e).err, DD_ERR_UPSTREAM);
	fk.ovr[EP_USER] = (struct ovr){.status = 200, .silent = 1};
	new_client(e, 150);
	assert_int_equal(sign_in(e).err, DD_ERR_TIMEOUT);
}

static void bad_org_lists_mean_no_orgs(void **state)
{
	struct env *e = *state;
	static const char *const bad[] = {
		"{}", "[{\"login\":\"acme\"},{\"id\":5}]",
		"[{\"login\":\"acme\"},{\"login\":\"no spaces\"}]",
		"[{\"login\":\"acme\"},\"beta\"]", "<html>",
		"[{\"login\":null}]",
	};
	char many[8192];
	size_t w = 0;
	struct got g;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fk.orgs = bad[i];
		g = sign_in(e);
		assert_int_equal(g.err, DD_OK);
		assert_int_equal(g.user.n_orgs, 0);
		/* The fleet decision does not depend on the org list. */
		assert_true(g.user.is_fleet_admin);
	}
	fk.ovr[EP_ORGS] = (struct ovr){.status = 500};
	g = sign_in(e);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.user.n_orgs, 0);
	fk.ovr[EP_ORGS] = (struct ovr){.status = 200, .big = 600000};
	assert_int_equal(sign_in(e).user.n_orgs, 0);
	fk.ovr[EP_ORGS] = (struct ovr){0};
	/* 100 orgs: the first DD_GITHUB_MAX_ORGS are kept. */
	many[w++] = '[';
	for (int i = 0; i < 100; i++)
		w += (size_t)snprintf(many + w, sizeof many - w,
				      "%s{\"login\":\"Org-%d\"}",
				      i ? "," : "", i);
	many[w++] = ']';
	many[w] = '\0';
	fk.orgs = many;
	g = sign_in(e);
	assert_int_equal(g.user.n_orgs, DD_GITHUB_MAX_ORGS);
	assert_string_equal(g.user.orgs[47], "org-47");
}

static void device_flow(void **state)
{
	struct env *e = *state;
	struct got g = {0};
	static const char *const bad[] = {
		"{\"user_code\":\"A\",\"verification_uri\":\"https://x/\","
		"\"expires_in\":9}",
		"{\"device_code\":\"d c\",\"user_code\":\"A\","
		"\"verification_uri\":\"https://x/\",\"expires_in\":9}",
		"{\"device_code\":\"d\",\"user_code\":\"A\","
		"\"verification_uri\":"
		"\"javascript:alert(1)\",\"expires_in\":9}",
		"{\"device_code\":\"d\",\"user_code\":\"A\","
		"\"verification_uri\":"
		"\"https://x/\",\"expires_in\":0}",
		"{\"device_code\":\"d\",\"user_code\":\"A\","
		"\"verification_uri\":"
		"\"https://x/\",\"expires_in\":9,\"interval\":0}",
		"{\"device_code\":\"d\",\"user_code\":\"A\","
		"\"verification_uri\":"
		"\"https://x/\",\"expires_in\":9,\"interval\":\"5\"}",
		"{\"error\":\"device_flow_disabled\"}",
	};
	static const struct {
		enum device st;
		dd_err_t err;
		const char *why;
	} polls[] = {
		{DEV_PENDING, DD_ERR_BUSY, "authorization_pending"},
		{DEV_SLOW, DD_ERR_BUSY, "slow_down"},
		{DEV_DENIED, DD_ERR_UNAUTHORIZED, NULL},
		{DEV_EXPIRED, DD_ERR_UNAUTHORIZED, NULL},
		{DEV_OK, DD_OK, ""},
	};

	assert_int_equal(dd_github_device_start(e->gh, &app, on_device, &g),
			 DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_OK);
	assert_string_equal(g.dev.device_code, "dc123");
	assert_string_equal(g.dev.user_code, "ABCD-1234");
	assert_string_equal(g.dev.verification_uri,
			    "https://github.com/login/device");
	assert_int_equal(g.dev.interval_s, 5);
	assert_int_equal(g.dev.expires_in_s, 900);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&g, 0, sizeof g);
		fk.ovr[EP_DEVICE] = (struct ovr){.status = 200, .body = bad[i]};
		assert_int_equal(dd_github_device_start(e->gh, &app, on_device,
							&g), DD_OK);
		run_until(e, &g.calls);
		if (g.err != DD_ERR_UPSTREAM)
			fail_msg("%s: %s", bad[i], dd_errname(g.err));
	}
	for (size_t i = 0; i < sizeof polls / sizeof polls[0]; i++) {
		memset(&g, 0, sizeof g);
		fk.device = polls[i].st;
		assert_int_equal(dd_github_device_poll(e->gh, &app, "dc123",
						       &org_owner, on_user, &g),
				 DD_OK);
		run_until(e, &g.calls);
		assert_int_equal(g.err, polls[i].err);
		if (polls[i].why != NULL)
			assert_string_equal(g.why, polls[i].why);
	}
	assert_true(g.user.is_fleet_admin);
	assert_string_equal(g.user.login, "Octo-Cat");
	memset(&g, 0, sizeof g);
	assert_int_equal(dd_github_device_poll(e->gh, &app, "dc999", &org_owner,
					       on_user, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UNAUTHORIZED);
}

static void bad_arguments_are_refused_at_once(void **state)
{
	struct env *e = *state;
	struct got g = {0};
	dd_github_app no_secret = {"cid", NULL}, bad_id = {"c id", SECRET};
	dd_principal no_id = org_owner, repo = {DD_PRINCIPAL_REPO, "acme", 7};
	dd_principal dots = {DD_PRINCIPAL_REPO, "acme/..", 7};
	dd_principal org_slash = {DD_PRINCIPAL_ORG, "acme/x", 7};
	dd_github *bad = NULL;
	dd_github_opts o = {.oauth_base = "ftp://x"};

	no_id.id = 0;
	assert_int_equal(dd_github_sign_in(e->gh, &app, "a b", REDIRECT,
					   &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "", REDIRECT,
					   &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c\",\"x\":\"",
					   REDIRECT, &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &no_secret, "c", REDIRECT,
					   &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &bad_id, "c", REDIRECT,
					   &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", "not a url",
					   &org_owner, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c",
					   "https://x/\"", &org_owner, on_user,
					   &g), DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", REDIRECT, &no_id,
					   on_user, &g), DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", REDIRECT, &repo,
					   on_user, &g), DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", REDIRECT, &dots,
					   on_user, &g), DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", REDIRECT,
					   &org_slash, on_user, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "c", REDIRECT,
					   &org_owner, NULL, &g),
			 DD_ERR_INVALID);
	assert_int_equal(dd_github_device_poll(e->gh, &app, "d/c", &org_owner,
					       on_user, &g), DD_ERR_INVALID);
	assert_int_equal(dd_github_device_start(e->gh, &bad_id, on_device, &g),
			 DD_ERR_INVALID);
	assert_int_equal(g.calls, 0);
	assert_int_equal(dd_github_new(e->http, &o, &bad), DD_ERR_CONFIG);
	assert_null(bad);
	o.oauth_base = NULL;
	o.api_base = "http://x y";
	assert_int_equal(dd_github_new(e->http, &o, &bad), DD_ERR_CONFIG);
	/* Defaults are GitHub's own. */
	assert_int_equal(dd_github_new(e->http, NULL, &bad), DD_OK);
	dd_github_free(bad);
}

static void free_and_close_cancel(void **state)
{
	struct env *e = *state;
	struct got a = {0}, b = {0}, c = {0};

	assert_int_equal(dd_github_sign_in(e->gh, &app, "good-code", REDIRECT,
					   &org_owner, on_user, &a), DD_OK);
	assert_int_equal(dd_github_device_start(e->gh, &app, on_device, &b),
			 DD_OK);
	dd_github_free(e->gh);
	e->gh = NULL;
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, DD_ERR_CANCELLED);
	/* The client's own callback may free it. */
	new_client(e, 3000);
	c.free_me = &e->gh;
	assert_int_equal(dd_github_sign_in(e->gh, &app, "good-code", REDIRECT,
					   &org_owner, on_user, &c), DD_OK);
	run_until(e, &c.calls);
	assert_int_equal(c.err, DD_OK);
	assert_null(e->gh);
	/* Closing the HTTP client completes calls in flight. */
	new_client(e, 3000);
	memset(&a, 0, sizeof a);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "good-code", REDIRECT,
					   &org_owner, on_user, &a), DD_OK);
	dd_httpc_close(e->http, on_httpc_closed, NULL);
	e->http = NULL;
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
}

static void unreachable_github(void **state)
{
	struct env *e = *state;
	dd_github_opts o = {.oauth_base = "http://127.0.0.1:1",
			    .api_base = "http://127.0.0.1:1", .retry = &fast};
	struct got g = {0};

	dd_github_free(e->gh);
	assert_int_equal(dd_github_new(e->http, &o, &e->gh), DD_OK);
	assert_int_equal(dd_github_sign_in(e->gh, &app, "good-code", REDIRECT,
					   &org_owner, on_user, &g), DD_OK);
	run_until(e, &g.calls);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(g.why, "unreachable"));
}

#ifdef DD_TORTURE
static void on_httpc_closed_flag(dd_httpc *c, void *ud)
{
	dd_httpc_free(c);
	*(int *)ud = 1;
}
#endif

/*
 * R14: each allocation of a whole sign-in (client and fake) in turn.
 * Every round has its own fake and HTTP client: a failure inside the
 * fake can leave a connection, or its listener, stuck for good.
 */
static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	struct env *e = *state;
	dd_httpc_opts ho = {.timeout_ms = 5000};
	unsigned long n, used;

	for (n = 1;; n++) {
		struct got g = {0};
		dd_http_server *srv = NULL;
		char base[64];
		dd_github_opts o = {.oauth_base = base, .api_base = base,
				    .timeout_ms = 300, .retry = &fast};
		dd_httpc *http = NULL;
		dd_github *gh = NULL;
		int closed = 0;
		dd_err_t rc;

		start_fake(&e->loop, &srv, base, sizeof base);
		assert_int_equal(dd_httpc_new(&e->loop, &ho, &http), DD_OK);
		dd_alloc_fail_at(n);
		rc = dd_github_new(http, &o, &gh);
		if (rc == DD_OK)
			rc = dd_github_sign_in(gh, &app, "good-code", REDIRECT,
					       &org_owner, on_user, &g);
		if (rc == DD_OK)
			run_until(e, &g.calls);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		dd_github_free(gh);
		dd_httpc_close(http, on_httpc_closed_flag, &closed);
		while (!closed)
			uv_run(&e->loop, UV_RUN_ONCE);
		stop_fake(&e->loop, srv);
		/* The fake fails too: a request it drops ends in TIMEOUT. */
		if (rc != DD_OK && rc != DD_ERR_NOMEM)
			fail_msg("n=%lu: start %s", n, dd_errname(rc));
		if (rc == DD_OK && g.err != DD_OK && g.err != DD_ERR_NOMEM &&
		    g.err != DD_ERR_UPSTREAM && g.err != DD_ERR_UNAUTHORIZED &&
		    g.err != DD_ERR_TIMEOUT)
			fail_msg("n=%lu: %s (%s)", n, dd_errname(g.err), g.why);
		if (used < n) {
			assert_int_equal(g.err, DD_OK);
			assert_true(g.user.is_fleet_admin);
			break;
		}
	}
	/* The client's own allocations and the fake's, several calls' worth. */
	assert_true(n > 100);
#else
	skip();
#endif
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(org_member_is_admin),
		T(org_classification_fails_closed),
		T(user_owner_is_matched_by_id),
		T(repo_owner_needs_push),
		T(refused_codes_and_credentials),
		T(hostile_token_endpoint),
		T(hostile_user_endpoint),
		T(bad_org_lists_mean_no_orgs),
		T(device_flow),
		T(bad_arguments_are_refused_at_once),
		T(free_and_close_cancel),
		T(unreachable_github),
		T(allocation_failures_are_clean),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
