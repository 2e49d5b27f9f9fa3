/*
 * agent.h: the in-VM agent mode. Two listeners (main and API) on the
 * configured ports; wiring only.
 */
#ifndef DD_AGENT_AGENT_H
#define DD_AGENT_AGENT_H

#include "core/config.h"
#include "core/err.h"

/* Runs until SIGINT/SIGTERM drains it. Returns DD_OK on a clean stop. */
dd_err_t dd_agent_run(const dd_config *cfg);

#endif
