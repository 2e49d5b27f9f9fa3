#include "cp/collector.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "cp/collect_dns.h"
#include "net/httpc.h"

/*
 * A GET still running this long after its own timeout means the client
 * has stopped making progress (curl gives up on a whole multi handle when
 * one of its socket callbacks fails), not that the agent is slow.
 */
#define STALL_SLACK_MS 2000u
/*
 * Parsing a body and verifying its token cost ~0.3 ms; done inline, the
 * responses that arrive together (up to max_inflight) would run in one
 * loop iteration and hold off every timer and the CP's own HTTP server
 * for tens of milliseconds. Bodies wait in a queue instead, drained for
 * about this long per iteration.
 */
#define DRAIN_BUDGET_NS 2000000u

/*
 * Keep-alive pays when a tick's connections survive to the next one:
 * libcurl caches about four idle connections per transfer in flight, so
 * that holds only for fleets that fit in flight at once (76 of 100 still
 * open after each tick). Past that, every scrape connects anyway and
 * the cache's churn nearly tripled a 10,000-agent tick (docs/collector.md).
 */
static const char *const close_conn[] = {"Connection: close"};

/* One target being scraped: its GET, then the verification of its token. */
typedef struct scrape {
	dd_collector *c;
	const dd_collect_target *t;   /* in c->targets; NULL once abandoned */
	dd_collect_resolving dns;     /* via_edge: the name, until resolved */
	dd_httpc_req *req;            /* the GET, until its callback */
	char *body;                   /* a 2xx body waiting in c->ready */
	size_t body_len;
	json_t *health;               /* the body, while the token is checked */
	bool queued;
	bool verifying;
	bool abandoned;               /* verdict overdue: the tick moved on */
	uint64_t deadline;            /* loop ms: the watchdog steps in */
	uint64_t started;             /* loop ms: timeout_ms covers DNS+GET */
	struct scrape *prev, *next;
	struct scrape *qnext;         /* in c->ready */
	char url[DD_COLLECT_URL_MAX + sizeof "/health"];
} scrape;

struct dd_collector {
	uv_loop_t *loop;
	uv_timer_t timer;
	uv_timer_t watchdog;  /* runs during ticks */
	uv_idle_t drain;      /* runs while bodies wait */
	dd_httpc *http;       /* NULL after a failed replacement */
	dd_attestor *att;
	dd_collector_ops ops;
	void *ud;
	char *ca_file;
	char *edge_connect_to;
	dd_dns *dns;          /* via_edge names; NULL: the OS resolver */
	unsigned edge_port;   /* dev: pinned scrapes' port instead */
	uint64_t interval_ms, timeout_ms, grace_ms, dead_after_ms;
	uint64_t verify_timeout_ms;
	unsigned max_inflight;
	size_t max_body;
	int64_t (*now_ms)(void);

	/* Scheduling (loop clock, ms). */
	bool started, permit, ticking, pumping;
	uint64_t due;         /* the ticker's next tick */
	uint64_t ticks;

	/* The tick in progress: targets[next..n) wait, done have finished. */
	dd_collect_target *targets;
	size_t n, next, done;
	unsigned inflight;
	uint64_t tick_ns;
	scrape *scrapes;
	scrape *ready, *ready_tail; /* bodies to process, oldest first */
	dd_collector_stats cur, last;

	/*
	 * Teardown. A verification handed to the attestor cannot be
	 * withdrawn, so the struct lives until each has answered.
	 */
	bool closing;
	unsigned open_handles;    /* our uv handles */
	unsigned closing_clients; /* dd_httpc closes not yet done */
	unsigned verifying;
};

static void pump(dd_collector *c);

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- outcomes ---- */

static void report_skip(dd_collector *c, const dd_collect_target *t,
			dd_collect_skip_kind kind, const char *why)
{
	c->cur.skipped[kind]++;
	if (c->ops.skipped != NULL)
		c->ops.skipped(c->ud, t, kind, why);
}

static void report_fail(dd_collector *c, const dd_collect_target *t,
			dd_collect_fail_kind kind, long status, const char *why)
{
	dd_collect_fail f = {.kind = kind, .http_status = status, .why = why};

	f.dns = kind == DD_COLLECT_FAIL_TRANSPORT &&
		dd_collect_is_dns_error(why);
	f.dead_signal = dd_collect_dead_signal(kind, status);
	f.age_ms = dd_collect_age_ms(t, c->now_ms());
	f.new_status = dd_collect_next_status(t->status, f.age_ms, f.dns,
					      f.dead_signal, c->grace_ms,
					      c->dead_after_ms);
	c->cur.failed[f.new_status]++;
	c->ops.failed(c->ud, t, &f);
}

