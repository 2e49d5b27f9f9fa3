/*
 * cp.h: the control-plane mode. Wires the HTTP surface of the CP to the
 * modules it uses; holds no logic of its own beyond that wiring.
 */
#ifndef DD_CP_CP_H
#define DD_CP_CP_H

#include "core/config.h"
#include "core/err.h"

/* Runs until SIGINT/SIGTERM drains it. Returns DD_OK on a clean stop. */
dd_err_t dd_cp_run(const dd_config *cfg);

#endif
