/*
 * store.c: opening and closing the fleet store, and the queue its
 * writes wait in (store_write.c runs them).
 *
 * Writes are jobs in a FIFO owned by the loop thread. One job at a time
 * runs on the libuv thread pool against the write connection (so the
 * connection never sees two threads at once, and the order of commits
 * is the order of submission); its result comes back to the loop
 * thread, the callback runs, and only then does the next job start.
 */
#include "cp/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

unsigned dd_store_schema_version(void)
{
	return (unsigned)dd_store_n_migrations;
}

/* --- connections ---------------------------------------------------- */

static dd_err_t exec_sql(sqlite3 *db, const char *sql, char *why,
			 size_t why_len)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? DD_OK
			       : dd_store_sqlite_why(db, rc, sql, why, why_len);
}

/*
 * Opens one connection with the settings both share: defensive mode (no
 * writes to the schema or the file header through SQL), no schema
 * code, no ATTACH, a size cap on every value, foreign keys on.
 */
static dd_err_t connect_db(const char *path, bool reader, unsigned wait_ms,
			   sqlite3 **out, char *why, size_t why_len)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		    (reader ? 0 : SQLITE_OPEN_CREATE);
	sqlite3 *db = NULL;
	dd_err_t rc;
	int src;

	src = sqlite3_open_v2(path, &db, flags, NULL);
	if (src != SQLITE_OK) {
		rc = dd_store_sqlite_why(db, src, "opening the store", why,
					 why_len);
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_busy_timeout(db, (int)wait_ms);
	rc = exec_sql(db, "PRAGMA foreign_keys = ON", why, why_len);
	if (rc == DD_OK && reader)
		rc = exec_sql(db, "PRAGMA query_only = ON", why, why_len);
out:
	if (rc) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return DD_OK;
}

/*
 * WAL: the loop thread's reads never wait for the writer. synchronous
 * NORMAL: a commit is not fsynced, only checkpoints are, so a scrape
 * result costs no disk flush. A power cut can lose the last commits but
 * never corrupts the file, and the fleet state is rebuilt anyway by the
 * collector within one discovery interval (Cloudflare is the durable
 * registry); a crash of the process alone loses nothing.
 */
static dd_err_t set_wal(sqlite3 *db, char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	dd_err_t rc;
	int src;

	src = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st,
				 NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = dd_store_sqlite_why(db, src, "switching to WAL", why,
					 why_len);
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	if (strcmp((const char *)mode, "wal") != 0) {
		snprintf(why, why_len, "the file system does not allow WAL "
			 "(journal mode %s)", (const char *)mode);
		rc = DD_ERR_IO;
		goto out;
	}
	rc = exec_sql(db, "PRAGMA synchronous = NORMAL", why, why_len);
	/* Bounds the -wal file left after a checkpoint. */
	if (rc == DD_OK)
		rc = exec_sql(db, "PRAGMA journal_size_limit = 4194304", why,
			      why_len);
out:
	sqlite3_finalize(st);
	return rc;
}

/* The file exists before SQLite opens it: ours alone, not a symlink. */
static dd_err_t precreate(const char *path, char *why, size_t why_len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		snprintf(why, why_len, "opening %s: %s", path,
			 uv_strerror(-errno));
		return DD_ERR_IO;
	}
	close(fd);
	return DD_OK;
}

static dd_err_t prepare_all(dd_store *s, char *why, size_t why_len)
{
	int src;

	for (int i = 0; i < W__COUNT; i++) {
		src = sqlite3_prepare_v3(s->wdb, dd_store_wsql[i], -1,
					 SQLITE_PREPARE_PERSISTENT, &s->w[i],
					 NULL);
		if (src != SQLITE_OK)
			return dd_store_sqlite_why(s->wdb, src,
						   dd_store_wsql[i], why,
						   why_len);
	}
	for (int i = 0; i < R__COUNT; i++) {
		src = sqlite3_prepare_v3(s->rdb, dd_store_rsql[i], -1,
					 SQLITE_PREPARE_PERSISTENT, &s->r[i],
					 NULL);
		if (src != SQLITE_OK)
			return dd_store_sqlite_why(s->rdb, src,
						   dd_store_rsql[i], why,
						   why_len);
	}
	return DD_OK;
}

static void close_reader(dd_store *s)
{
	for (int i = 0; i < R__COUNT; i++) {
		sqlite3_finalize(s->r[i]);
		s->r[i] = NULL;
	}
	if (s->rdb != s->wdb)
		sqlite3_close(s->rdb);
	s->rdb = NULL;
}

