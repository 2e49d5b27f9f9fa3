/*
 * github.c: the GitHub client's calls (code and device-code exchange,
 * user, orgs, membership, repository permissions) as one operation per
 * sign-in or poll. Shapes and reply reading are github_check.c.
 */
#include "auth/github_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "auth/session.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

_Static_assert(DD_GITHUB_MAX_ORGS == DD_SESSION_MAX_ORGS,
	       "a signed-in user's orgs must fit in a session");

#define DEFAULT_TIMEOUT_MS 10000u
/* Smaller caps before the user is known (R7); orgs are a page of 100. */
#define CAP_OAUTH (16u * 1024)
#define CAP_USER (64u * 1024)
#define CAP_ORGS (512u * 1024)
#define CAP_ENTITY (256u * 1024)        /* /orgs/{org}, /repos/{o}/{r} */
#define CAP_BODY 8192u                   /* our POST bodies */
#define MAX_BASE 1024
#define MAX_TOKEN 255
#define MAX_CODE 256
#define MAX_REDIRECT 2048

static const char UA[] = "User-Agent: devopsdefender";
static const char ACCEPT_JSON[] = "Accept: application/json";
static const char ACCEPT_GH[] = "Accept: application/vnd.github+json";
static const char CTYPE_JSON[] = "Content-Type: application/json";
static const char BEARER[] = "Authorization: Bearer ";

static const long retry_statuses[] = {502, 503, 504};

static const dd_retry_policy default_retry = {
	.max_attempts = 2, .base_ms = 200, .cap_ms = 1000, .max_wait_ms = 2000,
	.statuses = retry_statuses,
	.n_statuses = sizeof retry_statuses / sizeof retry_statuses[0],
};

enum step {
	S_CODE, S_DEVICE_START, S_DEVICE_POLL, S_USER, S_ORGS, S_ORG,
	S_MEMBER, S_REPO,
};

/* One sign-in, device start or poll, from its first request to cb. */
struct op {
	dd_github *g;
	dd_httpc_req *req;
	enum step step;
	dd_github_user_cb ucb;
	dd_github_device_cb dcb;
	void *ud;
	char *secret;       /* the client secret, kept out of why; wiped */
	char *auth;         /* "Authorization: Bearer <token>"; wiped */
	size_t auth_len;
	dd_principal owner;
	dd_github_user user;
	struct op *prev, *next;
};

struct dd_github {
	dd_httpc *http;
	char *oauth;
	char *api;
	uint64_t timeout_ms;
	dd_retry_policy retry;
	long statuses[DD_RETRY_MAX_STATUSES];
	struct op *ops;
	int freeing;
};

/* --- operations --------------------------------------------------------- */

