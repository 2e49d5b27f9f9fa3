/*
 * fleet_html.h: the control plane's fleet dashboard as HTML and JSON
 * (spec http-surface.md 3.6, 3.7, 7.1, 7.2; docs/control-plane.md,
 * "Dashboard").
 *
 * Rendering only: the records come in already scoped to the viewer
 * (fleet_view.h decides who sees what; nothing here looks at
 * ownership), nothing reads the store, the clock or the network. Every
 * value from a record or a session is HTML-escaped, links are only ever
 * http(s) URLs or our own paths, and pages load nothing but our own
 * /static assets (the live update is /static/fleet.js).
 *
 * The fragment is what the page first paints inside #fleet-body and
 * what every poll of /api/fleet swaps in: one rendering for both.
 */
#ifndef DD_CP_FLEET_HTML_H
#define DD_CP_FLEET_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "cp/store.h"

/* How often the page asks for a new fragment (fleet.js reads it). */
#define DD_FLEET_POLL_MS 2000

typedef struct dd_fleet_ctx {
	const char *env;
	const char *hostname;     /* the CP's public host name */
	bool simulated;           /* this fleet runs on simulated quotes */
	int64_t now_ms;           /* Unix ms: "N s ago", generated_at */
	const char *login;        /* the viewer */
	bool admin;               /* the viewer is a fleet admin */
	bool dev_session;         /* minted by dev sign-in */
	const char *csrf;         /* for the sign-out form; "" for none */
} dd_fleet_ctx;

/*
 * Whether the SIMULATED banner shows: the CP's own quotes are simulated,
 * or one of the records carries simulated evidence (dd_simulated in its
 * ITA claims).
 */
bool dd_fleet_any_simulated(const dd_fleet_ctx *c,
			    const dd_store_agent *const *v, size_t n);
bool dd_fleet_agent_simulated(const dd_store_agent *a);

/*
 * The #fleet-body fragment for records v[0..n) (sorted by the caller):
 * banner, summary, cards, agent table, managed units. Appends to out;
 * TOO_LARGE at its cap, NOMEM.
 */
dd_err_t dd_fleet_html_fragment(dd_buf *out, const dd_fleet_ctx *c,
				const dd_store_agent *const *v, size_t n);

/* The whole fleet page around the fragment. As above. */
dd_err_t dd_fleet_html_page(dd_buf *out, const dd_fleet_ctx *c,
			    const dd_store_agent *const *v, size_t n);

/*
 * One agent's page; hist[0..nh) its status changes, newest first (may
 * be NULL with nh 0). As above.
 */
dd_err_t dd_fleet_html_agent(dd_buf *out, const dd_fleet_ctx *c,
			     const dd_store_agent *a,
			     const dd_store_event *hist, size_t nh);

/*
 * The 404 page of /agent/{id}: it depends on the viewer only, never on
 * the id asked for, so a missing agent and one the viewer may not see
 * answer the same bytes.
 */
dd_err_t dd_fleet_html_not_found(dd_buf *out, const dd_fleet_ctx *c);

/*
 * /api/fleet as JSON: {generated_at, env, hostname, simulated, summary:
 * {agents, healthy, units, oracles}, agents: [full record...]}. *out is
 * a new reference (caller releases it with json_decref). NOMEM.
 */
dd_err_t dd_fleet_json(const dd_fleet_ctx *c, const dd_store_agent *const *v,
		       size_t n, json_t **out);

/* Spec 7: a status word to its pill colour (running, deploying, ...). */
const char *dd_fleet_status_class(const char *status);
/* Spec 7.2: an ITA TCB status to its pill colour. */
const char *dd_fleet_tcb_class(const char *tcb);

#endif
