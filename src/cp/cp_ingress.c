#include "cp/cp_ingress.h"

#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_access.h"
#include "core/alloc.h"
#include "core/log.h"

dd_err_t dd_cp_ingress_extras(const json_t *list, dd_cf_extra *out,
			      size_t max, size_t *n, char *why,
			      size_t why_len)
{
	const json_t *e;
	size_t i;

	*n = 0;
	if (list == NULL || json_is_null(list))
		return DD_OK;
	if (!json_is_array(list) || json_array_size(list) > max) {
		snprintf(why, why_len, "extra_ingress must be a list of at "
			 "most %zu entries", max);
		return DD_ERR_INVALID;
	}
	json_array_foreach(list, i, e) {
		const char *l = json_string_value(json_object_get(e,
							"hostname_label"));
		const json_t *p = json_object_get(e, "port");
		char lwhy[DD_CF_WHY_MAX];

		if (l == NULL ||
		    dd_cf_check_label(l, lwhy, sizeof lwhy) != DD_OK) {
			snprintf(why, why_len, "extra_ingress[%zu]: %s", i,
				 l == NULL ? "hostname_label must be a string"
					   : lwhy);
			return DD_ERR_INVALID;
		}
		if (!json_is_integer(p) || json_integer_value(p) < 1 ||
		    json_integer_value(p) > 65535) {
			snprintf(why, why_len, "extra_ingress[%zu]: port must "
				 "be 1-65535", i);
			return DD_ERR_INVALID;
		}
		snprintf(out[i].label, sizeof out[i].label, "%s", l);
		out[i].port = (uint16_t)json_integer_value(p);
	}
	*n = json_array_size(list);
	return DD_OK;
}

dd_err_t dd_cp_ingress_plan_make(const dd_cp_ingress_cfg *cfg,
				 const char *agent_id, const char *host,
				 const json_t *list, dd_cp_ingress_plan *p,
				 char *why, size_t why_len)
{
	dd_err_t rc;

	memset(p, 0, sizeof *p);
	rc = dd_cp_ingress_extras(list, p->extras, DD_CF_MAX_EXTRAS,
				  &p->n_extras, why, why_len);
	if (rc)
		return rc;
	if (host != NULL) {
		rc = dd_cf_check_hostname(host, why, why_len);
		if (rc == DD_OK)
			snprintf(p->host, sizeof p->host, "%s", host);
	} else {
		rc = dd_cf_agent_hostname(agent_id, cfg->domain, p->host,
					  sizeof p->host, why, why_len);
	}
	if (rc)
		return rc;
	p->spec = (dd_cf_ingress_spec){.primary = p->host,
				       .primary_port = cfg->agent_port,
				       .api_port = cfg->api_port,
				       .extras = p->extras,
				       .n_extras = p->n_extras};
	return DD_OK;
}

json_t *dd_cp_ingress_detail(const char *host, const char *tunnel_name)
{
	char url[DD_CF_HOST_MAX + 16];

	snprintf(url, sizeof url, "https://%s", host);
	return json_pack("{s:s, s:s, s:s}", "hostname", host, "url", url,
			 "tunnel_name", tunnel_name);
}

json_t *dd_cp_ingress_reply(const char *agent_id, const char *host,
			    const char *tunnel_id, const json_t *extra_hosts,
			    const char *token)
{
	char url[DD_CF_HOST_MAX + 16];
	json_t *extras = extra_hosts != NULL
			 ? json_deep_copy(extra_hosts) : json_array();

	if (extras == NULL)
		return NULL;
	snprintf(url, sizeof url, "https://%s", host);
	/* "o" takes the copy, also when json_pack fails. */
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:o}, s:s}",
			 "agent_id", agent_id, "hostname", host, "ingress",
			 "kind", "tunnel", "hostname", host, "url", url,
			 "tunnel_id", tunnel_id, "extra_hostnames", extras,
			 "tunnel_token", token);
}

