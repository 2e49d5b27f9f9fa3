/*
 * test_store.c: the CP's fleet store (src/cp/store*.c). A restart loses
 * nothing (write, close, reopen, read everything back) and the file is
 * in WAL mode; a newer schema is refused and an older one migrated in
 * one transaction; every write and its checks; the bounded status
 * history; export and import both ways, including a bad record that
 * skips the whole import and hostile exports; writes in order with
 * callbacks on the loop thread; reads while a write holds the lock;
 * allocation failure (ours and SQLite's) at every step. Each test gets
 * its own loop and temporary directory.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/json.h"
#include "cp/store.h"
#include "cp/store_int.h"

#define T0 INT64_C(1780000000000) /* 2026-05-28T20:26:40Z */

typedef struct fx {
	uv_loop_t loop;
	char dir[64];
	char path[128];
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	snprintf(f->dir, sizeof f->dir, "/tmp/dd-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/fleet.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char p[400];
	struct dirent *e;
	DIR *d;

	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	d = opendir(f->dir);
	assert_non_null(d);
	for (e = readdir(d); e != NULL; e = readdir(d)) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* --- helpers ------------------------------------------------------------ */

struct done {
	int calls;
	dd_err_t rc;
	size_t written, removed;
	char why[256];
};

static void on_done(const dd_store_result *r, void *ud)
{
	struct done *d = ud;

	d->calls++;
	d->rc = r->rc;
	d->written = r->written;
	d->removed = r->removed;
	assert_non_null(r->why);
	snprintf(d->why, sizeof d->why, "%s", r->why);
}

/* The outcome of a write just submitted (rc is what submission said). */
static dd_err_t settle(fx *f, struct done *d, dd_err_t rc)
{
	int want = d->calls + 1;

	if (rc)
		return rc;
	/* Never called back before the submission returned. */
	while (d->calls < want)
		uv_run(&f->loop, UV_RUN_ONCE);
	return d->rc;
}

static void on_closed(void *ud)
{
	(*(int *)ud)++;
}

static void close_store(fx *f, dd_store *s)
{
	int closed = 0;

	dd_store_close(s, on_closed, &closed);
	while (!closed)
		uv_run(&f->loop, UV_RUN_ONCE);
}

static dd_store *open_ok(fx *f, const char *path, const dd_store_opts *o)
{
	dd_store *s = NULL;
	char why[256];

	assert_int_equal(dd_store_open(&f->loop, path, o, &s, why, sizeof why),
			 DD_OK);
	assert_non_null(s);
	return s;
}

static void fill(char *dst, size_t size, char c, size_t n)
{
	assert_true(n < size);
	memset(dst, c, n);
	dst[n] = '\0';
}

/* A record with every field set. */
static void make_agent(dd_store_agent *a, const char *id, const char *vm,
		       int64_t t)
{
	dd_store_agent_init(a);
	snprintf(a->agent_id, sizeof a->agent_id, "%s", id);
	snprintf(a->hostname, sizeof a->hostname, "%s.example.com", id);
	snprintf(a->vm_name, sizeof a->vm_name, "%s", vm);
	snprintf(a->env, sizeof a->env, "production");
	snprintf(a->attestation_type, sizeof a->attestation_type, "tdx");
	a->status = DD_AGENT_HEALTHY;
	a->clean = true;
	a->has_owner = true;
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_USER, "posix4e",
					   12345678, &a->owner, NULL, 0),
			 DD_OK);
	a->ita.iat = t / 1000;
	a->ita.exp = t / 1000 + 600;
	snprintf(a->ita.tcb_status, sizeof a->ita.tcb_status, "UpToDate");
	snprintf(a->ita.attester_type, sizeof a->ita.attester_type, "TDX");
	fill(a->ita.mrtd, sizeof a->ita.mrtd, 'a', 96);
	fill(a->ita.report_data, sizeof a->ita.report_data, 'b', 128);
	a->ita.claims = json_pack("{s:s, s:s, s:I}", "attester_type", "TDX",
				  "tdx_mrtd", a->ita.mrtd, "exp",
				  (json_int_t)a->ita.exp);
	fill(a->noise_pubkey, sizeof a->noise_pubkey, 'c', 64);
	snprintf(a->tunnel_id, sizeof a->tunnel_id,
		 "6ff42ae2-765d-4adf-8112-31c55c1551ef");
	a->ingress = DD_INGRESS_TUNNEL;
	a->ingress_detail = json_pack("{s:s}", "account", "acct-1");
	a->n_extras = 2;
	snprintf(a->extras[0].label, sizeof a->extras[0].label, "oracle");
	a->extras[0].port = 8082;
	snprintf(a->extras[1].label, sizeof a->extras[1].label, "web");
	a->extras[1].port = 9000;
	a->last_seen_ms = t;
	a->registered_at_ms = t - 1000;
	a->health = json_pack(
		"{s:i, s:[s, s], s:i, s:[{s:s, s:s}], s:i, s:i, s:i,"
		" s:[{s:s, s:I, s:I}], s:[{s:s, s:s, s:I, s:I}],"
		" s:[{s:s, s:{s:[i, s, n]}}]}",
		"deployment_count", 2, "deployment_names", "busybox",
		"cloudflared", "unit_count", 1, "units", "app_name", "dd-agent",
		"kind", "agent", "cpu_percent", 3, "memory_used_mb", 812,
		"memory_total_mb", 16003, "nets", "iface", "eth0", "rx_bytes",
		(json_int_t)1, "tx_bytes", (json_int_t)2, "disks", "mount", "/",
		"fstype", "ext4", "used_bytes", (json_int_t)1, "total_bytes",
		(json_int_t)2, "oracles", "app_name", "human-readonly",
		"sample", "v", 1, "x", NULL);
	assert_non_null(a->ita.claims);
	assert_non_null(a->ingress_detail);
	assert_non_null(a->health);
}

/* The CP's own entry (spec 6.2): no tunnel, owner, extras or snapshot. */
static void make_cp(dd_store_agent *a, int64_t t)
{
	dd_store_agent_init(a);
	snprintf(a->agent_id, sizeof a->agent_id, "control-plane");
	snprintf(a->hostname, sizeof a->hostname, "app.example.com");
	snprintf(a->vm_name, sizeof a->vm_name, "dd-production-cp");
	snprintf(a->env, sizeof a->env, "production");
	snprintf(a->attestation_type, sizeof a->attestation_type, "tdx");
	a->status = DD_AGENT_HEALTHY;
	a->last_seen_ms = t;
}

static void assert_same(const dd_store_agent *x, const dd_store_agent *y)
{
	json_t *a = NULL, *b = NULL;
	char *sa, *sb;

	assert_int_equal(dd_store_agent_to_json(x, &a), DD_OK);
	assert_int_equal(dd_store_agent_to_json(y, &b), DD_OK);
	if (!json_equal(a, b)) {
		sa = json_dumps(a, JSON_SORT_KEYS);
		sb = json_dumps(b, JSON_SORT_KEYS);
		print_error("want %s\n got %s\n", sa, sb);
		free(sa);
		free(sb);
		fail();
	}
	json_decref(a);
	json_decref(b);
}

static size_t list_count(dd_store *s)
{
	dd_store_agent *v = NULL;
	size_t n = 0, skipped = 99;

	assert_int_equal(dd_store_list(s, &v, &n, &skipped), DD_OK);
	assert_int_equal(skipped, 0);
	dd_store_agents_free(v, n);
	return n;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		print_error("%s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		fail();
	}
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* --- restart, WAL, schema ------------------------------------------------ */

static void test_restart_keeps_everything(void **state)
{
	fx *f = *state;
	dd_store_opts o = {.history_keep = 8, .env = "production"};
	dd_store_agent a1, a2, cp, got, *v = NULL;
	dd_store_event *ev = NULL;
	dd_store_counts c;
	struct done d = {0};
	char wal[160];
	struct stat st;
	sqlite3 *raw = NULL;
	dd_store *s;
	size_t n;

	s = open_ok(f, f->path, &o);
	make_agent(&a1, "dd-production-agent-1", "vm-1", T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a1, on_done, &d)),
			 DD_OK);
	assert_int_equal(d.written, 1);
	assert_int_equal(d.removed, 0);
	assert_string_equal(d.why, "");
	make_agent(&a2, "dd-production-agent-2", "vm-2", T0 + 1);
	a2.tunnel_id[0] = '\0';
	a2.ingress = DD_INGRESS_DIRECT;
	snprintf(a2.ingress_url, sizeof a2.ingress_url,
		 "https://10.0.0.2:8081");
	json_decref(a2.ingress_detail);
	a2.ingress_detail = NULL;
	a2.has_owner = false;
	a2.read_only = true;
	a2.clean = false;
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &a2, 0, NULL,
						       on_done, &d)), DD_OK);
	make_cp(&cp, T0 + 2);
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &cp, 0, "seeded",
						       on_done, &d)), DD_OK);
	assert_int_equal(settle(f, &d, dd_store_mark_failure(s, a2.agent_id,
		DD_AGENT_STALE, T0 + 5000, "connect timeout", on_done, &d)),
		DD_OK);

	/* WAL while open: the -wal file holds the commits. */
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 0);
	/* SQLite gives the -wal and -shm files the database's mode. */
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	assert_int_equal(raw_int(raw, "SELECT version FROM schema_version"),
			 dd_store_schema_version());
	assert_int_equal(raw_int(raw, "PRAGMA application_id"),
			 DD_STORE_APP_ID);
	sqlite3_close(raw);
	close_store(f, s);
	/* The last close checkpoints: the WAL is folded into the file. */
	assert_int_not_equal(stat(wal, &st), 0);

	/* A restarted CP reads back every field. */
	s = open_ok(f, f->path, &o);
	a1.registered_at_ms = T0 - 1000;
	assert_int_equal(dd_store_get(s, a1.agent_id, &got), DD_OK);
	assert_same(&a1, &got);
	assert_non_null(got.health);
	assert_true(json_is_object(got.ita.claims));
	dd_store_agent_clear(&got);
	a2.status = DD_AGENT_STALE;
	a2.failures = 1;
	a2.last_failure_ms = T0 + 5000;
	snprintf(a2.last_error, sizeof a2.last_error, "connect timeout");
	assert_int_equal(dd_store_get(s, a2.agent_id, &got), DD_OK);
	assert_same(&a2, &got);
	dd_store_agent_clear(&got);
	cp.registered_at_ms = cp.last_seen_ms;
	assert_int_equal(dd_store_get(s, "control-plane", &got), DD_OK);
	assert_same(&cp, &got);
	assert_int_equal(json_object_size(got.health), 0);
	dd_store_agent_clear(&got);

	assert_int_equal(dd_store_list(s, &v, &n, NULL), DD_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].agent_id, "control-plane");
	assert_string_equal(v[1].agent_id, a1.agent_id);
	assert_string_equal(v[2].agent_id, a2.agent_id);
	dd_store_agents_free(v, n);

	assert_int_equal(dd_store_history(s, a2.agent_id, &ev, &n), DD_OK);
	assert_int_equal(n, 2);
	assert_true(ev[0].has_from);
	assert_int_equal(ev[0].from, DD_AGENT_HEALTHY);
	assert_int_equal(ev[0].to, DD_AGENT_STALE);
	assert_true(ev[0].at_ms == T0 + 5000);
	assert_string_equal(ev[0].reason, "connect timeout");
	assert_false(ev[1].has_from);
	assert_int_equal(ev[1].to, DD_AGENT_HEALTHY);
	assert_string_equal(ev[1].reason, "updated");
	dd_free(ev);
	assert_int_equal(dd_store_history(s, "control-plane", &ev, &n), DD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].reason, "seeded");
	dd_free(ev);

	assert_int_equal(dd_store_count(s, &c), DD_OK);
	assert_int_equal(c.agents, 3);
	assert_int_equal(c.by_status[DD_AGENT_HEALTHY], 2);
	assert_int_equal(c.by_status[DD_AGENT_STALE], 1);
	assert_int_equal(c.by_status[DD_AGENT_DEAD], 0);
	assert_true(c.oracles == 2);
	close_store(f, s);
	dd_store_agent_clear(&a1);
	dd_store_agent_clear(&a2);
	dd_store_agent_clear(&cp);
}

