/*
 * cp_reap.h: orphan reaping (spec integrations.md 1.8, 1.7's lenient
 * Access cleanup and 3.6's GC queue; docs/cloudflare.md "Reaping").
 * Only with Cloudflare configured.
 *
 * Two kinds of victims:
 *   - agents the collector declared dead (dd_cp_reap_dead: queued as the
 *     store knew them, just before the collector removed them);
 *   - unknown agent tunnels of our env: listed by Cloudflare, claimed by
 *     no store record, created more than the grace period ago, and with
 *     no connector (no connections, status inactive or down, none
 *     within the grace): a connected tunnel the store does not know is a
 *     live agent this CP lost (a failed hydrate), which registers again.
 * Each loses its tunnel (connections dropped first, then the delete),
 * every CNAME pointing at that tunnel (the host, the -api- host and the
 * extras), and the legacy Access apps of its host (lenient match).
 *
 * What is never touched: tunnels of other envs, CP tunnels, tunnels a
 * store record claims (by name, hostname or tunnel id), tunnels whose
 * name does not end in a hex tail (dd-{env}-agent- followed by anything
 * but [0-9a-f-] could be another env's: "dd-x-agent-y-agent-<uuid>" is
 * env "x-agent-y"), CNAMEs pointing anywhere else, wildcard Access apps.
 *
 * When nothing is reaped at all, the pass says why (the verdict):
 *   - this CP is not the serving CP of its env: STONITH not past its
 *     eviction pass, draining or evicted, our own CP tunnel missing from
 *     the listing, or a newer CP tunnel of our env listed (its store, not
 *     ours, is the truth now);
 *   - the Cloudflare view is degraded: a listing failed or came back
 *     partial (never compute orphans from part of the account).
 * A store read that skipped unreadable rows reaps dead agents only.
 *
 * A pass: list tunnels; decide (dd_cp_reap_plan_make); if anything is to
 * go, list CNAMEs and Access apps (both must succeed); then delete, one
 * call at a time, at most max tunnels per pass, dead agents first and
 * then the oldest orphans. A failed delete is logged and the pass goes
 * on; a tunnel that could not be deleted keeps its CNAMEs (the next pass
 * finds it again as an orphan). Passes never overlap; one starts from a
 * collector tick when the interval has passed, or sooner when dead
 * agents wait and the last listing worked. Everything on the loop
 * thread; nothing secret is logged.
 */
#ifndef DD_CP_CP_REAP_H
#define DD_CP_CP_REAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_names.h"
#include "core/err.h"
#include "cp/store.h"

#define DD_CP_REAP_DEFAULT_GRACE_MS (900u * 1000u)
#define DD_CP_REAP_DEFAULT_INTERVAL_MS 30000u
#define DD_CP_REAP_DEFAULT_MAX 20u
/* Dead agents waiting; more are dropped (the orphan rule finds them). */
#define DD_CP_REAP_MAX_DEAD 1024u
/* Deletes per victim beyond its tunnel; the rest wait for an operator. */
#define DD_CP_REAP_MAX_CNAMES 64u
#define DD_CP_REAP_MAX_APPS 16u
#define DD_CP_REAP_NAME_MAX DD_STORE_ID_MAX

typedef struct dd_cp_reap dd_cp_reap;

/* Is this CP the serving CP of its env (STONITH)? */
typedef bool (*dd_cp_reap_serving_fn)(void *ud);
/* Our own CP tunnel's name ("" while unknown). */
typedef const char *(*dd_cp_reap_own_fn)(void *ud);

typedef struct dd_cp_reap_opts {
	dd_cf *cf;              /* borrowed; shut down before dd_cp_reap_free */
	dd_store *store;        /* borrowed; dd_cp_reap_stop before it closes */
	const char *env;        /* DD_ENV (copied) */
	const char *domain;     /* DD_CF_DOMAIN (copied) */
	uint64_t grace_ms;      /* 0: default */
	uint64_t interval_ms;   /* 0: default */
	unsigned max;           /* tunnels per pass; 0: default */
	dd_cp_reap_serving_fn serving; /* required */
	dd_cp_reap_own_fn own_cp;      /* required */
	void *ud;
	int64_t (*now_ms)(void);       /* Unix ms; NULL: the wall clock */
} dd_cp_reap_opts;

/* CONFIG for a bad env, a missing domain or callback. Caller frees. */
dd_err_t dd_cp_reap_new(const dd_cp_reap_opts *o, dd_cp_reap **out);

/*
 * The collector declared a dead: queue its tunnel, CNAMEs and Access
 * apps for the next pass. Only the id, hostname and tunnel id are kept.
 */
void dd_cp_reap_dead(dd_cp_reap *r, const dd_store_agent *a);

/* A collector tick ended: start a pass if one is due. NULL: no-op. */
void dd_cp_reap_tick(dd_cp_reap *r);

/*
 * No new pass, no store read, no new delete (the service is stopping).
 * A call in flight still answers. NULL: no-op.
 */
void dd_cp_reap_stop(dd_cp_reap *r);