/* ---- one scrape ---- */

static void scrape_free(scrape *s)
{
	dd_collector *c = s->c;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->scrapes = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	json_decref(s->health);
	dd_free(s->body);
	dd_free(s);
}

/* The target is finished: make room for the next one. */
static void scrape_end(scrape *s)
{
	dd_collector *c = s->c;

	scrape_free(s);
	c->inflight--;
	c->done++;
	pump(c);
}

static void maybe_free(dd_collector *c)
{
	if (!c->closing || c->open_handles > 0 || c->closing_clients > 0 ||
	    c->verifying > 0)
		return;
	dd_free(c->ca_file);
	dd_free(c->edge_connect_to);
	dd_free(c);
}

static void on_verdict(const dd_ita_verdict *v, json_t *claims, void *ud)
{
	scrape *s = ud;
	dd_collector *c = s->c;
	dd_collect_ok ok;
	dd_collect_skip_kind kind;

	s->verifying = false;
	c->verifying--;
	if (c->closing || s->abandoned) {
		scrape_free(s);
		maybe_free(c);
		return;
	}
	if (v->err == DD_OK) {
		ok.health = s->health;
		ok.verdict = v;
		ok.claims = claims;
		ok.tick_ms = c->cur.started_ms;
		c->cur.healthy++;
		c->ops.healthy(c->ud, s->t, &ok);
	} else {
		if (v->err == DD_ERR_UNAUTHORIZED || v->err == DD_ERR_INVALID)
			kind = DD_COLLECT_SKIP_REFUSED;
		else if (v->err == DD_ERR_NOMEM)
			kind = DD_COLLECT_SKIP_INTERNAL;
		else
			kind = DD_COLLECT_SKIP_UNVERIFIED;
		report_skip(c, s->t, kind, v->why);
	}
	scrape_end(s);
}

/*
 * A 2xx body. Parsed here and dropped as soon as its verdict is in, so a
 * tick holds at most max_inflight bodies whatever the fleet's size.
 */
static void got_body(scrape *s)
{
	dd_collector *c = s->c;
	json_t *v = NULL, *tok;
	char why[200], line[256];
	dd_err_t rc;

	rc = dd_json_parse(s->body, s->body_len, c->max_body, &v, why,
			   sizeof why);
	dd_free(s->body);
	s->body = NULL;
	if (rc == DD_ERR_NOMEM) {
		report_skip(c, s->t, DD_COLLECT_SKIP_INTERNAL, why);
		goto out;
	}
	if (rc) {
		snprintf(line, sizeof line, "/health is not JSON: %s", why);
		report_fail(c, s->t, DD_COLLECT_FAIL_BODY, 0, line);
		goto out;
	}
	if (!json_is_object(v)) {
		report_fail(c, s->t, DD_COLLECT_FAIL_BODY, 0,
			    "/health is not a JSON object");
		goto out;
	}
	tok = json_object_get(v, "ita_token");
	if (!json_is_string(tok)) {
		report_skip(c, s->t, DD_COLLECT_SKIP_NO_TOKEN,
			    "/health has no ita_token string");
		goto out;
	}
	s->health = v;
	v = NULL; /* transferred: kept until the verdict */
	s->verifying = true;
	s->deadline = uv_now(c->loop) + c->verify_timeout_ms;
	c->verifying++;
	rc = dd_attestor_verify(c->att, json_string_value(tok),
				json_string_length(tok), on_verdict, s);
	if (rc == DD_OK)
		return; /* on_verdict ends the scrape, possibly already */
	s->verifying = false;
	c->verifying--;
	snprintf(line, sizeof line, "the token could not be verified: %s",
		 dd_strerror(rc));
	report_skip(c, s->t, rc == DD_ERR_NOMEM ? DD_COLLECT_SKIP_INTERNAL
						: DD_COLLECT_SKIP_UNVERIFIED,
		    line);
out:
	json_decref(v);
	scrape_end(s);
}

static void on_drain(uv_idle_t *h)
{
	dd_collector *c = h->data;
	uint64_t t0 = uv_hrtime();
	scrape *s;

	/* At least one per turn, however slow, so the queue always moves. */
	do {
		s = c->ready;
		if (s == NULL)
			break;
		c->ready = s->qnext;
		if (c->ready == NULL)
			c->ready_tail = NULL;
		s->qnext = NULL;
		s->queued = false;
		got_body(s);
	} while (uv_hrtime() - t0 < DRAIN_BUDGET_NS);
	if (c->ready == NULL)
		uv_idle_stop(&c->drain);
}

