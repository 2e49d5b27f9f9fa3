/*
 * The collector against a fake fleet on loopback (fake_agents.h): real
 * HTTP through the project's server and client, real ITA tokens from the
 * local issuer, verified by a real attestor. A stand-in store applies the
 * results the way the CP does, so multi-tick behaviour (stale, dead,
 * recovery) is exercised end to end.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "cp/collector.h"
#include "fake_agents.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define MRTD_BYTE 0xd1
#define FLEET_MAX 10000
#define HOUR_MS 3600000u /* an interval no test waits for: ticks by wake */
/* 48 bytes of e1: an MRTD no simulated quote here carries. */
#define E1x8 "e1e1e1e1e1e1e1e1"
#define OTHER_MRTD E1x8 E1x8 E1x8 E1x8 E1x8 E1x8

/* Tests that pin the clock set this (now_ms has no user data). */
static int64_t pinned_now;

static int64_t pinned_clock(void)
{
	return pinned_now;
}

struct world {
	uv_loop_t loop;
	uv_timer_t guard;
	int fired;
	fa_ita ita;
	fake_agents *fa;
};

/* n agents, all healthy and seen a second ago; opts->att defaults to ours. */
static void store_up(struct world *w, fa_store *st, size_t n,
		     dd_collector_opts *opts)
{
	assert_int_equal(fa_store_init(st, w->fa, n, fa_wall_ms() - 1000), 0);
	if (opts->att == NULL)
		opts->att = w->ita.att;
	assert_int_equal(dd_collector_new(&w->loop, opts, &fa_store_ops, st,
					  &st->col), DD_OK);
}

static void store_down(struct world *w, fa_store *st)
{
	dd_collector_free(st->col);
	for (int i = 0; i < 4; i++)
		uv_run(&w->loop, UV_RUN_NOWAIT);
	assert_int_equal(st->anomalies, 0);
	assert_false(st->overlap);
	fa_store_free(st);
}

static void on_guard(uv_timer_t *t)
{
	struct world *w = t->data;

	w->fired = 1;
}

static void run_for(struct world *w, uint64_t ms)
{
	w->fired = 0;
	uv_timer_start(&w->guard, on_guard, ms, 0);
	while (!w->fired)
		uv_run(&w->loop, UV_RUN_ONCE);
}

typedef bool (*pred_fn)(const fa_store *st, size_t arg);

static bool ticks_reach(const fa_store *st, size_t k)
{
	return st->ticks >= k;
}

static bool agent0_is(const fa_store *st, size_t status)
{
	return st->t[0].status == (dd_collect_status)status;
}

/* Runs the loop until p holds; fails the test after max_ms. */
static void run_until(struct world *w, const fa_store *st, pred_fn p,
		      size_t arg, uint64_t max_ms)
{
	w->fired = 0;
	uv_timer_start(&w->guard, on_guard, max_ms, 0);
	while (!p(st, arg) && !w->fired)
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_timer_stop(&w->guard);
	assert_true(p(st, arg));
}

/* An unstarted attestor whose JWKS is agent 30's /health, set to hang. */
static dd_attestor *stuck_verifier(struct world *w)
{
	char base[540], jwks[560];
	dd_attestor *a = NULL;

	fa_url(w->fa, 30, base, sizeof base);
	snprintf(jwks, sizeof jwks, "%s/health", base);
	assert_int_equal(fa_ita_attestor(&w->ita, MRTD_BYTE, jwks, NULL, &a),
			 0);
	return a;
}

/* ---- group fixture: one loop, one local ITA, one token, one fleet ---- */

static int world_up(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	assert_non_null(w);
	assert_int_equal(uv_loop_init(&w->loop), 0);
	uv_timer_init(&w->loop, &w->guard);
	w->guard.data = w;
	assert_int_equal(fa_ita_start(&w->loop, MRTD_BYTE, &w->ita), 0);
	assert_int_equal(fa_start(&w->loop, FLEET_MAX, w->ita.token, 80 * 1024,
				  &w->fa), 0);
	*state = w;
	return 0;
}

