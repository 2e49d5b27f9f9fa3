/*
 * session.h: sessiond's PTY sessions (spec/noise-sessions.md 5.4-5.10).
 *
 * A session runs one recipe under a new PTY (runtime/proc.h): the child
 * leads a new session and process group with the PTY as its controlling
 * terminal, and every descriptor of ours is close-on-exec, so no session
 * holds another's terminal. Its output goes, chunk by chunk and in this
 * order, into a bounded scrollback ring, to every watcher, and into the
 * sealed transcript ("pty" records, batched: sealed every 16 KiB or
 * 50 ms, and before any "meta" record, which are written at creation and
 * at the end). Input is not recorded.
 *
 * Sessions stay listed after their program exits (status "exited") until
 * closed; close takes a session off the list at once and stops its whole
 * session: SIGHUP, SIGTERM hup_ms later, SIGKILL grace_ms after that.
 * At most max_sessions exist at a time, closed ones still stopping
 * included.
 *
 * Watchers: any number per session, each told every chunk of output
 * (after the scrollback when it asked for the tail); at most one holds
 * the input role at a time. When the session's output ends (the program
 * and everything it left in its session are gone), every watcher is told
 * and forgotten. Everything runs on the loop thread.
 */
#ifndef DD_SESSIOND_SESSION_H
#define DD_SESSIOND_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"
#include "runtime/proc.h"
#include "sessiond/history.h"
#include "sessiond/recipes.h"
#include "sessiond/recipients.h"

typedef struct dd_sd_sessions dd_sd_sessions;
typedef struct dd_sd_session dd_sd_session;

typedef struct dd_sd_watch {
	/* A chunk of output; data is valid during the call. */
	void (*output)(void *ud, const uint8_t *data, size_t len);
	/* Output is over; the watcher is already forgotten. */
	void (*ended)(void *ud);
	/* Input holder only: a write to the PTY completed (may be NULL). */
	void (*drained)(void *ud);
	void *ud;
	/* the session's, not the caller's: */
	dd_sd_session *s;
	struct dd_sd_watch *prev, *next;
	int input;
} dd_sd_watch;

typedef struct dd_sd_opts {
	dd_rt_procs *procs;          /* borrowed */
	dd_hist *hist;               /* borrowed */
	const dd_recipes *recipes;   /* borrowed */
	const dd_sd_rcpts *rcpts;    /* borrowed; read at every record */
	char *const *base_env;       /* borrowed */
	size_t max_sessions;
	size_t scrollback;           /* ring bytes per session */
	uint64_t hup_ms, grace_ms;   /* the close ladder */
} dd_sd_opts;

/*
 * Caller closes with dd_sd_sessions_close() and frees with
 * dd_sd_sessions_free() once the procs have stopped and the loop has
 * run (or the loop is being torn down with every handle closed).
 */
dd_err_t dd_sd_sessions_new(uv_loop_t *loop, const dd_sd_opts *o,
			     dd_sd_sessions **out);
/* Seals what is batched and stops batching (shutdown). */
void dd_sd_sessions_close(dd_sd_sessions *ss);
void dd_sd_sessions_free(dd_sd_sessions *ss);

/*
 * Seals every session's batched output now (before the recipient set
 * changes, so output goes to the devices of its moment).
 */
void dd_sd_flush_all(dd_sd_sessions *ss);

/*
 * Starts a session of recipe (NULL: "shell"), cols x rows (0: 80 x 24),
 * in cwd (NULL: the recipe's), named name (NULL: "<recipe>-<id[0..8]>").
 * id gets the new id. NOT_FOUND for an unknown recipe, BUSY at
 * max_sessions, IO when the program could not start; why says which.
 */
dd_err_t dd_sd_create(dd_sd_sessions *ss, const char *recipe,
		      const char *name, const char *cwd, uint16_t cols,
		      uint16_t rows, char id[DD_HIST_ID_LEN + 1], char *why,
		      size_t why_len);

/* A listed session, or NULL. */
dd_sd_session *dd_sd_find(dd_sd_sessions *ss, const char *id);

/* Listed sessions' metadata, most recently active first. */
json_t *dd_sd_list(const dd_sd_sessions *ss);
size_t dd_sd_count(const dd_sd_sessions *ss);

/* TIOCSWINSZ + SIGWINCH; CLOSED once the session's PTY is gone. */
dd_err_t dd_sd_resize(dd_sd_session *s, uint16_t cols, uint16_t rows);

/* Off the list now; the close ladder runs; s may be freed at once. */
void dd_sd_close(dd_sd_session *s);

/*
 * Adds w (fields output, ended, ud set by the caller; w lives until
 * detached or ended). With tail, the scrollback is given to w->output
 * first, within this call. want_input asks for the input role: w->input
 * says whether it was granted (it is when nobody holds it). CLOSED when
 * the session's output has already ended.
 */
dd_err_t dd_sd_attach(dd_sd_session *s, dd_sd_watch *w, int tail,
		      int want_input);
/* Whether nobody holds s's input role. */
int dd_sd_typist_free(const dd_sd_session *s);

/* Forgets w (no callback); a no-op for a watcher already ended. */
void dd_sd_detach(dd_sd_watch *w);

/*
 * Input from w for the PTY. FORBIDDEN without the input role, CLOSED
 * once the PTY is gone. *queued gets the bytes still waiting for the
 * child (callers stop reading past a bound).
 */
dd_err_t dd_sd_input(dd_sd_watch *w, const uint8_t *data, size_t len,
		     size_t *queued);

#endif
