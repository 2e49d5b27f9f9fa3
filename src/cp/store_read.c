/*
 * store_read.c: the fleet store's reads, synchronous on the loop thread
 * (store.h says what they cost). Each read is one read transaction, so
 * a record and its extras come from the same snapshot, and every row is
 * checked on the way out as strictly as on the way in.
 */
#include "cp/store_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

void dd_store_rlock(dd_store *s)
{
	if (s->shared)
		uv_mutex_lock(&s->lock);
}

void dd_store_runlock(dd_store *s)
{
	if (s->shared)
		uv_mutex_unlock(&s->lock);
}

static void reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static dd_err_t read_begin(dd_store *s)
{
	dd_err_t rc;
	int src;

	if (s->closing)
		return DD_ERR_CLOSED;
	dd_store_rlock(s);
	src = sqlite3_step(s->r[R_BEGIN]);
	rc = dd_store_sqlite_err(src);
	sqlite3_reset(s->r[R_BEGIN]);
	if (rc)
		dd_store_runlock(s);
	return rc;
}

static void read_end(dd_store *s)
{
	sqlite3_step(s->r[R_END]);
	sqlite3_reset(s->r[R_END]);
	/* A failed COMMIT of a read leaves nothing to keep: drop it. */
	if (!sqlite3_get_autocommit(s->rdb))
		sqlite3_exec(s->rdb, "ROLLBACK", NULL, NULL, NULL);
	dd_store_runlock(s);
}

/*
 * A text column into dst[size]. NULL reads as "". INVALID when it does
 * not fit or holds a NUL (a damaged row); NOMEM when SQLite could not
 * produce it.
 */
static dd_err_t col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const unsigned char *t;
	int n;

	dst[0] = '\0';
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return DD_OK;
	t = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (t == NULL)
		return DD_ERR_NOMEM;
	if (n < 0 || (size_t)n >= size)
		return DD_ERR_INVALID;
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return strlen(dst) == (size_t)n ? DD_OK : DD_ERR_INVALID;
}

/* A JSON column (NULL: *out NULL) parsed as strictly as any input. */
static dd_err_t col_json(sqlite3_stmt *st, int col, size_t max, json_t **out)
{
	const unsigned char *t;
	dd_err_t rc;
	int n;

	*out = NULL;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return DD_OK;
	t = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (t == NULL)
		return DD_ERR_NOMEM;
	rc = dd_json_parse(t, (size_t)n, max, out, NULL, 0);
	return rc == DD_ERR_TOO_LARGE ? DD_ERR_INVALID : rc;
}

static dd_err_t read_extras(dd_store *s, dd_store_agent *a)
{
	sqlite3_stmt *st = s->r[R_EXTRAS];
	dd_err_t rc = DD_OK;
	int64_t port;
	int src;

	src = sqlite3_bind_text(st, 1, a->agent_id, -1, SQLITE_STATIC);
	while (rc == DD_OK && src == SQLITE_OK) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW)
			break;
		src = SQLITE_OK;
		if (a->n_extras == DD_STORE_MAX_EXTRAS) {
			rc = DD_ERR_INVALID;
			break;
		}
		rc = col_text(st, 0, a->extras[a->n_extras].label,
			      sizeof a->extras[0].label);
		port = sqlite3_column_int64(st, 1);
		if (rc == DD_OK && (port < 1 || port > 65535))
			rc = DD_ERR_INVALID;
		if (rc == DD_OK)
			a->extras[a->n_extras++].port = (uint16_t)port;
	}
	if (rc == DD_OK && src != SQLITE_DONE && src != SQLITE_OK)
		rc = dd_store_sqlite_err(src);
	reset(st);
	return rc;
}

static dd_err_t pick(const char *v, const char *one, const char *two,
		     bool *first)
{
	if (strcmp(v, one) != 0 && strcmp(v, two) != 0)
		return DD_ERR_INVALID;
	*first = strcmp(v, one) == 0;
	return DD_OK;
}

static dd_err_t ingress_kind(const char *v, dd_ingress_kind *out)
{
	if (strcmp(v, "none") == 0)
		*out = DD_INGRESS_NONE;
	else if (strcmp(v, "direct") == 0)
		*out = DD_INGRESS_DIRECT;
	else if (strcmp(v, "tunnel") == 0)
		*out = DD_INGRESS_TUNNEL;
	else
		return DD_ERR_INVALID;
	return DD_OK;
}

