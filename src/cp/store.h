/*
 * store.h: the CP's fleet store, one SQLite database (docs/store.md).
 *
 * One record per agent, keyed by agent_id (the tunnel name, never the
 * agent's self-reported id) plus the `control-plane` pseudo-entry, as in
 * spec/http-surface.md 6.1. Unlike the reference CP the store survives a
 * restart (DESIGN.md 5.12); a new CP can still hydrate from its
 * predecessor's export.
 *
 * Threading. Every function here is called on the loop thread. Writes
 * never block it: each is validated and copied at submission, then runs
 * as its own transaction on the libuv thread pool, one at a time, in
 * submission order; its callback runs on the loop thread, in the same
 * order, and the write is committed and visible to reads before the
 * callback runs. Reads are synchronous on the loop thread from a second,
 * read-only connection: in WAL mode they do not wait for the writer and
 * see the last committed state (a write still queued is not visible).
 * A read costs its query plus parsing and checking the JSON it returns;
 * measured (release build, records of about 9 KB of JSON): count 0.05
 * ms, get 0.25 ms, list and export about 0.3 ms per record, so about 3 s
 * for 10,000 such records; a frequent caller with a large fleet should
 * use dd_store_scan (no JSON parsed) or not list on every request. A read waits for a lock at
 * most DD_STORE_READ_WAIT_MS (only during WAL recovery), then fails with
 * BUSY. With path ":memory:" (tests) there is one connection: reads then
 * also wait for a write in progress to finish.
 */
#ifndef DD_CP_STORE_H
#define DD_CP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "auth/principal.h"
#include "core/buf.h"
#include "core/err.h"

#define DD_STORE_ID_MAX 128        /* agent_id */
#define DD_STORE_HOST_MAX 253
#define DD_STORE_NAME_MAX 128      /* vm_name, deployment names */
#define DD_STORE_ENV_MAX 63
#define DD_STORE_TYPE_MAX 32       /* attestation_type, ITA attester_type */
#define DD_STORE_TCB_MAX 48
#define DD_STORE_MEAS_MAX 128      /* ITA mrtd, mrsigner, report_data */
#define DD_STORE_TUNNEL_MAX 64
#define DD_STORE_URL_MAX 512
#define DD_STORE_LABEL_MAX 63      /* a DNS label */
#define DD_STORE_MAX_EXTRAS 32
#define DD_STORE_REASON_MAX 256    /* last_error, history reasons */
#define DD_STORE_HEALTH_MAX (32 * 1024) /* snapshot, compact JSON */
#define DD_STORE_CLAIMS_MAX (8 * 1024)  /* raw ITA claims, compact JSON */
#define DD_STORE_DETAIL_MAX 2048        /* tunnel ingress details */
/*
 * The most agents a store may hold (and the default of the max_agents
 * option). Memory does not grow with it: records live in the file.
 */
#define DD_STORE_MAX_AGENTS 16384
/* 10,000 records of about 9 KB fit; records at every cap do not. */
#define DD_STORE_EXPORT_MAX (128u * 1024 * 1024)
#define DD_STORE_MAX_QUEUE 1024    /* writes waiting for the writer */
#define DD_STORE_HISTORY_DEFAULT 32
#define DD_STORE_HISTORY_MAX 1024
#define DD_STORE_READ_WAIT_MS 100
#define DD_STORE_WRITE_WAIT_MS 5000
/* Latest representable time: 9999-12-31T23:59:59.999Z. */
#define DD_STORE_TIME_MAX INT64_C(253402300799999)

typedef struct dd_store dd_store;

typedef enum {
	DD_AGENT_REGISTERING = 0,
	DD_AGENT_HEALTHY,
	DD_AGENT_STALE,
	DD_AGENT_DEAD,
	DD_AGENT__COUNT
} dd_agent_status;

/* "registering", ...; parse is exact (INVALID otherwise). */
const char *dd_agent_status_name(dd_agent_status s);
dd_err_t dd_agent_status_parse(const char *s, dd_agent_status *out);

