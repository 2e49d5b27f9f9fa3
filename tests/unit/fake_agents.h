/*
 * fake_agents.h: a fleet of fake agents and a working attestation setup on
 * a test's own libuv loop, for tests and benchmarks of the CP's collector.
 *
 * fa_ita: the local ITA (src/attest/local_ita.h) on a loopback server, an
 * attestor with simulated quotes that mints one genuine token at start,
 * and unstarted attestors that only verify (other pins, another JWKS
 * URL). fake_agents: one dd_http_server (the project's own) answering
 * GET /a/{i}/health for agents 0..n-1, each in a mode the caller sets at
 * any time; healthy ones all serve the minted token. fa_store: a
 * stand-in for the CP's store behind dd_collector_ops, applying results
 * the way the CP does (status, last_seen) and recording what it saw.
 *
 * Test-only code: plain malloc (so allocation-failure loops hit the code
 * under test, not the fixture), errors reported as -1 with a message on
 * stderr, no cmocka, so bench/ can use it too. Lifecycle: *_start, use,
 * *_stop (begins closing), run the loop until it returns, *_free.
 */
#ifndef DD_TEST_FAKE_AGENTS_H
#define DD_TEST_FAKE_AGENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "attest/attestor.h"
#include "attest/local_ita.h"
#include "core/alloc.h"
#include "core/strutil.h"
#include "cp/collector.h"
#include "net/http.h"

/* ---- attestation ---- */

typedef struct fa_ita {
	uv_loop_t *loop;
	dd_http_server *srv;
	dd_local_ita *local;
	dd_httpc *http;
	dd_attestor *att;      /* started; its token is `token` */
	char base[64], certs[96];
	char *token;
	int rounds;
	dd_err_t err;
	char why[256];
} fa_ita;

static inline dd_http_limits fa_limits(void)
{
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 65536,
		.max_body_unauth = 65536, .head_timeout_ms = 10000,
		.body_timeout_ms = 10000, .idle_timeout_ms = 10000,
		.write_timeout_ms = 10000, .max_connections = 8192,
		.drain_timeout_ms = 50, .ws_max_message = 4096,
	};

	return lim;
}

