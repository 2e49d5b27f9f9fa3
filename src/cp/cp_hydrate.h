/*
 * cp_hydrate.h: a new CP fills its store from its predecessor's export at
 * boot (spec http-surface.md 1.2 step 5; DESIGN.md 5.12; docs/
 * control-plane.md "Export and import").
 *
 * With DD_PREDECESSOR_URL set, after the CP's first attestation round
 * and before it serves:
 *   1. GET <url>/register/nonce                    {"nonce": 64 hex}
 *   2. mint an ITA token over dd_cp_export_binding(nonce) (our own
 *      quote, attestor.h)
 *   3. GET <url>/api/v1/admin/export?nonce=<hex>   Authorization: Bearer
 *   4. a 200 body goes to dd_store_import (all or nothing, store.h).
 * As in the spec, any failure is reported and the CP boots anyway with
 * what its own store holds; the collector and re-registration rebuild
 * the rest.
 *
 * The predecessor's records are taken as shapes the store checks, not as
 * facts: the collector re-verifies every agent's token on its first
 * scrape and overwrites the record. (The predecessor itself is not
 * attested by the successor: its URL is the operator's configuration.)
 */
#ifndef DD_CP_CP_HYDRATE_H
#define DD_CP_CP_HYDRATE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/attestor.h"
#include "core/err.h"
#include "cp/store.h"
#include "net/httpc.h"

typedef struct dd_cp_hydrate dd_cp_hydrate;

typedef struct dd_cp_hydrate_opts {
	const char *url;          /* the predecessor's origin (copied) */
	dd_httpc *http;           /* borrowed */
	dd_attestor *att;         /* borrowed: mints our token */
	dd_store *store;          /* borrowed: takes the import */
	uint64_t timeout_ms;      /* per request; 0: 10 s (spec) */
	int64_t (*now_ms)(void);  /* NULL: wall clock */
} dd_cp_hydrate_opts;

/*
 * Outcome: DD_OK with the number of records imported, or the error and
 * a one-line why (the step that failed). Runs once, never inside
 * dd_cp_hydrate_start; never after dd_cp_hydrate_cancel.
 */
typedef void (*dd_cp_hydrate_cb)(dd_err_t err, size_t imported,
				 const char *why, void *ud);

/*
 * Starts. On DD_OK *out is the handle, released by dd_cp_hydrate_cancel
 * (also after cb ran). INVALID for a bad URL; NOMEM.
 */
dd_err_t dd_cp_hydrate_start(const dd_cp_hydrate_opts *o, dd_cp_hydrate_cb cb,
			     void *ud, dd_cp_hydrate **out);

/*
 * No callback after this; frees the handle as soon as nothing it started
 * can still answer (a mint answers when the attestor is freed, an import
 * when the store has run it). NULL is a no-op.
 */
void dd_cp_hydrate_cancel(dd_cp_hydrate *h);

#endif
