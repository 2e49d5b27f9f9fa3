/*
 * sessiond.h: `devopsdefender sessiond`, the PTY session daemon behind
 * the agent's Noise gateway (spec/noise-sessions.md section 5, with the
 * issue 7 changes: a unix socket only, recipes as an allowlist, bounded
 * sessions and history, sealed transcripts kept across restarts).
 *
 * Wiring only: the socket (server.h), the sessions (session.h), recipes
 * (recipes.h), the transcript store (history.h), the recipient set
 * (recipients.h), children (runtime/proc.h). docs/sessions.md is the
 * manual.
 */
#ifndef DD_SESSIOND_SESSIOND_H
#define DD_SESSIOND_SESSIOND_H

#include "core/config.h"
#include "core/err.h"

/*
 * Runs until SIGTERM or SIGINT, then ends every session (SIGHUP, SIGTERM,
 * SIGKILL) and returns DD_OK once none is left. Errors before the socket
 * listens are logged and returned.
 */
dd_err_t dd_sessiond_run(const dd_config *cfg);

#endif
