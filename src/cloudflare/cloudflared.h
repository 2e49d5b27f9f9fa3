/*
 * cloudflared.h: supervision of the cloudflared connector (spec:
 * integrations.md 1.11, with the token moved off the command line).
 * docs/cloudflare.md ("cloudflared") has the operator's view.
 *
 * The child runs `cloudflared tunnel --no-autoupdate --metrics= run`
 * with the tunnel token in its environment as TUNNEL_TOKEN (cloudflared
 * reads the token from there), so the token never shows in
 * /proc/<pid>/cmdline or `ps`. Its environment is ours minus every DD_*
 * and EE_* variable (our secrets: the Cloudflare API token, the ITA key,
 * the EasyEnclave seal token), plus TUNNEL_TOKEN.
 *
 * It dies with us: when self_exe is set, the child first runs our own
 * binary as a trampoline (dd_cloudflared_exec_main) that sets
 * PR_SET_PDEATHSIG to SIGKILL and then executes cloudflared in place
 * (same pid), because libuv's uv_spawn has no hook between fork and
 * exec. A CP or agent killed with -9 takes its cloudflared with it.
 *
 * stdout and stderr are read line by line into our log, each line
 * prefixed "cloudflared:" and cut at max_line bytes (the rest of an
 * overlong line is dropped and the cut is marked).
 *
 * An exit (or a spawn that failed) is reported to exited() and, unless
 * stopped, cloudflared is started again after a back-off: backoff_ms,
 * doubled after every run shorter than stable_ms, at most
 * backoff_max_ms; a run that lasted stable_ms resets it. The agent shows
 * the outage in /health (dd_cloudflared_status); the CP hands exits to
 * STONITH, which decides whether the exit means we were evicted.
 *
 * Everything runs on the loop thread.
 */
#ifndef DD_CLOUDFLARE_CLOUDFLARED_H
#define DD_CLOUDFLARE_CLOUDFLARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"

#define DD_CLOUDFLARED_DEFAULT_BACKOFF_MS 1000u
#define DD_CLOUDFLARED_DEFAULT_BACKOFF_MAX_MS 60000u
#define DD_CLOUDFLARED_DEFAULT_STABLE_MS 60000u
#define DD_CLOUDFLARED_DEFAULT_GRACE_MS 5000u
#define DD_CLOUDFLARED_DEFAULT_MAX_LINE 1024u
#define DD_CLOUDFLARED_MAX_LINE 65536u

/* argv[1] that makes our binary the PDEATHSIG trampoline. */
#define DD_CLOUDFLARED_EXEC_ARG "__dd-exec-with-pdeathsig"

typedef struct dd_cloudflared_opts {
	const char *path;        /* the cloudflared binary; required */
	const char *token;       /* the tunnel token; required, secret */
	const char *self_exe;    /* our own binary (trampoline); NULL: none */
	uint64_t backoff_ms;     /* first restart delay */
	uint64_t backoff_max_ms;
	uint64_t stable_ms;      /* a run this long resets the back-off */
	uint64_t grace_ms;       /* SIGTERM -> SIGKILL when stopping */
	size_t max_line;         /* log line cap, bytes */
	/*
	 * Optional: cloudflared exited with status (>= 0) or died of signal
	 * sig (status -1); a spawn that failed reports status -1, sig 0.
	 */
	void (*exited)(void *ud, int64_t status, int sig);
	void *ud;
} dd_cloudflared_opts;

/* For /health and logs. */
typedef struct dd_cloudflared_status {
	bool running;
	bool stopped;            /* dd_cloudflared_stop() was called */
	unsigned starts;         /* spawns attempted */
	unsigned exits;          /* exits and failed spawns */
	int64_t last_status;     /* of the last exit; -1 signal or spawn */
	int last_signal;
	uint64_t down_since_ms;  /* loop time it went down; 0 while running */
	int pid;                 /* 0 when not running */
} dd_cloudflared_status;

typedef struct dd_cloudflared dd_cloudflared;

/*
 * Creates a stopped supervisor. CONFIG without path or token, or with
 * max_line over DD_CLOUDFLARED_MAX_LINE; NOMEM. The token is copied and
 * wiped on free. Caller releases it with dd_cloudflared_free().
 */
dd_err_t dd_cloudflared_new(uv_loop_t *loop, const dd_cloudflared_opts *opts,
			    dd_cloudflared **out);

/* Starts cloudflared now (a failed spawn backs off like an exit). */
void dd_cloudflared_start(dd_cloudflared *c);

/*
 * No more restarts; SIGTERM now, SIGKILL after grace_ms. Safe to call
 * more than once and when not running.
 */
void dd_cloudflared_stop(dd_cloudflared *c);

void dd_cloudflared_status_get(const dd_cloudflared *c,
			       dd_cloudflared_status *out);

/*
 * Kills a running cloudflared (SIGKILL), closes everything; the memory
 * goes once the handles have closed. NULL is a no-op. Never call it from
 * the exited callback.
 */
void dd_cloudflared_free(dd_cloudflared *c);

/*
 * The trampoline: argv is {self, DD_CLOUDFLARED_EXEC_ARG, parent pid,
 * path, argv0, args...}. Sets PDEATHSIG, checks the parent is still the
 * one named, executes path. Returns (127) only on failure.
 */
int dd_cloudflared_exec_main(int argc, char **argv);

#endif