static int world_down(void **state)
{
	struct world *w = *state;

	fa_stop(w->fa);
	fa_ita_stop(&w->ita);
	uv_close((uv_handle_t *)&w->guard, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	fa_free(w->fa);
	fa_ita_free(&w->ita);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	free(w);
	return 0;
}

/* ---- the state machine, without sockets ---- */

static void state_machine_table(void **state)
{
	enum { R = DD_COLLECT_REGISTERING, H = DD_COLLECT_HEALTHY,
	       S = DD_COLLECT_STALE, D = DD_COLLECT_DEAD };
	const struct {
		int cur;
		int64_t age;
		bool dns, dead;
		int want;
	} rows[] = {
		{R, 0, false, true, R},       {R, 119999, false, true, R},
		{R, 120000, false, true, S},  {R, 900000, true, true, R},
		{R, 900001, true, true, D},   {R, 900001, false, false, S},
		{H, 0, false, true, S},       {H, 900000, false, true, S},
		{H, 900001, false, true, D},  {H, 900001, true, true, D},
		{S, 5000000, false, false, S}, {S, 5000000, false, true, D},
		{D, 5000000, false, true, D},
	};
	const long quiet[] = {301, 302, 303, 307, 308, 401, 403};
	const long loud[] = {100, 200, 304, 400, 404, 429, 500, 502, 503, 530};
	dd_collect_target t = {0};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		assert_int_equal(dd_collect_next_status(
					 (dd_collect_status)rows[i].cur,
					 rows[i].age, rows[i].dns, rows[i].dead,
					 DD_COLLECT_DEFAULT_GRACE_MS,
					 DD_COLLECT_DEFAULT_DEAD_AFTER_MS),
				 rows[i].want);
	for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
		assert_false(dd_collect_dead_signal(DD_COLLECT_FAIL_STATUS,
						    quiet[i]));
	for (size_t i = 0; i < sizeof loud / sizeof loud[0]; i++)
		assert_true(dd_collect_dead_signal(DD_COLLECT_FAIL_STATUS,
						   loud[i]));
	assert_true(dd_collect_dead_signal(DD_COLLECT_FAIL_TIMEOUT, 0));
	assert_true(dd_collect_dead_signal(DD_COLLECT_FAIL_TRANSPORT, 0));
	assert_false(dd_collect_dead_signal(DD_COLLECT_FAIL_BODY, 0));
	assert_false(dd_collect_dead_signal(DD_COLLECT_FAIL_PENDING, 0));
	assert_true(dd_collect_is_dns_error("Could not resolve host: x.test"));
	assert_true(dd_collect_is_dns_error("dns error: TEMPORARY FAILURE IN "
					    "NAME RESOLUTION"));
	assert_true(dd_collect_is_dns_error("a: b: no record found for x"));
	assert_false(dd_collect_is_dns_error("Failed to connect: refused"));
	assert_false(dd_collect_is_dns_error(NULL));
	/* Age: from the later of last_seen and registered_at; unknown is 0. */
	assert_int_equal(dd_collect_age_ms(&t, 5000), 0);
	t.registered_at_ms = 1000;
	assert_int_equal(dd_collect_age_ms(&t, 5000), 4000);
	t.last_seen_ms = 3000;
	assert_int_equal(dd_collect_age_ms(&t, 5000), 2000);
	t.registered_at_ms = 4500; /* registered again since */
	assert_int_equal(dd_collect_age_ms(&t, 5000), 500);
	assert_int_equal(dd_collect_age_ms(&t, 4000), 0); /* clock went back */
	assert_string_equal(dd_collect_status_name(DD_COLLECT_STALE), "stale");
	assert_string_equal(dd_collect_status_name(DD_COLLECT__COUNT),
			    "unknown");
}

static void bad_options(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {0};
	dd_collector_ops ops = fa_store_ops;
	dd_collector *c = NULL;

	assert_int_equal(dd_collector_new(&w->loop, &o, &ops, NULL, &c),
			 DD_ERR_CONFIG);
	assert_null(c);
	o.att = w->ita.att;
	o.max_inflight = DD_COLLECT_MAX_INFLIGHT + 1;
	assert_int_equal(dd_collector_new(&w->loop, &o, &ops, NULL, &c),
			 DD_ERR_CONFIG);
	o.max_inflight = 0;
	ops.failed = NULL;
	assert_int_equal(dd_collector_new(&w->loop, &o, &ops, NULL, &c),
			 DD_ERR_CONFIG);
	ops = fa_store_ops;
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(dd_collector_new(&w->loop, &o, &ops, NULL, &c),
			 DD_ERR_CONFIG);
	o.ca_file = NULL;
	o.edge_connect_to = "127.0.0.1";
	assert_int_equal(dd_collector_new(&w->loop, &o, &ops, NULL, &c),
			 DD_ERR_CONFIG);
	assert_null(c);
	dd_collector_free(NULL);
}

/* ---- one tick ---- */

static void healthy_path(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS};
	dd_collector_stats none;
	fa_store st;
	char mrtd[97], vm[32];

	store_up(w, &st, 4, &o);
	st.t[3].status = DD_COLLECT_REGISTERING;
	st.t[3].last_seen_ms = 0;
	dd_collector_last_stats(st.col, &none);
	assert_int_equal(none.tick, 0);
	dd_collector_start(st.col);
	assert_int_equal(st.ticks, 0); /* never inside start */
	run_until(w, &st, ticks_reach, 1, 20000);
	for (size_t i = 0; i < sizeof mrtd - 1; i++)
		mrtd[i] = i % 2 ? '1' : 'd';
	mrtd[sizeof mrtd - 1] = '\0';
	for (size_t i = 0; i < 4; i++) {
		snprintf(vm, sizeof vm, "fake-%zu", i);
		assert_int_equal(st.r[i].healthy, 1);
		assert_int_equal(st.r[i].failed + st.r[i].skipped, 0);
		assert_string_equal(st.r[i].mrtd, mrtd);
		assert_string_equal(st.r[i].vm_name, vm);
		assert_int_equal(st.r[i].pin, DD_PIN_UNPINNED);
		assert_int_equal(st.t[i].status, DD_COLLECT_HEALTHY);
		assert_int_equal(st.t[i].last_seen_ms, st.last.started_ms);
		assert_int_equal(w->fa->a[i].hits, 1);
	}
	assert_int_equal(st.last.targets, 4);
	assert_int_equal(st.last.healthy, 4);
	assert_int_equal(st.last.targets_err, DD_OK);
	assert_true(st.last.peak_inflight >= 1 && st.last.peak_inflight <= 4);
	assert_false(dd_collector_busy(st.col));
	store_down(w, &st);
}

