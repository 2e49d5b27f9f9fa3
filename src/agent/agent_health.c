#include "agent/agent_health.h"

#include <string.h>

/* EE deployment names; the count includes entries without a name. */
static json_t *deployment_names(json_t *list, size_t *count)
{
	json_t *deps = json_object_get(list, "deployments"), *d;
	json_t *names = json_array();
	size_t i;

	*count = json_array_size(deps);
	json_array_foreach(deps, i, d) {
		json_t *n = json_object_get(d, "app_name");

		if (names != NULL && json_is_string(n))
			json_array_append(names, n);
	}
	return names;
}

static json_t *extras_json(const dd_agent_state *st)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < st->n_extras; i++)
		json_array_append_new(a, json_pack("{s:s, s:i}", "hostname_label",
						   st->extras[i].label, "port",
						   (int)st->extras[i].port));
	return a;
}

/* Integrity: what could have changed this VM since it was measured. */
static int add_integrity(json_t *o, const dd_agent_state *st)
{
	return json_object_set_new(o, "confidential_mode",
				   json_boolean(st->confidential)) ||
	       json_object_set_new(o, "agent_mode",
				   json_string(st->confidential ? "read_only"
							       : "read_write")) ||
	       json_object_set_new(o, "integrity_state",
				   json_string(st->taints ? "controlled"
							  : "clean")) ||
	       json_object_set_new(o, "integrity_reasons",
				   dd_agent_taints_json(st->taints)) ||
	       json_object_set_new(o, "taint_reasons",
				   dd_agent_taints_json(st->taints));
}

static int add_owner(json_t *o, const dd_agent_state *st)
{
	const dd_principal *t = st->has_tenant ? &st->tenant : NULL;

	return json_object_set_new(o, "owner", json_string(st->owner.name)) ||
	       json_object_set_new(o, "fleet_owner",
				   json_string(st->owner.name)) ||
	       json_object_set_new(o, "agent_owner",
				   t ? json_string(t->name) : json_null()) ||
	       json_object_set_new(o, "fleet_owner_principal",
				   dd_principal_json(&st->owner)) ||
	       json_object_set_new(o, "agent_owner_principal",
				   dd_principal_json(t));
}

static int add_runtime(json_t *o, const dd_agent_health_in *in)
{
	json_t *att = json_object_get(in->ee_health, "attestation_type");
	json_t *sealed = json_object_get(in->ee_health, "sealed");
	size_t count = 0;
	json_t *names = deployment_names(in->ee_list, &count);

	return json_object_set_new(o, "attestation_type",
				   json_is_string(att) ? json_copy(att)
						       : json_string("unknown")) ||
	       json_object_set_new(o, "runtime_reachable",
				   json_boolean(in->ee_health != NULL)) ||
	       /* A local runtime says it is not sealed; EE never says so. */
	       json_object_set_new(o, "runtime_sealed",
				   json_boolean(!json_is_false(sealed) &&
						in->ee_health != NULL)) ||
	       json_object_set_new(o, "deployments",
				   names ? names : json_array()) ||
	       json_object_set_new(o, "deployment_count",
				   json_integer((json_int_t)count)) ||
	       json_object_set_new(o, "workloads",
				   json_is_array(json_object_get(in->ee_list,
								 "deployments"))
				   ? json_deep_copy(json_object_get(
					     in->ee_list, "deployments"))
				   : json_array());
}

json_t *dd_agent_health_json(const dd_agent_health_in *in)
{
	const dd_config *cfg = in->cfg;
	json_t *o;
	int bad;

	o = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}",
		      "ok", 1, "service", "agent", "agent_id",
		      in->st->agent_id, "vm_name", cfg->vm_name, "hostname",
		      cfg->hostname ? cfg->hostname : cfg->vm_name, "env",
		      cfg->env, "ita_mode",
		      cfg->ita_mode == DD_ITA_LOCAL ? "local" : "intel",
		      "build", DD_BUILD_SHA, "dev", cfg->dev, "uptime_secs",
		      (json_int_t)in->uptime_secs);
	if (o == NULL)
		return NULL;
	bad = json_object_set_new(o, "version", json_string(DD_VERSION)) ||
	      json_object_set_new(o, "cp_url", json_string(cfg->cp_url)) ||
	      add_owner(o, in->st) || add_integrity(o, in->st) ||
	      add_runtime(o, in) ||
	      json_object_set_new(o, "extra_ingress", extras_json(in->st)) ||
	      json_object_set_new(o, "ita_token",
				  in->ita_token ? json_string(in->ita_token)
						: json_null());
	if (!bad && in->metrics != NULL)
		bad = json_object_update(o, in->metrics) != 0;
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
