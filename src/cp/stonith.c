#include "cp/stonith.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

#define N_TIMERS 3
#define PREFIX_MAX (DD_STONITH_NAME_MAX + 1)

enum evict_phase {
	EV_IDLE = 0,   /* not started */
	EV_WAIT_CONN,  /* until our own tunnel has connections */
	EV_LIST,       /* listing the env's CP tunnels */
	EV_DELETE,     /* deleting the older ones, one at a time */
	EV_DONE,       /* nothing older is left, or we left serving */
};

struct dd_stonith {
	uv_loop_t *loop;
	dd_stonith_ops ops;
	void *ud;
	dd_stonith_opts o;       /* with defaults; string fields unused */
	char prefix[PREFIX_MAX];
	char own_id[DD_STONITH_ID_MAX + 1];
	char own_name[DD_STONITH_NAME_MAX + 1];
	dd_stonith_state state;
	uv_timer_t evict_timer, watch_timer, drain_timer;
	unsigned handles_open;
	unsigned pending;        /* ops that have not called back yet */
	bool closing;
	bool started;
	/* eviction */
	enum evict_phase phase;
	unsigned retries;        /* consecutive failed passes */
	bool waiting_logged;
	dd_cf_tunnel *victims;
	size_t n_victims, next_victim;
	bool pass_clean;         /* every delete of this pass was confirmed */
	bool saw_newer;          /* the last list showed a newer CP tunnel */
	unsigned evicted;
	/* watchdog */
	unsigned gone;           /* consecutive gone readings */
	bool cfd_exited;         /* since the last present reading */
	bool probing;
	bool probe_again;
	bool powered_off;
};

static uint64_t system_rand64(void)
{
	uint64_t r = 0;

	/* A failure leaves r at 0: the shortest delay, still a valid one. */
	(void)uv_random(NULL, NULL, &r, sizeof r, 0, NULL);
	return r;
}

const char *dd_stonith_state_name(dd_stonith_state s)
{
	switch (s) {
	case DD_STONITH_SERVING:
		return "serving";
	case DD_STONITH_DRAINING:
		return "draining";
	case DD_STONITH_EVICTED:
		return "evicted";
	}
	return "unknown";
}

bool dd_stonith_older(const dd_cf_tunnel *a, const dd_cf_tunnel *b)
{
	if (a->created_us != b->created_us)
		return a->created_us < b->created_us;
	return strcmp(a->name, b->name) < 0;
}

dd_stonith_reading dd_stonith_classify(dd_cf_answer ans, const dd_cf_tunnel *t,
				       bool account_verified)
{
	if (ans == DD_CF_ANS_OK && t != NULL)
		return t->deleted ? DD_STONITH_GONE : DD_STONITH_PRESENT;
	/*
	 * A 404 from an account that never answered our own create may be
	 * a token scoped elsewhere or a wrong account id: no evidence.
	 */
	if (ans == DD_CF_ANS_NOT_FOUND && account_verified)
		return DD_STONITH_GONE;
	return DD_STONITH_UNSURE;
}

static void set_state(dd_stonith *st, dd_stonith_state s)
{
	if (st->state == s)
		return;
	st->state = s;
	if (st->ops.state_changed != NULL)
		st->ops.state_changed(st->ud, s);
}

static uint64_t jitter(dd_stonith *st, uint64_t base, uint64_t lo_pct,
		       uint64_t span_pct)
{
	uint64_t lo = base / 100 * lo_pct + base % 100 * lo_pct / 100;
	uint64_t span = base / 100 * span_pct + base % 100 * span_pct / 100;

	return lo + st->o.rand64() % (span + 1);
}

/* --- power-off ---------------------------------------------------------- */

static void power_off(dd_stonith *st, const char *why)
{
	if (st->powered_off)
		return;
	st->powered_off = true;
	uv_timer_stop(&st->drain_timer);
	set_state(st, DD_STONITH_EVICTED);
	dd_log_warn("stonith: powering off (%s)", why);
	st->ops.poweroff(st->ud, why);
}

static void on_drain_deadline(uv_timer_t *t)
{
	power_off(t->data, "drain deadline passed");
}

