/*
 * ws_http.c: dd_ws_accept, the bridge from an HTTP route handler to a
 * server-side dd_ws. Kept apart from ws.c so the WebSocket code builds
 * and tests without the HTTP server.
 *
 * The ws is allocated before dd_http_upgrade, so the upgrade callback has
 * nothing left that can fail: it only attaches the stream. This relies on
 * dd_http_upgrade calling its callback exactly once when it returns DD_OK
 * and never when it returns an error.
 */
#include "net/ws.h"

#include <stdio.h>

#include "net/http.h"
#include "net/ws_int.h"

static void on_upgraded(uv_stream_t *stream, const uint8_t *leftover,
			size_t leftover_len, void *ud)
{
	ws_open(ud, stream, leftover, leftover_len, 1);
}

dd_err_t dd_ws_accept(dd_http_req *req, const dd_ws_opts *opts,
		      const dd_ws_handlers *h, void *ud)
{
	char accept[DD_WS_ACCEPT_LEN + 1];
	char hdrs[128];
	const char *why = "";
	const char *version = dd_http_req_header(req, "Sec-WebSocket-Version");
	int status = 400, n;
	dd_ws *ws = NULL;
	dd_err_t rc;

	rc = dd_ws_check_upgrade(dd_http_req_method_bit(req),
				 dd_http_req_http_minor(req),
				 dd_http_req_header(req, "Upgrade"),
				 dd_http_req_header(req, "Connection"), version,
				 dd_http_req_header(req, "Sec-WebSocket-Key"),
				 accept, &status, &why);
	if (rc) {
		if (status == 426)
			(void)dd_http_set_header(req, "Sec-WebSocket-Version",
						 "13");
		(void)dd_http_respond_error(req, status,
					    status == 426 ? "upgrade_required"
							  : "bad_request",
					    "%s", why);
		return rc;
	}
	rc = ws_alloc(1, opts, h, ud, &ws);
	if (rc) {
		(void)dd_http_respond_err(req, rc, "cannot open the WebSocket");
		return rc;
	}
	n = snprintf(hdrs, sizeof hdrs,
		     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\n", accept);
	if (n < 0 || (size_t)n >= sizeof hdrs) {
		rc = DD_ERR_INTERNAL;
		(void)dd_http_respond_err(req, rc, "cannot build the upgrade");
		goto out;
	}
	rc = dd_http_upgrade(req, hdrs, on_upgraded, ws);
	/* INVALID and BUSY leave the request unanswered; IO and CLOSED mean
	 * the connection (and maybe req) is gone. */
	if (rc == DD_ERR_INVALID || rc == DD_ERR_BUSY)
		(void)dd_http_respond_err(req, rc, "cannot switch protocols");
out:
	if (rc)
		ws_destroy(ws);
	return rc;
}