typedef enum {
	DD_INGRESS_NONE = 0, /* the control-plane entry */
	DD_INGRESS_DIRECT,   /* reachable at ingress_url */
	DD_INGRESS_TUNNEL,   /* Cloudflare: tunnel_id, ingress_detail */
} dd_ingress_kind;

typedef struct dd_store_extra {
	char label[DD_STORE_LABEL_MAX + 1];
	uint16_t port; /* 1..65535 */
} dd_store_extra;

/* The verified ITA claims kept per agent (spec 5.6). */
typedef struct dd_store_ita {
	int64_t iat, exp;
	char tcb_status[DD_STORE_TCB_MAX + 1];        /* "" = absent */
	char attester_type[DD_STORE_TYPE_MAX + 1];
	char mrtd[DD_STORE_MEAS_MAX + 1];
	char mrsigner[DD_STORE_MEAS_MAX + 1];
	char report_data[DD_STORE_MEAS_MAX + 1];
	json_t *claims; /* the complete claims object; NULL counts as {} */
} dd_store_ita;

/*
 * One agent. Strings are NUL-terminated text: identifiers from a small
 * ASCII set, free text valid UTF-8 without control characters.
 *
 * json_t members: records the caller passes in stay the caller's (the
 * store copies what it needs); records the store fills in own theirs,
 * released by dd_store_agent_clear(). Records read back always carry
 * non-NULL ita.claims and health objects.
 */
typedef struct dd_store_agent {
	char agent_id[DD_STORE_ID_MAX + 1];
	char hostname[DD_STORE_HOST_MAX + 1];
	char vm_name[DD_STORE_NAME_MAX + 1];
	char env[DD_STORE_ENV_MAX + 1];
	char attestation_type[DD_STORE_TYPE_MAX + 1];
	dd_agent_status status;
	bool read_only;     /* agent_mode read_only, else read_write */
	bool clean;         /* integrity_state clean, else controlled */
	bool has_owner;     /* runtime tenant */
	dd_principal owner;
	dd_store_ita ita;
	char noise_pubkey[65]; /* lower-case hex X25519 key, or "" */
	char tunnel_id[DD_STORE_TUNNEL_MAX + 1]; /* "" unless tunnel */
	dd_ingress_kind ingress;
	char ingress_url[DD_STORE_URL_MAX + 1];  /* DIRECT only */
	json_t *ingress_detail;                  /* TUNNEL only; may be NULL */
	size_t n_extras;
	dd_store_extra extras[DD_STORE_MAX_EXTRAS]; /* labels unique */
	int64_t last_seen_ms;     /* Unix milliseconds, UTC */
	int64_t registered_at_ms;
	/* The collector's failure state: consecutive failed scrapes. */
	uint32_t failures;
	int64_t last_failure_ms;  /* 0 = never */
	char last_error[DD_STORE_REASON_MAX + 1];
	/*
	 * The latest /health snapshot: an object with only these members,
	 * each optional (absent reads as 0 or []): deployment_count,
	 * deployment_names, unit_count, units, cpu_percent, memory_used_mb,
	 * memory_total_mb, nets, disks, oracles. At most DD_STORE_HEALTH_MAX
	 * bytes as compact JSON. NULL counts as {}.
	 */
	json_t *health;
} dd_store_agent;

/* Zeroes a and sets the defaults: registering, read_write, controlled. */
void dd_store_agent_init(dd_store_agent *a);
/* Releases the json_t members and re-initialises a. */
void dd_store_agent_clear(dd_store_agent *a);
/* Clears and frees n records from dd_store_list (v may be NULL). */
void dd_store_agents_free(dd_store_agent *v, size_t n);

/*
 * The checks every write applies (and every read: a row that fails them
 * is not returned); INVALID or TOO_LARGE with why (may be NULL with
 * why_len 0).
 */
dd_err_t dd_store_agent_check(const dd_store_agent *a, char *why,
			      size_t why_len);

/*
 * The record as JSON in the shape of spec 6.1 (what /api/fleet and the
 * export carry), plus our own members env, noise_pubkey, ingress,
 * registered_at, failures, last_failure_at, last_error. *out is a new
 * reference (caller releases with json_decref).
 */
