/*
 * store_schema.c: the fleet store's schema, its migrations and every SQL
 * statement, in one place so the column order is checked by one reader.
 *
 * Migration rule (docs/store.md): a released step is never edited; a
 * change of schema appends a step. Steps are SQL without data, run in
 * order, all in the one transaction that also records the new version.
 */
#include "cp/store_int.h"

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

#define AGENT_COLS \
	"agent_id, hostname, vm_name, env, attestation_type, status, " \
	"agent_mode, integrity_state, owner_kind, owner_name, owner_id, " \
	"ita_iat, ita_exp, ita_tcb_status, ita_attester_type, ita_mrtd, " \
	"ita_mrsigner, ita_report_data, ita_claims, noise_pubkey, " \
	"tunnel_id, ingress_kind, ingress_url, ingress_detail, " \
	"last_seen, registered_at, failures, last_failure_at, " \
	"last_error, health, deployment_count, unit_count, oracle_count "

/* Version 1: agents, their extras, their bounded status history. */
static const char schema_v1[] =
	"CREATE TABLE agents ("
	" agent_id TEXT PRIMARY KEY NOT NULL,"
	" hostname TEXT NOT NULL,"
	" vm_name TEXT NOT NULL,"
	" env TEXT NOT NULL,"
	" attestation_type TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN"
	"  ('registering', 'healthy', 'stale', 'dead')),"
	" agent_mode TEXT NOT NULL CHECK (agent_mode IN"
	"  ('read_only', 'read_write')),"
	" integrity_state TEXT NOT NULL CHECK (integrity_state IN"
	"  ('clean', 'controlled')),"
	" owner_kind TEXT CHECK (owner_kind IN ('user', 'org', 'repo')),"
	" owner_name TEXT,"
	" owner_id INTEGER CHECK (owner_id > 0),"
	" ita_iat INTEGER NOT NULL,"
	" ita_exp INTEGER NOT NULL,"
	" ita_tcb_status TEXT NOT NULL,"
	" ita_attester_type TEXT NOT NULL,"
	" ita_mrtd TEXT NOT NULL,"
	" ita_mrsigner TEXT NOT NULL,"
	" ita_report_data TEXT NOT NULL,"
	" ita_claims TEXT NOT NULL,"
	" noise_pubkey TEXT NOT NULL,"
	" tunnel_id TEXT NOT NULL,"
	" ingress_kind TEXT NOT NULL CHECK (ingress_kind IN"
	"  ('none', 'direct', 'tunnel')),"
	" ingress_url TEXT NOT NULL,"
	" ingress_detail TEXT,"
	" last_seen INTEGER NOT NULL,"
	" registered_at INTEGER NOT NULL,"
	" failures INTEGER NOT NULL CHECK (failures >= 0),"
	" last_failure_at INTEGER NOT NULL,"
	" last_error TEXT NOT NULL,"
	" health TEXT NOT NULL,"
	" deployment_count INTEGER NOT NULL,"
	" unit_count INTEGER NOT NULL,"
	" oracle_count INTEGER NOT NULL,"
	" CHECK ((owner_kind IS NULL) = (owner_name IS NULL)"
	"  AND (owner_name IS NULL) = (owner_id IS NULL))"
	") STRICT;"
	"CREATE INDEX agents_vm_name ON agents (vm_name);"
	/* /health's counts from the index alone, not the wide rows. */
	"CREATE INDEX agents_status ON agents (status, oracle_count);"
	"CREATE TABLE agent_extras ("
	" agent_id TEXT NOT NULL"
	"  REFERENCES agents (agent_id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" label TEXT NOT NULL,"
	" port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
	" PRIMARY KEY (agent_id, pos),"
	" UNIQUE (agent_id, label)"
	") STRICT;"
	"CREATE TABLE status_history ("
	" seq INTEGER PRIMARY KEY,"
	" agent_id TEXT NOT NULL"
	"  REFERENCES agents (agent_id) ON DELETE CASCADE,"
	" at INTEGER NOT NULL,"
	" from_status TEXT,"
	" to_status TEXT NOT NULL,"
	" reason TEXT NOT NULL"
	") STRICT;"
	"CREATE INDEX status_history_agent ON status_history (agent_id, seq);";

const char *const dd_store_migrations[] = {
	schema_v1,
};
const size_t dd_store_n_migrations =
	sizeof dd_store_migrations / sizeof dd_store_migrations[0];

