#include "auth/broker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/cookie.h"
#include "auth/replay.h"
#include "auth/return_to.h"
#include "auth/signer.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"

#define STATE_LIFETIME_S 600
#define STATE_MEMORY 16384      /* callbacks remembered for replay */

static const char *const app_names[3] = {"generic", "production", "staging"};

struct dd_broker {
	dd_principal owner;
	const dd_session_keys *keys;
	dd_github *github;
	char *oauth_base;
	char *client_id[3];
	char *client_secret[3];
	char *callback_url;       /* NULL: derived from origin */
	char *cookie_domain;
	char *domain;
	char *origin;
	int dev;
	int64_t (*now)(void);
	dd_signer *tickets;
	dd_replay *states;        /* OAuth states already used */
};

/* A request waiting for GitHub. */
struct pending {
	dd_broker *b;
	dd_http_req *req;         /* NULL once the client went away */
	char return_to[DD_RETURN_TO_MAX + 1];
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static int secure(const dd_broker *b)
{
	return b->origin != NULL && strncmp(b->origin, "https://", 8) == 0;
}

static dd_err_t check_return(const dd_broker *b, const char *url,
			     char origin[256], char path[DD_RETURN_TO_MAX + 1],
			     char *why, size_t why_len)
{
	dd_return_to_policy p = {.own_origin = b->origin, .domain = b->domain,
				 .dev = b->dev};

	return dd_return_to_check(&p, url, origin, 256, path,
				  DD_RETURN_TO_MAX + 1, why, why_len);
}

static void on_abort(void *ud)
{
	struct pending *p = ud;

	p->req = NULL;
}

static struct pending *pending_new(dd_broker *b, dd_http_req *req)
{
	struct pending *p = dd_calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->b = b;
	p->req = req;
	dd_http_req_on_abort(req, on_abort, p);
	return p;
}

/* Detaches p from its request; NULL when the client went away. */
static dd_http_req *pending_take(struct pending *p)
{
	dd_http_req *req = p->req;

	if (req != NULL)
		dd_http_req_on_abort(req, NULL, NULL);
	return req;
}

/* --- cookies and sessions -------------------------------------------- */

static dd_err_t set_cookie(dd_broker *b, dd_http_req *req, const char *name,
			   const char *value, int64_t max_age)
{
	dd_buf c;
	dd_err_t rc;

	dd_buf_init(&c, 8192);
	rc = dd_cookie_format(name, value, b->cookie_domain, max_age, secure(b),
			      &c);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Set-Cookie", dd_buf_str(&c));
	dd_buf_free(&c);
	return rc;
}

/* Signs s, sets it as the session cookie and redirects to where. */
static void sign_in(dd_broker *b, dd_http_req *req, const dd_session *s,
		    const char *where, int status)
{
	dd_buf tok;
	dd_err_t rc;

	dd_buf_init(&tok, DD_SESSION_MAX_TOKEN);
	rc = dd_session_sign(b->keys, s, &tok);
	if (rc == DD_OK)
		rc = set_cookie(b, req, DD_SESSION_COOKIE, dd_buf_str(&tok),
				DD_SESSION_LIFETIME_S);
	if (rc == DD_OK)
		rc = set_cookie(b, req, DD_NONCE_COOKIE, "", 0);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Location", where);
	if (rc)
		dd_http_respond_err(req, rc, "issuing the session");
	else
		dd_http_respond(req, status, "text/plain", "signed in\n", 10);
	dd_buf_free(&tok);
}

static void session_from_user(const dd_broker *b, const dd_github_user *u,
			      dd_session *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->login, sizeof s->login, "%s", u->login);
	s->user_id = u->id;
	s->exp = b->now() + DD_SESSION_LIFETIME_S;
	s->owner = b->owner;
	s->n_orgs = u->n_orgs < DD_SESSION_MAX_ORGS ? u->n_orgs
						     : DD_SESSION_MAX_ORGS;
	for (size_t i = 0; i < s->n_orgs; i++)
		snprintf(s->orgs[i], sizeof s->orgs[i], "%s", u->orgs[i]);
	s->is_fleet_admin = u->is_fleet_admin;
}