static void test_schema_refusals(void **state)
{
	fx *f = *state;
	dd_store_opts o = {0};
	dd_store *s = NULL;
	sqlite3 *raw = NULL;
	char why[256], p[200];
	FILE *fp;

	s = open_ok(f, f->path, NULL);
	close_store(f, s);
	/* A newer binary wrote this file: refused, and left as it was. */
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	raw_exec(raw, "UPDATE schema_version SET version = version + 1");
	sqlite3_close(raw);
	assert_int_equal(dd_store_open(&f->loop, f->path, NULL, &s, why,
				       sizeof why), DD_ERR_UNSUPPORTED);
	assert_null(s);
	assert_non_null(strstr(why, "newer"));
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	assert_int_equal(raw_int(raw, "SELECT version FROM schema_version"),
			 dd_store_schema_version() + 1);
	sqlite3_close(raw);

	/* Some other application's database. */
	snprintf(p, sizeof p, "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(p, &raw), SQLITE_OK);
	raw_exec(raw, "CREATE TABLE notes (body TEXT)");
	sqlite3_close(raw);
	assert_int_equal(dd_store_open(&f->loop, p, NULL, &s, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "not a devopsdefender store"));

	/* Not a database at all. */
	snprintf(p, sizeof p, "%s/garbage.db", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	for (int i = 0; i < 64; i++)
		fputs("this is not an SQLite file. ", fp);
	fclose(fp);
	assert_int_not_equal(dd_store_open(&f->loop, p, NULL, &s, why,
					   sizeof why), DD_OK);
	assert_null(s);
	assert_true(why[0] != '\0');

	/* A symlink is not followed. */
	snprintf(p, sizeof p, "%s/link.db", f->dir);
	assert_int_equal(symlink(f->path, p), 0);
	assert_int_equal(dd_store_open(&f->loop, p, NULL, &s, why, sizeof why),
			 DD_ERR_IO);

	/* Options out of range. */
	o.history_keep = DD_STORE_HISTORY_MAX + 1;
	assert_int_equal(dd_store_open(&f->loop, ":memory:", &o, &s, why,
				       sizeof why), DD_ERR_INVALID);
	o.history_keep = 0;
	o.env = "prod\"uction";
	assert_int_equal(dd_store_open(&f->loop, ":memory:", &o, &s, why,
				       sizeof why), DD_ERR_INVALID);
}

static void test_migration_rule(void **state)
{
	static const char *const steps[] = {
		"CREATE TABLE t1 (x INTEGER) STRICT;",
		"ALTER TABLE t1 ADD COLUMN y TEXT;",
		("CREATE TABLE t2 (z INTEGER) STRICT;"
		 " INSERT INTO t2 VALUES (7);"),
		"CREATE TABLE t3 (a INTEGER); THIS IS NOT SQL;",
	};
	sqlite3 *db = NULL;
	unsigned from = 99;
	char why[256];

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(dd_store_migrate(db, steps, 1, &from, why, sizeof why),
			 DD_OK);
	assert_int_equal(from, 0);
	raw_exec(db, "INSERT INTO t1 (x) VALUES (1)");
	/* An older store is brought forward and keeps its rows. */
	assert_int_equal(dd_store_migrate(db, steps, 3, &from, why, sizeof why),
			 DD_OK);
	assert_int_equal(from, 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM t1 WHERE x = 1"
				 " AND y IS NULL"), 1);
	assert_int_equal(raw_int(db, "SELECT z FROM t2"), 7);
	assert_int_equal(raw_int(db, "SELECT version FROM schema_version"), 3);
	/* A failing step changes nothing, not even the steps before it. */
	assert_int_not_equal(dd_store_migrate(db, steps, 4, &from, why,
					      sizeof why), DD_OK);
	assert_non_null(strstr(why, "migration to version 4"));
	assert_int_equal(raw_int(db, "SELECT version FROM schema_version"), 3);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema"
				 " WHERE name = 't3'"), 0);
	/* Already current: nothing to do. A newer store: refused. */
	assert_int_equal(dd_store_migrate(db, steps, 3, &from, why, sizeof why),
			 DD_OK);
	assert_int_equal(dd_store_migrate(db, steps, 2, &from, why, sizeof why),
			 DD_ERR_UNSUPPORTED);
	assert_int_equal(from, 3);
	assert_true(sqlite3_get_autocommit(db));
	sqlite3_close(db);

	/* Tables but no version: not ours. */
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	raw_exec(db, "CREATE TABLE x (a)");
	assert_int_equal(dd_store_migrate(db, steps, 1, NULL, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema"), 1);
	sqlite3_close(db);
}

/* --- writes --------------------------------------------------------------- */

static void test_writes(void **state)
{
	fx *f = *state;
	dd_store_agent a, b, got;
	dd_store_extra ex[DD_STORE_MAX_EXTRAS + 1];
	dd_store_event *ev = NULL;
	dd_principal org, bad;
	struct done d = {0};
	char err[600];
	dd_store *s;
	size_t n;

	s = open_ok(f, ":memory:", NULL);
	make_agent(&a, "dd-production-agent-1", "vm-1", T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	/* A re-registered VM replaces its old entry, history and all. */
	make_agent(&b, "dd-production-agent-9", "vm-1", T0 + 10);
	b.status = DD_AGENT_REGISTERING;
	assert_int_equal(settle(f, &d, dd_store_register(s, &b, on_done, &d)),
			 DD_OK);
	assert_int_equal(d.removed, 1);
	assert_int_equal(dd_store_get(s, a.agent_id, &got), DD_ERR_NOT_FOUND);
	assert_int_equal(dd_store_history(s, a.agent_id, &ev, &n), DD_OK);
	assert_int_equal(n, 0);
	dd_free(ev);
	assert_int_equal(list_count(s), 1);

	/* KEEP_EXTRAS leaves the list alone; without it the record's wins. */
	b.n_extras = 0;
	b.status = DD_AGENT_HEALTHY;
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &b,
		DD_STORE_KEEP_EXTRAS, "scrape ok", on_done, &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_int_equal(got.n_extras, 2);
	assert_string_equal(got.extras[1].label, "web");
	assert_int_equal(got.status, DD_AGENT_HEALTHY);
	/* registered_at is the first registration's. */
	assert_true(got.registered_at_ms == T0 + 10 - 1000);
	dd_store_agent_clear(&got);
	assert_int_equal(dd_store_upsert(s, &b, 2, NULL, on_done, &d),
			 DD_ERR_INVALID);
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &b, 0, NULL, on_done,
						       &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_int_equal(got.n_extras, 0);
	dd_store_agent_clear(&got);

	/* /ingress/replace. */
	memset(ex, 0, sizeof ex);
	for (int i = 0; i < 3; i++) {
		snprintf(ex[i].label, sizeof ex[i].label, "svc-%d", i);
		ex[i].port = (uint16_t)(9000 + i);
	}
	assert_int_equal(settle(f, &d, dd_store_set_extras(s, b.agent_id, ex,
		3, on_done, &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_int_equal(got.n_extras, 3);
	assert_string_equal(got.extras[2].label, "svc-2");
	assert_int_equal(got.extras[2].port, 9002);
	dd_store_agent_clear(&got);
	snprintf(ex[1].label, sizeof ex[1].label, "SVC-0");
	assert_int_equal(dd_store_set_extras(s, b.agent_id, ex, 3, on_done, &d),
			 DD_ERR_INVALID);
	snprintf(ex[1].label, sizeof ex[1].label, "svc 1");
	assert_int_equal(dd_store_set_extras(s, b.agent_id, ex, 3, on_done, &d),
			 DD_ERR_INVALID);
	snprintf(ex[1].label, sizeof ex[1].label, "svc-1");
	ex[1].port = 0;
	assert_int_equal(dd_store_set_extras(s, b.agent_id, ex, 3, on_done, &d),
			 DD_ERR_INVALID);
	assert_int_equal(dd_store_set_extras(s, b.agent_id, ex,
					     DD_STORE_MAX_EXTRAS + 1, on_done,
					     &d), DD_ERR_TOO_LARGE);
	assert_int_equal(settle(f, &d, dd_store_set_extras(s, "dd-nobody", ex,
		0, on_done, &d)), DD_ERR_NOT_FOUND);

	/* The runtime tenant. */
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_ORG, "devopsdefender",
					   99, &org, NULL, 0), DD_OK);
	assert_int_equal(settle(f, &d, dd_store_set_owner(s, b.agent_id, &org,
							  on_done, &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_true(got.has_owner);
	assert_int_equal(got.owner.kind, DD_PRINCIPAL_ORG);
	assert_string_equal(got.owner.name, "devopsdefender");
	assert_true(got.owner.id == 99);
	dd_store_agent_clear(&got);
	assert_int_equal(settle(f, &d, dd_store_set_owner(s, b.agent_id, NULL,
							  on_done, &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_false(got.has_owner);
	dd_store_agent_clear(&got);
	bad = org;
	snprintf(bad.name, sizeof bad.name, "a/b");
	assert_int_equal(dd_store_set_owner(s, b.agent_id, &bad, on_done, &d),
			 DD_ERR_INVALID);
	bad = org;
	bad.id = 0;
	assert_int_equal(dd_store_set_owner(s, b.agent_id, &bad, on_done, &d),
			 DD_ERR_INVALID);
	assert_int_equal(settle(f, &d, dd_store_set_owner(s, "dd-nobody", &org,
							  on_done, &d)),
			 DD_ERR_NOT_FOUND);

	/* Failures: the counter, and an error text from outside, cleaned. */
	memset(err, 'e', sizeof err);
	memcpy(err, "line one\nline \xff two", 19);
	err[sizeof err - 1] = '\0';
	assert_int_equal(settle(f, &d, dd_store_mark_failure(s, b.agent_id,
		DD_AGENT_STALE, T0 + 20, err, on_done, &d)), DD_OK);
	assert_int_equal(settle(f, &d, dd_store_mark_failure(s, b.agent_id,
		DD_AGENT_STALE, T0 + 30, NULL, on_done, &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_int_equal(got.failures, 2);
	assert_string_equal(got.last_error, "scrape failed");
	dd_store_agent_clear(&got);
	assert_int_equal(dd_store_history(s, b.agent_id, &ev, &n), DD_OK);
	assert_true(n >= 1);
	assert_int_equal(strncmp(ev[0].reason, "line one?line ? two", 19), 0);
	assert_true(strlen(ev[0].reason) <= DD_STORE_REASON_MAX);
	assert_true(dd_store_text_ok(ev[0].reason, strlen(ev[0].reason)));
	dd_free(ev);
	/* A fresh record resets the count; the last failure stays on view. */
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &b, 0, NULL, on_done,
						       &d)), DD_OK);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_int_equal(got.failures, 0);
	assert_true(got.last_failure_ms == T0 + 30);
	assert_string_equal(got.last_error, "scrape failed");
	dd_store_agent_clear(&got);
	/* Registering again under the same id starts the record over. */
	b.registered_at_ms = 0;
	b.last_seen_ms = T0 + 50;
	assert_int_equal(settle(f, &d, dd_store_register(s, &b, on_done, &d)),
			 DD_OK);
	assert_int_equal(d.removed, 0);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_OK);
	assert_true(got.registered_at_ms == T0 + 50);
	assert_true(got.last_failure_ms == 0);
	assert_string_equal(got.last_error, "");
	dd_store_agent_clear(&got);
	assert_int_equal(settle(f, &d, dd_store_mark_failure(s, "dd-nobody",
		DD_AGENT_STALE, T0, "x", on_done, &d)), DD_ERR_NOT_FOUND);
	assert_int_equal(dd_store_mark_failure(s, b.agent_id, DD_AGENT__COUNT,
					       T0, "x", on_done, &d),
			 DD_ERR_INVALID);
	assert_int_equal(dd_store_mark_failure(s, b.agent_id, DD_AGENT_DEAD, -1,
					       "x", on_done, &d),
			 DD_ERR_INVALID);

	/* Quotes are data: bound, never spliced into SQL. */
	dd_store_agent_clear(&a);
	make_agent(&a, "dd-production-agent-2", "x'); DROP TABLE agents; --",
		   T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	assert_int_equal(d.removed, 0);
	assert_int_equal(dd_store_get(s, a.agent_id, &got), DD_OK);
	assert_string_equal(got.vm_name, "x'); DROP TABLE agents; --");
	dd_store_agent_clear(&got);
	assert_int_equal(dd_store_get(s, "x' OR '1'='1", &got),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(dd_store_delete(s, "x' OR '1'='1", on_done, &d),
			 DD_ERR_INVALID);
	assert_int_equal(list_count(s), 2);

	/* Delete. */
	assert_int_equal(settle(f, &d, dd_store_delete(s, b.agent_id, on_done,
						       &d)), DD_OK);
	assert_int_equal(d.removed, 1);
	assert_int_equal(settle(f, &d, dd_store_delete(s, b.agent_id, on_done,
						       &d)), DD_ERR_NOT_FOUND);
	assert_int_equal(d.removed, 0);
	assert_int_equal(dd_store_get(s, b.agent_id, &got), DD_ERR_NOT_FOUND);
	assert_int_equal(list_count(s), 1);

	/* After close is called: refused at once. */
	dd_store_close(s, NULL, NULL);
	assert_int_equal(dd_store_upsert(s, &a, 0, NULL, on_done, &d),
			 DD_ERR_CLOSED);
	assert_int_equal(dd_store_get(s, a.agent_id, &got), DD_ERR_CLOSED);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	dd_store_agent_clear(&a);
	dd_store_agent_clear(&b);
}

/* Each mutation of a good record must be refused before it is queued. */
static void test_record_checks(void **state)
{
	fx *f = *state;
	dd_store_agent a;
	struct done d = {0};
	json_t *deep, *big;
	char why[256];
	dd_store *s;

	s = open_ok(f, ":memory:", NULL);
#define REFUSE(mutation, want) do { \
		make_agent(&a, "dd-production-agent-1", "vm-1", T0); \
		mutation; \
		assert_int_equal(dd_store_agent_check(&a, why, sizeof why), \
				 (want)); \
		assert_true(why[0] != '\0'); \
		assert_int_equal(dd_store_upsert(s, &a, 0, NULL, on_done, &d), \
				 (want)); \
		dd_store_agent_clear(&a); \
	} while (0)

	REFUSE(a.agent_id[0] = '\0', DD_ERR_INVALID);
	REFUSE(a.agent_id[3] = ' ', DD_ERR_INVALID);
	REFUSE(memset(a.agent_id, 'x', sizeof a.agent_id), DD_ERR_INVALID);
	REFUSE(a.hostname[2] = '/', DD_ERR_INVALID);
	REFUSE(a.vm_name[1] = '\n', DD_ERR_INVALID);
	REFUSE(a.vm_name[1] = '\xc0', DD_ERR_INVALID);
	REFUSE(a.env[0] = '"', DD_ERR_INVALID);
	REFUSE(a.attestation_type[0] = '\0', DD_ERR_INVALID);
	REFUSE(a.status = DD_AGENT__COUNT, DD_ERR_INVALID);
	REFUSE(a.noise_pubkey[10] = 'G', DD_ERR_INVALID);
	REFUSE(a.noise_pubkey[63] = '\0', DD_ERR_INVALID);
	REFUSE(a.ita.mrtd[5] = ' ', DD_ERR_INVALID);
	REFUSE(a.last_seen_ms = -1, DD_ERR_INVALID);
	REFUSE(a.registered_at_ms = DD_STORE_TIME_MAX + 1, DD_ERR_INVALID);
	REFUSE(a.owner.id = 0, DD_ERR_INVALID);
	REFUSE(a.owner.id = UINT64_C(1) << 60, DD_ERR_INVALID);
	REFUSE(a.owner.kind = (dd_principal_kind)7, DD_ERR_INVALID);
	REFUSE(a.tunnel_id[0] = '\0', DD_ERR_INVALID);
	REFUSE(snprintf(a.ingress_url, sizeof a.ingress_url, "https://x"),
	       DD_ERR_INVALID);
	REFUSE(a.ingress = DD_INGRESS_NONE, DD_ERR_INVALID);
	REFUSE((a.ingress = DD_INGRESS_DIRECT, a.tunnel_id[0] = '\0',
		json_decref(a.ingress_detail), a.ingress_detail = NULL,
		snprintf(a.ingress_url, sizeof a.ingress_url, "ftp://x")),
	       DD_ERR_INVALID);
	REFUSE(a.ingress = (dd_ingress_kind)9, DD_ERR_INVALID);
	REFUSE(a.n_extras = DD_STORE_MAX_EXTRAS + 1, DD_ERR_TOO_LARGE);
	REFUSE(a.extras[1].port = 0, DD_ERR_INVALID);
	REFUSE(a.extras[1].label[0] = '\0', DD_ERR_INVALID);
	REFUSE(json_decref(a.ita.claims); a.ita.claims = json_array(),
	       DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.ita.claims, "x", json_stringn("a\0b", 3)),
	       DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.health, "extra", json_true()),
	       DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.health, "units", json_string("many")),
	       DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.health, "cpu_percent", json_integer(-1)),
	       DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.health, "nets", json_pack("[{s:s}]",
	       "iface", "eth0")), DD_ERR_INVALID);
	REFUSE(json_object_set_new(a.health, "deployment_names",
	       json_pack("[i]", 1)), DD_ERR_INVALID);
	/* Nesting past the bound (which also stops cycles). */
	deep = json_object();
	for (int i = 0; i < 40; i++)
		deep = json_pack("{s:o}", "d", deep);
	REFUSE(json_object_set_new(a.health, "units", json_pack("[o]", deep)),
	       DD_ERR_INVALID);
	/* Past the size of a snapshot. */
	big = json_array();
	for (int i = 0; i < 200; i++)
		json_array_append_new(big, json_pack("{s:s}", "title",
			"................................................."
			"................................................."
			"................................................."
			"................................................."));
	REFUSE(json_object_set_new(a.health, "units", big), DD_ERR_TOO_LARGE);
#undef REFUSE
	assert_int_equal(list_count(s), 0);
	close_store(f, s);
}

static void test_history_is_bounded(void **state)
{
	fx *f = *state;
	dd_store_opts o = {.history_keep = 4};
	dd_store_agent a, b;
	dd_store_event *ev = NULL;
	struct done d = {0};
	char reason[16];
	dd_store *s;
	size_t n;

	s = open_ok(f, ":memory:", &o);
	make_agent(&a, "dd-production-agent-1", "vm-1", T0);
	make_agent(&b, "dd-production-agent-2", "vm-2", T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	assert_int_equal(settle(f, &d, dd_store_register(s, &b, on_done, &d)),
			 DD_OK);
	for (int i = 1; i <= 10; i++) {
		snprintf(reason, sizeof reason, "r%d", i);
		assert_int_equal(settle(f, &d, dd_store_mark_failure(s,
			a.agent_id, i % 2 ? DD_AGENT_STALE : DD_AGENT_DEAD,
			T0 + i, reason, on_done, &d)), DD_OK);
		/* The same status again is a failure, not a change. */
		assert_int_equal(settle(f, &d, dd_store_mark_failure(s,
			a.agent_id, i % 2 ? DD_AGENT_STALE : DD_AGENT_DEAD,
			T0 + i, "again", on_done, &d)), DD_OK);
	}
	assert_int_equal(dd_store_history(s, a.agent_id, &ev, &n), DD_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		snprintf(reason, sizeof reason, "r%zu", 10 - i);
		assert_string_equal(ev[i].reason, reason);
		assert_true(ev[i].at_ms == T0 + 10 - (int64_t)i);
		assert_true(ev[i].has_from);
		assert_int_equal(ev[i].to, (10 - i) % 2 ? DD_AGENT_STALE
							: DD_AGENT_DEAD);
		assert_int_equal(ev[i].from, (10 - i) % 2 ? DD_AGENT_DEAD
							  : DD_AGENT_STALE);
	}
	dd_free(ev);
	/* Another agent's history is its own. */
	assert_int_equal(dd_store_history(s, b.agent_id, &ev, &n), DD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].reason, "registered");
	dd_free(ev);
	assert_int_equal(settle(f, &d, dd_store_delete(s, a.agent_id, on_done,
						       &d)), DD_OK);
	assert_int_equal(dd_store_history(s, a.agent_id, &ev, &n), DD_OK);
	assert_int_equal(n, 0);
	assert_null(ev);
	close_store(f, s);
	dd_store_agent_clear(&a);
	dd_store_agent_clear(&b);
}

/* --- export and import ---------------------------------------------------- */

/* Three records as test_restart_keeps_everything writes them. */
static void seed(fx *f, dd_store *s)
{
	dd_store_agent a, b, cp;
	struct done d = {0};

	make_agent(&a, "dd-production-agent-1", "vm-1", T0);
	make_agent(&b, "dd-production-agent-2", "vm-2", T0 + 1);
	b.has_owner = false;
	make_cp(&cp, T0 + 2);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	assert_int_equal(settle(f, &d, dd_store_register(s, &b, on_done, &d)),
			 DD_OK);
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &cp, 0, NULL, on_done,
						       &d)), DD_OK);
	assert_int_equal(settle(f, &d, dd_store_mark_failure(s, b.agent_id,
		DD_AGENT_STALE, T0 + 7, "timeout", on_done, &d)), DD_OK);
	dd_store_agent_clear(&a);
	dd_store_agent_clear(&b);
	dd_store_agent_clear(&cp);
}

static void export_of(dd_store *s, dd_buf *out)
{
	size_t skipped = 99;

	dd_buf_init(out, DD_STORE_EXPORT_MAX);
	assert_int_equal(dd_store_export(s, out, &skipped), DD_OK);
	assert_int_equal(skipped, 0);
}

static void assert_same_lists(dd_store *x, dd_store *y)
{
	dd_store_agent *v = NULL, *w = NULL;
	size_t n = 0, m = 0;

	assert_int_equal(dd_store_list(x, &v, &n, NULL), DD_OK);
	assert_int_equal(dd_store_list(y, &w, &m, NULL), DD_OK);
	assert_int_equal(n, m);
	for (size_t i = 0; i < n; i++)
		assert_same(&v[i], &w[i]);
	dd_store_agents_free(v, n);
	dd_store_agents_free(w, m);
}

static void test_export_import_round_trip(void **state)
{
	fx *f = *state;
	dd_store_opts o = {.env = "production"};
	dd_store *one, *two;
	dd_store_event *ev = NULL;
	struct done d = {0};
	json_t *doc, *rec;
	const char *t;
	dd_buf out;
	size_t n;

	one = open_ok(f, ":memory:", &o);
	seed(f, one);
	export_of(one, &out);
	assert_int_equal(dd_json_parse(out.data, out.len, DD_STORE_EXPORT_MAX,
				       &doc, NULL, 0), DD_OK);
	/* The spec's shape: {"agents": [record...]}, ordered by id. */
	assert_int_equal(json_array_size(json_object_get(doc, "agents")), 3);
	rec = json_array_get(json_object_get(doc, "agents"), 1);
	assert_string_equal(json_string_value(json_object_get(rec, "agent_id")),
			    "dd-production-agent-1");
	t = json_string_value(json_object_get(rec, "last_seen"));
	assert_string_equal(t, "2026-05-28T20:26:40.000Z");
	assert_true(json_is_array(json_array_get(json_object_get(rec,
							"extras"), 0)));
	assert_int_equal(json_integer_value(json_array_get(json_array_get(
		json_object_get(rec, "extras"), 0), 1)), 8082);
	assert_true(json_is_object(json_object_get(json_object_get(rec, "ita"),
						   "extra")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		rec, "owner"), "kind")), "user");
	assert_int_equal(json_integer_value(json_object_get(rec,
							    "memory_total_mb")),
			 16003);
	json_decref(doc);

	/* Into a fresh file store: the same records, field for field. */
	two = open_ok(f, f->path, &o);
	assert_int_equal(settle(f, &d, dd_store_import(two, out.data, out.len,
		T0 + 100, on_done, &d)), DD_OK);
	assert_int_equal(d.written, 3);
	assert_same_lists(one, two);
	assert_int_equal(dd_store_history(two, "dd-production-agent-2", &ev,
					  &n), DD_OK);
	assert_int_equal(n, 1);
	assert_false(ev[0].has_from);
	assert_int_equal(ev[0].to, DD_AGENT_STALE);
	assert_string_equal(ev[0].reason, "imported");
	assert_true(ev[0].at_ms == T0 + 100);
	dd_free(ev);
	/* Again: replaces by id, no new history for an unchanged status. */
	assert_int_equal(settle(f, &d, dd_store_import(two, out.data, out.len,
		T0 + 200, on_done, &d)), DD_OK);
	assert_int_equal(d.written, 3);
	assert_int_equal(list_count(two), 3);
	assert_int_equal(dd_store_history(two, "dd-production-agent-2", &ev,
					  &n), DD_OK);
	assert_int_equal(n, 1);
	dd_free(ev);
	/* An empty export imports nothing, successfully. */
	assert_int_equal(settle(f, &d, dd_store_import(two, "{\"agents\":[]}",
		13, T0, on_done, &d)), DD_OK);
	assert_int_equal(d.written, 0);
	dd_buf_free(&out);
	close_store(f, one);
	close_store(f, two);
}