const char *const dd_store_wsql[W__COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_STATUS] = "SELECT status FROM agents WHERE agent_id = ?1",
	[W_COUNT] = "SELECT count(*) FROM agents",
	/* The CP's own entry is never evicted (spec 6.2: never GC'd). */
	[W_EVICT] = "DELETE FROM agents WHERE vm_name = ?1 AND agent_id <> ?2"
		    " AND agent_id <> 'control-plane'",
	/*
	 * ?34 set (an import) takes every field as given; unset (a fresh
	 * record) keeps registered_at and the last failure of the row.
	 */
	[W_UPSERT] =
		"INSERT INTO agents (" AGENT_COLS ") VALUES ("
		"?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
		"?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "
		"?27, ?28, ?29, ?30, ?31, ?32, ?33) "
		"ON CONFLICT (agent_id) DO UPDATE SET "
		"hostname = excluded.hostname, vm_name = excluded.vm_name, "
		"env = excluded.env, "
		"attestation_type = excluded.attestation_type, "
		"status = excluded.status, agent_mode = excluded.agent_mode, "
		"integrity_state = excluded.integrity_state, "
		"owner_kind = excluded.owner_kind, "
		"owner_name = excluded.owner_name, "
		"owner_id = excluded.owner_id, ita_iat = excluded.ita_iat, "
		"ita_exp = excluded.ita_exp, "
		"ita_tcb_status = excluded.ita_tcb_status, "
		"ita_attester_type = excluded.ita_attester_type, "
		"ita_mrtd = excluded.ita_mrtd, "
		"ita_mrsigner = excluded.ita_mrsigner, "
		"ita_report_data = excluded.ita_report_data, "
		"ita_claims = excluded.ita_claims, "
		"noise_pubkey = excluded.noise_pubkey, "
		"tunnel_id = excluded.tunnel_id, "
		"ingress_kind = excluded.ingress_kind, "
		"ingress_url = excluded.ingress_url, "
		"ingress_detail = excluded.ingress_detail, "
		"last_seen = excluded.last_seen, "
		"registered_at = CASE WHEN ?34 THEN excluded.registered_at "
		"ELSE registered_at END, "
		"failures = excluded.failures, "
		"last_failure_at = CASE WHEN ?34 THEN excluded.last_failure_at "
		"ELSE last_failure_at END, "
		"last_error = CASE WHEN ?34 THEN excluded.last_error "
		"ELSE last_error END, "
		"health = excluded.health, "
		"deployment_count = excluded.deployment_count, "
		"unit_count = excluded.unit_count, "
		"oracle_count = excluded.oracle_count",
	[W_EXTRAS_CLEAR] = "DELETE FROM agent_extras WHERE agent_id = ?1",
	[W_EXTRA_ADD] = "INSERT INTO agent_extras (agent_id, pos, label, port)"
			" VALUES (?1, ?2, ?3, ?4)",
	[W_HIST_ADD] = "INSERT INTO status_history"
		       " (agent_id, at, from_status, to_status, reason)"
		       " VALUES (?1, ?2, ?3, ?4, ?5)",
	[W_HIST_TRIM] = "DELETE FROM status_history WHERE agent_id = ?1"
			" AND seq NOT IN (SELECT seq FROM status_history"
			" WHERE agent_id = ?1 ORDER BY seq DESC LIMIT ?2)",
	[W_OWNER] = "UPDATE agents SET owner_kind = ?2, owner_name = ?3,"
		    " owner_id = ?4 WHERE agent_id = ?1",
	/* The count saturates instead of overflowing the C side's u32. */
	[W_FAIL] = "UPDATE agents SET status = ?2, failures = CASE WHEN"
		   " failures < 4294967295 THEN failures + 1 ELSE failures END,"
		   " last_failure_at = ?3, last_error = ?4 WHERE agent_id = ?1",
	[W_DELETE] = "DELETE FROM agents WHERE agent_id = ?1",
};

const char *const dd_store_rsql[R__COUNT] = {
	[R_BEGIN] = "BEGIN",
	[R_END] = "COMMIT",
	[R_GET] = "SELECT " AGENT_COLS "FROM agents WHERE agent_id = ?1",
	[R_LIST] = "SELECT " AGENT_COLS "FROM agents ORDER BY agent_id",
	[R_EXTRAS] = "SELECT label, port FROM agent_extras WHERE agent_id = ?1"
		     " ORDER BY pos",
	[R_COUNTS] = "SELECT status, count(*), total(oracle_count)"
		     " FROM agents GROUP BY status",
	[R_HISTORY] = "SELECT at, from_status, to_status, reason"
		      " FROM status_history WHERE agent_id = ?1"
		      " ORDER BY seq DESC",
	/* dd_store_scan: the plain columns only (enum scan_col). */
	[R_SCAN] = "SELECT agent_id, hostname, vm_name, attestation_type,"
		   " status, agent_mode, integrity_state, owner_kind,"
		   " owner_name, owner_id, ingress_kind, ingress_url,"
		   " last_seen, registered_at, deployment_count, unit_count,"
		   " oracle_count, tunnel_id FROM agents ORDER BY agent_id",
};

