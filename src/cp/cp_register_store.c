/*
 * cp_register_store.c: an accepted registration or ingress replacement
 * on its way to the fleet store: the agent's Cloudflare tunnel first
 * when the CP has Cloudflare, then the record, then the answer.
 */
#include "cp/cp_register_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/fleet_view.h"

/* Direct: the vm name and no token; tunnel: the public name and token. */
static void respond_registered(dd_http_req *req, const struct pending *p)
{
	const char *vm = json_string_value(json_object_get(p->body, "vm_name"));
	json_t *o;

	if (p->token != NULL)
		o = dd_cp_ingress_reply(p->agent_id, p->host, p->tunnel_id,
					json_object_get(p->cf_hosts,
							"extra_hostnames"),
					p->token);
	else
		o = json_pack("{s:s, s:s, s:{s:s}, s:n}", "agent_id",
			      p->agent_id, "hostname", vm, "ingress", "kind",
			      "direct", "tunnel_token");

	if (o == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
}

/* The store committed (or refused) the registration: now the agent hears. */
void reg_on_stored(const dd_store_result *res, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;

	reg_unlink_pending(p);
	if (req == NULL)
		goto out;
	dd_http_req_on_abort(req, NULL, NULL);
	if (res->rc) {
		dd_http_respond_error(req, 503, "store_failed",
				      "cannot record the registration: %s",
				      res->why[0] ? res->why
						  : dd_strerror(res->rc));
		goto out;
	}
	/* Never the token. */
	dd_log_info("registered %s vm=%s%s%s%s%s", p->agent_id,
		    json_string_value(json_object_get(p->body, "vm_name")),
		    p->token ? " host=" : "", p->token ? p->host : "",
		    p->token ? " tunnel=" : "", p->token ? p->tunnel_id : "");
	respond_registered(req, p);
out:
	reg_pending_free(p);
}

static void on_extras_stored(const dd_store_result *res, void *ud)
{
	struct pending *p = ud;
	dd_http_req *req = p->req;
	json_t *o;

	reg_unlink_pending(p);
	if (req == NULL)
		goto out;
	dd_http_req_on_abort(req, NULL, NULL);
	if (res->rc == DD_ERR_NOT_FOUND) {
		dd_http_respond_error(req, 404, "unknown_agent",
				      "this control plane does not know that agent");
		goto out;
	}
	if (res->rc) {
		dd_http_respond_error(req, 503, "store_failed",
				      "cannot record the ingress: %s",
				      dd_strerror(res->rc));
		goto out;
	}
	o = json_pack("{s:b, s:s, s:O}", "ok", 1, "agent_id", p->agent_id,
		      "extra_ingress", json_object_get(p->body, "extra_ingress"));
	/* A tunnel's: which hostnames it routes now, and which went. */
	if (o != NULL && p->cf_hosts != NULL &&
	    json_object_update_missing(o, p->cf_hosts)) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, o);
	json_decref(o);
out:
	reg_pending_free(p);
}

/* The body's extras (checked by check_body) in the store's form. */
static size_t body_extras(const struct pending *p, dd_store_extra *ex)
{
	json_t *list = json_object_get(p->body, "extra_ingress"), *e;
	size_t i, n = 0;

	json_array_foreach(list, i, e) {
		if (n == MAX_EXTRAS)
			break;
		snprintf(ex[n].label, sizeof ex[n].label, "%s",
			 json_string_value(json_object_get(e, "hostname_label")));
		ex[n++].port =
			(uint16_t)json_integer_value(json_object_get(e, "port"));
	}
	return n;
}

static dd_err_t store_extras(struct pending *p)
{
	dd_store_extra ex[MAX_EXTRAS];
	size_t n = body_extras(p, ex);

	return dd_store_set_extras(p->r->store, p->agent_id, ex, n,
				   on_extras_stored, p);
}

static void refuse_replace(struct pending *p, dd_err_t rc, const char *why)
{
	dd_http_req_on_abort(p->req, NULL, NULL);
	if (rc == DD_ERR_NOT_FOUND)
		dd_http_respond_error(p->req, 404, "unknown_agent",
				      "this control plane does not know that agent");
	else if (rc == DD_ERR_FORBIDDEN)
		dd_http_respond_error(p->req, 403, "not_this_agent",
				      "the evidence is not that agent's");
	else if (rc == DD_ERR_CONFIG)
		dd_http_respond_error(p->req, 503, "cloudflare_not_configured",
				      "%s", why);
	else if (rc == DD_ERR_INVALID)
		dd_http_respond_error(p->req, 400, "bad_request",
				      "cannot set the ingress: %s",
				      why[0] ? why : dd_strerror(rc));
	else
		dd_http_respond_error(p->req, 503, "store_failed",
				      "cannot set the ingress: %s",
				      dd_strerror(rc));
}

/*
 * Cloudflare routes the new ingress: now the store takes the extras
 * (also when the agent went away: the tunnel already routes them).
 */
