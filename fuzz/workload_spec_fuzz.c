/*
 * workload_spec_fuzz.c: the workload check that stands between a CI
 * caller's POST /deploy body (or a workload file) and EasyEnclave.
 *
 * Bytes go through the client's path (size cap, parse, shared check) and,
 * when they parse, straight into dd_workload_spec_check as the agent
 * calls it. Invariants checked with __builtin_trap(): both paths agree,
 * an accepted spec has a valid app_name and a non-empty cmd or a
 * github_release, a refusal always says why, and the answer does not
 * change when asked twice (the check must not modify the spec).
 *
 * Seeds (fuzz/seeds/workload_spec/): the workloads under apps/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "client/workload.h"
#include "core/json.h"
#include "core/workload_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const json_t *spec)
{
	const char *app = json_string_value(json_object_get(spec, "app_name"));
	const json_t *cmd = json_object_get(spec, "cmd");

	if (app == NULL || !dd_workload_spec_app_name_ok(app))
		__builtin_trap();
	if (json_array_size(cmd) == 0 &&
	    !json_is_object(json_object_get(spec, "github_release")))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int setup;
	char why[160], why2[160];
	json_t *spec = NULL;
	dd_err_t rc, again;

	if (!setup) {
		dd_json_setup();
		setup = 1;
	}
	rc = dd_workload_check(data, size, &spec, why, sizeof why);
	if ((rc == DD_OK) != (spec != NULL))
		__builtin_trap();
	if (rc != DD_OK && why[0] == '\0' && rc != DD_ERR_NOMEM)
		__builtin_trap();
	if (spec == NULL) {
		/* Parsed but refused: the agent's direct call must refuse too. */
		if (dd_json_parse(data, size, DD_WORKLOAD_MAX_BYTES, &spec,
				  why, sizeof why) != DD_OK)
			return 0;
		rc = dd_workload_spec_check(spec, why, sizeof why);
		if (rc == DD_OK || why[0] == '\0')
			__builtin_trap();
		json_decref(spec);
		return 0;
	}
	check_accepted(spec);
	rc = dd_workload_spec_check(spec, why, sizeof why);
	again = dd_workload_spec_check(spec, why2, sizeof why2);
	if (rc != DD_OK || again != DD_OK)
		__builtin_trap();
	json_decref(spec);
	return 0;
}