static void close_writer(dd_store *s)
{
	for (int i = 0; i < W__COUNT; i++) {
		sqlite3_finalize(s->w[i]);
		s->w[i] = NULL;
	}
	sqlite3_close(s->wdb);
	s->wdb = NULL;
}

dd_err_t dd_store_open(uv_loop_t *loop, const char *path,
		       const dd_store_opts *opts, dd_store **out, char *why,
		       size_t why_len)
{
	dd_store_opts o = {0};
	dd_store *s = NULL;
	bool locked = false;
	dd_err_t rc;

	*out = NULL;
	if (why_len > 0)
		why[0] = '\0';
	if (opts != NULL)
		o = *opts;
	if (o.history_keep == 0)
		o.history_keep = DD_STORE_HISTORY_DEFAULT;
	if (o.write_wait_ms == 0)
		o.write_wait_ms = DD_STORE_WRITE_WAIT_MS;
	if (o.history_keep > DD_STORE_HISTORY_MAX ||
	    o.write_wait_ms > 600000 || o.max_agents > DD_STORE_MAX_AGENTS ||
	    (o.env != NULL && (strlen(o.env) > DD_STORE_ENV_MAX ||
			       (o.env[0] != '\0' && !dd_store_id_ok(o.env))))) {
		snprintf(why, why_len, "store options out of range");
		return DD_ERR_INVALID;
	}
	if (!sqlite3_threadsafe()) {
		snprintf(why, why_len, "SQLite was built without threads");
		return DD_ERR_CONFIG;
	}
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->loop = loop;
	s->history_keep = o.history_keep;
	s->max_agents = o.max_agents ? o.max_agents : DD_STORE_MAX_AGENTS;
	if (o.env != NULL)
		memcpy(s->env, o.env, strlen(o.env) + 1);
	s->shared = strcmp(path, ":memory:") == 0;
	if (s->shared) {
		if (uv_mutex_init(&s->lock) != 0) {
			rc = DD_ERR_NOMEM;
			goto out;
		}
		locked = true;
	} else {
		rc = precreate(path, why, why_len);
		if (rc)
			goto out;
	}
	rc = connect_db(path, false, o.write_wait_ms, &s->wdb, why, why_len);
	if (rc == DD_OK && !s->shared)
		rc = set_wal(s->wdb, why, why_len);
	if (rc == DD_OK)
		rc = dd_store_migrate(s->wdb, dd_store_migrations,
				      dd_store_n_migrations, NULL, why,
				      why_len);
	if (rc)
		goto out;
	if (s->shared)
		s->rdb = s->wdb;
	else
		rc = connect_db(path, true, DD_STORE_READ_WAIT_MS, &s->rdb, why,
				why_len);
	if (rc == DD_OK)
		rc = prepare_all(s, why, why_len);
	if (rc)
		goto out;
	*out = s;
	s = NULL; /* transferred */
out:
	if (s != NULL) {
		close_reader(s);
		close_writer(s);
		if (locked)
			uv_mutex_destroy(&s->lock);
		dd_free(s);
	}
	return rc;
}

/* --- the queue (loop thread) -------------------------------------------- */

static void job_free(struct store_job *j)
{
	if (j == NULL)
		return;
	dd_store_row_free(&j->row);
	dd_free(j->fails);
	dd_free(j->data);
	dd_free(j);
}

static void pump(dd_store *s);

static void job_done(uv_work_t *w, int status)
{
	dd_store *s = w->data;
	struct store_job *j = s->running;
	dd_store_result res = {j->rc, j->rc ? j->why : "", j->written,
			       j->removed};

	(void)status; /* never cancelled */
	s->running = NULL;
	if (j->cb != NULL) {
		s->in_callback = true;
		j->cb(&res, j->ud);
		s->in_callback = false;
	}
	job_free(j);
	pump(s);
}

static void work_close(uv_work_t *w)
{
	dd_store *s = w->data;

	/* In ":memory:" mode the reader is this same connection. */
	close_reader(s);
	close_writer(s);
}

static void close_done(uv_work_t *w, int status)
{
	dd_store *s = w->data;
	dd_store_closed_cb cb = s->close_cb;
	void *ud = s->close_ud;

	(void)status;
	if (s->shared)
		uv_mutex_destroy(&s->lock);
	dd_free(s);
	if (cb != NULL)
		cb(ud);
}

