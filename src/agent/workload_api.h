/*
 * workload_api.h: the agent endpoints CI uses, each a checked front for
 * one EasyEnclave call (spec: http-surface 4.11-4.14):
 *
 *   POST /deploy      a workload spec (JSON object) -> EE deploy; taints
 *                     customer_workload_deployed; a valid "expose" joins
 *                     the extra ingress list
 *   POST /exec        {"cmd": [...], "timeout_secs": N} -> EE exec
 *   GET  /logs/{app}  EE list, then EE logs of the first deployment of app;
 *                     with ?follow=1 a live NDJSON stream (log_follow.h)
 *   POST /owner       sets or clears the runtime tenant (fleet owner only)
 *
 * Who may call is the authorization table's business (authz.h); EE's
 * replies come back verbatim with 200, EE being unreachable is 502. In
 * confidential mode /deploy, /exec and /owner are not mounted at all.
 */
#ifndef DD_AGENT_WORKLOAD_API_H
#define DD_AGENT_WORKLOAD_API_H

#include <stddef.h>

#include "agent/agent_state.h"
#include "auth/authz.h"
#include "core/err.h"
#include "net/ndjson.h"

#define DD_WORKLOAD_ROUTES 4
#define DD_WORKLOAD_MAX_SPEC (256u * 1024)

typedef struct dd_workload_api dd_workload_api;

/*
 * ee and st are borrowed and must outlive it. changed (may be NULL) runs
 * after EE accepted a deploy and after an owner change, so views of the
 * agent refresh at once.
 * Free with dd_workload_api_free.
 */
dd_err_t dd_workload_api_new(dd_ndjson *ee, dd_agent_state *st,
			     void (*changed)(void *ud), void *changed_ud,
			     dd_workload_api **out);
/* Cancels EE calls in flight (their requests get 503). */
void dd_workload_api_free(dd_workload_api *w);

/* Fills routes (room for DD_WORKLOAD_ROUTES); returns n. */
size_t dd_workload_api_routes(dd_workload_api *w, dd_authz_route *routes);

#endif
