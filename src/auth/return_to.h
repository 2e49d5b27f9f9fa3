/*
 * return_to.h: where a sign-in may send the browser back to.
 *
 * An open redirect in a sign-in flow hands sessions and tickets to
 * whoever crafts the link, so every return_to is parsed (curl's URL
 * parser, never by hand) and must be an absolute https URL without user
 * info whose host is the fleet's domain or below it, or exactly our own
 * origin. Development (plain http on loopback) additionally admits
 * http://127.0.0.1, http://[::1] and http://localhost on any port.
 */
#ifndef DD_AUTH_RETURN_TO_H
#define DD_AUTH_RETURN_TO_H

#include <stddef.h>

#include "core/err.h"

#define DD_RETURN_TO_MAX 1024

typedef struct dd_return_to_policy {
	const char *own_origin;   /* e.g. "https://app.example.com" */
	const char *domain;       /* e.g. "example.com"; NULL: own origin only */
	int dev;                  /* admit loopback http */
} dd_return_to_policy;

/*
 * Checks url. On DD_OK, origin gets "scheme://host[:port]" and path the
 * path with its query ("/" when empty), each NUL-terminated within its
 * cap. INVALID with why otherwise (TOO_LARGE for long URLs, NOMEM).
 */
dd_err_t dd_return_to_check(const dd_return_to_policy *p, const char *url,
			    char *origin, size_t origin_cap, char *path,
			    size_t path_cap, char *why, size_t why_len);

/* A local path safe to redirect to: starts with one '/', no '\' or controls. */
int dd_return_to_local_path(const char *path);

#endif
