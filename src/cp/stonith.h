/*
 * stonith.h: one serving CP per env (spec: integrations.md section 2,
 * http-surface.md 1.6, with every mitigation of integrations.md 2.6).
 * docs/cloudflare.md ("STONITH timeline") has the timeline an operator
 * sees.
 *
 * Independent of the Cloudflare client: the CP hands in the three
 * Cloudflare operations it needs (list, get, delete) and the two local
 * actions (drain, power off) through dd_stonith_ops, so every decision
 * below is tested with fake callbacks.
 *
 * Eviction (the new CP removes older CPs of its env), once per boot:
 *   1. evict_delay_ms after start, read our own tunnel until Cloudflare
 *      reports at least one active connection on it (never evict while
 *      we cannot serve ourselves);
 *   2. list the env's CP tunnels (prefix dd-{env}-cp-); a failed or
 *      ambiguous list, or one without our own tunnel in it, is retried
 *      with back-off and evicts nobody meanwhile;
 *   3. the tie-break: a tunnel is older than ours when its created_at is
 *      earlier, or equal with a smaller name. Only older tunnels are
 *      deleted (connections first, by the delete op). Two CPs booting
 *      together therefore agree on one survivor, the newest;
 *   4. a delete that was not confirmed (ambiguous, refused) makes the
 *      whole pass run again after back-off.
 *
 * Self-watchdog (are *we* the evicted one?): after a random initial
 * delay, our own tunnel is read every poll period (with jitter). A
 * reading is
 *   - present: a tunnel that is not deleted (resets the count);
 *   - gone: a tunnel answered as deleted, or a 404 *and* our own create
 *     was answered by this same account (account_verified);
 *   - ambiguous: anything else (401, 403, 429, 5xx, timeouts, junk, or a
 *     404 from an account we never verified). Never counted either way.
 * We are evicted on a gone reading when our cloudflared has exited since
 * the last present reading (dd_stonith_cloudflared_exited also asks for a
 * reading at once), or on gone_threshold consecutive gone readings.
 * An API outage is all ambiguous answers, so it never evicts anyone.
 *
 * Evicted: state DRAINING, ops.drain() starts a graceful stop; the CP
 * calls dd_stonith_drained() when it is done; power-off follows then or
 * drain_ms after the decision, whichever comes first (state EVICTED,
 * ops.poweroff()). The power-off is never skipped because the drain
 * finished early (spec 2.6's "drain finishes first" defect).
 *
 * Everything runs on the loop thread.
 */
#ifndef DD_CP_STONITH_H
#define DD_CP_STONITH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"

#define DD_STONITH_DEFAULT_EVICT_DELAY_MS 5000u
#define DD_STONITH_DEFAULT_POLL_MS 10000u
#define DD_STONITH_DEFAULT_DRAIN_MS 30000u
#define DD_STONITH_DEFAULT_RETRY_MS 2000u
#define DD_STONITH_DEFAULT_RETRY_CAP_MS 60000u
#define DD_STONITH_DEFAULT_GONE_THRESHOLD 3u
#define DD_STONITH_ID_MAX 64
#define DD_STONITH_NAME_MAX 128

typedef enum {
	DD_STONITH_SERVING = 0,
	DD_STONITH_DRAINING,
	DD_STONITH_EVICTED,
} dd_stonith_state;

/* How a Cloudflare call answered, as the op classified it. */
typedef enum {
	DD_CF_ANS_OK = 0,    /* 2xx with a result we could read */
	DD_CF_ANS_NOT_FOUND, /* HTTP 404 */
	DD_CF_ANS_AMBIGUOUS, /* transport, timeout, 401/403/429/5xx, junk */
	DD_CF_ANS_REFUSED,   /* any other definite refusal (400, 409, ...) */
} dd_cf_answer;

/* One tunnel as listed or read. */
typedef struct dd_cf_tunnel {
	char id[DD_STONITH_ID_MAX + 1];
	char name[DD_STONITH_NAME_MAX + 1];
	int64_t created_us;   /* created_at as Unix µs */
	unsigned connections; /* active connections Cloudflare reports */
	bool deleted;         /* deleted_at is set */
} dd_cf_tunnel;

/* The list's answer; t is valid during the call (NULL when n is 0). */
typedef void (*dd_stonith_list_cb)(void *ctx, dd_cf_answer ans,
				   const dd_cf_tunnel *t, size_t n);
/* One tunnel; t is valid during the call, and only with DD_CF_ANS_OK. */
typedef void (*dd_stonith_get_cb)(void *ctx, dd_cf_answer ans,
				  const dd_cf_tunnel *t);