/* --- GitHub sign-in --------------------------------------------------- */

/* app.* and app-* hosts are production's app; others staging's (spec). */
static int pick_app(const dd_broker *b, const char *origin)
{
	const char *host = strstr(origin, "://");
	int want = 2;

	host = host ? host + 3 : origin;
	if (strncmp(host, "app.", 4) == 0 || strncmp(host, "app-", 4) == 0)
		want = 1;
	if (b->client_id[want] != NULL && b->client_secret[want] != NULL)
		return want;
	if (b->client_id[0] != NULL && b->client_secret[0] != NULL)
		return 0;
	return -1;
}

static dd_err_t callback_url(const dd_broker *b, dd_buf *out)
{
	if (b->callback_url != NULL)
		return dd_buf_append_str(out, b->callback_url);
	return dd_buf_appendf(out, "%s/auth/github/callback", b->origin);
}

static dd_err_t authorize_url(const dd_broker *b, int app, const char *state,
			      dd_buf *out)
{
	dd_buf cb;
	dd_err_t rc;

	dd_buf_init(&cb, 2048);
	rc = callback_url(b, &cb);
	if (rc == DD_OK)
		rc = dd_buf_appendf(out, "%s/login/oauth/authorize?client_id=",
				    b->oauth_base);
	if (rc == DD_OK)
		rc = dd_pct_encode(b->client_id[app], strlen(b->client_id[app]),
				   out);
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "&redirect_uri=");
	if (rc == DD_OK)
		rc = dd_pct_encode(dd_buf_str(&cb), cb.len, out);
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "&state=");
	if (rc == DD_OK)
		rc = dd_pct_encode(state, strlen(state), out);
	dd_buf_free(&cb);
	return rc;
}

static void handle_start(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	dd_oauth_state st;
	char origin[256], path[DD_RETURN_TO_MAX + 1], why[160];
	uint8_t raw[32];
	dd_buf nonce, state, url;
	int app;
	dd_err_t rc;

	(void)who;
	rc = check_return(b, dd_http_req_query(req, "return_to"), origin, path,
			  why, sizeof why);
	if (rc) {
		dd_http_respond_error(req, 400, "bad_return_to", "%s", why);
		return;
	}
	app = pick_app(b, origin);
	if (b->github == NULL || app < 0) {
		dd_http_respond_error(req, 500, "no_oauth_app",
				      "GitHub sign-in is not configured here");
		return;
	}
	memset(&st, 0, sizeof st);
	dd_buf_init(&nonce, 64);
	dd_buf_init(&state, DD_SESSION_MAX_TOKEN);
	dd_buf_init(&url, 8192);
	rc = dd_random_bytes(raw, sizeof raw);
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_URL, raw, sizeof raw, &nonce);
	if (rc == DD_OK && snprintf(st.return_to, sizeof st.return_to, "%s%s",
				    origin, path) >= (int)sizeof st.return_to)
		rc = DD_ERR_TOO_LARGE;
	if (rc == DD_OK) {
		snprintf(st.nonce, sizeof st.nonce, "%s", dd_buf_str(&nonce));
		snprintf(st.app, sizeof st.app, "%s", app_names[app]);
		st.exp = b->now() + STATE_LIFETIME_S;
		rc = dd_oauth_state_sign(b->keys, &st, &state);
	}
	if (rc == DD_OK)
		rc = authorize_url(b, app, dd_buf_str(&state), &url);
	if (rc == DD_OK)
		rc = set_cookie(b, req, DD_NONCE_COOKIE, dd_buf_str(&nonce),
				STATE_LIFETIME_S);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Location", dd_buf_str(&url));
	if (rc)
		dd_http_respond_err(req, rc, "starting sign-in");
	else
		dd_http_respond(req, 307, "text/plain", "to GitHub\n", 10);
	dd_buf_free(&nonce);
	dd_buf_free(&state);
	dd_buf_free(&url);
}