/*
 * edge_connect_to: via_edge targets (tunnel agents) connect to it, with
 * their own names unresolved; other targets resolve theirs (.invalid
 * never does: a DNS failure).
 */
static void edge_targets(void **state)
{
	struct world *w = *state;
	char to[32];
	dd_collector_opts o = {.interval_ms = HOUR_MS, .edge_connect_to = to};
	fa_store st;

	snprintf(to, sizeof to, "127.0.0.1:%u", w->fa->port);
	store_up(w, &st, 2, &o);
	for (size_t i = 0; i < 2; i++) {
		snprintf(st.t[i].url, sizeof st.t[i].url,
			 "http://dd-e-api-%zu.edge.invalid/a/%zu", i, i);
		w->fa->a[i].hits = 0;
	}
	st.t[0].via_edge = true;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	assert_int_equal(st.r[0].healthy, 1);
	assert_int_equal(w->fa->a[0].hits, 1);
	assert_int_equal(st.r[1].failed, 1);
	assert_int_equal(st.r[1].fail.kind, DD_COLLECT_FAIL_TRANSPORT);
	assert_true(st.r[1].fail.dns);
	assert_int_equal(w->fa->a[1].hits, 0);
	store_down(w, &st);
}

/*
 * One timeout covers a tunnel scrape's lookup and GET: a resolver whose
 * server never answers would go on through its tries (3 s, then 6 s),
 * but the watchdog cancels the lookup once the scrape's time is up and
 * the agent gets a DNS failure; the tick ends. The wording tells which
 * path ended it (c-ares's own end says "no answer after").
 */
static void lookup_within_the_timeout(void **state)
{
	struct world *w = *state;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	char servers[32];
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 300,
			       .scrape_dns = servers};
	fa_store st;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	/* Bound and never read: queries arrive and nothing answers. */
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(servers, sizeof servers, "127.0.0.1:%u", ntohs(sa.sin_port));
	store_up(w, &st, 1, &o);
	snprintf(st.t[0].url, sizeof st.t[0].url, "https://dd-e-api-0.test");
	st.t[0].via_edge = true;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	assert_int_equal(st.r[0].failed, 1);
	assert_int_equal(st.r[0].fail.kind, DD_COLLECT_FAIL_TRANSPORT);
	assert_true(st.r[0].fail.dns);
	assert_non_null(strstr(st.r[0].why, "did not resolve within 300 ms"));
	store_down(w, &st);
	close(fd);
}

/*
 * Spec 3.4: an unknown tunnel younger than the grace is not contacted
 * (a PENDING failure, never a dead signal); an older or undated one is
 * scraped like any agent, and so is a known one whatever its dates.
 */