static void on_response(dd_httpc_result *res, void *ud)
{
	scrape *s = ud;
	dd_collector *c = s->c;
	bool is_2xx = res->status >= 200 && res->status <= 299;
	char why[320];

	s->req = NULL;
	if (res->err == DD_OK && is_2xx &&
	    dd_buf_steal(&res->body, &s->body, &s->body_len) == DD_OK) {
		/* Keeps its slot while waiting: max_inflight bodies at most. */
		s->queued = true;
		if (c->ready_tail != NULL)
			c->ready_tail->qnext = s;
		else
			c->ready = s;
		c->ready_tail = s;
		uv_idle_start(&c->drain, on_drain);
		return;
	}
	if (res->err == DD_OK && is_2xx) {
		report_skip(c, s->t, DD_COLLECT_SKIP_INTERNAL, "out of memory");
	} else if (res->err == DD_ERR_CANCELLED) {
		/* Only a client being replaced cancels with a callback. */
		report_skip(c, s->t, DD_COLLECT_SKIP_INTERNAL,
			    "the HTTP client stalled and was replaced");
	} else if (res->err == DD_ERR_NOMEM) {
		report_skip(c, s->t, DD_COLLECT_SKIP_INTERNAL, res->message);
	} else if (res->status != 0 && !is_2xx) {
		/* Whatever happened to the body, the agent said this. */
		snprintf(why, sizeof why, "HTTP %ld", res->status);
		report_fail(c, s->t, DD_COLLECT_FAIL_STATUS, res->status, why);
	} else if (res->err == DD_ERR_TIMEOUT) {
		snprintf(why, sizeof why, "no answer within %llu ms",
			 (unsigned long long)c->timeout_ms);
		report_fail(c, s->t, DD_COLLECT_FAIL_TIMEOUT, 0, why);
	} else if (res->err == DD_ERR_TOO_LARGE) {
		report_fail(c, s->t, DD_COLLECT_FAIL_BODY, 0, res->message);
	} else {
		snprintf(why, sizeof why, "GET /health: %s", res->message);
		report_fail(c, s->t, DD_COLLECT_FAIL_TRANSPORT, 0, why);
	}
	scrape_end(s);
}

/* The scrape could not start: rc from the HTTP client or the resolver. */
static void start_failed(scrape *s, dd_err_t rc)
{
	/* A URL the client refuses will never work: the agent's problem. */
	if (rc == DD_ERR_INVALID)
		report_fail(s->c, s->t, DD_COLLECT_FAIL_TRANSPORT, 0,
			    "the agent's URL is not a usable http(s) URL");
	else
		report_skip(s->c, s->t, DD_COLLECT_SKIP_INTERNAL,
			    dd_strerror(rc));
	scrape_end(s);
}

/* A via_edge name resolved by our own resolver (spec 3.4; collect_dns.h). */
static void on_pinned(void *ud, const dd_collect_pinned *p)
{
	scrape *s = ud;
	dd_collector *c = s->c;
	uint64_t spent = uv_now(c->loop) - s->started;
	/* One timeout for the whole scrape (spec 3.4), the lookup included. */
	dd_httpc_request rq = {.timeout_ms = spent < c->timeout_ms
						     ? c->timeout_ms - spent : 1,
			       .max_response = c->max_body, .url = s->url,
			       .connect_to = p->pin};
	dd_err_t rc = p->err;

	if (p->dns) { /* dd_collect_is_dns_error reads it as curl's were */
		report_fail(c, s->t, DD_COLLECT_FAIL_TRANSPORT, 0, p->why);
		scrape_end(s);
		return;
	}
	if (rc == DD_OK && c->http == NULL)
		rc = DD_ERR_NOMEM; /* no client since a failed replacement */
	if (rc == DD_OK) {
		rq.headers = c->n <= c->max_inflight ? NULL : close_conn;
		rq.n_headers = rq.headers != NULL ? 1 : 0;
		s->deadline = uv_now(c->loop) + 2 * c->timeout_ms +
			      STALL_SLACK_MS;
		rc = dd_httpc_start(c->http, &rq, on_response, s, &s->req);
	}
	if (rc)
		start_failed(s, rc);
}