static void op_unlink(struct op *op)
{
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		op->g->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

static void op_free(struct op *op)
{
	if (op == NULL)
		return;
	if (op->secret != NULL)
		dd_freezero(op->secret, strlen(op->secret));
	dd_freezero(op->auth, op->auth_len);
	dd_free(op);
}

/* Delivers the outcome; the callback may free the client. */
static void finish(struct op *op, dd_err_t err, const dd_github_device *dev,
		   const char *why)
{
	op_unlink(op);
	if (op->dcb != NULL)
		op->dcb(err, err ? NULL : dev, why, op->ud);
	else
		op->ucb(err, err ? NULL : &op->user, why, op->ud);
	op_free(op);
}

static void on_done(dd_httpc_result *res, void *ud);

static dd_err_t start(struct op *op, enum step step, const char *method,
		      const char *url, const char *const *headers,
		      size_t n_headers, const dd_buf *body, size_t cap)
{
	dd_httpc_request rq = {0};

	rq.method = method;
	rq.url = url;
	rq.headers = headers;
	rq.n_headers = n_headers;
	if (body != NULL) {
		rq.body = body->data;
		rq.body_len = body->len;
	}
	rq.timeout_ms = op->g->timeout_ms;
	rq.max_response = cap;
	/* A code is single-use: a POST that reached GitHub is not resent. */
	rq.retry = body == NULL ? &op->g->retry : NULL;
	op->step = step;
	return dd_httpc_start(op->g->http, &rq, on_done, op, &op->req);
}

static dd_err_t post_oauth(struct op *op, enum step step, const char *path,
			   const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* POSTs a JSON body built from checked values (no escaping needed). */
static dd_err_t post_oauth(struct op *op, enum step step, const char *path,
			   const char *fmt, ...)
{
	const char *headers[] = {ACCEPT_JSON, CTYPE_JSON, UA};
	dd_buf url, body;
	va_list ap;
	dd_err_t rc;

	dd_buf_init(&url, MAX_BASE + 64);
	dd_buf_init(&body, CAP_BODY);
	rc = dd_buf_appendf(&url, "%s%s", op->g->oauth, path);
	if (rc)
		goto out;
	/* One allocation up front: no secret-holding copy left by growth. */
	rc = dd_buf_reserve(&body, CAP_BODY);
	if (rc)
		goto out;
	va_start(ap, fmt);
	rc = dd_buf_vappendf(&body, fmt, ap);
	va_end(ap);
	if (rc)
		goto out;
	rc = start(op, step, "POST", dd_buf_str(&url), headers, 3, &body,
		   CAP_OAUTH);
out:
	dd_buf_free(&url);
	dd_buf_freezero(&body);
	return rc;
}

static dd_err_t get_api(struct op *op, enum step step, size_t cap,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static dd_err_t get_api(struct op *op, enum step step, size_t cap,
			const char *fmt, ...)
{
	const char *headers[] = {op->auth, ACCEPT_GH, UA};
	dd_buf url;
	va_list ap;
	dd_err_t rc;

	dd_buf_init(&url, MAX_BASE + 512);
	rc = dd_buf_append_str(&url, op->g->api);
	if (rc)
		goto out;
	va_start(ap, fmt);
	rc = dd_buf_vappendf(&url, fmt, ap);
	va_end(ap);
	if (rc)
		goto out;
	rc = start(op, step, "GET", dd_buf_str(&url), headers, 3, NULL, cap);
out:
	dd_buf_free(&url);
	return rc;
}

/* --- replies ------------------------------------------------------------ */

static dd_err_t done(struct op *op)
{
	finish(op, DD_OK, NULL, "");
	return DD_OK;
}

static dd_err_t oauth_error(const struct op *op, const json_t *v,
			    const char *error, char *why, size_t n)
{
	const char *desc = "";
	char e[64], d[200];
	int device = op->step == S_DEVICE_POLL;

	if (device && (strcmp(error, "authorization_pending") == 0 ||
		       strcmp(error, "slow_down") == 0)) {
		snprintf(why, n, "%s", error);
		return DD_ERR_BUSY;
	}
	(void)dd_json_get_str(v, "error_description", &desc);
	gh_quote(error, op->secret, e, sizeof e);
	gh_quote(desc, op->secret, d, sizeof d);
	if (strcmp(error, "bad_verification_code") == 0 ||
	    (device && (strcmp(error, "access_denied") == 0 ||
			strcmp(error, "expired_token") == 0 ||
			strcmp(error, "incorrect_device_code") == 0))) {
		snprintf(why, n, "GitHub refused the %s (%s): %s",
			 device ? "device code" : "code", e, d);
		return DD_ERR_UNAUTHORIZED;
	}
	snprintf(why, n, "GitHub refused the request (%s): %s", e, d);
	return DD_ERR_UPSTREAM;
}

static dd_err_t set_auth(struct op *op, const char *token)
{
	size_t n = sizeof BEARER + strlen(token);

	op->auth = dd_malloc(n);
	if (op->auth == NULL)
		return DD_ERR_NOMEM;
	op->auth_len = n;
	snprintf(op->auth, n, "%s%s", BEARER, token);
	return DD_OK;
}

/* The code (or device code) exchange; on success, fetch the user. */
static dd_err_t on_token(struct op *op, const dd_httpc_result *res,
			 char *why, size_t n)
{
	const char *error = NULL, *token = NULL;
	json_t *v = NULL;
	dd_err_t rc;

	if (res->err)
		return gh_transport(res, "token exchange", why, n);
	if (!gh_is_2xx(res)) {
		snprintf(why, n, "GitHub token exchange answered HTTP %ld",
			 res->status);
		return DD_ERR_UPSTREAM;
	}
	rc = gh_parse(res, 0, "token exchange", &v, why, n);
	if (rc)
		return rc;
	rc = dd_json_get_str(v, "error", &error);
	if (rc == DD_OK) {
		rc = oauth_error(op, v, error, why, n);
		goto out;
	}
	if (rc != DD_ERR_NOT_FOUND) {
		snprintf(why, n, "GitHub token exchange: malformed error");
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	rc = dd_json_get_str(v, "access_token", &token);
	if (rc == DD_ERR_NOT_FOUND) {
		snprintf(why, n, "GitHub granted no access token");
		rc = DD_ERR_UNAUTHORIZED;
		goto out;
	}
	if (rc || !gh_text_ok(token, MAX_TOKEN, GH_CS_TOKEN)) {
		snprintf(why, n, "GitHub sent a malformed access token");
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	rc = set_auth(op, token);
	if (rc)
		goto out;
	rc = get_api(op, S_USER, CAP_USER, "/user");
out:
	json_decref(v);
	return rc;
}

static dd_err_t on_user(struct op *op, const dd_httpc_result *res,
			char *why, size_t n)
{
	const char *login = NULL;
	json_t *v = NULL;
	dd_err_t rc;

	if (res->err)
		return gh_transport(res, "user lookup", why, n);
	if (res->status >= 500) {
		snprintf(why, n, "GitHub user lookup answered HTTP %ld",
			 res->status);
		return DD_ERR_UPSTREAM;
	}
	if (!gh_is_2xx(res)) {
		snprintf(why, n, "GitHub refused the user token (HTTP %ld)",
			 res->status);
		return DD_ERR_UNAUTHORIZED;
	}
	rc = gh_parse(res, 0, "user lookup", &v, why, n);
	if (rc)
		return rc;
	if (dd_json_get_str(v, "login", &login) != DD_OK || !gh_login_ok(login)) {
		snprintf(why, n, "GitHub user reply has no valid login");
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	if (dd_json_get_u64(v, "id", 1, INT64_MAX, &op->user.id) != DD_OK) {
		snprintf(why, n, "GitHub user reply has no valid id");
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	snprintf(op->user.login, sizeof op->user.login, "%s", login);
	rc = get_api(op, S_ORGS, CAP_ORGS, "/user/orgs?per_page=100");
out:
	json_decref(v);
	return rc;
}

/* All or nothing: one malformed entry and the user has no orgs. */
static void read_orgs(struct op *op, const json_t *arr)
{
	dd_github_user *u = &op->user;
	const json_t *o;
	const char *login;
	size_t i;

	u->n_orgs = 0;
	json_array_foreach(arr, i, o) {
		if (i == DD_GITHUB_MAX_ORGS)
			break;
		if (dd_json_get_str(o, "login", &login) != DD_OK ||
		    !gh_login_ok(login)) {
			u->n_orgs = 0;
			return;
		}
		for (size_t j = 0; login[j] != '\0'; j++) {
			char ch = login[j];
			u->orgs[i][j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32)
							       : ch;
		}
		u->orgs[i][strlen(login)] = '\0';
		u->n_orgs = i + 1;
	}
}

static dd_err_t classify(struct op *op)
{
	switch (op->owner.kind) {
	case DD_PRINCIPAL_ORG:
		return get_api(op, S_ORG, CAP_ENTITY, "/orgs/%s",
			       op->owner.name);
	case DD_PRINCIPAL_REPO:
		return get_api(op, S_REPO, CAP_ENTITY, "/repos/%s",
			       op->owner.name);
	case DD_PRINCIPAL_USER:
	default:
		op->user.is_fleet_admin = op->user.id == op->owner.id;
		return done(op);
	}
}

static dd_err_t on_orgs(struct op *op, const dd_httpc_result *res,
			char *why, size_t n)
{
	json_t *v = NULL;
	char ignored[8];

	if (gh_is_2xx(res) &&
	    gh_parse(res, 1, "orgs", &v, ignored, sizeof ignored) == DD_OK)
		read_orgs(op, v);
	json_decref(v);
	return classify(op);
}

/* The owner org must still be the one with the owner's id. */
static dd_err_t on_org(struct op *op, const dd_httpc_result *res, char *why,
		       size_t n)
{
	json_t *v = NULL;
	uint64_t id = 0;
	char ignored[8];
	int same = 0;

	if (gh_is_2xx(res) &&
	    gh_parse(res, 0, "org", &v, ignored, sizeof ignored) == DD_OK)
		same = dd_json_get_u64(v, "id", 1, INT64_MAX, &id) == DD_OK &&
		       id == op->owner.id;
	json_decref(v);
	if (!same)
		return done(op);
	return get_api(op, S_MEMBER, CAP_ENTITY, "/orgs/%s/public_members/%s",
		       op->owner.name, op->user.login);
}

static dd_err_t on_member(struct op *op, const dd_httpc_result *res,
			  char *why, size_t n)
{
	op->user.is_fleet_admin = gh_is_2xx(res);
	return done(op);
}

static int granted(const json_t *perms, const char *name)
{
	int yes = 0;

	return dd_json_get_bool(perms, name, &yes) == DD_OK && yes;
}

static dd_err_t on_repo(struct op *op, const dd_httpc_result *res,
			char *why, size_t n)
{
	const json_t *perms;
	json_t *v = NULL;
	uint64_t id = 0;
	char ignored[8];

	if (gh_is_2xx(res) &&
	    gh_parse(res, 0, "repository", &v, ignored, sizeof ignored) == DD_OK &&
	    dd_json_get_u64(v, "id", 1, INT64_MAX, &id) == DD_OK &&
	    id == op->owner.id) {
		perms = json_object_get(v, "permissions");
		op->user.is_fleet_admin = granted(perms, "admin") ||
					  granted(perms, "maintain") ||
					  granted(perms, "push");
	}
	json_decref(v);
	return done(op);
}

static dd_err_t on_device(struct op *op, const dd_httpc_result *res,
			  char *why, size_t n)
{
	dd_github_device dev;
	const char *dc = NULL, *uc = NULL, *uri = NULL, *error = NULL;
	json_t *v = NULL;
	dd_err_t rc;

	memset(&dev, 0, sizeof dev);
	if (res->err)
		return gh_transport(res, "device code request", why, n);
	if (!gh_is_2xx(res)) {
		snprintf(why, n, "GitHub device code request answered HTTP %ld",
			 res->status);
		return DD_ERR_UPSTREAM;
	}
	rc = gh_parse(res, 0, "device code", &v, why, n);
	if (rc)
		return rc;
	if (dd_json_get_str(v, "error", &error) == DD_OK) {
		rc = oauth_error(op, v, error, why, n);
		goto out;
	}
	rc = DD_ERR_UPSTREAM;
	if (dd_json_get_str(v, "device_code", &dc) != DD_OK ||
	    !gh_text_ok(dc, sizeof dev.device_code - 1, GH_CS_ID) ||
	    dd_json_get_str(v, "user_code", &uc) != DD_OK ||
	    !gh_text_ok(uc, sizeof dev.user_code - 1, GH_CS_LOGIN) ||
	    dd_json_get_str(v, "verification_uri", &uri) != DD_OK ||
	    strlen(uri) >= sizeof dev.verification_uri ||
	    dd_httpc_check_url(uri) != DD_OK ||
	    dd_json_get_u64(v, "expires_in", 1, 86400, &dev.expires_in_s) !=
		    DD_OK) {
		snprintf(why, n, "GitHub device code reply is malformed");
		goto out;
	}
	dev.interval_s = 5;
	if (json_object_get(v, "interval") != NULL &&
	    dd_json_get_u64(v, "interval", 1, 3600, &dev.interval_s) != DD_OK) {
		snprintf(why, n, "GitHub device code reply has a bad interval");
		goto out;
	}
	snprintf(dev.device_code, sizeof dev.device_code, "%s", dc);
	snprintf(dev.user_code, sizeof dev.user_code, "%s", uc);
	snprintf(dev.verification_uri, sizeof dev.verification_uri, "%s", uri);
	finish(op, DD_OK, &dev, "");
	rc = DD_OK;
out:
	json_decref(v);
	return rc;
}

typedef dd_err_t (*step_fn)(struct op *op, const dd_httpc_result *res,
			    char *why, size_t n);

static const step_fn steps[] = {
	[S_CODE] = on_token, [S_DEVICE_START] = on_device,
	[S_DEVICE_POLL] = on_token, [S_USER] = on_user, [S_ORGS] = on_orgs,
	[S_ORG] = on_org, [S_MEMBER] = on_member, [S_REPO] = on_repo,
};

static void on_done(dd_httpc_result *res, void *ud)
{
	struct op *op = ud;
	char why[384] = "";
	dd_err_t rc;

	op->req = NULL;
	/* Even the fail-closed checks stop when the HTTP client closes. */
	if (res->err == DD_ERR_CANCELLED)
		rc = gh_transport(res, "call", why, sizeof why);
	else
		rc = steps[op->step](op, res, why, sizeof why);
	/* Token replies hold the user token. */
	dd_buf_freezero(&res->body);
	if (rc == DD_OK)
		return;         /* the next call is running, or op finished */
	if (why[0] == '\0')
		snprintf(why, sizeof why, "GitHub sign-in failed: %s",
			 dd_strerror(rc));
	finish(op, rc, NULL, why);
}

/* --- public ------------------------------------------------------------- */

static dd_err_t base_url(const char *in, const char *def, char **out)
{
	size_t n;

	if (in == NULL)
		in = def;
	n = strlen(in);
	if (n > MAX_BASE || dd_httpc_check_url(in) != DD_OK)
		return DD_ERR_CONFIG;
	/* A trailing slash would double up in every URL. */
	while (n > 0 && in[n - 1] == '/')
		n--;
	*out = dd_strndup(in, n);
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

dd_err_t dd_github_new(dd_httpc *http, const dd_github_opts *opts,
		       dd_github **out)
{
	dd_github_opts none = {0};
	dd_github *g = NULL;
	const dd_retry_policy *rp;
	dd_err_t rc;

	*out = NULL;
	if (opts == NULL)
		opts = &none;
	g = dd_calloc(1, sizeof *g);
	if (g == NULL)
		return DD_ERR_NOMEM;
	g->http = http;
	rc = base_url(opts->oauth_base, DD_GITHUB_DEFAULT_OAUTH, &g->oauth);
	if (rc)
		goto out;
	rc = base_url(opts->api_base, DD_GITHUB_DEFAULT_API, &g->api);
	if (rc)
		goto out;
	g->timeout_ms = opts->timeout_ms;
	if (g->timeout_ms == 0)
		g->timeout_ms = DEFAULT_TIMEOUT_MS;
	rp = opts->retry != NULL ? opts->retry : &default_retry;
	g->retry = *rp;
	/* The caller's status list need not outlive this call. */
	if (g->retry.n_statuses > DD_RETRY_MAX_STATUSES)
		g->retry.n_statuses = DD_RETRY_MAX_STATUSES;
	if (g->retry.n_statuses > 0)
		memcpy(g->statuses, rp->statuses,
		       g->retry.n_statuses * sizeof g->statuses[0]);
	g->retry.statuses = g->statuses;
	*out = g;
	g = NULL; /* transferred */
out:
	dd_github_free(g);
	return rc;
}

void dd_github_free(dd_github *g)
{
	if (g == NULL || g->freeing)
		return;
	g->freeing = 1;
	while (g->ops != NULL) {
		struct op *op = g->ops;

		if (op->req != NULL)
			dd_httpc_cancel(op->req);
		op->req = NULL;
		finish(op, DD_ERR_CANCELLED, NULL, "GitHub client closed");
	}
	dd_free(g->oauth);
	dd_free(g->api);
	dd_free(g);
}

static int redirect_ok(const char *uri)
{
	return uri != NULL && strnlen(uri, MAX_REDIRECT + 1) <= MAX_REDIRECT &&
	       dd_httpc_check_url(uri) == DD_OK && strchr(uri, '"') == NULL &&
	       strchr(uri, '\\') == NULL;
}

/* A new operation, linked into g so that dd_github_free finds it. */
static struct op *begin(dd_github *g, const dd_github_app *app,
			const dd_principal *owner, dd_github_user_cb ucb,
			dd_github_device_cb dcb, void *ud)
{
	struct op *op = dd_calloc(1, sizeof *op);

	if (op == NULL)
		return NULL;
	if (app->client_secret != NULL) {
		op->secret = dd_strdup(app->client_secret);
		if (op->secret == NULL) {
			dd_free(op);
			return NULL;
		}
	}
	op->g = g;
	if (owner != NULL)
		op->owner = *owner;
	op->ucb = ucb;
	op->dcb = dcb;
	op->ud = ud;
	op->next = g->ops;
	if (g->ops != NULL)
		g->ops->prev = op;
	g->ops = op;
	return op;
}

/* Ends begin(): on failure op goes without a callback. */
static dd_err_t first(struct op *op, dd_err_t rc)
{
	if (rc) {
		op_unlink(op);
		op_free(op);
	}
	return rc;
}

dd_err_t dd_github_sign_in(dd_github *g, const dd_github_app *app,
			   const char *code, const char *redirect_uri,
			   const dd_principal *owner, dd_github_user_cb cb,
			   void *ud)
{
	struct op *op;

	if (!gh_app_ok(app, 1) || !gh_text_ok(code, MAX_CODE, GH_CS_ID) ||
	    !redirect_ok(redirect_uri) || !gh_owner_ok(owner) || cb == NULL)
		return DD_ERR_INVALID;
	op = begin(g, app, owner, cb, NULL, ud);
	if (op == NULL)
		return DD_ERR_NOMEM;
	return first(op, post_oauth(op, S_CODE, "/login/oauth/access_token",
				    "{\"client_id\":\"%s\",\"client_secret\":"
				    "\"%s\",\"code\":\"%s\",\"redirect_uri\":"
				    "\"%s\"}", app->client_id,
				    app->client_secret, code, redirect_uri));
}

dd_err_t dd_github_device_start(dd_github *g, const dd_github_app *app,
				dd_github_device_cb cb, void *ud)
{
	struct op *op;

	if (!gh_app_ok(app, 0) || cb == NULL)
		return DD_ERR_INVALID;
	op = begin(g, app, NULL, NULL, cb, ud);
	if (op == NULL)
		return DD_ERR_NOMEM;
	return first(op, post_oauth(op, S_DEVICE_START, "/login/device/code",
				    "{\"client_id\":\"%s\",\"scope\":"
				    "\"read:org\"}", app->client_id));
}

dd_err_t dd_github_device_poll(dd_github *g, const dd_github_app *app,
			       const char *device_code,
			       const dd_principal *owner, dd_github_user_cb cb,
			       void *ud)
{
	struct op *op;

	if (!gh_app_ok(app, 1) || !gh_text_ok(device_code, 127, GH_CS_ID) ||
	    !gh_owner_ok(owner) || cb == NULL)
		return DD_ERR_INVALID;
	op = begin(g, app, owner, cb, NULL, ud);
	if (op == NULL)
		return DD_ERR_NOMEM;
	return first(op, post_oauth(op, S_DEVICE_POLL,
				    "/login/oauth/access_token",
				    "{\"client_id\":\"%s\",\"client_secret\":"
				    "\"%s\",\"device_code\":\"%s\","
				    "\"grant_type\":\"urn:ietf:params:oauth:"
				    "grant-type:device_code\"}", app->client_id,
				    app->client_secret, device_code));
}