static void on_signed_in(dd_err_t err, const dd_github_user *user,
			 const char *why, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = pending_take(p);
	dd_session s;

	if (req == NULL) {
		dd_free(p);
		return;
	}
	if (err == DD_ERR_UNAUTHORIZED)
		dd_http_respond_error(req, 401, "github_refused", "%s", why);
	else if (err)
		dd_http_respond_error(req, 502, "github_failed", "%s", why);
	if (err) {
		dd_free(p);
		return;
	}
	session_from_user(p->b, user, &s);
	sign_in(p->b, req, &s, p->return_to, 307);
	dd_free(p);
}

/* Everything the callback must prove before GitHub is even asked. */
static int callback_checks(dd_broker *b, dd_http_req *req,
			   dd_oauth_state *st)
{
	const char *state = dd_http_req_query(req, "state");
	const char *v;
	size_t n;
	char why[160], origin[256], path[DD_RETURN_TO_MAX + 1];
	dd_err_t rc;

	if (state == NULL || dd_http_req_query(req, "code") == NULL) {
		dd_http_respond_error(req, 400, "bad_request",
				      "code and state are required");
		return 0;
	}
	if (dd_oauth_state_verify(b->keys, state, strlen(state), b->now(), st,
				  why, sizeof why) != DD_OK) {
		dd_http_respond_error(req, 401, "bad_state", "%s", why);
		return 0;
	}
	if (check_return(b, st->return_to, origin, path, why, sizeof why)) {
		dd_http_respond_error(req, 400, "bad_return_to", "%s", why);
		return 0;
	}
	/* The nonce cookie ties the state to the browser that started. */
	if (dd_cookie_get(dd_http_req_header(req, "Cookie"), DD_NONCE_COOKIE,
			  &v, &n) != DD_OK || n == 0) {
		dd_http_respond_error(req, 401, "no_nonce",
				      "the sign-in nonce cookie is missing");
		return 0;
	}
	if (n != strlen(st->nonce) || CRYPTO_memcmp(v, st->nonce, n) != 0) {
		dd_http_respond_error(req, 401, "bad_nonce",
				      "the sign-in nonce does not match");
		return 0;
	}
	rc = dd_replay_use(b->states, st->nonce, strlen(st->nonce), st->exp,
			   b->now());
	if (rc == DD_ERR_EXISTS) {
		dd_http_respond_error(req, 401, "state_replayed",
				      "this sign-in was already completed");
		return 0;
	}
	if (rc) {
		dd_http_respond_err(req, rc, "remembering the sign-in");
		return 0;
	}
	return 1;
}

static void handle_callback(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	dd_oauth_state st;
	struct pending *p;
	dd_github_app app;
	dd_buf cb;
	int i;
	dd_err_t rc;

	(void)who;
	if (!callback_checks(b, req, &st))
		return;
	for (i = 0; i < 3 && strcmp(app_names[i], st.app) != 0; i++)
		;
	if (i == 3 || b->client_id[i] == NULL || b->github == NULL) {
		dd_http_respond_error(req, 500, "no_oauth_app",
				      "the sign-in's OAuth app is not configured");
		return;
	}
	app = (dd_github_app){b->client_id[i], b->client_secret[i]};
	p = pending_new(b, req);
	dd_buf_init(&cb, 2048);
	rc = p ? callback_url(b, &cb) : DD_ERR_NOMEM;
	if (rc == DD_OK) {
		snprintf(p->return_to, sizeof p->return_to, "%s", st.return_to);
		rc = dd_github_sign_in(b->github, &app,
				       dd_http_req_query(req, "code"),
				       dd_buf_str(&cb), &b->owner, on_signed_in,
				       p);
	}
	dd_buf_free(&cb);
	if (rc) {
		if (p != NULL)
			pending_take(p);
		dd_free(p);
		dd_http_respond_err(req, rc, "asking GitHub");
	}
}

/* --- device flow (native clients) ------------------------------------ */