/* "<url>/health", one slash between them; 0 when the URL is unusable. */
static int health_url(const dd_collect_target *t, char *out, size_t out_len)
{
	size_t len = strnlen(t->url, sizeof t->url);

	if (len == sizeof t->url)
		return 0;
	while (len > 0 && t->url[len - 1] == '/')
		len--;
	if (len == 0)
		return 0;
	snprintf(out, out_len, "%.*s/health", (int)len, t->url);
	return 1;
}

static void scrape_start(dd_collector *c, const dd_collect_target *t)
{
	dd_httpc_request rq = {.timeout_ms = c->timeout_ms,
			       .max_response = c->max_body};
	bool fits = c->n <= c->max_inflight;
	scrape *s = NULL;
	dd_err_t rc = DD_ERR_INVALID;

	/* A tunnel whose agent may still be registering: left alone. */
	if (dd_collect_pending(t, c->cur.started_ms, c->grace_ms)) {
		report_fail(c, t, DD_COLLECT_FAIL_PENDING, 0,
			    "pending registration (a young unknown tunnel)");
		c->done++;
		return;
	}
	s = dd_calloc(1, sizeof *s);
	if (s == NULL) {
		report_skip(c, t, DD_COLLECT_SKIP_INTERNAL, "out of memory");
		c->done++;
		return;
	}
	s->c = c;
	s->t = t;
	s->next = c->scrapes;
	if (c->scrapes != NULL)
		c->scrapes->prev = s;
	c->scrapes = s;
	c->inflight++;
	if (c->inflight > c->cur.peak_inflight)
		c->cur.peak_inflight = c->inflight;
	s->started = uv_now(c->loop);
	s->deadline = s->started + 2 * c->timeout_ms + STALL_SLACK_MS;
	if (c->http == NULL) {
		rc = DD_ERR_NOMEM; /* no client since a failed replacement */
	} else if (health_url(t, s->url, sizeof s->url)) {
		rq.url = s->url;
		rq.connect_to = t->via_edge ? c->edge_connect_to : NULL;
		rq.headers = fits ? NULL : close_conn;
		rq.n_headers = fits ? 0 : 1;
		if (t->via_edge && c->dns != NULL)
			rc = dd_collect_resolve(c->dns, s->url, c->edge_port,
						&s->dns, on_pinned, s);
		else
			rc = dd_httpc_start(c->http, &rq, on_response, s,
					    &s->req);
	}
	if (rc)
		start_failed(s, rc);
}

/* ---- the HTTP client ---- */

static dd_err_t http_open(dd_collector *c)
{
	dd_httpc_opts ho = {.ca_file = c->ca_file, .timeout_ms = c->timeout_ms,
			    .connect_timeout_ms = c->timeout_ms,
			    .max_response = c->max_body,
			    .max_inflight = c->max_inflight};

	return dd_httpc_new(c->loop, &ho, &c->http);
}

static void on_http_closed(dd_httpc *h, void *ud)
{
	dd_collector *c = ud;

	dd_httpc_free(h);
	c->closing_clients--;
	maybe_free(c);
}

/*
 * Closes a client. Requests still running on it complete with CANCELLED,
 * through on_response, before this returns (when the collector itself
 * closes, none are left).
 */
static void http_close(dd_collector *c, dd_httpc *h)
{
	if (h == NULL)
		return;
	c->closing_clients++;
	dd_httpc_close(h, on_http_closed, c);
}

/*
 * A fresh client first, so that the old one's cancellations make room for
 * scrapes that start on the new one. Without memory for it, c->http stays
 * NULL: scrapes are skipped until a later tick opens one.
 */
static void http_replace(dd_collector *c)
{
	dd_httpc *old = c->http;

	c->cur.client_resets++;
	c->http = NULL;
	if (http_open(c) != DD_OK)
		c->http = NULL;
	http_close(c, old);
}

/* ---- the watchdog ---- */

/* Gives up waiting for a verdict; the scrape is freed when it comes. */
static void abandon(scrape *s)
{
	dd_collector *c = s->c;

	s->abandoned = true;
	json_decref(s->health);
	s->health = NULL;
	report_skip(c, s->t, DD_COLLECT_SKIP_UNVERIFIED,
		    "the token's verification did not finish in time");
	s->t = NULL;
	c->inflight--;
	c->done++;
	pump(c);
}

/*
 * A lookup still running when the scrape's time is up: c-ares would
 * go on through every server and try (up to 36 s with four silent
 * ones), and the tick waits for every scrape. The name did not resolve
 * in time, which reads as a DNS failure.
 */