/* An export as the reference CP writes it (spec integrations 3.1). */
static const char reference_export[] =
	"{\"agents\":[{\"agent_id\":\"dd-pr-7-agent-5b0c\","
	"\"hostname\":\"dd-pr-7-agent-5b0c.devopsdefender.com\","
	"\"vm_name\":\"dd-local-preview\",\"attestation_type\":\"tdx\","
	"\"status\":\"healthy\","
	"\"last_seen\":\"2026-06-03T10:00:00.123456789Z\","
	"\"agent_mode\":\"read_write\",\"integrity_state\":\"controlled\","
	"\"owner\":{\"name\":\"posix4e\",\"id\":12345678,\"kind\":\"user\"},"
	"\"deployment_count\":5,\"deployment_names\":[\"busybox\","
	"\"cloudflared\"],\"unit_count\":7,\"units\":[],\"cpu_percent\":3,"
	"\"memory_used_mb\":812,\"memory_total_mb\":16003,"
	"\"nets\":[{\"iface\":\"eth0\",\"rx_bytes\":1,\"tx_bytes\":2}],"
	"\"ita\":{\"exp\":0,\"iat\":0,\"tcb_status\":\"UpToDate\","
	"\"attester_type\":\"TDX\",\"mrtd\":\"abc\",\"mrsigner\":null,"
	"\"report_data\":\"def\",\"extra\":{\"tdx_mrtd\":\"abc\"}},"
	"\"tunnel_id\":\"6ff42ae2\",\"extras\":[[\"oracle\",8082]],"
	"\"some_future_field\":true},"
	"{\"agent_id\":\"control-plane\",\"hostname\":\"app.example.com\","
	"\"vm_name\":\"dd-pr-7-cp\",\"attestation_type\":\"tdx\","
	"\"status\":\"healthy\",\"last_seen\":\"2026-06-03T12:00:00+02:00\","
	"\"agent_mode\":\"read_write\",\"integrity_state\":\"controlled\","
	"\"owner\":null,\"deployment_count\":0,\"deployment_names\":[],"
	"\"unit_count\":0,\"units\":[],\"cpu_percent\":0,"
	"\"memory_used_mb\":0,\"memory_total_mb\":0,"
	"\"ita\":{\"exp\":1,\"iat\":2}}]}";

