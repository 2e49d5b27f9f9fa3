#include "client/client_http.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/alloc.h"
#include "core/strutil.h"

struct dd_client_http {
	uv_loop_t *loop;
	dd_httpc *http;
	uint64_t timeout_ms;   /* the client's per-attempt default */
	uint64_t deadline_ms;  /* 0: none */
};

/*
 * One call in flight: what the callbacks share with the waiting caller.
 * Callbacks that end the wait also stop the loop: an iteration of
 * UV_RUN_ONCE whose timers finished the request would otherwise go on
 * to block in poll until the next timer, the deadline guard included.
 */
struct call {
	uv_loop_t *loop;
	dd_client_resp *out;
	dd_httpc_req *req;
	uv_timer_t guard;      /* the deadline: retries must not outlive it */
	int done;
	int guard_closed;
};

dd_err_t dd_client_http_new(uv_loop_t *loop, const dd_httpc_opts *opts,
			    dd_client_http **out)
{
	dd_client_http *h = NULL;
	dd_err_t rc;

	*out = NULL;
	h = dd_calloc(1, sizeof *h);
	if (h == NULL)
		return DD_ERR_NOMEM;
	h->loop = loop;
	h->timeout_ms = opts != NULL && opts->timeout_ms != 0 ?
			opts->timeout_ms : DD_HTTPC_DEFAULT_TIMEOUT_MS;
	rc = dd_httpc_new(loop, opts, &h->http);
	if (rc)
		goto out;
	*out = h;
	h = NULL; /* transferred */
out:
	dd_free(h);
	return rc;
}

static void on_httpc_closed(dd_httpc *c, void *ud)
{
	(void)c;
	*(int *)ud = 1;
}

void dd_client_http_free(dd_client_http *h)
{
	int closed = 0;

	if (h == NULL)
		return;
	dd_httpc_close(h->http, on_httpc_closed, &closed);
	while (!closed)
		uv_run(h->loop, UV_RUN_ONCE);
	dd_httpc_free(h->http);
	dd_free(h);
}

void dd_client_http_deadline(dd_client_http *h, uint64_t deadline_ms)
{
	h->deadline_ms = deadline_ms;
}

uint64_t dd_client_http_left(const dd_client_http *h)
{
	uint64_t now = dd_now_ms();

	if (h->deadline_ms == 0)
		return UINT64_MAX;
	return h->deadline_ms > now ? h->deadline_ms - now : 0;
}

static void set_message(dd_client_resp *out, const char *msg)
{
	snprintf(out->message, sizeof out->message, "%s", msg);
}

static void on_result(dd_httpc_result *res, void *ud)
{
	struct call *c = ud;
	dd_client_resp *out = c->out;
	dd_err_t rc;

	c->done = 1;
	c->req = NULL;
	uv_stop(c->loop);
	out->err = res->err;
	out->status = res->status;
	set_message(out, res->message);
	rc = dd_buf_steal(&res->body, &out->body, &out->body_len);
	if (rc) {
		out->err = rc;
		set_message(out, dd_strerror(rc));
	}
}

static void on_guard(uv_timer_t *t)
{
	struct call *c = t->data;

	if (c->done)
		return;
	dd_httpc_cancel(c->req);
	c->req = NULL;
	c->done = 1;
	uv_stop(c->loop);
	c->out->err = DD_ERR_TIMEOUT;
	set_message(c->out, "deadline passed");
}

static void on_guard_closed(uv_handle_t *hd)
{
	struct call *c = hd->data;

	c->guard_closed = 1;
}

void dd_client_resp_free(dd_client_resp *r)
{
	if (r->body != NULL)
		dd_freezero(r->body, r->body_len);
	r->body = NULL;
	r->body_len = 0;
}

