/*
 * The decision half of reaping (cp/cp_reap.h): which tunnels, CNAMEs and
 * Access apps may be deleted given a listing, the store's agents, the
 * queued dead agents, the clock, the grace, the env, and whether this CP
 * serves and the view is whole. Every rule is tested both ways: what
 * goes, and the neighbour that must stay. The passes themselves run end
 * to end in tests/e2e/test_reap.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "cp/cp_reap.h"

#define ENV "pr-7"
#define DOMAIN "example.com"
#define GRACE_MS (900 * 1000)
/* 2026-11-30T06:00:00Z */
#define NOW_MS INT64_C(1796018400000)

#define U(n) "0000000" #n "-1111-4222-8333-444444444444"
#define OWN_CP "dd-pr-7-cp-" U(0)

/* RFC 3339 for NOW_MS - ago_s. */
static const char *ago(int64_t ago_s)
{
	static char buf[8][40];
	static unsigned k;
	int64_t s = NOW_MS / 1000 - ago_s;
	char *b = buf[k++ % 8];
	time_t t = (time_t)s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(b, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return b;
}

static json_t *tunnel(const char *id, const char *name, const char *created,
		      int deleted)
{
	json_t *t = json_pack("{s:s, s:s, s:n}", "id", id, "name", name,
			      "deleted_at");

	if (created != NULL)
		json_object_set_new(t, "created_at", json_string(created));
	if (deleted)
		json_object_set_new(t, "deleted_at",
				    json_string(ago(10)));
	return t;
}

/* The listing every test starts from: our CP, an hour old. */
static json_t *listing(void)
{
	json_t *l = json_array();

	json_array_append_new(l, tunnel("cp-own", OWN_CP, ago(3600), 0));
	return l;
}

static void add(json_t *l, const char *id, const char *name,
		const char *created)
{
	json_array_append_new(l, tunnel(id, name, created, 0));
}

/*
 * Every planning test: the listing (our CP, an hour old, plus what the
 * test adds), the input over it, and the last plan made. A test states
 * only what differs from this.
 */
struct fx {
	json_t *l;
	dd_cp_reap_input in;
	dd_cp_reap_plan p;
};

/* A fresh listing and the input every test starts from. */
static void restart(struct fx *f)
{
	json_decref(f->l);
	f->l = listing();
	f->in = (dd_cp_reap_input){.env = ENV, .domain = DOMAIN,
				   .own_cp = OWN_CP, .tunnels = f->l,
				   .serving = true, .store_complete = true,
				   .now_ms = NOW_MS, .grace_ms = GRACE_MS,
				   .max = 20};
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	restart(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	dd_cp_reap_plan_clear(&f->p);
	json_decref(f->l);
	free(f);
	return 0;
}

/* Plans f->in afresh (the last plan is released first). */
static const dd_cp_reap_plan *plan(struct fx *f)
{
	dd_cp_reap_plan_clear(&f->p);
	assert_int_equal(dd_cp_reap_plan_make(&f->in, &f->p), DD_OK);
	return &f->p;
}

static void with_dead(struct fx *f, const dd_cp_reap_gone *v, size_t n)
{
	f->in.dead = v;
	f->in.n_dead = n;
}

static void with_known(struct fx *f, const dd_cp_reap_known *v, size_t n)
{
	f->in.known = v;
	f->in.n_known = n;
}

static const dd_cp_reap_item *find(const dd_cp_reap_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

static void test_env_tunnel(void **state)
{
	(void)state;
	assert_true(dd_cp_reap_env_tunnel("dd-pr-7-agent-" U(1), ENV, "agent"));
	assert_true(dd_cp_reap_env_tunnel("dd-pr-7-agent-0123456789abcdef",
					  ENV, "agent"));
	assert_true(dd_cp_reap_env_tunnel(OWN_CP, ENV, "cp"));
	assert_false(dd_cp_reap_env_tunnel(OWN_CP, ENV, "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-7-agent-" U(1), ENV, "cp"));
	/* Other envs, including ones that share our env as a prefix. */
	assert_false(dd_cp_reap_env_tunnel("dd-pr-70-agent-" U(1), ENV,
					   "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-8-agent-" U(1), ENV,
					   "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-agent-agent-" U(1), "pr",
					   "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-7-agent-x-agent-" U(1), ENV,
					   "agent"));
	/* Tails: empty, upper case, foreign characters, too long. */
	assert_false(dd_cp_reap_env_tunnel("dd-pr-7-agent-", ENV, "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-7-agent-ABCDEF", ENV,
					   "agent"));
	assert_false(dd_cp_reap_env_tunnel("dd-pr-7-agent-abc.d", ENV,
					   "agent"));
	assert_true(dd_cp_reap_env_tunnel(
		"dd-pr-7-agent-"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ENV, "agent"));
	assert_false(dd_cp_reap_env_tunnel(
		"dd-pr-7-agent-"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
		ENV, "agent"));
	assert_false(dd_cp_reap_env_tunnel("pr-7-agent-" U(1), ENV, "agent"));
	assert_false(dd_cp_reap_env_tunnel(NULL, ENV, "agent"));
}

/* Unknown tunnels: only this env's agents, unclaimed, past the grace. */
static void test_orphans(void **state)
{
	struct fx *f = *state;
	json_t *l = f->l;
	dd_cp_reap_known known[3] = {
		{.agent_id = "dd-pr-7-agent-" U(2)},
		{.agent_id = "dd-pr-7-agent-aaaaaaaaaaaaaaaa",
		 .tunnel_id = "t-claimed"},
		{.agent_id = "vm-x", .host_label = "dd-pr-7-agent-" U(3)},
	};
	const dd_cp_reap_plan *p;
	const dd_cp_reap_item *it;

	add(l, "t-old", "dd-pr-7-agent-" U(1), ago(3600));
	add(l, "t-young", "dd-pr-7-agent-" U(4), ago(60));
	add(l, "t-edge", "dd-pr-7-agent-" U(5), ago(900));
	add(l, "t-past", "dd-pr-7-agent-" U(6), ago(901));
	add(l, "t-undated", "dd-pr-7-agent-" U(7), NULL);
	add(l, "t-known-name", "dd-pr-7-agent-" U(2), ago(3600));
	add(l, "t-claimed", "dd-pr-7-agent-" U(8), ago(3600));
	add(l, "t-known-host", "dd-pr-7-agent-" U(3), ago(3600));
	add(l, "t-other-env", "dd-pr-8-agent-" U(1), ago(3600));
	add(l, "t-cp-old", "dd-pr-7-cp-" U(9), ago(7200));
	add(l, "t-foreign", "my-own-tunnel", ago(7200));
	add(l, "t-ambiguous", "dd-pr-7-agent-x-agent-" U(1), ago(7200));
	add(l, "bad/id", "dd-pr-7-agent-" U(9), ago(7200));
	json_array_append_new(l, tunnel("t-deleted", "dd-pr-7-agent-"
					"bbbbbbbbbbbbbbbb", ago(7200), 1));
	with_known(f, known, 3);
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->n, 2);
	/* Oldest first. */
	assert_string_equal(p->items[0].tunnel_id, "t-old");
	assert_string_equal(p->items[1].tunnel_id, "t-past");
	it = find(p, "dd-pr-7-agent-" U(1));
	if (it == NULL) { /* fail() is not noreturn to -Wnull-dereference */
		fail();
		return;
	}
	assert_false(it->dead);
	assert_string_equal(it->cname_target, "t-old");
	assert_string_equal(it->host, "dd-pr-7-agent-" U(1) "." DOMAIN);
	assert_int_equal(it->age_ms, 3600 * 1000);
	assert_int_equal(p->young, 2);   /* t-young, t-edge (exactly grace) */
	assert_int_equal(p->undated, 1);
	assert_int_equal(p->deferred, 0);

	/* A longer grace keeps the 901 s one too. */
	f->in.grace_ms = 3000 * 1000;
	p = plan(f);
	assert_int_equal(p->n, 1);
	assert_string_equal(p->items[0].tunnel_id, "t-old");
}

static void add_conn(json_t *l, const char *id, const char *name,
		     const char *key, json_t *v)
{
	json_t *t = tunnel(id, name, ago(3600), 0);

	json_object_set_new(t, key, v);
	json_array_append_new(l, t);
}

/*
 * An unclaimed tunnel with a connector is a live agent this CP lost
 * (say, a failed hydrate): kept. Only connector-less ones are orphans.
 */
static void test_connected(void **state)
{
	struct fx *f = *state;
	json_t *l = f->l, *conns = json_pack("[{s:s}]", "id", "c1");
	const dd_cp_reap_plan *p;

	add_conn(l, "t-conns", "dd-pr-7-agent-" U(1), "connections", conns);
	add_conn(l, "t-healthy", "dd-pr-7-agent-" U(2), "status",
		 json_string("healthy"));
	add_conn(l, "t-degraded", "dd-pr-7-agent-" U(3), "status",
		 json_string("degraded"));
	add_conn(l, "t-weird", "dd-pr-7-agent-" U(4), "status",
		 json_string("rebooting"));
	add_conn(l, "t-bad-conns", "dd-pr-7-agent-" U(5), "connections",
		 json_string("?"));
	add_conn(l, "t-just-left", "dd-pr-7-agent-" U(6), "conns_inactive_at",
		 json_string(ago(60)));
	/* These have none: orphans. */
	add_conn(l, "t-down", "dd-pr-7-agent-" U(7), "status",
		 json_string("down"));
	add_conn(l, "t-inactive", "dd-pr-7-agent-" U(8), "status",
		 json_string("inactive"));
	add_conn(l, "t-left-long-ago", "dd-pr-7-agent-" U(9),
		 "conns_inactive_at", json_string(ago(1000)));
	add_conn(l, "t-empty", "dd-pr-7-agent-aaaaaaaaaaaaaaaa", "connections",
		 json_array());
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->connected, 6);
	assert_int_equal(p->n, 4);
	for (size_t i = 0; i < p->n; i++)
		assert_non_null(strstr("t-down t-inactive t-left-long-ago t-empty",
				       p->items[i].tunnel_id));
}

/* Nothing at all unless this CP serves its env and the view is whole. */
static void test_verdicts(void **state)
{
	struct fx *f = *state;
	dd_cp_reap_gone dead = {.agent_id = "dd-pr-7-agent-" U(2),
				.tunnel_id = "t-dead"};
	const dd_cp_reap_plan *p;

	add(f->l, "t-old", "dd-pr-7-agent-" U(1), ago(3600));
	add(f->l, "t-dead", "dd-pr-7-agent-" U(2), ago(3600));
	with_dead(f, &dead, 1);
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->n, 2);

	f->in.serving = false;
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_NOT_SERVING);
	assert_int_equal(p->n, 0);
	assert_int_equal(p->dead_used, 0); /* the dead wait */
	f->in.serving = true;

	f->in.degraded = true;
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_DEGRADED);
	assert_int_equal(p->n, 0);
	assert_int_equal(p->dead_used, 0);
	f->in.degraded = false;

	f->in.tunnels = NULL; /* no listing at all */
	assert_int_equal(plan(f)->verdict, DD_REAP_DEGRADED);
	f->in.tunnels = f->l;

	f->in.own_cp = "";
	assert_int_equal(plan(f)->verdict, DD_REAP_NOT_LISTED);
	f->in.own_cp = "dd-pr-7-cp-" U(5); /* not in the listing */
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_NOT_LISTED);
	assert_int_equal(p->n, 0);
}

