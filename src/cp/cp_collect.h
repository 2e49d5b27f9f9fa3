/*
 * cp_collect.h: the collector (collector.h) wired to the fleet store
 * (store.h): targets are the store's agents with direct ingress (at
 * their URL) and with Cloudflare tunnel ingress (at
 * https://{agent_api_hostname(hostname)}, through the edge, or through
 * DD_COLLECT_CONNECT_TO in tests and dev); a usable /health refreshes the agent's record (status healthy, verified
 * claims, owner, the health snapshot); a failure records the collector's
 * verdict, and a dead agent is removed.
 *
 * Sharding (shard.h): with DD_SCRAPER_SHARD_TOTAL above 1 only the
 * agents whose agent_id (the tunnel name of a tunnel agent) this CP's
 * DD_SCRAPER_SHARD_INDEX wins are targets. With Cloudflare, discovery
 * (cp_discover.h) adds the unknown tunnels of a discovery tick; an
 * unknown tunnel's usable /health adopts it, its failures are only
 * logged (the reaper, cp_reap.h, handles unknown tunnels).
 */
#ifndef DD_CP_CP_COLLECT_H
#define DD_CP_CP_COLLECT_H

#include <uv.h>

#include "attest/attestor.h"
#include "core/config.h"
#include "core/err.h"
#include "cp/collector.h"
#include "cp/cp_discover.h"
#include "cp/cp_reap.h"
#include "cp/store.h"

typedef struct dd_cp_collect dd_cp_collect;

/* att and store are borrowed and must outlive it. */
dd_err_t dd_cp_collect_new(const dd_config *cfg, uv_loop_t *loop,
			   dd_attestor *att, dd_store *store,
			   dd_cp_collect **out);
/* Starts ticking (the first tick runs from the loop). */
void dd_cp_collect_start(dd_cp_collect *cc);
/*
 * fn(ud) after every tick (the control-plane entry's refresh); NULL
 * stops it. Set before dd_cp_collect_start.
 */
void dd_cp_collect_on_tick(dd_cp_collect *cc, void (*fn)(void *ud), void *ud);
/*
 * Cloudflare reaping (cp_reap.h): dead agents are queued to reap before
 * their record goes, and every tick may start a pass. NULL: none.
 * reap is borrowed; unset it or free this first.
 */
void dd_cp_collect_set_reaper(dd_cp_collect *cc, dd_cp_reap *reap);
/*
 * Cloudflare discovery (cp_discover.h): every tick may start a listing,
 * and the tick after one answers also scrapes the tunnels no record
 * claims (in this CP's shard). NULL: none. d is borrowed; unset it or
 * free this first.
 */
void dd_cp_collect_set_discover(dd_cp_collect *cc, dd_cp_discover *d);
/* One extra tick soon (after a registration, say). */
void dd_cp_collect_wake(dd_cp_collect *cc);
/*
 * A tunnel agent's scrape origin: "https://" and the -api- hostname of
 * its stored hostname (dd_cf_agent_api_hostname). INVALID with why when
 * none can be derived or it does not fit cap (out is then "").
 */
dd_err_t dd_cp_collect_tunnel_url(const char *hostname, char *out, size_t cap,
				  char *why, size_t why_len);
/* Stops, cancels scrapes in flight; before the attestor and store go. */
void dd_cp_collect_free(dd_cp_collect *cc);

#endif
