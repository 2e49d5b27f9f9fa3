#include "net/httpc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/strutil.h"

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

static void process_done(dd_httpc *c);
static void schedule_aux(dd_httpc *c);

static long clamp_long(uint64_t v)
{
	return v > LONG_MAX ? LONG_MAX : (long)v;
}

/* ---- request bookkeeping ---- */

static void req_unlink(dd_httpc_req *r)
{
	dd_httpc *c = r->c;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	c->n_reqs--;
}

/* Wipes a buffer's storage before it goes (it may hold a token). */
static void buf_wipe_free(dd_buf *b)
{
	if (b->data != NULL)
		dd_freezero(b->data, b->alloc);
	b->data = NULL;
	dd_buf_free(b);
}

/*
 * Requests carry secrets (client secrets in bodies, bearer tokens and API
 * keys in headers) and replies carry tokens: every copy is wiped.
 */
static void req_free(dd_httpc_req *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	for (struct curl_slist *l = r->hdrs; l != NULL; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(r->hdrs);
	curl_slist_free_all(r->conn_to);
	if (r->body != NULL)
		dd_freezero(r->body, r->body_len);
	buf_wipe_free(&r->resp_body);
	buf_wipe_free(&r->resp_hdrs);
	dd_free(r);
}

static void reset_response(dd_httpc_req *r)
{
	dd_buf_reset(&r->resp_body);
	dd_buf_reset(&r->resp_hdrs);
	r->errbuf[0] = '\0';
	r->abort_rc = DD_OK;
	r->fail_rc = DD_OK;
	r->hdr_overflow = 0;
}

/*
 * Delivers the result and frees the request. The request is unlinked
 * first so the callback may close the client or cancel other requests.
 */
static void finish(dd_httpc_req *r, dd_err_t err, long status)
{
	dd_httpc_result res = {.err = err, .status = status,
			       .body = r->resp_body, .headers = r->resp_hdrs,
			       .message = r->errbuf, .attempts = r->attempts};

	req_unlink(r);
	if (err == DD_OK)
		r->errbuf[0] = '\0';
	else if (r->errbuf[0] == '\0')
		snprintf(r->errbuf, sizeof r->errbuf, "%s", dd_strerror(err));
	/* Moved into res; re-initialised so req_free cannot double free. */
	dd_buf_init(&r->resp_body, 1);
	dd_buf_init(&r->resp_hdrs, 1);
	r->cb(&res, r->ud);
	dd_buf_free(&res.body);
	dd_buf_free(&res.headers);
	req_free(r);
}

static dd_err_t map_curl(const dd_httpc_req *r, CURLcode res)
{
	switch (res) {
	case CURLE_OK:
		return DD_OK;
	case CURLE_WRITE_ERROR:
		return r->abort_rc != DD_OK ? r->abort_rc : DD_ERR_UPSTREAM;
	case CURLE_FILESIZE_EXCEEDED:
		return DD_ERR_TOO_LARGE;
	case CURLE_OPERATION_TIMEDOUT:
		return DD_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return DD_ERR_NOMEM;
	default:
		/* Connect, DNS, TLS and protocol failures: the far side. */
		return DD_ERR_UPSTREAM;
	}
}

static uint64_t jitter_random(void)
{
	uint64_t v = 0;

	/* getrandom cannot fail once the pool is up; 0 only loses jitter. */
	if (dd_random_bytes(&v, sizeof v) != DD_OK)
		v = 0;
	return v;
}

/* An attempt ended (the easy handle is already off the multi handle). */
static void attempt_done(dd_httpc_req *r, CURLcode res)
{
	dd_httpc *c = r->c;
	dd_err_t err;
	long status = 0;
	uint64_t delay = 0;
	int again;

	err = r->fail_rc != DD_OK ? r->fail_rc : map_curl(r, res);
	if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) !=
	    CURLE_OK)
		status = 0;
	/* curl's text for errors we caused ourselves would mislead. */
	if (err == DD_ERR_TOO_LARGE && r->hdr_overflow)
		snprintf(r->errbuf, sizeof r->errbuf,
			 "response headers larger than %u bytes",
			 DD_HTTPC_MAX_HEADER_BYTES);
	else if (err == DD_ERR_TOO_LARGE)
		snprintf(r->errbuf, sizeof r->errbuf,
			 "response body larger than %zu bytes",
			 r->resp_body.cap);
	else if (err != DD_OK && err == r->abort_rc)
		snprintf(r->errbuf, sizeof r->errbuf, "%s", dd_strerror(err));
	again = r->has_retry && !c->closing &&
		dd_retry_next(&r->retry, r->attempts, err, status,
			      dd_httpc_hdr_get(&r->resp_hdrs, "Retry-After"),
			      (int64_t)time(NULL), jitter_random(), &delay);
	if (!again) {
		finish(r, err, status);
		return;
	}
	reset_response(r);
	r->state = REQ_WAITING;
	r->due_ms = uv_now(c->loop) + delay;
	schedule_aux(c);
}