/* Starts the next job, or the close once the queue has drained. */
static void pump(dd_store *s)
{
	uv_after_work_cb after = job_done;
	uv_work_cb work = dd_store_work_job;

	if (s->running != NULL || s->close_started || s->in_callback)
		return;
	if (s->head == NULL) {
		if (!s->closing)
			return;
		s->close_started = true;
		work = work_close;
		after = close_done;
	} else {
		s->running = s->head;
		s->head = s->head->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->queued--;
	}
	s->work.data = s;
	/* Fails only for a NULL work callback. */
	if (uv_queue_work(s->loop, &s->work, work, after) != 0)
		abort();
}

void dd_store_close(dd_store *s, dd_store_closed_cb cb, void *ud)
{
	if (s == NULL) {
		if (cb != NULL)
			cb(ud);
		return;
	}
	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	s->close_ud = ud;
	if (!s->shared)
		close_reader(s);
	pump(s);
}

/* --- submissions ------------------------------------------------------- */

static dd_err_t job_new(dd_store *s, enum store_op op, dd_store_cb cb, void *ud,
			struct store_job **out)
{
	struct store_job *j;

	*out = NULL;
	if (s->closing)
		return DD_ERR_CLOSED;
	if (s->queued >= DD_STORE_MAX_QUEUE)
		return DD_ERR_BUSY;
	j = dd_calloc(1, sizeof *j);
	if (j == NULL)
		return DD_ERR_NOMEM;
	j->op = op;
	j->cb = cb;
	j->ud = ud;
	dd_store_agent_init(&j->row.a);
	*out = j;
	return DD_OK;
}

static void enqueue(dd_store *s, struct store_job *j)
{
	if (s->tail != NULL)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->queued++;
	pump(s);
}

/* An agent id for the field-level writes. */
static dd_err_t job_for(dd_store *s, enum store_op op, const char *agent_id,
			dd_store_cb cb, void *ud, struct store_job **out)
{
	dd_err_t rc;

	if (agent_id == NULL || !dd_store_id_ok(agent_id))
		return DD_ERR_INVALID;
	rc = job_new(s, op, cb, ud, out);
	if (rc == DD_OK)
		memcpy((*out)->row.a.agent_id, agent_id, strlen(agent_id) + 1);
	return rc;
}

static dd_err_t submit_record(dd_store *s, enum store_op op,
			      const dd_store_agent *a, unsigned flags,
			      const char *reason, dd_store_cb cb, void *ud)
{
	struct store_job *j = NULL;
	dd_err_t rc;

	rc = job_new(s, op, cb, ud, &j);
	if (rc == DD_OK)
		rc = dd_store_row_make(a, &j->row, j->why, sizeof j->why);
	if (rc) {
		job_free(j);
		return rc;
	}
	j->flags = flags;
	if (op == OP_REGISTER) {
		/* A registration starts the record over, whatever was there. */
		if (j->row.a.registered_at_ms == 0)
			j->row.a.registered_at_ms = j->row.a.last_seen_ms;
		j->row.a.failures = 0;
		j->row.a.last_failure_ms = 0;
		j->row.a.last_error[0] = '\0';
	}
	if (reason != NULL)
		dd_store_text_clean(reason, j->reason, sizeof j->reason);
	enqueue(s, j);
	return DD_OK;
}

dd_err_t dd_store_register(dd_store *s, const dd_store_agent *a,
			   dd_store_cb cb, void *ud)
{
	return submit_record(s, OP_REGISTER, a, 0, NULL, cb, ud);
}

dd_err_t dd_store_upsert(dd_store *s, const dd_store_agent *a,
			 unsigned flags, const char *reason, dd_store_cb cb,
			 void *ud)
{
	if (flags & ~DD_STORE_KEEP_EXTRAS)
		return DD_ERR_INVALID;
	return submit_record(s, OP_UPSERT, a, flags, reason, cb, ud);
}

dd_err_t dd_store_mark_failure(dd_store *s, const char *agent_id,
			       dd_agent_status status, int64_t at_ms,
			       const char *error, dd_store_cb cb, void *ud)
{
	struct store_job *j = NULL;
	dd_err_t rc;

	if ((unsigned)status >= DD_AGENT__COUNT || at_ms < 0 ||
	    at_ms > DD_STORE_TIME_MAX)
		return DD_ERR_INVALID;
	rc = job_for(s, OP_FAIL, agent_id, cb, ud, &j);
	if (rc)
		return rc;
	j->row.a.status = status;
	j->row.a.last_failure_ms = at_ms;
	dd_store_text_clean(error != NULL && error[0] != '\0' ? error
			    : "scrape failed", j->row.a.last_error,
			    sizeof j->row.a.last_error);
	enqueue(s, j);
	return DD_OK;
}

