/*
 * collector.h: the CP's background scrape of every agent's /health
 * (spec: integrations.md 3.2-3.6, http-surface.md 6.3): agents with
 * direct ingress at the URL each registered with, Cloudflare tunnel
 * agents at their -api- hostname (via_edge). docs/collector.md has the
 * behaviour, the state machine, the limits and measured figures.
 *
 * Independent of the store: the CP hands targets in and applies results
 * through dd_collector_ops, so the scheduling, concurrency, verification
 * and failure classification are tested without SQLite.
 *
 * Ticks: the first at once, then every interval; a tick that overruns
 * delays the next (ticks never overlap) and the ticks it missed are
 * skipped, not bursted. dd_collector_wake() stores one permit for one
 * extra tick (after /register, say); a wake during a tick gives exactly
 * one more tick once it ends, however many wakes came.
 *
 * A tick asks ops.targets() for the current targets and scrapes them all
 * with GET <url>/health through the collector's own dd_httpc (so a tick
 * cannot starve the CP's other outbound calls, the JWKS fetch its
 * verifications need among them): at most max_inflight at once, the rest
 * waiting their turn, each with its own timeout and body cap, with
 * keep-alive only when the whole tick fits in flight. Bodies are parsed
 * and verified as they arrive, about 2 ms of that work per loop turn so
 * the loop stays responsive, and exactly one of healthy(), failed() or
 * skipped() runs per target per tick:
 *   - healthy: 2xx, a JSON object, and its string ita_token accepted by
 *     dd_attestor_verify() (an unenforced pin mismatch is accepted, with
 *     the verdict saying so);
 *   - skipped (state unchanged, spec 3.5 steps 1-3): no string ita_token,
 *     a refused token, a verifier that could not decide, or a failure of
 *     our own (out of memory): none of those is evidence about the agent;
 *   - failed: no usable body; the new status follows the state machine
 *     (dd_collect_next_status below).
 * At most max_inflight bodies (raw or parsed) are held at a time. Then
 * ops.tick_done() reports the tick's counts and duration.
 *
 * A watchdog keeps one stuck piece from holding a tick (and so every
 * later tick) open: a GET still running well past its timeout means the
 * HTTP client has stalled, so the client is replaced (its requests are
 * skipped as internal failures); a verification running past
 * verify_timeout_ms is given up (skipped, unverified); a name lookup
 * (via_edge, our own resolver) still running past timeout_ms, which
 * covers lookup and GET together, is cancelled (failed: a DNS error).
 *
 * Everything runs on the loop thread. Callbacks may call
 * dd_collector_wake() and read the stats, but must not free the
 * collector.
 */
#ifndef DD_CP_COLLECTOR_H
#define DD_CP_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "attest/attestor.h"
#include "attest/ita_verify.h"
#include "core/err.h"

#define DD_COLLECT_DEFAULT_INTERVAL_MS 5000u
#define DD_COLLECT_DEFAULT_TIMEOUT_MS 5000u
#define DD_COLLECT_DEFAULT_MAX_INFLIGHT 256u
#define DD_COLLECT_DEFAULT_MAX_BODY (256u * 1024u)
#define DD_COLLECT_DEFAULT_GRACE_MS 120000u      /* registering grace */
#define DD_COLLECT_DEFAULT_DEAD_AFTER_MS 900000u /* silence before dead */
/* Above the JWKS cache's fetch timeout (10 s): waiting for keys is normal. */
#define DD_COLLECT_DEFAULT_VERIFY_TIMEOUT_MS 20000u
/*
 * More at once would let waiting verifications pass the JWKS cache's
 * waiter limit (1024) while a key fetch is in flight.
 */
#define DD_COLLECT_MAX_INFLIGHT 1024u
#define DD_COLLECT_ID_MAX 128
#define DD_COLLECT_URL_MAX 512
#define DD_COLLECT_TUNNEL_MAX 64

/* Same order and values as the store's dd_agent_status. */
typedef enum {
	DD_COLLECT_REGISTERING = 0,
	DD_COLLECT_HEALTHY,
	DD_COLLECT_STALE,
	DD_COLLECT_DEAD,
	DD_COLLECT__COUNT
} dd_collect_status;

