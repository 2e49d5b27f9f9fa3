/*
 * httpc.h: asynchronous outbound HTTP(S) client on the libuv loop.
 *
 * libcurl's multi interface does the protocol work; its sockets and
 * timer are driven by the loop (uv_poll_t per socket, one uv_timer_t), so
 * calls to Cloudflare, GitHub, ITA and scrape targets never block and
 * need no threads of their own. Everything runs on the loop thread: no
 * function here may be called from another thread.
 *
 * Fixed policy, not options: TLS peer and host verification is always on
 * (minimum TLS 1.2); only http and https URLs are accepted; redirects are
 * never followed (a 3xx is returned as is); the environment's *_proxy
 * variables are ignored; responses are not decompressed, so the size cap
 * applies to the bytes on the wire. Header values are never logged (they
 * carry Authorization secrets); nothing here logs at all (R2).
 *
 * Results: a transfer that produced a complete HTTP response reports
 * DD_OK with the status, whatever the status is; callers decide what a
 * 404 means. Transport failures are DD_ERR_UPSTREAM (connect, DNS, TLS,
 * malformed or cut-off responses) with curl's error text in message,
 * DD_ERR_TIMEOUT, DD_ERR_TOO_LARGE (body or headers over the cap: the
 * transfer is aborted as soon as the cap is passed), DD_ERR_NOMEM.
 *
 * The process must ignore SIGPIPE (libcurl is told not to touch signals).
 */
#ifndef DD_NET_HTTPC_H
#define DD_NET_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/retry.h"

#define DD_HTTPC_DEFAULT_TIMEOUT_MS 30000u
#define DD_HTTPC_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DD_HTTPC_DEFAULT_MAX_RESPONSE (1u << 20)
#define DD_HTTPC_DEFAULT_MAX_INFLIGHT 256u
#define DD_HTTPC_MAX_HEADER_BYTES (64u * 1024u) /* all response headers */
#define DD_HTTPC_MAX_REQ_HEADERS 64u
#define DD_HTTPC_CONNECT_TO_MAX 300u  /* bytes of a connect_to "host:port" */

typedef struct dd_httpc dd_httpc;
typedef struct dd_httpc_req dd_httpc_req;

/* Zero or NULL in any field selects the default. All strings are copied. */
typedef struct dd_httpc_opts {
	/*
	 * PEM file of extra trust anchors (tests point it at their own
	 * CA). It is used together with the system CA directory; it never
	 * turns verification off.
	 */
	const char *ca_file;
	const char *user_agent;       /* default "devopsdefender/<ver>" */
	uint64_t timeout_ms;          /* default total time per attempt */
	uint64_t connect_timeout_ms;  /* default; never above timeout_ms */
	size_t max_response;          /* default body cap, bytes */
	unsigned max_inflight;        /* more concurrent requests: BUSY */
} dd_httpc_opts;

typedef struct dd_httpc_request {
	const char *method;           /* NULL: "GET"; must be a token */
	const char *url;              /* http:// or https:// only */
	/* "Name: value" lines; no CR, LF. Copied. */
	const char *const *headers;
	size_t n_headers;             /* at most DD_HTTPC_MAX_REQ_HEADERS */
	const void *body;             /* copied; NULL with body_len 0 */
	size_t body_len;
	uint64_t timeout_ms;          /* 0: the client's default */
	size_t max_response;          /* 0: the client's default */
	/*
	 * NULL: one attempt. Otherwise the request is retried per the
	 * policy (copied, statuses included), each attempt getting the
	 * full timeout; Retry-After is honoured on 429 and 503.
	 */
	const dd_retry_policy *retry;
	/*
	 * NULL: the URL's host is resolved as usual. "host:port" (see
	 * dd_httpc_check_connect_to): every connection of this request goes
	 * there instead, like curl --connect-to ::host:port; the URL, the
	 * Host header, SNI and the certificate's name check are still the
	 * URL's. Test and dev plumbing (a fake edge on loopback).
	 */
	const char *connect_to;
} dd_httpc_request;

typedef struct dd_httpc_result {
	dd_err_t err;
	long status;         /* HTTP status; 0 when no response was read */
	/*
	 * The response body (capped). The callback may keep it by taking
	 * the storage with dd_buf_steal(); otherwise it is freed after the
	 * callback returns.
	 */
	dd_buf body;
	const char *message; /* never NULL; "" on success */
	unsigned attempts;   /* attempts made, >= 1 */
	dd_buf headers;      /* private: use dd_httpc_result_header() */
} dd_httpc_result;

