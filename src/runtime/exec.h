/*
 * exec.h: the `exec` method (spec/integrations.md section 6.2): run a
 * command to its end with stdin on /dev/null, and answer with its exit
 * code and output.
 *
 * Unlike EasyEnclave, output is capped: each of stdout and stderr keeps
 * its first max_output bytes and the reply says "stdout_truncated" /
 * "stderr_truncated"; the rest is read and dropped, so the command never
 * blocks on a full pipe. On timeout the command's session is stopped
 * (SIGTERM, then SIGKILL after the grace period) and the reply is the
 * error "command timed out after <n>s".
 */
#ifndef DD_RUNTIME_EXEC_H
#define DD_RUNTIME_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "runtime/proc.h"

typedef struct dd_rt_exec dd_rt_exec;

/* The reply object (borrowed: valid during the call). */
typedef void (*dd_rt_exec_cb)(const json_t *reply, void *ud);

typedef struct dd_rt_exec_opts {
	char *const *argv;
	char *const *env;
	uint64_t timeout_secs;
	size_t max_output;      /* per stream */
	uint64_t grace_ms;
} dd_rt_exec_opts;

/*
 * Starts the command; cb runs once, from the loop, unless the exec is
 * cancelled first. On failure why holds the reply's error ("spawn
 * failed: ...") and cb never runs.
 */
dd_err_t dd_rt_exec_start(uv_loop_t *loop, dd_rt_procs *ps,
			  const dd_rt_exec_opts *o, dd_rt_exec_cb cb, void *ud,
			  dd_rt_exec **out, char *why, size_t why_len);

/* cb will not run; the command is stopped and everything freed. */
void dd_rt_exec_cancel(dd_rt_exec *x);

#endif
