/*
 * store_import_fuzz.c: a predecessor's export as a new CP reads it at
 * boot (DD_PREDECESSOR_URL; store.h dd_store_import), the bytes that
 * arrive over the network from another machine.
 *
 * Bytes go to dd_store_import_parse, the worker's whole check (parse,
 * every record, duplicate ids) with a small cap. Invariants checked with
 * __builtin_trap(): a refusal says why; an acceptance holds at most the
 * cap, every row passes the store's record check, no two rows share an
 * id, and each row survives the round trip the export makes (record to
 * JSON and back gives the same JSON).
 *
 * Seeds (fuzz/seeds/store_import/): a small export of ours.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/json.h"
#include "cp/store_int.h"

#define CAP 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const dd_store_agent *a)
{
	json_t *j1 = NULL, *j2 = NULL;
	dd_store_agent b;
	char why[160];

	if (dd_store_agent_to_json(a, &j1) != DD_OK)
		return; /* out of memory only */
	if (dd_store_agent_from_json(j1, "", &b, why, sizeof why) != DD_OK ||
	    dd_store_agent_to_json(&b, &j2) != DD_OK || !json_equal(j1, j2))
		__builtin_trap();
	dd_store_agent_clear(&b);
	json_decref(j1);
	json_decref(j2);
}

/* What was accepted, record by record, as the export will carry it. */
static void accepted(const uint8_t *data, size_t size, size_t n)
{
	json_t *doc = NULL, *agents;
	dd_store_agent a;
	char why[160];

	if (dd_json_parse(data, size, DD_STORE_EXPORT_MAX, &doc, NULL, 0) !=
	    DD_OK)
		__builtin_trap();
	agents = json_object_get(doc, "agents");
	if (json_array_size(agents) != n)
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		if (dd_store_agent_from_json(json_array_get(agents, i), "fuzz",
					     &a, why, sizeof why) != DD_OK ||
		    dd_store_agent_check(&a, why, sizeof why) != DD_OK)
			__builtin_trap();
		round_trip(&a);
		dd_store_agent_clear(&a);
	}
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int setup;
	struct store_row *rows = NULL;
	size_t n = 0;
	char why[256] = "";
	dd_err_t rc;

	if (!setup) {
		dd_json_setup();
		setup = 1;
	}
	rc = dd_store_import_parse(data, size, "fuzz", CAP, &rows, &n, why,
				   sizeof why);
	if (rc != DD_OK) {
		if (why[0] == '\0' && rc != DD_ERR_NOMEM)
			__builtin_trap();
		return 0;
	}
	if (n > CAP)
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		for (size_t k = i + 1; k < n; k++) {
			if (strcmp(rows[i].a.agent_id, rows[k].a.agent_id) == 0)
				__builtin_trap();
		}
	}
	dd_store_rows_free(rows, n);
	accepted(data, size, n);
	return 0;
}
