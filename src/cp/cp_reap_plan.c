/*
 * cp_reap_plan.c: the pure half of reaping (cp_reap.h): which tunnels,
 * CNAMEs and Access apps may go, from listings and the store's view.
 * Every rule here errs towards keeping: a resource is reaped only when
 * it is provably this env's agent tunnel and provably nobody's.
 */
#include "cp/cp_reap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloudflare/cf_access.h"
#include "core/alloc.h"
#include "cp/cp_stonith.h"

#define TARGET_SUFFIX ".cfargotunnel.com"

const char *dd_cp_reap_verdict_name(dd_cp_reap_verdict v)
{
	switch (v) {
	case DD_REAP_GO:
		return "go";
	case DD_REAP_NOT_SERVING:
		return "not the serving CP";
	case DD_REAP_DEGRADED:
		return "Cloudflare view degraded";
	case DD_REAP_NOT_LISTED:
		return "our CP tunnel is not listed";
	case DD_REAP_NEWER_CP:
		return "a newer CP of this env is listed";
	}
	return "?";
}

bool dd_cp_reap_env_tunnel(const char *name, const char *env,
			   const char *role)
{
	size_t el, rl, tail;

	if (name == NULL || env == NULL || role == NULL)
		return false;
	el = strlen(env);
	rl = strlen(role);
	if (strncmp(name, "dd-", 3) != 0 || strncmp(name + 3, env, el) != 0 ||
	    name[3 + el] != '-' || strncmp(name + 4 + el, role, rl) != 0 ||
	    name[4 + el + rl] != '-')
		return false;
	name += 5 + el + rl;
	tail = strspn(name, "0123456789abcdef-");
	/* Only hex and '-': no room for another env's "-agent-" marker. */
	return tail > 0 && tail <= 64 && name[tail] == '\0';
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool in_set(const char *const *v, size_t n, const char *s)
{
	return s != NULL && s[0] != '\0' && n > 0 &&
	       bsearch(&s, v, n, sizeof *v, cmp_str) != NULL;
}

/* The store's claims as two sorted sets: names and tunnel ids. */
struct claims {
	const char **names;
	size_t n_names;
	const char **ids;
	size_t n_ids;
};

static dd_err_t claims_make(const dd_cp_reap_input *in, struct claims *c)
{
	memset(c, 0, sizeof *c);
	if (in->n_known == 0)
		return DD_OK;
	c->names = dd_calloc(in->n_known * 2, sizeof *c->names);
	c->ids = dd_calloc(in->n_known, sizeof *c->ids);
	if (c->names == NULL || c->ids == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < in->n_known; i++) {
		const dd_cp_reap_known *k = &in->known[i];

		c->names[c->n_names++] = k->agent_id;
		if (k->host_label[0] != '\0')
			c->names[c->n_names++] = k->host_label;
		if (k->tunnel_id[0] != '\0')
			c->ids[c->n_ids++] = k->tunnel_id;
	}
	qsort(c->names, c->n_names, sizeof *c->names, cmp_str);
	qsort(c->ids, c->n_ids, sizeof *c->ids, cmp_str);
	return DD_OK;
}

static void claims_free(struct claims *c)
{
	dd_free(c->names);
	dd_free(c->ids);
}

/* An RFC 3339 time in Unix ms; false when absent or unreadable. */
static bool time_ms(const char *s, int64_t *ms)
{
	int64_t us;

	if (s == NULL || dd_cp_stonith_parse_time(s, &us) != DD_OK)
		return false;
	*ms = us / 1000;
	return true;
}

/* created_at in ms; false when absent or unreadable. */
static bool created(const json_t *t, int64_t *ms)
{
	return time_ms(str(t, "created_at"), ms);
}

static bool live(const json_t *t)
{
	const json_t *d = json_object_get(t, "deleted_at");

	return d == NULL || json_is_null(d);
}

/*
 * Is our CP the newest live CP tunnel of the env? Same tie-break as
 * STONITH (stonith.h): later created_at, or the same and a larger name,
 * is newer; an undated other CP counts as newer.
 */
static dd_cp_reap_verdict cp_check(const dd_cp_reap_input *in)
{
	const json_t *t;
	int64_t own_ms = 0, ms;
	bool listed = false;
	size_t i;

	if (in->own_cp == NULL || in->own_cp[0] == '\0')
		return DD_REAP_NOT_LISTED;
	json_array_foreach(in->tunnels, i, t) {
		const char *name = str(t, "name");

		if (name != NULL && strcmp(name, in->own_cp) == 0 && live(t))
			listed = created(t, &own_ms);
	}
	if (!listed)
		return DD_REAP_NOT_LISTED;
	json_array_foreach(in->tunnels, i, t) {
		const char *name = str(t, "name");

		if (!live(t) || !dd_cp_reap_env_tunnel(name, in->env, "cp") ||
		    strcmp(name, in->own_cp) == 0)
			continue;
		if (!created(t, &ms) || ms > own_ms ||
		    (ms == own_ms && strcmp(name, in->own_cp) > 0))
			return DD_REAP_NEWER_CP;
	}
	return DD_REAP_GO;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* The host whose Access apps go with a victim: inside our domain only. */
static void access_host(const char *hostname, const char *name,
			const char *domain, char *out, size_t cap)
{
	size_t hl = strlen(hostname), dl = strlen(domain);
	int n;

	out[0] = '\0';
	if (hl > dl + 1 && hostname[hl - dl - 1] == '.' &&
	    strcmp(hostname + hl - dl, domain) == 0) {
		copy(out, cap, hostname);
		return;
	}
	n = snprintf(out, cap, "%s.%s", name, domain);
	if (n < 0 || (size_t)n >= cap ||
	    dd_cf_check_hostname(out, NULL, 0) != DD_OK)
		out[0] = '\0';
}

/*
 * Does a connector serve through t, or did one within the grace? Then it
 * is a live agent the store lost (it registers again and claims the
 * tunnel), not an orphan. Anything unreadable counts as connected.
 */
static bool connected(const dd_cp_reap_input *in, const json_t *t)
{
	const json_t *c = json_object_get(t, "connections");
	const char *status = str(t, "status");
	const char *gone = str(t, "conns_inactive_at");
	int64_t ms;

	if (c != NULL && !json_is_null(c) &&
	    (!json_is_array(c) || json_array_size(c) > 0))
		return true;
	if (json_object_get(t, "status") != NULL &&
	    !json_is_null(json_object_get(t, "status")) &&
	    (status == NULL || (strcmp(status, "inactive") != 0 &&
				strcmp(status, "down") != 0)))
		return true;
	return time_ms(gone, &ms) &&
	       in->now_ms - ms <= (int64_t)in->grace_ms;
}

struct orphan {
	const json_t *t;
	int64_t created_ms;
};

static int cmp_orphan(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;

	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return strcmp(str(x->t, "name"), str(y->t, "name"));
}

/* Is a tunnel with this id in the listing at all (live or not)? */
static bool listed(const dd_cp_reap_input *in, const char *id)
{
	const json_t *t;
	size_t i;

	json_array_foreach(in->tunnels, i, t) {
		const char *tid = str(t, "id");

		if (tid != NULL && strcmp(tid, id) == 0)
			return true;
	}
	return false;
}

/* The listed agent tunnel a dead agent leaves behind, or NULL. */
static const json_t *dead_tunnel(const dd_cp_reap_input *in,
				 const struct claims *c,
				 const dd_cp_reap_gone *g, int64_t *age)
{
	const json_t *t, *by_name = NULL;
	int64_t ms;
	size_t i;

	json_array_foreach(in->tunnels, i, t) {
		const char *id = str(t, "id"), *name = str(t, "name");

		if (!live(t) || id == NULL || !dd_cf_id_ok(id) ||
		    !dd_cp_reap_env_tunnel(name, in->env, "agent") ||
		    in_set(c->ids, c->n_ids, id) ||
		    in_set(c->names, c->n_names, name))
			continue;
		*age = created(t, &ms) ? in->now_ms - ms : -1;
		/* Its own tunnel, whatever its age. */
		if (g->tunnel_id[0] != '\0' && strcmp(id, g->tunnel_id) == 0)
			return t;
		/*
		 * By name only past the grace: a tunnel just made for a
		 * re-registration under the same name is not its.
		 */
		if (by_name == NULL && strcmp(name, g->agent_id) == 0 &&
		    *age > (int64_t)in->grace_ms)
			by_name = t;
	}
	*age = by_name != NULL && created(by_name, &ms) ? in->now_ms - ms : -1;
	return by_name;
}

static void add_dead(const dd_cp_reap_input *in, const struct claims *c,
		     const dd_cp_reap_gone *g, dd_cp_reap_item *it)
{
	int64_t age = -1;
	const json_t *t = dead_tunnel(in, c, g, &age);

	memset(it, 0, sizeof *it);
	it->dead = true;
	it->age_ms = age;
	copy(it->name, sizeof it->name, g->agent_id);
	if (t != NULL)
		copy(it->tunnel_id, sizeof it->tunnel_id, str(t, "id"));
	/*
	 * Records pointing at its stored tunnel go even when that tunnel is
	 * already gone; not when the id is listed as something we keep.
	 */
	if (it->tunnel_id[0] != '\0')
		copy(it->cname_target, sizeof it->cname_target, it->tunnel_id);
	else if (g->tunnel_id[0] != '\0' && dd_cf_id_ok(g->tunnel_id) &&
		 !in_set(c->ids, c->n_ids, g->tunnel_id) &&
		 !listed(in, g->tunnel_id))
		copy(it->cname_target, sizeof it->cname_target, g->tunnel_id);
	access_host(g->hostname, g->agent_id, in->domain, it->host,
		    sizeof it->host);
}

static bool planned(const dd_cp_reap_plan *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i].tunnel_id, id) == 0)
			return true;
	return false;
}

