/*
 * cp.h: the control-plane mode. Wires the HTTP surface of the CP to the
 * modules it uses; holds no logic of its own beyond that wiring.
 */
#ifndef DD_CP_CP_H
#define DD_CP_CP_H

#include <uv.h>

#include "attest/attestor.h"
#include "auth/authz.h"
#include "cp/store.h"
#include "core/config.h"
#include "core/err.h"
#include "net/http.h"

typedef struct dd_cp dd_cp;

/* Caller frees with dd_cp_free() once the loop no longer runs its routes. */
dd_err_t dd_cp_new(const dd_config *cfg, uv_loop_t *loop, dd_cp **out);
void dd_cp_free(dd_cp *cp);
/*
 * The CP's attestation (borrowed; NULL detaches it). Set before
 * dd_cp_mount to serve /cp/attest and the attestation part of /health.
 */
void dd_cp_set_attestor(dd_cp *cp, dd_attestor *att);

/* The fleet store (borrowed; NULL detaches): counts in /health. */
void dd_cp_set_store(dd_cp *cp, dd_store *store);
/*
 * Mounts /health and /static on srv without authorization: for the test
 * server and the benchmarks only.
 */
dd_err_t dd_cp_mount(dd_cp *cp, dd_http_server *srv);

#define DD_CP_MAX_ROUTES 64

/*
 * Mounts every CP route, plus extra (sign-in, ...), behind the
 * authorization table (authz.h): CONFIG with why for a route it lacks.
 */
dd_err_t dd_cp_mount_authz(dd_cp *cp, dd_authz *authz, dd_http_server *srv,
			   const dd_authz_route *extra, size_t n_extra,
			   char *why, size_t why_len);

/* Runs until SIGINT/SIGTERM drains it. Returns DD_OK on a clean stop. */
dd_err_t dd_cp_run(const dd_config *cfg);

#endif