dd_err_t dd_store_mark_failures(dd_store *s, const dd_store_failure *v,
				size_t n, dd_store_cb cb, void *ud)
{
	struct store_job *j = NULL;
	dd_store_failure *copy;
	dd_err_t rc;

	if (v == NULL || n == 0 || n > DD_STORE_MAX_BATCH)
		return DD_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (strnlen(v[i].agent_id, sizeof v[i].agent_id) ==
			    sizeof v[i].agent_id ||
		    !dd_store_id_ok(v[i].agent_id) ||
		    (unsigned)v[i].status >= DD_AGENT__COUNT ||
		    v[i].at_ms < 0 || v[i].at_ms > DD_STORE_TIME_MAX)
			return DD_ERR_INVALID;
	}
	copy = dd_calloc(n, sizeof *copy);
	if (copy == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		char err[sizeof v[i].error];

		copy[i] = v[i];
		memcpy(err, v[i].error, sizeof err);
		err[sizeof err - 1] = '\0';
		dd_store_text_clean(err[0] != '\0' ? err : "scrape failed",
				    copy[i].error, sizeof copy[i].error);
	}
	rc = job_new(s, OP_FAILS, cb, ud, &j);
	if (rc) {
		dd_free(copy);
		return rc;
	}
	j->fails = copy;
	j->n_fails = n;
	enqueue(s, j);
	return DD_OK;
}

dd_err_t dd_store_set_owner(dd_store *s, const char *agent_id,
			    const dd_principal *owner, dd_store_cb cb,
			    void *ud)
{
	struct store_job *j = NULL;
	dd_principal checked;
	dd_err_t rc;

	if (owner != NULL) {
		if (strnlen(owner->name, sizeof owner->name) ==
			    sizeof owner->name ||
		    owner->id > (uint64_t)DD_STORE_COUNT_MAX)
			return DD_ERR_INVALID;
		rc = dd_principal_make(owner->kind, owner->name, owner->id,
				       &checked, NULL, 0);
		if (rc)
			return rc;
	}
	rc = job_for(s, OP_OWNER, agent_id, cb, ud, &j);
	if (rc)
		return rc;
	j->row.a.has_owner = owner != NULL;
	if (owner != NULL)
		j->row.a.owner = checked;
	enqueue(s, j);
	return DD_OK;
}

dd_err_t dd_store_set_extras(dd_store *s, const char *agent_id,
			     const dd_store_extra *extras, size_t n,
			     dd_store_cb cb, void *ud)
{
	struct store_job *j = NULL;
	dd_err_t rc;

	if (n > 0 && extras == NULL)
		return DD_ERR_INVALID;
	rc = dd_store_extras_check(extras, n, NULL, 0);
	if (rc)
		return rc;
	rc = job_for(s, OP_EXTRAS, agent_id, cb, ud, &j);
	if (rc)
		return rc;
	if (n > 0)
		memcpy(j->row.a.extras, extras, n * sizeof *extras);
	j->row.a.n_extras = n;
	enqueue(s, j);
	return DD_OK;
}

dd_err_t dd_store_delete(dd_store *s, const char *agent_id, dd_store_cb cb,
			 void *ud)
{
	struct store_job *j = NULL;
	dd_err_t rc;

	rc = job_for(s, OP_DELETE, agent_id, cb, ud, &j);
	if (rc == DD_OK)
		enqueue(s, j);
	return rc;
}

dd_err_t dd_store_import(dd_store *s, const void *data, size_t len,
			 int64_t now_ms, dd_store_cb cb, void *ud)
{
	struct store_job *j = NULL;
	dd_err_t rc;

	if (len > DD_STORE_EXPORT_MAX)
		return DD_ERR_TOO_LARGE;
	if ((data == NULL && len > 0) || now_ms < 0 ||
	    now_ms > DD_STORE_TIME_MAX)
		return DD_ERR_INVALID;
	rc = job_new(s, OP_IMPORT, cb, ud, &j);
	if (rc)
		return rc;
	j->data = dd_malloc(len);
	if (j->data == NULL) {
		job_free(j);
		return DD_ERR_NOMEM;
	}
	if (len > 0)
		memcpy(j->data, data, len);
	j->len = len;
	j->at_ms = now_ms;
	enqueue(s, j);
	return DD_OK;
}
