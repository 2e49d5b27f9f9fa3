#include "net/static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strutil.h"
#include "net/assets.h"

static int cmp_path(const void *key, const void *elem)
{
	return strcmp(key, ((const dd_asset *)elem)->path);
}

const dd_asset *dd_asset_find(const char *path)
{
	return bsearch(path, dd_assets, dd_assets_count, sizeof dd_assets[0],
		       cmp_path);
}

int dd_etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *s = p;

		dd_str_trim(&s, &n);
		if (n == 1 && s[0] == '*')
			return 1;
		if (n >= 2 && s[0] == 'W' && s[1] == '/') {
			s += 2;
			n -= 2;
		}
		if (n == elen && memcmp(s, etag, n) == 0)
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

void dd_static_serve(dd_http_req *req, void *ud)
{
	const char *path = dd_http_req_param(req, "path");
	const char *inm = dd_http_req_header(req, "If-None-Match");
	const dd_asset *a;

	(void)ud;
	a = path ? dd_asset_find(path) : NULL;
	if (a == NULL) {
		dd_http_respond_error(req, 404, "NOT_FOUND", "no such asset");
		return;
	}
	/* The ETag changes with the content, so revalidation is cheap. */
	dd_http_set_header(req, "ETag", a->etag);
	dd_http_set_header(req, "Cache-Control", "public, max-age=300, must-revalidate");
	if (inm != NULL && dd_etag_matches(inm, a->etag)) {
		dd_http_respond(req, 304, NULL, NULL, 0);
		return;
	}
	dd_http_respond(req, 200, a->ctype, a->data, a->len);
}

dd_err_t dd_static_mount(dd_http_server *srv, const char *prefix)
{
	char pattern[256];
	dd_http_route r = {.methods = DD_M_GET, .handler = dd_static_serve,
			   .pattern = pattern};
	int n;

	if (prefix[0] != '/' || prefix[strlen(prefix) - 1] == '/')
		return DD_ERR_INVALID;
	n = snprintf(pattern, sizeof pattern, "%s/{path*}", prefix);
	if (n < 0 || (size_t)n >= sizeof pattern)
		return DD_ERR_TOO_LARGE;
	return dd_http_server_route(srv, &r);
}