/* One agent to scrape, as the store knows it at the start of a tick. */
typedef struct dd_collect_target {
	char agent_id[DD_COLLECT_ID_MAX + 1];
	/* http(s) origin (and optional path prefix); GET url + "/health". */
	char url[DD_COLLECT_URL_MAX + 1];
	/* Reached through Cloudflare's edge (a tunnel agent): edge_connect_to. */
	bool via_edge;
	dd_collect_status status;
	int64_t last_seen_ms;     /* Unix ms of the last good scrape; 0 never */
	int64_t registered_at_ms; /* Unix ms of the (last) registration */
	/*
	 * A tunnel Cloudflare lists that no store record claims (discovery,
	 * cp_discover.h): agent_id is the tunnel's name, tunnel_id its id,
	 * created_ms its created_at (0 when unknown). Such a target is not
	 * contacted while younger than grace_ms (dd_collect_pending). The
	 * store's own targets leave these zero.
	 */
	bool unknown;
	int64_t created_ms;
	char tunnel_id[DD_COLLECT_TUNNEL_MAX + 1];
} dd_collect_target;

/* A usable /health. All borrowed for the call (json_incref to keep). */
typedef struct dd_collect_ok {
	json_t *health;                /* the /health object, token included */
	const dd_ita_verdict *verdict; /* accepted; why: unenforced pin miss */
	json_t *claims;                /* the token's verified claims */
	int64_t tick_ms;               /* the tick's start: the new last_seen */
} dd_collect_ok;

typedef enum {
	DD_COLLECT_FAIL_STATUS,    /* a complete non-2xx response */
	DD_COLLECT_FAIL_TIMEOUT,   /* no complete response in time */
	DD_COLLECT_FAIL_TRANSPORT, /* bad URL, DNS, connect, TLS, cut off */
	DD_COLLECT_FAIL_BODY,      /* 2xx, not a JSON object or over the cap */
	DD_COLLECT_FAIL_PENDING,   /* not contacted: a young unknown tunnel */
} dd_collect_fail_kind;

/* A scrape without a usable body, and what it means for the agent. */
typedef struct dd_collect_fail {
	dd_collect_fail_kind kind;
	long http_status;   /* the status when a response was read, else 0 */
	bool dns;           /* the name did not resolve (spec 3.4's texts) */
	bool dead_signal;   /* counts toward dead (dd_collect_dead_signal) */
	int64_t age_ms;     /* silence so far (dd_collect_age_ms) */
	dd_collect_status new_status;
	const char *why;    /* one line, for logs and last_error */
} dd_collect_fail;

typedef enum {
	DD_COLLECT_SKIP_NO_TOKEN,   /* an object without a string ita_token */
	DD_COLLECT_SKIP_REFUSED,    /* token, claims or enforced pin refused */
	DD_COLLECT_SKIP_UNVERIFIED, /* the verifier could not decide (JWKS) */
	DD_COLLECT_SKIP_INTERNAL,   /* our own failure (memory) */
	DD_COLLECT_SKIP__COUNT
} dd_collect_skip_kind;

/* One tick's outcome. */
typedef struct dd_collector_stats {
	uint64_t tick;          /* 1 for the first tick */
	int64_t started_ms;     /* Unix ms (the ok->tick_ms of this tick) */
	uint64_t duration_ms;   /* targets() to the last result */
	dd_err_t targets_err;   /* targets() failed: nothing was scraped */
	size_t targets;
	size_t healthy;
	size_t failed[DD_COLLECT__COUNT];      /* by new status */
	size_t skipped[DD_COLLECT_SKIP__COUNT];
	unsigned peak_inflight; /* most scrapes (GET or verification) at once */
	unsigned client_resets; /* stalled HTTP clients replaced (watchdog) */
} dd_collector_stats;

/*
 * Wiring to the CP. targets, healthy and failed are required; skipped
 * and tick_done may be NULL. Pointers passed in are valid only during the
 * call.
 */
typedef struct dd_collector_ops {
	/*
	 * The targets for this tick: on DD_OK, *out is a new array of *n
	 * (NULL when *n is 0) that the collector frees with dd_free(). On an
	 * error *out is not read; the tick ends with nothing scraped and
	 * targets_err set.
	 */
	dd_err_t (*targets)(void *ud, dd_collect_target **out, size_t *n);
	void (*healthy)(void *ud, const dd_collect_target *t,
			const dd_collect_ok *ok);
	void (*failed)(void *ud, const dd_collect_target *t,
		       const dd_collect_fail *f);
	void (*skipped)(void *ud, const dd_collect_target *t,
			dd_collect_skip_kind kind, const char *why);
	void (*tick_done)(void *ud, const dd_collector_stats *s);
} dd_collector_ops;

