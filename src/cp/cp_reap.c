/*
 * cp_reap.c: the reaping passes (cp_reap.h) on the Cloudflare client:
 * list, decide (cp_reap_plan.c), then delete one call at a time.
 */
#include "cp/cp_reap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudflare/cf_api.h"
#include "core/alloc.h"
#include "core/log.h"

enum act_kind { A_DROP, A_TUNNEL, A_CNAME, A_APP };

/* One delete of a pass, for victim item. */
struct act {
	enum act_kind kind;
	char id[DD_CF_ID_MAX + 1];
	size_t item;
};

/* What became of one victim. */
struct outcome {
	bool tunnel_failed;
	unsigned cnames, apps, failed;
};

struct dd_cp_reap {
	dd_cf *cf;
	dd_store *store;
	char env[DD_CF_ENV_MAX + 1];
	char domain[DD_CF_HOST_MAX + 1];
	uint64_t grace_ms, interval_ms;
	unsigned max;
	dd_cp_reap_serving_fn serving;
	dd_cp_reap_own_fn own_cp;
	void *ud;
	int64_t (*now_ms)(void);

	dd_cp_reap_gone *dead;    /* the queue, oldest first */
	size_t n_dead, cap_dead;

	bool running, stopped, freeing;
	bool last_ok;             /* the last pass's listings all worked */
	int64_t last_start_ms;    /* 0: never */
	int last_verdict;         /* -1: none logged yet */
	size_t last_undated, last_connected; /* logged when they change */

	/* The pass in progress. */
	json_t *tunnels, *dns, *apps;
	dd_cp_reap_plan plan;
	struct act *acts;
	struct outcome *out;
	size_t n_acts, next;