/* Another CP of our env: older is fine, newer (or undated) holds us. */
static void test_newer_cp(void **state)
{
	struct fx *f = *state;
	const dd_cp_reap_plan *p;

	add(f->l, "t-old", "dd-pr-7-agent-" U(1), ago(3600));
	add(f->l, "cp-older", "dd-pr-7-cp-" U(1), ago(7200));
	add(f->l, "cp-other-env", "dd-pr-8-cp-" U(1), ago(10));
	json_array_append_new(f->l, tunnel("cp-gone", "dd-pr-7-cp-" U(3),
					   ago(10), 1));
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->n, 1);

	add(f->l, "cp-newer", "dd-pr-7-cp-" U(2), ago(10));
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_NEWER_CP);
	assert_int_equal(p->n, 0);

	/* Same instant: the larger name is newer (STONITH's tie-break). */
	restart(f);
	add(f->l, "cp-same", "dd-pr-7-cp-" U(1), ago(3600));
	assert_int_equal(plan(f)->verdict, DD_REAP_NEWER_CP);
	f->in.own_cp = "dd-pr-7-cp-" U(1);
	assert_int_equal(plan(f)->verdict, DD_REAP_GO);

	/* An undated CP might be newer; so might we, undated: hold. */
	restart(f);
	add(f->l, "cp-undated", "dd-pr-7-cp-" U(1), NULL);
	assert_int_equal(plan(f)->verdict, DD_REAP_NEWER_CP);
	f->in.own_cp = "dd-pr-7-cp-" U(1);
	assert_int_equal(plan(f)->verdict, DD_REAP_NOT_LISTED);
}

