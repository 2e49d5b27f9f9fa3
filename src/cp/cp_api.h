/*
 * cp_api.h: the CP's machine-facing fleet API (spec http-surface.md 3.5,
 * 3.10; docs/control-plane.md "Fleet API", "Export and import").
 *
 *   GET /api/agents   a JSON array, one element per store entry, the
 *                     control-plane entry included. Each caller gets
 *                     fleet_view.h's API view: public fields for anyone,
 *                     full records (last_seen in the +00:00 form) for
 *                     fleet admins, the fleet principal's OIDC token, and
 *                     a signed-in user's own agents. No caller is trusted
 *                     for its address (DESIGN.md 5.3): loopback is
 *                     anyone. A bearer that is an ITA token is verified
 *                     (401 bad_token when it does not pass) and then
 *                     served as anyone: ITA tokens are public, every
 *                     agent serves its own on /health. The public list
 *                     is rendered at most once a second.
 *
 *   GET /api/v1/admin/export?nonce=<64 hex>
 *                     {"agents": [record...]}: every store entry as the
 *                     full record (spec 6.1), for a successor CP to
 *                     hydrate from. Admins (session) and the fleet
 *                     principal (OIDC) need nothing more. A successor CP
 *                     proves itself like a registering agent does
 *                     (DESIGN.md 5.2): it fetches a nonce from
 *                     /register/nonce, mints an ITA token whose
 *                     report_data is dd_cp_export_binding(nonce), and
 *                     sends it as "Authorization: Bearer <token>" with
 *                     the nonce in the query. The nonce is burnt on
 *                     presentation; the token must pass this CP's
 *                     verifier and its measurement allowlist (a mismatch
 *                     refuses the export even where pinning only warns).
 *                     So a token scraped from a /health (the spec's "any
 *                     valid ITA token") exports nothing. Refusals: 401
 *                     unauthenticated / stale_nonce / bad_token /
 *                     not_pinned / binding_mismatch, 400 for a malformed
 *                     nonce, 502 when the verifier's keys cannot be had.
 */
#ifndef DD_CP_CP_API_H
#define DD_CP_CP_API_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "attest/attestor.h"
#include "auth/authz.h"
#include "core/err.h"
#include "cp/cp_register.h"
#include "cp/store.h"

#define DD_CP_API_ROUTES 2

typedef struct dd_cp_api dd_cp_api;

typedef struct dd_cp_api_opts {
	dd_store *store;      /* borrowed */
	dd_attestor *att;     /* borrowed: verifies ITA bearers */
	dd_cp_register *reg;  /* borrowed: the nonces an export binds */
} dd_cp_api_opts;

/* Caller frees with dd_cp_api_free(). NOMEM. */
dd_err_t dd_cp_api_new(uv_loop_t *loop, const dd_cp_api_opts *o,
		       dd_cp_api **out);
/*
 * Requests still being verified get 503. Call after the attestor is
 * freed (no verdict can arrive any more) or when none is pending.
 */
void dd_cp_api_free(dd_cp_api *api);

/* Fills routes (room for DD_CP_API_ROUTES); returns how many. */
size_t dd_cp_api_routes(dd_cp_api *api, dd_authz_route *routes);

/*
 * What a successor's export token binds: SHA-512("devopsdefender/
 * export/v1" || nonce). A label of its own, so neither a registration
 * quote nor the CP's public /cp/attest quote can pass for it.
 */
dd_err_t dd_cp_export_binding(const uint8_t nonce[DD_REG_NONCE_LEN],
			      uint8_t out[64]);

#endif
