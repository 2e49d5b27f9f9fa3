#include "cp/cp_collect.h"

#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_names.h"
#include "core/alloc.h"
#include "core/log.h"
#include "cp/shard.h"

/* Failures go to the store this many at a time (one write each). */
#define FAIL_BATCH 256

struct dd_cp_collect {
	dd_store *store;
	dd_collector *col;
	dd_store_failure *batch;  /* FAIL_BATCH entries, once needed */
	size_t n_batch;
	void (*on_tick)(void *ud);
	void *tick_ud;
	dd_cp_reap *reap;         /* NULL without Cloudflare */
	size_t unnamed;           /* tunnel agents last tick without a URL */
	const dd_config *cfg;     /* shards, env, domain */
	dd_cp_discover *disc;     /* NULL without Cloudflare */
};

/* The targets being gathered by one scan. */
struct gather {
	dd_collect_target *v;
	size_t n, cap;
	/* Tunnel agents without a derivable URL: counted, the first named. */
	size_t unnamed;
	char first[DD_COLLECT_ID_MAX + 1];
	char why[DD_CF_WHY_MAX];
	const dd_config *cfg;
	/* A discovery tick's listing: every record marks what it claims. */
	dd_cp_discover_listing *listing;
};

dd_err_t dd_cp_collect_tunnel_url(const char *hostname, char *out, size_t cap,
				  char *why, size_t why_len)
{
	char api[DD_CF_HOST_MAX + 1];
	dd_err_t rc;

	if (cap > 0)
		out[0] = '\0';
	rc = dd_cf_agent_api_hostname(hostname, api, sizeof api, why, why_len);
	if (rc)
		return rc;
	if ((size_t)snprintf(out, cap, "https://%s", api) >= cap) {
		if (cap > 0)
			out[0] = '\0';
		snprintf(why, why_len, "the URL of %s is too long", api);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

/*
 * A tunnel agent is scraped through Cloudflare at its -api- hostname
 * (spec: integrations.md 3.4). One whose stored hostname yields none is
 * not scraped; it is counted for the tick's log line instead.
 */
static bool target_url(const dd_store_brief *b, struct gather *g, char *url,
		       size_t cap)
{
	char why[DD_CF_WHY_MAX];

	if (b->ingress == DD_INGRESS_DIRECT) {
		snprintf(url, cap, "%s", b->ingress_url);
		return true;
	}
	if (dd_cp_collect_tunnel_url(b->hostname, url, cap, why,
				     sizeof why) == DD_OK)
		return true;
	if (g->unnamed++ == 0) {
		snprintf(g->first, sizeof g->first, "%s", b->agent_id);
		snprintf(g->why, sizeof g->why, "%s", why);
	}
	return false;
}

static dd_err_t add_target(const dd_store_brief *b, void *ud)
{
	struct gather *g = ud;
	dd_collect_target *t;
	char url[DD_COLLECT_URL_MAX + 1];

	/* Every record, in our shard or not, claims its tunnel. */
	if (g->listing != NULL)
		dd_cp_discover_mark(g->listing, g->cfg->cf_domain, b->agent_id,
				    b->hostname, b->tunnel_id);
	/* The CP's own entry has no ingress: never scraped. */
	if (b->ingress != DD_INGRESS_DIRECT && b->ingress != DD_INGRESS_TUNNEL)
		return DD_OK;
	if (!dd_shard_keep(b->agent_id, g->cfg->scraper_shard_total,
			   g->cfg->scraper_shard_index))
		return DD_OK;
	if (!target_url(b, g, url, sizeof url))
		return DD_OK;
	t = dd_grow(g->v, &g->cap, g->n + 1, sizeof *t, 64);
	if (t == NULL)
		return DD_ERR_NOMEM;
	g->v = t;
	t = &g->v[g->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->agent_id, sizeof t->agent_id, "%s", b->agent_id);
	snprintf(t->url, sizeof t->url, "%s", url);
	t->via_edge = b->ingress == DD_INGRESS_TUNNEL;
	t->status = (dd_collect_status)b->status;
	t->last_seen_ms = b->last_seen_ms;
	t->registered_at_ms = b->registered_at_ms;
	return DD_OK;
}

/*
 * Every tick lists the whole fleet: through the scan, which reads only
 * the plain columns (no record is parsed), so 10,000 agents cost
 * milliseconds, not seconds.
 */
/* A discovery tick: the listing's tunnels no record claimed. */
static void add_unknown(dd_cp_collect *cc, struct gather *g)
{
	size_t added = 0;
	dd_err_t rc;

	rc = dd_cp_discover_append(g->listing, cc->cfg->cf_domain,
				   cc->cfg->scraper_shard_total,
				   cc->cfg->scraper_shard_index, &g->v, &g->n,
				   &g->cap, &added);
	if (rc)
		dd_log_warn("discovery: %s: unknown tunnels left out of this "
			    "tick", dd_strerror(rc));
	if (added > 0)
		dd_log_info("discovery: %zu unknown agent tunnels in this "
			    "shard are scraped this tick", added);
}

static dd_err_t targets(void *ud, dd_collect_target **out, size_t *n)
{
	dd_cp_collect *cc = ud;
	dd_cp_discover_listing listing;
	struct gather g = {.cfg = cc->cfg};
	dd_store_counts c;
	dd_err_t rc;

	*n = 0;
	dd_cp_discover_due(cc->disc);
	if (dd_cp_discover_take(cc->disc, &listing))
		g.listing = &listing;
	/*
	 * Sized from the count (one index read), so a large fleet's array is
	 * allocated once instead of doubling up to twice its size; a write
	 * committed in between only makes add_target grow it.
	 */
	if (dd_store_count(cc->store, &c) == DD_OK && c.agents > 0) {
		g.v = dd_calloc(c.agents, sizeof *g.v);
		g.cap = g.v != NULL ? c.agents : 0;
	}
	rc = dd_store_scan(cc->store, add_target, &g, NULL);
	/* Unread records could claim tunnels: a failed scan adopts nothing. */
	if (rc == DD_OK && g.listing != NULL)
		add_unknown(cc, &g);
	if (g.listing != NULL)
		dd_cp_discover_listing_clear(&listing);
	if (rc) {
		dd_free(g.v);
		return rc;
	}
	/* Logged when the count changes, not every tick. */
	if (g.unnamed != cc->unnamed && g.unnamed > 0)
		dd_log_warn("collector: %zu tunnel agents have no API hostname "
			    "and are not scraped (%s: %s)", g.unnamed, g.first,
			    g.why);
	cc->unnamed = g.unnamed;
	*out = g.v;
	*n = g.n;
	return DD_OK;
}

/* The members of /health the store keeps (store.h: the snapshot). */
static json_t *snapshot(json_t *h)
{
	static const char *const keep[] = {
		"deployment_count", "cpu_percent", "memory_used_mb",
		"memory_total_mb", "nets", "disks",
	};
	json_t *s = json_object(), *names = json_object_get(h, "deployments");

	for (size_t i = 0; s != NULL && i < sizeof keep / sizeof keep[0]; i++) {
		json_t *v = json_object_get(h, keep[i]);
		if (v != NULL)
			json_object_set(s, keep[i], v);
	}
	if (s != NULL && json_is_array(names))
		json_object_set(s, "deployment_names", names);
	return s;
}

static const char *text(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void on_written(const dd_store_result *res, void *ud)
{
	(void)ud;
	if (res->rc)
		dd_log_warn("collector: storing a scrape failed: %s", res->why);
}

static void healthy(void *ud, const dd_collect_target *t,
		    const dd_collect_ok *ok)
{
	dd_cp_collect *cc = ud;
	const dd_ita_verdict *v = ok->verdict;
	json_t *owner = json_object_get(ok->health, "agent_owner_principal");
	dd_principal_kind kind;
	dd_store_agent a;
	char why[160];
	dd_err_t rc;

	rc = dd_store_get(cc->store, t->agent_id, &a);
	/* Spec 3.5 step 4: an unknown tunnel's agent joins, keyed by it. */
	if (rc == DD_ERR_NOT_FOUND && t->unknown)
		rc = dd_cp_discover_adopt(t, ok->health, cc->cfg->env,
					  cc->cfg->cf_domain, ok->tick_ms, &a);
	if (rc) {
		dd_store_agent_clear(&a);
		return;
	}
	a.status = DD_AGENT_HEALTHY;
	a.last_seen_ms = ok->tick_ms;
	a.read_only = json_is_true(json_object_get(ok->health,
						   "confidential_mode"));
	a.clean = strcmp(text(ok->health, "integrity_state"), "clean") == 0;
	/* The tenant the agent reports, if it is a well-formed principal. */
	a.has_owner = json_is_object(owner) &&
		      dd_principal_kind_parse(text(owner, "kind"), &kind) ==
			      DD_OK &&
		      dd_principal_make(kind, text(owner, "name"),
					(uint64_t)json_integer_value(
						json_object_get(owner, "id")),
					&a.owner, why, sizeof why) == DD_OK;
	a.ita.iat = v->claims.iat;
	a.ita.exp = v->claims.exp;
	copy(a.ita.tcb_status, sizeof a.ita.tcb_status, v->claims.tcb_status);
	copy(a.ita.mrtd, sizeof a.ita.mrtd, v->claims.mrtd);
	json_decref(a.ita.claims);
	a.ita.claims = json_incref(ok->claims);
	json_decref(a.health);
	a.health = snapshot(ok->health);
	rc = dd_store_agent_check(&a, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_store_upsert(cc->store, &a, DD_STORE_KEEP_EXTRAS,
				     t->unknown ? "discovered" : "scraped",
				     on_written, cc);
	if (rc == DD_OK && t->unknown)
		dd_log_info("discovery: %s adopted (tunnel %s, vm %s)",
			    t->agent_id, t->tunnel_id, a.vm_name);
	if (rc)
		dd_log_warn("collector: %s: cannot store its health: %s",
			    t->agent_id, rc == DD_ERR_INVALID ? why
							     : dd_strerror(rc));
	dd_store_agent_clear(&a);
}

static void flush(dd_cp_collect *cc)
{
	dd_err_t rc;

	if (cc->n_batch == 0)
		return;
	rc = dd_store_mark_failures(cc->store, cc->batch, cc->n_batch,
				    on_written, cc);
	if (rc)
		dd_log_warn("collector: cannot store %zu failures: %s",
			    cc->n_batch, dd_strerror(rc));
	cc->n_batch = 0;
}

/*
 * A dead agent's Cloudflare resources go with it (cp_reap.h): what the
 * store knew of it is read before the record is removed.
 */
static void queue_reap(dd_cp_collect *cc, const char *agent_id)
{
	dd_store_agent a;

	if (cc->reap == NULL)
		return;
	if (dd_store_get(cc->store, agent_id, &a) != DD_OK) {
		dd_store_agent_init(&a);
		copy(a.agent_id, sizeof a.agent_id, agent_id);
	}
	dd_cp_reap_dead(cc->reap, &a);
	dd_store_agent_clear(&a);
}

/*
 * Failures are batched: a tick over a large fleet where every scrape
 * fails at once (a network outage) must not queue one write per agent.
 */
static void failed(void *ud, const dd_collect_target *t,
		   const dd_collect_fail *f)
{
	dd_cp_collect *cc = ud;
	dd_store_failure *e;
	dd_err_t rc;

	/* No record to change; reaping unknown tunnels is cp_reap's. */
	if (t->unknown) {
		dd_log_info("discovery: %s: %s; preserving tunnel %s",
			    t->agent_id, f->why, t->tunnel_id);
		return;
	}
	if (f->new_status == DD_COLLECT_DEAD) {
		dd_log_warn("collector: %s is dead (%s); removing it",
			    t->agent_id, f->why);
		queue_reap(cc, t->agent_id);
		rc = dd_store_delete(cc->store, t->agent_id, on_written, cc);
		if (rc)
			dd_log_warn("collector: %s: cannot remove it: %s",
				    t->agent_id, dd_strerror(rc));
		return;
	}
	if (cc->batch == NULL) {
		cc->batch = dd_calloc(FAIL_BATCH, sizeof *cc->batch);
		if (cc->batch == NULL) {
			dd_log_warn("collector: %s: no memory to record its "
				    "failure", t->agent_id);
			return;
		}
	}
	e = &cc->batch[cc->n_batch++];
	copy(e->agent_id, sizeof e->agent_id, t->agent_id);
	e->status = (dd_agent_status)f->new_status;
	e->at_ms = t->last_seen_ms > 0 ? t->last_seen_ms : t->registered_at_ms;
	copy(e->error, sizeof e->error, f->why);
	if (cc->n_batch == FAIL_BATCH)
		flush(cc);
}

static void skipped(void *ud, const dd_collect_target *t,
		    dd_collect_skip_kind kind, const char *why)
{
	(void)ud;
	(void)kind;
	dd_log_warn("collector: %s not updated: %s", t->agent_id, why);
}

static void tick_done(void *ud, const dd_collector_stats *st)
{
	dd_cp_collect *cc = ud;

	(void)st;
	flush(cc);
	if (cc->on_tick != NULL)
		cc->on_tick(cc->tick_ud);
	dd_cp_reap_tick(cc->reap);
}

void dd_cp_collect_set_reaper(dd_cp_collect *cc, dd_cp_reap *reap)
{
	cc->reap = reap;
}

void dd_cp_collect_set_discover(dd_cp_collect *cc, dd_cp_discover *d)
{
	cc->disc = d;
}

void dd_cp_collect_on_tick(dd_cp_collect *cc, void (*fn)(void *ud), void *ud)
{
	cc->on_tick = fn;
	cc->tick_ud = ud;
}

/* DD_SCRAPE_DNS's servers; NULL for "system" (libcurl's OS resolver). */
static const char *scrape_dns(const dd_config *cfg)
{
	if (cfg->scrape_dns == NULL || strcmp(cfg->scrape_dns, "system") == 0)
		return NULL;
	return cfg->scrape_dns;
}

dd_err_t dd_cp_collect_new(const dd_config *cfg, uv_loop_t *loop,
			   dd_attestor *att, dd_store *store,
			   dd_cp_collect **out)
{
	dd_cp_collect *cc = dd_calloc(1, sizeof *cc);
	dd_collector_opts o = {.att = att, .ca_file = cfg->ca_file,
			       .edge_connect_to = cfg->collect_connect_to,
			       .scrape_dns = scrape_dns(cfg),
			       .edge_port = (unsigned)cfg->collect_edge_port,
			       .interval_ms = cfg->scrape_interval_secs * 1000,
			       .grace_ms = cfg->scrape_grace_secs * 1000,
			       .dead_after_ms = cfg->scrape_dead_secs * 1000};
	dd_collector_ops ops = {.targets = targets, .healthy = healthy,
				.failed = failed, .skipped = skipped,
				.tick_done = tick_done};
	dd_err_t rc;

	*out = NULL;
	if (cc == NULL)
		return DD_ERR_NOMEM;
	cc->store = store;
	cc->cfg = cfg;
	rc = dd_collector_new(loop, &o, &ops, cc, &cc->col);
	if (rc) {
		dd_free(cc);
		return rc;
	}
	*out = cc;
	return DD_OK;
}

void dd_cp_collect_start(dd_cp_collect *cc)
{
	dd_collector_start(cc->col);
}

void dd_cp_collect_wake(dd_cp_collect *cc)
{
	if (cc != NULL)
		dd_collector_wake(cc->col);
}

void dd_cp_collect_free(dd_cp_collect *cc)
{
	if (cc == NULL)
		return;
	dd_collector_free(cc->col);
	dd_free(cc->batch);
	dd_free(cc);
}
