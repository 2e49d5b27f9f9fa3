/*
 * cp_register.c: registration's front half: nonces, the routes, the
 * body checks and the evidence's verdict. What follows an accepted
 * verdict is cp_register_store.c.
 */
#include "cp/cp_register_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest/binding.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/fleet_view.h"
#include "net/httpc.h"

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

void dd_cp_agent_id(const char *env, const uint8_t pubkey[32], char out[96])
{
	uint8_t md[32];
	unsigned int n = 0;
	char hex[17];

	if (EVP_Digest(pubkey, 32, md, &n, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof md);
	dd_hex_encode(md, 8, hex);
	snprintf(out, 96, "dd-%s-agent-%s", env, hex);
}

/* --- nonces ------------------------------------------------------------ */

static struct nonce *free_slot(dd_cp_register *r, uint64_t now)
{
	for (size_t i = 0; i < DD_REG_MAX_NONCES; i++) {
		if (r->nonces[i].expires_ms <= now)
			return &r->nonces[i];
	}
	return NULL;
}

/* Burns the nonce if it is ours and alive: 1, else 0. Constant-time compare. */
static int take_nonce(dd_cp_register *r, const uint8_t v[DD_REG_NONCE_LEN])
{
	uint64_t now = uv_now(r->loop);
	int found = 0;

	for (size_t i = 0; i < DD_REG_MAX_NONCES; i++) {
		struct nonce *s = &r->nonces[i];

		if (s->expires_ms > now &&
		    CRYPTO_memcmp(s->v, v, DD_REG_NONCE_LEN) == 0) {
			s->expires_ms = 0;
			found = 1;
		}
	}
	return found;
}

int dd_cp_register_take_nonce(dd_cp_register *r,
			      const uint8_t nonce[DD_REG_NONCE_LEN])
{
	return take_nonce(r, nonce);
}

static void handle_nonce(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_cp_register *r = ud;
	uint64_t now = uv_now(r->loop);
	struct nonce *s = free_slot(r, now);
	char hex[2 * DD_REG_NONCE_LEN + 1];
	json_t *o;

	(void)who;
	if (s == NULL) {
		dd_http_set_header(req, "Retry-After", "5");
		dd_http_respond_error(req, 503, "busy",
				      "too many registrations in progress");
		return;
	}
	if (dd_random_bytes(s->v, sizeof s->v) != DD_OK) {
		dd_http_respond_err(req, DD_ERR_IO, "no randomness");
		return;
	}
	s->expires_ms = now + DD_REG_NONCE_TTL_MS;
	dd_hex_encode(s->v, sizeof s->v, hex);
	o = json_pack("{s:s, s:i}", "nonce", hex, "expires_in",
		      DD_REG_NONCE_TTL_MS / 1000);
	if (o == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
}

/* --- registration --------------------------------------------------------- */

void reg_unlink_pending(struct pending *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		p->r->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

void reg_pending_free(struct pending *p)
{
	json_decref(p->body);
	if (p->agent != NULL) {
		dd_store_agent_clear(p->agent);
		dd_free(p->agent);
	}
	json_decref(p->cf_hosts);
	if (p->token != NULL)
		dd_freezero(p->token, strlen(p->token));
	OPENSSL_cleanse(p->nonce, sizeof p->nonce);
	dd_free(p);
}

static void on_abort(void *ud)
{
	struct pending *p = ud;

	p->req = NULL;
}

static int hex_field(const json_t *b, const char *name, uint8_t *out,
		     size_t n)
{
	const char *s = json_string_value(json_object_get(b, name));

	return s != NULL && strlen(s) == 2 * n &&
	       dd_hex_decode(s, 2 * n, out, n) == DD_OK;
}

/* extra_ingress: absent, or up to 16 {hostname_label: string, port: 1..65535}. */
static int extras_ok(const json_t *b)
{
	json_t *ex = json_object_get(b, "extra_ingress"), *e;
	size_t i;

	if (ex == NULL || json_is_null(ex))
		return 1;
	if (!json_is_array(ex) || json_array_size(ex) > MAX_EXTRAS)
		return 0;
	json_array_foreach(ex, i, e) {
		json_t *l = json_object_get(e, "hostname_label");
		json_t *p = json_object_get(e, "port");

		if (!json_is_string(l) || json_string_length(l) == 0 ||
		    json_string_length(l) > 63 || !json_is_integer(p) ||
		    json_integer_value(p) < 1 || json_integer_value(p) > 65535)
			return 0;
	}
	return 1;
}

/* Where the collector will reach the agent: an origin, https outside dev. */
static int url_ok(const char *u, int dev)
{
	if (u == NULL || strlen(u) > 512 || dd_httpc_check_url(u) != DD_OK)
		return 0;
	return strncmp(u, "https://", 8) == 0 ||
	       (dev && strncmp(u, "http://", 7) == 0);
}

static const char *check_body(const json_t *b, struct pending *p, int dev)
{
	const char *vm = json_string_value(json_object_get(b, "vm_name"));
	const char *tok = json_string_value(json_object_get(b, "ita_token"));
	const char *id = json_string_value(json_object_get(b, "agent_id"));
	static const uint8_t zero[32];

	if (!json_is_object(b))
		return "the body must be a JSON object";
	if (p->replace && (id == NULL || id[0] == '\0' ||
			   strlen(id) > DD_STORE_ID_MAX))
		return "agent_id must be the id registration gave";
	if (p->replace)
		snprintf(p->agent_id, sizeof p->agent_id, "%s", id);
	if (!p->replace && (vm == NULL || vm[0] == '\0' || strlen(vm) > 64))
		return "vm_name must be a string of 1-64 bytes";
	if (tok == NULL || tok[0] == '\0')
		return "ita_token is required";
	if (!hex_field(b, "nonce", p->nonce, sizeof p->nonce))
		return "nonce must be the 64 hex digits /register/nonce gave";
	if (!hex_field(b, "noise_pubkey", p->pubkey, sizeof p->pubkey))
		return "noise_pubkey must be 64 hex digits";
	/* An all-zero key has no private half anyone holds. */
	if (CRYPTO_memcmp(p->pubkey, zero, 32) == 0)
		return "noise_pubkey must not be all zeros";
	if (!extras_ok(b))
		return "extra_ingress must be up to 16 {hostname_label, port}";
	if (!p->replace &&
	    !url_ok(json_string_value(json_object_get(b, "url")), dev))
		return dev ? "url must be the agent's http(s) origin"
			   : "url must be the agent's https origin";
	return NULL;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* The registration as a fleet-store record (claims borrowed). */
static void agent_of(const struct pending *p, const dd_ita_verdict *v,
		     json_t *claims, const char *agent_id, dd_store_agent *a)
{
	const char *vm = json_string_value(json_object_get(p->body, "vm_name"));
	json_t *ex = json_object_get(p->body, "extra_ingress"), *e;
	int64_t now_ms = p->r->now() * 1000;
	size_t i;

	dd_store_agent_init(a);
	copy(a->agent_id, sizeof a->agent_id, agent_id);
	copy(a->hostname, sizeof a->hostname, vm);
	copy(a->vm_name, sizeof a->vm_name, vm);
	copy(a->env, sizeof a->env, p->r->env);
	copy(a->attestation_type, sizeof a->attestation_type, "tdx");
	a->status = DD_AGENT_REGISTERING;
	a->ita.iat = v->claims.iat;
	a->ita.exp = v->claims.exp;
	copy(a->ita.tcb_status, sizeof a->ita.tcb_status, v->claims.tcb_status);
	copy(a->ita.attester_type, sizeof a->ita.attester_type,
	     v->claims.attester_type);
	copy(a->ita.mrtd, sizeof a->ita.mrtd, v->claims.mrtd);
	copy(a->ita.mrsigner, sizeof a->ita.mrsigner, v->claims.mrsignerseam);
	copy(a->ita.report_data, sizeof a->ita.report_data,
	     v->claims.report_data);
	a->ita.claims = claims;
	dd_hex_encode(p->pubkey, 32, a->noise_pubkey);
	a->ingress = DD_INGRESS_DIRECT;
	copy(a->ingress_url, sizeof a->ingress_url,
	     json_string_value(json_object_get(p->body, "url")));
	json_array_foreach(ex, i, e) {
		if (a->n_extras == DD_STORE_MAX_EXTRAS)
			break;
		copy(a->extras[a->n_extras].label,
		     sizeof a->extras[a->n_extras].label,
		     json_string_value(json_object_get(e, "hostname_label")));
		a->extras[a->n_extras++].port =
			(uint16_t)json_integer_value(json_object_get(e, "port"));
	}
	a->registered_at_ms = now_ms;
	a->last_seen_ms = now_ms;
}

static void on_verdict(const dd_ita_verdict *v, json_t *claims, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;
	dd_store_agent a;
	char why[256] = "";
	dd_err_t rc;

	if (req == NULL)
		goto done;
	if (v->err) {
		dd_http_req_on_abort(req, NULL, NULL);
		dd_http_respond_error(req, v->err == DD_ERR_UPSTREAM ? 502
				      : v->err == DD_ERR_CANCELLED ? 503 : 401,
				      v->pin != DD_PIN_PASS &&
				      v->pin != DD_PIN_UNPINNED ? "not_pinned"
								: "bad_token",
				      "%s", v->why);
		goto done;
	}
	if (dd_binding_check_hex(v->claims.report_data, p->nonce,
				 sizeof p->nonce, p->pubkey) != DD_OK) {
		dd_http_req_on_abort(req, NULL, NULL);
		dd_http_respond_error(req, 401, "binding_mismatch",
				      "the token's report_data does not bind this "
				      "nonce and Noise key");
		goto done;
	}
	if (p->replace) {
		if (reg_replace_extras(p))
			return;
		goto done;
	}
	dd_cp_agent_id(p->r->env, p->pubkey, p->agent_id);
	agent_of(p, v, claims, p->agent_id, &a);
	rc = dd_store_agent_check(&a, why, sizeof why);
	/* With Cloudflare the tunnel comes first, the record after it. */
	if (rc == DD_OK && p->r->cf != NULL)
		rc = reg_start_tunnel(p, &a, why, sizeof why);
	else if (rc == DD_OK)
		rc = dd_store_register(p->r->store, &a, reg_on_stored, p);
	a.ita.claims = NULL; /* borrowed */
	dd_store_agent_clear(&a);
	/* on_tunnel or reg_on_stored answers (the abort hook stays for it). */
	if (rc == DD_OK)
		return;
	dd_http_req_on_abort(req, NULL, NULL);
	if (rc == DD_ERR_INVALID)
		dd_http_respond_error(req, 400, "bad_request",
				      "cannot register: %s", why);
	else
		dd_http_respond_error(req, 503, p->r->cf != NULL
				      ? "cloudflare_failed" : "store_failed",
				      "cannot %s: %s", p->r->cf != NULL
				      ? "start the agent's tunnel"
				      : "record the registration",
				      dd_strerror(rc));
done:
	reg_unlink_pending(p);
	reg_pending_free(p);
}

static void start_evidence(dd_http_req *req, dd_cp_register *r, int replace);

static void handle_register(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	start_evidence(req, ud, 0);
}

static void handle_replace(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	start_evidence(req, ud, 1);
}

/* Both take the same evidence: a CP nonce bound with the Noise key. */
static void start_evidence(dd_http_req *req, dd_cp_register *r, int replace)
{
	struct pending *p = dd_calloc(1, sizeof *p);
	const uint8_t *body;
	const char *bad, *tok;
	size_t len;
	char why[160];
	dd_err_t rc;

	if (p == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	p->r = r;
	p->replace = replace;
	body = dd_http_req_body(req, &len);
	rc = dd_json_parse(body, len, MAX_BODY, &p->body, why, sizeof why);
	bad = rc ? why : check_body(p->body, p, r->dev);
	if (bad != NULL) {
		dd_http_respond_error(req, 400, "bad_request", "%s", bad);
		reg_pending_free(p);
		return;
	}
	/* Burnt now, whatever follows: a nonce is worth one attempt. */
	if (!take_nonce(r, p->nonce)) {
		dd_http_respond_error(req, 401, "stale_nonce",
				      "the nonce is unknown, used or expired: "
				      "fetch a new one");
		reg_pending_free(p);
		return;
	}
	p->req = req;
	p->next = r->pending;
	if (r->pending != NULL)
		r->pending->prev = p;
	r->pending = p;
	dd_http_req_on_abort(req, on_abort, p);
	tok = json_string_value(json_object_get(p->body, "ita_token"));
	rc = dd_attestor_verify(r->att, tok, strlen(tok), on_verdict, p);
	if (rc) {
		reg_unlink_pending(p);
		dd_http_req_on_abort(req, NULL, NULL);
		dd_http_respond_err(req, rc, "verifying the token");
		reg_pending_free(p);
	}
}

static void handle_known(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_cp_register *r = ud;
	const char *id = dd_http_req_param(req, "agent_id");
	dd_store_agent a;
	dd_err_t rc;

	(void)who;
	rc = id != NULL && strlen(id) <= DD_STORE_ID_MAX
	     ? dd_store_get(r->store, id, &a) : DD_ERR_NOT_FOUND;
	dd_store_agent_clear(&a);
	if (rc == DD_ERR_NOT_FOUND) {
		dd_http_respond_error(req, 404, "unknown_agent",
				      "this control plane does not know that agent");
		return;
	}
	if (rc) {
		dd_http_respond_err(req, rc, "reading the fleet store");
		return;
	}
	dd_http_respond(req, 200, "application/json", "{\"known\":true}\n", 15);
}

size_t dd_cp_register_routes(dd_cp_register *r, dd_authz_route *routes)
{
	routes[0] = (dd_authz_route){DD_M_GET, "/register/nonce", handle_nonce,
				     r, 0, 0};
	/* Anonymous by nature (the evidence is in the body): sized for it. */
	routes[1] = (dd_authz_route){DD_M_POST, "/register", handle_register, r,
				     MAX_BODY, MAX_BODY};
	routes[2] = (dd_authz_route){DD_M_GET, "/register/{agent_id}",
				     handle_known, r, 0, 0};
	routes[3] = (dd_authz_route){DD_M_POST, "/ingress/replace",
				     handle_replace, r, MAX_BODY, MAX_BODY};
	return 4;
}

dd_err_t dd_cp_register_new(uv_loop_t *loop, const dd_cp_register_opts *o,
			    dd_cp_register **out)
{
	dd_cp_register *r = dd_calloc(1, sizeof *r);

	*out = NULL;
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->env = dd_strdup(o->env);
	if (r->env == NULL) {
		dd_free(r);
		return DD_ERR_NOMEM;
	}
	r->loop = loop;
	r->att = o->att;
	r->store = o->store;
	r->now = o->now ? o->now : wall_now;
	r->dev = o->dev;
	if (o->cf != NULL) {
		r->cf_domain = dd_strdup(o->cf_domain ? o->cf_domain : "");
		if (r->cf_domain == NULL) {
			dd_cp_register_free(r);
			return DD_ERR_NOMEM;
		}
		r->cf = o->cf;
		r->cf_cfg = (dd_cp_ingress_cfg){.domain = r->cf_domain,
						.agent_port = o->cf_agent_port,
						.api_port = o->cf_api_port};
	}
	*out = r;
	return DD_OK;
}

void dd_cp_register_free(dd_cp_register *r)
{
	if (r == NULL)
		return;
	while (r->pending != NULL) {
		struct pending *p = r->pending;

		reg_unlink_pending(p);
		if (p->req != NULL) {
			dd_http_req_on_abort(p->req, NULL, NULL);
			dd_http_respond_error(p->req, 503, "shutting_down",
					      "the control plane is shutting down");
		}
		reg_pending_free(p);
	}
	OPENSSL_cleanse(r->nonces, sizeof r->nonces);
	dd_free(r->cf_domain);
	dd_free(r->env);
	dd_free(r);
}