dd_err_t dd_store_agent_to_json(const dd_store_agent *a, json_t **out);
/*
 * Parses one exported record (spec 6.1: owner, nets, disks, tunnel_id,
 * extras, oracles may be absent, everything else is required). Our own
 * members are optional, so a reference CP's export parses too; a
 * missing env becomes default_env (may be NULL: ""). Unknown members
 * are ignored. out is initialised first and owns its
 * json_t members even on failure (dd_store_agent_clear).
 */
dd_err_t dd_store_agent_from_json(const json_t *rec, const char *default_env,
				  dd_store_agent *out, char *why,
				  size_t why_len);

/* "2026-06-01T12:00:00.123Z" into out (at least 25 bytes). */
void dd_store_time_format(int64_t ms, char *out, size_t out_len);
/*
 * RFC 3339 with a Z or +hh:mm/-hh:mm offset and up to nine fractional
 * digits (kept to the millisecond), years 1970..9999. INVALID otherwise.
 */
dd_err_t dd_store_time_parse(const char *s, int64_t *out_ms);

typedef struct dd_store_opts {
	unsigned history_keep;  /* status changes kept per agent; 0 = default */
	unsigned write_wait_ms; /* writer's wait for a lock; 0 = default */
	const char *env;        /* stamped on imported records without env;
				   "" or an agent-id-like word */
	size_t max_agents;      /* 1..DD_STORE_MAX_AGENTS; 0 = the most */
} dd_store_opts;

/*
 * Opens (creating if needed) the store at path, or an empty in-memory
 * one for ":memory:". Blocks: opening, and migrating an older schema in
 * one transaction, are boot-time work. UNSUPPORTED when the file was
 * written by a newer schema than this binary knows (it is left alone),
 * INVALID when it is not a store of ours (another application's SQLite
 * file, or no SQLite file at all) or an option is out of range, IO when
 * the file cannot be opened (a symlink is refused) or SQLite fails,
 * with why in every case. The file is created 0600. opts may be NULL.
 * loop must outlive the store. Caller closes with dd_store_close().
 */
dd_err_t dd_store_open(uv_loop_t *loop, const char *path,
		       const dd_store_opts *opts, dd_store **out, char *why,
		       size_t why_len);

/* The schema version this binary writes. */
unsigned dd_store_schema_version(void);

typedef void (*dd_store_closed_cb)(void *ud);

/*
 * Refuses new writes and reads (CLOSED), lets every queued write finish
 * (their callbacks run, in order), then finalizes statements and closes
 * the connections off the loop thread (the last close checkpoints the
 * WAL) and frees the store. cb (may be NULL) runs on the loop thread
 * afterwards; the loop must keep running until then. Call once. May be
 * called from a write callback. s may be NULL: cb then runs at once.
 */
void dd_store_close(dd_store *s, dd_store_closed_cb cb, void *ud);

/* --- writes ------------------------------------------------------------ */

typedef struct dd_store_result {
	dd_err_t rc;
	const char *why;  /* never NULL; "" on success; valid during the call */
	size_t written;   /* agents inserted or updated */
	size_t removed;   /* agents deleted, or evicted by register */
} dd_store_result;

typedef void (*dd_store_cb)(const dd_store_result *res, void *ud);

/*
 * Common to every write: the arguments are validated and copied before
 * the call returns, so the caller may free them at once. A refused
 * argument (INVALID, TOO_LARGE), CLOSED after dd_store_close, BUSY when
 * DD_STORE_MAX_QUEUE writes are waiting, or NOMEM is returned and cb is
 * not called. Otherwise cb (may be NULL) runs exactly once, on the loop
 * thread, never before the call returns, with the outcome: NOT_FOUND
 * for an agent that is not there, BUSY when a new agent would pass
 * the max_agents option, IO/BUSY/NOMEM from SQLite. A failed write
 * changes nothing.
 */