static void evict_self(dd_stonith *st, const char *why)
{
	if (st->state != DD_STONITH_SERVING)
		return;
	dd_log_warn("stonith: our tunnel %s is gone (%s): draining for at most "
		    "%llu ms, then power-off", st->own_name, why,
		    (unsigned long long)st->o.drain_ms);
	uv_timer_stop(&st->evict_timer);
	uv_timer_stop(&st->watch_timer);
	if (st->phase != EV_IDLE)
		st->phase = EV_DONE;
	set_state(st, DD_STONITH_DRAINING);
	uv_timer_start(&st->drain_timer, on_drain_deadline, st->o.drain_ms, 0);
	st->ops.drain(st->ud);
}

void dd_stonith_drained(dd_stonith *st)
{
	if (st != NULL && !st->closing && st->state == DD_STONITH_DRAINING)
		power_off(st, "drained");
}

/* --- eviction of older CPs ---------------------------------------------- */

static void evict_step(dd_stonith *st);

static void on_evict_timer(uv_timer_t *t)
{
	evict_step(t->data);
}

static void evict_retry(dd_stonith *st, const char *why)
{
	uint64_t wait = st->o.retry_ms;

	for (unsigned i = 0; i < st->retries && wait < st->o.retry_cap_ms; i++)
		wait *= 2;
	if (wait > st->o.retry_cap_ms)
		wait = st->o.retry_cap_ms;
	st->retries++;
	dd_log_warn("stonith: eviction pass %u did not finish (%s); evicting "
		    "nobody until a retry in %llu ms", st->retries, why,
		    (unsigned long long)wait);
	st->phase = EV_LIST;
	uv_timer_start(&st->evict_timer, on_evict_timer, wait, 0);
}

/* Finishes an op's bookkeeping; false when its answer must be ignored. */
static bool answer_wanted(dd_stonith *st);

static void on_own_conn(void *ctx, dd_cf_answer ans, const dd_cf_tunnel *t)
{
	dd_stonith *st = ctx;

	if (!answer_wanted(st) || st->phase != EV_WAIT_CONN)
		return;
	if (ans == DD_CF_ANS_OK && t != NULL && !t->deleted &&
	    t->connections > 0) {
		dd_log_info("stonith: our tunnel %s has %u active connection(s); "
			    "looking for older CPs of the env", st->own_name,
			    t->connections);
		st->phase = EV_LIST;
		evict_step(st);
		return;
	}
	if (!st->waiting_logged)
		dd_log_info("stonith: waiting for our tunnel %s to report active "
			    "connections before evicting anyone", st->own_name);
	st->waiting_logged = true;
	uv_timer_start(&st->evict_timer, on_evict_timer,
		       jitter(st, st->o.poll_ms, 40, 20), 0);
}

static void delete_next(dd_stonith *st);

static void on_deleted(void *ctx, dd_cf_answer ans)
{
	dd_stonith *st = ctx;
	const dd_cf_tunnel *v;

	if (!answer_wanted(st) || st->phase != EV_DELETE)
		return;
	v = &st->victims[st->next_victim++];
	if (ans == DD_CF_ANS_OK) {
		st->evicted++;
		dd_log_warn("stonith: deleted the older CP tunnel %s (%s)",
			    v->name, v->id);
	} else if (ans == DD_CF_ANS_NOT_FOUND) {
		dd_log_info("stonith: older CP tunnel %s was already gone",
			    v->name);
	} else {
		st->pass_clean = false;
	}
	delete_next(st);
}

static void delete_next(dd_stonith *st)
{
	if (st->state != DD_STONITH_SERVING) {
		st->phase = EV_DONE;
		return;
	}
	if (st->next_victim < st->n_victims) {
		const dd_cf_tunnel *v = &st->victims[st->next_victim];

		dd_log_warn("stonith: evicting the older CP tunnel %s (%s)",
			    v->name, v->id);
		st->pending++;
		st->ops.del(st->ud, v->id, v->name, on_deleted, st);
		return;
	}
	dd_free(st->victims);
	st->victims = NULL;
	st->n_victims = 0;
	if (!st->pass_clean) {
		evict_retry(st, "a delete was not confirmed");
		return;
	}
	dd_log_info("stonith: eviction done; %u older CP tunnel(s) deleted",
		    st->evicted);
	st->retries = 0;
	st->phase = EV_DONE;
	if (st->ops.eviction_done != NULL && !st->saw_newer)
		st->ops.eviction_done(st->ud, st->evicted);
}

