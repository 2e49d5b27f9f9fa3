/*
 * workload.h: local validation of a workload spec before it is deployed.
 *
 * The runtime accepts almost anything (every field optional, unknown
 * fields ignored, env entries without '=' silently dropped), so a typo
 * deploys something other than what was meant, or nothing, and the
 * failure shows up minutes later on the VM. We refuse such files before
 * a token is minted. The accepted shape (spec integrations 6.5):
 *
 *   app_name        required; 1-64 of [A-Za-z0-9._-], starting with a
 *                   letter or digit (it names a log file on the VM and is
 *                   part of the /logs URL)
 *   cmd             array of at most 256 strings, each under 4 KiB, the
 *                   first non-empty
 *   env             array of at most 256 "KEY=VALUE" strings, KEY of
 *                   [A-Za-z_][A-Za-z0-9_]*, each under 32 KiB
 *   tty             boolean
 *   github_release  {"repo": "owner/name", "asset": "file", "tag"?,
 *                   "rename"?}; nothing else inside
 *   expose          {"hostname_label": DNS label, "port": 1..65535}
 *   requires_agent_mode  "read_only" or "read_write"
 *
 * and at least one of a non-empty cmd or github_release. Boot-only fields
 * (oracle, inherit_token) and unknown fields are refused, as is anything
 * over DD_WORKLOAD_MAX_BYTES.
 */
#ifndef DD_CLIENT_WORKLOAD_H
#define DD_CLIENT_WORKLOAD_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

#define DD_WORKLOAD_MAX_BYTES (256u * 1024u)
#define DD_WORKLOAD_APP_NAME_MAX 64u

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
