/*
 * cf_drift.c: the snapshot of GET /admin/cf/snapshot (cf_snapshot.h):
 * the serving env's resources in Cloudflare against the CP's store.
 */
#include "cloudflare/cf_snapshot.h"

#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_names.h"
#include "cloudflare/cf_snap_int.h"

struct snap {
	const dd_cf_scope *s;
	const dd_cf_listing *l;
	const json_t *agents;
	char base[DD_CF_HOST_MAX + 1];  /* CP hostname up to its first dot */
	const char *tld;                /* after the first dot, or "" */
	char agent_pfx[64], cp_pfx[64];
	json_t *tunnels, *dns, *apps;   /* cf_state */
	json_t *raw_apps;               /* the in-scope apps as listed */
	json_t *live, *env_ids;         /* id -> true */
	json_t *expected;               /* hostname -> agent id */
	json_t *names;                  /* env CNAME names -> true */
	json_t *drift;
};

static void snap_clear(struct snap *sn)
{
	json_decref(sn->tunnels);
	json_decref(sn->dns);
	json_decref(sn->apps);
	json_decref(sn->raw_apps);
	json_decref(sn->live);
	json_decref(sn->env_ids);
	json_decref(sn->expected);
	json_decref(sn->names);
	json_decref(sn->drift);
}

static int mark(json_t *set, const char *key, json_t *v)
{
	return key == NULL || json_object_set_new(set, key, v) != 0;
}

static int scope_tunnels(struct snap *sn)
{
	size_t i;
	json_t *t;

	json_array_foreach(sn->l->tunnels, i, t) {
		const char *name = dd_cfs_str(t, "name");
		const char *id = dd_cfs_str(t, "id");

		if (id == NULL || !(dd_cfs_starts(name, sn->agent_pfx) ||
				    dd_cfs_starts(name, sn->cp_pfx)))
			continue;
		if (dd_cfs_append(sn->tunnels, dd_cfs_tunnel_item(t)) ||
		    mark(sn->env_ids, id, json_true()))
			return 1;
		if (dd_cfs_str(t, "deleted_at") == NULL &&
		    mark(sn->live, id, json_string(name)))
			return 1;
	}
	return 0;
}

static int scope_dns(struct snap *sn)
{
	char id[DD_CF_ID_MAX + 1];
	size_t i;
	json_t *r;

	json_array_foreach(sn->l->dns, i, r) {
		const char *name = dd_cfs_str(r, "name");

		if (!dd_cfs_target_id(dd_cfs_str(r, "content"), id, sizeof id) ||
		    json_object_get(sn->env_ids, id) == NULL)
			continue;
		if (dd_cfs_append(sn->dns, dd_cfs_dns_item(r, id)) ||
		    (name != NULL && mark(sn->names, name, json_true())))
			return 1;
	}
	return 0;
}

/* The app's host is the CP's, or one of its flattened label hosts. */
static int app_in_scope(const struct snap *sn, const char *domain)
{
	size_t hl, bl = strlen(sn->base);
	char host[DD_CF_HOST_MAX + 1];
	const char *dot;

	if (domain == NULL)
		return 0;
	hl = dd_cf_host_len(domain);
	if (hl > DD_CF_HOST_MAX)
		return 0;
	memcpy(host, domain, hl);
	host[hl] = '\0';
	if (strcmp(host, sn->s->cp_hostname) == 0 || strcmp(host, sn->base) == 0)
		return 1;
	dot = strchr(host, '.');
	if (dot == NULL || strcmp(dot + 1, sn->tld) != 0)
		return 0;
	return ((size_t)(dot - host) == bl && strncmp(host, sn->base, bl) == 0) ||
	       ((size_t)(dot - host) > bl + 1 &&
		strncmp(host, sn->base, bl) == 0 && host[bl] == '-');
}

static int scope_apps(struct snap *sn)
{
	size_t i;
	json_t *a;

	json_array_foreach(sn->l->apps, i, a) {
		if (!app_in_scope(sn, dd_cfs_str(a, "domain")))
			continue;
		if (dd_cfs_append(sn->apps, dd_cfs_app_item(a)) ||
		    json_array_append(sn->raw_apps, a))
			return 1;
	}
	return 0;
}