static void test_import_reference_shape(void **state)
{
	fx *f = *state;
	dd_store_opts o = {.env = "pr-7"};
	dd_store_agent got;
	struct done d = {0};
	dd_store *s;

	s = open_ok(f, ":memory:", &o);
	assert_int_equal(settle(f, &d, dd_store_import(s, reference_export,
		strlen(reference_export), T0, on_done, &d)), DD_OK);
	assert_int_equal(d.written, 2);
	assert_int_equal(dd_store_get(s, "dd-pr-7-agent-5b0c", &got), DD_OK);
	assert_string_equal(got.env, "pr-7");
	assert_int_equal(got.ingress, DD_INGRESS_TUNNEL);
	assert_int_equal(got.n_extras, 1);
	assert_true(got.last_seen_ms == INT64_C(1780480800123));
	assert_true(got.registered_at_ms == got.last_seen_ms);
	assert_string_equal(got.ita.mrsigner, "");
	assert_true(got.has_owner);
	assert_int_equal(json_array_size(json_object_get(got.health, "nets")),
			 1);
	dd_store_agent_clear(&got);
	assert_int_equal(dd_store_get(s, "control-plane", &got), DD_OK);
	assert_int_equal(got.ingress, DD_INGRESS_NONE);
	assert_true(got.last_seen_ms == INT64_C(1780480800000));
	assert_int_equal(json_object_size(got.ita.claims), 0);
	dd_store_agent_clear(&got);
	close_store(f, s);
}