/* The columns of R_SCAN, in order. */
enum scan_col {
	S_ID, S_HOST, S_VM, S_ATT, S_STATUS, S_MODE, S_INTEGRITY, S_OKIND,
	S_ONAME, S_OID, S_IKIND, S_IURL, S_SEEN, S_REG, S_DEPL, S_UNITS,
	S_ORACLES, S_TUNNEL
};

/* Where the columns a record and a brief share stand in a statement. */
struct head_cols {
	int id, host, vm, att, status, mode, integrity, okind, oname, oid,
	    ikind, iurl, tunnel, seen, reg;
};

static const struct head_cols agent_cols = {
	C_AGENT_ID, C_HOSTNAME, C_VM_NAME, C_ATT_TYPE, C_STATUS, C_MODE,
	C_INTEGRITY, C_OWNER_KIND, C_OWNER_NAME, C_OWNER_ID, C_INGRESS_KIND,
	C_INGRESS_URL, C_TUNNEL_ID, C_LAST_SEEN, C_REGISTERED_AT,
};

static const struct head_cols scan_cols = {
	S_ID, S_HOST, S_VM, S_ATT, S_STATUS, S_MODE, S_INTEGRITY, S_OKIND,
	S_ONAME, S_OID, S_IKIND, S_IURL, S_TUNNEL, S_SEEN, S_REG,
};

/*
 * The columns every record and brief hold, into b (its counts stay 0),
 * for a full read and a scan alike: INVALID for a row that fails any
 * check a full read makes of them.
 */
static dd_err_t row_head(sqlite3_stmt *st, const struct head_cols *k,
			 dd_store_brief *b)
{
	char word[16], kind[16];
	int64_t id;
	dd_err_t rc;

	memset(b, 0, sizeof *b);
	rc = col_text(st, k->id, b->agent_id, sizeof b->agent_id);
	if (rc == DD_OK)
		rc = col_text(st, k->host, b->hostname, sizeof b->hostname);
	if (rc == DD_OK)
		rc = col_text(st, k->vm, b->vm_name, sizeof b->vm_name);
	if (rc == DD_OK)
		rc = col_text(st, k->att, b->attestation_type,
			      sizeof b->attestation_type);
	if (rc == DD_OK)
		rc = col_text(st, k->status, word, sizeof word);
	if (rc == DD_OK)
		rc = dd_agent_status_parse(word, &b->status);
	if (rc == DD_OK)
		rc = col_text(st, k->mode, word, sizeof word);
	if (rc == DD_OK)
		rc = pick(word, "read_only", "read_write", &b->read_only);
	if (rc == DD_OK)
		rc = col_text(st, k->integrity, word, sizeof word);
	if (rc == DD_OK)
		rc = pick(word, "clean", "controlled", &b->clean);
	if (rc == DD_OK)
		rc = col_text(st, k->okind, kind, sizeof kind);
	if (rc == DD_OK && kind[0] != '\0') {
		b->has_owner = true;
		rc = dd_principal_kind_parse(kind, &b->owner.kind);
		if (rc == DD_OK)
			rc = col_text(st, k->oname, b->owner.name,
				      sizeof b->owner.name);
		id = sqlite3_column_int64(st, k->oid);
		b->owner.id = id > 0 ? (uint64_t)id : 0;
	}
	if (rc == DD_OK)
		rc = col_text(st, k->ikind, word, sizeof word);
	if (rc == DD_OK)
		rc = ingress_kind(word, &b->ingress);
	if (rc == DD_OK)
		rc = col_text(st, k->iurl, b->ingress_url,
			      sizeof b->ingress_url);
	if (rc == DD_OK)
		rc = col_text(st, k->tunnel, b->tunnel_id,
			      sizeof b->tunnel_id);
	if (rc)
		return rc;
	b->last_seen_ms = sqlite3_column_int64(st, k->seen);
	b->registered_at_ms = sqlite3_column_int64(st, k->reg);
	return dd_store_brief_check(b) == DD_OK ? DD_OK : DD_ERR_INVALID;
}

