/*
 * router.h: method + path-pattern routing, independent of any socket.
 *
 * Patterns are literal segments and `{name}` parameters, each matching one
 * non-empty path segment ("/logs/{app}", "/api/v1/devices/{pubkey}"); a
 * final `{name*}` matches the rest of the path (one or more segments). A
 * literal segment beats a parameter at the same position, so
 * "/agent/new" can sit beside "/agent/{id}". Lookups report "no such path"
 * (404) separately from "path exists, method not allowed" (405 with the
 * Allow set), and GET routes answer HEAD.
 */
#ifndef DD_NET_ROUTER_H
#define DD_NET_ROUTER_H

#include <stddef.h>

#include "core/err.h"

enum {
	DD_M_GET = 1u << 0,
	DD_M_HEAD = 1u << 1,
	DD_M_POST = 1u << 2,
	DD_M_PUT = 1u << 3,
	DD_M_DELETE = 1u << 4,
	DD_M_PATCH = 1u << 5,
	DD_M_OPTIONS = 1u << 6,
};

#define DD_ROUTER_MAX_PARAMS 8
#define DD_ROUTER_MAX_SEGMENTS 32

typedef struct dd_router dd_router;

/* One captured path parameter; value is percent-decoded, NUL-terminated. */
typedef struct dd_route_param {
	const char *name;   /* points into the route's pattern */
	const char *value;  /* points into the match's storage */
} dd_route_param;

typedef struct dd_route_match {
	const void *route;  /* the `route` pointer given to dd_router_add */
	size_t nparams;
	dd_route_param params[DD_ROUTER_MAX_PARAMS];
	unsigned allow;     /* on 405: methods the path does accept */
	char *storage;      /* decoded path; freed by dd_route_match_clear */
} dd_route_match;

/* Caller frees with dd_router_free(). NULL on allocation failure. */
dd_router *dd_router_new(void);
void dd_router_free(dd_router *r);

/*
 * Registers `route` (an opaque pointer returned on match) for the methods
 * in the bitmask. INVALID for a malformed pattern or one that duplicates
 * an existing (pattern, method) pair; the pattern string must outlive the
 * router.
 */
dd_err_t dd_router_add(dd_router *r, unsigned methods, const char *pattern,
		       const void *route);

/*
 * Matches a method bit and a raw (still percent-encoded) path without
 * query. Returns DD_OK with m->route set; NOT_FOUND (404); UNSUPPORTED
 * (405, m->allow set); INVALID for a path that cannot be decoded safely
 * (not starting with '/', bad %-escape, encoded '/' or NUL, "." or ".."
 * segments); TOO_LARGE for more than DD_ROUTER_MAX_SEGMENTS segments.
 * Always call dd_route_match_clear() afterwards.
 */
dd_err_t dd_router_match(const dd_router *r, unsigned method, const char *path,
			 size_t path_len, dd_route_match *m);
void dd_route_match_clear(dd_route_match *m);

/* The value of a captured parameter, or NULL. */
const char *dd_route_param_get(const dd_route_match *m, const char *name);

/* Method name -> bit (0 if unknown) and the Allow header text for a mask. */
unsigned dd_method_bit(const char *name);
/* Writes e.g. "GET, HEAD, POST" into out (always NUL-terminated). */
void dd_method_allow_str(unsigned mask, char *out, size_t out_len);

#endif