static inline void fa_on_round(dd_err_t err, int first, const char *why,
			       void *ud)
{
	fa_ita *e = ud;

	(void)first;
	e->rounds++;
	e->err = err;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static inline int fa_fail(const char *what, dd_err_t rc)
{
	fprintf(stderr, "fake_agents: %s: %s\n", what, dd_strerror(rc));
	return -1;
}

/*
 * An attestor over e's issuer: jwks_url NULL means the real one; pins
 * NULL means unpinned. Not started: it only verifies others' tokens.
 */
static inline int fa_ita_attestor(fa_ita *e, uint8_t mrtd_byte,
				  const char *jwks_url,
				  const dd_pin_policy *pins, dd_attestor **out)
{
	uint8_t mrtd[48];
	dd_quote_provider *prov = NULL;
	dd_ita_opts io = {.base_url = e->base, .api_key = "local-key"};
	dd_ita_verifier_opts vo = {.jwks_url = jwks_url ? jwks_url : e->certs,
				   .issuer = e->base, .pins = pins};
	dd_attestor_opts ao = {.ita = &io, .verify = &vo};
	dd_err_t rc;

	memset(mrtd, mrtd_byte, sizeof mrtd);
	rc = dd_quote_provider_sim(e->loop, mrtd, &prov);
	if (rc)
		return fa_fail("quote provider", rc);
	rc = dd_attestor_new(e->loop, e->http, prov, &ao, out);
	return rc ? fa_fail("attestor", rc) : 0;
}

/* Serves the local ITA, boots an attestor and keeps its first token. */
static inline int fa_ita_start(uv_loop_t *loop, uint8_t mrtd_byte, fa_ita *e)
{
	dd_http_limits lim = fa_limits();
	dd_httpc_opts ho = {.timeout_ms = 10000};
	dd_local_ita_opts lo = {.env = "dev", .api_key = "local-key",
				.lifetime_s = 6 * 3600};
	dd_err_t rc;

	memset(e, 0, sizeof *e);
	e->loop = loop;
	rc = dd_http_server_new(loop, &lim, "ita", &e->srv);
	if (rc == DD_OK)
		rc = dd_http_server_listen(e->srv, "127.0.0.1", 0);
	if (rc)
		return fa_fail("ITA server", rc);
	snprintf(e->base, sizeof e->base, "http://127.0.0.1:%u",
		 dd_http_server_port(e->srv));
	snprintf(e->certs, sizeof e->certs, "%s/certs", e->base);
	lo.issuer = e->base;
	rc = dd_local_ita_new(&lo, &e->local);
	if (rc == DD_OK)
		rc = dd_local_ita_mount(e->local, e->srv);
	if (rc == DD_OK)
		rc = dd_httpc_new(loop, &ho, &e->http);
	if (rc)
		return fa_fail("local ITA", rc);
	if (fa_ita_attestor(e, mrtd_byte, NULL, NULL, &e->att) != 0)
		return -1;
	rc = dd_attestor_start(e->att, fa_on_round, e);
	if (rc)
		return fa_fail("attestor start", rc);
	for (int i = 0; i < 100000 && e->rounds == 0; i++)
		uv_run(loop, UV_RUN_ONCE);
	if (e->rounds == 0 || e->err != DD_OK) {
		fprintf(stderr, "fake_agents: no token: %s\n", e->why);
		return -1;
	}
	e->token = strdup(dd_attestor_token(e->att));
	return e->token ? 0 : -1;
}

static inline void fa_httpc_closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

static inline void fa_srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	(void)ud;
}

static inline void fa_ita_stop(fa_ita *e)
{
	dd_attestor_free(e->att);
	e->att = NULL;
	if (e->http != NULL)
		dd_httpc_close(e->http, fa_httpc_closed, NULL);
	e->http = NULL;
	if (e->srv != NULL)
		dd_http_server_shutdown(e->srv, 50, fa_srv_closed, NULL);
}

static inline void fa_ita_free(fa_ita *e)
{
	dd_http_server_free(e->srv);
	dd_local_ita_free(e->local);
	free(e->token);
	memset(e, 0, sizeof *e);
}

/* ---- the fleet ---- */

typedef enum {
	FA_HEALTHY,    /* 200, a /health object with the minted token */
	FA_STATUS,     /* the agent's status (3xx with a Location), "{}" */
	FA_HANG,       /* never answers; held until the client gives up */
	FA_BAD_JSON,   /* 200, a truncated JSON text */
	FA_NOT_OBJECT, /* 200, a JSON array */
	FA_NO_TOKEN,   /* 200, an object without ita_token */
	FA_NUM_TOKEN,  /* 200, ita_token is a number */
	FA_BAD_TOKEN,  /* 200, the minted token with its signature altered */
	FA_HUGE,       /* 200, a valid object (token included) of huge_len */
} fa_mode;

typedef struct fa_agent {
	fa_mode mode;
	int status;           /* FA_STATUS */
	unsigned hits;
} fa_agent;

typedef struct fa_held {
	struct fake_agents *fa;
	dd_http_req *req;
	struct fa_held *prev, *next;
} fa_held;

