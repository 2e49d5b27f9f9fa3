/*
 * fleet_view.h: who may see which fleet record, and a record as JSON in
 * the view the caller gets (spec http-surface.md 5.5, 3.5, 6.1).
 *
 * Store-agnostic: everything here is a pure function of one
 * dd_store_agent and the caller as authz.h established it; nothing reads
 * the store, the clock or the network. docs/control-plane.md ("Fleet
 * API") has the rules in prose.
 *
 * Who sees a record in full:
 *   - a fleet admin (session, ADMIN) and the fleet principal (a GitHub
 *     Actions OIDC token of the owner, OWNER): every record, the
 *     control-plane entry included;
 *   - a signed-in user (USER, TENANT_USER): the records whose runtime
 *     tenant (owner) they are, by numeric user id, or whose owner is one
 *     of their orgs (dd_authz_session_owns: never by login alone).
 *     Records without an owner, the control-plane entry among them, are
 *     admin-only;
 *   - nobody else: anonymous callers, agents (an ITA token is public by
 *     design: every agent serves its own on /health), OIDC tokens of
 *     someone other than the owner (authz serves those as anonymous).
 *
 * What the others get depends on the page: /api/agents shows every
 * record's public fields (the issue: "public fields for anonymous
 * callers"), the dashboard shows nothing of a record one may not see.
 *
 * The public view holds exactly: agent_id, hostname, vm_name,
 * attestation_type, status, last_seen, agent_mode, integrity_state,
 * deployment_count, unit_count, oracle_count. Never the owner, the ITA
 * claims, units and oracles (local URLs, samples, errors), deployment
 * names, metrics, network and disk figures, the Noise key, ingress,
 * extras, tunnel id or the collector's errors.
 *
 * The full view is dd_store_agent_to_json (spec 6.1 plus our members)
 * with oracle_count added (spec 3.5).
 */
#ifndef DD_CP_FLEET_VIEW_H
#define DD_CP_FLEET_VIEW_H

#include <stdbool.h>

#include <jansson.h>

#include "auth/authz.h"
#include "core/err.h"
#include "cp/store.h"

/* The key of the CP's own entry in the store (spec 6.2). */
#define DD_FLEET_CP_ID "control-plane"

typedef enum {
	DD_FLEET_HIDDEN = 0, /* not shown at all */
	DD_FLEET_PUBLIC,     /* the public fields only */
	DD_FLEET_FULL,       /* the whole record */
} dd_fleet_view;

/* Whether who (NULL: anonymous) may see a in full (rules above). */
bool dd_fleet_sees_full(const dd_caller *who, const dd_store_agent *a);

/* /api/agents: FULL when dd_fleet_sees_full, else PUBLIC. */
dd_fleet_view dd_fleet_api_view(const dd_caller *who, const dd_store_agent *a);

/* Dashboard pages (/, /api/fleet, /agent/{id}): FULL or HIDDEN. */
dd_fleet_view dd_fleet_page_view(const dd_caller *who,
				 const dd_store_agent *a);

/* Render flags. */
enum {
	/*
	 * last_seen as "2026-06-01T12:00:00.123+00:00" (what spec 3.5
	 * gives /api/agents) instead of the record's "...123Z" (6.1: the
	 * export, /api/fleet).
	 */
	DD_FLEET_TIME_OFFSET = 1u << 0,
};

/*
 * a as JSON in view v (PUBLIC or FULL; HIDDEN is INVALID). *out is a new
 * reference (caller releases it with json_decref()). NOMEM.
 */
dd_err_t dd_fleet_agent_json(const dd_store_agent *a, dd_fleet_view v,
			     unsigned flags, json_t **out);

/*
 * Appends a's JSON in dd_fleet_api_view(who, a) to the array arr: the
 * /api/agents element. NOMEM.
 */
dd_err_t dd_fleet_api_append(json_t *arr, const dd_caller *who,
			     const dd_store_agent *a, unsigned flags);

/*
 * The same from dd_store_scan's brief rows, which hold the public fields
 * and the owner (no JSON): a large fleet's public list without parsing
 * a single record.
 */
bool dd_fleet_brief_sees_full(const dd_caller *who, const dd_store_brief *b);
/* b's public view (as dd_fleet_agent_json's PUBLIC). NOMEM. */
dd_err_t dd_fleet_brief_json(const dd_store_brief *b, unsigned flags,
			     json_t **out);

/* "2026-06-01T12:00:00.123+00:00" into out (at least 30 bytes). */
void dd_fleet_time_offset(int64_t ms, char *out, size_t out_len);

#endif