dd_err_t dd_store_sqlite_err(int rc)
{
	if (rc == SQLITE_IOERR_NOMEM)
		return DD_ERR_NOMEM;
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return DD_OK;
	case SQLITE_NOMEM:
		return DD_ERR_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DD_ERR_BUSY;
	case SQLITE_TOOBIG:
		return DD_ERR_TOO_LARGE;
	case SQLITE_NOTADB:
		return DD_ERR_INVALID;
	/* Every value is checked before it is bound: a bug, not input. */
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return DD_ERR_INTERNAL;
	default:
		return DD_ERR_IO;
	}
}

dd_err_t dd_store_sqlite_why(sqlite3 *db, int rc, const char *what,
			     char *why, size_t why_len)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s: %s", what,
			 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return dd_store_sqlite_err(rc);
}

/* One row, one integer column: *out. */
static dd_err_t query_int(sqlite3 *db, const char *sql, int64_t *out,
			  char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	dd_err_t err;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		snprintf(why, why_len, "%s: no row", sql);
		sqlite3_finalize(st);
		return DD_ERR_NOT_FOUND;
	}
	if (rc != SQLITE_ROW)
		goto fail;
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return DD_OK;
fail:
	err = dd_store_sqlite_why(db, rc, sql, why, why_len);
	sqlite3_finalize(st);
	return err;
}

static dd_err_t exec(sqlite3 *db, const char *sql, const char *what,
		     char *why, size_t why_len)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return dd_store_sqlite_why(db, rc, what, why, why_len);
	return DD_OK;
}

/* Reads the version, creating the bookkeeping in an empty database. */
static dd_err_t read_version(sqlite3 *db, int64_t *version, char *why,
			     size_t why_len)
{
	int64_t app_id, has_table, n_tables;
	dd_err_t rc;

	rc = query_int(db, "PRAGMA application_id", &app_id, why, why_len);
	if (rc)
		return rc;
	rc = query_int(db, "SELECT count(*) FROM sqlite_schema WHERE"
		       " type = 'table' AND name = 'schema_version'",
		       &has_table, why, why_len);
	if (rc)
		return rc;
	rc = query_int(db, "SELECT count(*) FROM sqlite_schema",
		       &n_tables, why, why_len);
	if (rc)
		return rc;
	if (n_tables == 0 && app_id == 0) {
		*version = 0;
		return exec(db, "CREATE TABLE schema_version ("
			    " id INTEGER PRIMARY KEY CHECK (id = 1),"
			    " version INTEGER NOT NULL CHECK (version >= 0)"
			    ") STRICT;"
			    "INSERT INTO schema_version (id, version)"
			    " VALUES (1, 0);",
			    "creating schema_version", why, why_len);
	}
	if (app_id != DD_STORE_APP_ID || !has_table) {
		snprintf(why, why_len, "not a devopsdefender store "
			 "(application_id %lld, %s schema_version table)",
			 (long long)app_id, has_table ? "with a" : "no");
		return DD_ERR_INVALID;
	}
	rc = query_int(db, "SELECT version FROM schema_version WHERE id = 1",
		       version, why, why_len);
	return rc == DD_ERR_NOT_FOUND ? DD_ERR_INVALID : rc;
}

dd_err_t dd_store_migrate(sqlite3 *db, const char *const *steps, size_t n,
			  unsigned *from, char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	int64_t version = 0;
	char what[64];
	dd_err_t rc;
	int src;

	/* IMMEDIATE: a second process migrating at once waits, then sees. */
	rc = exec(db, "BEGIN IMMEDIATE", "starting the migration", why,
		  why_len);
	if (rc)
		return rc;
	rc = read_version(db, &version, why, why_len);
	if (rc)
		goto out;
	if (from != NULL)
		*from = version < 0 ? 0 : (unsigned)version;
	if (version < 0 || (uint64_t)version > n) {
		snprintf(why, why_len, "store schema version %lld is newer than"
			 " this binary's %zu: refusing to touch it",
			 (long long)version, n);
		rc = DD_ERR_UNSUPPORTED;
		goto out;
	}
	for (size_t i = (size_t)version; i < n; i++) {
		snprintf(what, sizeof what, "migration to version %zu", i + 1);
		rc = exec(db, steps[i], what, why, why_len);
		if (rc)
			goto out;
	}
	src = sqlite3_prepare_v2(db, "UPDATE schema_version SET version = ?1"
				 " WHERE id = 1", -1, &st, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src != SQLITE_DONE) {
		rc = dd_store_sqlite_why(db, src, "recording the version", why,
					 why_len);
		goto out;
	}
	/* The header field is a constant of ours, not data: no binding. */
	rc = exec(db, "PRAGMA application_id = " STR(DD_STORE_APP_ID),
		  "setting the application id", why, why_len);
	if (rc)
		goto out;
	rc = exec(db, "COMMIT", "committing the migration", why, why_len);
out:
	sqlite3_finalize(st);
	if (rc && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