typedef struct fake_agents {
	uv_loop_t *loop;
	dd_http_server *srv;
	uint16_t port;
	size_t n;
	fa_agent *a;
	char *token, *bad_token, *huge;
	size_t huge_len;
	char *body;           /* scratch for healthy bodies */
	size_t body_cap;
	fa_held *held;        /* FA_HANG requests still open */
	unsigned n_held, max_held;
	unsigned long served;
	/*
	 * Every answer leaves delay_ms after its request arrived, held on a
	 * timer of the loop (0: at once): one network round trip for the
	 * request and its answer. Connection setup is not delayed. late_ns
	 * and late_n add up the delays actually held, for reports; n_late
	 * answers are being held now.
	 */
	unsigned delay_ms;
	uint64_t late_ns;
	unsigned long late_n;
	unsigned n_late;
	/*
	 * URLs name a host per agent (a<i>.localhost, which curl maps to
	 * loopback itself), so no connection is shared between agents, as
	 * in a real fleet; otherwise all share 127.0.0.1.
	 */
	bool distinct_hosts;
} fake_agents;

static inline void fa_unhold(void *ud)
{
	fa_held *h = ud;
	fake_agents *fa = h->fa;

	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		fa->held = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	fa->n_held--;
	free(h);
}

static inline void fa_hold(fake_agents *fa, dd_http_req *req)
{
	fa_held *h = calloc(1, sizeof *h);

	if (h == NULL) {
		dd_http_respond(req, 503, "application/json", "{}", 2);
		return;
	}
	h->fa = fa;
	h->req = req;
	h->next = fa->held;
	if (fa->held != NULL)
		fa->held->prev = h;
	fa->held = h;
	if (++fa->n_held > fa->max_held)
		fa->max_held = fa->n_held;
	dd_http_req_on_abort(req, fa_unhold, h);
}

static inline void fa_send(dd_http_req *req, const char *body, size_t len)
{
	dd_http_respond(req, 200, "application/json", body, len);
}

/* The answer to req, in agent id's current mode. */
static inline void fa_answer(fake_agents *fa, dd_http_req *req)
{
	const char *id = dd_http_req_param(req, "id");
	static const char no_token[] = "{\"vm_name\":\"fake\"}";
	static const char num_token[] = "{\"ita_token\":42}";
	static const char bad_json[] = "{\"ita_token\":\"eyJ";
	static const char array[] = "[\"ita_token\"]";
	uint64_t i = 0;
	fa_agent *a;
	int n;

	if (id == NULL || fa->n == 0 ||
	    dd_parse_u64(id, 0, fa->n - 1, &i) != DD_OK) {
		dd_http_respond(req, 404, "application/json", "{}", 2);
		return;
	}
	a = &fa->a[i];
	a->hits++;
	switch (a->mode) {
	case FA_HEALTHY:
	case FA_BAD_TOKEN:
		n = snprintf(fa->body, fa->body_cap,
			     "{\"ita_token\":\"%s\",\"vm_name\":\"fake-%llu\","
			     "\"deployment_count\":1,\"deployments\":[\"app\"],"
			     "\"cpu_percent\":3,\"memory_used_mb\":812}",
			     a->mode == FA_HEALTHY ? fa->token : fa->bad_token,
			     (unsigned long long)i);
		fa_send(req, fa->body, (size_t)n);
		break;
	case FA_STATUS:
		if (a->status >= 300 && a->status < 400)
			dd_http_set_header(req, "Location", "/login");
		dd_http_respond(req, a->status, "application/json", "{}", 2);
		break;
	case FA_HANG:
		fa_hold(fa, req);
		break;
	case FA_BAD_JSON:
		fa_send(req, bad_json, sizeof bad_json - 1);
		break;
	case FA_NOT_OBJECT:
		fa_send(req, array, sizeof array - 1);
		break;
	case FA_NO_TOKEN:
		fa_send(req, no_token, sizeof no_token - 1);
		break;
	case FA_NUM_TOKEN:
		fa_send(req, num_token, sizeof num_token - 1);
		break;
	case FA_HUGE:
		fa_send(req, fa->huge, fa->huge_len);
		break;
	}
}

/* An answer held back by fa->delay_ms. */
typedef struct fa_late {
	uv_timer_t t;
	fake_agents *fa;
	dd_http_req *req;
	uint64_t arrived_ns;
} fa_late;