/*
 * Called exactly once per started request, on the loop thread, unless
 * the request was cancelled with dd_httpc_cancel(). res and everything
 * it points to are valid only during the call. The callback may start
 * new requests, cancel other requests and close the client.
 */
typedef void (*dd_httpc_cb)(dd_httpc_result *res, void *ud);

typedef void (*dd_httpc_close_cb)(dd_httpc *c, void *ud);

/*
 * Creates a client on loop. opts may be NULL. Caller releases it with
 * dd_httpc_close() and then dd_httpc_free(). CONFIG if ca_file is not a
 * readable file.
 */
dd_err_t dd_httpc_new(uv_loop_t *loop, const dd_httpc_opts *opts,
		      dd_httpc **out);

/*
 * Starts a request. Everything in rq is copied; rq may go away once this
 * returns. On success *out (if out is not NULL) is a handle for
 * dd_httpc_cancel(), valid until the callback starts. On error the
 * callback is never called: INVALID for a bad method, URL, scheme or
 * header; BUSY when max_inflight requests are running; CLOSED after
 * dd_httpc_close(); NOMEM.
 */
dd_err_t dd_httpc_start(dd_httpc *c, const dd_httpc_request *rq,
			dd_httpc_cb cb, void *ud, dd_httpc_req **out);

/*
 * Aborts a request that has not completed (including one waiting to be
 * retried). The callback is NOT called; the handle is freed and must
 * not be used again. Never call it from the request's own callback.
 */
void dd_httpc_cancel(dd_httpc_req *r);

/*
 * Number of requests started and not yet completed or cancelled.
 */
unsigned dd_httpc_inflight(const dd_httpc *c);

/*
 * Shuts the client down: every outstanding request completes with
 * DD_ERR_CANCELLED (its callback runs, before this returns), pooled
 * connections are closed and all uv handles are closed. done(c, ud) runs
 * from the loop once the last handle is closed; only then may the client
 * be freed (done may call dd_httpc_free itself). Call at most once.
 */
void dd_httpc_close(dd_httpc *c, dd_httpc_close_cb done, void *ud);

/* Frees a client whose close has completed. NULL is a no-op. */
void dd_httpc_free(dd_httpc *c);

/*
 * Case-insensitive lookup of a response header of the final response.
 * Returns the first value, trimmed, NUL-terminated and valid while res
 * is; NULL when absent.
 */
const char *dd_httpc_result_header(const dd_httpc_result *res,
				   const char *name);

/*
 * Socket-free helpers (httpc_msg.c), public for tests, fuzzing and
 * callers that want to validate configured values early.
 */

/* An HTTP token of 1..32 characters. INVALID otherwise. */
dd_err_t dd_httpc_check_method(const char *m);
/* "Name: value": token name, no CR/LF, under 8 KiB. INVALID otherwise. */
dd_err_t dd_httpc_check_header(const char *h);
/* Absolute http:// or https:// URL, no spaces or controls, < 8 KiB. */
dd_err_t dd_httpc_check_url(const char *url);
/*
 * "host:port" for connect_to: host a DNS name or IPv4 literal of
 * [A-Za-z0-9.-] or a bracketed IPv6 literal, port 1..65535, at most
 * DD_HTTPC_CONNECT_TO_MAX bytes in all. INVALID otherwise.
 */
dd_err_t dd_httpc_check_connect_to(const char *hp);
/* CONFIG unless path is a readable regular file. */
dd_err_t dd_httpc_check_ca_file(const char *path);

/*
 * Adds one raw response header line (CRLF included or not) to a store of
 * "name\0value\0" pairs. A status line ("HTTP/...") empties the store;
 * lines without a colon, folded lines and lines holding NULs are
 * ignored. TOO_LARGE when the store's cap would be passed (the store is
 * then unchanged).
 */
dd_err_t dd_httpc_hdr_add(dd_buf *store, const char *line, size_t n);
/* First value stored under name (case-insensitive), or NULL. */
const char *dd_httpc_hdr_get(const dd_buf *store, const char *name);

#endif
