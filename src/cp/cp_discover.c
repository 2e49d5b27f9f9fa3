#include "cp/cp_discover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudflare/cf_api.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/cp_collect.h"
#include "cp/cp_ingress.h"
#include "cp/cp_reap.h"
#include "cp/cp_register.h"
#include "cp/cp_stonith.h"
#include "cp/shard.h"

struct dd_cp_discover {
	dd_cf *cf;
	char *env;
	char *domain;
	uint64_t interval_ms;
	void (*listed)(void *ud);
	void *ud;
	int64_t (*now_ms)(void);
	int64_t next_ms;        /* the next listing's deadline; 0: at once */
	bool inflight;
	bool stopped;
	bool freeing;           /* free once the listing in flight answers */
	bool have;              /* fresh holds a listing not yet taken */
	dd_cp_discover_listing fresh;
	dd_cp_discover_stats st;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the pure parts ---- */

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int cmp_name(const void *a, const void *b)
{
	const dd_cp_discover_tunnel *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* qsort's comparator has no user pointer: the ids ride along. */
struct id_ref {
	const char *id;
	size_t at;
};

static int cmp_id(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;

	return strcmp(x->id, y->id);
}

static bool agent_looking(const char *name, const char *env)
{
	char prefix[DD_CF_LABEL_MAX + 16];

	snprintf(prefix, sizeof prefix, "dd-%s-agent-", env);
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* One C1 item -> t; false when it is not one of our agents' tunnels. */
static bool tunnel_of(const json_t *o, const char *env, const char *domain,
		      dd_cp_discover_tunnel *t, size_t *dropped)
{
	const char *name = str(o, "name"), *id = str(o, "id");
	const char *created = str(o, "created_at");
	json_t *deleted = json_object_get(o, "deleted_at");
	char host[DD_CF_HOST_MAX + 1], url[DD_COLLECT_URL_MAX + 1];
	char why[DD_CF_WHY_MAX];
	int64_t us;

	if (name == NULL || !agent_looking(name, env) ||
	    (deleted != NULL && !json_is_null(deleted)))
		return false;
	if (!dd_cp_reap_env_tunnel(name, env, "agent") || id == NULL ||
	    !dd_cf_id_ok(id) || strlen(id) > DD_COLLECT_TUNNEL_MAX ||
	    strlen(name) > DD_CF_LABEL_MAX ||
	    (size_t)snprintf(host, sizeof host, "%s.%s", name, domain) >=
		    sizeof host ||
	    dd_cp_collect_tunnel_url(host, url, sizeof url, why, sizeof why) !=
		    DD_OK) {
		(*dropped)++;
		return false;
	}
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	snprintf(t->id, sizeof t->id, "%s", id);
	if (created != NULL && dd_cp_stonith_parse_time(created, &us) == DD_OK &&
	    us > 0)
		t->created_ms = us / 1000;
	return true;
}

/* Sorted by name, one entry per name. */
static void dedupe(dd_cp_discover_listing *l)
{
	size_t w = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof *l->v, cmp_name);
	for (size_t i = 0; i < l->n; i++) {
		if (w > 0 && strcmp(l->v[w - 1].name, l->v[i].name) == 0)
			continue;
		l->v[w++] = l->v[i];
	}
	l->n = w;
}

static dd_err_t index_ids(dd_cp_discover_listing *l)
{
	struct id_ref *refs;

	if (l->n == 0)
		return DD_OK;
	refs = dd_calloc(l->n, sizeof *refs);
	l->by_id = dd_calloc(l->n, sizeof *l->by_id);
	if (refs == NULL || l->by_id == NULL) {
		dd_free(refs);
		return DD_ERR_NOMEM;
	}
	for (size_t i = 0; i < l->n; i++)
		refs[i] = (struct id_ref){l->v[i].id, i};
	qsort(refs, l->n, sizeof *refs, cmp_id);
	for (size_t i = 0; i < l->n; i++)
		l->by_id[i] = refs[i].at;
	dd_free(refs);
	return DD_OK;
}

dd_err_t dd_cp_discover_listing_make(const json_t *tunnels, const char *env,
				     const char *domain,
				     dd_cp_discover_listing *out,
				     size_t *dropped)
{
	size_t n = json_array_size(tunnels), bad = 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	if (dropped != NULL)
		*dropped = 0;
	if (n > 0) {
		out->v = dd_calloc(n, sizeof *out->v);
		if (out->v == NULL)
			return DD_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(tunnels, i);

		if (json_is_object(o) &&
		    tunnel_of(o, env, domain, &out->v[out->n], &bad))
			out->n++;
	}
	dedupe(out);
	rc = index_ids(out);
	if (rc)
		dd_cp_discover_listing_clear(out);
	if (dropped != NULL)
		*dropped = bad;
	return rc;
}

void dd_cp_discover_listing_clear(dd_cp_discover_listing *l)
{
	dd_free(l->v);
	dd_free(l->by_id);
	memset(l, 0, sizeof *l);
}

static dd_cp_discover_tunnel *by_name(dd_cp_discover_listing *l,
				      const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, l->v[mid].name);

		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static dd_cp_discover_tunnel *by_id(dd_cp_discover_listing *l, const char *id)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		dd_cp_discover_tunnel *t = &l->v[l->by_id[mid]];
		int c = strcmp(id, t->id);

		if (c == 0)
			return t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void mark(dd_cp_discover_tunnel *t)
{
	if (t != NULL)
		t->known = true;
}

void dd_cp_discover_mark(dd_cp_discover_listing *l, const char *domain,
			 const char *agent_id, const char *hostname,
			 const char *tunnel_id)
{
	char label[DD_CF_LABEL_MAX + 1];
	const char *dot = hostname != NULL ? strchr(hostname, '.') : NULL;
	size_t len = dot != NULL ? (size_t)(dot - hostname) : 0;

	if (l->n == 0)
		return;
	if (agent_id != NULL && agent_id[0] != '\0')
		mark(by_name(l, agent_id));
	/* {name}.{domain}: the first label, when the rest is our domain. */
	if (dot != NULL && len > 0 && len < sizeof label && domain != NULL &&
	    strcmp(dot + 1, domain) == 0) {
		memcpy(label, hostname, len);
		label[len] = '\0';
		mark(by_name(l, label));
	}
	if (tunnel_id != NULL && tunnel_id[0] != '\0' && l->by_id != NULL)
		mark(by_id(l, tunnel_id));
}

dd_err_t dd_cp_discover_append(const dd_cp_discover_listing *l,
			       const char *domain, uint64_t shard_total,
			       uint64_t shard_index, dd_collect_target **v,
			       size_t *n, size_t *cap, size_t *added)
{
	char host[DD_CF_HOST_MAX + 1], why[DD_CF_WHY_MAX];
	dd_collect_target *t;

	if (added != NULL)
		*added = 0;
	for (size_t i = 0; i < l->n; i++) {
		const dd_cp_discover_tunnel *u = &l->v[i];

		if (u->known || !dd_shard_keep(u->name, shard_total,
					       shard_index))
			continue;
		t = dd_grow(*v, cap, *n + 1, sizeof **v, 16);
		if (t == NULL)
			return DD_ERR_NOMEM;
		*v = t;
		t = &t[*n];
		memset(t, 0, sizeof *t);
		snprintf(host, sizeof host, "%s.%s", u->name, domain);
		/* Checked when the listing was made: cannot fail here. */
		if (dd_cp_collect_tunnel_url(host, t->url, sizeof t->url, why,
					     sizeof why) != DD_OK)
			continue;
		snprintf(t->agent_id, sizeof t->agent_id, "%s", u->name);
		snprintf(t->tunnel_id, sizeof t->tunnel_id, "%s", u->id);
		t->via_edge = true;
		t->unknown = true;
		t->created_ms = u->created_ms;
		t->status = DD_COLLECT_REGISTERING;
		(*n)++;
		if (added != NULL)
			(*added)++;
	}
	return DD_OK;
}

static void text_or(char *dst, size_t cap, const char *s, const char *def)
{
	snprintf(dst, cap, "%s", s != NULL && s[0] != '\0' ? s : def);
}

/* extra_ingress -> extras: valid, unique labels with a real port. */
static void extras_of(const json_t *health, dd_store_agent *a)
{
	const json_t *ex = json_object_get(health, "extra_ingress"), *e;
	size_t i;

	json_array_foreach(ex, i, e) {
		const char *label = str(e, "hostname_label");
		json_t *port = json_object_get(e, "port");
		bool dup = false;

		if (a->n_extras == DD_STORE_MAX_EXTRAS)
			break;
		if (label == NULL || strlen(label) > DD_STORE_LABEL_MAX ||
		    dd_cf_check_label(label, NULL, 0) != DD_OK ||
		    strcmp(label, "agent-api") == 0 || !json_is_integer(port) ||
		    json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535)
			continue;
		for (size_t j = 0; j < a->n_extras; j++)
			dup = dup || strcmp(a->extras[j].label, label) == 0;
		if (dup)
			continue;
		snprintf(a->extras[a->n_extras].label,
			 sizeof a->extras[a->n_extras].label, "%s", label);
		a->extras[a->n_extras++].port =
			(uint16_t)json_integer_value(port);
	}
}

/*
 * The Noise key /health publishes, kept only when the tunnel's name is
 * the agent id registration derives from it (dd_cp_agent_id): the name
 * commits to the key, so a key that hashes to another name is not this
 * agent's. With it, the adopted agent's /ingress/replace evidence is
 * checked as a registered agent's is, instead of being refused.
 */
static void noise_key_of(const json_t *health, const char *env,
			 dd_store_agent *a)
{
	const char *hex = str(json_object_get(health, "noise"), "pubkey_hex");
	uint8_t key[32];
	char id[96];

	if (hex == NULL || strlen(hex) != 2 * sizeof key ||
	    dd_hex_decode(hex, strlen(hex), key, sizeof key) != DD_OK)
		return;
	dd_cp_agent_id(env, key, id);
	if (strcmp(id, a->agent_id) == 0)
		dd_hex_encode(key, sizeof key, a->noise_pubkey);
}

dd_err_t dd_cp_discover_adopt(const dd_collect_target *t, const json_t *health,
			      const char *env, const char *domain,
			      int64_t tick_ms, dd_store_agent *a)
{
	dd_store_agent_init(a);
	if ((size_t)snprintf(a->hostname, sizeof a->hostname, "%s.%s",
			     t->agent_id, domain) >= sizeof a->hostname)
		return DD_ERR_INVALID;
	snprintf(a->agent_id, sizeof a->agent_id, "%s", t->agent_id);
	snprintf(a->env, sizeof a->env, "%s", env);
	text_or(a->vm_name, sizeof a->vm_name, str(health, "vm_name"),
		"unknown");
	text_or(a->attestation_type, sizeof a->attestation_type,
		str(health, "attestation_type"), "unknown");
	a->status = DD_AGENT_HEALTHY;
	a->ingress = DD_INGRESS_TUNNEL;
	snprintf(a->tunnel_id, sizeof a->tunnel_id, "%s", t->tunnel_id);
	a->ingress_detail = dd_cp_ingress_detail(a->hostname, t->agent_id);
	if (a->ingress_detail == NULL)
		return DD_ERR_NOMEM;
	extras_of(health, a);
	noise_key_of(health, env, a);
	a->registered_at_ms = tick_ms;
	a->last_seen_ms = tick_ms;
	return DD_OK;
}

/* ---- the listing ---- */

static void free_now(dd_cp_discover *d)
{
	dd_cp_discover_listing_clear(&d->fresh);
	dd_free(d->env);
	dd_free(d->domain);
	dd_free(d);
}

static void on_list(const dd_cf_reply *r, void *ud)
{
	dd_cp_discover *d = ud;
	dd_cp_discover_listing l;
	size_t dropped = 0;
	dd_err_t rc;

	d->inflight = false;
	if (d->freeing) {
		free_now(d);
		return;
	}
	if (d->stopped)
		return;
	rc = r->err ? r->err : json_is_array(r->result) ? DD_OK
						       : DD_ERR_UPSTREAM;
	if (rc == DD_OK)
		rc = dd_cp_discover_listing_make(r->result, d->env, d->domain,
						 &l, &dropped);
	if (rc) {
		d->st.failures++;
		dd_log_warn("discovery: listing Cloudflare's tunnels failed "
			    "(%s%s%s): no unknown tunnel is scraped until the "
			    "next listing", dd_strerror(rc),
			    r->message[0] ? ": " : "", r->message);
		return;
	}
	if (dropped > 0)
		dd_log_warn("discovery: %zu tunnels named like our agents' are "
			    "not ours to scrape (not a hex tail, a bad id or "
			    "no API hostname)", dropped);
	dd_cp_discover_listing_clear(&d->fresh);
	d->fresh = l;
	d->have = true;
	d->st.listings++;
	d->st.last_count = l.n;
	d->listed(d->ud);
}

void dd_cp_discover_due(dd_cp_discover *d)
{
	int64_t now;
	dd_err_t rc;

	if (d == NULL || d->stopped || d->inflight)
		return;
	now = d->now_ms();
	if (d->next_ms != 0 && now < d->next_ms)
		return;
	d->next_ms = now + (int64_t)d->interval_ms;
	rc = dd_cf_tunnels_list(d->cf, on_list, d);
	if (rc) {
		d->st.failures++;
		dd_log_warn("discovery: cannot list Cloudflare's tunnels: %s",
			    dd_strerror(rc));
		return;
	}
	d->inflight = true;
}

bool dd_cp_discover_take(dd_cp_discover *d, dd_cp_discover_listing *out)
{
	memset(out, 0, sizeof *out);
	if (d == NULL || !d->have)
		return false;
	*out = d->fresh; /* transferred */
	memset(&d->fresh, 0, sizeof d->fresh);
	d->have = false;
	return true;
}

dd_err_t dd_cp_discover_new(const dd_cp_discover_opts *o,
			    dd_cp_discover **out)
{
	dd_cp_discover *d;

	*out = NULL;
	if (o->cf == NULL || o->env == NULL || o->env[0] == '\0' ||
	    o->domain == NULL || o->domain[0] == '\0' || o->listed == NULL)
		return DD_ERR_CONFIG;
	d = dd_calloc(1, sizeof *d);
	if (d == NULL)
		return DD_ERR_NOMEM;
	d->env = dd_strdup(o->env);
	d->domain = dd_strdup(o->domain);
	if (d->env == NULL || d->domain == NULL) {
		free_now(d);
		return DD_ERR_NOMEM;
	}
	d->cf = o->cf;
	d->interval_ms = o->interval_ms ? o->interval_ms
					: DD_CP_DISCOVER_DEFAULT_INTERVAL_MS;
	d->listed = o->listed;
	d->ud = o->ud;
	d->now_ms = o->now_ms ? o->now_ms : wall_ms;
	*out = d;
	return DD_OK;
}

void dd_cp_discover_stop(dd_cp_discover *d)
{
	if (d != NULL)
		d->stopped = true;
}

void dd_cp_discover_free(dd_cp_discover *d)
{
	if (d == NULL)
		return;
	d->stopped = true;
	if (d->inflight) {
		d->freeing = true;
		return;
	}
	free_now(d);
}

void dd_cp_discover_get_stats(const dd_cp_discover *d,
			      dd_cp_discover_stats *out)
{
	memset(out, 0, sizeof *out);
	if (d != NULL)
		*out = d->st;
}