static void on_device(dd_err_t err, const dd_github_device *dev,
		      const char *why, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = pending_take(p);
	json_t *o;

	dd_free(p);
	if (req == NULL)
		return;
	if (err) {
		dd_http_respond_error(req, 502, "github_failed", "%s", why);
		return;
	}
	o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "device_code",
		      dev->device_code, "user_code", dev->user_code,
		      "verification_uri", dev->verification_uri, "interval",
		      (json_int_t)dev->interval_s, "expires_in",
		      (json_int_t)dev->expires_in_s);
	if (o == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
}

static int device_app(const dd_broker *b, dd_github_app *app)
{
	int i = pick_app(b, b->origin ? b->origin : "");

	if (i < 0 || b->github == NULL)
		return 0;
	*app = (dd_github_app){b->client_id[i], b->client_secret[i]};
	return 1;
}

static void handle_device_start(dd_http_req *req, const dd_caller *who,
				void *ud)
{
	dd_broker *b = ud;
	dd_github_app app;
	struct pending *p;
	dd_err_t rc;

	(void)who;
	if (!device_app(b, &app)) {
		dd_http_respond_error(req, 500, "no_oauth_app",
				      "GitHub sign-in is not configured here");
		return;
	}
	p = pending_new(b, req);
	rc = p ? dd_github_device_start(b->github, &app, on_device, p)
	       : DD_ERR_NOMEM;
	if (rc) {
		if (p != NULL)
			pending_take(p);
		dd_free(p);
		dd_http_respond_err(req, rc, "asking GitHub");
	}
}

static void on_device_user(dd_err_t err, const dd_github_user *user,
			   const char *why, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = pending_take(p);
	dd_session s;
	dd_buf tok;
	json_t *o;
	dd_err_t rc;

	if (req == NULL)
		goto out;
	if (err == DD_ERR_BUSY) {
		dd_http_respond_error(req, 202, "pending", "%s", why);
		goto out;
	}
	if (err) {
		dd_http_respond_error(req, err == DD_ERR_UNAUTHORIZED ? 401 : 502,
				      "github_refused", "%s", why);
		goto out;
	}
	session_from_user(p->b, user, &s);
	dd_buf_init(&tok, DD_SESSION_MAX_TOKEN);
	rc = dd_session_sign(p->b->keys, &s, &tok);
	o = rc ? NULL : json_pack("{s:s, s:I}", "token", dd_buf_str(&tok),
				  "expires_at", (json_int_t)s.exp);
	if (o == NULL)
		dd_http_respond_err(req, rc ? rc : DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
	dd_buf_free(&tok);
out:
	dd_free(p);
}

static void handle_device_poll(dd_http_req *req, const dd_caller *who,
			       void *ud)
{
	dd_broker *b = ud;
	dd_github_app app;
	struct pending *p;
	const uint8_t *body;
	size_t len;
	json_t *v = NULL;
	const char *code;
	char why[128];
	dd_err_t rc;

	(void)who;
	body = dd_http_req_body(req, &len);
	rc = dd_json_parse(body, len, 4096, &v, why, sizeof why);
	code = rc ? NULL : json_string_value(json_object_get(v, "device_code"));
	if (code == NULL) {
		dd_http_respond_error(req, 400, "bad_request",
				      "expected {\"device_code\": string}");
		json_decref(v);
		return;
	}
	if (!device_app(b, &app)) {
		json_decref(v);
		dd_http_respond_error(req, 500, "no_oauth_app",
				      "GitHub sign-in is not configured here");
		return;
	}
	p = pending_new(b, req);
	rc = p ? dd_github_device_poll(b->github, &app, code, &b->owner,
				       on_device_user, p)
	       : DD_ERR_NOMEM;
	json_decref(v);
	if (rc) {
		if (p != NULL)
			pending_take(p);
		dd_free(p);
		dd_http_respond_err(req, rc, "asking GitHub");
	}
}

/* --- session endpoints ------------------------------------------------- */

static void handle_logout(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	const char *acc = dd_http_req_header(req, "Accept");
	dd_err_t rc;

	(void)who;
	rc = set_cookie(b, req, DD_SESSION_COOKIE, "", 0);
	if (rc) {
		dd_http_respond_err(req, rc, "clearing the session");
		return;
	}
	if (acc != NULL && strstr(acc, "text/html") != NULL &&
	    dd_http_set_header(req, "Location", "/") == DD_OK) {
		dd_http_respond(req, 303, "text/plain", "signed out\n", 11);
		return;
	}
	dd_http_respond(req, 200, "application/json", "{\"ok\":true}\n", 12);
}

static json_t *session_json(const dd_session *s)
{
	json_t *orgs = json_array(), *o;

	for (size_t i = 0; orgs != NULL && i < s->n_orgs; i++)
		json_array_append_new(orgs, json_string(s->orgs[i]));
	o = json_pack("{s:s, s:I, s:I, s:o?, s:b, s:b}", "login", s->login,
		      "user_id", (json_int_t)s->user_id, "exp",
		      (json_int_t)s->exp, "orgs", orgs, "is_fleet_admin",
		      s->is_fleet_admin, "dev", s->dev);
	return o;
}

static void handle_me(dd_http_req *req, const dd_caller *who, void *ud)
{
	json_t *o = session_json(&who->session);

	(void)ud;
	if (o == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
}

/* --- agent tickets ------------------------------------------------------ */

static json_t *ticket_claims(const dd_broker *b, const dd_session *s,
			     const char *aud)
{
	char jti[33];
	int64_t now = b->now();
	json_t *c;

	if (dd_random_hex(jti, 16) != DD_OK)
		return NULL;
	c = session_json(s);
	if (c == NULL)
		return NULL;
	if (json_object_update_new(c, json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:s}",
		    "iss", b->origin, "aud", aud, "sub", s->login,
		    "iat", (json_int_t)now,
		    "exp", (json_int_t)(now + DD_TICKET_LIFETIME_S),
		    "jti", jti, "owner_name", b->owner.name,
		    "owner_id", (json_int_t)b->owner.id, "owner_kind",
		    dd_principal_kind_name(b->owner.kind))) != 0) {
		json_decref(c);
		return NULL;
	}
	/* The ticket's own exp wins over the session's. */
	return c;
}