/* Dead agents: by stored id at any age, by name past the grace. */
static void test_dead(void **state)
{
	struct fx *f = *state;
	json_t *l = f->l;
	dd_cp_reap_gone dead[6] = {
		{.agent_id = "dd-pr-7-agent-" U(1), .tunnel_id = "t-1",
		 .hostname = "dd-pr-7-agent-" U(1) "." DOMAIN},
		{.agent_id = "dd-pr-7-agent-" U(2), .hostname = "vm-2"},
		{.agent_id = "dd-pr-7-agent-" U(3)},
		{.agent_id = "dd-pr-7-agent-" U(4), .tunnel_id = "t-gone"},
		{.agent_id = "dd-pr-7-agent-" U(5), .tunnel_id = "cp-own"},
		{.agent_id = "dd-pr-7-agent-" U(6), .tunnel_id = "t-claimed"},
	};
	dd_cp_reap_known known = {.agent_id = "dd-pr-7-agent-" U(9),
				  .tunnel_id = "t-claimed"};
	const dd_cp_reap_plan *p;
	const dd_cp_reap_item *it;

	add(l, "t-1", "dd-pr-7-agent-" U(1), ago(30));   /* young, its id */
	add(l, "t-2", "dd-pr-7-agent-" U(2), ago(3600)); /* by name */
	add(l, "t-3", "dd-pr-7-agent-" U(3), ago(30));   /* young, name */
	add(l, "t-claimed", "dd-pr-7-agent-" U(8), ago(3600));
	with_dead(f, dead, 6);
	with_known(f, &known, 1);
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->dead_used, 6);
	assert_int_equal(p->n, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_true(p->items[i].dead);
		assert_string_equal(p->items[i].name, dead[i].agent_id);
	}
	it = &p->items[0];
	assert_string_equal(it->tunnel_id, "t-1");
	assert_string_equal(it->cname_target, "t-1");
	assert_string_equal(it->host, dead[0].hostname);
	it = &p->items[1];
	assert_string_equal(it->tunnel_id, "t-2");
	assert_string_equal(it->cname_target, "t-2");
	/* A host outside the domain: the tunnel's own name in it. */
	assert_string_equal(it->host, "dd-pr-7-agent-" U(2) "." DOMAIN);
	/* A young tunnel of the same name may be a re-registration's. */
	it = &p->items[2];
	assert_string_equal(it->tunnel_id, "");
	assert_string_equal(it->cname_target, "");
	/* Its tunnel is already gone: its records still go. */
	it = &p->items[3];
	assert_string_equal(it->tunnel_id, "");
	assert_string_equal(it->cname_target, "t-gone");
	/* A stored id that is our CP's, or a live agent's: untouched. */
	assert_string_equal(p->items[4].tunnel_id, "");
	assert_string_equal(p->items[4].cname_target, "");
	assert_string_equal(p->items[5].tunnel_id, "");
	assert_string_equal(p->items[5].cname_target, "");
	/* t-3 is young; t-claimed is claimed: no orphans. */
	assert_int_equal(p->young, 1);
}

