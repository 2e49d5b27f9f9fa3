/*
 * cf_map.c: the cross-env map of GET /admin/cf/map (cf_snapshot.h):
 * every DD-owned resource of the account, grouped by installation.
 */
#include "cloudflare/cf_snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "cloudflare/cf_names.h"
#include "cloudflare/cf_snap_int.h"
#include "core/alloc.h"

/* The bucket of env, created on first use (borrowed from buckets). */
static json_t *bucket(json_t *buckets, const char *env)
{
	json_t *b = json_object_get(buckets, env);

	if (b != NULL)
		return b;
	b = json_pack("{s:s, s:[], s:[], s:[]}", "env", env, "tunnels", "dns",
		      "apps");
	if (b == NULL || json_object_set_new(buckets, env, b))
		return NULL;
	return b;
}

static const char *env_of(const char *name, char *env, size_t cap)
{
	return dd_cf_env_from_name(name, env, cap) ? env : DD_CFS_UNATTRIBUTED;
}

static int add_to(json_t *buckets, const char *env, const char *list,
		  json_t *item)
{
	json_t *b = bucket(buckets, env);

	if (b == NULL) {
		json_decref(item);
		return 1;
	}
	return dd_cfs_append(json_object_get(b, list), item);
}

static int map_tunnels(json_t *buckets, json_t *owner, const json_t *list)
{
	char env[DD_CF_ENV_MAX + 1];
	size_t i;
	json_t *t;

	json_array_foreach(list, i, t) {
		const char *name = dd_cfs_str(t, "name");
		const char *id = dd_cfs_str(t, "id");
		const char *e;

		if (!dd_cfs_starts(name, "dd-"))
			continue;
		e = env_of(name, env, sizeof env);
		if (add_to(buckets, e, "tunnels", dd_cfs_tunnel_item(t)))
			return 1;
		if (id != NULL && json_object_set_new(owner, id, json_string(e)))
			return 1;
		if (strstr(name, "-cp-") != NULL &&
		    dd_cfs_str(t, "deleted_at") == NULL &&
		    json_object_set_new(bucket(buckets, e), "has_live_cp",
					json_true()))
			return 1;
	}
	return 0;
}

static int map_dns(json_t *buckets, const json_t *owner, const json_t *list)
{
	char id[DD_CF_ID_MAX + 1];
	size_t i;
	json_t *r;

	json_array_foreach(list, i, r) {
		const char *e;

		if (!dd_cfs_target_id(dd_cfs_str(r, "content"), id, sizeof id))
			continue;
		/* A CNAME into a tunnel that is gone: a leaked record. */
		e = json_string_value(json_object_get(owner, id));
		if (add_to(buckets, e ? e : DD_CFS_UNATTRIBUTED, "dns",
			   dd_cfs_dns_item(r, id)))
			return 1;
	}
	return 0;
}

static int map_apps(json_t *buckets, const json_t *list)
{
	char env[DD_CF_ENV_MAX + 1];
	size_t i;
	json_t *a;

	json_array_foreach(list, i, a) {
		const char *name = dd_cfs_str(a, "name");

		if (!dd_cfs_starts(name, "dd-"))
			continue;
		if (add_to(buckets, env_of(name, env, sizeof env), "apps",
			   dd_cfs_app_item(a)))
			return 1;
	}
	return 0;
}

static int cmp_env(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int ux = strcmp(x, DD_CFS_UNATTRIBUTED) == 0;
	int uy = strcmp(y, DD_CFS_UNATTRIBUTED) == 0;

	if (ux != uy)
		return ux - uy;
	return strcmp(x, y);
}

static long known_agents(const json_t *agents)
{
	long n = 0;
	size_t i;
	json_t *a;

	json_array_foreach(agents, i, a) {
		const char *tid = dd_cfs_str(a, "tunnel_id");
		n += tid != NULL && tid[0] != '\0';
	}
	return n;
}

/* Finishes each bucket and lists them in order. */
static json_t *installations(json_t *buckets, const dd_cf_scope *s,
			     const json_t *agents)
{
	size_t n = json_object_size(buckets), k = 0;
	const char **keys = dd_calloc(n ? n : 1, sizeof *keys);
	json_t *out = json_array(), *b;
	const char *key;
	int bad = keys == NULL || out == NULL;

	json_object_foreach(buckets, key, b)
		if (!bad)
			keys[k++] = key;
	if (!bad)
		qsort(keys, k, sizeof *keys, cmp_env);
	for (size_t i = 0; !bad && i < k; i++) {
		int un = strcmp(keys[i], DD_CFS_UNATTRIBUTED) == 0;
		int serving = !un && strcmp(keys[i], s->env) == 0;

		b = json_object_get(buckets, keys[i]);
		bad = json_object_set_new(b, "kind", json_string(un
			? "unattributed"
			: dd_cf_env_kind_name(dd_cf_env_kind_of(keys[i])))) ||
		      json_object_set_new(b, "has_live_cp", json_boolean(
			json_is_true(json_object_get(b, "has_live_cp")))) ||
		      json_object_set_new(b, "is_serving_env",
					  json_boolean(serving)) ||
		      json_object_set_new(b, "known_agents", json_integer(
			serving ? known_agents(agents) : 0)) ||
		      json_array_append(out, b);
	}
	dd_free(keys);
	if (bad) {
		json_decref(out);
		return NULL;
	}
	return out;
}

dd_err_t dd_cf_map_build(const dd_cf_scope *s, const json_t *agents,
			 const dd_cf_listing *l, json_t **out)
{
	json_t *buckets = json_object(), *owner = json_object();
	json_t *inst = NULL, *errs = NULL, *v = NULL;
	int bad = buckets == NULL || owner == NULL;

	*out = NULL;
	if (!dd_cf_env_ok(s->env)) {
		json_decref(buckets);
		json_decref(owner);
		return DD_ERR_INVALID;
	}
	bad = bad || map_tunnels(buckets, owner, l->tunnels) ||
	      map_dns(buckets, owner, l->dns) || map_apps(buckets, l->apps);
	inst = bad ? NULL : installations(buckets, s, agents);
	errs = l->errors != NULL ? json_incref(l->errors) : json_array();
	if (inst != NULL && errs != NULL)
		v = json_pack("{s:s, s:s, s:s, s:b, s:O, s:s, s:O}",
			      "fetched_at", s->fetched_at ? s->fetched_at : "",
			      "cf_account_id", s->account_id ? s->account_id : "",
			      "cf_zone_id", s->zone_id ? s->zone_id : "",
			      "degraded", l->failures > 0,
			      "cf_fetch_errors", errs, "serving_env", s->env,
			      "installations", inst);
	json_decref(inst);
	json_decref(errs);
	json_decref(buckets);
	json_decref(owner);
	if (v == NULL)
		return DD_ERR_NOMEM;
	*out = v;
	return DD_OK;
}