static int expect(struct snap *sn, const char *host, const char *label,
		  const char *who)
{
	char h[DD_CF_HOST_MAX + 1];
	dd_err_t rc = DD_OK;

	if (host == NULL || host[0] == '\0')
		return 0;
	if (label == NULL)
		snprintf(h, sizeof h, "%s", host);
	else if (strcmp(label, DD_CF_AGENT_API_LABEL) == 0)
		rc = dd_cf_agent_api_hostname(host, h, sizeof h, NULL, 0);
	else
		rc = dd_cf_label_hostname(host, label, h, sizeof h, NULL, 0);
	if (label != NULL && rc != DD_OK)
		return 0; /* a label no tunnel could route: nothing expected */
	if (json_object_get(sn->expected, h) != NULL)
		return 0;
	return mark(sn->expected, h, json_string(who));
}

static int build_expected(struct snap *sn)
{
	size_t i, j;
	json_t *a, *x;

	if (expect(sn, sn->s->cp_hostname, NULL, "control-plane"))
		return 1;
	for (i = 0; i < sn->s->n_cp_labels; i++)
		if (expect(sn, sn->s->cp_hostname, sn->s->cp_labels[i],
			   "control-plane"))
			return 1;
	json_array_foreach(sn->agents, i, a) {
		const char *id = dd_cfs_str(a, "agent_id");
		const char *host = dd_cfs_str(a, "hostname");
		const char *tid = dd_cfs_str(a, "tunnel_id");

		if (id == NULL)
			continue;
		if (expect(sn, host, NULL, id))
			return 1;
		json_array_foreach(json_object_get(a, "extras"), j, x)
			if (expect(sn, host, json_string_value(
					   json_array_get(x, 0)), id))
				return 1;
		if (tid != NULL && tid[0] != '\0' &&
		    expect(sn, host, DD_CF_AGENT_API_LABEL, id))
			return 1;
	}
	return 0;
}

static int add(struct snap *sn, const char *list, json_t *item)
{
	return dd_cfs_append(json_object_get(sn->drift, list), item);
}

static int drift_tunnels(struct snap *sn)
{
	const char *id, *tid;
	json_t *claimed = json_object(), *v, *a;
	size_t i;
	int bad = claimed == NULL;

	json_array_foreach(sn->agents, i, a) {
		tid = dd_cfs_str(a, "tunnel_id");
		if (!bad && tid != NULL && tid[0] != '\0') {
			bad = mark(claimed, tid, json_true());
			if (!bad && json_object_get(sn->live, tid) == NULL)
				bad = add(sn, "missing_tunnels", json_pack(
					"{s:s, s:o, s:s}", "expected", tid,
					"for_agent", dd_cfs_str_or_null(a,
									"agent_id"),
					"reason", "the store names this tunnel "
					"but Cloudflare has no live tunnel with "
					"that id"));
		}
	}
	json_object_foreach(sn->live, id, v) {
		if (bad || json_object_get(claimed, id) != NULL ||
		    dd_cfs_starts(json_string_value(v), sn->cp_pfx))
			continue;
		bad = add(sn, "orphan_tunnels", json_pack("{s:s, s:O, s:s}",
			"id", id, "name", v, "reason",
			"no agent in the store uses this tunnel"));
	}
	json_decref(claimed);
	return bad;
}

static int drift_dns(struct snap *sn)
{
	const char *host;
	json_t *r, *who;
	size_t i;
	int bad = 0;

	json_array_foreach(sn->dns, i, r) {
		const char *name = dd_cfs_str(r, "name");
		if (bad || name == NULL ||
		    json_object_get(sn->expected, name) != NULL)
			continue;
		bad = add(sn, "orphan_dns", json_pack("{s:O, s:s, s:s}", "id",
			json_object_get(r, "id"), "name", name, "reason",
			"no agent in the store publishes this hostname"));
	}
	json_object_foreach(sn->expected, host, who) {
		if (bad || strcmp(host, sn->s->cp_hostname) == 0 ||
		    json_object_get(sn->names, host) != NULL)
			continue;
		bad = add(sn, "missing_dns", json_pack("{s:s, s:O, s:s}",
			"expected", host, "for_agent", who, "reason",
			"no CNAME into this env's tunnels"));
	}
	return bad;
}

