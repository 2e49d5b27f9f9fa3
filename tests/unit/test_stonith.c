/*
 * STONITH against a fake Cloudflare account held in memory: every CP
 * instance in a test shares one world of tunnels; answers come from the
 * loop (never from inside the op), as the real client's do. Deleting a
 * tunnel makes its owner's cloudflared "exit", like the real one.
 * No timing assertions: tests wait for counts, never for durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/log.h"
#include "cp/stonith.h"

#define MAX_TUNNELS 8
#define MAX_QUEUE 64
#define MAX_CPS 2

enum op_kind { OP_LIST, OP_GET, OP_DEL };

struct op {
	enum op_kind kind;
	char id[DD_STONITH_ID_MAX + 1];
	char prefix[DD_STONITH_NAME_MAX + 1];
	dd_stonith_list_cb list_cb;
	dd_stonith_get_cb get_cb;
	dd_stonith_del_cb del_cb;
	void *ctx;
};

struct world;

struct cp {
	struct world *w;
	dd_stonith *st;
	int tunnel;           /* index of its own tunnel in w->t */
	bool auto_drain;      /* the drain completes (from the loop) */
	unsigned drains, poweroffs, claims;
	char why[64];
	bool drain_pending;
};

struct world {
	uv_loop_t loop;
	uv_timer_t answer, guard, drain;
	bool guard_fired;
	dd_cf_tunnel t[MAX_TUNNELS];
	size_t n;
	struct op q[MAX_QUEUE];
	size_t nq;
	struct cp cps[MAX_CPS];
	size_t ncps;
	/* knobs */
	unsigned list_fail;   /* this many lists answer AMBIGUOUS first */
	dd_cf_answer get_force; /* != OK: every get answers this */
	dd_cf_answer del_force; /* != OK: every delete answers this */
	bool hard_delete;     /* deleted tunnels read 404, not deleted_at */
	/* records */
	unsigned lists, gets, dels;
};

static void answer_one(struct world *w, const struct op *o);

static void on_answer(uv_timer_t *t)
{
	struct world *w = t->data;
	struct op batch[MAX_QUEUE];
	size_t n = w->nq;

	memcpy(batch, w->q, n * sizeof batch[0]);
	w->nq = 0;
	for (size_t i = 0; i < n; i++)
		answer_one(w, &batch[i]);
}

static struct op *enqueue(struct world *w, enum op_kind kind, void *ctx)
{
	struct op *o;

	assert_true(w->nq < MAX_QUEUE);
	o = &w->q[w->nq++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->ctx = ctx;
	uv_timer_start(&w->answer, on_answer, 0, 0);
	return o;
}

static struct world *world_of(void *ud)
{
	return ((struct cp *)ud)->w;
}

static void op_list(void *ud, const char *prefix, dd_stonith_list_cb cb,
		    void *ctx)
{
	struct op *o = enqueue(world_of(ud), OP_LIST, ctx);

	snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
	o->list_cb = cb;
}

static void op_get(void *ud, const char *id, dd_stonith_get_cb cb, void *ctx)
{
	struct op *o = enqueue(world_of(ud), OP_GET, ctx);

	snprintf(o->id, sizeof o->id, "%s", id);
	o->get_cb = cb;
}

static void op_del(void *ud, const char *id, const char *name,
		   dd_stonith_del_cb cb, void *ctx)
{
	struct op *o = enqueue(world_of(ud), OP_DEL, ctx);

	(void)name;
	snprintf(o->id, sizeof o->id, "%s", id);
	o->del_cb = cb;
}

static void on_drain_done(uv_timer_t *t)
{
	struct world *w = t->data;

	for (size_t i = 0; i < w->ncps; i++) {
		if (w->cps[i].drain_pending) {
			w->cps[i].drain_pending = false;
			dd_stonith_drained(w->cps[i].st);
		}
	}
}

static void op_drain(void *ud)
{
	struct cp *cp = ud;

	cp->drains++;
	if (cp->auto_drain) {
		cp->drain_pending = true;
		uv_timer_start(&cp->w->drain, on_drain_done, 1, 0);
	}
}

static void op_poweroff(void *ud, const char *why)
{
	struct cp *cp = ud;

	cp->poweroffs++;
	snprintf(cp->why, sizeof cp->why, "%s", why);
}

static void op_eviction_done(void *ud, unsigned deleted)
{
	(void)deleted;
	((struct cp *)ud)->claims++;
}

static const dd_stonith_ops ops = {
	.list = op_list, .get = op_get, .del = op_del, .drain = op_drain,
	.poweroff = op_poweroff, .eviction_done = op_eviction_done,
};

static int find(struct world *w, const char *id)
{
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->t[i].id, id) == 0)
			return (int)i;
	}
	return -1;
}

