/*
 * workload.h: local validation of a workload spec before it is deployed.
 *
 * The accepted shape is core/workload_spec.h's, the same one the agent's
 * POST /deploy enforces; checking here refuses a bad file before a token
 * is minted. This adds the file's size cap and the JSON parse.
 */
#ifndef DD_CLIENT_WORKLOAD_H
#define DD_CLIENT_WORKLOAD_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"
#include "core/workload_spec.h"

#define DD_WORKLOAD_MAX_BYTES (256u * 1024u)
#define DD_WORKLOAD_APP_NAME_MAX DD_WORKLOAD_SPEC_APP_NAME_MAX

/*
 * Parses and checks data[0..len). On DD_OK *out is the spec (caller
 * releases it with json_decref()). INVALID (bad JSON or shape) or
 * TOO_LARGE with the first problem in why, naming the field
 * ("cmd[2]: must be a string").
 */
dd_err_t dd_workload_check(const void *data, size_t len, json_t **out,
			   char *why, size_t why_len);

/* Non-zero when s is an acceptable app_name (also used for `logs APP`). */
int dd_workload_app_name_ok(const char *s);

#endif