dd_err_t dd_client_http_call(dd_client_http *h, const dd_httpc_request *rq,
			     dd_client_resp *out)
{
	dd_httpc_request r = *rq;
	uint64_t left = dd_client_http_left(h);
	struct call c;
	int guarded = 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	c.loop = h->loop;
	c.out = out;
	if (r.timeout_ms == 0)
		r.timeout_ms = h->timeout_ms;
	if (left == 0) {
		out->err = DD_ERR_TIMEOUT;
		set_message(out, "deadline passed");
		return out->err;
	}
	if (r.timeout_ms > left)
		r.timeout_ms = left;
	if (h->deadline_ms != 0 && r.retry != NULL) {
		if (uv_timer_init(h->loop, &c.guard) != 0) {
			out->err = DD_ERR_NOMEM;
			set_message(out, "timer");
			return out->err;
		}
		c.guard.data = &c;
		guarded = 1;
		uv_timer_start(&c.guard, on_guard, left, 0);
	}
	rc = dd_httpc_start(h->http, &r, on_result, &c, &c.req);
	if (rc) {
		out->err = rc;
		set_message(out, dd_strerror(rc));
		c.done = 1;
	}
	while (!c.done)
		uv_run(h->loop, UV_RUN_ONCE);
	if (guarded) {
		uv_close((uv_handle_t *)&c.guard, on_guard_closed);
		while (!c.guard_closed)
			uv_run(h->loop, UV_RUN_ONCE);
	}
	if (out->err == DD_OK && out->body == NULL) {
		out->err = DD_ERR_NOMEM;
		set_message(out, "body");
	}
	return out->err;
}

static void on_sleep(uv_timer_t *t)
{
	*(int *)t->data = 1;
	uv_stop(t->loop);
}

static void on_sleep_closed(uv_handle_t *hd)
{
	*(int *)hd->data = 2;
}

/* One timer's worth of waiting; the loop's cached clock may cut it short. */
static int sleep_once(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	int state = 0;

	if (uv_timer_init(loop, &t) != 0)
		return -1;
	t.data = &state;
	uv_timer_start(&t, on_sleep, ms, 0);
	while (state == 0)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, on_sleep_closed);
	while (state != 2)
		uv_run(loop, UV_RUN_ONCE);
	return 0;
}

void dd_client_http_sleep(dd_client_http *h, uint64_t ms)
{
	uint64_t left = dd_client_http_left(h), end, now;

	if (ms > left)
		ms = left;
	end = dd_now_ms() + ms;
	/* Until the clock says so, so that "left" is 0 after a cut sleep. */
	for (now = dd_now_ms(); now < end; now = dd_now_ms())
		/* A shorter wait is harmless: calls check what is left. */
		if (sleep_once(h->loop, end - now) != 0)
			break;
}

static int loopback_host(const char *host)
{
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

static void why_set(char *why, size_t why_len, const char *msg)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", msg);
}

dd_err_t dd_client_url_check(const char *url, int allow_query, char *why,
			     size_t why_len)
{
	static const CURLUPart refused[] = {CURLUPART_USER, CURLUPART_PASSWORD,
					    CURLUPART_FRAGMENT};
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *part = NULL;
	dd_err_t rc = DD_ERR_INVALID;

	if (dd_httpc_check_url(url) != DD_OK) {
		why_set(why, why_len, "not an absolute http(s) URL");
		return DD_ERR_INVALID;
	}
	u = curl_url();
	if (u == NULL)
		return DD_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		why_set(why, why_len, "not an absolute http(s) URL");
		goto out;
	}
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (curl_url_get(u, refused[i], &part, 0) == CURLUE_OK) {
			why_set(why, why_len, "user names, passwords and "
				"fragments are not allowed in the URL");
			goto out;
		}
	}
	if (!allow_query &&
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK) {
		why_set(why, why_len, "a query string is not allowed here");
		goto out;
	}
	if (strcmp(scheme, "http") == 0 && !loopback_host(host)) {
		why_set(why, why_len, "plain http is only allowed to loopback "
			"(tokens travel with the requests); use https");
		goto out;
	}
	rc = DD_OK;
out:
	curl_free(part);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

dd_err_t dd_client_url_host(const char *url, char *out, size_t out_len)
{
	CURLU *u = curl_url();
	char *host = NULL;
	dd_err_t rc = DD_ERR_INVALID;

	if (u == NULL)
		return DD_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		rc = strlen(host) < out_len ? DD_OK : DD_ERR_TOO_LARGE;
	if (rc == DD_OK)
		memcpy(out, host, strlen(host) + 1);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}