static void answer_list(struct world *w, const struct op *o)
{
	dd_cf_tunnel live[MAX_TUNNELS];
	size_t k = 0;

	w->lists++;
	if (w->list_fail > 0) {
		w->list_fail--;
		o->list_cb(o->ctx, DD_CF_ANS_AMBIGUOUS, NULL, 0);
		return;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (!w->t[i].deleted &&
		    strncmp(w->t[i].name, o->prefix, strlen(o->prefix)) == 0)
			live[k++] = w->t[i];
	}
	o->list_cb(o->ctx, DD_CF_ANS_OK, k ? live : NULL, k);
}

static void answer_get(struct world *w, const struct op *o)
{
	int i = find(w, o->id);

	w->gets++;
	if (w->get_force != DD_CF_ANS_OK) {
		o->get_cb(o->ctx, w->get_force, NULL);
		return;
	}
	if (i < 0 || (w->t[i].deleted && w->hard_delete)) {
		o->get_cb(o->ctx, DD_CF_ANS_NOT_FOUND, NULL);
		return;
	}
	o->get_cb(o->ctx, DD_CF_ANS_OK, &w->t[i]);
}

static void answer_del(struct world *w, const struct op *o)
{
	int i = find(w, o->id);

	w->dels++;
	if (w->del_force != DD_CF_ANS_OK) {
		o->del_cb(o->ctx, w->del_force);
		return;
	}
	if (i < 0 || w->t[i].deleted) {
		o->del_cb(o->ctx, DD_CF_ANS_NOT_FOUND);
		return;
	}
	w->t[i].deleted = true;
	w->t[i].connections = 0;
	/* Like the real connector: a deleted tunnel ends its cloudflared. */
	for (size_t c = 0; c < w->ncps; c++) {
		if (w->cps[c].tunnel == i)
			dd_stonith_cloudflared_exited(w->cps[c].st);
	}
	o->del_cb(o->ctx, DD_CF_ANS_OK);
}

static void answer_one(struct world *w, const struct op *o)
{
	if (o->kind == OP_LIST)
		answer_list(w, o);
	else if (o->kind == OP_GET)
		answer_get(w, o);
	else
		answer_del(w, o);
}

static void on_guard(uv_timer_t *t)
{
	((struct world *)t->data)->guard_fired = true;
}

static void world_init(struct world *w)
{
	memset(w, 0, sizeof *w);
	assert_int_equal(uv_loop_init(&w->loop), 0);
	uv_timer_init(&w->loop, &w->answer);
	uv_timer_init(&w->loop, &w->guard);
	uv_timer_init(&w->loop, &w->drain);
	w->answer.data = w->guard.data = w->drain.data = w;
	/* A generous bound on any wait: a hang fails instead of blocking. */
	uv_timer_start(&w->guard, on_guard, 20000, 0);
	uv_unref((uv_handle_t *)&w->guard);
}

static int add_tunnel(struct world *w, const char *id, const char *name,
		      int64_t created, unsigned conns)
{
	dd_cf_tunnel *t = &w->t[w->n];

	memset(t, 0, sizeof *t);
	snprintf(t->id, sizeof t->id, "%s", id);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->created_us = created;
	t->connections = conns;
	return (int)w->n++;
}

static uint64_t zero_rand(void)
{
	return 0;
}

static struct cp *add_cp(struct world *w, int tunnel, bool verified)
{
	struct cp *cp = &w->cps[w->ncps++];
	dd_stonith_opts o = {
		.env = "pr-7", .own_id = w->t[tunnel].id,
		.own_name = w->t[tunnel].name, .account_verified = verified,
		.evict_delay_ms = 1, .poll_ms = 3, .drain_ms = 30,
		.retry_ms = 1, .retry_cap_ms = 4, .rand64 = zero_rand,
	};

	cp->w = w;
	cp->tunnel = tunnel;
	cp->auto_drain = true;
	assert_int_equal(dd_stonith_new(&w->loop, &o, &ops, cp, &cp->st),
			 DD_OK);
	return cp;
}

typedef bool (*pred_fn)(struct world *w, void *arg);

static void run_until(struct world *w, pred_fn p, void *arg)
{
	while (!p(w, arg)) {
		assert_false(w->guard_fired);
		/* Nothing pending any more and still not true: it never will be. */
		if (uv_run(&w->loop, UV_RUN_ONCE) == 0)
			assert_true(p(w, arg));
	}
}

static bool gets_at_least(struct world *w, void *arg)
{
	return w->gets >= *(unsigned *)arg;
}