/* The head's fields into a record (the arrays have the same sizes). */
static void head_to_agent(const dd_store_brief *b, dd_store_agent *a)
{
	memcpy(a->agent_id, b->agent_id, sizeof a->agent_id);
	memcpy(a->hostname, b->hostname, sizeof a->hostname);
	memcpy(a->vm_name, b->vm_name, sizeof a->vm_name);
	memcpy(a->attestation_type, b->attestation_type,
	       sizeof a->attestation_type);
	memcpy(a->tunnel_id, b->tunnel_id, sizeof a->tunnel_id);
	memcpy(a->ingress_url, b->ingress_url, sizeof a->ingress_url);
	a->status = b->status;
	a->read_only = b->read_only;
	a->clean = b->clean;
	a->has_owner = b->has_owner;
	a->owner = b->owner;
	a->ingress = b->ingress;
	a->last_seen_ms = b->last_seen_ms;
	a->registered_at_ms = b->registered_at_ms;
}

/* The current row of st into a: INVALID for a row that fails a check. */
static dd_err_t row_to_agent(dd_store *s, sqlite3_stmt *st, dd_store_agent *a)
{
	dd_store_brief head;
	int64_t failures;
	dd_err_t rc;

	dd_store_agent_init(a);
	rc = row_head(st, &agent_cols, &head);
	if (rc)
		return rc;
	head_to_agent(&head, a);
	rc = col_text(st, C_ENV, a->env, sizeof a->env);
	if (rc == DD_OK)
		rc = col_text(st, C_ITA_TCB, a->ita.tcb_status,
			      sizeof a->ita.tcb_status);
	if (rc == DD_OK)
		rc = col_text(st, C_ITA_ATTESTER, a->ita.attester_type,
			      sizeof a->ita.attester_type);
	if (rc == DD_OK)
		rc = col_text(st, C_ITA_MRTD, a->ita.mrtd, sizeof a->ita.mrtd);
	if (rc == DD_OK)
		rc = col_text(st, C_ITA_MRSIGNER, a->ita.mrsigner,
			      sizeof a->ita.mrsigner);
	if (rc == DD_OK)
		rc = col_text(st, C_ITA_REPORT_DATA, a->ita.report_data,
			      sizeof a->ita.report_data);
	if (rc == DD_OK)
		rc = col_text(st, C_NOISE_PUBKEY, a->noise_pubkey,
			      sizeof a->noise_pubkey);
	if (rc == DD_OK)
		rc = col_text(st, C_LAST_ERROR, a->last_error,
			      sizeof a->last_error);
	if (rc == DD_OK)
		rc = col_json(st, C_ITA_CLAIMS, DD_STORE_CLAIMS_MAX,
			      &a->ita.claims);
	if (rc == DD_OK)
		rc = col_json(st, C_INGRESS_DETAIL, DD_STORE_DETAIL_MAX,
			      &a->ingress_detail);
	if (rc == DD_OK)
		rc = col_json(st, C_HEALTH, DD_STORE_HEALTH_MAX, &a->health);
	if (rc == DD_OK)
		rc = read_extras(s, a);
	if (rc)
		return rc;
	a->ita.iat = sqlite3_column_int64(st, C_ITA_IAT);
	a->ita.exp = sqlite3_column_int64(st, C_ITA_EXP);
	a->last_failure_ms = sqlite3_column_int64(st, C_LAST_FAILURE_AT);
	failures = sqlite3_column_int64(st, C_FAILURES);
	if (failures < 0 || failures > UINT32_MAX)
		return DD_ERR_INVALID;
	a->failures = (uint32_t)failures;
	/* The parse caps above bounded the sizes already. */
	rc = dd_store_agent_check_read(a);
	if (rc)
		return rc == DD_ERR_NOMEM ? rc : DD_ERR_INVALID;
	if (a->ita.claims == NULL)
		a->ita.claims = json_object();
	if (a->health == NULL)
		a->health = json_object();
	if (a->ita.claims == NULL || a->health == NULL)
		return DD_ERR_NOMEM;
	return DD_OK;
}