	dd_cp_reap_stats st;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

dd_err_t dd_cp_reap_new(const dd_cp_reap_opts *o, dd_cp_reap **out)
{
	dd_cp_reap *r;

	*out = NULL;
	if (o->cf == NULL || o->store == NULL || o->serving == NULL ||
	    o->own_cp == NULL || o->env == NULL || !dd_cf_env_ok(o->env) ||
	    o->domain == NULL || o->domain[0] == '\0' ||
	    strlen(o->domain) > DD_CF_HOST_MAX)
		return DD_ERR_CONFIG;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->cf = o->cf;
	r->store = o->store;
	copy(r->env, sizeof r->env, o->env);
	copy(r->domain, sizeof r->domain, o->domain);
	r->grace_ms = o->grace_ms ? o->grace_ms : DD_CP_REAP_DEFAULT_GRACE_MS;
	r->interval_ms = o->interval_ms ? o->interval_ms
					: DD_CP_REAP_DEFAULT_INTERVAL_MS;
	r->max = o->max ? o->max : DD_CP_REAP_DEFAULT_MAX;
	r->serving = o->serving;
	r->own_cp = o->own_cp;
	r->ud = o->ud;
	r->now_ms = o->now_ms ? o->now_ms : wall_ms;
	r->last_verdict = -1;
	*out = r;
	return DD_OK;
}

static void release(dd_cp_reap *r)
{
	dd_free(r->dead);
	dd_free(r);
}

/* --- the dead queue ------------------------------------------------------ */

void dd_cp_reap_dead(dd_cp_reap *r, const dd_store_agent *a)
{
	dd_cp_reap_gone *g = NULL, *v;

	if (r == NULL || r->stopped)
		return;
	for (size_t i = 0; i < r->n_dead && g == NULL; i++)
		if (strcmp(r->dead[i].agent_id, a->agent_id) == 0)
			g = &r->dead[i];
	if (g == NULL && r->n_dead == DD_CP_REAP_MAX_DEAD) {
		dd_log_warn("reap: %u dead agents already wait; %s is left to "
			    "the orphan rule", DD_CP_REAP_MAX_DEAD, a->agent_id);
		return;
	}
	if (g == NULL && r->n_dead == r->cap_dead) {
		size_t cap = r->cap_dead ? r->cap_dead * 2 : 16;

		if (cap > DD_CP_REAP_MAX_DEAD)
			cap = DD_CP_REAP_MAX_DEAD;
		v = dd_realloc(r->dead, cap * sizeof *v);
		if (v == NULL) {
			dd_log_warn("reap: no memory to queue %s; it is left "
				    "to the orphan rule", a->agent_id);
			return;
		}
		r->dead = v;
		r->cap_dead = cap;
	}
	if (g == NULL)
		g = &r->dead[r->n_dead++];
	copy(g->agent_id, sizeof g->agent_id, a->agent_id);
	copy(g->hostname, sizeof g->hostname, a->hostname);
	copy(g->tunnel_id, sizeof g->tunnel_id, a->tunnel_id);
	dd_log_info("reap: dead agent %s queued (tunnel %s)", g->agent_id,
		    g->tunnel_id[0] ? g->tunnel_id : "by name");
}

static void consume_dead(dd_cp_reap *r, size_t n)
{
	if (n > r->n_dead)
		n = r->n_dead;
	if (n == 0)
		return;
	memmove(r->dead, r->dead + n, (r->n_dead - n) * sizeof *r->dead);
	r->n_dead -= n;
}

/* --- a pass -------------------------------------------------------------- */

static void end_pass(dd_cp_reap *r, bool ok)
{
	json_decref(r->tunnels);
	json_decref(r->dns);
	json_decref(r->apps);
	r->tunnels = r->dns = r->apps = NULL;
	dd_cp_reap_plan_clear(&r->plan);
	dd_free(r->acts);
	dd_free(r->out);
	r->acts = NULL;
	r->out = NULL;
	r->n_acts = r->next = 0;
	r->running = false;
	r->last_ok = ok;
	if (r->freeing)
		release(r);
}

/* Says why nothing is reaped, once per change of reason. */
static void hold(dd_cp_reap *r, dd_cp_reap_verdict v, const char *detail)
{
	if (r->last_verdict != (int)v)
		dd_log_info("reap: holding, nothing is deleted: %s%s%s",
			    dd_cp_reap_verdict_name(v), detail[0] ? ": " : "",
			    detail);
	r->last_verdict = (int)v;
	r->st.held++;
}

/* The store's agents as the decision wants them. */
struct known_vec {
	dd_cp_reap_known *v;
	size_t n, cap;
};

static dd_err_t add_known(const dd_store_brief *b, void *ud)
{
	struct known_vec *k = ud;
	dd_cp_reap_known *e;
	size_t dot;

	e = dd_grow(k->v, &k->cap, k->n + 1, sizeof *e, 64);
	if (e == NULL)
		return DD_ERR_NOMEM;
	k->v = e;
	e = &k->v[k->n++];
	copy(e->agent_id, sizeof e->agent_id, b->agent_id);
	dot = strcspn(b->hostname, ".");
	if (dot > DD_CF_LABEL_MAX)
		dot = 0;
	memcpy(e->host_label, b->hostname, dot);
	e->host_label[dot] = '\0';
	copy(e->tunnel_id, sizeof e->tunnel_id, b->tunnel_id);
	return DD_OK;
}

static void on_dns(const dd_cf_reply *rep, void *ud);
static void on_apps(const dd_cf_reply *rep, void *ud);
static void run(dd_cp_reap *r);

static void log_plan(dd_cp_reap *r)
{
	const dd_cp_reap_plan *p = &r->plan;

	if (p->revived > 0)
		dd_log_info("reap: %zu dead agents registered again; left "
			    "alone", p->revived);
	if (p->orphans_held)
		dd_log_warn("reap: the store has unreadable records; unknown "
			    "tunnels are not reaped this pass");
	if (p->undated != r->last_undated)
		dd_log_warn("reap: %zu unknown agent tunnels without a "
			    "readable created_at; kept", p->undated);
	if (p->connected != r->last_connected)
		dd_log_info("reap: %zu unknown agent tunnels have a connector; "
			    "kept (their agents register again)", p->connected);
	r->last_undated = p->undated;
	r->last_connected = p->connected;
	if (p->deferred > 0)
		dd_log_info("reap: %zu more orphan tunnels wait for the next "
			    "pass (at most %u per pass)", p->deferred, r->max);
}

/* The tunnel listing is in: read the store, decide, list the rest. */
static void decide(dd_cp_reap *r)
{
	struct known_vec k = {0};
	size_t skipped = 0;
	dd_err_t rc;

	rc = dd_store_scan(r->store, add_known, &k, &skipped);
	if (rc) {
		dd_log_err(rc, "reap: reading the store; nothing reaped");
		dd_free(k.v);
		end_pass(r, false);
		return;
	}
	rc = dd_cp_reap_plan_make(&(dd_cp_reap_input){
		.env = r->env, .domain = r->domain, .own_cp = r->own_cp(r->ud),
		.tunnels = r->tunnels, .serving = r->serving(r->ud),
		.store_complete = skipped == 0, .known = k.v, .n_known = k.n,
		.dead = r->dead, .n_dead = r->n_dead, .now_ms = r->now_ms(),
		.grace_ms = r->grace_ms, .max = r->max}, &r->plan);
	dd_free(k.v);
	if (rc) {
		dd_log_err(rc, "reap: deciding; nothing reaped");
		end_pass(r, false);
		return;
	}
	if (r->plan.verdict != DD_REAP_GO) {
		hold(r, r->plan.verdict, "");
		/* Not ok: waiting dead agents must not list every tick. */
		end_pass(r, false);
		return;
	}
	if (r->last_verdict != DD_REAP_GO)
		dd_log_info("reap: active (serving CP, complete listing, grace "
			    "%llu s)", (unsigned long long)(r->grace_ms / 1000));
	r->last_verdict = DD_REAP_GO;
	log_plan(r);
	if (r->plan.n == 0) {
		consume_dead(r, r->plan.dead_used);
		end_pass(r, true);
		return;
	}
	/* Victims: their CNAMEs and Access apps come from full listings. */
	rc = dd_cf_dns_list_cnames(r->cf, on_dns, r);
	if (rc) {
		dd_log_err(rc, "reap: listing CNAMEs; nothing reaped");
		end_pass(r, false);
	}
}

static bool listing_failed(dd_cp_reap *r, const dd_cf_reply *rep,
			   const char *what)
{
	if (r->freeing || r->stopped) {
		end_pass(r, false);
		return true;
	}
	if (rep->err == DD_OK && json_is_array(rep->result))
		return false;
	/* A failed or partial listing: never act on part of the account. */
	hold(r, DD_REAP_DEGRADED, what);
	dd_log_warn("reap: listing %s failed (%s): %s", what,
		    dd_strerror(rep->err), rep->message);
	end_pass(r, false);
	return true;
}

static void on_tunnels(const dd_cf_reply *rep, void *ud)
{
	dd_cp_reap *r = ud;

	if (listing_failed(r, rep, "tunnels"))
		return;
	r->tunnels = json_incref((json_t *)(uintptr_t)rep->result);
	decide(r);
}

static void on_dns(const dd_cf_reply *rep, void *ud)
{
	dd_cp_reap *r = ud;
	dd_err_t rc;

	if (listing_failed(r, rep, "CNAMEs"))
		return;
	r->dns = json_incref((json_t *)(uintptr_t)rep->result);
	rc = dd_cf_access_list(r->cf, on_apps, r);
	if (rc) {
		dd_log_err(rc, "reap: listing Access apps; nothing reaped");
		end_pass(r, false);
	}
}

static void add_one(dd_cp_reap *r, size_t item, enum act_kind kind,
		    const char *id)
{
	struct act *a = &r->acts[r->n_acts++];

	a->kind = kind;
	a->item = item;
	copy(a->id, sizeof a->id, id);
}

static void add_ids(dd_cp_reap *r, size_t item, enum act_kind kind,
		    const json_t *ids)
{
	const json_t *id;
	size_t i;

	json_array_foreach(ids, i, id)
		add_one(r, item, kind, json_string_value(id));
}

/* Flattens the plan: per victim drop, delete, its CNAMEs, its apps. */
static dd_err_t build_acts(dd_cp_reap *r)
{
	size_t n = r->plan.n, cap = n * (2 + DD_CP_REAP_MAX_CNAMES +
					 DD_CP_REAP_MAX_APPS);
	dd_err_t rc = DD_OK;

	r->acts = dd_calloc(cap, sizeof *r->acts);
	r->out = dd_calloc(n, sizeof *r->out);
	if (r->acts == NULL || r->out == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		const dd_cp_reap_item *it = &r->plan.items[i];
		json_t *cn = dd_cp_reap_cnames(r->dns, it->cname_target,
					       DD_CP_REAP_MAX_CNAMES);
		json_t *ap = dd_cp_reap_apps(r->apps, it->host,
					     DD_CP_REAP_MAX_APPS);

		if (cn == NULL || ap == NULL)
			rc = DD_ERR_NOMEM;
		/* Connections first: Cloudflare refuses to delete otherwise. */
		if (rc == DD_OK && it->tunnel_id[0] != '\0') {
			add_one(r, i, A_DROP, it->tunnel_id);
			add_one(r, i, A_TUNNEL, it->tunnel_id);
		}
		if (rc == DD_OK) {
			add_ids(r, i, A_CNAME, cn);
			add_ids(r, i, A_APP, ap);
		}
		json_decref(cn);
		json_decref(ap);
	}
	return rc;
}

static void on_apps(const dd_cf_reply *rep, void *ud)
{
	dd_cp_reap *r = ud;
	dd_err_t rc;

	if (listing_failed(r, rep, "Access apps"))
		return;
	r->apps = json_incref((json_t *)(uintptr_t)rep->result);
	rc = build_acts(r);
	if (rc) {
		dd_log_err(rc, "reap: planning the deletes; nothing reaped");
		end_pass(r, false);
		return;
	}
	/* From here the queued dead agents are being handled. */
	consume_dead(r, r->plan.dead_used);
	run(r);
}

/* --- the deletes ---------------------------------------------------------- */

static void log_item(const dd_cp_reap *r, size_t i)
{
	const dd_cp_reap_item *it = &r->plan.items[i];
	const struct outcome *o = &r->out[i];
	char age[32] = "age unknown";

	if (it->age_ms >= 0)
		snprintf(age, sizeof age, "%lld s old",
			 (long long)(it->age_ms / 1000));
	if (o->tunnel_failed) {
		dd_log_warn("reap: %s %s: its tunnel %s was not deleted; its "
			    "CNAMEs and Access apps stay for the next pass",
			    it->dead ? "dead agent" : "unknown tunnel",
			    it->name, it->tunnel_id);
		return;
	}
	dd_log_info("reap: %s %s (%s): tunnel %s, %u CNAMEs, %u Access "
		    "apps deleted, %u failures",
		    it->dead ? "dead agent" : "unknown tunnel", it->name, age,
		    it->tunnel_id[0] ? "deleted" : "not listed", o->cnames,
		    o->apps, o->failed);
}

static void on_act(const dd_cf_reply *rep, void *ud);

static dd_err_t start_act(dd_cp_reap *r, const struct act *a)
{
	switch (a->kind) {
	case A_DROP:
		return dd_cf_tunnel_drop_connections(r->cf, a->id, on_act, r);
	case A_TUNNEL:
		return dd_cf_tunnel_delete(r->cf, a->id, on_act, r);
	case A_CNAME:
		return dd_cf_dns_delete(r->cf, a->id, on_act, r);
	case A_APP:
		return dd_cf_access_delete(r->cf, a->id, on_act, r);
	}
	return DD_ERR_INVALID;
}

static const char *kind_name(enum act_kind k)
{
	static const char *const names[] = {"dropping connections of tunnel",
		"deleting tunnel", "deleting CNAME", "deleting Access app"};

	return names[k];
}

/* Books one answer (rc: a start error, or the reply's). */
static void book(dd_cp_reap *r, const struct act *a, dd_err_t rc,
		 long status, const char *msg)
{
	struct outcome *o = &r->out[a->item];
	/* 404: already gone, which is what we wanted. */
	bool ok = rc == DD_OK || status == 404;

	if (ok && a->kind == A_TUNNEL)
		r->st.tunnels++;
	else if (ok && a->kind == A_CNAME)
		o->cnames++, r->st.cnames++;
	else if (ok && a->kind == A_APP)
		o->apps++, r->st.apps++;
	if (ok)
		return;
	/* A failed drop is judged by the delete that follows. */
	if (a->kind == A_DROP) {
		dd_log_debug("reap: %s %s: %s", kind_name(a->kind), a->id, msg);
		return;
	}
	if (a->kind == A_TUNNEL)
		o->tunnel_failed = true;
	o->failed++;
	r->st.failures++;
	dd_log_warn("reap: %s %s failed (%s): %s", kind_name(a->kind), a->id,
		    dd_strerror(rc), msg);
}

static bool item_ends(const dd_cp_reap *r, size_t i)
{
	return i + 1 >= r->n_acts || r->acts[i + 1].item != r->acts[i].item;
}

static void finish(dd_cp_reap *r)
{
	dd_log_info("reap: pass done; so far %llu tunnels, %llu CNAMEs, %llu "
		    "Access apps deleted, %llu failures",
		    (unsigned long long)r->st.tunnels,
		    (unsigned long long)r->st.cnames,
		    (unsigned long long)r->st.apps,
		    (unsigned long long)r->st.failures);
	end_pass(r, true);
}

/* Starts the next delete; start errors are booked and skipped. */
static void run(dd_cp_reap *r)
{
	for (; r->next < r->n_acts; r->next++) {
		const struct act *a = &r->acts[r->next];
		dd_err_t rc;

		if (r->stopped || !r->serving(r->ud)) {
			dd_log_warn("reap: no longer the serving CP (or "
				    "stopping); the pass ends here");
			end_pass(r, true);
			return;
		}
		/* A tunnel that stayed keeps its records for the next pass. */
		if (!r->out[a->item].tunnel_failed) {
			rc = start_act(r, a);
			if (rc == DD_OK)
				return;
			book(r, a, rc, 0, "not started");
		}
		if (item_ends(r, r->next))
			log_item(r, a->item);
	}
	finish(r);
}

static void on_act(const dd_cf_reply *rep, void *ud)
{
	dd_cp_reap *r = ud;
	const struct act *a = &r->acts[r->next];

	book(r, a, rep->err, rep->status, rep->message);
	if (item_ends(r, r->next))
		log_item(r, a->item);
	r->next++;
	if (r->freeing) {
		end_pass(r, false);
		return;
	}
	run(r);
}

/* --- scheduling ---------------------------------------------------------- */

static bool due(const dd_cp_reap *r, int64_t now)
{
	if (r->last_start_ms == 0 ||
	    now - r->last_start_ms >= (int64_t)r->interval_ms ||
	    now < r->last_start_ms)
		return true;
	/* Dead agents need not wait a whole interval, unless CF is failing. */
	return r->n_dead > 0 && r->last_ok;
}

void dd_cp_reap_tick(dd_cp_reap *r)
{
	int64_t now;
	dd_err_t rc;

	if (r == NULL || r->stopped || r->running)
		return;
	/* Not serving: not even a listing (the answer would be the same). */
	if (!r->serving(r->ud)) {
		hold(r, DD_REAP_NOT_SERVING, "");
		return;
	}
	now = r->now_ms();
	if (!due(r, now))
		return;
	r->running = true;
	r->last_start_ms = now;
	r->st.passes++;
	rc = dd_cf_tunnels_list(r->cf, on_tunnels, r);
	if (rc) {
		dd_log_err(rc, "reap: listing tunnels");
		end_pass(r, false);
	}
}

void dd_cp_reap_stop(dd_cp_reap *r)
{
	if (r != NULL)
		r->stopped = true;
}

void dd_cp_reap_free(dd_cp_reap *r)
{
	if (r == NULL)
		return;
	r->stopped = true;
	if (r->running) {
		r->freeing = true;
		return;
	}
	release(r);
}

void dd_cp_reap_get_stats(const dd_cp_reap *r, dd_cp_reap_stats *out)
{
	memset(out, 0, sizeof *out);
	if (r == NULL)
		return;
	*out = r->st;
	out->dead_waiting = r->n_dead;
	out->running = r->running;
}