/* {"agents": [good, mutated copy of good under another id]} as text. */
static char *export_with(const json_t *good, const char *key, json_t *value)
{
	json_t *bad = json_deep_copy(good), *doc;
	char *text;

	assert_non_null(bad);
	assert_int_equal(json_object_set_new(bad, "agent_id",
			 json_string("dd-production-agent-8")), 0);
	if (value != NULL)
		assert_int_equal(json_object_set_new(bad, key, value), 0);
	else
		assert_int_equal(json_object_del(bad, key), 0);
	doc = json_pack("{s:[O, o]}", "agents", good, bad);
	assert_non_null(doc);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

static void import_refused(fx *f, dd_store *s, const char *text, size_t len,
			   const char *why_has)
{
	struct done d = {0};
	dd_err_t rc;

	rc = settle(f, &d, dd_store_import(s, text, len, T0, on_done, &d));
	if (rc == DD_OK)
		print_error("imported: %.200s\n", text);
	assert_int_not_equal(rc, DD_OK);
	assert_int_equal(d.written, 0);
	if (why_has != NULL && strstr(d.why, why_has) == NULL) {
		print_error("why \"%s\" lacks \"%s\"\n", d.why, why_has);
		fail();
	}
	/* Whatever was there before is all there is. */
	assert_int_equal(list_count(s), 1);
}

#define CAP 64

static void test_import_refusals(void **state)
{
	fx *f = *state;
	dd_store *s, *src;
	dd_store_agent a;
	struct done d = {0};
	json_t *doc, *good, *deep, *many;
	dd_buf buf;
	char *text, *huge;

	/* One good record to mutate, from a real export. */
	src = open_ok(f, ":memory:", NULL);
	make_agent(&a, "dd-production-agent-7", "vm-7", T0);
	assert_int_equal(settle(f, &d, dd_store_register(src, &a, on_done, &d)),
			 DD_OK);
	export_of(src, &buf);
	assert_int_equal(dd_json_parse(buf.data, buf.len, buf.len, &doc, NULL,
				       0), DD_OK);
	dd_buf_free(&buf);
	good = json_incref(json_array_get(json_object_get(doc, "agents"), 0));
	assert_non_null(good);
	json_decref(doc);
	close_store(f, src);

	/* A small cap keeps the fill below quick; the rule is the same. */
	s = open_ok(f, ":memory:", &(dd_store_opts){.max_agents = CAP});
	dd_store_agent_clear(&a);
	make_agent(&a, "dd-production-agent-1", "vm-1", T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);

#define MUTANT(key, value, why_has) do { \
		text = export_with(good, (key), (value)); \
		import_refused(f, s, text, strlen(text), (why_has)); \
		free(text); \
	} while (0)
	/* One bad record skips the whole import. */
	MUTANT("hostname", NULL, "record 1: hostname is missing");
	MUTANT("status", json_integer(5), "status");
	MUTANT("status", json_string("zombie"), "status");
	MUTANT("last_seen", json_string("yesterday"), "last_seen");
	MUTANT("last_seen", json_string("2026-02-30T00:00:00Z"), "last_seen");
	MUTANT("agent_id", json_string("../../etc/passwd"), "agent_id");
	MUTANT("agent_id", json_integer(1), "agent_id");
	MUTANT("agent_mode", json_string("root"), "agent_mode");
	MUTANT("extras", json_pack("[[s, i]]", "a", 70000), "extras");
	MUTANT("extras", json_pack("[{s:s, s:i}]", "hostname_label", "a",
				   "port", 1), "extras");
	MUTANT("extras", json_pack("[[s, i], [s, i]]", "a", 1, "a", 2),
	       "twice");
	MUTANT("owner", json_pack("{s:s, s:s, s:s}", "name", "x", "id", "1",
				  "kind", "user"), "owner");
	MUTANT("units", json_string("many"), "units");
	MUTANT("units", NULL, "units is missing");
	MUTANT("cpu_percent", json_integer(-1), "cpu_percent");
	MUTANT("deployment_names", json_pack("[i]", 1), "deployment_names");
	MUTANT("ita", json_string("eyJhbGciOi..."), "ita");
	MUTANT("ingress", json_pack("{s:s}", "kind", "carrier-pigeon"),
	       "ingress");
	MUTANT("failures", json_integer(-3), "failures");
	MUTANT("vm_name", json_string("a\nb"), "vm_name");
	MUTANT("hostname", json_string(
		"........................................................."
		"........................................................."
		"........................................................."
		"........................................................."
		"............................"), "hostname");
	deep = json_array();
	for (int i = 0; i < 40; i++)
		deep = json_pack("[o]", deep);
	MUTANT("units", json_pack("[{s:o}]", "x", deep), "health");
	many = json_array();
	for (int i = 0; i < 300; i++)
		json_array_append_new(many, json_object());
	MUTANT("units", many, "units");
	/* Duplicates: the same agent twice. */
	MUTANT("agent_id", json_string("dd-production-agent-7"), "twice");
#undef MUTANT

	/* The document itself. */
	import_refused(f, s, "not json", 8, "invalid JSON");
	import_refused(f, s, "[]", 2, "agents");
	import_refused(f, s, "{\"agents\":{}}", 13, "agents");
	import_refused(f, s, "{\"agents\":[1]}", 14, "record 0");
	import_refused(f, s, "{\"agents\":[],\"agents\":[]}", 25, NULL);
	import_refused(f, s, "{\"agents\":[{\"agent_id\":\"a\\u0000b\"}]}", 36,
		       NULL);
	import_refused(f, s, "{\"agents\":[{\"agent_id\":\"\xff\"}]}", 29,
		       NULL);
	/* More records than the store holds. */
	many = json_array();
	for (int i = 0; i <= CAP; i++)
		json_array_append(many, good);
	deep = json_pack("{s:o}", "agents", many);
	text = json_dumps(deep, JSON_COMPACT);
	import_refused(f, s, text, strlen(text), "at most");
	free(text);
	json_decref(deep);
	/* Larger than any export: refused before it is even copied. */
	huge = calloc(1, DD_STORE_EXPORT_MAX + 1);
	assert_non_null(huge);
	assert_int_equal(dd_store_import(s, huge, DD_STORE_EXPORT_MAX + 1, T0,
					 on_done, &d), DD_ERR_TOO_LARGE);
	free(huge);
	assert_int_equal(dd_store_import(s, NULL, 3, T0, on_done, &d),
			 DD_ERR_INVALID);

	/* A full store refuses a new agent, and a whole import with one. */
	for (int i = 1; i < CAP; i++) {
		snprintf(a.agent_id, sizeof a.agent_id, "dd-fill-%d", i);
		assert_int_equal(settle(f, &d, dd_store_upsert(s, &a, 0, NULL,
							       on_done, &d)),
				 DD_OK);
	}
	snprintf(a.agent_id, sizeof a.agent_id, "dd-one-too-many");
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &a, 0, NULL, on_done,
						       &d)), DD_ERR_BUSY);
	text = export_with(good, "agent_id", json_string("dd-also-new"));
	assert_int_equal(settle(f, &d, dd_store_import(s, text, strlen(text),
		T0, on_done, &d)), DD_ERR_BUSY);
	free(text);
	assert_int_equal(list_count(s), CAP);
	/* Replacing an existing agent still works. */
	snprintf(a.agent_id, sizeof a.agent_id, "dd-fill-1");
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &a, 0, NULL, on_done,
						       &d)), DD_OK);
	json_decref(good);
	dd_store_agent_clear(&a);
	close_store(f, s);
}

#undef CAP

/* --- the scan, the cap option, the control-plane entry ----------------- */

struct seen {
	size_t n;
	dd_store_brief last;
	dd_store_brief cp;
	int stop_at;          /* >0: fail the scan at this record */
};