/* A dead agent registered again since is alive: dropped, not reaped. */
static void test_revived(void **state)
{
	struct fx *f = *state;
	dd_cp_reap_gone dead = {.agent_id = "dd-pr-7-agent-" U(1),
				.tunnel_id = "t-1"};
	dd_cp_reap_known known = {.agent_id = "dd-pr-7-agent-" U(1),
				  .tunnel_id = "t-new"};
	const dd_cp_reap_plan *p;

	add(f->l, "t-1", "dd-pr-7-agent-" U(1), ago(3600));
	add(f->l, "t-new", "dd-pr-7-agent-" U(1), ago(5));
	with_dead(f, &dead, 1);
	with_known(f, &known, 1);
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_int_equal(p->dead_used, 1);
	assert_int_equal(p->revived, 1);
	/* Its name is claimed again, so neither tunnel is an orphan. */
	assert_int_equal(p->n, 0);
}

/* Bounded: max victims, dead first, the oldest orphans next. */
static void test_max(void **state)
{
	struct fx *f = *state;
	dd_cp_reap_gone dead[3] = {
		{.agent_id = "dd-pr-7-agent-" U(7)},
		{.agent_id = "dd-pr-7-agent-" U(8)},
		{.agent_id = "dd-pr-7-agent-" U(9)},
	};
	const dd_cp_reap_plan *p;

	add(f->l, "t-1", "dd-pr-7-agent-" U(1), ago(5000));
	add(f->l, "t-2", "dd-pr-7-agent-" U(2), ago(9000));
	add(f->l, "t-3", "dd-pr-7-agent-" U(3), ago(7000));
	add(f->l, "t-4", "dd-pr-7-agent-" U(4), ago(3000));
	f->in.max = 2;
	p = plan(f);
	assert_int_equal(p->n, 2);
	assert_string_equal(p->items[0].tunnel_id, "t-2");
	assert_string_equal(p->items[1].tunnel_id, "t-3");
	assert_int_equal(p->deferred, 2);

	with_dead(f, dead, 3);
	p = plan(f);
	assert_int_equal(p->n, 2);
	assert_int_equal(p->dead_used, 2);
	assert_true(p->items[0].dead && p->items[1].dead);
	assert_int_equal(p->deferred, 4);

	f->in.max = 0; /* treated as 1 */
	assert_int_equal(plan(f)->n, 1);
}

