/*
 * agent_health.h: the body of the agent's GET /health (spec:
 * http-surface 4.2), assembled from what the agent already holds:
 * configuration, run-time state, the latest EasyEnclave replies and host
 * metrics. Nothing here waits on anything; missing pieces degrade to
 * defaults ("unknown", empty lists) so /health always answers.
 */
#ifndef DD_AGENT_AGENT_HEALTH_H
#define DD_AGENT_AGENT_HEALTH_H

#include <stdint.h>

#include <jansson.h>

#include "agent/agent_state.h"
#include "core/config.h"

typedef struct dd_agent_health_in {
	const dd_config *cfg;
	const dd_agent_state *st;
	json_t *ee_health;        /* borrowed; NULL: EE not answering */
	json_t *ee_list;          /* borrowed; NULL likewise */
	json_t *metrics;          /* borrowed object merged in; may be NULL */
	uint64_t uptime_secs;
	const char *ita_token;    /* NULL: none yet */
} dd_agent_health_in;

/* A new JSON object (caller releases with json_decref); NULL on NOMEM. */
json_t *dd_agent_health_json(const dd_agent_health_in *in);

#endif