static inline void fa_late_closed(uv_handle_t *h)
{
	fa_late *l = h->data;

	l->fa->n_late--;
	free(l);
}

static inline void fa_late_due(uv_timer_t *t)
{
	fa_late *l = t->data;
	fake_agents *fa = l->fa;

	/* Answered now: the abort hook must not run for it any more. */
	dd_http_req_on_abort(l->req, NULL, NULL);
	fa->late_ns += uv_hrtime() - l->arrived_ns;
	fa->late_n++;
	fa_answer(fa, l->req);
	uv_close((uv_handle_t *)&l->t, fa_late_closed);
}

/* The client went away first: the request is gone, drop the timer. */
static inline void fa_late_abort(void *ud)
{
	fa_late *l = ud;

	uv_timer_stop(&l->t);
	uv_close((uv_handle_t *)&l->t, fa_late_closed);
}

static inline void fa_handle(dd_http_req *req, void *ud)
{
	fake_agents *fa = ud;
	fa_late *l;

	fa->served++;
	if (fa->delay_ms == 0) {
		fa_answer(fa, req);
		return;
	}
	l = calloc(1, sizeof *l);
	if (l == NULL) {
		dd_http_respond(req, 503, "application/json", "{}", 2);
		return;
	}
	l->fa = fa;
	l->req = req;
	fa->n_late++;
	/* The loop's clock may be a whole busy turn old: count from now. */
	uv_update_time(fa->loop);
	l->arrived_ns = uv_hrtime();
	(void)uv_timer_init(fa->loop, &l->t);
	l->t.data = l;
	(void)uv_timer_start(&l->t, fa_late_due, fa->delay_ms, 0);
	dd_http_req_on_abort(req, fa_late_abort, l);
}

static inline void fa_free(fake_agents *fa)
{
	if (fa == NULL)
		return;
	dd_http_server_free(fa->srv);
	free(fa->a);
	free(fa->token);
	free(fa->bad_token);
	free(fa->huge);
	free(fa->body);
	free(fa);
}

/* n agents, all FA_HEALTHY, serving token; FA_HUGE bodies of huge_len. */
static inline int fa_start(uv_loop_t *loop, size_t n, const char *token,
			   size_t huge_len, fake_agents **out)
{
	dd_http_limits lim = fa_limits();
	dd_http_route r = {.methods = DD_M_GET, .pattern = "/a/{id}/health",
			   .handler = fa_handle};
	size_t tlen = strlen(token), pad;
	fake_agents *fa = calloc(1, sizeof *fa);
	dd_err_t rc;
	int k;

	*out = NULL;
	if (fa == NULL)
		return -1;
	fa->loop = loop;
	fa->n = n;
	fa->a = calloc(n ? n : 1, sizeof *fa->a);
	fa->token = strdup(token);
	fa->bad_token = strdup(token);
	fa->body_cap = tlen + 512;
	fa->body = malloc(fa->body_cap);
	fa->huge_len = huge_len < tlen + 64 ? tlen + 64 : huge_len;
	fa->huge = malloc(fa->huge_len + 1);
	if (fa->a == NULL || fa->token == NULL || fa->bad_token == NULL ||
	    fa->body == NULL || fa->huge == NULL) {
		fa_free(fa);
		return -1;
	}
	/* The signature's last characters: still base64url, no longer valid. */
	fa->bad_token[tlen - 2] = fa->bad_token[tlen - 2] == 'A' ? 'B' : 'A';
	fa->bad_token[tlen - 3] = fa->bad_token[tlen - 3] == 'A' ? 'B' : 'A';
	k = snprintf(fa->huge, fa->huge_len + 1,
		     "{\"ita_token\":\"%s\",\"pad\":\"", token);
	pad = fa->huge_len - (size_t)k - 2;
	memset(fa->huge + k, 'x', pad);
	memcpy(fa->huge + k + pad, "\"}", 3);
	r.ud = fa;
	rc = dd_http_server_new(loop, &lim, "agents", &fa->srv);
	if (rc == DD_OK)
		rc = dd_http_server_route(fa->srv, &r);
	if (rc == DD_OK)
		rc = dd_http_server_listen(fa->srv, "127.0.0.1", 0);
	if (rc) {
		fa_free(fa);
		return fa_fail("agents server", rc);
	}
	fa->port = dd_http_server_port(fa->srv);
	*out = fa;
	return 0;
}