static void young_unknown_not_contacted(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .grace_ms = 120000};
	int64_t now = fa_wall_ms();
	fa_store st;

	store_up(w, &st, 5, &o);
	for (size_t i = 0; i < 4; i++) {
		st.t[i].unknown = true;
		st.t[i].status = DD_COLLECT_REGISTERING;
		st.t[i].last_seen_ms = st.t[i].registered_at_ms = 0;
	}
	st.t[0].created_ms = now - 10000;      /* young */
	st.t[1].created_ms = now + 60000;      /* dated in the future */
	st.t[2].created_ms = now - 200000;     /* past the grace */
	st.t[3].created_ms = 0;                /* undated */
	st.t[4].created_ms = now - 1000;       /* known: dates do not matter */
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(st.r[i].failed, 1);
		assert_int_equal(st.r[i].fail.kind, DD_COLLECT_FAIL_PENDING);
		assert_false(st.r[i].fail.dead_signal);
		assert_false(st.r[i].fail.dns);
		assert_int_equal(st.r[i].fail.new_status,
				 DD_COLLECT_REGISTERING);
		assert_non_null(strstr(st.r[i].why, "pending registration"));
		assert_int_equal(w->fa->a[i].hits, 0);
	}
	for (size_t i = 2; i < 5; i++) {
		assert_int_equal(st.r[i].healthy, 1);
		assert_int_equal(w->fa->a[i].hits, 1);
	}
	assert_int_equal(st.last.failed[DD_COLLECT_REGISTERING], 2);
	assert_int_equal(st.last.healthy, 3);
	store_down(w, &st);
}

/*
 * Every failure class against four histories: seen a second ago,
 * silent past the dead threshold, registering inside and past its grace.
 */
static void failure_classes(void **state)
{
	enum { FAIL, SKIP };
	enum { ST = DD_COLLECT_FAIL_STATUS, TO = DD_COLLECT_FAIL_TIMEOUT,
	       TR = DD_COLLECT_FAIL_TRANSPORT, BO = DD_COLLECT_FAIL_BODY };
	const struct {
		fa_mode mode;
		int status;
		const char *url;   /* instead of the agent's own */
		int outcome, kind; /* fail or skip kind */
		bool dead;
	} cls[] = {
		{FA_STATUS, 500, NULL, FAIL, ST, true},
		{FA_STATUS, 404, NULL, FAIL, ST, true},
		{FA_STATUS, 502, NULL, FAIL, ST, true},
		{FA_STATUS, 301, NULL, FAIL, ST, false},
		{FA_STATUS, 302, NULL, FAIL, ST, false},
		{FA_STATUS, 303, NULL, FAIL, ST, false},
		{FA_STATUS, 307, NULL, FAIL, ST, false},
		{FA_STATUS, 308, NULL, FAIL, ST, false},
		{FA_STATUS, 401, NULL, FAIL, ST, false},
		{FA_STATUS, 403, NULL, FAIL, ST, false},
		{FA_HANG, 0, NULL, FAIL, TO, true},
		{FA_BAD_JSON, 0, NULL, FAIL, BO, false},
		{FA_NOT_OBJECT, 0, NULL, FAIL, BO, false},
		{FA_HUGE, 0, NULL, FAIL, BO, false},
		{FA_HEALTHY, 0, "http://127.0.0.1:1/a/0", FAIL, TR, true},
		{FA_HEALTHY, 0, "ftp://127.0.0.1/a/0", FAIL, TR, true},
		{FA_HEALTHY, 0, "", FAIL, TR, true},
		{FA_NO_TOKEN, 0, NULL, SKIP, DD_COLLECT_SKIP_NO_TOKEN, false},
		{FA_NUM_TOKEN, 0, NULL, SKIP, DD_COLLECT_SKIP_NO_TOKEN, false},
		{FA_BAD_TOKEN, 0, NULL, SKIP, DD_COLLECT_SKIP_REFUSED, false},
	};
	const struct {
		dd_collect_status st;
		int64_t seen_ago, reg_ago;  /* seen_ago 0: never */
		dd_collect_status if_dead, otherwise;
	} hist[] = {
		{DD_COLLECT_HEALTHY, 1000, 50000, DD_COLLECT_STALE,
		 DD_COLLECT_STALE},
		{DD_COLLECT_STALE, 20000, 50000, DD_COLLECT_DEAD,
		 DD_COLLECT_STALE},
		{DD_COLLECT_REGISTERING, 0, 500, DD_COLLECT_REGISTERING,
		 DD_COLLECT_REGISTERING},
		{DD_COLLECT_REGISTERING, 0, 5000, DD_COLLECT_STALE,
		 DD_COLLECT_STALE},
	};
	struct world *w = *state;
	const size_t nc = sizeof cls / sizeof cls[0], nh = 4;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 400,
			       .max_body = 64 * 1024, .grace_ms = 2000,
			       .dead_after_ms = 10000, .now_ms = pinned_clock};
	fa_store st;

	store_up(w, &st, nc * nh, &o);
	pinned_now = fa_wall_ms();
	for (size_t i = 0; i < nc * nh; i++) {
		size_t c = i / nh, h = i % nh;
		dd_collect_target *t = &st.t[i];

		fa_set(w->fa, i, cls[c].mode, cls[c].status);
		if (cls[c].url != NULL)
			snprintf(t->url, sizeof t->url, "%s", cls[c].url);
		t->status = hist[h].st;
		t->last_seen_ms = 0;
		if (hist[h].seen_ago != 0)
			t->last_seen_ms = pinned_now - hist[h].seen_ago;
		t->registered_at_ms = pinned_now - hist[h].reg_ago;
	}
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 30000);
	for (size_t i = 0; i < nc * nh; i++) {
		size_t c = i / nh, h = i % nh;
		const fa_rec *r = &st.r[i];

		assert_int_equal(r->healthy, 0);
		assert_true(r->why[0] != '\0');
		if (cls[c].outcome == SKIP) {
			assert_int_equal(r->skipped, 1);
			assert_int_equal(r->failed, 0);
			assert_int_equal(r->skip, cls[c].kind);
			assert_int_equal(st.t[i].status, hist[h].st);
			continue;
		}
		assert_int_equal(r->failed, 1);
		assert_int_equal(r->skipped, 0);
		assert_int_equal(r->fail.kind, cls[c].kind);
		assert_int_equal(r->fail.http_status, cls[c].status);
		assert_int_equal(r->fail.dead_signal, cls[c].dead);
		assert_false(r->fail.dns);
		if (cls[c].dead)
			assert_int_equal(r->fail.new_status, hist[h].if_dead);
		else
			assert_int_equal(r->fail.new_status, hist[h].otherwise);
	}
	assert_int_equal(st.last.skipped[DD_COLLECT_SKIP_NO_TOKEN], 2 * nh);
	assert_int_equal(st.last.skipped[DD_COLLECT_SKIP_REFUSED], nh);
	store_down(w, &st);
}

