/*
 * cp_cf.h: the CP's read-only Cloudflare views (spec/http-surface.md
 * 3.11-3.12), on top of cloudflare/cf_snapshot.h:
 *
 *   GET /admin/cf/snapshot  this env's tunnels, CNAMEs and Access apps
 *                           against the fleet store, with drift
 *   GET /admin/cf/map       every DD-owned resource of the account,
 *                           grouped by installation
 *
 * Who may call is the authorization table's business (fleet admins and
 * the fleet owner); the handlers only fetch and build. Each request runs
 * the three Cloudflare lists afresh (nothing cached: an operator asking
 * wants the present state) and answers 200 even when some lists failed:
 * the body then says "degraded" and carries no drift.
 */
#ifndef DD_CP_CP_CF_H
#define DD_CP_CP_CF_H

#include <stddef.h>

#include <jansson.h>

#include "auth/authz.h"
#include "cloudflare/cf.h"
#include "core/err.h"
#include "cp/store.h"

#define DD_CP_CF_ROUTES 2

typedef struct dd_cp_cf dd_cp_cf;

/*
 * Borrowed, and the strings must outlive the object, except cp_labels,
 * which are copied (at most DD_CF_MAX_EXTRAS).
 */
typedef struct dd_cp_cf_opts {
	dd_cf *cf;
	dd_store *store;
	const char *env;
	const char *cp_hostname;
	const char *account_id;
	const char *zone_id;
	const char *const *cp_labels;  /* the CP tunnel's extra labels */
	size_t n_cp_labels;
} dd_cp_cf_opts;

/* Caller frees with dd_cp_cf_free(). */
dd_err_t dd_cp_cf_new(const dd_cp_cf_opts *o, dd_cp_cf **out);

/*
 * Shut the Cloudflare client down (dd_cf_shutdown) first: requests still
 * waiting for Cloudflare are then answered, and none is left behind.
 */
void dd_cp_cf_free(dd_cp_cf *c);

/* Fills out[0..DD_CP_CF_ROUTES) with the two routes; returns the count. */
size_t dd_cp_cf_routes(dd_cp_cf *c, dd_authz_route *out);

/*
 * The fleet as the views want it: [{"agent_id","vm_name","hostname",
 * "status","last_seen","tunnel_id","extras":[[label,port],...]}], the
 * control-plane entry left out. New array (json_decref).
 */
dd_err_t dd_cp_cf_agents(dd_store *s, json_t **out);

#endif
