/*
 * cp_discover.h: the collector's Cloudflare discovery (spec
 * integrations.md 3.2-3.6, http-surface.md 6.3 and 6.9): agent tunnels
 * of this env that no store record claims are scraped too, and one
 * that serves a usable, verified /health is adopted into the store,
 * keyed by its tunnel name. That is how a CP whose store was lost (no
 * predecessor to hydrate from) gets its fleet back: agents do not
 * register again. docs/collector.md "Discovery" has the whole story.
 *
 * The collector's targets() is synchronous and the listing (C1, every
 * page) is not, so the two are decoupled: a tick asks for a listing
 * when DD_DISCOVERY_INTERVAL has passed since the last one was asked
 * for (dd_cp_discover_due; the first tick asks at once); when it
 * answers, the collector is woken, and the next tick takes it
 * (dd_cp_discover_take) and is the discovery tick. A listing is used
 * by exactly one tick. A failed listing is logged and gives no
 * discovery tick: nothing new is scraped and nothing changes.
 *
 * Only with Cloudflare configured. Everything on the loop thread.
 */
#ifndef DD_CP_CP_DISCOVER_H
#define DD_CP_CP_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_names.h"
#include "core/err.h"
#include "cp/collector.h"
#include "cp/store.h"

#define DD_CP_DISCOVER_DEFAULT_INTERVAL_MS 30000u

/* One agent tunnel of this env that Cloudflare listed. */
typedef struct dd_cp_discover_tunnel {
	char name[DD_CF_LABEL_MAX + 1];
	char id[DD_COLLECT_TUNNEL_MAX + 1];
	int64_t created_ms; /* created_at, Unix ms; 0 absent or unreadable */
	bool known;         /* claimed by a store record (dd_cp_discover_mark) */
} dd_cp_discover_tunnel;

/* A filtered listing: v sorted by name, by_id indexes v sorted by id. */
typedef struct dd_cp_discover_listing {
	dd_cp_discover_tunnel *v;
	size_t *by_id;
	size_t n;
} dd_cp_discover_listing;

typedef struct dd_cp_discover dd_cp_discover;

typedef struct dd_cp_discover_opts {
	dd_cf *cf;            /* borrowed; shut down before dd_cp_discover_free */
	const char *env;      /* DD_ENV (copied) */
	const char *domain;   /* DD_CF_DOMAIN (copied) */
	uint64_t interval_ms; /* 0: default */
	/* A listing is ready to take (wake the collector). Required. */
	void (*listed)(void *ud);
	void *ud;
	int64_t (*now_ms)(void); /* Unix ms; NULL: the wall clock */
} dd_cp_discover_opts;

/* CONFIG for a missing client, env, domain or callback. Caller frees. */
dd_err_t dd_cp_discover_new(const dd_cp_discover_opts *o,
			    dd_cp_discover **out);

/*
 * Starts a listing when the interval has passed since the last one was
 * started (at once the first time) and none is in flight. NULL: no-op.
 */
void dd_cp_discover_due(dd_cp_discover *d);

/*
 * The listing that answered since the last take, if any: moved to *out
 * (caller clears it with dd_cp_discover_listing_clear) and true; false
 * with *out empty otherwise. NULL d: false.
 */
bool dd_cp_discover_take(dd_cp_discover *d, dd_cp_discover_listing *out);

/* No new listing (the service is stopping). NULL: no-op. */
void dd_cp_discover_stop(dd_cp_discover *d);

/*
 * Frees at once when idle; with a listing in flight, once it answers
 * (shut the client down first: it then answers at once). NULL: no-op.
 */
void dd_cp_discover_free(dd_cp_discover *d);

typedef struct dd_cp_discover_stats {
	uint64_t listings;  /* listings that answered usably */
	uint64_t failures;  /* listings that failed */
	size_t last_count;  /* agent tunnels in the last good listing */
} dd_cp_discover_stats;

void dd_cp_discover_get_stats(const dd_cp_discover *d,
			      dd_cp_discover_stats *out);

/*
 * The pure parts, public for tests.
 */

/*
 * Keeps the tunnels of a C1 listing that are this env's agents: an
 * object, not deleted (deleted_at absent or null), named "dd-{env}-
 * agent-" then hex (dd_cp_reap_env_tunnel: stricter than the spec's
 * prefix, so another env whose name starts like ours is never adopted),
 * with an id Cloudflare could have given (dd_cf_id_ok, at most
 * DD_COLLECT_TUNNEL_MAX) and a {name}.{domain} that has an API
 * hostname. created_at is parsed as RFC 3339 (0 when absent or
 * unreadable). A name listed twice is kept once (the first). *dropped
 * (may be NULL) counts the other agent-looking entries refused. out is
 * initialised first; NOMEM.
 */
dd_err_t dd_cp_discover_listing_make(const json_t *tunnels, const char *env,
				     const char *domain,
				     dd_cp_discover_listing *out,
				     size_t *dropped);
void dd_cp_discover_listing_clear(dd_cp_discover_listing *l);

/*
 * A store record claims the tunnels it names: by agent_id (the tunnel
 * name), by hostname ({name}.{domain}, the spec's rule) and by tunnel
 * id. Any of them may be NULL or "". Each is a binary search.
 */
void dd_cp_discover_mark(dd_cp_discover_listing *l, const char *domain,
			 const char *agent_id, const char *hostname,
			 const char *tunnel_id);

/*
 * Appends a target for every tunnel not marked known whose name this
 * shard keeps (dd_shard_keep): agent_id = name, url = its -api- origin,
 * via_edge, unknown, created_ms, tunnel_id, status registering. *v has
 * *n used of *cap entries and is grown with dd_realloc (freed with
 * dd_free by the caller, as before). *added (may be NULL) counts them.
 * NOMEM leaves *v valid with what was appended so far.
 */
dd_err_t dd_cp_discover_append(const dd_cp_discover_listing *l,
			       const char *domain, uint64_t shard_total,
			       uint64_t shard_index, dd_collect_target **v,
			       size_t *n, size_t *cap, size_t *added);

/*
 * The record an unknown target gets when its /health was usable and
 * verified (spec 3.5 step 4, keyed by the tunnel, never by the
 * self-reported agent_id): hostname {name}.{domain}, tunnel ingress
 * with its tunnel id, env, vm_name and attestation_type from the body
 * ("unknown" when absent or not a string), extras from extra_ingress
 * (entries with a valid label and a port in 1..65535, first of each
 * label, "agent-api" left out), status healthy, registered_at and
 * last_seen tick_ms. The Noise key is /health's noise.pubkey_hex only
 * when the tunnel's name is the agent id derived from it
 * (dd_cp_agent_id), else none ("" until the agent registers). Claims, owner and the snapshot are
 * the caller's to fill (as for a known agent), and so is the final
 * dd_store_agent_check. a is initialised first and owns its json
 * members (dd_store_agent_clear, also on failure); NOMEM, or INVALID
 * when {name}.{domain} does not fit.
 */
dd_err_t dd_cp_discover_adopt(const dd_collect_target *t, const json_t *health,
			      const char *env, const char *domain,
			      int64_t tick_ms, dd_store_agent *a);

#endif