/* Unreadable store rows: a live agent might hide there. Dead still go. */
static void test_store_incomplete(void **state)
{
	struct fx *f = *state;
	dd_cp_reap_gone dead = {.agent_id = "dd-pr-7-agent-" U(2),
				.tunnel_id = "t-2"};
	const dd_cp_reap_plan *p;

	add(f->l, "t-1", "dd-pr-7-agent-" U(1), ago(3600));
	add(f->l, "t-2", "dd-pr-7-agent-" U(2), ago(3600));
	f->in.store_complete = false;
	with_dead(f, &dead, 1);
	p = plan(f);
	assert_int_equal(p->verdict, DD_REAP_GO);
	assert_true(p->orphans_held);
	assert_int_equal(p->n, 1);
	assert_true(p->items[0].dead);
	assert_string_equal(p->items[0].tunnel_id, "t-2");
}

static json_t *cname(const char *id, const char *name, const char *content)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name,
			 "type", "CNAME", "content", content);
}

static void test_cnames(void **state)
{
	json_t *dns = json_array(), *ids;

	(void)state;
	json_array_append_new(dns, cname("r1", "a.example.com",
					 "t-1.cfargotunnel.com"));
	json_array_append_new(dns, cname("r2", "a-api.example.com",
					 "T-1.CFARGOTUNNEL.COM"));
	json_array_append_new(dns, cname("r3", "b.example.com",
					 "t-2.cfargotunnel.com"));
	json_array_append_new(dns, cname("r4", "c.example.com",
					 "t-1.cfargotunnel.com.evil.net"));
	json_array_append_new(dns, cname("r5", "d.example.com",
					 "xt-1.cfargotunnel.com"));
	json_array_append_new(dns, cname("bad/id", "e.example.com",
					 "t-1.cfargotunnel.com"));
	json_array_append_new(dns, json_pack("{s:s, s:s, s:s, s:s}", "id",
					     "r6", "type", "TXT", "name", "f",
					     "content", "t-1.cfargotunnel.com"));
	json_array_append_new(dns, cname("r7", "g.example.com",
					 "t-1.cfargotunnel.com"));
	ids = dd_cp_reap_cnames(dns, "t-1", 10);
	assert_non_null(ids);
	assert_int_equal(json_array_size(ids), 3);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), "r1");
	assert_string_equal(json_string_value(json_array_get(ids, 1)), "r2");
	assert_string_equal(json_string_value(json_array_get(ids, 2)), "r7");
	json_decref(ids);
	ids = dd_cp_reap_cnames(dns, "t-1", 2);
	assert_int_equal(json_array_size(ids), 2);
	json_decref(ids);
	/* No target, nothing. */
	ids = dd_cp_reap_cnames(dns, "", 10);
	assert_int_equal(json_array_size(ids), 0);
	json_decref(ids);
	ids = dd_cp_reap_cnames(NULL, "t-1", 10);
	assert_int_equal(json_array_size(ids), 0);
	json_decref(ids);
	json_decref(dns);
}

