/*
 * dev_signin.h: signing in without GitHub, for development only.
 *
 * GET /auth/dev shows a form; POST /auth/dev issues a session for the
 * named local user, marked dev (every page that shows the session says
 * so), optionally a fleet admin. The routes exist only in dev mode: the
 * authorization table marks them DEV_ONLY, so a production CP refuses to
 * start with them rather than serve them.
 */
#ifndef DD_AUTH_DEV_SIGNIN_H
#define DD_AUTH_DEV_SIGNIN_H

#include <stddef.h>

#include "auth/authz.h"
#include "auth/broker.h"

#define DD_DEV_SIGNIN_ROUTES 2

/* Fills routes for dd_authz_mount (b is borrowed); returns n. */
size_t dd_dev_signin_routes(dd_broker *b, dd_authz_route *routes);

#endif
