#include "cloudflare/cf_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudflare/cf_api.h"
#include "cloudflare/cf_names.h"
#include "cloudflare/cf_snap_int.h"
#include "core/alloc.h"


/* --- fetching ----------------------------------------------------------- */

struct fetch {
	unsigned pending;
	dd_cf_listing l;
	dd_cf_listing_cb cb;
	void *ud;
};

void dd_cf_listing_clear(dd_cf_listing *l)
{
	json_decref(l->tunnels);
	json_decref(l->dns);
	json_decref(l->apps);
	json_decref(l->errors);
	memset(l, 0, sizeof *l);
}

static void fetch_done(struct fetch *f)
{
	if (--f->pending > 0)
		return;
	f->cb(&f->l, f->ud);
	dd_cf_listing_clear(&f->l);
	dd_free(f);
}

/* Records one list's outcome; a failure leaves an empty list. */
static void fetched(struct fetch *f, json_t **slot, const char *what,
		    const dd_cf_reply *rep)
{
	char msg[DD_CF_MSG_MAX + 16];

	if (rep->err == DD_OK && json_is_array(rep->result)) {
		json_decref(*slot);
		*slot = json_incref((json_t *)(uintptr_t)rep->result);
	} else {
		snprintf(msg, sizeof msg, "%s: %s", what, rep->message);
		(void)json_array_append_new(f->l.errors, json_string(msg));
		f->l.failures++;
	}
	fetch_done(f);
}

static void got_tunnels(const dd_cf_reply *rep, void *ud)
{
	struct fetch *f = ud;

	fetched(f, &f->l.tunnels, "tunnels", rep);
}

static void got_dns(const dd_cf_reply *rep, void *ud)
{
	struct fetch *f = ud;

	fetched(f, &f->l.dns, "dns", rep);
}

static void got_apps(const dd_cf_reply *rep, void *ud)
{
	struct fetch *f = ud;

	fetched(f, &f->l.apps, "apps", rep);
}

dd_err_t dd_cf_fetch_all(dd_cf *cf, dd_cf_listing_cb cb, void *ud)
{
	static const char *const what[] = {"tunnels", "dns", "apps"};
	struct fetch *f = dd_calloc(1, sizeof *f);
	dd_err_t first = DD_OK;

	if (f == NULL)
		return DD_ERR_NOMEM;
	f->cb = cb;
	f->ud = ud;
	f->l.tunnels = json_array();
	f->l.dns = json_array();
	f->l.apps = json_array();
	f->l.errors = json_array();
	if (!f->l.tunnels || !f->l.dns || !f->l.apps || !f->l.errors) {
		dd_cf_listing_clear(&f->l);
		dd_free(f);
		return DD_ERR_NOMEM;
	}
	/* One extra count so no answer can finish the fetch while starting. */
	f->pending = 4;
	for (int i = 0; i < 3; i++) {
		dd_err_t rc = i == 0 ? dd_cf_tunnels_list(cf, got_tunnels, f)
			    : i == 1 ? dd_cf_dns_list_cnames(cf, got_dns, f)
				     : dd_cf_access_list(cf, got_apps, f);
		if (rc) {
			dd_cf_reply r = {.err = rc};
			char msg[96];

			snprintf(msg, sizeof msg, "could not start: %s",
				 dd_strerror(rc));
			r.message = msg;
			if (first == DD_OK)
				first = rc;
			fetched(f, i == 0 ? &f->l.tunnels : i == 1 ? &f->l.dns
								  : &f->l.apps,
				what[i], &r);
		}
	}
	fetch_done(f);
	return first == DD_ERR_NOMEM ? DD_ERR_NOMEM : DD_OK;
}

/* --- shared helpers ----------------------------------------------------- */

const char *dd_cfs_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int dd_cfs_starts(const char *s, const char *prefix)
{
	return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

int dd_cfs_ends(const char *s, const char *suffix)
{
	size_t n = s ? strlen(s) : 0, m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The value of key if it is a string, else JSON null (new reference). */
json_t *dd_cfs_str_or_null(const json_t *o, const char *key)
{
	const char *s = dd_cfs_str(o, key);

	return s != NULL ? json_string(s) : json_null();
}

json_t *dd_cfs_tunnel_item(const json_t *t)
{
	return json_pack("{s:o, s:o, s:o}", "id", dd_cfs_str_or_null(t, "id"),
			 "name", dd_cfs_str_or_null(t, "name"),
			 "deleted_at", dd_cfs_str_or_null(t, "deleted_at"));
}

/* Tunnel id of a "<id>.cfargotunnel.com" target into id; 0 if not one. */
int dd_cfs_target_id(const char *content, char *id, size_t cap)
{
	size_t n, m = strlen(DD_CFS_TARGET_SUFFIX);

	if (!dd_cfs_ends(content, DD_CFS_TARGET_SUFFIX))
		return 0;
	n = strlen(content) - m;
	if (n == 0 || n >= cap)
		return 0;
	memcpy(id, content, n);
	id[n] = '\0';
	return 1;
}

json_t *dd_cfs_dns_item(const json_t *r, const char *ref)
{
	return json_pack("{s:o, s:o, s:o, s:b, s:o}", "id", dd_cfs_str_or_null(r, "id"),
			 "name", dd_cfs_str_or_null(r, "name"),
			 "content", dd_cfs_str_or_null(r, "content"),
			 "proxied", json_is_true(json_object_get(r, "proxied")),
			 "tunnel_id_ref", ref ? json_string(ref) : json_null());
}

const char *dd_cfs_policy_kind(const json_t *app)
{
	const json_t *p = json_array_get(json_object_get(app, "policies"), 0);
	const char *decision = dd_cfs_str(p, "decision");
	const char *kind = "unknown";
	char *dump;

	if (decision == NULL)
		return kind;
	if (strcmp(decision, "bypass") == 0)
		return "bypass";
	if (strcmp(decision, "allow") != 0)
		return kind;
	dump = json_dumps(p, JSON_COMPACT);
	if (dump == NULL)
		return kind;
	for (char *c = dump; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (strstr(dump, "github-organization") || strstr(dump, "emails"))
		kind = "human";
	free(dump);
	return kind;
}

json_t *dd_cfs_app_item(const json_t *a)
{
	return json_pack("{s:o, s:o, s:o, s:s}", "id", dd_cfs_str_or_null(a, "id"),
			 "name", dd_cfs_str_or_null(a, "name"),
			 "domain", dd_cfs_str_or_null(a, "domain"),
			 "policy_kind", dd_cfs_policy_kind(a));
}

int dd_cfs_append(json_t *arr, json_t *v)
{
	return v == NULL || json_array_append_new(arr, v) != 0;
}

static int cmp_agent(const void *a, const void *b)
{
	const char *x = dd_cfs_str(*(json_t *const *)a, "agent_id");
	const char *y = dd_cfs_str(*(json_t *const *)b, "agent_id");

	return strcmp(x ? x : "", y ? y : "");
}

/* A copy of agents sorted by agent_id. */
json_t *dd_cfs_sorted_agents(const json_t *agents)
{
	size_t n = json_array_size(agents);
	json_t **v = dd_calloc(n ? n : 1, sizeof *v);
	json_t *out = json_array();

	if (v == NULL || out == NULL) {
		dd_free(v);
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(agents, i);
	qsort(v, n, sizeof *v, cmp_agent);
	for (size_t i = 0; i < n && out != NULL; i++) {
		if (json_array_append(out, v[i])) {
			json_decref(out);
			out = NULL;
		}
	}
	dd_free(v);
	return out;
}

