/*
 * cp_api.c: GET /api/agents and GET /api/v1/admin/export (cp_api.h).
 */
#include "cp/cp_api.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/fleet_view.h"

/* The public list is the same for every anonymous caller: reuse it. */
#define PUBLIC_TTL_MS 1000u
/* Full records of a signed-in user's own agents, per request. */
#define MAX_OWN 4096

static const char export_label[] = "devopsdefender/export/v1";

/* A request whose ITA bearer is being verified. */
struct pending {
	dd_cp_api *api;
	dd_http_req *req;         /* NULL once the client went away */
	int export;               /* the export, not /api/agents */
	uint8_t nonce[DD_REG_NONCE_LEN];
	struct pending *prev, *next;
};

struct dd_cp_api {
	uv_loop_t *loop;
	dd_store *store;
	dd_attestor *att;
	dd_cp_register *reg;
	dd_buf pub;               /* the rendered public list */
	uint64_t pub_at;          /* loop ms it was rendered */
	struct pending *pending;
};

dd_err_t dd_cp_export_binding(const uint8_t nonce[DD_REG_NONCE_LEN],
			      uint8_t out[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (md == NULL)
		return DD_ERR_NOMEM;
	if (EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
	    EVP_DigestUpdate(md, export_label, strlen(export_label)) == 1 &&
	    EVP_DigestUpdate(md, nonce, DD_REG_NONCE_LEN) == 1 &&
	    EVP_DigestFinal_ex(md, out, &n) == 1 && n == 64)
		rc = DD_OK;
	EVP_MD_CTX_free(md);
	return rc;
}

/* --- rendering ---------------------------------------------------------- */

/* Appends v (then releases it) to a JSON array being written in b. */
static dd_err_t put(dd_buf *b, json_t *v, size_t *count)
{
	dd_err_t rc = DD_OK;

	if (*count > 0)
		rc = dd_buf_append_byte(b, ',');
	if (rc == DD_OK)
		rc = dd_json_append(b, v);
	json_decref(v);
	if (rc == DD_OK)
		(*count)++;
	return rc;
}

/* What a scan feeds: public rows now, a user's own ones afterwards. */
struct listing {
	const dd_caller *who;     /* NULL: anonymous */
	dd_buf *out;
	size_t count;
	char (*own)[DD_STORE_ID_MAX + 1];
	size_t n_own;
};

static dd_err_t on_brief(const dd_store_brief *b, void *ud)
{
	struct listing *l = ud;
	json_t *o = NULL;
	dd_err_t rc;

	/* A store read cannot nest in the scan: fetched after it. */
	if (l->own != NULL && dd_fleet_brief_sees_full(l->who, b) &&
	    l->n_own < MAX_OWN) {
		snprintf(l->own[l->n_own++], DD_STORE_ID_MAX + 1, "%s",
			 b->agent_id);
		return DD_OK;
	}
	rc = dd_fleet_brief_json(b, DD_FLEET_TIME_OFFSET, &o);
	return rc ? rc : put(l->out, o, &l->count);
}

/* The user's own agents in full (one vanished since the scan: skipped). */
static dd_err_t put_own(dd_cp_api *api, struct listing *l)
{
	dd_store_agent a;
	json_t *o;
	dd_err_t rc = DD_OK;

	for (size_t i = 0; rc == DD_OK && i < l->n_own; i++) {
		rc = dd_store_get(api->store, l->own[i], &a);
		if (rc == DD_ERR_NOT_FOUND || rc == DD_ERR_INVALID) {
			rc = DD_OK;
			continue;
		}
		if (rc == DD_OK)
			rc = dd_fleet_agent_json(&a, DD_FLEET_FULL,
						 DD_FLEET_TIME_OFFSET, &o);
		if (rc == DD_OK)
			rc = put(l->out, o, &l->count);
		dd_store_agent_clear(&a);
	}
	return rc;
}

struct full_listing {
	dd_buf *out;
	size_t count;
};

static dd_err_t on_full(const dd_store_agent *a, void *ud)
{
	struct full_listing *l = ud;
	json_t *o = NULL;
	dd_err_t rc;

	rc = dd_fleet_agent_json(a, DD_FLEET_FULL, DD_FLEET_TIME_OFFSET, &o);
	return rc ? rc : put(l->out, o, &l->count);
}

/* Everything in full (admins, the fleet principal), one record at a time. */
static dd_err_t render_full(dd_cp_api *api, dd_buf *out)
{
	struct full_listing l = {out, 0};
	size_t skipped = 0;
	dd_err_t rc;

	rc = dd_buf_append_byte(out, '[');
	if (rc == DD_OK)
		rc = dd_store_each(api->store, on_full, &l, &skipped);
	if (rc == DD_OK && skipped > 0)
		dd_log_warn("api/agents: %zu unreadable store rows left out",
			    skipped);
	return rc;
}

/* Public fields, with a signed-in user's own agents in full. */
static dd_err_t render_scoped(dd_cp_api *api, const dd_caller *who,
			      dd_buf *out)
{
	struct listing l = {.who = who, .out = out};
	int user = who != NULL && (who->kind == DD_CALLER_USER ||
				   who->kind == DD_CALLER_TENANT_USER);
	dd_err_t rc;

	if (user) {
		l.own = dd_calloc(MAX_OWN, sizeof *l.own);
		if (l.own == NULL)
			return DD_ERR_NOMEM;
	}
	rc = dd_buf_append_byte(out, '[');
	if (rc == DD_OK)
		rc = dd_store_scan(api->store, on_brief, &l, NULL);
	if (rc == DD_OK && user)
		rc = put_own(api, &l);
	dd_free(l.own);
	return rc;
}

static dd_err_t render(dd_cp_api *api, const dd_caller *who, dd_buf *out)
{
	dd_err_t rc;

	dd_buf_reset(out);
	if (who != NULL && (who->kind == DD_CALLER_ADMIN ||
			    who->kind == DD_CALLER_OWNER))
		rc = render_full(api, out);
	else
		rc = render_scoped(api, who, out);
	if (rc == DD_OK)
		rc = dd_buf_append(out, "]\n", 2);
	return rc;
}

static void respond_agents(dd_cp_api *api, dd_http_req *req,
			   const dd_caller *who)
{
	uint64_t now = uv_now(api->loop);
	int anyone = who == NULL || who->kind == DD_CALLER_ANON ||
		     who->kind == DD_CALLER_AGENT;
	dd_buf b;
	dd_err_t rc;

	if (anyone) {
		if (api->pub.len == 0 || now - api->pub_at >= PUBLIC_TTL_MS) {
			rc = render(api, NULL, &api->pub);
			if (rc) {
				dd_buf_reset(&api->pub);
				dd_http_respond_err(req, rc, "listing the fleet");
				return;
			}
			api->pub_at = now;
		}
		dd_http_respond(req, 200, "application/json", api->pub.data,
				api->pub.len);
		return;
	}
	dd_buf_init(&b, DD_STORE_EXPORT_MAX);
	rc = render(api, who, &b);
	if (rc)
		dd_http_respond_err(req, rc, "listing the fleet");
	else
		dd_http_respond(req, 200, "application/json", b.data, b.len);
	dd_buf_free(&b);
}

static void respond_export(dd_cp_api *api, dd_http_req *req)
{
	size_t skipped = 0;
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, DD_STORE_EXPORT_MAX);
	rc = dd_store_export(api->store, &b, &skipped);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(&b, '\n');
	if (rc) {
		dd_http_respond_err(req, rc, "exporting the fleet store");
	} else {
		if (skipped > 0)
			dd_log_warn("export: %zu unreadable store rows left "
				    "out", skipped);
		dd_http_respond(req, 200, "application/json", b.data, b.len);
	}
	dd_buf_free(&b);
}

