#include "cloudflare/cf.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

#define URL_MAX 4096
#define BODY_MAX (256u * 1024)
#define TOKEN_MAX 512
#define PER_PAGE_MAX 5000u

static const char CTYPE[] = "Content-Type: application/json";
static const char ACCEPT[] = "Accept: application/json";
static const char BEARER[] = "Authorization: Bearer ";

/* Cloudflare did nothing with these: safe to resend anything. */
static const long post_statuses[] = {429};
static const long idem_statuses[] = {429, 500, 502, 503, 504};

/* One logical call: a single request, or every page of a list. */
struct call {
	dd_cf *cf;
	struct call *prev, *next;
	dd_httpc_req *req;
	char method[8];
	char *path;          /* as given, query included */
	size_t path_len;     /* without the query: what messages show */
	dd_buf body;
	dd_cf_cb cb;
	void *ud;
	int paged;
	unsigned per_page;
	uint64_t page;
	json_t *items;       /* paged: everything so far */
};

struct dd_cf {
	dd_httpc *http;
	char *base;
	char *auth;          /* the whole header line; wiped */
	size_t auth_len;
	char *token;         /* to redact echoes; wiped */
	char *account;
	char *zone;
	uint64_t timeout_ms;
	size_t max_response;
	size_t max_items;
	dd_retry_policy idem, post;
	struct call *calls;
	unsigned inflight;
	int closed;
};