/* DD_CF_ANS_OK: deleted now; NOT_FOUND: no such tunnel. */
typedef void (*dd_stonith_del_cb)(void *ctx, dd_cf_answer ans);

/*
 * The wiring. Each of list, get and del must call its callback exactly
 * once, never from inside the op itself (from the loop), including after
 * dd_stonith_free() (the callbacks then do nothing). All required but
 * state_changed.
 */
typedef struct dd_stonith_ops {
	/* Live (not deleted) tunnels whose names start with prefix, all pages. */
	void (*list)(void *ud, const char *prefix, dd_stonith_list_cb cb,
		     void *ctx);
	void (*get)(void *ud, const char *id, dd_stonith_get_cb cb, void *ctx);
	/* Drops the tunnel's connections, then deletes it. */
	void (*del)(void *ud, const char *id, const char *name,
		    dd_stonith_del_cb cb, void *ctx);
	/* Stop accepting and finish in-flight work; then dd_stonith_drained. */
	void (*drain)(void *ud);
	/* Turn the VM off. In production it does not return. */
	void (*poweroff)(void *ud, const char *why);
	void (*state_changed)(void *ud, dd_stonith_state s);
	/*
	 * Optional: the eviction pass finished and listed no newer CP: we
	 * are the survivor. The CP points its hostname at its own tunnel
	 * again then: an older CP booting at the same moment may have
	 * written the CNAME last.
	 */
	void (*eviction_done)(void *ud, unsigned deleted);
} dd_stonith_ops;

/* Zero selects the default. Strings are copied. */
typedef struct dd_stonith_opts {
	const char *env;         /* DD_ENV: the prefix is dd-{env}-cp- */
	const char *own_id;      /* our tunnel's id */
	const char *own_name;    /* our tunnel's name */
	/* Our own create was answered by the account we read and delete in. */
	bool account_verified;
	uint64_t evict_delay_ms; /* start -> first look at our connections */
	uint64_t poll_ms;        /* watchdog period (+-20 %); connection wait */
	/* Initial watchdog delay: uniform in [poll_ms, 2.5 poll_ms]. */
	uint64_t drain_ms;       /* decision -> power-off at the latest */
	uint64_t retry_ms;       /* first eviction retry, then doubled ... */
	uint64_t retry_cap_ms;   /* ... up to this */
	unsigned gone_threshold; /* consecutive gone readings that evict us */
	uint64_t (*rand64)(void); /* NULL: the system's random source */
} dd_stonith_opts;

typedef struct dd_stonith dd_stonith;

/*
 * Creates a stopped instance. CONFIG when env, own_id or own_name is
 * missing or too long, or an op is missing; NOMEM. Caller releases it
 * with dd_stonith_free().
 */
dd_err_t dd_stonith_new(uv_loop_t *loop, const dd_stonith_opts *opts,
			const dd_stonith_ops *ops, void *ud,
			dd_stonith **out);

/* Starts eviction and the watchdog (call right after cloudflared starts). */
void dd_stonith_start(dd_stonith *st);

/* Our cloudflared exited: the next gone reading evicts; read now. */
void dd_stonith_cloudflared_exited(dd_stonith *st);

/* The drain asked for by ops.drain() is over: power off now. */
void dd_stonith_drained(dd_stonith *st);

dd_stonith_state dd_stonith_get_state(const dd_stonith *st);
const char *dd_stonith_state_name(dd_stonith_state s);
/* Older CP tunnels this instance has deleted so far. */
unsigned dd_stonith_evicted_count(const dd_stonith *st);
/* True once the eviction pass has finished (nothing older is left). */
bool dd_stonith_eviction_done(const dd_stonith *st);

/*
 * Stops every timer; answers still to come are ignored. The memory goes
 * once the timers have closed and every op has called back. NULL is a
 * no-op. Never call it from one of the callbacks.
 */
void dd_stonith_free(dd_stonith *st);

/*
 * The pure parts, public for tests.
 */

/* True when a is older than b: earlier created_us, or equal and smaller name. */
bool dd_stonith_older(const dd_cf_tunnel *a, const dd_cf_tunnel *b);

typedef enum {
	DD_STONITH_PRESENT = 0,
	DD_STONITH_GONE,
	DD_STONITH_UNSURE,
} dd_stonith_reading;

/* Classifies one read of our own tunnel (see above). */
dd_stonith_reading dd_stonith_classify(dd_cf_answer ans, const dd_cf_tunnel *t,
				       bool account_verified);

#endif
