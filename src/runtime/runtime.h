/*
 * runtime.h: `devopsdefender runtime`, a local workload runtime that
 * speaks EasyEnclave's unix-socket protocol (spec/integrations.md
 * section 6), so the agent, `make dev` and tests can run real workloads
 * without EasyEnclave. It is never sealed, and says so in `health`
 * ("sealed": false); docs/runtime.md lists where it differs from the
 * real thing.
 *
 * Wiring only: the socket (server.h), the deployments (apps.h), the
 * children (proc.h) and quotes (attest/provider.h: simulated with
 * DD_DEV=1 and DD_QUOTE_PROVIDER=sim, configfs-tsm otherwise).
 */
#ifndef DD_RUNTIME_RUNTIME_H
#define DD_RUNTIME_RUNTIME_H

#include "core/config.h"
#include "core/err.h"

/*
 * Runs until SIGTERM or SIGINT, then stops every workload (SIGTERM, then
 * SIGKILL after DD_RUNTIME_STOP_GRACE_MS) and returns DD_OK once none is
 * left. Errors before the socket listens are logged and returned.
 */
dd_err_t dd_runtime_run(const dd_config *cfg);

#endif