/*
 * Registration (spec 3.3 step 7): removes every other agent with the
 * same vm_name, then stores a as a fresh record, replacing one with the
 * same agent_id: registered_at is registered_at_ms (last_seen_ms when
 * 0), and the failure count, last failure and last error are cleared.
 */
dd_err_t dd_store_register(dd_store *s, const dd_store_agent *a,
			   dd_store_cb cb, void *ud);

/* Leave the stored extras as they are (a new agent takes a's). */
#define DD_STORE_KEEP_EXTRAS 1u

/*
 * Inserts or replaces the record a->agent_id with a fresh one: a
 * successful scrape, the control-plane seed and refresh. The failure
 * count is reset to 0; registered_at is set on insert (registered_at_ms,
 * or last_seen_ms when 0) and kept afterwards; last_failure_ms and
 * last_error are kept. A change of status is added to the history with
 * reason (NULL: "updated"; cleaned like an error text) at last_seen_ms.
 */
dd_err_t dd_store_upsert(dd_store *s, const dd_store_agent *a,
			 unsigned flags, const char *reason, dd_store_cb cb,
			 void *ud);

/*
 * A failed scrape: adds one to the failure count (saturating), stores
 * at_ms and error as the last failure, and sets status, the collector's
 * verdict (spec 6.3); a change is added to the history at at_ms with
 * error as the reason. error comes from outside: it is cut to
 * DD_STORE_REASON_MAX bytes on a character boundary and anything but
 * printable UTF-8 becomes '?' (NULL or "": "scrape failed").
 */
dd_err_t dd_store_mark_failure(dd_store *s, const char *agent_id,
			       dd_agent_status status, int64_t at_ms,
			       const char *error, dd_store_cb cb, void *ud);

/* One failed scrape, for dd_store_mark_failures. */
typedef struct dd_store_failure {
	char agent_id[DD_STORE_ID_MAX + 1];
	dd_agent_status status;
	int64_t at_ms;
	char error[DD_STORE_REASON_MAX + 1]; /* cleaned as for mark_failure */
} dd_store_failure;

#define DD_STORE_MAX_BATCH 1024

/*
 * dd_store_mark_failure for n (1..DD_STORE_MAX_BATCH) agents as one
 * write: one queued job of about 400 bytes per agent instead of one job
 * of a whole record each, one transaction. A collector tick over a large
 * fleet that fails everywhere would otherwise fill the write queue. An
 * agent no longer in the store is skipped; res->written counts the rest.
 * v is copied (INVALID for a bad id, status or time in any entry).
 */
dd_err_t dd_store_mark_failures(dd_store *s, const dd_store_failure *v,
				size_t n, dd_store_cb cb, void *ud);

/* Sets the runtime tenant; owner NULL clears it. */
dd_err_t dd_store_set_owner(dd_store *s, const char *agent_id,
			    const dd_principal *owner, dd_store_cb cb,
			    void *ud);

/* Replaces the extras (/ingress/replace). */
dd_err_t dd_store_set_extras(dd_store *s, const char *agent_id,
			     const dd_store_extra *extras, size_t n,
			     dd_store_cb cb, void *ud);

/* Removes the agent with its extras and history. */
dd_err_t dd_store_delete(dd_store *s, const char *agent_id, dd_store_cb cb,
			 void *ud);

/*
 * Hydrate (spec 1.2 step 5): a predecessor's export, {"agents":
 * [record...]}, at most DD_STORE_EXPORT_MAX bytes (copied). Parsed and
 * checked off the loop thread, record by record; if any record fails,
 * or two carry the same agent_id, nothing is imported (INVALID or
 * TOO_LARGE, why naming the record). Otherwise every record is
 * inserted or replaces the one with its agent_id, all in one
 * transaction, taking every field as given; a new agent or a changed
 * status gets a history entry at now_ms. res->written is the count.
 */
dd_err_t dd_store_import(dd_store *s, const void *data, size_t len,
			 int64_t now_ms, dd_store_cb cb, void *ud);

/* --- reads (synchronous; see the top of this file) ------------------- */

