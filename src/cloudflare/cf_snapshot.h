/*
 * cf_snapshot.h: the read-only Cloudflare views of spec/integrations.md
 * 1.9-1.10 (GET /admin/cf/snapshot and GET /admin/cf/map).
 *
 * Two halves: dd_cf_fetch_all runs the three list calls (tunnels, zone
 * CNAMEs, Access apps) independently and in parallel; the build functions
 * are pure and turn a listing plus the CP's view of its fleet into the
 * response JSON.
 *
 * The degraded rule: when any of the three lists failed, "degraded" is
 * true and no drift is computed at all (every drift list is empty).
 * Drift from a partial listing would report phantom orphans (a missing
 * tunnel list makes every CNAME look leaked) or phantom gaps; anything
 * that acts on drift (reaping) must refuse to act while degraded.
 */
#ifndef DD_CLOUDFLARE_CF_SNAPSHOT_H
#define DD_CLOUDFLARE_CF_SNAPSHOT_H

#include <jansson.h>

#include "cloudflare/cf.h"

/* Result of the three list calls. */
typedef struct dd_cf_listing {
	json_t *tunnels;   /* array; empty when that fetch failed */
	json_t *dns;
	json_t *apps;
	json_t *errors;    /* ["tunnels: ...", "dns: ...", "apps: ..."] */
	unsigned failures; /* 0..3 */
} dd_cf_listing;

/* Releases the arrays; the struct may be reused after. */
void dd_cf_listing_clear(dd_cf_listing *l);

/* l is valid during the call only (the callee may steal members). */
typedef void (*dd_cf_listing_cb)(dd_cf_listing *l, void *ud);

/*
 * Starts the three lists. The callback runs once, when all three have
 * answered, even when every one failed. Start errors: NOMEM, or the
 * error of the first list that could not start (the others are then
 * still answered first).
 */
dd_err_t dd_cf_fetch_all(dd_cf *cf, dd_cf_listing_cb cb, void *ud);

/* Who is asking: the serving CP. Strings borrowed. */
typedef struct dd_cf_scope {
	const char *env;          /* DD_ENV label */
	const char *cp_hostname;  /* DD_HOSTNAME */
	const char *account_id;
	const char *zone_id;
	const char *fetched_at;   /* RFC 3339 time of the fetch */
	/* The CP tunnel's extra labels ("shell"): their hosts are expected. */
	const char *const *cp_labels;
	size_t n_cp_labels;
} dd_cf_scope;

/*
 * The snapshot (spec 1.9). agents is the CP's fleet as an array of
 * {"agent_id","vm_name","hostname","status","last_seen","tunnel_id",
 *  "extras":[[label,port],...]} (borrowed; sorted by agent_id in the
 * output). *out is a new object (json_decref).
 *
 * Unlike the reference system the expected hostnames include each tunnel
 * agent's API hostname and the CP's label hostnames, so they no longer
 * show up as orphan DNS on every snapshot.
 */
dd_err_t dd_cf_snapshot_build(const dd_cf_scope *s, const json_t *agents,
			      const dd_cf_listing *l, json_t **out);

/* The cross-env map (spec 1.10); agents as above. */
dd_err_t dd_cf_map_build(const dd_cf_scope *s, const json_t *agents,
			 const dd_cf_listing *l, json_t **out);

#endif