int dd_cp_ingress_status(dd_err_t err)
{
	switch (err) {
	case DD_ERR_CANCELLED:
	case DD_ERR_CLOSED:
	case DD_ERR_BUSY:
	case DD_ERR_NOMEM:
		return 503;
	default:
		return 502;
	}
}

/* --- the operations ------------------------------------------------------ */

struct op {
	dd_cf *cf;
	dd_cp_ingress_cb cb;
	void *ud;
	char host[DD_CF_HOST_MAX + 1];
	char tunnel_id[DD_CF_ID_MAX + 1];
	char *token;             /* registration's; secret, wiped */
	json_t *extra_hosts;     /* arrays, never NULL once started */
	json_t *removed_hosts;
	json_t *domains;         /* the Access cleanup's set */
};

static void op_free(struct op *op)
{
	if (op->token != NULL)
		dd_freezero(op->token, strlen(op->token));
	json_decref(op->extra_hosts);
	json_decref(op->removed_hosts);
	json_decref(op->domains);
	dd_free(op);
}

static void finish(struct op *op, dd_err_t err, const char *msg,
		   const char *access_msg, const json_t *report)
{
	dd_cp_ingress_result r = {
		.err = err, .msg = msg, .tunnel_id = op->tunnel_id,
		.host = op->host, .token = op->token ? op->token : "",
		.extra_hostnames = op->extra_hosts,
		.removed_hostnames = op->removed_hosts,
		.access_msg = access_msg,
		.access_deleted = json_array_size(json_object_get(report,
								  "deleted")),
		.access_left_alone = json_array_size(json_object_get(
			report, "left_alone"))};

	op->cb(&r, op->ud);
	op_free(op);
}

static void on_access(dd_err_t err, const char *msg, const json_t *report,
		      void *ud)
{
	struct op *op = ud;

	if (msg == NULL || msg[0] == '\0')
		msg = err ? dd_strerror(err) : "";
	/* Cut short by a shutdown: nothing may follow. */
	if (err == DD_ERR_CANCELLED || err == DD_ERR_CLOSED)
		finish(op, err, msg, msg, report);
	else
		finish(op, DD_OK, "", err ? msg : "", report);
}

/* The tunnel's id, token and hostnames, kept past the borrowed result. */
static dd_err_t take_result(struct op *op, const json_t *res)
{
	const char *id = json_string_value(json_object_get(res, "id"));
	const char *tok = json_string_value(json_object_get(res, "token"));
	const json_t *ex = json_object_get(res, "extra_hostnames");
	const json_t *rm = json_object_get(res, "removed_hostnames");

	if (op->tunnel_id[0] == '\0') {
		if (!dd_cf_id_ok(id) || tok == NULL || tok[0] == '\0')
			return DD_ERR_UPSTREAM;
		snprintf(op->tunnel_id, sizeof op->tunnel_id, "%s", id);
		op->token = dd_strdup(tok);
		if (op->token == NULL)
			return DD_ERR_NOMEM;
	}
	if (json_is_array(ex) && json_array_extend(op->extra_hosts,
						   (json_t *)(uintptr_t)ex))
		return DD_ERR_NOMEM;
	if (json_is_array(rm) && json_array_extend(op->removed_hosts,
						   (json_t *)(uintptr_t)rm))
		return DD_ERR_NOMEM;
	return DD_OK;
}

static void on_tunnel_op(dd_err_t err, const char *msg, const json_t *res,
			 void *ud)
{
	struct op *op = ud;
	dd_err_t rc;

	if (err) {
		finish(op, err, msg, "", NULL);
		return;
	}
	rc = take_result(op, res);
	if (rc) {
		finish(op, rc, rc == DD_ERR_NOMEM ? "out of memory"
		       : "the tunnel operation gave no id or token", "", NULL);
		return;
	}
	rc = dd_cf_access_cleanup_strict(op->cf, op->domains, on_access, op);
	if (rc == DD_ERR_CLOSED)
		finish(op, rc, "the Cloudflare client is closed", "", NULL);
	else if (rc)
		finish(op, DD_OK, "", "the Access cleanup could not start",
		       NULL);
}