static dd_err_t on_brief(const dd_store_brief *b, void *ud)
{
	struct seen *w = ud;

	w->n++;
	if (w->stop_at > 0 && w->n == (size_t)w->stop_at)
		return DD_ERR_CANCELLED;
	if (strcmp(b->agent_id, "control-plane") == 0)
		w->cp = *b;
	else
		w->last = *b;
	return DD_OK;
}

static dd_err_t on_each(const dd_store_agent *a, void *ud)
{
	struct seen *w = ud;

	w->n++;
	if (w->stop_at > 0 && w->n == (size_t)w->stop_at)
		return DD_ERR_CANCELLED;
	/* Whole records: the JSON members are there. */
	assert_non_null(a->ita.claims);
	assert_non_null(a->health);
	return DD_OK;
}

static void test_scan_and_cp_entry(void **state)
{
	fx *f = *state;
	dd_store *s;
	dd_store_agent a, cp, got;
	struct done d = {0};
	struct seen w = {0};
	size_t skipped = 9;
	char why[256];

	/* The cap option: at most DD_STORE_MAX_AGENTS, which is 10,000+. */
	assert_true(DD_STORE_MAX_AGENTS >= 10000);
	assert_int_equal(dd_store_open(&f->loop, ":memory:", &(dd_store_opts){
			 .max_agents = DD_STORE_MAX_AGENTS + 1}, &s, why,
			 sizeof why), DD_ERR_INVALID);
	s = open_ok(f, ":memory:", &(dd_store_opts){.max_agents = 3});
	make_cp(&cp, T0);
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &cp, 0, NULL,
						       on_done, &d)), DD_OK);
	make_agent(&a, "dd-production-agent-1", "dd-production-cp", T0 + 5);
	a.ingress = DD_INGRESS_DIRECT;
	json_decref(a.ingress_detail);
	a.ingress_detail = NULL;
	a.tunnel_id[0] = '\0';
	snprintf(a.ingress_url, sizeof a.ingress_url, "https://a1.example");
	/*
	 * An agent registering under the CP's vm_name evicts every other
	 * agent of that name, but never the control-plane entry.
	 */
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	assert_int_equal(d.removed, 0);
	assert_int_equal(dd_store_get(s, "control-plane", &got), DD_OK);
	dd_store_agent_clear(&got);

	/* The scan: plain columns, in agent_id order, nothing parsed. */
	assert_int_equal(dd_store_scan(s, on_brief, &w, &skipped), DD_OK);
	assert_int_equal(skipped, 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.last.agent_id, "dd-production-agent-1");
	assert_string_equal(w.last.ingress_url, "https://a1.example");
	assert_int_equal(w.last.ingress, DD_INGRESS_DIRECT);
	assert_string_equal(w.last.tunnel_id, "");
	assert_int_equal(w.last.status, DD_AGENT_HEALTHY);
	assert_true(w.last.has_owner);
	assert_string_equal(w.last.owner.name, "posix4e");
	assert_true(w.last.owner.id == 12345678);
	assert_true(w.last.last_seen_ms == T0 + 5);
	assert_true(w.last.registered_at_ms == T0 + 5 - 1000);
	assert_int_equal(w.last.deployment_count, 2);
	assert_int_equal(w.last.unit_count, 1);
	assert_int_equal(w.last.oracle_count, 1);
	assert_true(w.last.clean);
	assert_string_equal(w.cp.agent_id, "control-plane");
	assert_int_equal(w.cp.ingress, DD_INGRESS_NONE);
	assert_false(w.cp.has_owner);
	/* A callback's error stops the scan and is its result. */
	memset(&w, 0, sizeof w);
	w.stop_at = 1;
	assert_int_equal(dd_store_scan(s, on_brief, &w, NULL),
			 DD_ERR_CANCELLED);
	assert_int_equal(w.n, 1);
	/* The store still reads after a stopped scan. */
	assert_int_equal(list_count(s), 2);
	/* dd_store_each: whole records one at a time, stoppable. */
	memset(&w, 0, sizeof w);
	assert_int_equal(dd_store_each(s, on_each, &w, &skipped), DD_OK);
	assert_int_equal(w.n, 2);
	assert_int_equal(skipped, 0);
	memset(&w, 0, sizeof w);
	w.stop_at = 2;
	assert_int_equal(dd_store_each(s, on_each, &w, NULL), DD_ERR_CANCELLED);
	assert_int_equal(w.n, 2);
	assert_int_equal(list_count(s), 2);

	/* Failures in a batch: one write; agents gone since are skipped. */
	{
		dd_store_failure v[3];

		memset(v, 0, sizeof v);
		snprintf(v[0].agent_id, sizeof v[0].agent_id,
			 "dd-production-agent-1");
		v[0].status = DD_AGENT_STALE;
		v[0].at_ms = T0 + 9;
		snprintf(v[0].error, sizeof v[0].error, "refused\x01");
		snprintf(v[1].agent_id, sizeof v[1].agent_id, "dd-gone");
		v[1].status = DD_AGENT_STALE;
		v[1].at_ms = T0 + 9;
		v[2] = v[0];
		v[2].error[0] = '\0';
		assert_int_equal(settle(f, &d, dd_store_mark_failures(
			s, v, 3, on_done, &d)), DD_OK);
		assert_int_equal(d.written, 2);
		assert_int_equal(dd_store_get(s, "dd-production-agent-1", &got),
				 DD_OK);
		assert_int_equal(got.status, DD_AGENT_STALE);
		assert_int_equal(got.failures, 2);
		assert_string_equal(got.last_error, "scrape failed");
		dd_store_agent_clear(&got);
		/* Refused whole: a bad entry, none, too many. */
		v[1].status = DD_AGENT__COUNT;
		assert_int_equal(dd_store_mark_failures(s, v, 3, on_done, &d),
				 DD_ERR_INVALID);
		snprintf(v[1].agent_id, sizeof v[1].agent_id, "bad id");
		v[1].status = DD_AGENT_STALE;
		assert_int_equal(dd_store_mark_failures(s, v, 3, on_done, &d),
				 DD_ERR_INVALID);
		assert_int_equal(dd_store_mark_failures(s, v, 0, on_done, &d),
				 DD_ERR_INVALID);
		assert_int_equal(dd_store_mark_failures(s, v,
			DD_STORE_MAX_BATCH + 1, on_done, &d), DD_ERR_INVALID);
	}
	/* A tunnel agent's brief names its tunnel (reaping reads it). */
	dd_store_agent_clear(&a);
	make_agent(&a, "dd-production-agent-2", "vm-2", T0 + 7);
	assert_int_equal(settle(f, &d, dd_store_upsert(s, &a, 0, NULL,
						       on_done, &d)), DD_OK);
	memset(&w, 0, sizeof w);
	assert_int_equal(dd_store_scan(s, on_brief, &w, NULL), DD_OK);
	assert_string_equal(w.last.agent_id, "dd-production-agent-2");
	assert_int_equal(w.last.ingress, DD_INGRESS_TUNNEL);
	assert_string_equal(w.last.tunnel_id,
			    "6ff42ae2-765d-4adf-8112-31c55c1551ef");
	close_store(f, s);
	dd_store_agent_clear(&a);
	dd_store_agent_clear(&cp);
}

/* --- order and threads ---------------------------------------------------- */

struct seq {
	fx *f;
	dd_store *s;
	uv_thread_t loop_thread;
	int next;
	int close_at;
	bool closing;
	int closed;
	dd_err_t after_close;
};

struct seq_item {
	struct seq *q;
	int idx;
	char vm[32];
};

static void upsert_vm(dd_store *s, const char *vm, int cpu, dd_store_cb cb,
		      void *ud, dd_err_t want)
{
	dd_store_agent a;

	make_agent(&a, "dd-seq", vm, T0 + cpu);
	json_object_set_new(a.health, "cpu_percent", json_integer(cpu));
	assert_int_equal(dd_store_upsert(s, &a, 0, NULL, cb, ud), want);
	dd_store_agent_clear(&a);
}

static void on_seq(const dd_store_result *r, void *ud)
{
	struct seq_item *it = ud;
	struct seq *q = it->q;
	uv_thread_t self = uv_thread_self();
	dd_store_agent got;

	assert_true(uv_thread_equal(&self, &q->loop_thread));
	assert_int_equal(it->idx, q->next);
	q->next++;
	assert_int_equal(r->rc, DD_OK);
	if (!q->closing) {
		/* This write is committed and no later one has run. */
		assert_int_equal(dd_store_get(q->s, "dd-seq", &got), DD_OK);
		assert_string_equal(got.vm_name, it->vm);
		dd_store_agent_clear(&got);
	}
	if (it->idx == q->close_at) {
		dd_store_close(q->s, on_closed, &q->closed);
		q->closing = true;
		/* Reads and writes stop at once; queued writes still land. */
		assert_int_equal(dd_store_get(q->s, "dd-seq", &got),
				 DD_ERR_CLOSED);
		upsert_vm(q->s, "late", 0, on_seq, it, DD_ERR_CLOSED);
	}
}

static void on_chain(const dd_store_result *r, void *ud)
{
	struct seq_item *it = ud;

	on_seq(r, ud);
	/* Submitted from a callback: behind everything already queued. */
	if (it->idx == 0)
		upsert_vm(it->q->s, it[100].vm, 100, on_seq, &it[100], DD_OK);
}

static void on_count(const dd_store_result *r, void *ud)
{
	(void)r;
	(*(int *)ud)++;
}

/*
 * Rows damaged outside the store, in ways the schema's CHECKs let
 * through: a full read and a scan refuse the same ones (the scan used to
 * check only the id, the owner and last_seen, and passed all four).
 */
