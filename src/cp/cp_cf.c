#include "cp/cp_cf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudflare/cf_ops.h"
#include "cloudflare/cf_snapshot.h"
#include "core/alloc.h"
#include "core/log.h"

/* One request waiting for its three lists. */
struct pend {
	dd_cp_cf *c;
	dd_http_req *req;     /* NULL once the client went away */
	int map;
	struct pend *prev, *next;
};

struct dd_cp_cf {
	dd_cp_cf_opts o;
	struct pend *pending;
	/* The CP labels, copied: callers pass them from a stack array. */
	char labels[DD_CF_MAX_EXTRAS][DD_CF_LABEL_MAX + 1];
	const char *label_ptrs[DD_CF_MAX_EXTRAS];
};

dd_err_t dd_cp_cf_new(const dd_cp_cf_opts *o, dd_cp_cf **out)
{
	dd_cp_cf *c;

	*out = NULL;
	if (o->cf == NULL || o->store == NULL || o->env == NULL ||
	    o->cp_hostname == NULL || o->n_cp_labels > DD_CF_MAX_EXTRAS)
		return DD_ERR_INVALID;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->o = *o;
	for (size_t i = 0; i < o->n_cp_labels; i++) {
		snprintf(c->labels[i], sizeof c->labels[i], "%s",
			 o->cp_labels[i]);
		c->label_ptrs[i] = c->labels[i];
	}
	c->o.cp_labels = c->label_ptrs;
	*out = c;
	return DD_OK;
}

static void unlink_pend(struct pend *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else if (p->c != NULL)
		p->c->pending = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

void dd_cp_cf_free(dd_cp_cf *c)
{
	if (c == NULL)
		return;
	/* Fetches still out keep their pend; they only need to forget c. */
	for (struct pend *p = c->pending; p != NULL; p = p->next)
		p->c = NULL;
	dd_free(c);
}

static void iso_time(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, cap, "%Y-%m-%dT%H:%M:%S+00:00", &tm) == 0)
		snprintf(out, cap, "1970-01-01T00:00:00+00:00");
}

static json_t *agent_view(const dd_store_agent *a)
{
	char seen[40];
	json_t *extras = json_array(), *v;

	for (size_t i = 0; extras != NULL && i < a->n_extras; i++)
		if (json_array_append_new(extras, json_pack("[s, i]",
				a->extras[i].label, (int)a->extras[i].port))) {
			json_decref(extras);
			extras = NULL;
		}
	if (extras == NULL)
		return NULL;
	iso_time(a->last_seen_ms, seen, sizeof seen);
	v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}",
		      "agent_id", a->agent_id, "vm_name", a->vm_name,
		      "hostname", a->hostname,
		      "status", dd_agent_status_name(a->status),
		      "last_seen", seen, "tunnel_id", a->tunnel_id,
		      "extras", extras);
	json_decref(extras);
	return v;
}

dd_err_t dd_cp_cf_agents(dd_store *s, json_t **out)
{
	dd_store_agent *v = NULL;
	size_t n = 0, skipped = 0;
	json_t *arr = NULL;
	dd_err_t rc;

	*out = NULL;
	rc = dd_store_list(s, &v, &n, &skipped);
	if (rc)
		return rc;
	if (skipped > 0)
		dd_log_warn("fleet store: %zu damaged records left out", skipped);
	arr = json_array();
	rc = arr != NULL ? DD_OK : DD_ERR_NOMEM;
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		if (strcmp(v[i].agent_id, "control-plane") == 0)
			continue;
		if (json_array_append_new(arr, agent_view(&v[i])))
			rc = DD_ERR_NOMEM;
	}
	dd_store_agents_free(v, n);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DD_OK;
}

static void on_abort(void *ud)
{
	struct pend *p = ud;

	p->req = NULL;
}

static void on_listing(dd_cf_listing *l, void *ud)
{
	struct pend *p = ud;
	dd_cp_cf *c = p->c;
	char now[40];
	json_t *agents = NULL, *v = NULL;
	dd_err_t rc = DD_ERR_CANCELLED;

	unlink_pend(p);
	if (p->req == NULL || c == NULL)
		goto out;
	iso_time((int64_t)time(NULL) * 1000, now, sizeof now);
	{
		dd_cf_scope s = {
			.env = c->o.env, .cp_hostname = c->o.cp_hostname,
			.account_id = c->o.account_id, .zone_id = c->o.zone_id,
			.fetched_at = now, .cp_labels = c->o.cp_labels,
			.n_cp_labels = c->o.n_cp_labels,
		};
		rc = dd_cp_cf_agents(c->o.store, &agents);
		if (rc == DD_OK)
			rc = p->map ? dd_cf_map_build(&s, agents, l, &v)
				    : dd_cf_snapshot_build(&s, agents, l, &v);
	}
	if (l->failures > 0)
		dd_log_warn("Cloudflare view degraded: %u of 3 lists failed",
			    l->failures);
	/* Answered requests are freed by the server: no abort hook then. */
	dd_http_req_on_abort(p->req, NULL, NULL);
	if (rc) {
		dd_log_err(rc, "building the Cloudflare %s",
			   p->map ? "map" : "snapshot");
		dd_http_respond_err(p->req, rc, "building the view failed");
	} else {
		dd_http_respond_json(p->req, 200, v);
	}
out:
	json_decref(agents);
	json_decref(v);
	dd_free(p);
}

static void start(dd_http_req *req, dd_cp_cf *c, int map)
{
	struct pend *p = dd_calloc(1, sizeof *p);
	dd_err_t rc;

	if (p == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, "out of memory");
		return;
	}
	p->c = c;
	p->req = req;
	p->map = map;
	p->next = c->pending;
	if (p->next != NULL)
		p->next->prev = p;
	c->pending = p;
	dd_http_req_on_abort(req, on_abort, p);
	rc = dd_cf_fetch_all(c->o.cf, on_listing, p);
	if (rc) {
		/* NOMEM before anything started: nothing will answer. */
		unlink_pend(p);
		dd_http_req_on_abort(req, NULL, NULL);
		dd_free(p);
		dd_http_respond_err(req, rc, "could not ask Cloudflare");
	}
}

static void snapshot_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	start(req, ud, 0);
}

static void map_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	start(req, ud, 1);
}

size_t dd_cp_cf_routes(dd_cp_cf *c, dd_authz_route *out)
{
	out[0] = (dd_authz_route){DD_M_GET, "/admin/cf/snapshot",
				  snapshot_route, c, 0, 0};
	out[1] = (dd_authz_route){DD_M_GET, "/admin/cf/map", map_route, c, 0, 0};
	return DD_CP_CF_ROUTES;
}