static dd_err_t start(dd_cf *cf, const dd_cp_ingress_cfg *cfg,
		      const char *agent_id, const char *host,
		      const char *tunnel_id, const json_t *list,
		      dd_cp_ingress_cb cb, void *ud, char *why, size_t why_len)
{
	dd_cp_ingress_plan plan;
	const char *labels[DD_CF_MAX_EXTRAS];
	struct op *op;
	dd_err_t rc;

	rc = dd_cp_ingress_plan_make(cfg, agent_id, host, list, &plan, why,
				     why_len);
	if (rc)
		return rc;
	op = dd_calloc(1, sizeof *op);
	if (op == NULL)
		return DD_ERR_NOMEM;
	op->cf = cf;
	op->cb = cb;
	op->ud = ud;
	snprintf(op->host, sizeof op->host, "%s", plan.host);
	if (tunnel_id != NULL)
		snprintf(op->tunnel_id, sizeof op->tunnel_id, "%s", tunnel_id);
	for (size_t i = 0; i < plan.n_extras; i++)
		labels[i] = plan.extras[i].label;
	op->extra_hosts = json_array();
	op->removed_hosts = json_array();
	rc = op->extra_hosts && op->removed_hosts ? DD_OK : DD_ERR_NOMEM;
	if (rc == DD_OK)
		rc = dd_cf_access_agent_domains(plan.host, labels,
						plan.n_extras, &op->domains);
	if (rc == DD_OK && tunnel_id != NULL)
		rc = dd_cf_op_apply_ingress(cf, tunnel_id, &plan.spec,
					    on_tunnel_op, op, why, why_len);
	else if (rc == DD_OK)
		rc = dd_cf_op_create_tunnel(cf, agent_id, &plan.spec,
					    on_tunnel_op, op, why, why_len);
	if (rc)
		op_free(op);
	return rc;
}

dd_err_t dd_cp_ingress_register(dd_cf *cf, const dd_cp_ingress_cfg *cfg,
				const char *agent_id, const json_t *list,
				dd_cp_ingress_cb cb, void *ud, char *why,
				size_t why_len)
{
	return start(cf, cfg, agent_id, NULL, NULL, list, cb, ud, why,
		     why_len);
}

dd_err_t dd_cp_ingress_replace(dd_cf *cf, const dd_cp_ingress_cfg *cfg,
			       const char *agent_id, const char *host,
			       const char *tunnel_id, const json_t *list,
			       dd_cp_ingress_cb cb, void *ud, char *why,
			       size_t why_len)
{
	if (tunnel_id == NULL || !dd_cf_id_ok(tunnel_id)) {
		snprintf(why, why_len, "the recorded tunnel id is malformed");
		return DD_ERR_INVALID;
	}
	return start(cf, cfg, agent_id, host, tunnel_id, list, cb, ud, why,
		     why_len);
}

void dd_cp_ingress_log(const char *agent_id, const char *what,
		       const dd_cp_ingress_result *res)
{
	if (res->access_deleted > 0)
		dd_log_info("%s: deleted %zu legacy Access app(s) on its hosts",
			    agent_id, res->access_deleted);
	if (res->access_left_alone > 0)
		dd_log_warn("%s: %zu wildcard Access app(s) cover its hosts; "
			    "left alone", agent_id, res->access_left_alone);
	if (res->access_msg[0] != '\0')
		dd_log_warn("%s: legacy Access cleanup failed (ignored): %s",
			    agent_id, res->access_msg);
	if (res->err)
		dd_log_warn("%s of %s: Cloudflare: %s", what, agent_id,
			    res->msg);
}