static void handle_agent_ticket(dd_http_req *req, const dd_caller *who,
				void *ud)
{
	dd_broker *b = ud;
	char origin[256], path[DD_RETURN_TO_MAX + 1], why[160];
	json_t *claims = NULL;
	dd_buf tok, url;
	dd_err_t rc;

	rc = check_return(b, dd_http_req_query(req, "return_to"), origin, path,
			  why, sizeof why);
	if (rc) {
		dd_http_respond_error(req, 400, "bad_return_to", "%s", why);
		return;
	}
	dd_buf_init(&tok, 8192);
	dd_buf_init(&url, 16384);
	claims = ticket_claims(b, &who->session, origin);
	rc = claims ? dd_signer_sign(b->tickets, claims, &tok) : DD_ERR_NOMEM;
	if (rc == DD_OK)
		rc = dd_buf_appendf(&url, "%s/auth/ticket?ticket=%s&next=", origin,
				    dd_buf_str(&tok));
	if (rc == DD_OK)
		rc = dd_pct_encode(path, strlen(path), &url);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Location", dd_buf_str(&url));
	if (rc)
		dd_http_respond_err(req, rc, "issuing the ticket");
	else
		dd_http_respond(req, 307, "text/plain", "to the agent\n", 13);
	json_decref(claims);
	dd_buf_free(&tok);
	dd_buf_free(&url);
}

static void handle_keys(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	json_t *jwks = NULL;
	dd_err_t rc = dd_signer_jwks(b->tickets, &jwks);

	(void)who;
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond_json(req, 200, jwks);
	json_decref(jwks);
}

/* --- for dev sign-in (dev_signin.c) ------------------------------------ */

void dd_broker_issue(dd_broker *b, dd_http_req *req, const dd_session *s,
		     const char *where)
{
	sign_in(b, req, s, where, 303);
}