/*
 * Frees at once when idle; with a call in flight, once it answers (so
 * shut the client down first: every answer then comes at once). NULL is
 * a no-op.
 */
void dd_cp_reap_free(dd_cp_reap *r);

typedef struct dd_cp_reap_stats {
	uint64_t passes;          /* passes that listed tunnels */
	uint64_t held;            /* passes that reaped nothing on purpose */
	uint64_t tunnels, cnames, apps; /* deleted so far */
	uint64_t failures;        /* deletes that failed */
	size_t dead_waiting;
	bool running;
} dd_cp_reap_stats;

void dd_cp_reap_get_stats(const dd_cp_reap *r, dd_cp_reap_stats *out);

/*
 * The pure parts, public for tests.
 */

/*
 * "dd-{env}-{role}-" then 1..64 of [0-9a-f-]: a name this env's CP made
 * for role ("agent" or "cp"). Anything else is someone else's.
 */
bool dd_cp_reap_env_tunnel(const char *name, const char *env,
			   const char *role);

/* A store record whose tunnel must never be reaped. */
typedef struct dd_cp_reap_known {
	char agent_id[DD_CP_REAP_NAME_MAX + 1];
	char host_label[DD_CF_LABEL_MAX + 1]; /* hostname up to its first dot */
	char tunnel_id[DD_CF_ID_MAX + 1];     /* "" without one */
} dd_cp_reap_known;

/* A dead agent waiting to be reaped. */
typedef struct dd_cp_reap_gone {
	char agent_id[DD_CP_REAP_NAME_MAX + 1];
	char hostname[DD_CF_HOST_MAX + 1];
	char tunnel_id[DD_CF_ID_MAX + 1];
} dd_cp_reap_gone;

typedef struct dd_cp_reap_input {
	const char *env;
	const char *domain;
	const char *own_cp;       /* our CP tunnel's name; "" unknown */
	/* Cloudflare's tunnels: [{id, name, created_at, deleted_at}, ...]. */
	const json_t *tunnels;
	bool degraded;            /* the listing failed or is partial */
	bool serving;             /* STONITH: past eviction, serving */
	bool store_complete;      /* every store row was read */
	const dd_cp_reap_known *known;
	size_t n_known;
	const dd_cp_reap_gone *dead;
	size_t n_dead;
	int64_t now_ms;
	uint64_t grace_ms;
	size_t max;               /* victims per pass (at least 1) */
} dd_cp_reap_input;

typedef enum {
	DD_REAP_GO = 0,        /* the plan holds the victims (maybe none) */
	DD_REAP_NOT_SERVING,   /* STONITH: not (yet, or any more) serving */
	DD_REAP_DEGRADED,      /* no trustworthy listing */
	DD_REAP_NOT_LISTED,    /* our CP tunnel is not listed (or undated) */
	DD_REAP_NEWER_CP,      /* a newer CP tunnel of our env exists */
} dd_cp_reap_verdict;

const char *dd_cp_reap_verdict_name(dd_cp_reap_verdict v);

typedef struct dd_cp_reap_item {
	bool dead;                              /* else an unknown tunnel */
	char name[DD_CP_REAP_NAME_MAX + 1];     /* tunnel name or agent id */
	char tunnel_id[DD_CF_ID_MAX + 1];       /* to delete; "" none listed */
	char cname_target[DD_CF_ID_MAX + 1];    /* CNAMEs to it go; "" none */
	char host[DD_CF_HOST_MAX + 1];          /* Access apps of it; "" none */
	int64_t age_ms;                         /* of the tunnel; -1 unknown */
} dd_cp_reap_item;

typedef struct dd_cp_reap_plan {
	dd_cp_reap_verdict verdict;
	dd_cp_reap_item *items;  /* dead agents first, then oldest orphans */
	size_t n;
	size_t dead_used;        /* queue entries handled (revived included) */
	size_t revived;          /* dead agents back in the store: dropped */
	size_t young;            /* unknown tunnels inside the grace */
	size_t undated;          /* unknown tunnels without a readable age */
	size_t connected;        /* unknown tunnels with a live connector */
	size_t deferred;         /* orphans left for a later pass (max) */
	bool orphans_held;       /* store incomplete: no orphan considered */
} dd_cp_reap_plan;

/*
 * The decision. On DD_OK *p is filled (dd_cp_reap_plan_clear releases
 * it); the verdict says whether anything may go. NOMEM.
 */
dd_err_t dd_cp_reap_plan_make(const dd_cp_reap_input *in, dd_cp_reap_plan *p);
void dd_cp_reap_plan_clear(dd_cp_reap_plan *p);

/*
 * The ids of the CNAMEs in dns (a C11 listing) whose content is
 * "{target}.cfargotunnel.com", at most max. New array of strings
 * (json_decref); NULL when out of memory.
 */
json_t *dd_cp_reap_cnames(const json_t *dns, const char *target, size_t max);

/*
 * The ids of the Access apps (a C12 listing) that the lenient rule
 * matches for host, at most max; wildcard domains never. As above.
 */
json_t *dd_cp_reap_apps(const json_t *apps, const char *host, size_t max);

#endif