dd_err_t dd_store_get(dd_store *s, const char *agent_id, dd_store_agent *out)
{
	sqlite3_stmt *st;
	dd_err_t rc;
	int src;

	dd_store_agent_init(out);
	if (!dd_store_id_ok(agent_id))
		return DD_ERR_NOT_FOUND;
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_GET];
	src = sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		rc = row_to_agent(s, st, out);
	else if (src == SQLITE_DONE)
		rc = DD_ERR_NOT_FOUND;
	else
		rc = dd_store_sqlite_err(src);
	reset(st);
	read_end(s);
	if (rc)
		dd_store_agent_clear(out);
	return rc;
}

dd_err_t dd_store_list(dd_store *s, dd_store_agent **out, size_t *n_out,
		       size_t *skipped)
{
	dd_store_agent *v = NULL, *grown;
	size_t n = 0, cap = 0, bad = 0;
	sqlite3_stmt *st;
	dd_err_t rc;
	int src;

	*out = NULL;
	*n_out = 0;
	if (skipped != NULL)
		*skipped = 0;
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_LIST];
	for (;;) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW) {
			rc = dd_store_sqlite_err(src);
			break;
		}
		/* Rows past the cap can only come from outside the store. */
		if (n == s->max_agents) {
			bad++;
			continue;
		}
		grown = dd_grow(v, &cap, n + 1, sizeof *v, 16);
		if (grown == NULL) {
			rc = DD_ERR_NOMEM;
			break;
		}
		v = grown;
		rc = row_to_agent(s, st, &v[n]);
		if (rc == DD_ERR_INVALID) {
			dd_store_agent_clear(&v[n]);
			bad++;
			rc = DD_OK;
			continue;
		}
		if (rc) {
			dd_store_agent_clear(&v[n]);
			break;
		}
		n++;
	}
	reset(st);
	read_end(s);
	if (rc) {
		dd_store_agents_free(v, n);
		return rc;
	}
	*out = v;
	*n_out = n;
	if (skipped != NULL)
		*skipped = bad;
	return DD_OK;
}

/* The current R_SCAN row into b: INVALID for a row that fails a check. */
static dd_err_t row_to_brief(sqlite3_stmt *st, dd_store_brief *b)
{
	dd_err_t rc;

	rc = row_head(st, &scan_cols, b);
	if (rc)
		return rc;
	b->deployment_count = sqlite3_column_int64(st, S_DEPL);
	b->unit_count = sqlite3_column_int64(st, S_UNITS);
	b->oracle_count = sqlite3_column_int64(st, S_ORACLES);
	if (b->deployment_count < 0 || b->unit_count < 0 ||
	    b->oracle_count < 0)
		return DD_ERR_INVALID;
	return DD_OK;
}

dd_err_t dd_store_scan(dd_store *s, dd_store_scan_cb cb, void *ud,
		       size_t *skipped)
{
	dd_store_brief b;
	size_t bad = 0, n = 0;
	sqlite3_stmt *st;
	dd_err_t rc;
	int src;

	if (skipped != NULL)
		*skipped = 0;
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_SCAN];
	for (;;) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW) {
			rc = dd_store_sqlite_err(src);
			break;
		}
		rc = n < s->max_agents ? row_to_brief(st, &b) : DD_ERR_INVALID;
		if (rc == DD_ERR_INVALID) {
			bad++;
			rc = DD_OK;
			continue;
		}
		if (rc == DD_OK)
			rc = cb(&b, ud);
		if (rc)
			break;
		n++;
	}
	reset(st);
	read_end(s);
	if (skipped != NULL)
		*skipped = bad;
	return rc;
}

dd_err_t dd_store_count(dd_store *s, dd_store_counts *out)
{
	sqlite3_stmt *st;
	dd_agent_status status;
	const unsigned char *t;
	int64_t n;
	double oracles;
	dd_err_t rc;
	int src;

	memset(out, 0, sizeof *out);
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_COUNTS];
	for (;;) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW)
			break;
		t = sqlite3_column_text(st, 0);
		n = sqlite3_column_int64(st, 1);
		oracles = sqlite3_column_double(st, 2);
		if (n < 0)
			n = 0;
		out->agents += (size_t)n;
		if (oracles > 0)
			out->oracles += (uint64_t)oracles;
		if (t != NULL &&
		    dd_agent_status_parse((const char *)t, &status) == DD_OK)
			out->by_status[status] += (size_t)n;
	}
	rc = dd_store_sqlite_err(src);
	reset(st);
	read_end(s);
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

