/*
 * ticket.h: how people sign in to an agent without the agent holding any
 * shared secret.
 *
 * An anonymous page request on the agent is sent to the CP's
 * /auth/agent?return_to=<this agent's URL> (authz.h does the redirect).
 * The CP, if the browser is signed in there, answers with a 60 s ES256
 * ticket addressed to this agent's origin. GET /auth/ticket?ticket=&next=
 * verifies it against the CP's published keys (jwks_cache.h on
 * <broker>/auth/keys): ES256 only, issuer exactly the broker URL,
 * audience exactly this agent's public origin, at most 120 s old, issued
 * for this fleet's owner, and its jti never seen before (replay.h). The
 * agent then issues its own host-only session cookie, signed with a key
 * generated at boot and never written anywhere (a restart signs everyone
 * out, which is the point).
 */
#ifndef DD_AUTH_TICKET_H
#define DD_AUTH_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "auth/authz.h"
#include "auth/principal.h"
#include "auth/session.h"
#include "core/err.h"
#include "net/httpc.h"

#define DD_AGENT_SESSION_COOKIE "dd_agent_session"
#define DD_TICKET_ROUTES 2

typedef struct dd_ticket dd_ticket;

typedef struct dd_ticket_opts {
	const dd_principal *owner;     /* copied */
	const char *broker_url;        /* the CP's origin: issuer + key host */
	int64_t (*now)(void);          /* NULL: wall clock */
} dd_ticket_opts;

/* http is borrowed. Free with dd_ticket_free (cancels pending checks). */
dd_err_t dd_ticket_new(uv_loop_t *loop, dd_httpc *http,
		       const dd_ticket_opts *opts, dd_ticket **out);
void dd_ticket_free(dd_ticket *t);

/* This agent's public origin (the audience), once the listener is up. */
dd_err_t dd_ticket_set_origin(dd_ticket *t, const char *origin);

/* The per-boot session keys, for dd_authz_opts.keys. Borrowed. */
const dd_session_keys *dd_ticket_keys(const dd_ticket *t);

/* Fills routes (/auth/ticket, /auth/logout) for dd_authz_mount. */
size_t dd_ticket_routes(dd_ticket *t, dd_authz_route *routes);

#endif