static void resolve_overdue(scrape *s)
{
	dd_collector *c = s->c;
	char why[128];

	dd_collect_resolve_cancel(&s->dns);
	snprintf(why, sizeof why, "GET /health: dns error: the name did not "
		 "resolve within %llu ms", (unsigned long long)c->timeout_ms);
	report_fail(c, s->t, DD_COLLECT_FAIL_TRANSPORT, 0, why);
	scrape_end(s);
}

static void on_watchdog(uv_timer_t *h)
{
	dd_collector *c = h->data;
	uint64_t now = uv_now(c->loop);
	bool stalled = false;
	scrape *s, *next;

	/* Scrapes started meanwhile go in front; the walk never meets them. */
	for (s = c->scrapes; s != NULL; s = next) {
		next = s->next;
		if (s->dns.q != NULL && now - s->started >= c->timeout_ms) {
			resolve_overdue(s);
			continue;
		}
		if (s->abandoned || s->queued || s->dns.q != NULL ||
		    now < s->deadline)
			continue;
		if (s->verifying)
			abandon(s);
		else
			stalled = true;
	}
	if (stalled)
		http_replace(c);
}

/* ---- ticks ---- */

static void arm(dd_collector *c);

static void tick_end(dd_collector *c)
{
	uv_timer_stop(&c->watchdog);
	dd_free(c->targets);
	c->targets = NULL;
	c->n = c->next = c->done = 0;
	c->cur.duration_ms = (uv_hrtime() - c->tick_ns) / 1000000u;
	c->last = c->cur;
	c->ticking = false;
	if (c->ops.tick_done != NULL)
		c->ops.tick_done(c->ud, &c->last);
	arm(c);
}

/*
 * Starts waiting targets while there is room, and ends the tick once all
 * are done. Scrapes that finish synchronously re-enter through
 * scrape_end(); the flag turns that into one more turn of this loop
 * instead of a recursion as deep as the fleet.
 */
static void pump(dd_collector *c)
{
	if (c->pumping || !c->ticking || c->closing)
		return;
	c->pumping = true;
	while (c->next < c->n && c->inflight < c->max_inflight)
		scrape_start(c, &c->targets[c->next++]);
	c->pumping = false;
	if (c->done == c->n)
		tick_end(c);
}

static void tick_begin(dd_collector *c)
{
	uint64_t period = c->timeout_ms / 2;
	dd_collect_target *v = NULL;
	size_t n = 0;
	dd_err_t rc;

	memset(&c->cur, 0, sizeof c->cur);
	c->cur.tick = ++c->ticks;
	c->cur.started_ms = c->now_ms();
	c->tick_ns = uv_hrtime();
	c->ticking = true;
	/* A replacement that failed for want of memory: try again. */
	if (c->http == NULL && http_open(c) != DD_OK)
		c->http = NULL;
	rc = c->ops.targets(c->ud, &v, &n);
	if (rc == DD_OK && n > 0 && v == NULL)
		rc = DD_ERR_INTERNAL;
	if (rc) {
		c->cur.targets_err = rc;
		v = NULL;
		n = 0;
	}
	c->targets = v;
	c->n = n;
	c->cur.targets = n;
	period = period < 50 ? 50 : period > 1000 ? 1000 : period;
	uv_timer_start(&c->watchdog, on_watchdog, period, period);
	pump(c);
}

static void on_timer(uv_timer_t *h)
{
	dd_collector *c = h->data;
	uint64_t now = uv_now(c->loop);

	if (c->ticking || c->closing)
		return;
	if (!c->permit && now < c->due) {
		arm(c);
		return;
	}
	/* One tick answers the permit and the ticker alike. */
	c->permit = false;
	if (now >= c->due)
		c->due += ((now - c->due) / c->interval_ms + 1) *
			  c->interval_ms;
	tick_begin(c);
}

/* Ticks start from the timer, never inside a caller's stack. */
static void arm(dd_collector *c)
{
	uint64_t now = uv_now(c->loop), wait = 0;

	if (!c->permit && c->due > now)
		wait = c->due - now;
	uv_timer_start(&c->timer, on_timer, wait, 0);
}

/* ---- public ---- */

static uint64_t or_default(uint64_t v, uint64_t def)
{
	return v ? v : def;
}

