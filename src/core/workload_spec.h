/*
 * workload_spec.h: the one definition of an acceptable workload spec,
 * shared by the client (before it mints a token) and the agent's
 * POST /deploy (before anything reaches EasyEnclave).
 *
 * EasyEnclave accepts almost anything (every field optional, unknown
 * fields ignored, env entries without '=' silently dropped), so a typo
 * deploys something other than what was meant, or nothing, and the
 * failure shows up minutes later on the VM. The accepted shape (spec
 * integrations 6.5; docs/workloads.md):
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
 * (oracle, inherit_token) and unknown fields are refused.
 *
 * Keep in sync with apps/workload.schema.json: a change here is a change
 * there (tests/unit/test_workload_spec.c runs these checks over apps/).
 */
#ifndef DD_CORE_WORKLOAD_SPEC_H
#define DD_CORE_WORKLOAD_SPEC_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

#define DD_WORKLOAD_SPEC_APP_NAME_MAX 64u

/*
 * DD_OK when spec is an acceptable workload; DD_ERR_INVALID otherwise,
 * with the first problem in why naming the field ("env[2]: must be a
 * string"). Reads spec only; allocates nothing.
 */
dd_err_t dd_workload_spec_check(const json_t *spec, char *why,
				size_t why_len);

/* Non-zero when s is an acceptable app_name (also used for `logs APP`). */
int dd_workload_spec_app_name_ok(const char *s);

#endif