/*
 * Real clock, shrunk thresholds: a new agent turns healthy, stops
 * answering and goes stale, comes back healthy, then fails past the
 * threshold and is declared dead. Its neighbour behind an auth gate is as
 * silent for as long and never dies.
 */
static void stale_dead_and_back(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = 40, .timeout_ms = 150,
			       .grace_ms = 200, .dead_after_ms = 1000};
	fa_store st;
	int64_t seen;

	store_up(w, &st, 2, &o);
	for (size_t i = 0; i < 2; i++) {
		st.t[i].status = DD_COLLECT_REGISTERING;
		st.t[i].last_seen_ms = 0;
		st.t[i].registered_at_ms = fa_wall_ms();
	}
	fa_set(w->fa, 1, FA_STATUS, 401);
	dd_collector_start(st.col);
	run_until(w, &st, agent0_is, DD_COLLECT_HEALTHY, 10000);
	fa_set(w->fa, 0, FA_HANG, 0);
	run_until(w, &st, agent0_is, DD_COLLECT_STALE, 10000);
	assert_int_equal(st.r[0].fail.kind, DD_COLLECT_FAIL_TIMEOUT);
	fa_set(w->fa, 0, FA_HEALTHY, 0);
	seen = st.t[0].last_seen_ms;
	run_until(w, &st, agent0_is, DD_COLLECT_HEALTHY, 10000);
	assert_true(st.t[0].last_seen_ms > seen);
	seen = st.t[0].last_seen_ms;
	fa_set(w->fa, 0, FA_STATUS, 503);
	run_until(w, &st, agent0_is, DD_COLLECT_STALE, 10000);
	run_until(w, &st, agent0_is, DD_COLLECT_DEAD, 20000);
	assert_true(fa_wall_ms() - seen > 1000);
	assert_true(st.r[0].fail.age_ms > 1000);
	assert_true(st.r[0].fail.dead_signal);
	assert_int_equal(st.t[1].status, DD_COLLECT_STALE);
	assert_true(st.r[1].fail.age_ms > 1000);
	assert_false(st.r[1].fail.dead_signal);
	store_down(w, &st);
}

/* ---- scheduling ---- */

static void wake_permits(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS};
	fa_store st;

	store_up(w, &st, 2, &o);
	/* Before start: the first tick answers it. */
	dd_collector_wake(st.col);
	run_for(w, 30);
	assert_int_equal(st.ticks, 0);
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	run_for(w, 150);
	assert_int_equal(st.ticks, 1);
	/* Idle: three wakes, one stored permit, one tick. */
	dd_collector_wake(st.col);
	dd_collector_wake(st.col);
	dd_collector_wake(st.col);
	run_until(w, &st, ticks_reach, 2, 20000);
	run_for(w, 150);
	assert_int_equal(st.ticks, 2);
	/* During a tick: exactly one more, right after it. */
	st.wakes_in_targets = 3;
	dd_collector_wake(st.col);
	run_until(w, &st, ticks_reach, 4, 20000);
	run_for(w, 150);
	assert_int_equal(st.ticks, 4);
	assert_true(st.start_at[3] >= st.end_at[2]);
	assert_true(st.start_at[3] - st.end_at[2] < 100);
	assert_int_equal(w->fa->a[0].hits, 4);
	store_down(w, &st);
}

