/*
 * device_api.h: pairing devices through the browser (spec: noise-sessions
 * 3.2-3.3, http-surface 4.7-4.9, with this project's fixes):
 *
 *   GET    /admin/enroll?pubkey=&label=  confirmation page (whole key)
 *   POST   /api/v1/devices               pair: JSON {pubkey, label} -> 201
 *                                        record; the page's form -> 303
 *                                        to the list
 *   GET    /api/v1/devices               the list: JSON {"devices": [...]},
 *                                        or a page for a browser
 *   DELETE /api/v1/devices/{pubkey}      revoke -> 200 {revoked, at_ms};
 *                                        404 unknown or already revoked
 *   POST   /api/v1/devices/{pubkey}/revoke  the same from the list page's
 *                                        form (browsers cannot DELETE)
 *                                        -> 303 to the list
 *
 * The authorization table admits only fleet admins and the agent's
 * owner (not any signed-in user, spec 3.8) and the dispatcher demands
 * the CSRF token and a same-origin Origin on cookie-authenticated
 * writes. Keys are checked for small order (DESIGN.md 5 item 7); the
 * store persists before anything takes effect (devices.h).
 */
#ifndef DD_AGENT_DEVICE_API_H
#define DD_AGENT_DEVICE_API_H

#include <stddef.h>
#include <stdint.h>

#include "agent/devices.h"
#include "auth/authz.h"
#include "auth/session.h"
#include "core/err.h"

#define DD_DEVICE_ROUTES 5
#define DD_DEVICE_MAX_BODY 4096

typedef struct dd_device_api_opts {
	dd_devices *devices;           /* borrowed */
	const dd_session_keys *keys;   /* borrowed: CSRF tokens for pages */
	const char *hostname;          /* shown on the page (copied) */
	int dev;                       /* the SIMULATED banner */
	int64_t (*now_ms)(void);       /* NULL: wall clock */
} dd_device_api_opts;

typedef struct dd_device_api dd_device_api;

/* Caller frees with dd_device_api_free. */
dd_err_t dd_device_api_new(const dd_device_api_opts *o, dd_device_api **out);
void dd_device_api_free(dd_device_api *api);

/* Fills routes (room for DD_DEVICE_ROUTES); returns how many. */
size_t dd_device_api_routes(dd_device_api *api, dd_authz_route *routes);

#endif