dd_err_t dd_collector_new(uv_loop_t *loop, const dd_collector_opts *opts,
			  const dd_collector_ops *ops, void *ud,
			  dd_collector **out)
{
	dd_collector *c = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	if (opts->att == NULL || ops->targets == NULL || ops->healthy == NULL ||
	    ops->failed == NULL || opts->max_inflight > DD_COLLECT_MAX_INFLIGHT ||
	    (opts->edge_connect_to != NULL &&
	     dd_httpc_check_connect_to(opts->edge_connect_to) != DD_OK) ||
	    opts->edge_port > 65535)
		return DD_ERR_CONFIG;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		goto out;
	c->loop = loop;
	c->att = opts->att;
	c->ops = *ops;
	c->ud = ud;
	c->interval_ms = or_default(opts->interval_ms,
				    DD_COLLECT_DEFAULT_INTERVAL_MS);
	c->timeout_ms = or_default(opts->timeout_ms,
				   DD_COLLECT_DEFAULT_TIMEOUT_MS);
	c->max_inflight = opts->max_inflight ? opts->max_inflight
					     : DD_COLLECT_DEFAULT_MAX_INFLIGHT;
	c->max_body = opts->max_body ? opts->max_body
				     : DD_COLLECT_DEFAULT_MAX_BODY;
	c->grace_ms = or_default(opts->grace_ms, DD_COLLECT_DEFAULT_GRACE_MS);
	c->dead_after_ms = or_default(opts->dead_after_ms,
				      DD_COLLECT_DEFAULT_DEAD_AFTER_MS);
	c->verify_timeout_ms = or_default(opts->verify_timeout_ms,
					  DD_COLLECT_DEFAULT_VERIFY_TIMEOUT_MS);
	c->now_ms = opts->now_ms ? opts->now_ms : wall_ms;
	if (opts->ca_file != NULL) {
		c->ca_file = dd_strdup(opts->ca_file);
		if (c->ca_file == NULL)
			goto out;
	}
	if (opts->edge_connect_to != NULL) {
		c->edge_connect_to = dd_strdup(opts->edge_connect_to);
		if (c->edge_connect_to == NULL)
			goto out;
	}
	c->edge_port = opts->edge_port;
	/* A fake edge answers every name: nothing to resolve. */
	if (opts->scrape_dns != NULL && opts->edge_connect_to == NULL) {
		dd_dns_opts dopts = {.servers = opts->scrape_dns,
				     .max_inflight = c->max_inflight};

		rc = dd_dns_new(loop, &dopts, &c->dns);
		if (rc)
			goto out;
	}
	rc = http_open(c);
	if (rc)
		goto out;
	/* Only fill in the structs; they cannot fail. */
	(void)uv_timer_init(loop, &c->timer);
	(void)uv_timer_init(loop, &c->watchdog);
	(void)uv_idle_init(loop, &c->drain);
	c->timer.data = c;
	c->watchdog.data = c;
	c->drain.data = c;
	c->open_handles = 3;
	*out = c;
	c = NULL; /* transferred */
out:
	if (c != NULL) {
		dd_free(c->ca_file);
		dd_free(c->edge_connect_to);
		dd_dns_free(c->dns);
	}
	dd_free(c);
	return rc;
}

void dd_collector_start(dd_collector *c)
{
	if (c->started || c->closing)
		return;
	c->started = true;
	c->due = uv_now(c->loop);
	arm(c);
}

void dd_collector_wake(dd_collector *c)
{
	c->permit = true;
	if (c->started && !c->ticking && !c->closing)
		arm(c);
}

void dd_collector_last_stats(const dd_collector *c, dd_collector_stats *out)
{
	*out = c->last;
}

bool dd_collector_busy(const dd_collector *c)
{
	return c->ticking;
}

static void on_handle_closed(uv_handle_t *h)
{
	dd_collector *c = h->data;

	c->open_handles--;
	maybe_free(c);
}

void dd_collector_free(dd_collector *c)
{
	scrape *s, *next;

	if (c == NULL)
		return;
	c->closing = true;
	for (s = c->scrapes; s != NULL; s = next) {
		next = s->next;
		if (s->verifying)
			continue; /* freed by its verdict (on_verdict) */
		dd_collect_resolve_cancel(&s->dns);
		dd_httpc_cancel(s->req);
		scrape_free(s);
	}
	c->ready = c->ready_tail = NULL; /* freed above with the rest */
	dd_free(c->targets);
	c->targets = NULL;
	http_close(c, c->http);
	c->http = NULL;
	dd_dns_free(c->dns); /* frees itself once its handles close */
	c->dns = NULL;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->watchdog, on_handle_closed);
	uv_close((uv_handle_t *)&c->drain, on_handle_closed);
}