/*
 * Two ticks of ~500 ms against a 50 ms period: they never overlap, the
 * late tick runs at once, and the nine ticks missed during each slow one
 * are skipped, not bursted: afterwards the period holds again.
 */
static void no_overlap_no_burst(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = 50, .timeout_ms = 500};
	const uint64_t window = 250;
	unsigned started = 0;
	fa_store st;

	store_up(w, &st, 3, &o);
	fa_set_all(w->fa, FA_HANG, 0);
	st.heal_after = 2;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 2, 20000);
	run_for(w, window + 50);
	assert_true(st.ticks < FA_MAX_TICKS);
	for (unsigned i = 0; i < 2; i++)
		assert_true(st.end_at[i] - st.start_at[i] >= 450);
	for (unsigned i = 1; i < st.ticks; i++)
		assert_true(st.start_at[i] >= st.end_at[i - 1]);
	assert_true(st.start_at[1] - st.end_at[0] < 100);
	assert_true(st.start_at[2] - st.end_at[1] < 100);
	for (unsigned i = 2; i < st.ticks; i++)
		started += st.start_at[i] - st.end_at[1] <= window;
	/* The late one, then at most one per period. */
	assert_true(started >= 1);
	assert_true(started <= 2 + window / 50);
	store_down(w, &st);
}

static void targets_failure_and_empty(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS};
	fa_store st;

	store_up(w, &st, 2, &o);
	st.targets_err = DD_ERR_BUSY;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	assert_int_equal(st.last.targets_err, DD_ERR_BUSY);
	assert_int_equal(st.last.targets, 0);
	assert_int_equal(st.callbacks, 0);
	/* The store answers again: the next tick scrapes. */
	st.targets_err = DD_OK;
	dd_collector_wake(st.col);
	run_until(w, &st, ticks_reach, 2, 20000);
	assert_int_equal(st.last.healthy, 2);
	/* Nothing to scrape is a tick too. */
	st.n = 0;
	dd_collector_wake(st.col);
	run_until(w, &st, ticks_reach, 3, 20000);
	assert_int_equal(st.last.targets, 0);
	store_down(w, &st);
}

/* ---- concurrency ---- */

static void bounded_inflight(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 100,
			       .max_inflight = 8};
	fa_store st;

	store_up(w, &st, 48, &o);
	fa_set_all(w->fa, FA_HANG, 0);
	w->fa->max_held = 0;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 30000);
	assert_int_equal(st.last.peak_inflight, 8);
	assert_true(w->fa->max_held <= 8);
	assert_int_equal(st.last.failed[DD_COLLECT_STALE], 48);
	/* Six rounds of 100 ms, one after another. */
	assert_true(st.last.duration_ms >= 500);
	store_down(w, &st);
}

/*
 * The fleet's round-trip option (fake_agents.delay_ms, for the benchmark):
 * every answer is held on a timer, none comes early, and an answer whose
 * client gave up first is dropped with its timer.
 */
static void delayed_answers(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 5000,
			       .max_inflight = 1};
	fake_agents *fa = w->fa;
	fa_store st;

	store_up(w, &st, 6, &o);
	fa->delay_ms = 30;
	fa->late_ns = 0;
	fa->late_n = 0;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 30000);
	assert_int_equal(st.last.healthy, 6);
	assert_int_equal(fa->late_n, 6);
	/* The loop's clock counts whole ms: no answer is a full ms early. */
	assert_true(fa->late_ns >= 6 * 29 * 1000000ull);
	assert_int_equal(fa->n_late, 0);
	store_down(w, &st);

	o = (dd_collector_opts){.interval_ms = HOUR_MS, .timeout_ms = 50};
	store_up(w, &st, 6, &o);
	fa->delay_ms = 2000;
	fa->late_n = 0;
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 30000);
	assert_int_equal(st.last.failed[DD_COLLECT_STALE], 6);
	run_for(w, 100); /* the clients' closes reach the server */
	assert_int_equal(fa->n_late, 0);
	assert_int_equal(fa->late_n, 0);
	fa->delay_ms = 0;
	store_down(w, &st);
}

struct lag {
	uv_timer_t t;
	uint64_t prev, worst;
};

static void on_lag(uv_timer_t *t)
{
	struct lag *l = (struct lag *)t;
	uint64_t now = uv_now(t->loop);

	if (now - l->prev > l->worst)
		l->worst = now - l->prev;
	l->prev = now;
}

/*
 * A large fleet in one tick, mixed outcomes, with the loop's
 * responsiveness watched by a 10 ms timer beside it. 10,000 agents
 * (a few seconds under ASan), 300 under valgrind.
 */
