/*
 * sessiond_link.h: keeps sessiond's history recipients equal to the
 * agent's trust set (spec noise-sessions 3.6; docs/sessions.md).
 *
 * Transcripts are sealed to the paired devices' keys, so sessiond must
 * hear of every pairing and revocation, and must hear the whole set
 * again after it restarts (a restarted sessiond that kept an old set
 * would seal new history to a revoked device, or to nobody). The link
 * pushes `recipients.set` whenever the set changes, and asks sessiond's
 * `status` every DD_SD_LINK_POLL_MS: a boot id it has not pushed to yet
 * gets the set at once. A push that fails is retried at the next poll.
 */
#ifndef DD_AGENT_SESSIOND_LINK_H
#define DD_AGENT_SESSIOND_LINK_H

#include <uv.h>

#include "agent/devices.h"
#include "core/err.h"
#include "net/ndjson.h"

#define DD_SD_LINK_POLL_MS 5000

typedef struct dd_sd_link dd_sd_link;

/*
 * sd and devs are borrowed and must outlive the link. Starts polling at
 * once. Free with dd_sd_link_free (the loop releases the last memory).
 */
dd_err_t dd_sd_link_new(uv_loop_t *loop, dd_ndjson *sd, dd_devices *devs,
			uint64_t poll_ms, dd_sd_link **out);
void dd_sd_link_free(dd_sd_link *l);

/* The trust set changed: push it (now, or right after a push in flight). */
void dd_sd_link_changed(dd_sd_link *l);

/* 1 while sessiond answered the last poll; 0 before and after failures. */
int dd_sd_link_up(const dd_sd_link *l);

#endif