/*
 * NOT_FOUND when absent; INVALID when the stored row no longer passes
 * dd_store_agent_check (a damaged or hand-edited file). out is
 * initialised first; caller releases it with dd_store_agent_clear().
 */
dd_err_t dd_store_get(dd_store *s, const char *agent_id,
		      dd_store_agent *out);

/*
 * Every record, ordered by agent_id, from one snapshot. Rows that fail
 * the checks are left out and counted in *skipped (may be NULL) for the
 * caller to log. Caller frees *out with dd_store_agents_free(*out, *n).
 */
dd_err_t dd_store_list(dd_store *s, dd_store_agent **out, size_t *n,
		       size_t *skipped);

/*
 * What dd_store_scan reads of a record: the plain columns, none of the
 * JSON (claims, health snapshot, tunnel details) and no extras. Enough
 * for the collector's targets, the public view and visibility.
 */
typedef struct dd_store_brief {
	char agent_id[DD_STORE_ID_MAX + 1];
	char hostname[DD_STORE_HOST_MAX + 1];
	char vm_name[DD_STORE_NAME_MAX + 1];
	char attestation_type[DD_STORE_TYPE_MAX + 1];
	dd_agent_status status;
	bool read_only, clean, has_owner;
	dd_principal owner;
	dd_ingress_kind ingress;
	char ingress_url[DD_STORE_URL_MAX + 1];  /* DIRECT only */
	char tunnel_id[DD_STORE_TUNNEL_MAX + 1]; /* "" unless tunnel */
	int64_t last_seen_ms, registered_at_ms;
	int64_t deployment_count, unit_count, oracle_count;
} dd_store_brief;

/* Called per record; an error stops the scan and is its result. */
typedef dd_err_t (*dd_store_scan_cb)(const dd_store_brief *b, void *ud);

/*
 * Visits every record ordered by agent_id, from one snapshot, without
 * parsing any JSON and without allocating per record (b is reused: copy
 * what you keep). Rows whose columns fail the checks are left out and
 * counted in *skipped (may be NULL). Costs a few microseconds a record:
 * the collector's per-tick target list, /api/agents' public rows.
 */
dd_err_t dd_store_scan(dd_store *s, dd_store_scan_cb cb, void *ud,
		       size_t *skipped);

/* Called per record (borrowed for the call); an error stops the walk. */
typedef dd_err_t (*dd_store_each_cb)(const dd_store_agent *a, void *ud);

/*
 * Every record, as dd_store_list reads and checks them, ordered by
 * agent_id from one snapshot, handed to cb one at a time: memory for one
 * record instead of all. Unreadable rows are counted in *skipped (may be
 * NULL). cb must not read the store (the walk holds the read
 * transaction). A cb error stops the walk and is its result.
 */
dd_err_t dd_store_each(dd_store *s, dd_store_each_cb cb, void *ud,
		       size_t *skipped);

typedef struct dd_store_counts {
	size_t agents;                       /* every entry */
	size_t by_status[DD_AGENT__COUNT];
	uint64_t oracles;                    /* sum of oracle list lengths */
} dd_store_counts;

/* For /health (spec 3.2). */
dd_err_t dd_store_count(dd_store *s, dd_store_counts *out);

typedef struct dd_store_event {
	int64_t at_ms;
	bool has_from;         /* false for the first status of an agent */
	dd_agent_status from;
	dd_agent_status to;
	char reason[DD_STORE_REASON_MAX + 1];
} dd_store_event;

/*
 * The agent's last status changes, newest first (at most the
 * history_keep option). An unknown agent has none. Caller frees *out
 * with dd_free().
 */
dd_err_t dd_store_history(dd_store *s, const char *agent_id,
			  dd_store_event **out, size_t *n);

/*
 * /api/v1/admin/export: {"agents": [record...]} for every readable
 * record, ordered by agent_id, appended to out (TOO_LARGE at its cap;
 * out is then left as it was), streamed with dd_store_each. *skipped as
 * for dd_store_list.
 */
dd_err_t dd_store_export(dd_store *s, dd_buf *out, size_t *skipped);

#endif