static void test_damaged_rows_read_alike(void **state)
{
	static const char *const damage[] = {
		"UPDATE agents SET hostname = 'bad host'",
		"UPDATE agents SET ingress_url = 'https://x.example'",
		"UPDATE agents SET owner_name = 'not/a-user'",
		"UPDATE agents SET registered_at = -5",
	};
	const size_t n_damage = sizeof damage / sizeof damage[0];
	fx *f = *state;
	dd_store *s;
	dd_store_agent a, *v = NULL;
	struct done d = {0};
	struct seen w = {0};
	size_t n = 0, skipped = 99;
	char id[32], sql[256];
	sqlite3 *raw = NULL;

	s = open_ok(f, f->path, &(dd_store_opts){0});
	for (size_t i = 0; i <= n_damage; i++) {
		snprintf(id, sizeof id, "dd-production-agent-%zu", i);
		snprintf(sql, sizeof sql, "vm-%zu", i);
		make_agent(&a, id, sql, T0);
		assert_int_equal(settle(f, &d, dd_store_upsert(s, &a, 0, NULL,
							       on_done, &d)),
				 DD_OK);
		dd_store_agent_clear(&a);
	}
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	for (size_t i = 0; i < n_damage; i++) {
		snprintf(sql, sizeof sql, "%s WHERE agent_id = "
			 "'dd-production-agent-%zu'", damage[i], i);
		raw_exec(raw, sql);
	}
	sqlite3_close(raw);
	for (size_t i = 0; i <= n_damage; i++) {
		snprintf(id, sizeof id, "dd-production-agent-%zu", i);
		assert_int_equal(dd_store_get(s, id, &a),
				 i < n_damage ? DD_ERR_INVALID : DD_OK);
		dd_store_agent_clear(&a);
	}
	assert_int_equal(dd_store_list(s, &v, &n, &skipped), DD_OK);
	assert_int_equal(n, 1);
	assert_int_equal(skipped, n_damage);
	dd_store_agents_free(v, n);
	skipped = 99;
	assert_int_equal(dd_store_scan(s, on_brief, &w, &skipped), DD_OK);
	assert_int_equal(w.n, 1);
	assert_int_equal(skipped, n_damage);
	snprintf(id, sizeof id, "dd-production-agent-%zu", n_damage);
	assert_string_equal(w.last.agent_id, id);
	close_store(f, s);
}

