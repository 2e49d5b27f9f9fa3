#include "auth/ticket.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth/cookie.h"
#include "auth/jwks_cache.h"
#include "auth/replay.h"
#include "auth/return_to.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"

#define TICKET_MAX_AGE_S 120
#define TICKET_LEEWAY_S 30
#define TICKET_MEMORY 16384

struct dd_ticket {
	dd_principal owner;
	char *broker;
	char *origin;
	dd_jwt_policy policy;
	dd_jwks_cache *keys_of_cp;
	dd_session_keys *keys;     /* this agent's own, per boot */
	dd_replay *seen;
	int64_t (*now)(void);
};

struct pending {
	dd_ticket *t;
	dd_http_req *req;
	char next[DD_RETURN_TO_MAX + 1];
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static void on_abort(void *ud)
{
	struct pending *p = ud;

	p->req = NULL;
}

/* The ticket's claims as a session for this agent's fleet. */
static dd_err_t to_session(const dd_ticket *t, json_t *c, dd_session *s,
			   char *why, size_t why_len)
{
	const char *login = NULL, *oname = NULL, *okind = NULL;
	uint64_t uid = 0, oid = 0;
	json_t *orgs = json_object_get(c, "orgs");
	int admin = 0, dev = 0;
	size_t i;
	json_t *o;

	memset(s, 0, sizeof *s);
	if (dd_json_get_str(c, "sub", &login) || strlen(login) >= sizeof s->login ||
	    dd_json_get_u64(c, "user_id", 0, UINT64_MAX, &uid) ||
	    dd_json_get_str(c, "owner_name", &oname) ||
	    dd_json_get_u64(c, "owner_id", 1, UINT64_MAX, &oid) ||
	    dd_json_get_str(c, "owner_kind", &okind) ||
	    (orgs != NULL && !json_is_array(orgs)) ||
	    json_array_size(orgs) > DD_SESSION_MAX_ORGS) {
		snprintf(why, why_len, "the ticket's claims are malformed");
		return DD_ERR_INVALID;
	}
	/* A ticket minted for another fleet is not ours to honour. */
	if (strcmp(oname, t->owner.name) != 0 || oid != t->owner.id ||
	    strcmp(okind, dd_principal_kind_name(t->owner.kind)) != 0) {
		snprintf(why, why_len, "the ticket is for another fleet");
		return DD_ERR_UNAUTHORIZED;
	}
	json_array_foreach(orgs, i, o) {
		const char *org = json_string_value(o);
		if (org == NULL || strlen(org) >= sizeof s->orgs[0]) {
			snprintf(why, why_len, "the ticket's orgs are malformed");
			return DD_ERR_INVALID;
		}
		snprintf(s->orgs[s->n_orgs++], sizeof s->orgs[0], "%s", org);
	}
	dd_json_get_bool(c, "is_fleet_admin", &admin);
	dd_json_get_bool(c, "dev", &dev);
	snprintf(s->login, sizeof s->login, "%s", login);
	s->user_id = uid;
	s->owner = t->owner;
	s->is_fleet_admin = admin;
	s->dev = dev;
	s->exp = t->now() + DD_SESSION_LIFETIME_S;
	return DD_OK;
}

static void issue(dd_ticket *t, dd_http_req *req, const dd_session *s,
		  const char *next)
{
	dd_buf tok, cookie;
	int secure = strncmp(t->origin, "https://", 8) == 0;
	dd_err_t rc;

	dd_buf_init(&tok, DD_SESSION_MAX_TOKEN);
	dd_buf_init(&cookie, 8192);
	rc = dd_session_sign(t->keys, s, &tok);
	if (rc == DD_OK)
		rc = dd_cookie_format(DD_AGENT_SESSION_COOKIE, dd_buf_str(&tok),
				      NULL, DD_SESSION_LIFETIME_S, secure,
				      &cookie);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Set-Cookie", dd_buf_str(&cookie));
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Location", next);
	if (rc)
		dd_http_respond_err(req, rc, "issuing the session");
	else
		dd_http_respond(req, 303, "text/plain", "signed in\n", 10);
	dd_buf_free(&tok);
	dd_buf_free(&cookie);
}

static void on_verified(dd_err_t err, json_t *claims,
			const dd_jwt_result *res, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;
	dd_ticket *t = p->t;
	const char *jti = NULL;
	int64_t exp = 0;
	dd_session s;
	char why[160];
	dd_err_t rc;

	if (req == NULL)
		goto out;
	dd_http_req_on_abort(req, NULL, NULL);
	if (err) {
		dd_http_respond_error(req, err == DD_ERR_UPSTREAM ? 502 : 401,
				      "bad_ticket", "%s",
				      res && res->why[0] ? res->why
							 : dd_strerror(err));
		goto out;
	}
	rc = to_session(t, claims, &s, why, sizeof why);
	if (rc == DD_OK && (dd_json_get_str(claims, "jti", &jti) != DD_OK ||
			    json_integer_value(json_object_get(claims, "exp")) <=
				    0)) {
		snprintf(why, sizeof why, "the ticket has no jti or exp");
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK) {
		exp = json_integer_value(json_object_get(claims, "exp"));
		rc = dd_replay_use(t->seen, jti, strlen(jti), exp, t->now());
		if (rc == DD_ERR_EXISTS)
			snprintf(why, sizeof why, "the ticket was already used");
		else if (rc)
			snprintf(why, sizeof why, "%s", dd_strerror(rc));
	}
	if (rc)
		dd_http_respond_error(req, rc == DD_ERR_BUSY ? 503 : 401,
				      "bad_ticket", "%s", why);
	else
		issue(t, req, &s, p->next);
out:
	dd_free(p);
}

static void handle_ticket(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_ticket *t = ud;
	const char *ticket = dd_http_req_query(req, "ticket");
	const char *next = dd_http_req_query(req, "next");
	struct pending *p;
	dd_err_t rc;

	(void)who;
	if (ticket == NULL || t->origin == NULL) {
		dd_http_respond_error(req, 400, "bad_request", "ticket is required");
		return;
	}
	p = dd_calloc(1, sizeof *p);
	if (p == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	p->t = t;
	p->req = req;
	/* Only a local path: the ticket must not become an open redirect. */
	snprintf(p->next, sizeof p->next, "%s",
		 next != NULL && dd_return_to_local_path(next) ? next : "/");
	dd_http_req_on_abort(req, on_abort, p);
	rc = dd_jwks_cache_verify(t->keys_of_cp, ticket, strlen(ticket),
				  &t->policy, t->now(), on_verified, p, NULL);
	if (rc) {
		dd_http_req_on_abort(req, NULL, NULL);
		dd_free(p);
		dd_http_respond_err(req, rc, "verifying the ticket");
	}
}

static void handle_logout(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_ticket *t = ud;
	dd_buf cookie;
	dd_err_t rc;

	(void)who;
	dd_buf_init(&cookie, 1024);
	rc = dd_cookie_format(DD_AGENT_SESSION_COOKIE, "", NULL, 0,
			      strncmp(t->origin ? t->origin : "", "https://",
				      8) == 0, &cookie);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Set-Cookie", dd_buf_str(&cookie));
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond(req, 200, "application/json", "{\"ok\":true}\n",
				12);
	dd_buf_free(&cookie);
}

size_t dd_ticket_routes(dd_ticket *t, dd_authz_route *r)
{
	r[0] = (dd_authz_route){DD_M_GET, "/auth/ticket", handle_ticket, t, 0, 0};
	r[1] = (dd_authz_route){DD_M_POST, "/auth/logout", handle_logout, t, 0,
				0};
	return 2;
}

const dd_session_keys *dd_ticket_keys(const dd_ticket *t)
{
	return t->keys;
}

dd_err_t dd_ticket_set_origin(dd_ticket *t, const char *origin)
{
	char *c = dd_strdup(origin);

	if (c == NULL)
		return DD_ERR_NOMEM;
	dd_free(t->origin);
	t->origin = c;
	t->policy.audience = t->origin;
	return DD_OK;
}

void dd_ticket_free(dd_ticket *t)
{
	if (t == NULL)
		return;
	dd_jwks_cache_free(t->keys_of_cp);
	dd_session_keys_free(t->keys);
	dd_replay_free(t->seen);
	dd_free(t->broker);
	dd_free(t->origin);
	dd_free(t);
}

dd_err_t dd_ticket_new(uv_loop_t *loop, dd_httpc *http,
		       const dd_ticket_opts *o, dd_ticket **out)
{
	dd_ticket *t = dd_calloc(1, sizeof *t);
	uint8_t secret[32];
	dd_buf url;
	dd_jwks_cache_opts ko = {.refresh_interval_ms = 10000};
	dd_err_t rc;

	*out = NULL;
	if (t == NULL)
		return DD_ERR_NOMEM;
	t->owner = *o->owner;
	t->now = o->now ? o->now : wall_now;
	t->broker = dd_strdup(o->broker_url);
	dd_buf_init(&url, 4096);
	rc = t->broker ? dd_buf_appendf(&url, "%s/auth/keys", t->broker)
		       : DD_ERR_NOMEM;
	ko.url = dd_buf_str(&url);
	if (rc == DD_OK)
		rc = dd_jwks_cache_new(loop, http, &ko, &t->keys_of_cp);
	if (rc == DD_OK)
		rc = dd_random_bytes(secret, sizeof secret);
	if (rc == DD_OK)
		rc = dd_session_keys_new(secret, sizeof secret, &t->keys);
	if (rc == DD_OK)
		rc = dd_replay_new(TICKET_MEMORY, &t->seen);
	OPENSSL_cleanse(secret, sizeof secret);
	dd_buf_free(&url);
	if (rc) {
		dd_ticket_free(t);
		return rc;
	}
	t->policy = (dd_jwt_policy){.algs = DD_JWA_ES256, .issuer = t->broker,
				    .audience = t->origin,
				    .leeway_s = TICKET_LEEWAY_S,
				    .max_age_s = TICKET_MAX_AGE_S};
	*out = t;
	return DD_OK;
}
