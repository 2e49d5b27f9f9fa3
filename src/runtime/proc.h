/*
 * proc.h: the runtime's child processes.
 *
 * Every child starts a session of its own (setsid), so it also leads its
 * own process group. Stopping a child signals that group and every other
 * process still in its session (found through /proc): SIGTERM first (and
 * SIGHUP for a PTY, as a hang-up would), SIGKILL once the grace period
 * has passed. When the leader exits by itself, whatever it left in its
 * session is stopped the same way, and a child is finished only when no
 * live process of its session is left and its output is drained. Only a
 * process that starts yet another session escapes (as under EasyEnclave).
 *
 * stdin is /dev/null, stdout and stderr are pipes; or all three are one
 * new PTY that becomes the child's controlling terminal. Our descriptors
 * are all close-on-exec, and the child marks every inherited descriptor
 * above 2 close-on-exec too before it executes the program.
 *
 * Exit statuses come from a SIGCHLD watcher that waits for our own pids
 * only. Everything runs on the loop thread.
 */
#ifndef DD_RUNTIME_PROC_H
#define DD_RUNTIME_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "core/err.h"

typedef struct dd_rt_procs dd_rt_procs;
typedef struct dd_rt_proc dd_rt_proc;

typedef struct dd_rt_proc_cbs {
	/*
	 * Output of stream 1 (stdout, or the PTY) or 2 (stderr); data is
	 * valid during the call. len 0 means the stream has ended.
	 */
	void (*output)(void *ud, int stream, const uint8_t *data, size_t len);
	/* The leader exited: code >= 0, or -1 with sig the signal. */
	void (*exited)(void *ud, int code, int sig);
	/* All over; the proc is freed right after this returns. */
	void (*done)(void *ud);
	/* A write to the PTY completed (flow control for attach). */
	void (*drained)(void *ud);
} dd_rt_proc_cbs;

typedef struct dd_rt_spawn {
	char *const *argv;      /* argv[0] is looked up in env's PATH */
	char *const *env;       /* the child's whole environment */
	int pty;                /* stdio on a new PTY (controlling terminal) */
	uint16_t cols, rows;    /* PTY size; 0 means 80 x 24 */
	const char *cwd;        /* working directory; NULL: ours */
	uint64_t grace_ms;      /* SIGTERM to SIGKILL */
	/*
	 * PTY only: SIGHUP alone first, SIGTERM hup_ms later (a terminal
	 * hang-up, then a request to stop); 0 sends both at once.
	 */
	uint64_t hup_ms;
	dd_rt_proc_cbs cbs;
	void *ud;
} dd_rt_spawn;

/* Caller frees with dd_rt_procs_free() once shutdown has completed. */
dd_err_t dd_rt_procs_new(uv_loop_t *loop, dd_rt_procs **out);

/*
 * Stops every child and refuses new ones; done(ud) runs from the loop
 * once none is left and the watcher is closed.
 */
void dd_rt_procs_shutdown(dd_rt_procs *ps, void (*done)(void *ud), void *ud);
void dd_rt_procs_free(dd_rt_procs *ps);
size_t dd_rt_procs_count(const dd_rt_procs *ps);

/*
 * Starts a child. On DD_OK *out lives until its done callback (the
 * registry owns it). Otherwise why says what failed ("sh: No such file
 * or directory"): NOT_FOUND when argv[0] is not found, IO when the
 * system refused, CLOSED after shutdown, NOMEM.
 */
dd_err_t dd_rt_proc_spawn(dd_rt_procs *ps, const dd_rt_spawn *o,
			  dd_rt_proc **out, char *why, size_t why_len);

/* The leader's pid, or 0 once it has been reaped. */
pid_t dd_rt_proc_pid(const dd_rt_proc *p);

/*
 * SIGTERM to the session now (after SIGHUP and hup_ms for a PTY started
 * with one), SIGKILL after the grace period.
 */
void dd_rt_proc_stop(dd_rt_proc *p);

/*
 * Sets the PTY's size (TIOCSWINSZ on the master) and sends SIGWINCH to
 * the child's process group (the kernel signals only the foreground
 * group). CLOSED without a PTY, IO when the ioctl fails.
 */
dd_err_t dd_rt_proc_resize(dd_rt_proc *p, uint16_t cols, uint16_t rows);

/* No more callbacks: the proc finishes (and frees itself) on its own. */
void dd_rt_proc_detach(dd_rt_proc *p);

/* Queues bytes for the PTY (attach). CLOSED when there is no PTY left. */
dd_err_t dd_rt_proc_write(dd_rt_proc *p, const uint8_t *data, size_t len);
size_t dd_rt_proc_write_queue(const dd_rt_proc *p);

/* Stops (paused = 1) or resumes reading the child's output. */
void dd_rt_proc_pause(dd_rt_proc *p, int paused);

/*
 * Counts the live (not zombie) processes of session or process group
 * sid, sending each sig first when sig is not 0. Exposed for tests.
 */
size_t dd_rt_session_sweep(pid_t sid, int sig);

#endif
