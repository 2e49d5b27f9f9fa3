/*
 * httpc_int.h: private to the HTTP client's files (httpc.c drives the
 * multi handle on the loop: attempts, retries, sockets, timers, close;
 * httpc_req.c builds one request: checks, copies, the easy handle and
 * its callbacks, and wiping it). No other module includes this.
 */
#ifndef DD_NET_HTTPC_INT_H
#define DD_NET_HTTPC_INT_H

#include <curl/curl.h>

#include "core/buf.h"
#include "net/httpc.h"
#include "net/retry.h"

typedef enum {
	REQ_ACTIVE,  /* attached to the multi handle */
	REQ_WAITING, /* between attempts, on the aux timer */
} req_state;

/* One per socket curl asks us to watch. */
typedef struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	dd_httpc *c;
	struct sock_ctx *prev, *next;
} sock_ctx;

struct dd_httpc_req {
	dd_httpc *c;
	dd_httpc_req *prev, *next;
	CURL *easy;
	struct curl_slist *hdrs;
	struct curl_slist *conn_to; /* "::host:port", or NULL */
	uint8_t *body;
	size_t body_len;
	dd_buf resp_body;
	dd_buf resp_hdrs;
	char errbuf[CURL_ERROR_SIZE];
	dd_retry_policy retry;
	long statuses[DD_RETRY_MAX_STATUSES];
	int has_retry;
	unsigned attempts;
	uint64_t due_ms;
	req_state state;
	/*
	 * Failures noticed inside curl callbacks, where curl must not be
	 * re-entered: fail_rc makes the aux timer end the transfer,
	 * abort_rc explains a CURLE_WRITE_ERROR we caused ourselves.
	 */
	dd_err_t fail_rc;
	dd_err_t abort_rc;
	int hdr_overflow;
	dd_httpc_cb cb;
	void *ud;
};

struct dd_httpc {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer; /* curl's single timeout */
	uv_timer_t aux_timer;  /* retry back-offs and deferred failures */
	char *ca_file;
	char *user_agent;
	uint64_t timeout_ms;
	uint64_t connect_timeout_ms;
	size_t max_response;
	unsigned max_inflight;
	unsigned n_reqs;
	dd_httpc_req *reqs;
	sock_ctx *socks;
	unsigned open_handles;
	int curl_inited;
	int closing;
	dd_httpc_close_cb done;
	void *done_ud;
};

/*
 * Checks rq and builds a request on c that is not yet started or
 * linked: its own copies of the body and retry policy, its buffers, its
 * easy handle. INVALID or the check's error for a bad request, NOMEM,
 * INTERNAL when curl refuses an option. On DD_OK the caller owns *out
 * and releases it with httpc_req_free() (which wipes every copy).
 */
dd_err_t httpc_req_new(dd_httpc *c, const dd_httpc_request *rq,
		       dd_httpc_req **out);
/* NULL is a no-op. */
void httpc_req_free(dd_httpc_req *r);

#endif