const dd_principal *dd_broker_owner(const dd_broker *b)
{
	return &b->owner;
}

int64_t dd_broker_now(const dd_broker *b)
{
	return b->now();
}

dd_err_t dd_broker_check_return(const dd_broker *b, const char *url,
				char *where, size_t where_cap, char *why,
				size_t why_len)
{
	char origin[256], path[DD_RETURN_TO_MAX + 1];
	dd_err_t rc = check_return(b, url, origin, path, why, why_len);
	int n;

	if (rc)
		return rc;
	n = snprintf(where, where_cap, "%s%s", origin, path);
	return n < 0 || (size_t)n >= where_cap ? DD_ERR_TOO_LARGE : DD_OK;
}

/* --- setup ------------------------------------------------------------ */

size_t dd_broker_routes(dd_broker *b, dd_authz_route *r)
{
	size_t n = 0;

	r[n++] = (dd_authz_route){DD_M_GET, "/auth/github/start", handle_start,
				  b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_GET, "/auth/github/callback",
				  handle_callback, b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_POST, "/auth/device/start",
				  handle_device_start, b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_POST, "/auth/device/poll",
				  handle_device_poll, b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_POST, "/auth/logout", handle_logout, b,
				  0, 0};
	r[n++] = (dd_authz_route){DD_M_GET, "/auth/me", handle_me, b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_GET, "/auth/agent", handle_agent_ticket,
				  b, 0, 0};
	r[n++] = (dd_authz_route){DD_M_GET, "/auth/keys", handle_keys, b, 0, 0};
	return n;
}

static void wipe(char *s)
{
	if (s != NULL)
		dd_freezero(s, strlen(s));
}

void dd_broker_free(dd_broker *b)
{
	if (b == NULL)
		return;
	for (int i = 0; i < 3; i++) {
		dd_free(b->client_id[i]);
		wipe(b->client_secret[i]);
	}
	dd_free(b->oauth_base);
	dd_free(b->callback_url);
	dd_free(b->cookie_domain);
	dd_free(b->domain);
	dd_free(b->origin);
	dd_signer_free(b->tickets);
	dd_replay_free(b->states);
	dd_free(b);
}

/* Copies an optional string; 0 on NOMEM. */
static int copy(char **dst, const char *src)
{
	if (src == NULL)
		return 1;
	*dst = dd_strdup(src);
	return *dst != NULL;
}

dd_err_t dd_broker_new(const dd_broker_opts *o, dd_broker **out)
{
	dd_broker *b = dd_calloc(1, sizeof *b);
	int ok;
	dd_err_t rc;

	*out = NULL;
	if (b == NULL)
		return DD_ERR_NOMEM;
	b->owner = *o->owner;
	b->keys = o->keys;
	b->github = o->github;
	b->dev = o->dev;
	b->now = o->now ? o->now : wall_now;
	ok = copy(&b->oauth_base, o->oauth_base ? o->oauth_base
						: DD_GITHUB_DEFAULT_OAUTH) &&
	     copy(&b->callback_url, o->callback_url) &&
	     copy(&b->cookie_domain, o->cookie_domain) &&
	     copy(&b->domain, o->domain);
	for (int i = 0; ok && i < 3; i++)
		ok = copy(&b->client_id[i], o->apps[i].client_id) &&
		     copy(&b->client_secret[i], o->apps[i].client_secret);
	rc = ok ? dd_signer_new(&b->tickets) : DD_ERR_NOMEM;
	if (rc == DD_OK)
		rc = dd_replay_new(STATE_MEMORY, &b->states);
	if (rc) {
		dd_broker_free(b);
		return rc;
	}
	*out = b;
	return DD_OK;
}

void dd_broker_close(dd_broker *b)
{
	b->github = NULL;
}

dd_err_t dd_broker_set_origin(dd_broker *b, const char *origin)
{
	char *c = dd_strdup(origin);

	if (c == NULL)
		return DD_ERR_NOMEM;
	dd_free(b->origin);
	b->origin = c;
	return DD_OK;
}