static void large_fleet(void **state)
{
	struct world *w = *state;
	size_t n = RUNNING_ON_VALGRIND ? 300 : FLEET_MAX;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 20000};
	size_t want[4] = {0}; /* healthy, 500, no token, 401 */
	struct lag lag = {0};
	fa_store st;

	store_up(w, &st, n, &o);
	for (size_t i = 0; i < n; i++) {
		size_t k = i % 100;

		if (k >= 98)
			fa_set(w->fa, i, FA_STATUS, 401);
		else if (k >= 95)
			fa_set(w->fa, i, FA_NO_TOKEN, 0);
		else if (k >= 90)
			fa_set(w->fa, i, FA_STATUS, 500);
		want[k >= 98 ? 3 : k >= 95 ? 2 : k >= 90 ? 1 : 0]++;
	}
	uv_timer_init(&w->loop, &lag.t);
	lag.prev = uv_now(&w->loop);
	uv_timer_start(&lag.t, on_lag, 10, 10);
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 110000);
	uv_close((uv_handle_t *)&lag.t, NULL);
	printf("# collector: %zu agents, one tick in %llu ms, peak %u in "
	       "flight, worst loop stall %llu ms\n", n,
	       (unsigned long long)st.last.duration_ms, st.last.peak_inflight,
	       (unsigned long long)lag.worst);
	assert_int_equal(st.last.targets, n);
	assert_int_equal(st.last.healthy, want[0]);
	assert_int_equal(st.last.failed[DD_COLLECT_STALE], want[1] + want[3]);
	assert_int_equal(st.last.skipped[DD_COLLECT_SKIP_NO_TOKEN], want[2]);
	assert_int_equal(st.last.peak_inflight, n < 256 ? n : 256);
	assert_int_equal(st.callbacks, n);
	store_down(w, &st);
}

/* ---- verification outcomes that need other verifiers ---- */

static void pins(void **state)
{
	struct world *w = *state;
	dd_pin_policy pol;
	char why[128];

	for (int enforce = 0; enforce < 2; enforce++) {
		dd_collector_opts o = {.interval_ms = HOUR_MS};
		fa_store st;

		assert_int_equal(dd_pin_policy_parse(OTHER_MRTD, NULL, NULL,
						     enforce, &pol, why,
						     sizeof why), DD_OK);
		assert_int_equal(fa_ita_attestor(&w->ita, MRTD_BYTE, NULL, &pol,
						 &o.att), 0);
		store_up(w, &st, 2, &o);
		dd_collector_start(st.col);
		run_until(w, &st, ticks_reach, 1, 20000);
		for (size_t i = 0; i < 2; i++) {
			if (enforce) {
				assert_int_equal(st.r[i].skipped, 1);
				assert_int_equal(st.r[i].skip,
						 DD_COLLECT_SKIP_REFUSED);
			} else {
				/* Accepted; the verdict carries the warning. */
				assert_int_equal(st.r[i].healthy, 1);
				assert_int_equal(st.r[i].pin, DD_PIN_BAD_MRTD);
				assert_true(st.r[i].why[0] != '\0');
			}
		}
		store_down(w, &st);
		dd_attestor_free(o.att);
		uv_run(&w->loop, UV_RUN_NOWAIT);
	}
}

/* Keys that never come: each tick gives its verdicts up and moves on. */
static void slow_verifier_given_up(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS,
			       .verify_timeout_ms = 200};
	fa_store st;

	o.att = stuck_verifier(w);
	store_up(w, &st, 5, &o);
	fa_set(w->fa, 30, FA_HANG, 0);
	dd_collector_start(st.col);
	run_until(w, &st, ticks_reach, 1, 20000);
	dd_collector_wake(st.col);
	run_until(w, &st, ticks_reach, 2, 20000);
	assert_int_equal(st.last.skipped[DD_COLLECT_SKIP_UNVERIFIED], 5);
	assert_true(st.last.duration_ms >= 200);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(st.r[i].skipped, 2);
		assert_int_equal(st.t[i].status, DD_COLLECT_HEALTHY);
	}
	/* Ten verdicts still owed: freeing the attestor delivers them. */
	store_down(w, &st);
	dd_attestor_free(o.att);
	run_for(w, 50);
}

/* ---- teardown with work in flight ---- */

static void free_mid_tick(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS, .timeout_ms = 5000,
			       .max_inflight = 16};
	fa_store st;

	/* GETs in flight: cancelled, their connections closed. */
	store_up(w, &st, 40, &o);
	fa_set_all(w->fa, FA_HANG, 0);
	dd_collector_start(st.col);
	while (w->fa->n_held < 16)
		uv_run(&w->loop, UV_RUN_ONCE);
	assert_true(dd_collector_busy(st.col));
	dd_collector_free(st.col);
	st.col = NULL;
	run_for(w, 200);
	assert_int_equal(st.callbacks + st.ticks, 0);
	assert_int_equal(w->fa->n_held, 0);
	store_down(w, &st);
}

