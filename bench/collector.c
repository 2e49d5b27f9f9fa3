/*
 * collector_bench: issue 6's target, "one collector cycle over 10,000
 * fake agents against scraping them one after another in the same run
 * (at least 5x faster)", on the same fake fleet (tests/unit/fake_agents.h:
 * the project's HTTP server on loopback, every agent serving /health with
 * one genuine ITA token from the local issuer):
 *
 *   tick   one dd_collector tick over all N agents (256 scrapes in
 *          flight): GET /health, parse, verify the token (ES256, claims,
 *          pinning), the store callbacks; a 10 ms timer watches the loop
 *   seq    the same work one agent after another: a second dd_collector
 *          with max_inflight 1 (its own setting, nothing else changed),
 *          over the whole fleet, or over the first S agents with its time
 *          scaled by N / S (--seq-agents S: a shortcut, not the target's
 *          measure: a libcurl handle's cost per scrape grows with the
 *          distinct hosts it has seen, so a sample understates the
 *          distinct plan's sequential pass, by 3x at 1,000 of 10,000)
 *   floor  the same N GETs through dd_httpc, 256 at a time, bodies
 *          dropped: the HTTP cost the collector cannot go below
 *
 * Loopback has no latency, so the fleet can hold every answer for a
 * fixed round trip (--rtt-ms 0,1,5: each figure set is measured at each
 * RTT), on a timer per answer (fake_agents.delay_ms); connection setup
 * is not delayed, so a real network costs the sequential pass more.
 * Two address plans: "shared" (every agent at 127.0.0.1) and "distinct"
 * (a host per agent, a<i>.localhost, as in a real fleet, TLS aside).
 * Collectors are long-lived in the CP, so both are measured in steady
 * state: one warm-up tick each, then one tick per round.
 * Figures are medians over rounds; they are reported, never judged by the
 * exit status (1 only when setup fails or a scrape does not succeed).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/collector.h"
#include "fake_agents.h"

#define MAX_ROUNDS 64
#define FLEET_LIMIT 100000
#define MAX_RTTS 8
#define RTT_LIMIT 1000
#define FLOOR_INFLIGHT 256

struct fetch {
	fake_agents *fa;
	dd_httpc *http;
	size_t n, next, done, errors;
	unsigned inflight, max;
};

static void fetch_pump(struct fetch *f);

static void on_fetched(dd_httpc_result *res, void *ud)
{
	struct fetch *f = ud;

	f->inflight--;
	f->done++;
	if (res->err != DD_OK || res->status != 200)
		f->errors++;
	fetch_pump(f);
}

static void fetch_pump(struct fetch *f)
{
	static const char *const close_conn[] = {"Connection: close"};
	char base[600], url[620];
	/* The collector's own connection policy (collector.c). */
	bool keep = f->n <= DD_COLLECT_DEFAULT_MAX_INFLIGHT;
	dd_httpc_request rq = {.url = url, .headers = keep ? NULL : close_conn,
			       .n_headers = keep ? 0 : 1};

	while (f->next < f->n && f->inflight < f->max) {
		fa_url(f->fa, f->next, base, sizeof base);
		snprintf(url, sizeof url, "%s/health", base);
		f->next++;
		if (dd_httpc_start(f->http, &rq, on_fetched, f, NULL)) {
			f->done++;
			f->errors++;
			continue;
		}
		f->inflight++;
	}
}

