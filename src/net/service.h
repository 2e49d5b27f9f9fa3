/*
 * service.h: what every long-running mode shares: the loop, SIGINT/SIGTERM
 * handling with graceful drain of its HTTP servers, and the readiness
 * notice that `devopsdefender dev` (or any supervisor) waits for.
 *
 * Readiness: when DD_READY_FD names an inherited file descriptor, one JSON
 * line {"service": name, "ports": {label: port, ...}} is written to it
 * once every listener is up, and the fd is closed. Supervisors learn the
 * real ports that way even when they asked for port 0.
 */
#ifndef DD_NET_SERVICE_H
#define DD_NET_SERVICE_H

#include <stdint.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "net/http.h"

#define DD_SERVICE_MAX_SERVERS 4

typedef struct dd_service dd_service;

/* Caller frees with dd_service_free() after dd_service_run returns. */
dd_err_t dd_service_new(const dd_config *cfg, const char *name,
			dd_service **out);
void dd_service_free(dd_service *svc);
uv_loop_t *dd_service_loop(dd_service *svc);

/*
 * Creates an HTTP server with the config's limits, owned by the service
 * (freed with it), and remembers it under label for readiness and drain.
 */
dd_err_t dd_service_server(dd_service *svc, const char *label,
			   dd_http_server **out);

/* Listens every server; port[i] pairs with the i-th server added. */
dd_err_t dd_service_listen(dd_service *svc, const char *label,
			   const char *addr, uint16_t port);

/*
 * Runs a hook when shutdown starts (stop timers, close WebSockets, stop
 * children) so that the loop can empty. At most 8 hooks.
 */
dd_err_t dd_service_on_shutdown(dd_service *svc, void (*cb)(void *ud),
				void *ud);

/*
 * Runs a hook once every server has drained (or its deadline passed):
 * cancel whatever is still pending so the loop can empty. If handles
 * remain active 2 s later, the loop is stopped anyway and they are
 * closed (and logged) by dd_service_free.
 */
dd_err_t dd_service_on_drained(dd_service *svc, void (*cb)(void *ud),
			       void *ud);

/* Writes the readiness line (no-op without DD_READY_FD). */
void dd_service_ready(dd_service *svc);

/*
 * Runs the loop until a signal or dd_service_stop() has drained every
 * server and the loop holds no more active handles. Returns DD_OK.
 */
dd_err_t dd_service_run(dd_service *svc);
void dd_service_stop(dd_service *svc);

/*
 * Under a supervisor (DD_SUPERVISOR_PID set), die with it: a child left
 * behind by a killed `devopsdefender dev` would hold its ports.
 */
void dd_service_bind_to_supervisor(void);

#endif