static int drift_apps(struct snap *sn)
{
	char suffix[2][DD_CF_HOST_MAX + 16];
	size_t i;
	json_t *a;
	int bad = 0;

	snprintf(suffix[0], sizeof suffix[0], "-term.%s", sn->tld);
	snprintf(suffix[1], sizeof suffix[1], "-block.%s", sn->tld);
	json_array_foreach(sn->raw_apps, i, a) {
		const char *d = dd_cfs_str(a, "domain");
		const char *kind = dd_cfs_policy_kind(a);

		bad = bad || add(sn, "orphan_apps", json_pack("{s:o, s:o, s:s}",
			"id", dd_cfs_str_or_null(a, "id"),
			"name", dd_cfs_str_or_null(a, "name"), "reason",
			"DD creates no Access apps; this one can intercept "
			"DD's traffic"));
		if (bad || strcmp(kind, "human") == 0 ||
		    !(dd_cfs_ends(d, suffix[0]) || dd_cfs_ends(d, suffix[1]) ||
		      dd_cfs_ends(d, "-term") || dd_cfs_ends(d, "-block")))
			continue;
		bad = add(sn, "access_mismatch", json_pack(
			"{s:o, s:s, s:s, s:s}", "id", dd_cfs_str_or_null(a, "id"),
			"domain", d, "expected_policy", "human",
			"actual_policy", kind));
	}
	return bad;
}

static int snap_init(struct snap *sn, const dd_cf_scope *s,
		     const json_t *agents, const dd_cf_listing *l)
{
	const char *dot = strchr(s->cp_hostname, '.');
	size_t bl = dot ? (size_t)(dot - s->cp_hostname)
			: strlen(s->cp_hostname);

	memset(sn, 0, sizeof *sn);
	sn->s = s;
	sn->l = l;
	sn->agents = agents;
	if (bl > DD_CF_HOST_MAX ||
	    dd_cf_tunnel_prefix(s->env, "agent", sn->agent_pfx,
				sizeof sn->agent_pfx) != DD_OK ||
	    dd_cf_tunnel_prefix(s->env, "cp", sn->cp_pfx,
				sizeof sn->cp_pfx) != DD_OK)
		return -1;
	memcpy(sn->base, s->cp_hostname, bl);
	sn->base[bl] = '\0';
	sn->tld = dot ? dot + 1 : "";
	sn->tunnels = json_array();
	sn->dns = json_array();
	sn->apps = json_array();
	sn->raw_apps = json_array();
	sn->live = json_object();
	sn->env_ids = json_object();
	sn->expected = json_object();
	sn->names = json_object();
	sn->drift = json_pack("{s:[], s:[], s:[], s:[], s:[], s:[], s:[]}",
			      "orphan_tunnels", "orphan_dns", "orphan_apps",
			      "missing_tunnels", "missing_dns", "missing_apps",
			      "access_mismatch");
	return !sn->tunnels || !sn->dns || !sn->apps || !sn->raw_apps ||
	       !sn->live || !sn->env_ids || !sn->expected || !sn->names ||
	       !sn->drift;
}

dd_err_t dd_cf_snapshot_build(const dd_cf_scope *s, const json_t *agents,
			      const dd_cf_listing *l, json_t **out)
{
	struct snap sn;
	json_t *sorted = NULL, *v = NULL, *errs;
	int bad;

	*out = NULL;
	if (!json_is_array(agents) || s->cp_hostname == NULL)
		return DD_ERR_INVALID;
	bad = snap_init(&sn, s, agents, l);
	if (bad < 0) {
		snap_clear(&sn);
		return DD_ERR_INVALID;
	}
	bad = bad || scope_tunnels(&sn) || scope_dns(&sn) || scope_apps(&sn);
	/* The degraded rule: no drift at all from a partial listing. */
	if (!bad && l->failures == 0)
		bad = build_expected(&sn) || drift_tunnels(&sn) ||
		      drift_dns(&sn) || drift_apps(&sn);
	sorted = bad ? NULL : dd_cfs_sorted_agents(agents);
	errs = l->errors != NULL ? json_incref(l->errors) : json_array();
	if (sorted != NULL && errs != NULL)
		v = json_pack("{s:s, s:s, s:s, s:b, s:b, s:O,"
			      " s:{s:s, s:s, s:O},"
			      " s:{s:O, s:O, s:O}, s:O}",
			      "fetched_at", s->fetched_at ? s->fetched_at : "",
			      "cf_account_id", s->account_id ? s->account_id : "",
			      "cf_zone_id", s->zone_id ? s->zone_id : "",
			      "cf_api_reachable", l->failures < 3,
			      "degraded", l->failures > 0,
			      "cf_fetch_errors", errs,
			      "cp_state", "control_plane_hostname",
			      s->cp_hostname, "env_label", s->env, "agents",
			      sorted,
			      "cf_state", "tunnels", sn.tunnels, "dns", sn.dns,
			      "apps", sn.apps, "drift", sn.drift);
	json_decref(errs);
	json_decref(sorted);
	snap_clear(&sn);
	if (v == NULL)
		return DD_ERR_NOMEM;
	*out = v;
	return DD_OK;
}
