/*
 * http.h: the HTTP/1.1 server on libuv + llhttp.
 *
 * One dd_http_server per listener. Everything runs on the loop thread.
 * The server owns parsing, limits, keep-alive, pipelining (one request at
 * a time per connection, in order), timeouts, the request id, the access
 * log and graceful shutdown; handlers only see dd_http_req.
 *
 * Request lifecycle: the server calls the route's handler once the whole
 * body is in. The handler must eventually finish the request exactly once,
 * with dd_http_respond*() or dd_http_stream_end(), or hand the connection
 * over with dd_http_upgrade(); it may do so later from another loop
 * callback. If the client goes away first, the abort callback (if set)
 * runs and the request is freed: after that the handler must not touch it.
 *
 * Every error body is {"code": "...", "message": "..."}; every response
 * carries X-Request-Id.
 */
#ifndef DD_NET_HTTP_H
#define DD_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "net/router.h"

typedef struct dd_http_server dd_http_server;
typedef struct dd_http_req dd_http_req;

typedef void (*dd_http_handler)(dd_http_req *req, void *ud);

/*
 * Optional gate run when the headers are complete, before any body is
 * read (R7): it may authenticate from headers and set *authenticated,
 * which selects the larger body cap. Returning an error finishes the
 * request without reading the body; the gate must then have responded
 * (for example with dd_http_respond_error), or the server answers 401.
 */
typedef dd_err_t (*dd_http_gate)(dd_http_req *req, void *ud,
				 int *authenticated);

typedef struct dd_http_route {
	unsigned methods;       /* DD_M_* bitmask; GET implies HEAD */
	const char *pattern;    /* router pattern, e.g. "/logs/{app}" */
	dd_http_handler handler;
	void *ud;
	dd_http_gate gate;      /* NULL: every request is unauthenticated */
	uint64_t max_body;      /* 0: the server's limits; else this route's */
	uint64_t max_body_unauth; /* 0: the server's limits */
} dd_http_route;

/*
 * Creates a server on loop with the given limits (copied). name labels
 * the access log ("cp", "agent-api"). Caller frees with
 * dd_http_server_free() after the close callback of shutdown has run, or
 * before listen.
 */
dd_err_t dd_http_server_new(uv_loop_t *loop, const dd_http_limits *limits,
			    const char *name, dd_http_server **out);
void dd_http_server_free(dd_http_server *srv);

/* Adds a route (copied, pattern included). INVALID for a bad pattern. */
dd_err_t dd_http_server_route(dd_http_server *srv, const dd_http_route *route);

/* Binds and listens. port 0 picks a free port (see dd_http_server_port). */
dd_err_t dd_http_server_listen(dd_http_server *srv, const char *addr,
			       uint16_t port);
uint16_t dd_http_server_port(const dd_http_server *srv);

/*
 * Serves one already-connected stream socket (a socketpair end, an
 * inherited descriptor); the server takes ownership of fd. Used by the
 * fuzzer and by supervisors that hand connections over.
 */
dd_err_t dd_http_server_adopt(dd_http_server *srv, int fd);

/*
 * Graceful shutdown: stop accepting, close idle connections, let requests
 * in flight finish (their responses get Connection: close), and after
 * deadline_ms close whatever remains. done(srv, ud) runs once everything
 * is closed; the loop then holds no handle of this server.
 */
void dd_http_server_shutdown(dd_http_server *srv, uint64_t deadline_ms,
			     void (*done)(dd_http_server *srv, void *ud),
			     void *ud);

/* Number of open connections (upgraded ones are no longer counted). */
size_t dd_http_server_connections(const dd_http_server *srv);

/* --- reading the request ------------------------------------------------ */

const char *dd_http_req_method(const dd_http_req *req);
unsigned dd_http_req_method_bit(const dd_http_req *req);
/* Raw path without the query string, as sent. */
const char *dd_http_req_path(const dd_http_req *req);
/* Raw query string without '?', or "" when absent. */
const char *dd_http_req_query_string(const dd_http_req *req);
/*
 * Percent-decoded value of the first query parameter `name`; NULL if
 * absent or undecodable. The string lives as long as the request.
 */