/* --- ITA bearers --------------------------------------------------------- */

static void unlink_pending(struct pending *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		p->api->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

static void pending_free(struct pending *p)
{
	OPENSSL_cleanse(p->nonce, sizeof p->nonce);
	dd_free(p);
}

static void on_abort(void *ud)
{
	struct pending *p = ud;

	p->req = NULL;
}

/* The token's report_data is the export binding of the nonce. */
static int export_bound(const struct pending *p, const char *rd_hex)
{
	uint8_t want[64], got[64];

	if (rd_hex == NULL || strlen(rd_hex) != 128 ||
	    dd_hex_decode(rd_hex, 128, got, sizeof got) != DD_OK ||
	    dd_cp_export_binding(p->nonce, want) != DD_OK)
		return 0;
	return CRYPTO_memcmp(want, got, sizeof want) == 0;
}

static void on_verdict(const dd_ita_verdict *v, json_t *claims, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;
	int pin_ok = v->pin == DD_PIN_PASS || v->pin == DD_PIN_UNPINNED;

	(void)claims;
	unlink_pending(p);
	if (req == NULL)
		goto out;
	dd_http_req_on_abort(req, NULL, NULL);
	if (v->err) {
		dd_http_respond_error(req, v->err == DD_ERR_UPSTREAM ? 502
				      : v->err == DD_ERR_CANCELLED ? 503 : 401,
				      pin_ok ? "bad_token" : "not_pinned", "%s",
				      v->why);
		goto out;
	}
	if (!p->export) {
		/* A genuine ITA token proves a TDX VM, not who asks. */
		respond_agents(p->api, req, NULL);
		goto out;
	}
	if (!pin_ok) {
		dd_http_respond_error(req, 401, "not_pinned",
				      "the successor's measurements are not "
				      "on the allowlist: %s", v->why);
		goto out;
	}
	if (!export_bound(p, v->claims.report_data)) {
		dd_http_respond_error(req, 401, "binding_mismatch",
				      "the token's report_data does not bind "
				      "this nonce for an export");
		goto out;
	}
	dd_log_info("export: to an attested successor (mrtd %s)",
		    v->claims.mrtd);
	respond_export(p->api, req);
out:
	pending_free(p);
}

/* The bearer token: for the export exactly "Bearer <t>" (spec 3.10). */
static const char *bearer_token(dd_http_req *req, int exact, size_t *len)
{
	const char *h = dd_http_req_header(req, "Authorization");
	const char *t;
	size_t n;

	if (h == NULL || (strncmp(h, "Bearer ", 7) != 0 &&
			  (exact || strncmp(h, "bearer ", 7) != 0)))
		return NULL;
	t = h + 7;
	n = strlen(t);
	dd_str_trim(&t, &n);
	*len = n;
	return n > 0 ? t : NULL;
}

/* 1: the nonce parsed and was ours (now burnt); 0: answered here. */
static int take_export_nonce(dd_cp_api *api, dd_http_req *req,
			     struct pending *p)
{
	const char *hex = dd_http_req_query(req, "nonce");

	if (hex == NULL || strlen(hex) != 2 * DD_REG_NONCE_LEN ||
	    dd_hex_decode(hex, strlen(hex), p->nonce, sizeof p->nonce) !=
		    DD_OK) {
		dd_http_respond_error(req, 400, "bad_request",
				      "nonce must be the 64 hex digits "
				      "/register/nonce gave");
		return 0;
	}
	if (!dd_cp_register_take_nonce(api->reg, p->nonce)) {
		dd_http_respond_error(req, 401, "stale_nonce",
				      "the nonce is unknown, used or expired: "
				      "fetch a new one");
		return 0;
	}
	return 1;
}

static void start_verify(dd_cp_api *api, dd_http_req *req, int export)
{
	struct pending *p;
	const char *tok;
	size_t len = 0;
	dd_err_t rc;

	tok = bearer_token(req, export, &len);
	if (tok == NULL) {
		dd_http_respond_error(req, 401, "unauthenticated",
				      "the export needs a fleet admin's "
				      "session, the owner's OIDC token, or a "
				      "successor CP's bound ITA token as "
				      "Authorization: Bearer");
		return;
	}
	p = dd_calloc(1, sizeof *p);
	if (p == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	p->api = api;
	p->export = export;
	if (export && !take_export_nonce(api, req, p)) {
		pending_free(p);
		return;
	}
	p->req = req;
	p->next = api->pending;
	if (api->pending != NULL)
		api->pending->prev = p;
	api->pending = p;
	dd_http_req_on_abort(req, on_abort, p);
	rc = dd_attestor_verify(api->att, tok, len, on_verdict, p);
	if (rc) {
		unlink_pending(p);
		dd_http_req_on_abort(req, NULL, NULL);
		dd_http_respond_err(req, rc, "verifying the token");
		pending_free(p);
	}
}

/* --- routes ------------------------------------------------------------- */

static void handle_agents(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_cp_api *api = ud;

	/* Authz sends an ITA-looking bearer here as AGENT, unverified. */
	if (who->kind == DD_CALLER_AGENT) {
		start_verify(api, req, 0);
		return;
	}
	respond_agents(api, req, who);
}

static void handle_export(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_cp_api *api = ud;

	if (who->kind == DD_CALLER_ADMIN || who->kind == DD_CALLER_OWNER) {
		respond_export(api, req);
		return;
	}
	start_verify(api, req, 1);
}

size_t dd_cp_api_routes(dd_cp_api *api, dd_authz_route *routes)
{
	routes[0] = (dd_authz_route){DD_M_GET, "/api/agents", handle_agents,
				     api, 0, 0};
	routes[1] = (dd_authz_route){DD_M_GET, "/api/v1/admin/export",
				     handle_export, api, 0, 0};
	return DD_CP_API_ROUTES;
}

dd_err_t dd_cp_api_new(uv_loop_t *loop, const dd_cp_api_opts *o,
		       dd_cp_api **out)
{
	dd_cp_api *api = dd_calloc(1, sizeof *api);

	*out = NULL;
	if (api == NULL)
		return DD_ERR_NOMEM;
	api->loop = loop;
	api->store = o->store;
	api->att = o->att;
	api->reg = o->reg;
	dd_buf_init(&api->pub, DD_STORE_EXPORT_MAX);
	*out = api;
	return DD_OK;
}

void dd_cp_api_free(dd_cp_api *api)
{
	if (api == NULL)
		return;
	while (api->pending != NULL) {
		struct pending *p = api->pending;

		unlink_pending(p);
		if (p->req != NULL) {
			dd_http_req_on_abort(p->req, NULL, NULL);
			dd_http_respond_error(p->req, 503, "shutting_down",
					      "the control plane is shutting "
					      "down");
		}
		pending_free(p);
	}
	dd_buf_free(&api->pub);
	dd_free(api);
}
