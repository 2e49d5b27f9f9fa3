/*
 * client_http.h: one HTTP call at a time for the command-line client.
 *
 * The client is a sequence of steps (mint a token, deploy, poll, fetch
 * logs), so it wants calls that return their answer. This wraps the
 * asynchronous dd_httpc: each call starts a request and runs the given
 * libuv loop until the request's callback has fired. The loop may carry
 * other handles (unit tests put their fake servers on it); they keep
 * being served while a call or a sleep is in progress.
 *
 * Every call is bounded by the client's deadline (dd_client_http_deadline):
 * a request never gets more time than what is left, and once nothing is
 * left calls fail with DD_ERR_TIMEOUT without touching the network.
 */
#ifndef DD_CLIENT_CLIENT_HTTP_H
#define DD_CLIENT_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "net/httpc.h"

typedef struct dd_client_http dd_client_http;

/* The answer to one call. Release with dd_client_resp_free(). */
typedef struct dd_client_resp {
	dd_err_t err;       /* DD_OK: status and body are the server's */
	long status;        /* 0 when no response was read */
	char *body;         /* owned, NUL-terminated, never NULL after a call */
	size_t body_len;
	char message[256];  /* transport detail when err != DD_OK */
} dd_client_resp;

/*
 * Creates a caller on loop (borrowed; it must outlive the caller). opts
 * as for dd_httpc_new (copied). Caller releases it with
 * dd_client_http_free(), which runs the loop until the HTTP client's
 * handles are closed. CONFIG when opts->ca_file is unreadable.
 */
dd_err_t dd_client_http_new(uv_loop_t *loop, const dd_httpc_opts *opts,
			    dd_client_http **out);
void dd_client_http_free(dd_client_http *h);

/* Sets the absolute deadline (dd_now_ms() clock); 0 means none. */
void dd_client_http_deadline(dd_client_http *h, uint64_t deadline_ms);
/* Milliseconds left before the deadline (UINT64_MAX without one). */
uint64_t dd_client_http_left(const dd_client_http *h);

/*
 * Makes one request and waits for it. rq->timeout_ms (0: the client's
 * default) is cut to the time left. The result is in *out, which the
 * caller releases with dd_client_resp_free() whatever this returns (it
 * starts empty). Returns out->err: DD_OK whenever a complete HTTP
 * response arrived, whatever its status. The body may hold secrets (a
 * minted token): dd_client_resp_free() wipes it.
 */
dd_err_t dd_client_http_call(dd_client_http *h, const dd_httpc_request *rq,
			     dd_client_resp *out);
void dd_client_resp_free(dd_client_resp *r);

/* Waits ms (cut to the time left), serving the loop meanwhile. */
void dd_client_http_sleep(dd_client_http *h, uint64_t ms);

/*
 * The URL policy for agent, control plane and token endpoint URLs:
 * absolute http or https, no user name or password, no fragment, no
 * query unless allow_query, and plain http only to a loopback host
 * (127.0.0.0/8, ::1, localhost), because bearer tokens travel with the
 * requests. INVALID with the reason in why.
 */
dd_err_t dd_client_url_check(const char *url, int allow_query, char *why,
			     size_t why_len);

/* The host part of an absolute URL ("[::1]" for IPv6). INVALID, TOO_LARGE. */
dd_err_t dd_client_url_host(const char *url, char *out, size_t out_len);

#endif