static void closed_free(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

/* N plain GETs, max at a time; milliseconds, or -1 on any failure. */
static double fetch_all(uv_loop_t *loop, fake_agents *fa, size_t n,
			unsigned max)
{
	dd_httpc_opts ho = {.timeout_ms = 20000, .max_inflight = max};
	struct fetch f = {.fa = fa, .n = n, .max = max};
	uint64_t t0;

	if (dd_httpc_new(loop, &ho, &f.http) != DD_OK)
		return -1;
	t0 = uv_hrtime();
	fetch_pump(&f);
	while (f.done < n)
		uv_run(loop, UV_RUN_ONCE);
	t0 = uv_hrtime() - t0;
	dd_httpc_close(f.http, closed_free, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return f.errors ? -1 : (double)t0 / 1e6;
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * One tick of st's collector (started on the first call); wall ms from
 * wake to tick_done, or -1 unless every agent came out healthy.
 */
static double one_tick(uv_loop_t *loop, fa_store *st, double *lag_ms)
{
	unsigned want = st->ticks + 1;
	struct lag lag = {0};
	uint64_t t0;

	uv_timer_init(loop, &lag.t);
	lag.prev = uv_now(loop);
	uv_timer_start(&lag.t, on_lag, 10, 10);
	t0 = uv_hrtime();
	if (st->ticks == 0)
		dd_collector_start(st->col);
	else
		dd_collector_wake(st->col);
	while (st->ticks < want)
		uv_run(loop, UV_RUN_ONCE);
	t0 = uv_hrtime() - t0;
	uv_close((uv_handle_t *)&lag.t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	*lag_ms = (double)lag.worst;
	if (st->last.healthy != st->n || st->anomalies != 0)
		return -1;
	return (double)t0 / 1e6;
}

struct cfg {
	size_t n, seq_n;
	unsigned rounds, seq_rounds;
	unsigned rtt[MAX_RTTS], n_rtt;
};

/* One plan at one RTT; seq is for seq_n agents, not yet scaled. */
struct fig {
	double seq[MAX_ROUNDS], floor[MAX_ROUNDS], tick[MAX_ROUNDS];
	double lag[MAX_ROUNDS];
	/* Mean delay the fleet actually held an answer: seq, tick + floor. */
	double seq_held_ms, conc_held_ms;
};

/* Each collector's first tick, JWKS fetch included, is not measured. */
static int warm_up(uv_loop_t *loop, fa_store *tick, fa_store *seq)
{
	double lag;

	return one_tick(loop, tick, &lag) < 0 || one_tick(loop, seq, &lag) < 0
		       ? -1 : 0;
}

static int run_rtt(uv_loop_t *loop, fake_agents *fa, const struct cfg *cfg,
		   unsigned rtt, fa_store *tick, fa_store *seq, struct fig *f)
{
	uint64_t seq_ns = 0, seq_k = 0, conc_k;
	double seq_lag;

	fa->delay_ms = rtt;
	fa->late_ns = 0;
	fa->late_n = 0;
	for (unsigned i = 0; i < cfg->rounds; i++) {
		f->floor[i] = fetch_all(loop, fa, cfg->n, FLOOR_INFLIGHT);
		if (i < cfg->seq_rounds) {
			uint64_t ns = fa->late_ns, k = fa->late_n;

			f->seq[i] = one_tick(loop, seq, &seq_lag);
			seq_ns += fa->late_ns - ns;
			seq_k += fa->late_n - k;
		}
		f->tick[i] = one_tick(loop, tick, &f->lag[i]);
		if (f->floor[i] < 0 || f->tick[i] < 0 ||
		    (i < cfg->seq_rounds && f->seq[i] < 0))
			return -1;
	}
	f->seq_held_ms = seq_k ? (double)seq_ns / 1e6 / (double)seq_k : 0;
	conc_k = fa->late_n - seq_k;
	f->conc_held_ms = conc_k ? (double)(fa->late_ns - seq_ns) / 1e6 /
					   (double)conc_k : 0;
	return 0;
}

static int run_plan(uv_loop_t *loop, fa_ita *ita, fake_agents *fa,
		    const struct cfg *cfg, bool distinct, struct fig *figs)
{
	dd_collector_opts o = {.att = ita->att, .interval_ms = 3600000,
			       .timeout_ms = 20000};
	fa_store tick = {0}, seq = {0};
	int rc = -1;

	fa->distinct_hosts = distinct;
	fa->delay_ms = 0;
	if (fa_store_init(&tick, fa, cfg->n, fa_wall_ms()) != 0 ||
	    fa_store_init(&seq, fa, cfg->seq_n, fa_wall_ms()) != 0 ||
	    dd_collector_new(loop, &o, &fa_store_ops, &tick, &tick.col) != DD_OK)
		goto out;
	o.max_inflight = 1; /* the sequential reference: nothing else */
	if (dd_collector_new(loop, &o, &fa_store_ops, &seq, &seq.col) != DD_OK ||
	    warm_up(loop, &tick, &seq) != 0)
		goto out;
	for (unsigned r = 0; r < cfg->n_rtt; r++) {
		if (run_rtt(loop, fa, cfg, cfg->rtt[r], &tick, &seq,
			    &figs[r]) != 0)
			goto out;
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "collector_bench: a %s round failed\n",
			distinct ? "distinct" : "shared");
	dd_collector_free(tick.col);
	dd_collector_free(seq.col);
	uv_run(loop, UV_RUN_NOWAIT);
	fa_store_free(&tick);
	fa_store_free(&seq);
	return rc;
}

static void report(const char *plan, const struct cfg *cfg,
		   struct fig *figs, bool last)
{
	double scale = (double)cfg->n / (double)cfg->seq_n;

	for (unsigned r = 0; r < cfg->n_rtt; r++) {
		struct fig *f = &figs[r];
		double seq = median(f->seq, cfg->seq_rounds) * scale;
		double tick = median(f->tick, cfg->rounds);
		double flr = median(f->floor, cfg->rounds);
		double lag = median(f->lag, cfg->rounds);

		printf("%-9s %4u %5.2f %5.2f %9.0f %8.0f %8.0f %9.1f %10.2f "
		       "%9.1f %6.0f\n", plan, cfg->rtt[r], f->seq_held_ms,
		       f->conc_held_ms, seq,
		       tick, flr, tick * 1000 / (double)cfg->n, tick / flr,
		       seq / tick, lag);
		fprintf(stderr, "{\"plan\":\"%s\",\"agents\":%zu,"
			"\"rtt_ms\":%u,\"seq_held_ms\":%.3f,"
			"\"conc_held_ms\":%.3f,\"rounds\":%u,"
			"\"seq_agents\":%zu,\"seq_rounds\":%u,"
			"\"sequential_ms_scaled\":%.1f,\"tick_ms\":%.1f,"
			"\"floor_ms\":%.1f,\"worst_stall_ms\":%.0f}%s\n",
			plan, cfg->n, cfg->rtt[r], f->seq_held_ms,
			f->conc_held_ms, cfg->rounds,
			cfg->seq_n, cfg->seq_rounds, seq, tick, flr, lag,
			last && r + 1 == cfg->n_rtt ? "" : ",");
	}
	for (unsigned r = 0; r < cfg->n_rtt; r++) {
		struct fig *f = &figs[r];
		double x = median(f->seq, cfg->seq_rounds) * scale /
			   median(f->tick, cfg->rounds);

		printf("%s, rtt %u ms: tick is %.*fx %s sequential "
		       "(target 5x: %s)\n", plan, cfg->rtt[r], x >= 1 ? 1 : 2,
		       x, x >= 1 ? "faster than" : "as fast as (slower than)",
		       x >= 5 ? "met" : "not met");
	}
}

/* "0,1,5": at most MAX_RTTS values of 0..RTT_LIMIT ms. */
static int parse_rtts(const char *s, struct cfg *cfg)
{
	char one[16];
	uint64_t v;
	size_t len;

	cfg->n_rtt = 0;
	for (;;) {
		len = strcspn(s, ",");
		if (len == 0 || len >= sizeof one || cfg->n_rtt == MAX_RTTS)
			return -1;
		memcpy(one, s, len);
		one[len] = '\0';
		if (dd_parse_u64(one, 0, RTT_LIMIT, &v) != DD_OK)
			return -1;
		cfg->rtt[cfg->n_rtt++] = (unsigned)v;
		if (s[len] == '\0')
			return 0;
		s += len + 1;
	}
}

static int parse_args(int argc, char **argv, struct cfg *cfg, bool plans[2])
{
	uint64_t agents = 10000, rounds = 3, seq_n = 0, seq_rounds = 1;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--agents") == 0 &&
		    dd_parse_u64(v, 1, FLEET_LIMIT, &agents) == DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--rounds") == 0 &&
			   dd_parse_u64(v, 1, MAX_ROUNDS, &rounds) == DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--seq-agents") == 0 &&
			   dd_parse_u64(v, 1, FLEET_LIMIT, &seq_n) == DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--seq-rounds") == 0 &&
			   dd_parse_u64(v, 1, MAX_ROUNDS, &seq_rounds) ==
				   DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--rtt-ms") == 0 &&
			   parse_rtts(v, cfg) == 0) {
			i++;
		} else if (strcmp(argv[i], "--plan") == 0 &&
			   (strcmp(v, "shared") == 0 ||
			    strcmp(v, "distinct") == 0)) {
			plans[0] = strcmp(v, "shared") == 0;
			plans[1] = !plans[0];
			i++;
		} else {
			fprintf(stderr, "usage: collector_bench [--agents N] "
				"[--rounds R] [--seq-agents S] "
				"[--seq-rounds R] [--rtt-ms 0,1,5] "
				"[--plan shared|distinct]\n");
			return -1;
		}
	}
	cfg->n = (size_t)agents;
	/* The whole fleet unless asked: see the note on sampling above. */
	cfg->seq_n = seq_n != 0 && seq_n < agents ? (size_t)seq_n
						  : (size_t)agents;
	cfg->rounds = (unsigned)rounds;
	cfg->seq_rounds = seq_rounds < rounds ? (unsigned)seq_rounds
					      : (unsigned)rounds;
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg cfg = {.rtt = {0, 1, 5}, .n_rtt = 3};
	bool plans[2] = {true, true}; /* shared, distinct */
	static struct fig figs[2][MAX_RTTS];
	uv_loop_t loop;
	fake_agents *fa = NULL;
	fa_ita ita;
	struct rusage ru;
	int rc = 1;

	if (parse_args(argc, argv, &cfg, plans) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	dd_log_setup(DD_LOG_WARN, DD_LOG_LOGFMT, "bench");
	dd_json_setup();
	uv_loop_init(&loop);
	if (fa_ita_start(&loop, 0xd1, &ita) != 0 ||
	    fa_start(&loop, cfg.n, ita.token, 0, &fa) != 0)
		goto out;
	printf("collector_bench: %zu agents; tick and floor: medians of %u "
	       "rounds; seq: the collector with 1 scrape in flight, median of "
	       "%u round(s), ", cfg.n, cfg.rounds, cfg.seq_rounds);
	if (cfg.seq_n == cfg.n)
		printf("over the whole fleet");
	else
		printf("over the first %zu agents, scaled x%.1f (understates "
		       "the distinct plan)", cfg.seq_n,
		       (double)cfg.n / (double)cfg.seq_n);
	printf("; rtt: each answer held that long (hld-s, hld-c: mean "
	       "actually held in seq, in tick and floor); times in ms\n\n");
	printf("%-9s %4s %5s %5s %9s %8s %8s %9s %10s %9s %6s\n", "plan",
	       "rtt", "hld-s", "hld-c", "seq", "tick", "floor", "us/agent",
	       "tick/floor", "seq/tick", "stall");
	fprintf(stderr, "[");
	for (int p = 0; p < 2; p++) {
		if (!plans[p])
			continue;
		if (run_plan(&loop, &ita, fa, &cfg, p == 1, figs[p]) != 0)
			goto out;
		report(p ? "distinct" : "shared", &cfg, figs[p],
		       p == 1 || !plans[1]);
	}
	fprintf(stderr, "]\n");
	getrusage(RUSAGE_SELF, &ru);
	printf("\npeak RSS of the whole process (fleet, ITA and references "
	       "included): %ld KiB\n", ru.ru_maxrss);
	rc = 0;
out:
	if (fa != NULL)
		fa_stop(fa);
	fa_ita_stop(&ita);
	uv_run(&loop, UV_RUN_DEFAULT);
	fa_free(fa);
	fa_ita_free(&ita);
	uv_loop_close(&loop);
	return rc;
}
