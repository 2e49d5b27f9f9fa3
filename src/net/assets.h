/*
 * assets.h: static files compiled into the binary (src/web/static, turned
 * into a table by scripts/embed-assets at build time) and the route that
 * serves them with strong ETags and revalidation.
 */
#ifndef DD_NET_ASSETS_H
#define DD_NET_ASSETS_H

#include <stddef.h>

#include "core/err.h"

typedef struct dd_asset {
	const char *path;    /* relative to the static root: "dd.css" */
	const char *ctype;
	const unsigned char *data;
	size_t len;
	const char *etag;    /* quoted, from the content's SHA-256 */
} dd_asset;

/* The generated table, sorted by path. */
extern const dd_asset dd_assets[];
extern const size_t dd_assets_count;

/* The asset at path, or NULL. */
const dd_asset *dd_asset_find(const char *path);

/*
 * True when an If-None-Match header value names etag ("*", a list, and
 * weak validators count, per RFC 9110 13.1.2's weak comparison).
 */
int dd_etag_matches(const char *if_none_match, const char *etag);

#endif