/* Unknown tunnels past the grace, oldest first, into what max leaves. */
static dd_err_t add_orphans(const dd_cp_reap_input *in,
			    const struct claims *c, size_t max,
			    dd_cp_reap_plan *p)
{
	size_t n = json_array_size(in->tunnels), k = 0, i;
	struct orphan *v;
	const json_t *t;
	int64_t ms;

	if (n == 0)
		return DD_OK;
	v = dd_calloc(n, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	json_array_foreach(in->tunnels, i, t) {
		const char *id = str(t, "id"), *name = str(t, "name");

		if (!live(t) || id == NULL || !dd_cf_id_ok(id) ||
		    !dd_cp_reap_env_tunnel(name, in->env, "agent") ||
		    in_set(c->ids, c->n_ids, id) ||
		    in_set(c->names, c->n_names, name) || planned(p, id))
			continue;
		if (!created(t, &ms))
			p->undated++;
		else if (in->now_ms - ms <= (int64_t)in->grace_ms)
			p->young++;
		else if (connected(in, t))
			p->connected++;
		else
			v[k++] = (struct orphan){t, ms};
	}
	qsort(v, k, sizeof *v, cmp_orphan);
	for (i = 0; i < k && p->n < max; i++) {
		dd_cp_reap_item *it = &p->items[p->n++];
		const char *name = str(v[i].t, "name");

		memset(it, 0, sizeof *it);
		copy(it->name, sizeof it->name, name);
		copy(it->tunnel_id, sizeof it->tunnel_id, str(v[i].t, "id"));
		copy(it->cname_target, sizeof it->cname_target, it->tunnel_id);
		access_host("", name, in->domain, it->host, sizeof it->host);
		it->age_ms = in->now_ms - v[i].created_ms;
	}
	p->deferred = k - i;
	dd_free(v);
	return DD_OK;
}

static dd_cp_reap_verdict verdict(const dd_cp_reap_input *in)
{
	if (!in->serving)
		return DD_REAP_NOT_SERVING;
	if (in->degraded || !json_is_array(in->tunnels))
		return DD_REAP_DEGRADED;
	return cp_check(in);
}

dd_err_t dd_cp_reap_plan_make(const dd_cp_reap_input *in, dd_cp_reap_plan *p)
{
	size_t max = in->max > 0 ? in->max : 1;
	struct claims c;
	dd_err_t rc;

	memset(p, 0, sizeof *p);
	p->verdict = verdict(in);
	if (p->verdict != DD_REAP_GO)
		return DD_OK;
	rc = claims_make(in, &c);
	if (rc == DD_OK) {
		p->items = dd_calloc(max, sizeof *p->items);
		rc = p->items == NULL ? DD_ERR_NOMEM : DD_OK;
	}
	for (size_t i = 0; rc == DD_OK && i < in->n_dead && p->n < max; i++) {
		p->dead_used++;
		/* Registered again since: alive, not ours to reap. */
		if (in_set(c.names, c.n_names, in->dead[i].agent_id)) {
			p->revived++;
			continue;
		}
		add_dead(in, &c, &in->dead[i], &p->items[p->n++]);
	}
	if (rc == DD_OK && in->store_complete)
		rc = add_orphans(in, &c, max, p);
	else if (rc == DD_OK)
		p->orphans_held = true;
	claims_free(&c);
	if (rc)
		dd_cp_reap_plan_clear(p);
	return rc;
}

void dd_cp_reap_plan_clear(dd_cp_reap_plan *p)
{
	dd_free(p->items);
	memset(p, 0, sizeof *p);
}

json_t *dd_cp_reap_cnames(const json_t *dns, const char *target, size_t max)
{
	json_t *out = json_array();
	size_t tl = target != NULL ? strlen(target) : 0, i;
	const json_t *r;

	if (out == NULL || tl == 0)
		return out;
	json_array_foreach(dns, i, r) {
		const char *id = str(r, "id"), *content = str(r, "content");
		const char *type = str(r, "type");

		if (json_array_size(out) >= max)
			break;
		if (id == NULL || content == NULL || !dd_cf_id_ok(id) ||
		    (type != NULL && strcmp(type, "CNAME") != 0))
			continue;
		/* Cloudflare may answer the target in another case. */
		if (strncasecmp(content, target, tl) != 0 ||
		    strcasecmp(content + tl, TARGET_SUFFIX) != 0)
			continue;
		if (json_array_append_new(out, json_string(id))) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *dd_cp_reap_apps(const json_t *apps, const char *host, size_t max)
{
	json_t *out = json_array();
	const json_t *a;
	size_t i;

	if (out == NULL || host == NULL || host[0] == '\0')
		return out;
	json_array_foreach(apps, i, a) {
		const char *id = str(a, "id"), *d = str(a, "domain");

		if (json_array_size(out) >= max)
			break;
		if (id == NULL || !dd_cf_id_ok(id) || d == NULL ||
		    strncmp(d, "*.", 2) == 0 ||
		    !dd_cf_app_match_lenient(a, host))
			continue;
		if (json_array_append_new(out, json_string(id))) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}
