/*
 * ee_watch.h: the agent's view of EasyEnclave, kept fresh in the
 * background so /health and the pages never wait on the socket (and
 * degrade to defaults when it is away): EE's health and list replies,
 * re-read every interval.
 *
 * At boot, dd_ee_watch_start polls health every 250 ms until EE answers
 * or the budget runs out (spec: 90 s), then reports once.
 */
#ifndef DD_AGENT_EE_WATCH_H
#define DD_AGENT_EE_WATCH_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"
#include "net/ndjson.h"

typedef struct dd_ee_watch dd_ee_watch;

/* ready: DD_OK once EE answered, TIMEOUT when the budget ran out. */
typedef void (*dd_ee_ready_cb)(dd_err_t err, const char *why, void *ud);

/* ee is borrowed. Free with dd_ee_watch_free. */
dd_err_t dd_ee_watch_new(uv_loop_t *loop, dd_ndjson *ee, uint64_t interval_ms,
			 dd_ee_watch **out);
dd_err_t dd_ee_watch_start(dd_ee_watch *w, uint64_t budget_ms,
			   dd_ee_ready_cb cb, void *ud);

/* The latest replies (borrowed; NULL when never or not lately answered). */
json_t *dd_ee_watch_health(const dd_ee_watch *w);
json_t *dd_ee_watch_list(const dd_ee_watch *w);

/* Polls now (after a deploy, say) instead of waiting for the interval. */
void dd_ee_watch_refresh(dd_ee_watch *w);

/* Stops polling and cancels calls in flight. */
void dd_ee_watch_free(dd_ee_watch *w);

#endif