static json_t *app(const char *id, const char *domain)
{
	return json_pack("{s:s, s:s, s:s}", "id", id, "name", id, "domain",
			 domain);
}

static void test_apps(void **state)
{
	const char *host = "dd-pr-7-agent-" U(1) ".example.com";
	json_t *apps = json_array(), *ids;

	(void)state;
	json_array_append_new(apps, app("a-host", host));
	json_array_append_new(apps, app("a-path", "dd-pr-7-agent-" U(1)
					".example.com/health"));
	json_array_append_new(apps, app("a-api", "dd-pr-7-api-" U(1)
					".example.com"));
	json_array_append_new(apps, app("a-extra", "dd-pr-7-agent-" U(1)
					"-oracle.example.com"));
	json_array_append_new(apps, app("a-wild", "*.example.com"));
	json_array_append_new(apps, app("a-other", "dd-pr-7-agent-" U(2)
					".example.com"));
	json_array_append_new(apps, app("a-cp", "pr-7.example.com"));
	json_array_append_new(apps, app("bad id", host));
	ids = dd_cp_reap_apps(apps, host, 10);
	assert_non_null(ids);
	assert_int_equal(json_array_size(ids), 4);
	assert_string_equal(json_string_value(json_array_get(ids, 0)),
			    "a-host");
	assert_string_equal(json_string_value(json_array_get(ids, 3)),
			    "a-extra");
	json_decref(ids);
	ids = dd_cp_reap_apps(apps, host, 1);
	assert_int_equal(json_array_size(ids), 1);
	json_decref(ids);
	ids = dd_cp_reap_apps(apps, "", 10);
	assert_int_equal(json_array_size(ids), 0);
	json_decref(ids);
	json_decref(apps);
}

/* Allocation failures are NOMEM with nothing planned, never a verdict. */
static void test_alloc_failures(void **state)
{
	struct fx *f = *state;
	dd_cp_reap_gone dead = {.agent_id = "dd-pr-7-agent-" U(2)};
	dd_cp_reap_known known = {.agent_id = "dd-pr-7-agent-" U(3),
				  .tunnel_id = "t-3"};
	dd_err_t rc;

	add(f->l, "t-1", "dd-pr-7-agent-" U(1), ago(3600));
	add(f->l, "t-2", "dd-pr-7-agent-" U(2), ago(3600));
	add(f->l, "t-3", "dd-pr-7-agent-" U(3), ago(3600));
	with_dead(f, &dead, 1);
	with_known(f, &known, 1);
	for (unsigned long n = 1;; n++) {
		dd_alloc_fail_at(n);
		rc = dd_cp_reap_plan_make(&f->in, &f->p);
		dd_alloc_fail_at(0);
		if (rc == DD_OK) {
			assert_int_equal(f->p.n, 2);
			break;
		}
		assert_int_equal(rc, DD_ERR_NOMEM);
		assert_null(f->p.items);
		assert_int_equal(f->p.n, 0);
		assert_true(n < 100);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_tunnel),
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_orphans),
		T(test_connected),
		T(test_verdicts),
		T(test_newer_cp),
		T(test_dead),
		T(test_revived),
		T(test_max),
		T(test_store_incomplete),
		T(test_alloc_failures),
#undef T
		cmocka_unit_test(test_cnames),
		cmocka_unit_test(test_apps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
