/*
 * static.h: serves the embedded assets (assets.h) under a URL prefix.
 */
#ifndef DD_NET_STATIC_H
#define DD_NET_STATIC_H

#include "core/err.h"
#include "net/http.h"

/*
 * Adds GET/HEAD {prefix}{path*} to srv, e.g. prefix "/static". Replies
 * 200 with ETag and Cache-Control, 304 on a matching If-None-Match, and
 * the JSON 404 for anything not embedded.
 */
dd_err_t dd_static_mount(dd_http_server *srv, const char *prefix);

/*
 * The handler itself, for callers that mount routes through their own
 * dispatcher: serves the route's {path} parameter; ud is unused.
 */
void dd_static_serve(dd_http_req *req, void *ud);

#endif