static bool lists_at_least(struct world *w, void *arg)
{
	return w->lists >= *(unsigned *)arg;
}

static bool eviction_done(struct world *w, void *arg)
{
	(void)w;
	return dd_stonith_eviction_done(((struct cp *)arg)->st);
}

static bool powered_off(struct world *w, void *arg)
{
	(void)w;
	return ((struct cp *)arg)->poweroffs > 0;
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->ncps; i++)
		dd_stonith_free(w->cps[i].st);
	uv_close((uv_handle_t *)&w->guard, NULL);
	uv_close((uv_handle_t *)&w->drain, NULL);
	/* Ops still queued must answer so the instances can go. */
	while (w->nq > 0 || uv_loop_alive(&w->loop))
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&w->answer, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* --- the pure parts ----------------------------------------------------- */

static void test_classify(void **state)
{
	dd_cf_tunnel t = {.id = "a", .name = "dd-e-cp-a"};

	(void)state;
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_OK, &t, false),
			 DD_STONITH_PRESENT);
	t.deleted = true;
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_OK, &t, false),
			 DD_STONITH_GONE);
	/* 404 is evidence only from the account that took our create. */
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_NOT_FOUND, NULL, true),
			 DD_STONITH_GONE);
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_NOT_FOUND, NULL, false),
			 DD_STONITH_UNSURE);
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_AMBIGUOUS, NULL, true),
			 DD_STONITH_UNSURE);
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_REFUSED, NULL, true),
			 DD_STONITH_UNSURE);
	assert_int_equal(dd_stonith_classify(DD_CF_ANS_OK, NULL, true),
			 DD_STONITH_UNSURE);
}

static void test_older(void **state)
{
	dd_cf_tunnel a = {.name = "dd-e-cp-b", .created_us = 1000};
	dd_cf_tunnel b = {.name = "dd-e-cp-a", .created_us = 2000};

	(void)state;
	assert_true(dd_stonith_older(&a, &b));
	assert_false(dd_stonith_older(&b, &a));
	/* Same microsecond: the name decides, the same way on both sides. */
	b.created_us = 1000;
	assert_true(dd_stonith_older(&b, &a));
	assert_false(dd_stonith_older(&a, &b));
	assert_false(dd_stonith_older(&a, &a));
}

static void test_new_refuses_bad_opts(void **state)
{
	uv_loop_t loop;
	dd_stonith *st = (void *)1;
	dd_stonith_opts o = {.env = "e", .own_id = "", .own_name = "n"};
	dd_stonith_ops bad = ops;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(dd_stonith_new(&loop, &o, &ops, NULL, &st),
			 DD_ERR_CONFIG);
	assert_null(st);
	o.own_id = "id";
	bad.poweroff = NULL;
	assert_int_equal(dd_stonith_new(&loop, &o, &bad, NULL, &st),
			 DD_ERR_CONFIG);
	uv_loop_close(&loop);
}

/* --- eviction ----------------------------------------------------------- */

static void test_evicts_older_only_after_own_connections(void **state)
{
	struct world w;
	struct cp *cp;
	int old, own, other_env;
	unsigned want = 6;

	(void)state;
	world_init(&w);
	old = add_tunnel(&w, "old", "dd-pr-7-cp-old", 1000, 2);
	other_env = add_tunnel(&w, "x", "dd-pr-70-cp-x", 500, 1);
	own = add_tunnel(&w, "new", "dd-pr-7-cp-new", 2000, 0);
	cp = add_cp(&w, own, true);
	dd_stonith_start(cp->st);
	/* Many reads of our tunnel without connections: nobody is touched. */
	run_until(&w, gets_at_least, &want);
	assert_int_equal(w.lists, 0);
	assert_int_equal(w.dels, 0);
	assert_false(w.t[old].deleted);

	w.t[own].connections = 1;
	run_until(&w, eviction_done, cp);
	assert_true(w.t[old].deleted);
	assert_false(w.t[other_env].deleted); /* another env's prefix */
	assert_false(w.t[own].deleted);
	assert_int_equal(dd_stonith_evicted_count(cp->st), 1);
	assert_int_equal(dd_stonith_get_state(cp->st), DD_STONITH_SERVING);
	assert_int_equal(cp->poweroffs, 0);
	world_free(&w);
}

static void test_list_is_retried(void **state)
{
	struct world w;
	struct cp *cp;
	int old;

	(void)state;
	world_init(&w);
	old = add_tunnel(&w, "old", "dd-pr-7-cp-old", 1000, 1);
	cp = add_cp(&w, add_tunnel(&w, "new", "dd-pr-7-cp-new", 2000, 1), true);
	w.list_fail = 3;
	dd_stonith_start(cp->st);
	run_until(&w, eviction_done, cp);
	assert_int_equal(w.lists, 4);
	assert_true(w.t[old].deleted);
	world_free(&w);
}