static dd_err_t add_attempt(dd_httpc_req *r)
{
	CURLMcode mc;

	reset_response(r);
	mc = curl_multi_add_handle(r->c->multi, r->easy);
	if (mc != CURLM_OK)
		return mc == CURLM_OUT_OF_MEMORY ? DD_ERR_NOMEM
						 : DD_ERR_INTERNAL;
	r->state = REQ_ACTIVE;
	r->attempts++;
	return DD_OK;
}

/* ---- curl callbacks (curl must not be re-entered from these) ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	dd_httpc_req *r = ud;
	size_t n = size * nmemb;
	dd_err_t rc;

	rc = dd_buf_append(&r->resp_body, p, n);
	if (rc) {
		/* Any short count makes curl stop with CURLE_WRITE_ERROR. */
		r->abort_rc = rc;
		return n == 0 ? 1 : 0;
	}
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	dd_httpc_req *r = ud;
	dd_err_t rc;

	rc = dd_httpc_hdr_add(&r->resp_hdrs, p, size * nmemb);
	if (rc) {
		r->abort_rc = rc;
		r->hdr_overflow = rc == DD_ERR_TOO_LARGE;
		return 0;
	}
	return size * nmemb;
}

/* Marks the transfer of e failed; the aux timer ends it outside curl. */
static void fail_transfer(dd_httpc *c, CURL *e, dd_err_t rc)
{
	char *priv = NULL;
	dd_httpc_req *r;

	if (e == NULL ||
	    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
	    priv == NULL)
		return;
	r = (dd_httpc_req *)(void *)priv;
	if (r->fail_rc == DD_OK)
		r->fail_rc = rc;
	schedule_aux(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	dd_httpc *c = h->data;

	/* A poll handle is the first member of its heap sock_ctx. */
	if (h->type == UV_POLL)
		dd_free(h);
	c->open_handles--;
	if (c->closing && c->open_handles == 0 && c->done != NULL)
		c->done(c, c->done_ud);
}

static void sock_close(sock_ctx *sk)
{
	dd_httpc *c = sk->c;

	if (sk->prev != NULL)
		sk->prev->next = sk->next;
	else
		c->socks = sk->next;
	if (sk->next != NULL)
		sk->next->prev = sk->prev;
	sk->poll.data = c;
	/* Stops polling now, so curl may close or reuse the fd at once. */
	uv_close((uv_handle_t *)&sk->poll, on_handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	sock_ctx *sk = (sock_ctx *)(void *)h;
	dd_httpc *c = sk->c;
	int flags = 0, running = 0;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else
		flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
			(events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
	/* Errors here surface per transfer through curl_multi_info_read. */
	(void)curl_multi_socket_action(c->multi, sk->fd, flags, &running);
	process_done(c);
}

static sock_ctx *sock_open(dd_httpc *c, curl_socket_t fd)
{
	sock_ctx *sk = dd_calloc(1, sizeof *sk);

	if (sk == NULL)
		return NULL;
	if (uv_poll_init_socket(c->loop, &sk->poll, fd) != 0) {
		dd_free(sk);
		return NULL;
	}
	sk->fd = fd;
	sk->c = c;
	sk->next = c->socks;
	if (c->socks != NULL)
		c->socks->prev = sk;
	c->socks = sk;
	c->open_handles++;
	return sk;
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp,
			  void *socketp)
{
	dd_httpc *c = userp;
	sock_ctx *sk = socketp;
	int events;

	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL)
			sock_close(sk);
		return 0;
	}
	if (c->closing)
		return 0;
	/*
	 * Failures end only this transfer (the aux timer removes it): a -1
	 * here would make libcurl fail the whole multi handle, stranding
	 * every other transfer of this client (and crashing 7.88 later).
	 */
	if (sk == NULL) {
		sk = sock_open(c, s);
		if (sk == NULL) {
			fail_transfer(c, e, DD_ERR_NOMEM);
			return 0;
		}
		if (curl_multi_assign(c->multi, s, sk) != CURLM_OK) {
			sock_close(sk);
			fail_transfer(c, e, DD_ERR_INTERNAL);
			return 0;
		}
	}
	events = (what & CURL_POLL_IN ? UV_READABLE : 0) |
		 (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	if (uv_poll_start(&sk->poll, events, on_poll) != 0) {
		fail_transfer(c, e, DD_ERR_IO);
		return 0;
	}
	return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
	dd_httpc *c = t->data;
	int running = 0;

	(void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0,
				       &running);
	process_done(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	dd_httpc *c = userp;

	(void)m;
	if (c->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&c->curl_timer);
	else
		uv_timer_start(&c->curl_timer, on_curl_timeout,
			       (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- loop-side drivers ---- */

static void process_done(dd_httpc *c)
{
	CURLMsg *m;
	CURL *e;
	CURLcode res;
	char *priv;
	int left;

	/* A callback may close the client; the multi handle is then gone. */
	while (!c->closing) {
		m = curl_multi_info_read(c->multi, &left);
		if (m == NULL)
			break;
		if (m->msg != CURLMSG_DONE)
			continue;
		e = m->easy_handle;
		res = m->data.result;
		priv = NULL;
		(void)curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		(void)curl_multi_remove_handle(c->multi, e);
		if (priv != NULL)
			attempt_done((dd_httpc_req *)(void *)priv, res);
	}
}

static dd_httpc_req *next_due(dd_httpc *c, uint64_t now)
{
	for (dd_httpc_req *r = c->reqs; r != NULL; r = r->next) {
		if (r->state == REQ_ACTIVE && r->fail_rc != DD_OK)
			return r;
		if (r->state == REQ_WAITING && r->due_ms <= now)
			return r;
	}
	return NULL;
}

static void on_aux(uv_timer_t *t)
{
	dd_httpc *c = t->data;
	dd_httpc_req *r;
	dd_err_t rc;

	/* Rescan after each step: callbacks may change the list. */
	while (!c->closing) {
		r = next_due(c, uv_now(c->loop));
		if (r == NULL)
			break;
		if (r->state == REQ_ACTIVE) {
			(void)curl_multi_remove_handle(c->multi, r->easy);
			attempt_done(r, CURLE_OK);
			continue;
		}
		rc = add_attempt(r);
		if (rc)
			finish(r, rc, 0);
	}
	schedule_aux(c);
}

static void schedule_aux(dd_httpc *c)
{
	uint64_t now, best = UINT64_MAX;

	if (c->closing)
		return;
	now = uv_now(c->loop);
	for (dd_httpc_req *r = c->reqs; r != NULL; r = r->next) {
		if ((r->state == REQ_ACTIVE && r->fail_rc != DD_OK) ||
		    (r->state == REQ_WAITING && r->due_ms <= now))
			best = 0;
		else if (r->state == REQ_WAITING && r->due_ms - now < best)
			best = r->due_ms - now;
	}
	if (best == UINT64_MAX)
		uv_timer_stop(&c->aux_timer);
	else
		uv_timer_start(&c->aux_timer, on_aux, best, 0);
}

/* ---- public API ---- */

static void client_free_fields(dd_httpc *c)
{
	dd_free(c->ca_file);
	dd_free(c->user_agent);
	if (c->curl_inited)
		curl_global_cleanup();
	dd_free(c);
}

dd_err_t dd_httpc_new(uv_loop_t *loop, const dd_httpc_opts *opts,
		      dd_httpc **out)
{
	static const dd_httpc_opts none;
	dd_httpc *c = NULL;
	CURLMcode mc;
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	if (opts == NULL)
		opts = &none;
	if (opts->ca_file != NULL &&
	    dd_httpc_check_ca_file(opts->ca_file) != DD_OK)
		return DD_ERR_CONFIG;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->loop = loop;
	c->timeout_ms = opts->timeout_ms ? opts->timeout_ms
					 : DD_HTTPC_DEFAULT_TIMEOUT_MS;
	c->connect_timeout_ms = opts->connect_timeout_ms
					? opts->connect_timeout_ms
					: DD_HTTPC_DEFAULT_CONNECT_TIMEOUT_MS;
	c->max_response = opts->max_response ? opts->max_response
					     : DD_HTTPC_DEFAULT_MAX_RESPONSE;
	c->max_inflight = opts->max_inflight ? opts->max_inflight
					     : DD_HTTPC_DEFAULT_MAX_INFLIGHT;
	if (opts->ca_file != NULL) {
		c->ca_file = dd_strdup(opts->ca_file);
		if (c->ca_file == NULL)
			goto out;
	}
	c->user_agent = dd_strdup(opts->user_agent != NULL
					  ? opts->user_agent
					  : "devopsdefender/" DD_VERSION);
	if (c->user_agent == NULL)
		goto out;
	/* Reference counted by curl, and thread-safe since 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = DD_ERR_INTERNAL;
		goto out;
	}
	c->curl_inited = 1;
	c->multi = curl_multi_init();
	if (c->multi == NULL)
		goto out;
	mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
			       on_curl_socket);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
				       on_curl_timer);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	if (mc != CURLM_OK) {
		rc = DD_ERR_INTERNAL;
		goto out;
	}
	/* uv_timer_init only fills in the struct; it cannot fail. */
	(void)uv_timer_init(loop, &c->curl_timer);
	(void)uv_timer_init(loop, &c->aux_timer);
	c->curl_timer.data = c;
	c->aux_timer.data = c;
	c->open_handles = 2;
	*out = c;
	c = NULL; /* transferred */
	rc = DD_OK;
out:
	if (c != NULL) {
		if (c->multi != NULL)
			curl_multi_cleanup(c->multi);
		client_free_fields(c);
	}
	return rc;
}

static CURLcode set_method(dd_httpc_req *r, const char *method,
			   size_t body_len)
{
	CURL *e = r->easy;
	CURLcode cc;

	if (strcmp(method, "HEAD") == 0)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (body_len > 0 || strcmp(method, "POST") == 0 ||
	    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
		/* Our own copy: it lives as long as the easy handle. */
		cc = curl_easy_setopt(e, CURLOPT_POSTFIELDS,
				      r->body != NULL ? (char *)r->body : "");
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
					      (curl_off_t)body_len);
		if (cc == CURLE_OK && strcmp(method, "POST") != 0)
			cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		return cc;
	}
	cc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (cc == CURLE_OK && strcmp(method, "GET") != 0)
		cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	return cc;
}

/*
 * An empty source host and port match every connection of the request,
 * so the name is never resolved; the URL's name still drives SNI and
 * the certificate check.
 */
static CURLcode set_connect_to(dd_httpc_req *r, const char *hp)
{
	char entry[sizeof "::" + DD_HTTPC_CONNECT_TO_MAX];

	if ((size_t)snprintf(entry, sizeof entry, "::%s", hp) >= sizeof entry)
		return CURLE_BAD_FUNCTION_ARGUMENT;
	r->conn_to = curl_slist_append(NULL, entry);
	if (r->conn_to == NULL)
		return CURLE_OUT_OF_MEMORY;
	return curl_easy_setopt(r->easy, CURLOPT_CONNECT_TO, r->conn_to);
}

static dd_err_t build_easy(dd_httpc *c, dd_httpc_req *r,
			   const dd_httpc_request *rq, const char *method)
{
	uint64_t timeout = rq->timeout_ms ? rq->timeout_ms : c->timeout_ms;
	uint64_t connect = c->connect_timeout_ms < timeout
				   ? c->connect_timeout_ms : timeout;
	const struct {
		CURLoption opt;
		long v;
	} longs[] = {
		{CURLOPT_FOLLOWLOCATION, 0L},
		{CURLOPT_NOSIGNAL, 1L},
		{CURLOPT_SSL_VERIFYPEER, 1L},
		{CURLOPT_SSL_VERIFYHOST, 2L},
		{CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2},
		{CURLOPT_TIMEOUT_MS, clamp_long(timeout)},
		{CURLOPT_CONNECTTIMEOUT_MS, clamp_long(connect)},
	};
	const struct {
		CURLoption opt;
		const void *v;
	} ptrs[] = {
		{CURLOPT_PRIVATE, r},
		{CURLOPT_URL, rq->url},
		{CURLOPT_PROTOCOLS_STR, "http,https"},
		{CURLOPT_REDIR_PROTOCOLS_STR, "http,https"},
		/* "" ignores *_proxy in the environment. */
		{CURLOPT_PROXY, ""},
		{CURLOPT_WRITEDATA, r},
		{CURLOPT_HEADERDATA, r},
		{CURLOPT_ERRORBUFFER, r->errbuf},
		{CURLOPT_USERAGENT, c->user_agent},
	};
	struct curl_slist *l;
	CURLcode cc = CURLE_OK;

	for (size_t i = 0; i <= rq->n_headers; i++) {
		/* A trailing empty Expect: stops curl waiting for 100. */
		l = curl_slist_append(r->hdrs, i < rq->n_headers
						       ? rq->headers[i]
						       : "Expect:");
		if (l == NULL)
			return DD_ERR_NOMEM;
		r->hdrs = l;
	}
	r->easy = curl_easy_init();
	if (r->easy == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(r->easy, longs[i].opt,
					      longs[i].v);
	}
	for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(r->easy, ptrs[i].opt, ptrs[i].v);
	}
	/* Only when given: NULL would drop the system bundle. */
	if (cc == CURLE_OK && c->ca_file != NULL)
		cc = curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->ca_file);
	/* Refuses a declared Content-Length over the cap before any body. */
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE,
				      (curl_off_t)r->resp_body.cap);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION,
				      on_header);
	if (cc == CURLE_OK)
		cc = set_method(r, method, rq->body_len);
	if (cc == CURLE_OK && rq->connect_to != NULL)
		cc = set_connect_to(r, rq->connect_to);
	if (cc == CURLE_OUT_OF_MEMORY)
		return DD_ERR_NOMEM;
	return cc == CURLE_OK ? DD_OK : DD_ERR_INTERNAL;
}

dd_err_t dd_httpc_start(dd_httpc *c, const dd_httpc_request *rq,
			dd_httpc_cb cb, void *ud, dd_httpc_req **out)
{
	const char *method = rq->method != NULL ? rq->method : "GET";
	dd_httpc_req *r = NULL;
	size_t n;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (c->closing)
		return DD_ERR_CLOSED;
	if (c->n_reqs >= c->max_inflight)
		return DD_ERR_BUSY;
	if (cb == NULL || dd_httpc_check_method(method) != DD_OK ||
	    rq->n_headers > DD_HTTPC_MAX_REQ_HEADERS ||
	    (rq->n_headers > 0 && rq->headers == NULL) ||
	    (rq->body_len > 0 && rq->body == NULL))
		return DD_ERR_INVALID;
	for (size_t i = 0; i < rq->n_headers; i++) {
		rc = dd_httpc_check_header(rq->headers[i]);
		if (rc)
			return rc;
	}
	rc = dd_httpc_check_url(rq->url);
	if (rc == DD_OK && rq->connect_to != NULL)
		rc = dd_httpc_check_connect_to(rq->connect_to);
	if (rc)
		return rc;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->c = c;
	r->cb = cb;
	r->ud = ud;
	dd_buf_init(&r->resp_body, rq->max_response ? rq->max_response
						    : c->max_response);
	dd_buf_init(&r->resp_hdrs, DD_HTTPC_MAX_HEADER_BYTES);
	if (rq->body_len > 0) {
		r->body = dd_malloc(rq->body_len);
		r->body_len = r->body ? rq->body_len : 0;
		rc = DD_ERR_NOMEM;
		if (r->body == NULL)
			goto out;
		memcpy(r->body, rq->body, rq->body_len);
	}
	if (rq->retry != NULL) {
		r->has_retry = 1;
		r->retry = *rq->retry;
		n = r->retry.n_statuses < DD_RETRY_MAX_STATUSES
			    ? r->retry.n_statuses : DD_RETRY_MAX_STATUSES;
		if (r->retry.statuses == NULL)
			n = 0;
		if (n > 0)
			memcpy(r->statuses, r->retry.statuses,
			       n * sizeof r->statuses[0]);
		r->retry.statuses = r->statuses;
		r->retry.n_statuses = n;
	}
	rc = build_easy(c, r, rq, method);
	if (rc)
		goto out;
	rc = add_attempt(r);
	if (rc)
		goto out;
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	c->n_reqs++;
	if (out != NULL)
		*out = r;
	r = NULL; /* owned by the client until finish() or cancel */
out:
	req_free(r);
	return rc;
}

void dd_httpc_cancel(dd_httpc_req *r)
{
	dd_httpc *c;

	if (r == NULL)
		return;
	c = r->c;
	if (r->state == REQ_ACTIVE && c->multi != NULL)
		(void)curl_multi_remove_handle(c->multi, r->easy);
	req_unlink(r);
	req_free(r);
}

unsigned dd_httpc_inflight(const dd_httpc *c)
{
	return c->n_reqs;
}

void dd_httpc_close(dd_httpc *c, dd_httpc_close_cb done, void *ud)
{
	dd_httpc_req *r;

	if (c->closing)
		return;
	c->closing = 1;
	c->done = done;
	c->done_ud = ud;
	/* Callbacks may cancel others, so always take the current head. */
	while (c->reqs != NULL) {
		r = c->reqs;
		if (r->state == REQ_ACTIVE)
			(void)curl_multi_remove_handle(c->multi, r->easy);
		r->state = REQ_WAITING;
		r->fail_rc = DD_OK;
		snprintf(r->errbuf, sizeof r->errbuf, "client closed");
		finish(r, DD_ERR_CANCELLED, 0);
	}
	/* Closes pooled connections; curl reports each with POLL_REMOVE. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (c->socks != NULL)
		sock_close(c->socks);
	uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->aux_timer, on_handle_closed);
}

void dd_httpc_free(dd_httpc *c)
{
	if (c == NULL)
		return;
	/* Freeing live uv handles would corrupt the loop: a caller bug. */
	if (!c->closing || c->open_handles != 0)
		abort();
	client_free_fields(c);
}
