/*
 * store_int.h: what the parts of the fleet store share (store.c,
 * store_read.c, store_record.c, store_schema.c) and the unit test
 * reaches for. Not an interface for anything else: use store.h.
 */
#ifndef DD_CP_STORE_INT_H
#define DD_CP_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "cp/store.h"

/*
 * "DDcp" in the database header, so a foreign SQLite file is refused.
 * Decimal: the migration pastes it into a PRAGMA.
 */
#define DD_STORE_APP_ID 1145332592

/*
 * Columns of agents in the order every SELECT returns them and the
 * upsert binds them (?1 is C_AGENT_ID + 1, ...).
 */
enum store_col {
	C_AGENT_ID, C_HOSTNAME, C_VM_NAME, C_ENV, C_ATT_TYPE, C_STATUS,
	C_MODE, C_INTEGRITY, C_OWNER_KIND, C_OWNER_NAME, C_OWNER_ID,
	C_ITA_IAT, C_ITA_EXP, C_ITA_TCB, C_ITA_ATTESTER, C_ITA_MRTD,
	C_ITA_MRSIGNER, C_ITA_REPORT_DATA, C_ITA_CLAIMS, C_NOISE_PUBKEY,
	C_TUNNEL_ID, C_INGRESS_KIND, C_INGRESS_URL, C_INGRESS_DETAIL,
	C_LAST_SEEN, C_REGISTERED_AT, C_FAILURES, C_LAST_FAILURE_AT,
	C_LAST_ERROR, C_HEALTH, C_DEPLOYMENTS, C_UNITS, C_ORACLES,
	C__COUNT
};

/* Statements of the write connection (used only by the writer job). */
enum store_wstmt {
	W_BEGIN, W_COMMIT, W_ROLLBACK, W_STATUS, W_COUNT, W_EVICT, W_UPSERT,
	W_EXTRAS_CLEAR, W_EXTRA_ADD, W_HIST_ADD, W_HIST_TRIM, W_OWNER,
	W_FAIL, W_DELETE,
	W__COUNT
};

/* Statements of the read connection (loop thread only). */
enum store_rstmt {
	R_BEGIN, R_END, R_GET, R_LIST, R_EXTRAS, R_COUNTS, R_HISTORY,
	R_SCAN,
	R__COUNT
};

extern const char *const dd_store_wsql[W__COUNT];
extern const char *const dd_store_rsql[R__COUNT];
extern const char *const dd_store_migrations[];
extern const size_t dd_store_n_migrations;

/*
 * Brings db to version n by running steps[version..n) and recording n,
 * all in one transaction (nothing changes on failure). UNSUPPORTED when
 * the database is at a version above n; INVALID when it is not ours
 * (another application id, or tables without a version). *from (may be
 * NULL) gets the version found.
 */
dd_err_t dd_store_migrate(sqlite3 *db, const char *const *steps, size_t n,
			  unsigned *from, char *why, size_t why_len);

/* A SQLite result code as a dd_err_t (ROW and DONE are DD_OK). */
dd_err_t dd_store_sqlite_err(int rc);
/* why = "<what>: <sqlite's message for db>". Returns the mapped rc. */
dd_err_t dd_store_sqlite_why(sqlite3 *db, int rc, const char *what,
			     char *why, size_t why_len);

struct dd_store {
	uv_loop_t *loop;
	sqlite3 *wdb;         /* writer jobs only, one at a time */
	sqlite3 *rdb;         /* loop thread; == wdb for ":memory:" */
	sqlite3_stmt *w[W__COUNT];
	sqlite3_stmt *r[R__COUNT];
	/* ":memory:": one connection, so reads and writes take turns. */
	bool shared;
	uv_mutex_t lock;
	unsigned history_keep;
	size_t max_agents;
	char env[DD_STORE_ENV_MAX + 1];
	/* The write queue: loop thread only. */
	struct store_job *head, *tail;
	size_t queued;
	struct store_job *running;
	uv_work_t work;
	bool in_callback;
	bool closing, close_started;
	dd_store_closed_cb close_cb;
	void *close_ud;
};