static void test_writes_in_order_on_loop_thread(void **state)
{
	fx *f = *state;
	struct seq q = {.f = f, .close_at = 60};
	struct seq_item items[101];
	int calls = 0;
	dd_store *s;

	q.loop_thread = uv_thread_self();
	s = open_ok(f, f->path, NULL);
	q.s = s;
	for (int i = 0; i <= 100; i++) {
		items[i].q = &q;
		items[i].idx = i;
		snprintf(items[i].vm, sizeof items[i].vm, "vm-%d", i);
	}
	for (int i = 0; i < 100; i++)
		upsert_vm(s, items[i].vm, i, i == 0 ? on_chain : on_seq,
			  &items[i], DD_OK);
	/* Nothing is called back before the loop runs. */
	assert_int_equal(q.next, 0);
	while (!q.closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	/* Every write queued before the close landed, the chained one last. */
	assert_int_equal(q.next, 101);

	s = open_ok(f, f->path, NULL);
	{
		dd_store_agent got;

		assert_int_equal(dd_store_get(s, "dd-seq", &got), DD_OK);
		assert_string_equal(got.vm_name, "vm-100");
		dd_store_agent_clear(&got);
	}
	/* Bounded: one write running, DD_STORE_MAX_QUEUE waiting, then BUSY. */
	for (int i = 0; i <= DD_STORE_MAX_QUEUE; i++)
		upsert_vm(s, "vm-q", i, on_count, &calls, DD_OK);
	upsert_vm(s, "vm-q", 0, on_count, &calls, DD_ERR_BUSY);
	while (calls < DD_STORE_MAX_QUEUE + 1)
		uv_run(&f->loop, UV_RUN_ONCE);
	close_store(f, s);
}

struct hold {
	dd_store *s;
	sqlite3 *raw;
	uint64_t read_ns;
	bool fired;
};

/* While another connection holds the write lock and our write waits. */
static void on_hold_timer(uv_timer_t *t)
{
	struct hold *h = t->data;
	uint64_t t0 = uv_hrtime();
	dd_store_counts c;
	dd_store_agent got;

	assert_int_equal(dd_store_get(h->s, "dd-production-agent-1", &got),
			 DD_OK);
	assert_string_equal(got.vm_name, "vm-1");
	dd_store_agent_clear(&got);
	assert_int_equal(list_count(h->s), 1);
	assert_int_equal(dd_store_count(h->s, &c), DD_OK);
	assert_int_equal(c.agents, 1);
	h->read_ns = uv_hrtime() - t0;
	h->fired = true;
	raw_exec(h->raw, "COMMIT");
	uv_close((uv_handle_t *)t, NULL);
}

struct watch {
	dd_store *s;
	size_t before, after;
	int reads, torn;
};

static void on_idle(uv_idle_t *h)
{
	struct watch *w = h->data;
	dd_store_counts c;

	assert_int_equal(dd_store_count(w->s, &c), DD_OK);
	w->reads++;
	if (c.agents != w->before && c.agents != w->after)
		w->torn++;
}

static void test_reads_during_writes(void **state)
{
	fx *f = *state;
	dd_store_opts o = {.write_wait_ms = 10000};
	dd_store_agent a, b, got;
	struct done d = {0};
	struct hold h = {0};
	struct watch w = {0};
	uv_timer_t timer;
	uv_idle_t idle;
	json_t *doc, *arr, *rec;
	dd_buf buf;
	char *text;
	dd_store *s, *s2;

	s = open_ok(f, f->path, &o);
	make_agent(&a, "dd-production-agent-1", "vm-1", T0);
	make_agent(&b, "dd-production-agent-2", "vm-2", T0);
	assert_int_equal(settle(f, &d, dd_store_register(s, &a, on_done, &d)),
			 DD_OK);
	/* Another connection takes the write lock and changes a row. */
	assert_int_equal(sqlite3_open(f->path, &h.raw), SQLITE_OK);
	raw_exec(h.raw, "BEGIN IMMEDIATE");
	raw_exec(h.raw, "UPDATE agents SET vm_name = 'raw'"
		 " WHERE agent_id = 'dd-production-agent-1'");
	h.s = s;
	assert_int_equal(dd_store_register(s, &b, on_done, &d), DD_OK);
	uv_timer_init(&f->loop, &timer);
	timer.data = &h;
	uv_timer_start(&timer, on_hold_timer, 200, 0);
	assert_int_equal(settle(f, &d, DD_OK), DD_OK);
	assert_true(h.fired);
	/* The reads neither waited for the lock nor saw uncommitted rows. */
	assert_true(h.read_ns < UINT64_C(2000000000));
	assert_int_equal(list_count(s), 2);
	assert_int_equal(dd_store_get(s, a.agent_id, &got), DD_OK);
	assert_string_equal(got.vm_name, "raw");
	dd_store_agent_clear(&got);

	/* The writer's wait is bounded: BUSY, and nothing changed. */
	o.write_wait_ms = 100;
	s2 = open_ok(f, f->path, &o);
	raw_exec(h.raw, "BEGIN IMMEDIATE");
	raw_exec(h.raw, "DELETE FROM agents");
	assert_int_equal(settle(f, &d, dd_store_register(s2, &b, on_done, &d)),
			 DD_ERR_BUSY);
	raw_exec(h.raw, "ROLLBACK");
	sqlite3_close(h.raw);
	assert_int_equal(list_count(s), 2);
	close_store(f, s2);

	/* A big import lands all at once for a reader watching it. */
	arr = json_array();
	assert_int_equal(dd_store_agent_to_json(&b, &rec), DD_OK);
	for (int i = 0; i < 300; i++) {
		json_t *r = json_deep_copy(rec);
		char id[32];

		snprintf(id, sizeof id, "dd-bulk-%d", i);
		json_object_set_new(r, "agent_id", json_string(id));
		json_array_append_new(arr, r);
	}
	json_decref(rec);
	doc = json_pack("{s:o}", "agents", arr);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	w.s = s;
	w.before = 2;
	w.after = 302;
	uv_idle_init(&f->loop, &idle);
	idle.data = &w;
	uv_idle_start(&idle, on_idle);
	assert_int_equal(settle(f, &d, dd_store_import(s, text, strlen(text),
		T0, on_done, &d)), DD_OK);
	uv_close((uv_handle_t *)&idle, NULL);
	free(text);
	assert_true(w.reads > 0);
	assert_int_equal(w.torn, 0);
	assert_int_equal(list_count(s), 302);
	export_of(s, &buf);
	assert_true(buf.len > 300 * 1000);
	dd_buf_free(&buf);
	close_store(f, s);
	dd_store_agent_clear(&a);
	dd_store_agent_clear(&b);
}

/* --- allocation failure ------------------------------------------------- */

/* What the torture steps share. */
struct tx {
	fx *f;
	dd_store *s;
	const char *path;
	dd_store_agent a, b;
	dd_buf exported;
	unsigned long nth, used;
};

/* Arms the hook for exactly the call under test. */
static void arm(struct tx *t)
{
	dd_alloc_fail_at(t->nth);
}

static void disarm(struct tx *t)
{
	t->used = dd_alloc_count();
	dd_alloc_fail_at(0);
}

static dd_err_t step_open(struct tx *t)
{
	dd_store *s = NULL;
	char why[256];
	dd_err_t rc;

	arm(t);
	rc = dd_store_open(&t->f->loop, t->path, NULL, &s, why, sizeof why);
	if (rc == DD_OK)
		close_store(t->f, s);
	disarm(t);
	return rc;
}

static dd_err_t step_write(struct tx *t, int which)
{
	struct done d = {0};
	dd_principal org;
	dd_err_t rc = DD_OK;

	assert_int_equal(dd_principal_make(DD_PRINCIPAL_ORG, "dd", 7, &org,
					   NULL, 0), DD_OK);
	/* Deleting needs something to delete, whatever happened before. */
	if (which == 6)
		rc = settle(t->f, &d, dd_store_upsert(t->s, &t->b, 0, NULL,
						      on_done, &d));
	assert_int_equal(rc, DD_OK);
	arm(t);
	switch (which) {
	case 0:
		rc = dd_store_register(t->s, &t->a, on_done, &d);
		break;
	case 1:
		rc = dd_store_upsert(t->s, &t->b, 0, "x", on_done, &d);
		break;
	case 2:
		rc = dd_store_mark_failure(t->s, t->b.agent_id, DD_AGENT_STALE,
					   T0 + 1, "timeout", on_done, &d);
		break;
	case 3:
		rc = dd_store_set_owner(t->s, t->a.agent_id, &org, on_done, &d);
		break;
	case 4:
		rc = dd_store_set_extras(t->s, t->a.agent_id, t->a.extras, 1,
					 on_done, &d);
		break;
	case 5:
		rc = dd_store_import(t->s, t->exported.data, t->exported.len,
				     T0, on_done, &d);
		break;
	default:
		rc = dd_store_delete(t->s, t->b.agent_id, on_done, &d);
		break;
	}
	rc = settle(t->f, &d, rc);
	disarm(t);
	return rc;
}

static dd_err_t step_read(struct tx *t, int which)
{
	dd_store_agent got, *v = NULL;
	dd_store_event *ev = NULL;
	dd_store_counts c;
	dd_buf out;
	size_t n = 0;
	dd_err_t rc;

	dd_buf_init(&out, DD_STORE_EXPORT_MAX);
	arm(t);
	switch (which) {
	case 0:
		rc = dd_store_get(t->s, t->a.agent_id, &got);
		if (rc == DD_OK)
			assert_string_equal(got.vm_name, "vm-1");
		dd_store_agent_clear(&got);
		break;
	case 1:
		rc = dd_store_list(t->s, &v, &n, NULL);
		if (rc == DD_OK)
			assert_int_equal(n, 2);
		dd_store_agents_free(v, n);
		break;
	case 2:
		rc = dd_store_count(t->s, &c);
		if (rc == DD_OK)
			assert_int_equal(c.agents, 2);
		break;
	case 3:
		rc = dd_store_history(t->s, t->b.agent_id, &ev, &n);
		dd_free(ev);
		break;
	default:
		rc = dd_store_export(t->s, &out, NULL);
		/* Never a success with a chunk missing. */
		if (rc == DD_OK)
			assert_int_equal(out.len, t->exported.len);
		break;
	}
	disarm(t);
	dd_buf_free(&out);
	return rc;
}

/* Fails allocation 1, 2, ... of one step until it needs no more. */
static void torture_step(struct tx *t, dd_err_t (*step)(struct tx *, int),
			 int which)
{
	dd_err_t rc;

	for (t->nth = 1;; t->nth++) {
		rc = step(t, which);
		if (rc != DD_OK && rc != DD_ERR_NOMEM)
			print_error("step %d, allocation %lu: %s\n", which,
				    t->nth, dd_errname(rc));
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (t->used < t->nth)
			break;
	}
	assert_int_equal(rc, DD_OK);
	if (getenv("DD_STORE_DEBUG"))
		print_message("step %d: %lu allocations\n", which, t->used);
}

static dd_err_t step_open_any(struct tx *t, int which)
{
	(void)which;
	return step_open(t);
}

static void torture(fx *f, const char *path)
{
	struct tx t = {.f = f, .path = path};
	struct done d = {0};

	torture_step(&t, step_open_any, 0);
	t.s = open_ok(f, path, NULL);
	make_agent(&t.a, "dd-production-agent-1", "vm-1", T0);
	make_agent(&t.b, "dd-production-agent-2", "vm-2", T0);
	for (int i = 0; i < 5; i++)
		torture_step(&t, step_write, i);
	dd_buf_init(&t.exported, DD_STORE_EXPORT_MAX);
	assert_int_equal(dd_store_export(t.s, &t.exported, NULL), DD_OK);
	for (int i = 0; i < 5; i++)
		torture_step(&t, step_read, i);
	torture_step(&t, step_write, 5);
	torture_step(&t, step_write, 6);
	/* Every failed write changed nothing: the store reads as expected. */
	assert_int_equal(settle(f, &d, dd_store_upsert(t.s, &t.b, 0, NULL,
						       on_done, &d)), DD_OK);
	assert_int_equal(list_count(t.s), 2);
	close_store(f, t.s);
	dd_buf_free(&t.exported);
	dd_store_agent_clear(&t.a);
	dd_store_agent_clear(&t.b);
}

static void test_torture_memory(void **state)
{
	torture(*state, ":memory:");
}

static void test_torture_file(void **state)
{
	fx *f = *state;

	torture(f, f->path);
}

/* SQLite allocates through dd_malloc too, so the hook fails its memory. */
static void *sq_malloc(int n)
{
	uint64_t *p = dd_malloc((size_t)n + 16);

	if (p == NULL)
		return NULL;
	p[0] = (uint64_t)n;
	return (char *)p + 16;
}

static void sq_free(void *p)
{
	if (p != NULL)
		dd_free((char *)p - 16);
}

static void *sq_realloc(void *p, int n)
{
	uint64_t *q = dd_realloc((char *)p - 16, (size_t)n + 16);

	if (q == NULL)
		return NULL;
	q[0] = (uint64_t)n;
	return (char *)q + 16;
}

static int sq_size(void *p)
{
	return p != NULL ? (int)*(uint64_t *)(void *)((char *)p - 16) : 0;
}

static int sq_roundup(int n)
{
	return (n + 7) & ~7;
}

static int sq_init(void *ud)
{
	(void)ud;
	return SQLITE_OK;
}

static void sq_shutdown(void *ud)
{
	(void)ud;
}

/* --- time and text ----------------------------------------------------- */

static void test_time_and_text(void **state)
{
	static const char *const bad[] = {
		"", "2026-06-01", "2026-06-01T12:00:00", "2026-06-01 12:00:00Z",
		"2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-06-31T00:00:00Z", "2026-06-01T24:00:00Z",
		"2026-06-01T12:60:00Z", "2026-06-01T12:00:60Z",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00+00:01",
		"2026-06-01T12:00:00.Z", "2026-06-01T12:00:00.1234567891Z",
		"2026-06-01T12:00:00Zjunk", "2026-06-01T12:00:00+0100",
		"+026-06-01T12:00:00Z", "2026-06-01T12:00:00+24:00",
	};
	char t[32], out[16];
	int64_t ms;

	(void)state;
	assert_int_equal(dd_store_time_parse("1970-01-01T00:00:00Z", &ms),
			 DD_OK);
	assert_true(ms == 0);
	assert_int_equal(dd_store_time_parse("2024-02-29T23:59:59.999999Z",
					     &ms), DD_OK);
	dd_store_time_format(ms, t, sizeof t);
	assert_string_equal(t, "2024-02-29T23:59:59.999Z");
	assert_int_equal(dd_store_time_parse("2026-05-28T22:26:40.5+02:00",
					     &ms), DD_OK);
	assert_true(ms == T0 + 500);
	assert_int_equal(dd_store_time_parse("2026-05-28T18:26:40-02:00", &ms),
			 DD_OK);
	assert_true(ms == T0);
	assert_int_equal(dd_store_time_parse("9999-12-31T23:59:59.999Z", &ms),
			 DD_OK);
	assert_true(ms == DD_STORE_TIME_MAX);
	dd_store_time_format(ms, t, sizeof t);
	assert_string_equal(t, "9999-12-31T23:59:59.999Z");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (dd_store_time_parse(bad[i], &ms) != DD_ERR_INVALID) {
			print_error("accepted %s\n", bad[i]);
			fail();
		}
	}
	/* Every second of a few centuries formats and parses back. */
	for (int64_t s = 0; s < INT64_C(253402300799); s += 86399 * 37) {
		dd_store_time_format(s * 1000 + 7, t, sizeof t);
		assert_int_equal(dd_store_time_parse(t, &ms), DD_OK);
		assert_true(ms == s * 1000 + 7);
	}

	assert_true(dd_store_text_ok("h\xc3\xa9llo", 6));
	assert_false(dd_store_text_ok("a\tb", 3));
	assert_false(dd_store_text_ok("\xc0\xaf", 2));       /* overlong */
	assert_false(dd_store_text_ok("\xed\xa0\x80", 3));   /* surrogate */
	assert_false(dd_store_text_ok("\xc2\x85", 2));       /* C1 control */
	assert_false(dd_store_text_ok("\xe2\x82", 2));       /* cut short */
	dd_store_text_clean("ab\xe2\x82\xac" "cd", out, 6);
	assert_string_equal(out, "ab\xe2\x82\xac");
	dd_store_text_clean("ab\xe2\x82\xac" "cd", out, 5);
	assert_string_equal(out, "ab");
	dd_store_text_clean("a\r\n\xff" "b", out, sizeof out);
	assert_string_equal(out, "a???b");
	assert_true(dd_store_id_ok("control-plane"));
	assert_false(dd_store_id_ok(""));
	assert_false(dd_store_id_ok("a/b"));
}

int main(void)
{
	static const sqlite3_mem_methods mem = {
		sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init,
		sq_shutdown, NULL,
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_and_text),
		cmocka_unit_test(test_migration_rule),
		cmocka_unit_test_setup_teardown(test_restart_keeps_everything,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_history_is_bounded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_export_import_round_trip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_reference_shape,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_and_cp_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_rows_read_alike,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_writes_in_order_on_loop_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_during_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torture_memory, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torture_file, setup,
						teardown),
	};

	/* Before SQLite initialises, which any other call would do. */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK)
		return 1;
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
