/*
 * http_req.c: read-only views of a parsed request. Part of the HTTP server
 * module (see http.c); shares only http_int.h.
 */
#include "net/http_int.h"

#include <string.h>

#include "core/alloc.h"
#include "core/strutil.h"

const char *dd_http_req_method(const dd_http_req *req)
{
	return req->method_name ? req->method_name : "";
}

unsigned dd_http_req_method_bit(const dd_http_req *req)
{
	return req->method_bit;
}

const char *dd_http_req_path(const dd_http_req *req)
{
	/* The URL is stored NUL-terminated; the path is its prefix. */
	return dd_buf_str(&req->head);
}

const char *dd_http_req_query_string(const dd_http_req *req)
{
	if (req->query_off >= req->head.len)
		return "";
	return (const char *)req->head.data + req->query_off;
}

/* application/x-www-form-urlencoded decoding; NULL on bad input. */
static char *form_decode(const char *s, size_t n)
{
	char *out = dd_malloc(n + 1);
	size_t w;

	if (out == NULL)
		return NULL;
	if (dd_pct_decode(s, n, 1, out, &w) != DD_OK) {
		dd_free(out);
		return NULL;
	}
	out[w] = '\0';
	return out;
}

const char *dd_http_req_query(dd_http_req *req, const char *name)
{
	const char *q = dd_http_req_query_string(req);
	size_t nlen = strlen(name);

	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;

		if (klen == nlen && memcmp(q, name, nlen) == 0) {
			const char *v = eq ? eq + 1 : q + len;
			size_t vlen = (size_t)(q + len - v);
			char *dec = form_decode(v, vlen);
			char **grown;

			if (dec == NULL)
				return NULL;
			grown = dd_realloc(req->decoded,
					   (req->ndecoded + 1) * sizeof *grown);
			if (grown == NULL) {
				dd_free(dec);
				return NULL;
			}
			req->decoded = grown;
			req->decoded[req->ndecoded++] = dec;
			return dec;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return NULL;
}

const char *dd_http_req_param(const dd_http_req *req, const char *name)
{
	return dd_route_param_get(&req->match, name);
}

const char *dd_http_req_header(const dd_http_req *req, const char *name)
{
	const char *n;
	const char *v;

	for (size_t i = 0; dd_http_req_header_at(req, i, &n, &v); i++) {
		if (dd_str_ieq(n, strlen(n), name))
			return v;
	}
	return NULL;
}

int dd_http_req_header_at(const dd_http_req *req, size_t i, const char **name,
			  const char **value)
{
	const char *base = (const char *)req->head.data;

	if (i >= req->nhdrs)
		return 0;
	*name = base + req->hdrs[i].name_off;
	*value = base + req->hdrs[i].val_off;
	return 1;
}

const uint8_t *dd_http_req_body(const dd_http_req *req, size_t *len)
{
	*len = req->body.len;
	return req->body.data ? req->body.data : (const uint8_t *)"";
}

const char *dd_http_req_id(const dd_http_req *req)
{
	return req->rid;
}

const char *dd_http_req_peer(const dd_http_req *req)
{
	return req->conn ? req->conn->peer : "-";
}

int dd_http_req_authenticated(const dd_http_req *req)
{
	return req->authenticated;
}

uv_loop_t *dd_http_req_loop(const dd_http_req *req)
{
	return req->srv->loop;
}

int dd_http_req_http_minor(const dd_http_req *req)
{
	return req->http_minor;
}

void dd_http_req_on_abort(dd_http_req *req, void (*cb)(void *ud), void *ud)
{
	req->abort_cb = cb;
	req->abort_ud = ud;
}