/* The read lock (":memory:" only; a no-op for a file). */
void dd_store_rlock(dd_store *s);
void dd_store_runlock(dd_store *s);

/* A checked record in the form the SQL binds: JSON members as text. */
struct store_row {
	dd_store_agent a;       /* json_t members NULL */
	char *claims;           /* compact JSON object */
	char *health;           /* compact JSON object */
	char *detail;           /* NULL unless tunnel details */
	int64_t deployments, units, oracles; /* from health, for counts */
};

/* One queued write (store.c) as the writer runs it (store_write.c). */
enum store_op {
	OP_REGISTER, OP_UPSERT, OP_FAIL, OP_OWNER, OP_EXTRAS, OP_DELETE,
	OP_IMPORT, OP_FAILS
};

struct store_job {
	struct store_job *next;
	enum store_op op;
	dd_store_cb cb;
	void *ud;
	/* The record, or (fail, owner, extras, delete) the fields used. */
	struct store_row row;
	unsigned flags;
	char reason[DD_STORE_REASON_MAX + 1];
	dd_store_failure *fails; /* OP_FAILS: the batch */
	size_t n_fails;
	char *data;             /* import: the export's bytes */
	size_t len;
	int64_t at_ms;          /* import: when */
	/* The outcome, written by the worker, read after it is done. */
	dd_err_t rc;
	size_t written, removed;
	char why[256];
};

/*
 * Runs s->running on the thread pool: its transaction, then its outcome
 * in the job. Touches only the write connection and the job.
 */
void dd_store_work_job(uv_work_t *w);

/* dd_store_agent_check without measuring JSON sizes (for rows read). */
dd_err_t dd_store_agent_check_read(const dd_store_agent *a);

/*
 * The same checks on the columns a brief holds (every record holds them
 * too): INVALID for a scanned row a full read would refuse.
 */
dd_err_t dd_store_brief_check(const dd_store_brief *b);

/* Checks a and fills r (release with dd_store_row_free). */
dd_err_t dd_store_row_make(const dd_store_agent *a, struct store_row *r,
			   char *why, size_t why_len);
void dd_store_row_free(struct store_row *r);

void dd_store_rows_free(struct store_row *rows, size_t n);

/*
 * Compact JSON of v appended to b; on failure b is as it was. Unlike
 * dd_json_append it never reports success for output that lost a chunk.
 */
dd_err_t dd_store_json_dump(const json_t *v, dd_buf *b);

/*
 * A predecessor's export into checked rows (dd_store_import's rules):
 * INVALID with why naming the first bad record. Caller frees *out with
 * dd_store_rows_free(*out, *n).
 */
dd_err_t dd_store_import_parse(const void *data, size_t len, const char *env,
			       size_t max_agents, struct store_row **out,
			       size_t *n, char *why, size_t why_len);

/* Text: valid UTF-8 without control characters. */
bool dd_store_text_ok(const char *s, size_t len);
/*
 * Copies s into out[size] as text: what is not text becomes '?', and
 * the copy ends on a whole character. For diagnostics from outside.
 */
void dd_store_text_clean(const char *s, char *out, size_t size);
/* An extras list as dd_store_agent_check judges it. */
dd_err_t dd_store_extras_check(const dd_store_extra *v, size_t n, char *why,
			       size_t why_len);
/* Agent ids: 1..DD_STORE_ID_MAX of [A-Za-z0-9._-]. */
bool dd_store_id_ok(const char *s);

/* Counts and sizes are kept within what every JSON reader holds exactly. */
#define DD_STORE_COUNT_MAX ((INT64_C(1) << 53) - 1)
bool dd_store_count_ok(const json_t *v);

/* The members a health snapshot may have (store.h), and their shape. */
enum store_hkind { H_COUNT, H_NAMES, H_OBJECTS, H_NETS, H_DISKS };
struct store_hmember {
	const char *key;
	enum store_hkind kind;
	size_t max;             /* array entries */
	bool required;          /* in an exported record (spec 6.1) */
};
extern const struct store_hmember dd_store_health_members[];
extern const size_t dd_store_n_health_members;
/* NULL when key is not a health member. */
const struct store_hmember *dd_store_health_member(const char *key);

#endif
