/*
 * cp_stonith.h: the CP's own tunnel, its cloudflared and STONITH, wired
 * to the Cloudflare client (spec: integrations.md 1.11 and 2,
 * http-surface.md 1.2 stages 6-8 and 1.6). Only used when Cloudflare is
 * configured; without it the CP serves as before and /health says
 * "serving".
 *
 * Once the CP listens: create our tunnel dd-{env}-cp-{uuid} for
 * DD_HOSTNAME (which points the CNAME at it: the DNS cut-over), start
 * cloudflared with its token, then start STONITH (cp/stonith.h). A
 * failed creation is retried by name (reusing the tunnel) 5 times in
 * all, 1 s apart and doubling: two CPs booting at once race to create
 * the same CNAME, and the loser's next upsert updates it. Then it powers
 * off (spec 1.2 stage 6: this new CP never served). A cloudflared exit is restarted with back-off and handed to
 * STONITH, which powers off only when the exit is explained by our
 * tunnel being gone.
 *
 * The Cloudflare answers are classified here for STONITH:
 *   - a 404 on our own tunnel counts (NOT_FOUND) only when the same
 *     account then lists tunnels successfully and ours is not among the
 *     live ones; a failed listing, or one that still shows our tunnel
 *     live, makes it ambiguous (a token scoped elsewhere, a wrong account
 *     id, an edge hiccup);
 *   - 401, 403, 429, 5xx, timeouts, transport failures and unreadable
 *     results are ambiguous; other 4xx are refusals.
 */
#ifndef DD_CP_CP_STONITH_H
#define DD_CP_CP_STONITH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_ops.h"
#include "core/config.h"
#include "core/err.h"
#include "net/httpc.h"
#include "cp/stonith.h"

typedef struct dd_cp_stonith dd_cp_stonith;

typedef struct dd_cp_stonith_opts {
	const dd_config *cfg;    /* DD_CF_*, env, hostname, cloudflared, ... */
	dd_httpc *http;          /* borrowed; outlives us */
	const char *self_exe;    /* our binary, for PDEATHSIG; may be NULL */
	/* Start a graceful stop; call dd_cp_stonith_drained() at its end. */
	void (*drain)(void *ud);
	void *ud;
} dd_cp_stonith_opts;

/* True when the configuration enables Cloudflare (DD_CF_API_TOKEN set). */
bool dd_cp_stonith_configured(const dd_config *cfg);

/*
 * Makes our own Cloudflare client from DD_CF_*. CONFIG (why filled)
 * without DD_HOSTNAME, for bad DD_CF_CP_EXTRAS or a bad client setting;
 * NOMEM. Caller frees with dd_cp_stonith_free().
 */
dd_err_t dd_cp_stonith_new(uv_loop_t *loop, const dd_cp_stonith_opts *o,
			   dd_cp_stonith **out, char *why, size_t why_len);

/*
 * Creates our tunnel for DD_HOSTNAME -> localhost:port, then starts
 * cloudflared and STONITH. Call once the listener is up.
 */
void dd_cp_stonith_start(dd_cp_stonith *cs, uint16_t port);

/* "serving", "draining" or "evicted"; "serving" for NULL. */
const char *dd_cp_stonith_state(const dd_cp_stonith *cs);

/*
 * True only for the serving CP of its env: our eviction pass finished
 * and listed no newer CP, and we are not draining, evicted or stopping.
 * False for NULL (no Cloudflare: there is nothing to serve through).
 */
bool dd_cp_stonith_serving(const dd_cp_stonith *cs);

/* Our tunnel's name once created ("" before). */
const char *dd_cp_stonith_tunnel(const dd_cp_stonith *cs);

/* The service is shutting down: stop cloudflared (an eviction carries on). */
void dd_cp_stonith_shutdown(dd_cp_stonith *cs);

/* The drain is over (the service's drained hook). */
void dd_cp_stonith_drained(dd_cp_stonith *cs);

/*
 * Kills cloudflared, cancels the Cloudflare calls in flight and releases
 * everything (timers close from the loop). Before the HTTP client goes.
 * NULL is a no-op.
 */
void dd_cp_stonith_free(dd_cp_stonith *cs);

/*
 * The pure parts, public for tests.
 */

/*
 * RFC 3339 ("2026-11-30T04:31:12.123456Z", offsets allowed) -> Unix µs.
 * Microseconds because Cloudflare's created_at carries them and two CPs
 * booting together can create their tunnels within one millisecond: at
 * ms precision the older CP would see a tie and fall back to the names.
 */
dd_err_t dd_cp_stonith_parse_time(const char *s, int64_t *out_us);

/* A Cloudflare reply's HTTP status and error as STONITH sees them. */
dd_cf_answer dd_cp_stonith_answer(dd_err_t err, long status);

/* One tunnel object -> t; INVALID for a missing id or name. */
dd_err_t dd_cp_stonith_tunnel_from_json(const json_t *obj, dd_cf_tunnel *t);

#endif