static int token_ok(const char *t)
{
	size_t n = t == NULL ? 0 : strnlen(t, TOKEN_MAX + 1);

	if (n == 0 || n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return 0;
	return 1;
}

static dd_err_t copy_opt(const char *s, char **out)
{
	*out = dd_strdup(s != NULL ? s : "");
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

static void set_policies(dd_cf *cf, const dd_cf_opts *o)
{
	unsigned attempts = o->max_attempts ? o->max_attempts
					    : DD_CF_DEFAULT_ATTEMPTS;
	uint64_t base = o->base_backoff_ms ? o->base_backoff_ms : 500;
	uint64_t wait = o->max_wait_ms ? o->max_wait_ms
				       : DD_CF_DEFAULT_MAX_WAIT_MS;

	cf->idem = (dd_retry_policy){
		.max_attempts = attempts, .base_ms = base, .cap_ms = wait,
		.max_wait_ms = wait, .statuses = idem_statuses,
		.n_statuses = sizeof idem_statuses / sizeof idem_statuses[0],
	};
	/* A create that reached Cloudflare must not be sent twice. */
	cf->post = cf->idem;
	cf->post.statuses = post_statuses;
	cf->post.n_statuses = 1;
	cf->post.no_transport_retry = 1;
}

void dd_cf_opts_from_config(const dd_config *cfg, dd_cf_opts *o)
{
	*o = (dd_cf_opts){
		.base_url = cfg->cf.api_url,
		.api_token = cfg->cf.api_token,
		.account_id = cfg->cf.account_id,
		.zone_id = cfg->cf.zone_id,
		.timeout_ms = cfg->cf.timeout_ms,
		.max_attempts = (unsigned)cfg->cf.attempts,
		.max_wait_ms = cfg->cf.max_wait_ms,
		.max_response = (size_t)cfg->outbound_max_response,
	};
}

dd_err_t dd_cf_new(dd_httpc *http, const dd_cf_opts *o, dd_cf **out,
		   char *why, size_t why_len)
{
	const char *base = o->base_url ? o->base_url : DD_CF_DEFAULT_BASE_URL;
	dd_cf *cf = NULL;
	dd_err_t rc;

	*out = NULL;
	if (!token_ok(o->api_token)) {
		snprintf(why, why_len, "Cloudflare API token missing or malformed");
		return DD_ERR_CONFIG;
	}
	if (dd_httpc_check_url(base) != DD_OK || strlen(base) > 1024) {
		snprintf(why, why_len, "Cloudflare API base URL is not an "
			 "http(s) URL");
		return DD_ERR_CONFIG;
	}
	if ((o->account_id && o->account_id[0] && !dd_cf_id_ok(o->account_id)) ||
	    (o->zone_id && o->zone_id[0] && !dd_cf_id_ok(o->zone_id))) {
		snprintf(why, why_len, "Cloudflare account or zone id is malformed");
		return DD_ERR_CONFIG;
	}
	cf = dd_calloc(1, sizeof *cf);
	if (cf == NULL)
		return DD_ERR_NOMEM;
	cf->http = http;
	cf->auth_len = sizeof BEARER + strlen(o->api_token);
	cf->auth = dd_malloc(cf->auth_len);
	rc = cf->auth ? DD_OK : DD_ERR_NOMEM;
	if (rc == DD_OK) {
		snprintf(cf->auth, cf->auth_len, "%s%s", BEARER, o->api_token);
		rc = copy_opt(o->api_token, &cf->token);
	}
	if (rc == DD_OK)
		rc = copy_opt(base, &cf->base);
	if (rc == DD_OK)
		rc = copy_opt(o->account_id, &cf->account);
	if (rc == DD_OK)
		rc = copy_opt(o->zone_id, &cf->zone);
	if (rc)
		goto out;
	while (strlen(cf->base) > 0 && cf->base[strlen(cf->base) - 1] == '/')
		cf->base[strlen(cf->base) - 1] = '\0';
	cf->timeout_ms = o->timeout_ms ? o->timeout_ms : DD_CF_DEFAULT_TIMEOUT_MS;
	cf->max_response = o->max_response ? o->max_response
					   : DD_CF_DEFAULT_MAX_RESPONSE;
	cf->max_items = o->max_items ? o->max_items : DD_CF_DEFAULT_MAX_ITEMS;
	set_policies(cf, o);
	*out = cf;
	cf = NULL; /* transferred */
out:
	dd_cf_free(cf);
	return rc;
}

const char *dd_cf_account(const dd_cf *cf)
{
	return cf->account;
}

const char *dd_cf_zone(const dd_cf *cf)
{
	return cf->zone;
}

unsigned dd_cf_inflight(const dd_cf *cf)
{
	return cf->inflight;
}

static void call_free(struct call *c)
{
	if (c == NULL)
		return;
	dd_free(c->path);
	dd_buf_freezero(&c->body); /* a tunnel secret may be in it */
	json_decref(c->items);
	dd_free(c);
}

static void unlink_call(struct call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->cf->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->cf->inflight--;
}

/* Hands the outcome over and frees the call; cb may start new calls. */
static void deliver(struct call *c, dd_err_t err, long status, long code,
		    const char *message, const json_t *result)
{
	dd_cf_reply r = {
		.err = err, .status = status, .cf_code = code,
		.message = message ? message : "", .result = result,
	};

	unlink_call(c);
	c->cb(&r, c->ud);
	call_free(c);
}

/* A message must never carry the token, even when a server echoes it. */
static void fail(struct call *c, dd_err_t err, long status, long code,
		 dd_buf *tail)
{
	dd_buf msg;
	const char *text;

	dd_buf_init(&msg, DD_CF_MSG_MAX);
	(void)dd_buf_appendf(&msg, "CF %s %.*s ", c->method,
			     (int)(c->path_len > 200 ? 200 : c->path_len),
			     c->path);
	(void)dd_buf_append(&msg, tail->data, tail->len);
	text = dd_buf_str(&msg);
	if (c->cf->token[0] != '\0' && strstr(text, c->cf->token) != NULL)
		text = "CF reply redacted: it echoed the API token";
	deliver(c, err, status, code, text, NULL);
	dd_buf_free(&msg);
}

static void on_done(dd_httpc_result *res, void *ud);

static dd_err_t start(struct call *c)
{
	const char *headers[] = {c->cf->auth, ACCEPT, CTYPE};
	dd_httpc_request rq = {0};
	dd_buf url;
	dd_err_t rc;

	dd_buf_init(&url, URL_MAX);
	rc = dd_buf_appendf(&url, "%s%s", c->cf->base, c->path);
	if (rc == DD_OK && c->paged)
		rc = dd_buf_appendf(&url, "%cper_page=%u&page=%llu",
				    strchr(c->path, '?') ? '&' : '?',
				    c->per_page, (unsigned long long)c->page);
	if (rc)
		goto out;
	rq.method = c->method;
	rq.url = dd_buf_str(&url);
	rq.headers = headers;
	rq.n_headers = c->body.len > 0 ? 3 : 2;
	rq.body = c->body.data;
	rq.body_len = c->body.len;
	rq.timeout_ms = c->cf->timeout_ms;
	rq.max_response = c->cf->max_response;
	rq.retry = strcmp(c->method, "POST") == 0 ? &c->cf->post : &c->cf->idem;
	rc = dd_httpc_start(c->cf->http, &rq, on_done, c, &c->req);
out:
	dd_buf_free(&url);
	return rc;
}

/* Adds a page's items; says whether another page is due. */
static dd_err_t take_page(struct call *c, const json_t *env, int *more,
			  dd_buf *tail)
{
	const json_t *items;
	uint64_t total = 0;
	size_t n;
	dd_err_t rc;

	*more = 0;
	rc = dd_cf_page_parse(env, &items, &total, tail);
	if (rc)
		return rc;
	n = json_array_size(items);
	if (json_array_size(c->items) + n > c->cf->max_items) {
		(void)dd_buf_appendf(tail, ": more than %zu items listed",
				     c->cf->max_items);
		return DD_ERR_TOO_LARGE;
	}
	/* jansson wants a mutable array: the same one, from env. */
	if (json_array_extend(c->items, json_object_get(env, "result")) != 0)
		return DD_ERR_NOMEM;
	/*
	 * An empty page always ends the list, whatever total_pages claims,
	 * so a confused server cannot keep us paging forever.
	 */
	if (n == 0)
		return DD_OK;
	*more = total > 0 ? c->page < total : n >= c->per_page;
	return DD_OK;
}

static dd_err_t transport(const dd_httpc_result *res, dd_buf *tail)
{
	switch (res->err) {
	case DD_ERR_TIMEOUT:
		(void)dd_buf_appendf(tail, "timed out after %u attempt(s)",
				     res->attempts);
		return DD_ERR_TIMEOUT;
	case DD_ERR_TOO_LARGE:
		(void)dd_buf_append_str(tail, "reply too large");
		return DD_ERR_TOO_LARGE;
	case DD_ERR_CANCELLED:
	case DD_ERR_NOMEM:
		(void)dd_buf_append_str(tail, dd_strerror(res->err));
		return res->err;
	default:
		(void)dd_buf_appendf(tail, "unreachable: %.200s", res->message);
		return DD_ERR_UPSTREAM;
	}
}

static void on_done(dd_httpc_result *res, void *ud)
{
	struct call *c = ud;
	json_t *env = NULL;
	long code = 0;
	int more = 0;
	dd_buf tail;
	dd_err_t rc;

	c->req = NULL;
	dd_buf_init(&tail, DD_CF_MSG_MAX);
	if (res->err) {
		rc = transport(res, &tail);
		goto out;
	}
	rc = dd_cf_envelope_parse(res->status, res->body.data, res->body.len,
				  c->cf->max_response, &env, &code, &tail);
	if (rc)
		goto out;
	if (!c->paged) {
		deliver(c, DD_OK, res->status, 0, "",
			json_object_get(env, "result"));
		c = NULL;
		goto out;
	}
	(void)dd_buf_appendf(&tail, "-> %ld", res->status);
	rc = take_page(c, env, &more, &tail);
	if (rc)
		goto out;
	if (!more) {
		deliver(c, DD_OK, res->status, 0, "", c->items);
		c = NULL;
		goto out;
	}
	c->page++;
	dd_buf_reset(&tail);
	rc = c->cf->closed ? DD_ERR_CANCELLED : start(c);
	if (rc)
		(void)dd_buf_appendf(&tail, "page %llu: %s",
				     (unsigned long long)c->page,
				     dd_strerror(rc));
	else
		c = NULL;
out:
	if (c != NULL)
		fail(c, rc, res->status, code, &tail);
	json_decref(env);
	dd_buf_free(&tail);
}

static int method_ok(const char *m)
{
	return m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 ||
			     strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0 ||
			     strcmp(m, "PATCH") == 0);
}

static dd_err_t new_call(dd_cf *cf, const char *method, const char *path,
			 const json_t *body, dd_cf_cb cb, void *ud,
			 struct call **out)
{
	struct call *c = NULL;
	const char *q;
	dd_err_t rc;

	*out = NULL;
	if (cf->closed)
		return DD_ERR_CLOSED;
	if (!method_ok(method) || path == NULL || path[0] != '/' ||
	    strlen(path) > URL_MAX / 2 || cb == NULL)
		return DD_ERR_INVALID;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->cf = cf;
	c->cb = cb;
	c->ud = ud;
	snprintf(c->method, sizeof c->method, "%s", method);
	dd_buf_init(&c->body, BODY_MAX);
	c->path = dd_strdup(path);
	rc = c->path ? DD_OK : DD_ERR_NOMEM;
	if (rc == DD_OK && body != NULL)
		rc = dd_json_append(&c->body, body);
	if (rc)
		goto out;
	q = strchr(path, '?');
	c->path_len = q ? (size_t)(q - path) : strlen(path);
	*out = c;
	c = NULL; /* transferred */
out:
	call_free(c);
	return rc;
}

static void link_call(struct call *c)
{
	c->next = c->cf->calls;
	if (c->next != NULL)
		c->next->prev = c;
	c->cf->calls = c;
	c->cf->inflight++;
}

static dd_err_t launch(struct call *c)
{
	dd_err_t rc = start(c);

	if (rc) {
		call_free(c);
		return rc;
	}
	link_call(c);
	return DD_OK;
}

dd_err_t dd_cf_call(dd_cf *cf, const char *method, const char *path,
		    const json_t *body, dd_cf_cb cb, void *ud)
{
	struct call *c;
	dd_err_t rc = new_call(cf, method, path, body, cb, ud, &c);

	if (rc)
		return rc;
	return launch(c);
}

dd_err_t dd_cf_list(dd_cf *cf, const char *path, unsigned per_page,
		    dd_cf_cb cb, void *ud)
{
	struct call *c;
	dd_err_t rc;

	if (per_page == 0 || per_page > PER_PAGE_MAX)
		return DD_ERR_INVALID;
	rc = new_call(cf, "GET", path, NULL, cb, ud, &c);
	if (rc)
		return rc;
	c->paged = 1;
	c->per_page = per_page;
	c->page = 1;
	c->items = json_array();
	if (c->items == NULL) {
		call_free(c);
		return DD_ERR_NOMEM;
	}
	return launch(c);
}

void dd_cf_shutdown(dd_cf *cf)
{
	if (cf == NULL)
		return;
	cf->closed = 1;
	while (cf->calls != NULL) {
		struct call *c = cf->calls;
		dd_buf tail;

		if (c->req != NULL)
			dd_httpc_cancel(c->req);
		c->req = NULL;
		dd_buf_init(&tail, 64);
		(void)dd_buf_append_str(&tail, "cancelled");
		fail(c, DD_ERR_CANCELLED, 0, 0, &tail);
		dd_buf_free(&tail);
	}
}

void dd_cf_free(dd_cf *cf)
{
	if (cf == NULL)
		return;
	dd_cf_shutdown(cf);
	dd_freezero(cf->auth, cf->auth_len);
	if (cf->token != NULL)
		dd_freezero(cf->token, strlen(cf->token));
	dd_free(cf->base);
	dd_free(cf->account);
	dd_free(cf->zone);
	dd_free(cf);
}