/* The base URL agent i registered with. */
static inline void fa_url(const fake_agents *fa, size_t i, char *out,
			  size_t len)
{
	if (fa->distinct_hosts)
		snprintf(out, len, "http://a%zu.localhost:%u/a/%zu", i,
			 fa->port, i);
	else
		snprintf(out, len, "http://127.0.0.1:%u/a/%zu", fa->port, i);
}

static inline void fa_set(fake_agents *fa, size_t i, fa_mode mode, int status)
{
	fa->a[i].mode = mode;
	fa->a[i].status = status;
}

static inline void fa_set_all(fake_agents *fa, fa_mode mode, int status)
{
	for (size_t i = 0; i < fa->n; i++)
		fa_set(fa, i, mode, status);
}

/* Held requests are closed by the shutdown (their abort runs). */
static inline void fa_stop(fake_agents *fa)
{
	dd_http_server_shutdown(fa->srv, 50, fa_srv_closed, NULL);
}

/* ---- a stand-in store behind dd_collector_ops ---- */

#define FA_MAX_TICKS 256

/* What the store saw of one agent. */
typedef struct fa_rec {
	unsigned healthy, failed, skipped;
	dd_collect_fail fail;       /* fail.why points at why */
	dd_collect_skip_kind skip;
	char why[256];
	char mrtd[100], vm_name[32];
	dd_pin_verdict pin;
} fa_rec;

typedef struct fa_store {
	uv_loop_t *loop;
	dd_collector *col;          /* for wakes from inside a tick */
	size_t n;
	dd_collect_target *t;       /* the records; agent i is "a<i>" */
	fa_rec *r;
	unsigned ticks, callbacks;
	unsigned anomalies;         /* callbacks outside a tick, unknown ids */
	unsigned wakes_in_targets;  /* targets() wakes the collector so often */
	unsigned heal_after;        /* this tick's end heals the fleet */
	fake_agents *fa;
	bool in_tick, overlap;
	dd_err_t targets_err;       /* targets() fails with this */
	dd_collector_stats last;
	uint64_t start_at[FA_MAX_TICKS], end_at[FA_MAX_TICKS]; /* loop ms */
} fa_store;

