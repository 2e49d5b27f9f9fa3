/*
 * store_write.c: the fleet store's writes as they run on the libuv
 * thread pool, one at a time, each in its own transaction on the write
 * connection (store.c queues them and reports back on the loop thread).
 * Values are only ever bound, never spliced into SQL.
 */
#include "cp/store_int.h"

#include <stdio.h>
#include <string.h>

/* Binds in order and remembers the first failure. */
struct binder {
	sqlite3_stmt *st;
	int rc;
};

static void b_text(struct binder *b, int col, const char *v)
{
	if (b->rc == SQLITE_OK)
		b->rc = v != NULL ? sqlite3_bind_text(b->st, col + 1, v, -1,
						      SQLITE_STATIC)
				  : sqlite3_bind_null(b->st, col + 1);
}

static void b_int(struct binder *b, int col, int64_t v)
{
	if (b->rc == SQLITE_OK)
		b->rc = sqlite3_bind_int64(b->st, col + 1, v);
}

/* Runs a bound statement to its end; the statement is reset after. */
static dd_err_t run(dd_store *s, struct store_job *j, enum store_wstmt w,
		    int bind_rc)
{
	sqlite3_stmt *st = s->w[w];
	dd_err_t rc = DD_OK;
	int src = bind_rc;

	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src != SQLITE_DONE && src != SQLITE_ROW)
		rc = dd_store_sqlite_why(s->wdb, src, dd_store_wsql[w], j->why,
					 sizeof j->why);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* The agent's status now: NOT_FOUND when there is no such agent. */
