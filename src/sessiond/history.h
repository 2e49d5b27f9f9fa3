/*
 * history.h: sealed transcript lines on disk, bounded, surviving restarts.
 *
 * A session's transcript is a run of segment files in one directory,
 * "<session id>.<seq>.log.enc" (seq from 0), each line one sealed record
 * (seal.h) ending in '\n'; files are 0600 and the directory 0700. Lines
 * are appended to the newest segment; a segment that has reached
 * segment_bytes is closed and the next one started. Disk use is bounded
 * twice: a session whose segments pass session_bytes loses its oldest
 * ones, and when all transcripts together pass max_bytes, the least
 * recently written session loses its oldest segment, until the total
 * fits (a segment still being written is never removed, so the total
 * may pass max_bytes by at most one segment per live session).
 *
 * The directory is scanned at open, so transcripts written before a
 * restart stay listable and replayable. Files whose names do not match
 * are left alone. Everything is synchronous and runs on the loop thread
 * (appends are small; replays read at most a bounded window).
 */
#ifndef DD_SESSIOND_HISTORY_H
#define DD_SESSIOND_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define DD_HIST_ID_LEN 36

typedef struct dd_hist dd_hist;

typedef struct dd_hist_opts {
	const char *dir;          /* made 0700 when missing */
	uint64_t max_bytes;       /* all transcripts */
	uint64_t session_bytes;   /* one session's; <= max_bytes */
	uint64_t segment_bytes;   /* one file; <= session_bytes / 2 */
} dd_hist_opts;

/* Caller frees with dd_hist_free(). IO/CONFIG with why on failure. */
dd_err_t dd_hist_open(const dd_hist_opts *o, dd_hist **out, char *why,
		      size_t why_len);
void dd_hist_free(dd_hist *h);

/*
 * Appends line (one sealed record, no newline) to session id's
 * transcript, rotating and evicting as needed. INVALID for a malformed
 * id or a line with a newline, IO when the disk refuses.
 */
dd_err_t dd_hist_append(dd_hist *h, const char *id, const void *line,
			size_t len);

/* The session will not be written again: its file is closed. */
void dd_hist_done(dd_hist *h, const char *id);

/*
 * Every transcript, newest first: [{"id","bytes","segments",
 * "truncated","updated_at"}]. *out is owned by the caller.
 */
dd_err_t dd_hist_list(const dd_hist *h, json_t **out);

/*
 * Reads records of session id from cursor (0: the oldest kept) into
 * records (a JSON array; each line as a string, blank lines skipped)
 * until max_bytes of lines are taken (at least one line is always
 * taken). *next is the cursor to continue from, or 0 when the end was
 * reached; *truncated says older records were rotated away. NOT_FOUND
 * when there is no transcript, INVALID for a cursor that points nowhere.
 */
dd_err_t dd_hist_replay(dd_hist *h, const char *id, uint64_t cursor,
			size_t max_bytes, json_t *records, uint64_t *next,
			int *truncated);

/* Bytes on disk, all transcripts (for status and tests). */
uint64_t dd_hist_bytes(const dd_hist *h);

/* Whether s is a canonical lowercase UUID (36 characters). */
int dd_hist_id_ok(const char *s, size_t len);

#endif
