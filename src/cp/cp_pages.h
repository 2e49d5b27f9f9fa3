/*
 * cp_pages.h: the control plane's dashboard routes (spec http-surface.md
 * 3.6, 3.7, 7.1, 7.2; docs/control-plane.md, "Dashboard"):
 *
 *   GET /             the fleet page (live: /static/fleet.js polls the
 *                     fragment every DD_FLEET_POLL_MS)
 *   GET /api/fleet    the fragment, or JSON when Accept names
 *                     application/json
 *   GET /agent/{id}   one agent; the same 404 page for an agent that is
 *                     missing and one the viewer may not see
 *
 * All three need a session (authz.h; the table sends a browser without
 * one to sign in). Each viewer sees only the records fleet_view.h lets
 * them see. The store's list is read at most once a second whoever is
 * polling, and never more than 1/20 of the time (a list costs about
 * 0.3 ms per agent and blocks the loop: a few viewers each listing 512
 * agents every 2 s would otherwise own it; at 16,384 agents a list takes
 * about 5 s and is reused for 100 s); /agent/{id} reads its one record
 * fresh.
 */
#ifndef DD_CP_CP_PAGES_H
#define DD_CP_CP_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth/authz.h"
#include "auth/session.h"
#include "core/config.h"
#include "core/err.h"
#include "cp/store.h"

#define DD_CP_PAGES_ROUTES 3
/* How long one read of the store's list serves every viewer, at least. */
#define DD_CP_PAGES_LIST_MS 1000

typedef struct dd_cp_pages_opts {
	const dd_config *cfg;        /* env, hostname, dev, quote provider */
	dd_store *store;             /* borrowed; outlives the routes */
	const dd_session_keys *keys; /* borrowed; NULL: no sign-out form */
	int64_t (*now_ms)(void);     /* Unix ms; NULL: the wall clock */
} dd_cp_pages_opts;

typedef struct dd_cp_pages dd_cp_pages;

/*
 * The routes' state on loop (its clock ages the cached list). Caller
 * frees it with dd_cp_pages_free() once no route can run.
 */
dd_err_t dd_cp_pages_new(uv_loop_t *loop, const dd_cp_pages_opts *opts,
			 dd_cp_pages **out);
void dd_cp_pages_free(dd_cp_pages *p);

/* Fills routes (room for DD_CP_PAGES_ROUTES) for dd_authz_mount; n. */
size_t dd_cp_pages_routes(dd_cp_pages *p, dd_authz_route *routes);

#endif