static inline dd_err_t fa_store_targets(void *ud, dd_collect_target **out,
					size_t *n)
{
	fa_store *st = ud;
	dd_collect_target *v;

	st->overlap |= st->in_tick;
	st->in_tick = true;
	if (st->ticks < FA_MAX_TICKS)
		st->start_at[st->ticks] = uv_now(st->loop);
	for (; st->wakes_in_targets > 0; st->wakes_in_targets--)
		dd_collector_wake(st->col);
	if (st->targets_err)
		return st->targets_err;
	/* The collector frees it with dd_free. */
	v = dd_malloc(st->n * sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	memcpy(v, st->t, st->n * sizeof *v);
	*out = v;
	*n = st->n;
	return DD_OK;
}

/* The record behind t, or NULL (counted as an anomaly). */
static inline fa_rec *fa_store_rec(fa_store *st, const dd_collect_target *t,
				   size_t *i)
{
	uint64_t v = 0;

	if (!st->in_tick || st->n == 0 || t->agent_id[0] != 'a' ||
	    dd_parse_u64(t->agent_id + 1, 0, st->n - 1, &v) != DD_OK) {
		st->anomalies++;
		return NULL;
	}
	st->callbacks++;
	*i = (size_t)v;
	return &st->r[v];
}

static inline void fa_store_healthy(void *ud, const dd_collect_target *t,
				    const dd_collect_ok *ok)
{
	fa_store *st = ud;
	size_t i = 0;
	fa_rec *r = fa_store_rec(st, t, &i);
	const char *s;

	if (r == NULL)
		return;
	r->healthy++;
	r->pin = ok->verdict->pin;
	snprintf(r->why, sizeof r->why, "%s", ok->verdict->why);
	s = json_string_value(json_object_get(ok->claims, "tdx_mrtd"));
	snprintf(r->mrtd, sizeof r->mrtd, "%s", s ? s : "");
	s = json_string_value(json_object_get(ok->health, "vm_name"));
	snprintf(r->vm_name, sizeof r->vm_name, "%s", s ? s : "");
	st->t[i].status = DD_COLLECT_HEALTHY;
	st->t[i].last_seen_ms = ok->tick_ms;
}

static inline void fa_store_failed(void *ud, const dd_collect_target *t,
				   const dd_collect_fail *f)
{
	fa_store *st = ud;
	size_t i = 0;
	fa_rec *r = fa_store_rec(st, t, &i);

	if (r == NULL)
		return;
	r->failed++;
	r->fail = *f;
	snprintf(r->why, sizeof r->why, "%s", f->why);
	r->fail.why = r->why;
	st->t[i].status = f->new_status;
}

static inline void fa_store_skipped(void *ud, const dd_collect_target *t,
				    dd_collect_skip_kind kind, const char *why)
{
	fa_store *st = ud;
	size_t i = 0;
	fa_rec *r = fa_store_rec(st, t, &i);

	if (r == NULL)
		return;
	r->skipped++;
	r->skip = kind;
	snprintf(r->why, sizeof r->why, "%s", why);
}

static inline void fa_store_tick_done(void *ud, const dd_collector_stats *s)
{
	fa_store *st = ud;

	if (!st->in_tick || s->tick != st->ticks + 1)
		st->anomalies++;
	st->in_tick = false;
	if (st->ticks < FA_MAX_TICKS)
		st->end_at[st->ticks] = uv_now(st->loop);
	st->ticks++;
	st->last = *s;
	if (st->heal_after != 0 && st->ticks == st->heal_after)
		fa_set_all(st->fa, FA_HEALTHY, 0);
}

static const dd_collector_ops fa_store_ops = {
	.targets = fa_store_targets, .healthy = fa_store_healthy,
	.failed = fa_store_failed, .skipped = fa_store_skipped,
	.tick_done = fa_store_tick_done,
};

/*
 * Records for agents 0..n-1 of fa (all set healthy, hit counts zeroed):
 * status healthy, last seen at seen_ms, registered a minute before.
 */
static inline int fa_store_init(fa_store *st, fake_agents *fa, size_t n,
				int64_t seen_ms)
{
	memset(st, 0, sizeof *st);
	st->loop = fa->loop;
	st->fa = fa;
	st->n = n;
	st->t = calloc(n ? n : 1, sizeof *st->t);
	st->r = calloc(n ? n : 1, sizeof *st->r);
	if (st->t == NULL || st->r == NULL || n > fa->n)
		return -1;
	fa_set_all(fa, FA_HEALTHY, 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(st->t[i].agent_id, sizeof st->t[i].agent_id, "a%zu",
			 i);
		fa_url(fa, i, st->t[i].url, sizeof st->t[i].url);
		st->t[i].status = DD_COLLECT_HEALTHY;
		st->t[i].last_seen_ms = seen_ms;
		st->t[i].registered_at_ms = seen_ms - 60000;
		fa->a[i].hits = 0;
	}
	return 0;
}

static inline void fa_store_free(fa_store *st)
{
	free(st->t);
	free(st->r);
	st->t = NULL;
	st->r = NULL;
}

static inline int64_t fa_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