const char *dd_http_req_query(dd_http_req *req, const char *name);
/* A path parameter from the route pattern ("{app}" -> "app"), or NULL. */
const char *dd_http_req_param(const dd_http_req *req, const char *name);
/* First header with this name (case-insensitive), or NULL. */
const char *dd_http_req_header(const dd_http_req *req, const char *name);
/* Iterates headers: returns 0 past the end. */
int dd_http_req_header_at(const dd_http_req *req, size_t i,
			  const char **name, const char **value);
const uint8_t *dd_http_req_body(const dd_http_req *req, size_t *len);
const char *dd_http_req_id(const dd_http_req *req);
/* Peer IP as text. Informational only: no decision may depend on it. */
const char *dd_http_req_peer(const dd_http_req *req);
int dd_http_req_authenticated(const dd_http_req *req);
uv_loop_t *dd_http_req_loop(const dd_http_req *req);
/* HTTP minor version (0 or 1) of the request line. */
int dd_http_req_http_minor(const dd_http_req *req);

/*
 * Called if the connection closes before the request is finished. After
 * it returns, req is freed. Setting NULL clears it.
 */
void dd_http_req_on_abort(dd_http_req *req, void (*cb)(void *ud), void *ud);

/* --- answering ---------------------------------------------------------- */

/*
 * Adds a response header (copied). INVALID for names/values with CR, LF
 * or NUL, or for headers the server owns (Content-Length,
 * Transfer-Encoding, Connection, X-Request-Id).
 */
dd_err_t dd_http_set_header(dd_http_req *req, const char *name,
			    const char *value);

/* Finishes the request with a complete body. HEAD gets headers only. */
dd_err_t dd_http_respond(dd_http_req *req, int status, const char *ctype,
			 const void *body, size_t len);
/* JSON body (v is borrowed). */
dd_err_t dd_http_respond_json(dd_http_req *req, int status, const json_t *v);
/* {"code": code, "message": printf(fmt, ...)} with the given status. */
dd_err_t dd_http_respond_error(dd_http_req *req, int status, const char *code,
			       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Maps a dd_err_t to its status and code; detail goes in the message. */
dd_err_t dd_http_respond_err(dd_http_req *req, dd_err_t err,
			     const char *detail);
int dd_http_status_for_err(dd_err_t err);

/*
 * Streaming (chunked on HTTP/1.1, close-delimited on HTTP/1.0). write
 * copies the data; it returns DD_ERR_BUSY once more than the high-water
 * mark is queued: stop producing until on_drain runs. end finishes.
 */
dd_err_t dd_http_stream_begin(dd_http_req *req, int status, const char *ctype);
dd_err_t dd_http_stream_write(dd_http_req *req, const void *data, size_t len);
void dd_http_stream_on_drain(dd_http_req *req, void (*cb)(void *ud), void *ud);
dd_err_t dd_http_stream_end(dd_http_req *req);

/*
 * Protocol switch (WebSocket). Writes "101 Switching Protocols" with the
 * given extra header lines (each ending in "\r\n"), detaches the
 * connection from the HTTP server and calls cb with the stream, which now
 * belongs to the callee: it sets stream->data, reads with uv_read_start,
 * and must finally uv_close() it with a close callback that calls
 * dd_free(stream). Bytes the client sent after the request head (already
 * read) are passed as leftover (valid only during cb). The request is
 * freed when cb returns. On DD_OK cb has run exactly once, before this
 * returns; on any error it has not run, and the request is still the
 * caller's to answer (BUSY: earlier pipelined responses are still being
 * written) unless the connection is gone (CLOSED, IO).
 */
typedef void (*dd_http_upgrade_cb)(uv_stream_t *stream, const uint8_t *leftover,
				   size_t leftover_len, void *ud);
dd_err_t dd_http_upgrade(dd_http_req *req, const char *extra_headers,
			 dd_http_upgrade_cb cb, void *ud);

#endif