static void on_applied(const dd_cp_ingress_result *res, void *ud)
{
	struct pending *p = ud;
	dd_err_t rc;

	dd_cp_ingress_log(p->agent_id, p->replace ? "ingress" : "registration",
			  res);
	if (res->err) {
		if (p->req == NULL)
			goto done;
		dd_http_req_on_abort(p->req, NULL, NULL);
		dd_http_respond_error(p->req, dd_cp_ingress_status(res->err),
				      "cloudflare_failed",
				      "cannot apply the ingress to the agent's "
				      "tunnel: %s", res->msg);
		goto done;
	}
	p->cf_hosts = json_pack("{s:O, s:O}", "extra_hostnames",
				res->extra_hostnames, "removed_hostnames",
				res->removed_hostnames);
	rc = p->cf_hosts != NULL ? store_extras(p) : DD_ERR_NOMEM;
	if (rc == DD_OK)
		return;
	if (p->req != NULL)
		refuse_replace(p, rc, "");
done:
	reg_unlink_pending(p);
	reg_pending_free(p);
}

/* A tunnel agent's ingress goes to Cloudflare before the store. */
static dd_err_t start_apply(struct pending *p, const dd_store_agent *a,
			    char *why, size_t why_len)
{
	if (p->r->cf == NULL) {
		snprintf(why, why_len, "the agent is published through a "
			 "Cloudflare tunnel and this control plane has no "
			 "Cloudflare configured");
		return DD_ERR_CONFIG;
	}
	return dd_cp_ingress_replace(p->r->cf, &p->r->cf_cfg, p->agent_id,
				     a->hostname, a->tunnel_id,
				     json_object_get(p->body, "extra_ingress"),
				     on_applied, p, why, why_len);
}

/*
 * The attested caller must be the agent it names: its token binds the
 * Noise key registration recorded for that id. 1: an asynchronous step
 * will answer; 0: answered here.
 */
int reg_replace_extras(struct pending *p)
{
	dd_store_agent a;
	char key[65], why[256] = "";
	dd_err_t rc;

	rc = dd_store_get(p->r->store, p->agent_id, &a);
	dd_hex_encode(p->pubkey, 32, key);
	/* The CP's own entry takes no runtime ingress (spec 6.2). */
	if (rc == DD_OK && (strcmp(a.noise_pubkey, key) != 0 ||
			    strcmp(p->agent_id, DD_FLEET_CP_ID) == 0))
		rc = DD_ERR_FORBIDDEN;
	if (rc == DD_OK && a.ingress == DD_INGRESS_TUNNEL)
		rc = start_apply(p, &a, why, sizeof why);
	else if (rc == DD_OK)
		rc = store_extras(p);
	dd_store_agent_clear(&a);
	if (rc == DD_OK)
		return 1;
	refuse_replace(p, rc, why);
	return 0;
}

/* The tunnel exists and routes: the record becomes a tunnel agent's. */
static dd_err_t tunnel_record(struct pending *p,
			      const dd_cp_ingress_result *res)
{
	dd_store_agent *a = p->agent;

	if (strlen(res->tunnel_id) > DD_STORE_TUNNEL_MAX)
		return DD_ERR_UPSTREAM;
	snprintf(p->tunnel_id, sizeof p->tunnel_id, "%s", res->tunnel_id);
	snprintf(p->host, sizeof p->host, "%s", res->host);
	p->token = dd_strdup(res->token);
	p->cf_hosts = json_pack("{s:O}", "extra_hostnames",
				res->extra_hostnames);
	a->ingress_detail = dd_cp_ingress_detail(p->host, p->agent_id);
	if (p->token == NULL || p->cf_hosts == NULL ||
	    a->ingress_detail == NULL)
		return DD_ERR_NOMEM;
	a->ingress = DD_INGRESS_TUNNEL;
	a->ingress_url[0] = '\0';
	snprintf(a->tunnel_id, sizeof a->tunnel_id, "%s", p->tunnel_id);
	snprintf(a->hostname, sizeof a->hostname, "%s", p->host);
	return DD_OK;
}

/*
 * Cloudflare answered the registration. Only a tunnel that exists and
 * routes is recorded: a failure leaves no agent behind (the tunnel, if
 * one was made, is found by name when the agent tries again).
 */
static void on_tunnel(const dd_cp_ingress_result *res, void *ud)
{
	struct pending *p = ud;
	dd_err_t rc;

	dd_cp_ingress_log(p->agent_id, p->replace ? "ingress" : "registration",
			  res);
	/* Gone: it registers again and gets this tunnel back by name. */
	if (p->req == NULL)
		goto done;
	if (res->err) {
		dd_http_req_on_abort(p->req, NULL, NULL);
		dd_http_respond_error(p->req, dd_cp_ingress_status(res->err),
				      "cloudflare_failed",
				      "cannot set up the agent's tunnel: %s",
				      res->msg);
		goto done;
	}
	rc = tunnel_record(p, res);
	if (rc == DD_OK)
		rc = dd_store_register(p->r->store, p->agent, reg_on_stored, p);
	if (rc == DD_OK)
		return;
	dd_http_req_on_abort(p->req, NULL, NULL);
	dd_http_respond_error(p->req, 503, "store_failed",
			      "cannot record the registration: %s",
			      dd_strerror(rc));
done:
	reg_unlink_pending(p);
	reg_pending_free(p);
}

/* Keeps a copy of the checked record (claims referenced) for on_tunnel. */
dd_err_t reg_start_tunnel(struct pending *p, const dd_store_agent *a,
			  char *why, size_t why_len)
{
	p->agent = dd_malloc(sizeof *p->agent);
	if (p->agent == NULL)
		return DD_ERR_NOMEM;
	*p->agent = *a;
	json_incref(p->agent->ita.claims);
	return dd_cp_ingress_register(p->r->cf, &p->r->cf_cfg, p->agent_id,
				      json_object_get(p->body, "extra_ingress"),
				      on_tunnel, p, why, why_len);
}