static void test_unconfirmed_delete_is_retried(void **state)
{
	struct world w;
	struct cp *cp;
	int old;
	unsigned want = 4;

	(void)state;
	world_init(&w);
	old = add_tunnel(&w, "old", "dd-pr-7-cp-old", 1000, 1);
	cp = add_cp(&w, add_tunnel(&w, "new", "dd-pr-7-cp-new", 2000, 1), true);
	w.del_force = DD_CF_ANS_AMBIGUOUS;
	dd_stonith_start(cp->st);
	run_until(&w, lists_at_least, &want);
	assert_false(dd_stonith_eviction_done(cp->st));
	assert_true(w.dels >= 3);
	w.del_force = DD_CF_ANS_OK;
	run_until(&w, eviction_done, cp);
	assert_true(w.t[old].deleted);
	world_free(&w);
}

/* Two CPs of one env start together; only the older one goes. */
static void duel(int64_t created_a, const char *name_a, int64_t created_b,
		 const char *name_b, bool a_survives)
{
	struct world w;
	struct cp *a, *b, *loser, *winner;

	world_init(&w);
	a = add_cp(&w, add_tunnel(&w, "ida", name_a, created_a, 1), true);
	b = add_cp(&w, add_tunnel(&w, "idb", name_b, created_b, 1), true);
	dd_stonith_start(a->st);
	dd_stonith_start(b->st);
	loser = a_survives ? b : a;
	winner = a_survives ? a : b;
	run_until(&w, powered_off, loser);
	run_until(&w, eviction_done, winner);
	run_until(&w, eviction_done, loser);
	assert_int_equal(dd_stonith_get_state(loser->st), DD_STONITH_EVICTED);
	assert_int_equal(loser->drains, 1);
	assert_int_equal(loser->poweroffs, 1);
	assert_string_equal(loser->why, "drained");
	assert_int_equal(dd_stonith_get_state(winner->st), DD_STONITH_SERVING);
	assert_int_equal(winner->poweroffs, 0);
	assert_false(w.t[winner->tunnel].deleted);
	assert_true(w.t[loser->tunnel].deleted);
	assert_int_equal(dd_stonith_evicted_count(winner->st), 1);
	assert_int_equal(dd_stonith_evicted_count(loser->st), 0);
	/* Only the survivor re-points the hostname at itself. */
	assert_int_equal(winner->claims, 1);
	assert_int_equal(loser->claims, 0);
	world_free(&w);
}

static void test_tie_break_newest_wins(void **state)
{
	(void)state;
	duel(1000, "dd-pr-7-cp-a", 2000, "dd-pr-7-cp-b", false);
	duel(2000, "dd-pr-7-cp-a", 1000, "dd-pr-7-cp-b", true);
	/* The same created_at: the greater name wins, on both sides. */
	duel(1000, "dd-pr-7-cp-b", 1000, "dd-pr-7-cp-a", true);
	duel(1000, "dd-pr-7-cp-a", 1000, "dd-pr-7-cp-b", false);
}

static void test_outage_evicts_nobody(void **state)
{
	struct world w;
	struct cp *old, *neu;
	unsigned want = 40;

	(void)state;
	world_init(&w);
	old = add_cp(&w, add_tunnel(&w, "old", "dd-pr-7-cp-old", 1000, 1),
		     true);
	neu = add_cp(&w, add_tunnel(&w, "new", "dd-pr-7-cp-new", 2000, 1),
		     true);
	w.list_fail = 1000000;
	w.get_force = DD_CF_ANS_AMBIGUOUS;
	w.del_force = DD_CF_ANS_AMBIGUOUS;
	dd_stonith_start(old->st);
	dd_stonith_start(neu->st);
	dd_stonith_cloudflared_exited(old->st); /* even with a dead connector */
	run_until(&w, gets_at_least, &want);
	assert_int_equal(w.dels, 0);
	assert_false(w.t[old->tunnel].deleted);
	assert_int_equal(old->drains + old->poweroffs, 0);
	assert_int_equal(neu->drains + neu->poweroffs, 0);
	assert_int_equal(dd_stonith_get_state(old->st), DD_STONITH_SERVING);

	/* The API comes back: the cut-over completes. */
	w.list_fail = 0;
	w.get_force = DD_CF_ANS_OK;
	w.del_force = DD_CF_ANS_OK;
	run_until(&w, powered_off, old);
	assert_int_equal(neu->poweroffs, 0);
	world_free(&w);
}