dd_err_t dd_store_history(dd_store *s, const char *agent_id,
			  dd_store_event **out, size_t *n_out)
{
	dd_store_event *v = NULL, *e;
	size_t n = 0, cap = 0;
	char from[16], to[16];
	sqlite3_stmt *st;
	dd_err_t rc;
	int src;

	*out = NULL;
	*n_out = 0;
	if (!dd_store_id_ok(agent_id))
		return DD_OK;
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_HISTORY];
	src = sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_STATIC);
	while (rc == DD_OK && src == SQLITE_OK && n < DD_STORE_HISTORY_MAX) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW)
			break;
		src = SQLITE_OK;
		e = dd_grow(v, &cap, n + 1, sizeof *v, 8);
		if (e == NULL) {
			rc = DD_ERR_NOMEM;
			break;
		}
		v = e;
		e = &v[n];
		memset(e, 0, sizeof *e);
		e->at_ms = sqlite3_column_int64(st, 0);
		rc = col_text(st, 1, from, sizeof from);
		if (rc == DD_OK)
			rc = col_text(st, 2, to, sizeof to);
		if (rc == DD_OK)
			rc = col_text(st, 3, e->reason, sizeof e->reason);
		if (rc == DD_OK)
			rc = dd_agent_status_parse(to, &e->to);
		e->has_from = rc == DD_OK && from[0] != '\0';
		if (e->has_from)
			rc = dd_agent_status_parse(from, &e->from);
		if (rc == DD_OK)
			n++;
	}
	if (rc == DD_OK && src != SQLITE_OK && src != SQLITE_DONE)
		rc = dd_store_sqlite_err(src);
	reset(st);
	read_end(s);
	if (rc) {
		dd_free(v);
		return rc;
	}
	*out = v;
	*n_out = n;
	return DD_OK;
}

dd_err_t dd_store_each(dd_store *s, dd_store_each_cb cb, void *ud,
		       size_t *skipped)
{
	size_t n = 0, bad = 0;
	dd_store_agent a;
	sqlite3_stmt *st;
	dd_err_t rc;
	int src;

	if (skipped != NULL)
		*skipped = 0;
	rc = read_begin(s);
	if (rc)
		return rc;
	st = s->r[R_LIST];
	while (rc == DD_OK) {
		src = sqlite3_step(st);
		if (src != SQLITE_ROW) {
			rc = dd_store_sqlite_err(src);
			break;
		}
		/* Rows past the cap can only come from outside the store. */
		if (n >= s->max_agents) {
			bad++;
			continue;
		}
		rc = row_to_agent(s, st, &a);
		if (rc == DD_ERR_INVALID) {
			bad++;
			rc = DD_OK;
		} else if (rc == DD_OK) {
			rc = cb(&a, ud);
			n++;
		}
		dd_store_agent_clear(&a);
	}
	reset(st);
	read_end(s);
	if (skipped != NULL)
		*skipped = bad;
	return rc;
}

struct exporting {
	dd_buf *out;
	size_t n;
};

/* One record's JSON, after a comma from the second on. */
static dd_err_t export_one(const dd_store_agent *a, void *ud)
{
	struct exporting *x = ud;
	json_t *rec = NULL;
	dd_err_t rc;

	rc = dd_store_agent_to_json(a, &rec);
	if (rc == DD_OK && x->n > 0)
		rc = dd_buf_append_byte(x->out, ',');
	if (rc == DD_OK)
		rc = dd_store_json_dump(rec, x->out);
	json_decref(rec);
	if (rc == DD_OK)
		x->n++;
	return rc;
}

/*
 * Streamed record by record from one snapshot: memory is the output and
 * one record, not every record at once (10,000 of them would be a few
 * hundred megabytes of structs and JSON on the live CP).
 */
dd_err_t dd_store_export(dd_store *s, dd_buf *out, size_t *skipped)
{
	struct exporting x = {out, 0};
	size_t start = out->len;
	dd_err_t rc;

	rc = dd_buf_append(out, "{\"agents\":[", 11);
	if (rc == DD_OK)
		rc = dd_store_each(s, export_one, &x, skipped);
	if (rc == DD_OK)
		rc = dd_buf_append(out, "]}", 2);
	if (rc) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		if (skipped != NULL)
			*skipped = 0;
	}
	return rc;
}