/* Verifications waiting for keys: the collector goes, then they answer. */
static void free_while_verifying(void **state)
{
	struct world *w = *state;
	dd_collector_opts o = {.interval_ms = HOUR_MS};
	fa_store st;

	o.att = stuck_verifier(w);
	store_up(w, &st, 20, &o);
	fa_set(w->fa, 30, FA_HANG, 0);
	w->fa->served = 0;
	dd_collector_start(st.col);
	while (w->fa->served < 21 || w->fa->n_held < 1)
		uv_run(&w->loop, UV_RUN_ONCE);
	run_for(w, 100);
	assert_int_equal(st.callbacks, 0);
	assert_true(dd_collector_busy(st.col));
	dd_collector_free(st.col);
	st.col = NULL;
	run_for(w, 50);
	/* The verdicts (CANCELLED) reach a closed collector: dropped. */
	dd_attestor_free(o.att);
	run_for(w, 100);
	assert_int_equal(st.callbacks + st.ticks, 0);
	store_down(w, &st);
}

/* ---- allocation failures on a small tick ---- */

static bool tick_or_timeout(const fa_store *st, const struct world *w)
{
	return st->ticks >= 1 || w->fired;
}

/*
 * One scrape at a time: with transfers in parallel, a failed allocation
 * inside dd_httpc's socket callback makes curl abandon the whole multi
 * handle (a stall the watchdog recovers from, or a crash inside
 * libcurl 7.88 on the next socket event): a defect of net/httpc.c, not
 * of the collector, reported with this change.
 */
static void alloc_failures(void **state)
{
	struct world *w = *state;
	unsigned long n, used;

	for (n = 1;; n++) {
		dd_collector_opts o = {.interval_ms = HOUR_MS,
				       .timeout_ms = 500, .max_inflight = 1,
				       .att = w->ita.att};
		fa_store st;
		dd_err_t rc;

		assert_int_equal(fa_store_init(&st, w->fa, 3, 0), 0);
		fa_set(w->fa, 1, FA_STATUS, 500);
		fa_set(w->fa, 2, FA_BAD_TOKEN, 0);
		dd_alloc_fail_at(n);
		rc = dd_collector_new(&w->loop, &o, &fa_store_ops, &st,
				      &st.col);
		if (rc == DD_OK) {
			dd_collector_start(st.col);
			w->fired = 0;
			uv_timer_start(&w->guard, on_guard, 10000, 0);
			while (!tick_or_timeout(&st, w))
				uv_run(&w->loop, UV_RUN_ONCE);
			uv_timer_stop(&w->guard);
		}
		dd_collector_free(st.col);
		for (int i = 0; i < 4; i++)
			uv_run(&w->loop, UV_RUN_NOWAIT);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		/* Whatever failed, the tick ended with every target told. */
		if (rc == DD_OK) {
			assert_int_equal(st.ticks, 1);
			assert_true(st.last.targets == 3 ||
				    st.last.targets_err != DD_OK);
			assert_int_equal(st.callbacks, st.last.targets);
		}
		assert_int_equal(st.anomalies, 0);
		fa_store_free(&st);
		if (used < n)
			break;
	}
	if (n > 1) /* torture builds only */
		printf("# collector: failed each of %lu allocations in turn\n",
		       n - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_machine_table),
		cmocka_unit_test(bad_options),
		cmocka_unit_test(young_unknown_not_contacted),
		cmocka_unit_test(healthy_path),
		cmocka_unit_test(edge_targets),
		cmocka_unit_test(lookup_within_the_timeout),
		cmocka_unit_test(failure_classes),
		cmocka_unit_test(stale_dead_and_back),
		cmocka_unit_test(wake_permits),
		cmocka_unit_test(no_overlap_no_burst),
		cmocka_unit_test(targets_failure_and_empty),
		cmocka_unit_test(bounded_inflight),
		cmocka_unit_test(delayed_answers),
		cmocka_unit_test(pins),
		cmocka_unit_test(slow_verifier_given_up),
		cmocka_unit_test(free_mid_tick),
		cmocka_unit_test(free_while_verifying),
		cmocka_unit_test(alloc_failures),
		cmocka_unit_test(large_fleet),
	};

	signal(SIGPIPE, SIG_IGN);
	dd_log_setup(DD_LOG_WARN, DD_LOG_LOGFMT, "test");
	dd_json_setup();
	return cmocka_run_group_tests(tests, world_up, world_down);
}