/* --- the self-watchdog -------------------------------------------------- */

static void watch_404(bool verified, bool expect_evicted)
{
	struct world w;
	struct cp *cp;
	unsigned want = 30;

	world_init(&w);
	cp = add_cp(&w, add_tunnel(&w, "own", "dd-pr-7-cp-own", 1000, 1),
		    verified);
	w.get_force = DD_CF_ANS_NOT_FOUND;
	dd_stonith_start(cp->st);
	dd_stonith_cloudflared_exited(cp->st);
	if (expect_evicted) {
		run_until(&w, powered_off, cp);
	} else {
		run_until(&w, gets_at_least, &want);
		assert_int_equal(cp->drains, 0);
		assert_int_equal(dd_stonith_get_state(cp->st),
				 DD_STONITH_SERVING);
	}
	world_free(&w);
}

static void test_404_counts_only_on_verified_account(void **state)
{
	(void)state;
	watch_404(false, false);
	watch_404(true, true);
}

static void test_ambiguous_never_counts(void **state)
{
	static const dd_cf_answer answers[] = {DD_CF_ANS_AMBIGUOUS,
					       DD_CF_ANS_REFUSED};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct world w;
		struct cp *cp;
		unsigned want = 30;

		world_init(&w);
		cp = add_cp(&w, add_tunnel(&w, "own", "dd-pr-7-cp-own", 1000,
					   1), true);
		w.get_force = answers[i];
		dd_stonith_start(cp->st);
		dd_stonith_cloudflared_exited(cp->st);
		run_until(&w, gets_at_least, &want);
		assert_int_equal(cp->drains, 0);
		world_free(&w);
	}
}

/* Without a cloudflared exit, it takes the threshold of gone readings. */
static void test_gone_threshold_without_exit(void **state)
{
	struct world w;
	struct cp *cp;
	int own;

	(void)state;
	world_init(&w);
	own = add_tunnel(&w, "own", "dd-pr-7-cp-own", 1000, 1);
	cp = add_cp(&w, own, true);
	w.t[own].deleted = true;
	dd_stonith_start(cp->st);
	run_until(&w, powered_off, cp);
	/* evict-wait reads count too: at least the 3 of the watchdog. */
	assert_true(w.gets >= 3);
	assert_string_equal(cp->why, "drained");
	world_free(&w);
}

static void test_drain_deadline_powers_off(void **state)
{
	struct world w;
	struct cp *cp;
	int own;

	(void)state;
	world_init(&w);
	own = add_tunnel(&w, "own", "dd-pr-7-cp-own", 1000, 1);
	cp = add_cp(&w, own, true);
	cp->auto_drain = false; /* a WebSocket that never closes */
	dd_stonith_start(cp->st);
	w.t[own].deleted = true;
	dd_stonith_cloudflared_exited(cp->st);
	run_until(&w, powered_off, cp);
	assert_int_equal(cp->drains, 1);
	assert_int_equal(cp->poweroffs, 1);
	assert_string_equal(cp->why, "drain deadline passed");
	assert_int_equal(dd_stonith_get_state(cp->st), DD_STONITH_EVICTED);
	/* A late drain does not power off twice. */
	dd_stonith_drained(cp->st);
	assert_int_equal(cp->poweroffs, 1);
	world_free(&w);
}

static void test_free_with_answers_pending(void **state)
{
	struct world w;
	struct cp *cp;

	(void)state;
	world_init(&w);
	cp = add_cp(&w, add_tunnel(&w, "own", "dd-pr-7-cp-own", 1000, 1),
		    true);
	dd_stonith_start(cp->st);
	dd_stonith_cloudflared_exited(cp->st); /* a get is now queued */
	assert_true(w.nq > 0);
	world_free(&w); /* ASan: no use after free when it answers */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_older),
		cmocka_unit_test(test_new_refuses_bad_opts),
		cmocka_unit_test(test_evicts_older_only_after_own_connections),
		cmocka_unit_test(test_list_is_retried),
		cmocka_unit_test(test_unconfirmed_delete_is_retried),
		cmocka_unit_test(test_tie_break_newest_wins),
		cmocka_unit_test(test_outage_evicts_nobody),
		cmocka_unit_test(test_404_counts_only_on_verified_account),
		cmocka_unit_test(test_ambiguous_never_counts),
		cmocka_unit_test(test_gone_threshold_without_exit),
		cmocka_unit_test(test_drain_deadline_powers_off),
		cmocka_unit_test(test_free_with_answers_pending),
	};

	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
