/*
 * log_follow.h: `GET /logs/{app}?follow=1`, a workload's log as a live
 * stream (docs/agent.md, "Following a log").
 *
 * EasyEnclave's `logs` method only answers the last `tail` lines of a
 * deployment; it has no cursor. So a follower asks again every
 * DD_LOG_FOLLOW_POLL_MS and sends only the lines that follow the longest
 * overlap between the previous window and the new one. When the two do
 * not overlap at all, more lines arrived between two polls than a window
 * holds and some were missed: the stream says so ({"gap": true}) rather
 * than pretending to be complete. A run of identical lines longer than
 * the window cannot be told apart from no new output; that is the price
 * of a cursorless protocol and is documented.
 *
 * The reply is chunked NDJSON, one object per line:
 *   {"line": "..."}          a log line, in order
 *   {"gap": true}            lines were missed before the next one
 *   {"heartbeat": true}      nothing new for DD_LOG_FOLLOW_HEARTBEAT_MS
 *   {"end": "reason"}        the last object: the workload is gone, the
 *                            runtime failed, the time limit or shutdown
 * A slow reader is never buffered for without bound: polling pauses
 * while the connection's write queue is above its high-water mark.
 */
#ifndef DD_AGENT_LOG_FOLLOW_H
#define DD_AGENT_LOG_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "net/http.h"
#include "net/ndjson.h"

#define DD_LOG_FOLLOW_POLL_MS 1000
#define DD_LOG_FOLLOW_HEARTBEAT_MS 15000
#define DD_LOG_FOLLOW_MAX_MS (3600 * 1000)
#define DD_LOG_FOLLOW_TAIL 500
#define DD_LOG_FOLLOW_MAX 32 /* concurrent followers per agent */

typedef struct dd_log_follow dd_log_follow;

/* ee is borrowed and must outlive it. Free with dd_log_follow_free. */
dd_err_t dd_log_follow_new(dd_ndjson *ee, dd_log_follow **out);

/*
 * Ends every stream ({"end": "shutdown"}) and frees f. Followers' timers
 * close asynchronously: the loop must run once more to release them.
 */
void dd_log_follow_free(dd_log_follow *f);

/*
 * Streams deployment_id's log to req, which this answers on every path
 * (503 when DD_LOG_FOLLOW_MAX followers are already running). req must
 * not have an abort callback of someone else's set.
 */
void dd_log_follow_start(dd_log_follow *f, dd_http_req *req,
			 const char *deployment_id);

/*
 * How many leading lines of next repeat the trailing lines of prev: the
 * largest k with prev[n-k..n) == next[0..k), in linear time (KMP). Both
 * are JSON arrays of strings (anything else in them never matches).
 * Lines next[*k..] are new. NOMEM only.
 */
dd_err_t dd_log_overlap(const json_t *prev, const json_t *next, size_t *k);

#endif
