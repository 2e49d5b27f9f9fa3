/*
 * httpc_req.c: one outbound request as the client holds it: the checks
 * on what the caller asks us to send, our own copies of it, the easy
 * handle with its options and body/header callbacks, and the wiping free.
 */
#include "net/httpc_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/alloc.h"

static long clamp_long(uint64_t v)
{
	return v > LONG_MAX ? LONG_MAX : (long)v;
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
void httpc_req_free(dd_httpc_req *r)
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

/* The caller's request is well formed (the checks of httpc.h). */
static dd_err_t check_request(const dd_httpc_request *rq, const char *method)
{
	dd_err_t rc;

	if (dd_httpc_check_method(method) != DD_OK ||
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
	return rc;
}

dd_err_t httpc_req_new(dd_httpc *c, const dd_httpc_request *rq,
		       dd_httpc_req **out)
{
	const char *method = rq->method != NULL ? rq->method : "GET";
	dd_httpc_req *r = NULL;
	size_t n;
	dd_err_t rc;

	*out = NULL;
	rc = check_request(rq, method);
	if (rc)
		return rc;
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->c = c;
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
	*out = r;
	r = NULL;
out:
	httpc_req_free(r);
	return rc;
}
