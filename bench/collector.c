/*
 * collector_bench: what one collector tick over a large fleet costs, next
 * to two references measured in the same run on the same fake fleet
 * (tests/unit/fake_agents.h: the project's HTTP server on loopback, every
 * agent serving /health with one genuine ITA token from the local issuer):
 *
 *   sequential   the same N GETs through dd_httpc one at a time, bodies
 *                dropped (docs' suggested reference: concurrency must
 *                beat it by far)
 *   concurrent   the same N GETs, 256 at a time: the HTTP floor the
 *                collector cannot go below
 *   tick         one dd_collector tick: the GETs plus parsing each body,
 *                verifying each token (ES256, claims, pinning) and the
 *                store callbacks, with a 10 ms timer watching the loop
 *
 * Two address plans: "shared" (every agent at 127.0.0.1) and "distinct"
 * (a host per agent, a<i>.localhost, as in a real fleet, TLS aside). The
 * references follow the collector's connection policy (keep-alive only
 * for fleets that fit in flight at once). The collector is long-lived in
 * the CP, so its ticks are measured in steady state: one warm-up tick,
 * then one tick per round.
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

struct result {
	double seq[MAX_ROUNDS], conc[MAX_ROUNDS], tick[MAX_ROUNDS];
	double lag[MAX_ROUNDS];
};

/* One tick per call; wall ms from wake to tick_done, or -1. */
static double one_tick(uv_loop_t *loop, fa_store *st, size_t n,
		       double *lag_ms)
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
	if (st->last.healthy != n || st->anomalies != 0)
		return -1;
	return (double)t0 / 1e6;
}

static int run_plan(uv_loop_t *loop, fa_ita *ita, fake_agents *fa, size_t n,
		    unsigned rounds, bool distinct, struct result *r)
{
	dd_collector_opts o = {.att = ita->att, .interval_ms = 3600000,
			       .timeout_ms = 20000};
	fa_store st;
	double lag;
	int rc = -1;

	fa->distinct_hosts = distinct;
	if (fa_store_init(&st, fa, n, fa_wall_ms()) != 0 ||
	    dd_collector_new(loop, &o, &fa_store_ops, &st, &st.col) != DD_OK)
		goto out;
	if (one_tick(loop, &st, n, &lag) < 0) /* warm-up */
		goto out;
	for (unsigned i = 0; i < rounds; i++) {
		r->seq[i] = fetch_all(loop, fa, n, 1);
		r->conc[i] = fetch_all(loop, fa, n, 256);
		r->tick[i] = one_tick(loop, &st, n, &r->lag[i]);
		if (r->seq[i] < 0 || r->conc[i] < 0 || r->tick[i] < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "collector_bench: a %s round failed\n",
			distinct ? "distinct" : "shared");
	dd_collector_free(st.col);
	uv_run(loop, UV_RUN_NOWAIT);
	fa_store_free(&st);
	return rc;
}

static void report(const char *plan, size_t n, unsigned rounds,
		   struct result *r, bool last)
{
	double seq = median(r->seq, rounds), conc = median(r->conc, rounds);
	double tick = median(r->tick, rounds), lag = median(r->lag, rounds);

	printf("%-9s %8.0f %10.0f %9.0f %10.1f %9.2f %9.1f %9.0f\n", plan,
	       seq, conc, tick, tick * 1000 / (double)n, tick / conc,
	       seq / tick, lag);
	fprintf(stderr, "{\"plan\":\"%s\",\"agents\":%zu,\"rounds\":%u,"
		"\"sequential_ms\":%.1f,\"concurrent_ms\":%.1f,"
		"\"tick_ms\":%.1f,\"worst_stall_ms\":%.0f}%s\n", plan, n,
		rounds, seq, conc, tick, lag, last ? "" : ",");
}

int main(int argc, char **argv)
{
	uint64_t agents = 10000, rounds = 5;
	bool plans[2] = {true, true}; /* shared, distinct */
	static struct result res[2];
	uv_loop_t loop;
	fake_agents *fa = NULL;
	fa_ita ita;
	struct rusage ru;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--agents") == 0 &&
		    dd_parse_u64(v, 1, FLEET_LIMIT, &agents) == DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--rounds") == 0 &&
			   dd_parse_u64(v, 1, MAX_ROUNDS, &rounds) == DD_OK) {
			i++;
		} else if (strcmp(argv[i], "--plan") == 0 &&
			   (strcmp(v, "shared") == 0 ||
			    strcmp(v, "distinct") == 0)) {
			plans[0] = strcmp(v, "shared") == 0;
			plans[1] = !plans[0];
			i++;
		} else {
			fprintf(stderr, "usage: collector_bench [--agents N] "
				"[--rounds R] [--plan shared|distinct]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	dd_log_setup(DD_LOG_WARN, DD_LOG_LOGFMT, "bench");
	dd_json_setup();
	uv_loop_init(&loop);
	if (fa_ita_start(&loop, 0xd1, &ita) != 0 ||
	    fa_start(&loop, (size_t)agents, ita.token, 0, &fa) != 0)
		goto out;
	printf("collector_bench: %llu agents, %llu rounds, medians; "
	       "times in ms\n\n", (unsigned long long)agents,
	       (unsigned long long)rounds);
	printf("%-9s %8s %10s %9s %10s %9s %9s %9s\n", "plan", "seq", "conc",
	       "tick", "us/agent", "tick/conc", "seq/tick", "stall");
	fprintf(stderr, "[");
	for (int p = 0; p < 2; p++) {
		if (!plans[p])
			continue;
		if (run_plan(&loop, &ita, fa, (size_t)agents, (unsigned)rounds,
			     p == 1, &res[p]) != 0)
			goto out;
		report(p ? "distinct" : "shared", (size_t)agents,
		       (unsigned)rounds, &res[p], p == 1 || !plans[1]);
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
