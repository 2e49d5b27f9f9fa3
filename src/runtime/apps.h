/*
 * apps.h: the deployments that `deploy`, `stop`, `list` and `logs` act on
 * (spec/integrations.md section 6.5), each with its own log ring.
 *
 * Deploying replies at once (status "deploying") and goes on from the
 * loop, as EasyEnclave does: every other deployment of the same app_name
 * is stopped and removed, and the new one starts only once their
 * processes are gone (so a port they held is free again); a release is
 * installed first (release.h); then the command runs.
 *
 * Unlike EasyEnclave, exits are noticed. What follows is the restart
 * policy: the request's "restart" (a DD extension: "on-failure", the
 * default, "no" or "always"). A restart waits backoff_ms, doubled for
 * each quick failure in a row up to 30 s; a run of at least 10 s is not
 * quick. After restart_max quick failures in a row the deployment is
 * left "failed". Statuses: deploying, running, restarting (waiting to
 * start again), completed (exit 0, or a fetch-only release), failed,
 * stopped.
 */
#ifndef DD_RUNTIME_APPS_H
#define DD_RUNTIME_APPS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"
#include "runtime/proc.h"
#include "runtime/proto.h"

typedef struct dd_rt_apps dd_rt_apps;

typedef struct dd_rt_apps_opts {
	dd_rt_procs *procs;         /* borrowed */
	char *const *base_env;      /* borrowed: what workloads start with */
	const char *releases_dir;   /* NULL: github_release is refused */
	const char *bin_dir;        /* releases go to bin_dir/<id>/ */
	size_t log_bytes;           /* per deployment */
	uint64_t grace_ms;          /* SIGTERM to SIGKILL */
	uint64_t backoff_ms;        /* first restart delay */
	unsigned restart_max;       /* quick failures in a row */
	unsigned max_deployments;   /* listed entries */
} dd_rt_apps_opts;

/* Strings of o are copied. Caller frees with dd_rt_apps_free(). */
dd_err_t dd_rt_apps_new(uv_loop_t *loop, const dd_rt_apps_opts *o,
			dd_rt_apps **out);

/*
 * Starts a deployment. On DD_OK the spec is owned by the deployment and
 * id holds its UUID; otherwise the caller keeps the spec and why holds
 * the reply's error (INVALID, BUSY when max_deployments are listed and
 * none has finished, CLOSED while shutting down, NOMEM).
 */
dd_err_t dd_rt_apps_deploy(dd_rt_apps *a, dd_rt_spec *spec,
			   char id[DD_RT_ID_LEN + 1], char *why,
			   size_t why_len);

/* NOT_FOUND, or INVALID when it is not running, deploying or restarting. */
dd_err_t dd_rt_apps_stop(dd_rt_apps *a, const char *id, char *why,
			 size_t why_len);

/* The "deployments" array of a list reply (caller json_decref()s it). */
dd_err_t dd_rt_apps_list(const dd_rt_apps *a, json_t **out);

/*
 * The last tail lines of a deployment's log, as JSON strings (valid
 * UTF-8), as many as fit in budget bytes of reply. NOT_FOUND with
 * "deployment not found".
 */
dd_err_t dd_rt_apps_logs(const dd_rt_apps *a, const char *id, size_t tail,
			 size_t budget, json_t **lines, char *why,
			 size_t why_len);

/* Listed deployments (health's "workloads"). */
size_t dd_rt_apps_count(const dd_rt_apps *a);

/*
 * Stops every process and restart, drops every deployment, and runs
 * done(ud) from the loop once all of them are freed. The processes
 * themselves finish under the registry (dd_rt_procs_shutdown).
 */
void dd_rt_apps_shutdown(dd_rt_apps *a, void (*done)(void *ud), void *ud);
void dd_rt_apps_free(dd_rt_apps *a);

#endif
