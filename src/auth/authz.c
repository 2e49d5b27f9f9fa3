#include "auth/authz.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/cookie.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"

/* One mounted route: its entry and its handler. */
struct bound {
	dd_authz *a;
	const dd_authz_entry *e;
	dd_authz_route r;
	struct bound *next;
};

struct dd_authz {
	char *service;
	dd_principal owner;
	const dd_session_keys *keys;
	char *cookie_name;
	int bearer_sessions;
	dd_oidc *oidc;
	dd_authz_tenant_fn tenant;
	void *tenant_ud;
	char *origin;
	char *sign_in_url;
	int dev;
	int closing;
	int64_t (*now)(void);
	struct bound *routes;
};

/* A request waiting for an OIDC verdict. */
struct pending {
	struct bound *b;
	dd_http_req *req;       /* NULL once the client went away */
	dd_caller who;
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* --- identifying the caller ------------------------------------------ */

/* A session (cookie or native bearer) becomes USER, ADMIN or TENANT_USER. */
static void classify_session(const dd_authz *a, dd_caller *who)
{
	const dd_principal *tenant = a->tenant ? a->tenant(a->tenant_ud) : NULL;

	if (who->session.is_fleet_admin)
		who->kind = DD_CALLER_ADMIN;
	else if (tenant != NULL && dd_authz_session_owns(&who->session, tenant))
		who->kind = DD_CALLER_TENANT_USER;
	else
		who->kind = DD_CALLER_USER;
}

/*
 * The cookie: a bad or expired one is simply no session (the browser is
 * sent to sign in again), never an error page.
 */
static void from_cookie(const dd_authz *a, dd_http_req *req, dd_caller *who)
{
	const char *v;
	size_t n;
	char why[128];

	if (a->keys == NULL ||
	    dd_cookie_get(dd_http_req_header(req, "Cookie"), a->cookie_name, &v,
			  &n) != DD_OK)
		return;
	if (dd_session_verify(a->keys, v, n, &a->owner, a->now(), &who->session,
			      why, sizeof why) != DD_OK)
		return;
	who->via_cookie = 1;
	who->session_token = v;
	who->session_token_len = n;
	classify_session(a, who);
}

/* "Bearer x" or "bearer x", trimmed; NULL when absent or empty. */
static const char *bearer(dd_http_req *req, size_t *len)
{
	const char *h = dd_http_req_header(req, "Authorization");
	const char *t;
	size_t n;

	if (h == NULL || (strncmp(h, "Bearer ", 7) != 0 &&
			  strncmp(h, "bearer ", 7) != 0))
		return NULL;
	t = h + 7;
	n = strlen(t);
	dd_str_trim(&t, &n);
	*len = n;
	return n > 0 ? t : NULL;
}

/*
 * Whether a JWT says it comes from the OIDC issuer. Unverified, and only
 * used to route: whichever verifier gets the token checks it fully. A
 * token that cannot be read counts as OIDC, whose verifier then says
 * precisely what is wrong with it.
 */
static int oidc_issued(const dd_authz *a, const char *tok, size_t len)
{
	const char *dot1 = memchr(tok, '.', len), *dot2;
	const char *iss;
	json_t *claims = NULL;
	dd_buf payload;
	int yes = 1;

	if (a->oidc == NULL || dot1 == NULL)
		return a->oidc != NULL;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	if (dot2 == NULL)
		return 1;
	dd_buf_init(&payload, DD_OIDC_MAX_TOKEN);
	if (dd_b64_decode(DD_B64_URL, dot1 + 1, (size_t)(dot2 - dot1 - 1),
			  &payload) == DD_OK &&
	    dd_json_parse(payload.data, payload.len, DD_OIDC_MAX_TOKEN,
			  &claims, NULL, 0) == DD_OK &&
	    dd_json_get_str(claims, "iss", &iss) == DD_OK)
		yes = strcmp(iss, dd_oidc_issuer(a->oidc)) == 0;
	json_decref(claims);
	dd_buf_free(&payload);
	return yes;
}

static size_t count_dots(const char *s, size_t n)
{
	size_t d = 0;

	for (size_t i = 0; i < n; i++)
		d += s[i] == '.';
	return d;
}

/* --- deciding ------------------------------------------------------- */

static void redirect_to_sign_in(const dd_authz *a, dd_http_req *req)
{
	dd_buf url, back;
	const char *q = dd_http_req_query_string(req);

	dd_buf_init(&url, 8192);
	dd_buf_init(&back, 4096);
	if (dd_buf_appendf(&back, "%s%s%s%s", a->origin, dd_http_req_path(req),
			   q[0] ? "?" : "", q) != DD_OK ||
	    dd_buf_appendf(&url, "%s?return_to=", a->sign_in_url) != DD_OK ||
	    dd_pct_encode(dd_buf_str(&back), back.len, &url) != DD_OK ||
	    dd_http_set_header(req, "Location", dd_buf_str(&url)) != DD_OK)
		dd_http_respond_error(req, 400, "bad_request",
				      "this URL is too long to sign in for");
	else
		dd_http_respond(req, 307, "text/plain", "sign in\n", 8);
	dd_buf_free(&url);
	dd_buf_free(&back);
}

static int wants_html(dd_http_req *req)
{
	const char *acc = dd_http_req_header(req, "Accept");

	return acc == NULL || strstr(acc, "text/html") != NULL ||
	       strstr(acc, "*/*") != NULL;
}

static const char *needs(unsigned allow)
{
	if (allow & (DD_CALLER_OWNER | DD_CALLER_TENANT))
		return allow & (DD_CALLER_ADMIN | DD_CALLER_TENANT_USER)
		       ? "a GitHub Actions OIDC token of the owner, or a "
			 "fleet admin's session"
		       : "a GitHub Actions OIDC token of the owner";
	if (allow & DD_CALLER_USER)
		return "a signed-in session";
	return "a session of a fleet admin or of this agent's owner";
}

static void refuse(const struct bound *b, dd_http_req *req,
		   const dd_caller *who)
{
	const dd_authz_entry *e = b->e;
	unsigned method = dd_http_req_method_bit(req);

	if (who->kind == DD_CALLER_ANON) {
		if ((e->flags & DD_AUTHZ_PAGE) &&
		    (method & (DD_M_GET | DD_M_HEAD)) && wants_html(req) &&
		    b->a->sign_in_url != NULL) {
			redirect_to_sign_in(b->a, req);
			return;
		}
		dd_http_respond_error(req, 401, "unauthenticated",
				      "%s needs %s", e->what, needs(e->allow));
		return;
	}
	if (who->kind == DD_CALLER_OWNER || who->kind == DD_CALLER_TENANT)
		dd_http_respond_error(req, 403, "forbidden",
				      "an OIDC token is not accepted for: %s",
				      e->what);
	else
		dd_http_respond_error(req, 403, "forbidden",
				      "signed in as %s, who may not: %s",
				      who->session.login, e->what);
}

static int state_changing(dd_http_req *req)
{
	return !(dd_http_req_method_bit(req) &
		 (DD_M_GET | DD_M_HEAD | DD_M_OPTIONS));
}

/*
 * Cookie-authenticated writes need proof the page was ours: the CSRF
 * token bound to this session, and no foreign Origin.
 */
static int csrf_ok(const dd_authz *a, dd_http_req *req, const dd_caller *who)
{
	const char *origin = dd_http_req_header(req, "Origin");
	const char *tok = dd_http_req_header(req, DD_CSRF_HEADER);
	char field[DD_CSRF_LEN + 2];
	const uint8_t *body;
	size_t blen;

	if (origin != NULL && strcmp(origin, a->origin) != 0)
		return 0;
	if (!who->via_cookie)
		return 1;
	if (tok == NULL) {
		body = dd_http_req_body(req, &blen);
		if (body == NULL ||
		    dd_form_field((const char *)body, blen, "csrf", field,
				  sizeof field) != DD_OK)
			return 0;
		tok = field;
	}
	return dd_csrf_check(a->keys, who->session_token,
			     who->session_token_len, tok);
}

static void decide(struct bound *b, dd_http_req *req, dd_caller *who)
{
	const dd_authz_entry *e = b->e;

	/* Agents prove themselves in the body; the handler checks it. */
	if (who->kind == DD_CALLER_ANON && !(e->allow & DD_CALLER_ANON) &&
	    (e->allow & DD_CALLER_AGENT))
		who->kind = DD_CALLER_AGENT;
	if (!(e->allow & who->kind)) {
		refuse(b, req, who);
		return;
	}
	if (state_changing(req) && !csrf_ok(b->a, req, who)) {
		dd_http_respond_error(req, 403, "csrf",
				      "cross-site request refused: send the "
				      "page's CSRF token from the same origin");
		return;
	}
	b->r.handler(req, who, b->r.ud);
}

/* --- OIDC callers ---------------------------------------------------- */

static void on_req_abort(void *ud)
{
	struct pending *p = ud;

	p->req = NULL;
}

static void on_oidc(const dd_oidc_result *res, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;

	if (req == NULL) {
		dd_free(p);
		return;
	}
	dd_http_req_on_abort(req, NULL, NULL);
	/*
	 * A genuine token of someone else is no privilege, not an attack:
	 * where anyone may call, it gets what anyone gets.
	 */
	if (res->status == DD_OIDC_WRONG_OWNER &&
	    (p->b->e->allow & DD_CALLER_ANON)) {
		decide(p->b, req, &p->who);
	} else if (res->status != DD_OIDC_OK) {
		dd_http_respond_error(req, dd_oidc_http_status(res->status),
				      dd_oidc_status_name(res->status), "%s",
				      res->why);
	} else {
		p->who.kind = res->claims.matched == 0 ? DD_CALLER_OWNER
						       : DD_CALLER_TENANT;
		p->who.oidc = res->claims;
		decide(p->b, req, &p->who);
	}
	dd_free(p);
}

/* Starts OIDC verification; the request is answered from on_oidc. */
static void verify_oidc(struct bound *b, dd_http_req *req,
			const dd_caller *who)
{
	dd_authz *a = b->a;
	dd_principal accepted[2];
	const dd_principal *tenant = a->tenant ? a->tenant(a->tenant_ud) : NULL;
	size_t n = 0;
	struct pending *p = dd_calloc(1, sizeof *p);
	dd_err_t rc;

	if (p == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	/* Index 0 is always the owner, so "matched" names the kind. */
	accepted[n++] = a->owner;
	if (tenant != NULL && (b->e->allow & DD_CALLER_TENANT))
		accepted[n++] = *tenant;
	p->b = b;
	p->req = req;
	p->who = *who;
	dd_http_req_on_abort(req, on_req_abort, p);
	rc = dd_oidc_verify(a->oidc, dd_http_req_header(req, "Authorization"),
			    accepted, n, a->now(), on_oidc, p);
	if (rc) {
		dd_http_req_on_abort(req, NULL, NULL);
		dd_free(p);
		dd_http_respond_err(req, rc, "verifying the OIDC token");
	}
}

/* --- the dispatcher ------------------------------------------------- */

static void dispatch(dd_http_req *req, void *ud)
{
	struct bound *b = ud;
	dd_authz *a = b->a;
	dd_caller who;
	const char *tok;
	size_t len = 0;
	char why[128];

	memset(&who, 0, sizeof who);
	who.kind = DD_CALLER_ANON;
	from_cookie(a, req, &who);
	tok = bearer(req, &len);
	if (tok == NULL) {
		decide(b, req, &who);
		return;
	}
	/*
	 * A JWT from another issuer, where agents may call, is attestation
	 * evidence (an ITA token): the handler verifies it.
	 */
	if (count_dots(tok, len) == 2 && (b->e->allow & DD_CALLER_AGENT) &&
	    !oidc_issued(a, tok, len)) {
		who.kind = DD_CALLER_AGENT;
		decide(b, req, &who);
		return;
	}
	/* A JWT (three parts) is an OIDC token, if this entry takes one. */
	if (count_dots(tok, len) == 2 && a->closing &&
	    (b->e->allow & (DD_CALLER_OWNER | DD_CALLER_TENANT))) {
		dd_http_respond_error(req, 503, "shutting_down",
				      "this process is shutting down");
		return;
	}
	if (count_dots(tok, len) == 2 && a->oidc != NULL &&
	    (b->e->allow & (DD_CALLER_OWNER | DD_CALLER_TENANT))) {
		verify_oidc(b, req, &who);
		return;
	}
	if (count_dots(tok, len) == 1 && a->bearer_sessions && a->keys != NULL) {
		memset(&who, 0, sizeof who);
		if (dd_session_verify(a->keys, tok, len, &a->owner, a->now(),
				      &who.session, why, sizeof why) != DD_OK) {
			dd_http_respond_error(req, 401, "bad_session", "%s", why);
			return;
		}
		classify_session(a, &who);
	}
	decide(b, req, &who);
}

/*
 * Runs before the body is read: a valid session earns the larger body
 * cap. OIDC tokens are verified later (it may take a JWKS fetch); their
 * routes size their unauthenticated cap for their real bodies.
 */
static dd_err_t gate(dd_http_req *req, void *ud, int *authenticated)
{
	struct bound *b = ud;
	dd_caller who;

	memset(&who, 0, sizeof who);
	from_cookie(b->a, req, &who);
	*authenticated = who.via_cookie;
	return DD_OK;
}

/* --- setup ------------------------------------------------------------ */

int dd_authz_session_owns(const dd_session *s, const dd_principal *p)
{
	const char *slash;
	size_t olen;

	if (s->is_fleet_admin)
		return 1;
	if (p == NULL)
		return 0;
	switch (p->kind) {
	case DD_PRINCIPAL_USER:
		return s->user_id != 0 && s->user_id == p->id;
	case DD_PRINCIPAL_ORG:
		for (size_t i = 0; i < s->n_orgs; i++) {
			if (dd_str_ieq(s->orgs[i], strlen(s->orgs[i]), p->name))
				return 1;
		}
		return 0;
	case DD_PRINCIPAL_REPO:
		slash = strchr(p->name, '/');
		olen = slash ? (size_t)(slash - p->name) : 0;
		if (olen == 0)
			return 0;
		if (strlen(s->login) == olen &&
		    dd_str_ieq(p->name, olen, s->login))
			return 1;
		for (size_t i = 0; i < s->n_orgs; i++) {
			if (strlen(s->orgs[i]) == olen &&
			    dd_str_ieq(p->name, olen, s->orgs[i]))
				return 1;
		}
		return 0;
	}
	return 0;
}

void dd_authz_free(dd_authz *a)
{
	struct bound *b, *next;

	if (a == NULL)
		return;
	for (b = a->routes; b != NULL; b = next) {
		next = b->next;
		dd_free(b);
	}
	dd_free(a->service);
	dd_free(a->cookie_name);
	dd_free(a->origin);
	dd_free(a->sign_in_url);
	dd_free(a);
}

void dd_authz_close(dd_authz *a)
{
	a->closing = 1;
	a->oidc = NULL;
}

dd_err_t dd_authz_set_origin(dd_authz *a, const char *origin)
{
	char *copy = dd_strdup(origin);

	if (copy == NULL)
		return DD_ERR_NOMEM;
	dd_free(a->origin);
	a->origin = copy;
	return DD_OK;
}

const char *dd_authz_origin(const dd_authz *a)
{
	return a->origin;
}

dd_err_t dd_authz_set_sign_in(dd_authz *a, const char *url)
{
	char *copy = dd_strdup(url);

	if (copy == NULL)
		return DD_ERR_NOMEM;
	dd_free(a->sign_in_url);
	a->sign_in_url = copy;
	return DD_OK;
}

dd_err_t dd_authz_new(const dd_authz_opts *o, dd_authz **out)
{
	dd_authz *a = dd_calloc(1, sizeof *a);
	int bad;

	*out = NULL;
	if (a == NULL)
		return DD_ERR_NOMEM;
	a->owner = *o->owner;
	a->keys = o->keys;
	a->bearer_sessions = o->accept_bearer_sessions;
	a->oidc = o->oidc;
	a->tenant = o->tenant;
	a->tenant_ud = o->tenant_ud;
	a->dev = o->dev;
	a->now = o->now ? o->now : wall_now;
	a->service = dd_strdup(o->service);
	a->cookie_name = dd_strdup(o->cookie_name ? o->cookie_name
						  : DD_SESSION_COOKIE);
	a->origin = dd_strdup(o->public_origin ? o->public_origin : "");
	a->sign_in_url = o->sign_in_url ? dd_strdup(o->sign_in_url) : NULL;
	bad = a->service == NULL || a->cookie_name == NULL ||
	      a->origin == NULL || (o->sign_in_url && a->sign_in_url == NULL);
	if (bad) {
		dd_authz_free(a);
		return DD_ERR_NOMEM;
	}
	*out = a;
	return DD_OK;
}

static dd_err_t check_routes(const dd_authz *a, const dd_authz_route *routes,
			     size_t n, const dd_authz_entry **entries,
			     char *why, size_t why_len)
{
	for (size_t i = 0; i < n; i++) {
		entries[i] = dd_authz_find(a->service, routes[i].methods,
					   routes[i].pattern);
		if (entries[i] == NULL) {
			snprintf(why, why_len, "%s %s has no authorization entry",
				 a->service, routes[i].pattern);
			return DD_ERR_CONFIG;
		}
		if ((entries[i]->flags & DD_AUTHZ_DEV_ONLY) && !a->dev) {
			snprintf(why, why_len, "%s %s exists only in dev mode",
				 a->service, routes[i].pattern);
			return DD_ERR_CONFIG;
		}
	}
	return DD_OK;
}

dd_err_t dd_authz_mount(dd_authz *a, dd_http_server *srv,
			const dd_authz_route *routes, size_t n, char *why,
			size_t why_len)
{
	const dd_authz_entry *entries[128];
	dd_err_t rc;

	why[0] = '\0';
	if (n > sizeof entries / sizeof entries[0])
		return DD_ERR_TOO_LARGE;
	rc = check_routes(a, routes, n, entries, why, why_len);
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		struct bound *b = dd_calloc(1, sizeof *b);
		dd_http_route hr;

		if (b == NULL)
			return DD_ERR_NOMEM;
		b->a = a;
		b->e = entries[i];
		b->r = routes[i];
		b->next = a->routes;
		a->routes = b;
		/* Entries that cost real work take tiny bodies from anyone. */
		if ((b->e->flags & DD_AUTHZ_SMALL_BODY) &&
		    routes[i].max_body == 0 && routes[i].max_body_unauth == 0) {
			b->r.max_body = 4096;
			b->r.max_body_unauth = 4096;
		}
		hr = (dd_http_route){.methods = routes[i].methods,
				     .pattern = routes[i].pattern,
				     .handler = dispatch, .ud = b, .gate = gate,
				     .max_body = b->r.max_body,
				     .max_body_unauth = b->r.max_body_unauth};
		rc = dd_http_server_route(srv, &hr);
		if (rc)
			snprintf(why, why_len, "mounting %s: %s",
				 routes[i].pattern, dd_strerror(rc));
	}
	return rc;
}