/* Zero or NULL selects the default. Strings are copied. */
typedef struct dd_collector_opts {
	dd_attestor *att;          /* required; borrowed, outlives us */
	uint64_t interval_ms;      /* tick period */
	uint64_t timeout_ms;       /* per scrape, connect included */
	unsigned max_inflight;     /* 1..DD_COLLECT_MAX_INFLIGHT */
	size_t max_body;           /* /health body cap, bytes */
	uint64_t grace_ms;         /* registering stays registering this long */
	uint64_t dead_after_ms;    /* silence after which failures mean dead */
	uint64_t verify_timeout_ms; /* one verification, JWKS fetch included */
	const char *ca_file;       /* extra trust anchors (tests, dev CA) */
	/*
	 * "host:port" or NULL: via_edge scrapes connect there instead of
	 * resolving the URL's name (dd_httpc_request.connect_to; the TLS
	 * name check stays the URL's). Tests and dev: a fake edge.
	 */
	const char *edge_connect_to;
	/*
	 * NULL: via_edge names are resolved by libcurl (the OS resolver).
	 * Otherwise a server list (dd_dns_opts.servers): each via_edge
	 * scrape first resolves the URL's host through the collector's own
	 * resolver (net/dns.h; spec 3.4), then GETs the URL pinned to the
	 * first address found. A name that does not resolve is a TRANSPORT
	 * failure with dns set. Unused with edge_connect_to.
	 */
	const char *scrape_dns;
	/* Nonzero: pinned scrapes connect to this port (dev: a fake edge). */
	unsigned edge_port;
	int64_t (*now_ms)(void);   /* Unix ms; NULL: the wall clock */
} dd_collector_opts;

typedef struct dd_collector dd_collector;

/*
 * Creates a stopped collector on loop. ops is copied. CONFIG for a
 * missing attestor or callback, max_inflight over the limit, an
 * unreadable ca_file, a malformed edge_connect_to or scrape_dns; NOMEM. Caller
 * releases it with dd_collector_free().
 */
dd_err_t dd_collector_new(uv_loop_t *loop, const dd_collector_opts *opts,
			  const dd_collector_ops *ops, void *ud,
			  dd_collector **out);

/* Starts ticking: the first tick runs from the loop, never inside this. */
void dd_collector_start(dd_collector *c);

/* Requests one extra tick (one stored permit; see above). */
void dd_collector_wake(dd_collector *c);

/* The last completed tick's stats (all zero before the first). */
void dd_collector_last_stats(const dd_collector *c, dd_collector_stats *out);
/* True while a tick is running. */
bool dd_collector_busy(const dd_collector *c);

/*
 * Stops ticking and cancels every scrape in flight: no callback runs
 * once this has been called. The memory is released from the loop once
 * the handles have closed and verifications already handed to the
 * attestor have answered (freeing the attestor answers them). NULL is a
 * no-op. Never call it from one of the collector's callbacks.
 */
void dd_collector_free(dd_collector *c);

/*
 * The pure parts, public for tests and for the CP's own use.
 */

/*
 * Spec 3.4: everything but 301/302/303/307/308/401/403, bad bodies and
 * pending registrations.
 */
bool dd_collect_dead_signal(dd_collect_fail_kind kind, long http_status);
/*
 * Spec 3.4: an unknown target (a tunnel without a record) younger than
 * grace_ms at now_ms, or dated in the future, is not contacted; it
 * fails as PENDING ("pending registration", never a dead signal). An
 * undated one is contacted.
 */
bool dd_collect_pending(const dd_collect_target *t, int64_t now_ms,
			uint64_t grace_ms);
/* Spec 3.4's name-resolution failure texts (and curl's), any case. */
bool dd_collect_is_dns_error(const char *msg);
/*
 * Silence at now_ms: since the later of last_seen and registered_at (a
 * re-registration restarts the clock, as /register resets last_seen);
 * 0 when neither is known or the clock went back.
 */
int64_t dd_collect_age_ms(const dd_collect_target *t, int64_t now_ms);
/*
 * Spec 3.6, first match wins:
 *   registering, dns, age <= dead_after        -> registering
 *   registering, age < grace                  -> registering
 *   age > dead_after and dead_signal          -> dead
 *   otherwise                                 -> stale
 */
dd_collect_status dd_collect_next_status(dd_collect_status cur, int64_t age_ms,
					 bool dns, bool dead_signal,
					 uint64_t grace_ms,
					 uint64_t dead_after_ms);

/* "registering", "healthy", "stale", "dead" (the store's names). */
const char *dd_collect_status_name(dd_collect_status s);

#endif