/* Picks the tunnels older than ours; false when ours is not listed. */
static dd_err_t pick_victims(dd_stonith *st, const dd_cf_tunnel *t, size_t n,
			     bool *found_own)
{
	const dd_cf_tunnel *own = NULL;
	size_t k = 0;

	*found_own = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].id, st->own_id) == 0)
			own = &t[i];
	}
	if (own == NULL)
		return DD_OK;
	*found_own = true;
	st->saw_newer = false;
	st->victims = n > 1 ? dd_calloc(n, sizeof *st->victims) : NULL;
	if (n > 1 && st->victims == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (&t[i] == own || t[i].deleted ||
		    strncmp(t[i].name, st->prefix, strlen(st->prefix)) != 0)
			continue;
		/* A newer CP will evict us; never touch it. */
		if (dd_stonith_older(&t[i], own)) {
			st->victims[k++] = t[i];
		} else {
			st->saw_newer = true;
			dd_log_info("stonith: CP tunnel %s is newer than ours; "
				    "it wins", t[i].name);
		}
	}
	st->n_victims = k;
	return DD_OK;
}

static void on_list(void *ctx, dd_cf_answer ans, const dd_cf_tunnel *t,
		    size_t n)
{
	dd_stonith *st = ctx;
	bool found_own;
	dd_err_t rc;

	if (!answer_wanted(st) || st->phase != EV_LIST)
		return;
	if (st->state != DD_STONITH_SERVING) {
		st->phase = EV_DONE;
		return;
	}
	if (ans != DD_CF_ANS_OK) {
		evict_retry(st, "the tunnel list failed or was ambiguous");
		return;
	}
	rc = pick_victims(st, t, n, &found_own);
	if (rc) {
		evict_retry(st, "out of memory");
		return;
	}
	if (!found_own) {
		evict_retry(st, "our own tunnel is not in the list");
		return;
	}
	st->next_victim = 0;
	st->pass_clean = true;
	st->phase = EV_DELETE;
	delete_next(st);
}

static void evict_step(dd_stonith *st)
{
	if (st->closing || st->state != DD_STONITH_SERVING) {
		st->phase = EV_DONE;
		return;
	}
	st->pending++;
	if (st->phase == EV_WAIT_CONN)
		st->ops.get(st->ud, st->own_id, on_own_conn, st);
	else
		st->ops.list(st->ud, st->prefix, on_list, st);
}

/* --- the self-watchdog -------------------------------------------------- */

static void probe(dd_stonith *st);

static void on_watch_timer(uv_timer_t *t)
{
	probe(t->data);
}

static void on_own_read(void *ctx, dd_cf_answer ans, const dd_cf_tunnel *t)
{
	dd_stonith *st = ctx;
	dd_stonith_reading r;

	if (!answer_wanted(st))
		return;
	st->probing = false;
	if (st->state != DD_STONITH_SERVING)
		return;
	r = dd_stonith_classify(ans, t, st->o.account_verified);
	if (r == DD_STONITH_PRESENT) {
		if (st->gone > 0)
			dd_log_info("stonith: our tunnel is present again");
		st->gone = 0;
		st->cfd_exited = false;
	} else if (r == DD_STONITH_GONE) {
		st->gone++;
		if (st->cfd_exited) {
			evict_self(st, "cloudflared exited and the tunnel is "
				   "deleted");
			return;
		}
		if (st->gone >= st->o.gone_threshold) {
			evict_self(st, "consecutive gone readings");
			return;
		}
		dd_log_warn("stonith: our tunnel reads as gone (%u of %u)",
			    st->gone, st->o.gone_threshold);
	} else {
		dd_log_info("stonith: ambiguous answer about our tunnel; "
			    "ignored");
	}
	if (st->probe_again) {
		st->probe_again = false;
		probe(st);
		return;
	}
	uv_timer_start(&st->watch_timer, on_watch_timer,
		       jitter(st, st->o.poll_ms, 80, 40), 0);
}

static void probe(dd_stonith *st)
{
	if (st->closing || st->state != DD_STONITH_SERVING)
		return;
	if (st->probing) {
		st->probe_again = true;
		return;
	}
	uv_timer_stop(&st->watch_timer);
	st->probing = true;
	st->pending++;
	st->ops.get(st->ud, st->own_id, on_own_read, st);
}

void dd_stonith_cloudflared_exited(dd_stonith *st)
{
	if (st == NULL || st->closing || st->state != DD_STONITH_SERVING)
		return;
	st->cfd_exited = true;
	if (st->started)
		probe(st);
}

/* --- life cycle --------------------------------------------------------- */