static dd_err_t current_status(dd_store *s, struct store_job *j,
			       const char *id, dd_agent_status *out)
{
	sqlite3_stmt *st = s->w[W_STATUS];
	const unsigned char *t;
	dd_err_t rc = DD_OK;
	int src;

	src = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		t = sqlite3_column_text(st, 0);
		if (t == NULL ||
		    dd_agent_status_parse((const char *)t, out) != DD_OK)
			rc = DD_ERR_NOMEM; /* the CHECK admits nothing else */
	} else if (src == SQLITE_DONE) {
		snprintf(j->why, sizeof j->why, "no agent %s", id);
		rc = DD_ERR_NOT_FOUND;
	} else {
		rc = dd_store_sqlite_why(s->wdb, src, "reading a status",
					 j->why, sizeof j->why);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static dd_err_t add_history(dd_store *s, struct store_job *j, const char *id,
			    int64_t at, const dd_agent_status *from,
			    dd_agent_status to, const char *reason)
{
	struct binder b = {s->w[W_HIST_ADD], SQLITE_OK};
	dd_err_t rc;

	b_text(&b, 0, id);
	b_int(&b, 1, at);
	b_text(&b, 2, from != NULL ? dd_agent_status_name(*from) : NULL);
	b_text(&b, 3, dd_agent_status_name(to));
	b_text(&b, 4, reason);
	rc = run(s, j, W_HIST_ADD, b.rc);
	if (rc)
		return rc;
	b = (struct binder){s->w[W_HIST_TRIM], SQLITE_OK};
	b_text(&b, 0, id);
	b_int(&b, 1, s->history_keep);
	return run(s, j, W_HIST_TRIM, b.rc);
}

static dd_err_t put_extras(dd_store *s, struct store_job *j,
			   const dd_store_agent *a)
{
	struct binder b = {s->w[W_EXTRAS_CLEAR], SQLITE_OK};
	dd_err_t rc;

	b_text(&b, 0, a->agent_id);
	rc = run(s, j, W_EXTRAS_CLEAR, b.rc);
	for (size_t i = 0; rc == DD_OK && i < a->n_extras; i++) {
		b = (struct binder){s->w[W_EXTRA_ADD], SQLITE_OK};
		b_text(&b, 0, a->agent_id);
		b_int(&b, 1, (int64_t)i);
		b_text(&b, 2, a->extras[i].label);
		b_int(&b, 3, a->extras[i].port);
		rc = run(s, j, W_EXTRA_ADD, b.rc);
	}
	return rc;
}

static const char *const ingress_names[] = {
	[DD_INGRESS_NONE] = "none",
	[DD_INGRESS_DIRECT] = "direct",
	[DD_INGRESS_TUNNEL] = "tunnel",
};

static int bind_row(sqlite3_stmt *st, const struct store_row *r, bool import)
{
	const dd_store_agent *a = &r->a;
	struct binder b = {st, SQLITE_OK};
	int64_t registered = a->registered_at_ms;

	if (!import && registered == 0)
		registered = a->last_seen_ms;
	b_text(&b, C_AGENT_ID, a->agent_id);
	b_text(&b, C_HOSTNAME, a->hostname);
	b_text(&b, C_VM_NAME, a->vm_name);
	b_text(&b, C_ENV, a->env);
	b_text(&b, C_ATT_TYPE, a->attestation_type);
	b_text(&b, C_STATUS, dd_agent_status_name(a->status));
	b_text(&b, C_MODE, a->read_only ? "read_only" : "read_write");
	b_text(&b, C_INTEGRITY, a->clean ? "clean" : "controlled");
	b_text(&b, C_OWNER_KIND, a->has_owner ?
	       dd_principal_kind_name(a->owner.kind) : NULL);
	b_text(&b, C_OWNER_NAME, a->has_owner ? a->owner.name : NULL);
	if (a->has_owner)
		b_int(&b, C_OWNER_ID, (int64_t)a->owner.id);
	else
		b_text(&b, C_OWNER_ID, NULL);
	b_int(&b, C_ITA_IAT, a->ita.iat);
	b_int(&b, C_ITA_EXP, a->ita.exp);
	b_text(&b, C_ITA_TCB, a->ita.tcb_status);
	b_text(&b, C_ITA_ATTESTER, a->ita.attester_type);
	b_text(&b, C_ITA_MRTD, a->ita.mrtd);
	b_text(&b, C_ITA_MRSIGNER, a->ita.mrsigner);
	b_text(&b, C_ITA_REPORT_DATA, a->ita.report_data);
	b_text(&b, C_ITA_CLAIMS, r->claims);
	b_text(&b, C_NOISE_PUBKEY, a->noise_pubkey);
	b_text(&b, C_TUNNEL_ID, a->tunnel_id);
	b_text(&b, C_INGRESS_KIND, ingress_names[a->ingress]);
	b_text(&b, C_INGRESS_URL, a->ingress_url);
	b_text(&b, C_INGRESS_DETAIL, r->detail);
	b_int(&b, C_LAST_SEEN, a->last_seen_ms);
	b_int(&b, C_REGISTERED_AT, registered);
	b_int(&b, C_FAILURES, import ? a->failures : 0);
	b_int(&b, C_LAST_FAILURE_AT, import ? a->last_failure_ms : 0);
	b_text(&b, C_LAST_ERROR, import ? a->last_error : "");
	b_text(&b, C_HEALTH, r->health);
	b_int(&b, C_DEPLOYMENTS, r->deployments);
	b_int(&b, C_UNITS, r->units);
	b_int(&b, C_ORACLES, r->oracles);
	b_int(&b, C__COUNT, import);
	return b.rc;
}

/* Inserts or replaces one record; history at `at` for a new status. */
static dd_err_t upsert_row(dd_store *s, struct store_job *j,
			   const struct store_row *r, bool import,
			   bool keep_extras, int64_t at, const char *reason)
{
	sqlite3_stmt *count = s->w[W_COUNT];
	dd_agent_status old;
	bool fresh = false;
	int64_t n = 0;
	dd_err_t rc;
	int src;

	rc = current_status(s, j, r->a.agent_id, &old);
	if (rc == DD_ERR_NOT_FOUND) {
		fresh = true;
		rc = DD_OK;
		j->why[0] = '\0';
		src = sqlite3_step(count);
		if (src == SQLITE_ROW)
			n = sqlite3_column_int64(count, 0);
		else
			rc = dd_store_sqlite_why(s->wdb, src, "counting agents",
						 j->why, sizeof j->why);
		sqlite3_reset(count);
		if (rc == DD_OK && n >= 0 && (size_t)n >= s->max_agents) {
			snprintf(j->why, sizeof j->why, "the store is full "
				 "(%zu agents)", s->max_agents);
			rc = DD_ERR_BUSY;
		}
	}
	if (rc)
		return rc;
	rc = run(s, j, W_UPSERT, bind_row(s->w[W_UPSERT], r, import));
	if (rc == DD_OK && (!keep_extras || fresh))
		rc = put_extras(s, j, &r->a);
	if (rc == DD_OK && (fresh || old != r->a.status))
		rc = add_history(s, j, r->a.agent_id, at, fresh ? NULL : &old,
				 r->a.status, reason);
	if (rc == DD_OK)
		j->written++;
	return rc;
}

static dd_err_t do_fail(dd_store *s, struct store_job *j)
{
	const dd_store_agent *a = &j->row.a;
	struct binder b = {s->w[W_FAIL], SQLITE_OK};
	dd_agent_status old;
	dd_err_t rc;

	rc = current_status(s, j, a->agent_id, &old);
	if (rc)
		return rc;
	b_text(&b, 0, a->agent_id);
	b_text(&b, 1, dd_agent_status_name(a->status));
	b_int(&b, 2, a->last_failure_ms);
	b_text(&b, 3, a->last_error);
	rc = run(s, j, W_FAIL, b.rc);
	if (rc == DD_OK && old != a->status)
		rc = add_history(s, j, a->agent_id, a->last_failure_ms, &old,
				 a->status, a->last_error);
	if (rc == DD_OK)
		j->written = 1;
	return rc;
}

/* A batch of failures; agents gone since are skipped. */
static dd_err_t do_fails(dd_store *s, struct store_job *j)
{
	dd_store_agent *a = &j->row.a;
	size_t written = 0;
	dd_err_t rc = DD_OK;

	for (size_t i = 0; rc == DD_OK && i < j->n_fails; i++) {
		const dd_store_failure *f = &j->fails[i];

		memcpy(a->agent_id, f->agent_id, sizeof a->agent_id);
		a->status = f->status;
		a->last_failure_ms = f->at_ms;
		memcpy(a->last_error, f->error, sizeof a->last_error);
		rc = do_fail(s, j);
		if (rc == DD_ERR_NOT_FOUND) {
			j->why[0] = '\0';
			rc = DD_OK;
		} else if (rc == DD_OK) {
			written++;
		}
	}
	j->written = written;
	return rc;
}

/* owner, extras, delete: an existing agent, one statement. */
static dd_err_t do_simple(dd_store *s, struct store_job *j)
{
	const dd_store_agent *a = &j->row.a;
	struct binder b = {NULL, SQLITE_OK};
	dd_agent_status old;
	dd_err_t rc;

	rc = current_status(s, j, a->agent_id, &old);
	if (rc)
		return rc;
	switch (j->op) {
	case OP_OWNER:
		b.st = s->w[W_OWNER];
		b_text(&b, 0, a->agent_id);
		b_text(&b, 1, a->has_owner ?
		       dd_principal_kind_name(a->owner.kind) : NULL);
		b_text(&b, 2, a->has_owner ? a->owner.name : NULL);
		if (a->has_owner)
			b_int(&b, 3, (int64_t)a->owner.id);
		else
			b_text(&b, 3, NULL);
		rc = run(s, j, W_OWNER, b.rc);
		break;
	case OP_EXTRAS:
		rc = put_extras(s, j, a);
		break;
	default:
		b.st = s->w[W_DELETE];
		b_text(&b, 0, a->agent_id);
		rc = run(s, j, W_DELETE, b.rc);
		j->removed = rc == DD_OK ? 1 : 0;
		return rc;
	}
	if (rc == DD_OK)
		j->written = 1;
	return rc;
}

static dd_err_t do_job(dd_store *s, struct store_job *j, struct store_row *rows,
		       size_t n)
{
	struct binder b = {s->w[W_EVICT], SQLITE_OK};
	const struct store_row *r = &j->row;
	dd_err_t rc;

	switch (j->op) {
	case OP_REGISTER:
		b_text(&b, 0, r->a.vm_name);
		b_text(&b, 1, r->a.agent_id);
		rc = run(s, j, W_EVICT, b.rc);
		if (rc)
			return rc;
		j->removed = (size_t)sqlite3_changes(s->wdb);
		/* Every field as given: store.c made it a fresh record. */
		return upsert_row(s, j, r, true, false, r->a.last_seen_ms,
				  "registered");
	case OP_UPSERT:
		return upsert_row(s, j, r, false,
				  j->flags & DD_STORE_KEEP_EXTRAS,
				  r->a.last_seen_ms,
				  j->reason[0] != '\0' ? j->reason : "updated");
	case OP_FAIL:
		return do_fail(s, j);
	case OP_FAILS:
		return do_fails(s, j);
	case OP_IMPORT:
		rc = DD_OK;
		for (size_t i = 0; rc == DD_OK && i < n; i++)
			rc = upsert_row(s, j, &rows[i], true, false, j->at_ms,
					"imported");
		return rc;
	case OP_OWNER:
	case OP_EXTRAS:
	case OP_DELETE:
		break;
	}
	return do_simple(s, j);
}

void dd_store_work_job(uv_work_t *w)
{
	dd_store *s = w->data;
	struct store_job *j = s->running;
	struct store_row *rows = NULL;
	size_t n = 0;
	dd_err_t rc = DD_OK;

	/* Parsed before the transaction, so the lock is held briefly. */
	if (j->op == OP_IMPORT)
		rc = dd_store_import_parse(j->data, j->len, s->env,
					   s->max_agents, &rows, &n, j->why,
					   sizeof j->why);
	if (s->shared)
		uv_mutex_lock(&s->lock);
	if (rc == DD_OK)
		rc = run(s, j, W_BEGIN, SQLITE_OK);
	if (rc == DD_OK)
		rc = do_job(s, j, rows, n);
	if (rc == DD_OK)
		rc = run(s, j, W_COMMIT, SQLITE_OK);
	/* SQLite may have rolled back already (after NOMEM, say). */
	if (rc && !sqlite3_get_autocommit(s->wdb)) {
		sqlite3_step(s->w[W_ROLLBACK]);
		sqlite3_reset(s->w[W_ROLLBACK]);
	}
	if (s->shared)
		uv_mutex_unlock(&s->lock);
	if (rc) {
		j->written = 0;
		j->removed = 0;
	}
	j->rc = rc;
	dd_store_rows_free(rows, n);
}
