/*
 * dev_signin.h: signing in without GitHub, for development only.
 *
 * GET /auth/dev shows a form; POST /auth/dev issues a session for the
 * named local user, marked dev (every page that shows the session says
 * so), optionally a fleet admin. The routes exist only in dev mode: the
 * authorization table marks them DEV_ONLY, so a production CP refuses to
 * start with them rather than serve them.
 *
 * A dev fleet listens on loopback, which every local user of the machine
 * can reach, and a fleet admin can pair a device and open a shell as
 * whoever runs the fleet. So a sign-in needs this run's code, the way a
 * Jupyter server needs its token: `devopsdefender dev` makes one
 * (DD_DEV_SIGNIN_CODE) and prints /auth/dev?code=...; a CP without one
 * makes its own and logs that URL once. The page opened with ?code= keeps
 * it in a hidden field; opened without (a redirect from a page that needs
 * a session cannot carry it), it says where the URL is and takes the code
 * typed in. POST without the right code is 403 bad_code, the same answer
 * for a missing, wrong or wrong-length code, compared in constant time.
 */
#ifndef DD_AUTH_DEV_SIGNIN_H
#define DD_AUTH_DEV_SIGNIN_H

#include <stddef.h>

#include "auth/authz.h"
#include "auth/broker.h"
#include "core/err.h"

#define DD_DEV_SIGNIN_ROUTES 2
/* A made code: 128 bits as unpadded base64url. */
#define DD_DEV_SIGNIN_CODE_LEN 22
/* A configured code: DD_DEV_SIGNIN_CODE_LEN to this many of [A-Za-z0-9_-]. */
#define DD_DEV_SIGNIN_CODE_MAX 128

typedef struct dd_dev_signin dd_dev_signin;

/*
 * Fills out with a fresh code from the OS CSPRNG (DD_DEV_SIGNIN_CODE_LEN
 * characters and a NUL). The caller wipes it when done.
 */
dd_err_t dd_dev_signin_make_code(char out[DD_DEV_SIGNIN_CODE_LEN + 1]);

/*
 * Dev sign-in for broker b (borrowed; outlives the result) with code, or
 * with a code made here when code is NULL. INVALID for a code not of the
 * shape above. On DD_OK, *out is the caller's: dd_dev_signin_free().
 */
dd_err_t dd_dev_signin_new(dd_broker *b, const char *code,
			   dd_dev_signin **out);
void dd_dev_signin_free(dd_dev_signin *d);

/* Whether the code was made here (nobody else knows it yet). */
int dd_dev_signin_made_code(const dd_dev_signin *d);

/*
 * The sign-in URL with the code, origin + "/auth/dev?code=...", into out
 * (cap bytes). TOO_LARGE when it does not fit. Secret: for the person
 * who started the process, never a general log line.
 */
dd_err_t dd_dev_signin_url(const dd_dev_signin *d, const char *origin,
			   char *out, size_t cap);

/* Whether presented (NUL-terminated) is the code; constant time. */
int dd_dev_signin_code_ok(const dd_dev_signin *d, const char *presented);

/* Fills routes for dd_authz_mount (d is borrowed); returns n. */
size_t dd_dev_signin_routes(dd_dev_signin *d, dd_authz_route *routes);

#endif