static void finish_free(dd_stonith *st)
{
	if (st->handles_open > 0 || st->pending > 0)
		return;
	dd_free(st->victims);
	dd_free(st);
}

static bool answer_wanted(dd_stonith *st)
{
	st->pending--;
	if (st->closing) {
		finish_free(st);
		return false;
	}
	return true;
}

static void on_timer_closed(uv_handle_t *h)
{
	dd_stonith *st = h->data;

	st->handles_open--;
	finish_free(st);
}

static void apply_defaults(dd_stonith_opts *o)
{
	if (o->evict_delay_ms == 0)
		o->evict_delay_ms = DD_STONITH_DEFAULT_EVICT_DELAY_MS;
	if (o->poll_ms == 0)
		o->poll_ms = DD_STONITH_DEFAULT_POLL_MS;
	if (o->drain_ms == 0)
		o->drain_ms = DD_STONITH_DEFAULT_DRAIN_MS;
	if (o->retry_ms == 0)
		o->retry_ms = DD_STONITH_DEFAULT_RETRY_MS;
	if (o->retry_cap_ms == 0)
		o->retry_cap_ms = DD_STONITH_DEFAULT_RETRY_CAP_MS;
	if (o->retry_cap_ms < o->retry_ms)
		o->retry_cap_ms = o->retry_ms;
	if (o->gone_threshold == 0)
		o->gone_threshold = DD_STONITH_DEFAULT_GONE_THRESHOLD;
	if (o->rand64 == NULL)
		o->rand64 = system_rand64;
}

static bool copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n == 0 || n >= cap)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

dd_err_t dd_stonith_new(uv_loop_t *loop, const dd_stonith_opts *opts,
			const dd_stonith_ops *ops, void *ud, dd_stonith **out)
{
	dd_stonith *st;
	uv_timer_t *timers[N_TIMERS];
	int n;

	*out = NULL;
	if (ops->list == NULL || ops->get == NULL || ops->del == NULL ||
	    ops->drain == NULL || ops->poweroff == NULL || opts->env == NULL)
		return DD_ERR_CONFIG;
	st = dd_calloc(1, sizeof *st);
	if (st == NULL)
		return DD_ERR_NOMEM;
	n = snprintf(st->prefix, sizeof st->prefix, "dd-%s-cp-", opts->env);
	if (n <= 0 || (size_t)n >= sizeof st->prefix ||
	    !copy_str(st->own_id, sizeof st->own_id, opts->own_id) ||
	    !copy_str(st->own_name, sizeof st->own_name, opts->own_name)) {
		dd_free(st);
		return DD_ERR_CONFIG;
	}
	st->loop = loop;
	st->ops = *ops;
	st->ud = ud;
	st->o = *opts;
	st->o.env = st->o.own_id = st->o.own_name = NULL;
	apply_defaults(&st->o);
	timers[0] = &st->evict_timer;
	timers[1] = &st->watch_timer;
	timers[2] = &st->drain_timer;
	for (int i = 0; i < N_TIMERS; i++) {
		uv_timer_init(loop, timers[i]);
		timers[i]->data = st;
	}
	st->handles_open = N_TIMERS;
	*out = st;
	return DD_OK;
}

void dd_stonith_start(dd_stonith *st)
{
	if (st->started || st->closing)
		return;
	st->started = true;
	st->phase = EV_WAIT_CONN;
	uv_timer_start(&st->evict_timer, on_evict_timer, st->o.evict_delay_ms,
		       0);
	/* Our cloudflared may have died before we started. */
	if (st->cfd_exited) {
		probe(st);
		return;
	}
	uv_timer_start(&st->watch_timer, on_watch_timer,
		       jitter(st, st->o.poll_ms, 100, 150), 0);
}

dd_stonith_state dd_stonith_get_state(const dd_stonith *st)
{
	return st->state;
}

unsigned dd_stonith_evicted_count(const dd_stonith *st)
{
	return st->evicted;
}

bool dd_stonith_eviction_done(const dd_stonith *st)
{
	return st->phase == EV_DONE;
}

void dd_stonith_free(dd_stonith *st)
{
	if (st == NULL || st->closing)
		return;
	st->closing = true;
	uv_close((uv_handle_t *)&st->evict_timer, on_timer_closed);
	uv_close((uv_handle_t *)&st->watch_timer, on_timer_closed);
	uv_close((uv_handle_t *)&st->drain_timer, on_timer_closed);
}
