/*
 * httpc.c: the client's life on the loop: curl's multi handle driven by
 * libuv polls and timers, attempts and retries with back-off, delivery of
 * results, cancel and close. Building one request is httpc_req.c.
 */
#include "net/httpc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/strutil.h"

static void process_done(dd_httpc *c);
static void schedule_aux(dd_httpc *c);

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
	/* Moved into res; re-initialised so httpc_req_free cannot double free. */
	dd_buf_init(&r->resp_body, 1);
	dd_buf_init(&r->resp_hdrs, 1);
	r->cb(&res, r->ud);
	dd_buf_free(&res.body);
	dd_buf_free(&res.headers);
	httpc_req_free(r);
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

dd_err_t dd_httpc_start(dd_httpc *c, const dd_httpc_request *rq,
			dd_httpc_cb cb, void *ud, dd_httpc_req **out)
{
	dd_httpc_req *r = NULL;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (c->closing)
		return DD_ERR_CLOSED;
	if (c->n_reqs >= c->max_inflight)
		return DD_ERR_BUSY;
	if (cb == NULL)
		return DD_ERR_INVALID;
	rc = httpc_req_new(c, rq, &r);
	if (rc)
		return rc;
	r->cb = cb;
	r->ud = ud;
	rc = add_attempt(r);
	if (rc) {
		httpc_req_free(r);
		return rc;
	}
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	c->n_reqs++;
	if (out != NULL)
		*out = r; /* owned by the client until finish() or cancel */
	return DD_OK;
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
	httpc_req_free(r);
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
