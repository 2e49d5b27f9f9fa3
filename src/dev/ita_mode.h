/*
 * ita_mode.h: `devopsdefender ita`, the local Intel Trust Authority
 * stand-in (attest/local_ita.h) as a process of its own, so a dev fleet's
 * CP and agents reach it over HTTP exactly as they reach Intel's. The
 * configuration refuses it without DD_DEV=1 and in production/staging.
 */
#ifndef DD_DEV_ITA_MODE_H
#define DD_DEV_ITA_MODE_H

#include "core/config.h"
#include "core/err.h"

/* Runs until SIGINT/SIGTERM. */
dd_err_t dd_ita_mode_run(const dd_config *cfg);

#endif
