#include "attest/ita.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"

enum call_kind { CALL_TOKEN, CALL_NONCE };

struct call {
	dd_ita *ita;
	dd_httpc_req *req;
	enum call_kind kind;
	dd_ita_token_cb tcb;
	dd_ita_nonce_cb ncb;
	void *ud;
	struct call *prev, *next;
};

struct dd_ita {
	dd_httpc *http;
	char *base;
	char *key_header;       /* "x-api-key: <key>", secret */
	uint64_t timeout_ms;
	dd_retry_policy retry;
	struct call *calls;
};

/* ITA answers 500 for passing internal faults too; they are worth a retry. */
static const long retry_statuses[] = {429, 500, 502, 503, 504};

static const dd_retry_policy default_retry = {
	.max_attempts = 4, .base_ms = 500, .cap_ms = 8000, .max_wait_ms = 30000,
	.statuses = retry_statuses,
	.n_statuses = sizeof retry_statuses / sizeof retry_statuses[0],
};

static void unlink_call(struct call *c)
{
	dd_ita *ita = c->ita;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ita->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

static void deliver(struct call *c, dd_err_t err, const char *token,
		    const dd_ita_nonce *nonce, const char *why)
{
	if (c->kind == CALL_TOKEN)
		c->tcb(err, err ? NULL : token, why, c->ud);
	else
		c->ncb(err, err ? NULL : nonce, why, c->ud);
}

/* A short, printable excerpt of what ITA said, for error messages. */
static void excerpt(const dd_buf *body, char *out, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < body->len && w + 1 < n && w < 200; i++) {
		unsigned char ch = body->data[i];
		out[w++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
	}
	out[w] = '\0';
}

static int token_ok(const char *t)
{
	size_t n = strlen(t), dots = 0;

	if (n == 0 || n > DD_ITA_MAX_TOKEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];
		if (ch == '.')
			dots++;
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return 0;
	}
	return dots == 2;
}

static dd_err_t parse_success(struct call *c, const dd_buf *body, char *why,
			      size_t why_len)
{
	json_t *v = NULL;
	dd_ita_nonce nonce = {0};
	const char *token = NULL, *val, *iat, *sig;
	dd_err_t rc;

	rc = dd_json_parse(body->data, body->len, body->cap, &v, why, why_len);
	if (rc) {
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	if (c->kind == CALL_TOKEN) {
		if (dd_json_get_str(v, "token", &token) != DD_OK || !token_ok(token)) {
			snprintf(why, why_len, "ITA reply has no well-formed token");
			rc = DD_ERR_UPSTREAM;
			goto out;
		}
	} else {
		if (dd_json_get_str(v, "val", &val) != DD_OK ||
		    dd_json_get_str(v, "iat", &iat) != DD_OK ||
		    dd_json_get_str(v, "signature", &sig) != DD_OK) {
			snprintf(why, why_len,
				 "ITA nonce reply lacks val, iat or signature");
			rc = DD_ERR_UPSTREAM;
			goto out;
		}
		rc = dd_ita_nonce_set(&nonce, val, iat, sig);
		if (rc)
			goto out;
	}
	deliver(c, DD_OK, token, &nonce, "");
out:
	dd_ita_nonce_clear(&nonce);
	json_decref(v);
	return rc;
}

static void on_done(dd_httpc_result *res, void *ud)
{
	struct call *c = ud;
	char why[512] = "", said[256];
	dd_err_t err = DD_OK;

	unlink_call(c);
	excerpt(&res->body, said, sizeof said);
	if (res->err != DD_OK) {
		err = res->err == DD_ERR_TIMEOUT ? DD_ERR_TIMEOUT : DD_ERR_UPSTREAM;
		snprintf(why, sizeof why, "ITA unreachable: %s", res->message);
	} else if (res->status == 401 || res->status == 403) {
		err = DD_ERR_UNAUTHORIZED;
		snprintf(why, sizeof why, "ITA refused the API key (HTTP %ld)",
			 res->status);
	} else if (res->status == 429) {
		err = DD_ERR_BUSY;
		snprintf(why, sizeof why, "ITA rate limit still hit after %u attempts",
			 res->attempts);
	} else if (res->status >= 400 && res->status < 500) {
		err = DD_ERR_INVALID;
		snprintf(why, sizeof why, "ITA refused the evidence (HTTP %ld): %s",
			 res->status, said);
	} else if (res->status < 200 || res->status > 299) {
		err = DD_ERR_UPSTREAM;
		snprintf(why, sizeof why, "ITA failed (HTTP %ld): %s", res->status, said);
	} else {
		err = parse_success(c, &res->body, why, sizeof why);
		if (err == DD_OK) {
			dd_free(c);
			return;
		}
	}
	deliver(c, err, NULL, NULL, why);
	dd_free(c);
}

static dd_err_t start(dd_ita *ita, const char *method, const char *path,
		      const json_t *body, struct call *c)
{
	const char *headers[] = {ita->key_header, "Accept: application/json",
				 "Content-Type: application/json"};
	char url[1024];
	char *text = NULL;
	dd_httpc_request rq = {0};
	dd_err_t rc;

	if ((size_t)snprintf(url, sizeof url, "%s%s", ita->base, path) >= sizeof url) {
		dd_free(c);
		return DD_ERR_INVALID;
	}
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			dd_free(c);
			return DD_ERR_NOMEM;
		}
	}
	rq.method = method;
	rq.url = url;
	rq.headers = headers;
	rq.n_headers = body != NULL ? 3 : 2;
	rq.body = text;
	rq.body_len = text ? strlen(text) : 0;
	rq.timeout_ms = ita->timeout_ms;
	rq.max_response = 64 * 1024;
	rq.retry = &ita->retry;
	c->ita = ita;
	rc = dd_httpc_start(ita->http, &rq, on_done, c, &c->req);
	dd_free(text);
	if (rc) {
		dd_free(c);
		return rc;
	}
	c->next = ita->calls;
	if (ita->calls != NULL)
		ita->calls->prev = c;
	ita->calls = c;
	return DD_OK;
}

dd_err_t dd_ita_new(dd_httpc *http, const dd_ita_opts *opts, dd_ita **out)
{
	dd_ita *ita;
	size_t klen;
	dd_err_t rc;

	*out = NULL;
	if (opts->base_url == NULL || opts->api_key == NULL ||
	    opts->api_key[0] == '\0' || strpbrk(opts->api_key, "\r\n") != NULL)
		return DD_ERR_CONFIG;
	rc = dd_httpc_check_url(opts->base_url);
	if (rc)
		return DD_ERR_CONFIG;
	ita = dd_calloc(1, sizeof *ita);
	if (ita == NULL)
		return DD_ERR_NOMEM;
	ita->http = http;
	ita->base = dd_strdup(opts->base_url);
	klen = strlen("x-api-key: ") + strlen(opts->api_key) + 1;
	ita->key_header = dd_malloc(klen);
	if (ita->base == NULL || ita->key_header == NULL) {
		dd_ita_free(ita);
		return DD_ERR_NOMEM;
	}
	snprintf(ita->key_header, klen, "x-api-key: %s", opts->api_key);
	/* A trailing slash would double up in every URL. */
	while (ita->base[0] != '\0' && ita->base[strlen(ita->base) - 1] == '/')
		ita->base[strlen(ita->base) - 1] = '\0';
	ita->timeout_ms = opts->timeout_ms;
	ita->retry = opts->retry ? *opts->retry : default_retry;
	*out = ita;
	return DD_OK;
}

void dd_ita_free(dd_ita *ita)
{
	if (ita == NULL)
		return;
	while (ita->calls != NULL) {
		struct call *c = ita->calls;
		unlink_call(c);
		dd_httpc_cancel(c->req);
		deliver(c, DD_ERR_CANCELLED, NULL, NULL, "ITA client closed");
		dd_free(c);
	}
	if (ita->key_header != NULL)
		dd_freezero(ita->key_header, strlen(ita->key_header));
	dd_free(ita->base);
	dd_free(ita);
}

static struct call *new_call(enum call_kind kind, dd_ita_token_cb tcb,
			     dd_ita_nonce_cb ncb, void *ud)
{
	struct call *c = dd_calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->kind = kind;
	c->tcb = tcb;
	c->ncb = ncb;
	c->ud = ud;
	return c;
}

dd_err_t dd_ita_attest_v1(dd_ita *ita, const uint8_t *quote, size_t len,
			  dd_ita_token_cb cb, void *ud)
{
	struct call *c;
	dd_buf q64;
	json_t *body = NULL;
	dd_err_t rc;

	if (len == 0)
		return DD_ERR_INVALID;
	dd_buf_init(&q64, 4 * (len / 3 + 1) + 1);
	rc = dd_b64_encode(DD_B64_STD, quote, len, &q64);
	if (rc == DD_OK) {
		body = json_pack("{s:s}", "quote", dd_buf_str(&q64));
		c = new_call(CALL_TOKEN, cb, NULL, ud);
		rc = body && c ? start(ita, "POST", "/appraisal/v1/attest", body, c)
			       : DD_ERR_NOMEM;
		if (body == NULL || c == NULL)
			dd_free(c);
	}
	json_decref(body);
	dd_buf_free(&q64);
	return rc;
}

dd_err_t dd_ita_nonce_get(dd_ita *ita, dd_ita_nonce_cb cb, void *ud)
{
	struct call *c = new_call(CALL_NONCE, NULL, cb, ud);

	if (c == NULL)
		return DD_ERR_NOMEM;
	return start(ita, "GET", "/appraisal/v2/nonce", NULL, c);
}

dd_err_t dd_ita_v2_report_data(const dd_ita_nonce *nonce,
			       const uint8_t *runtime_data, size_t len,
			       uint8_t out[64])
{
	dd_buf val, iat;
	EVP_MD_CTX *md = NULL;
	unsigned int n = 0;
	dd_err_t rc;

	dd_buf_init(&val, 4096);
	dd_buf_init(&iat, 4096);
	rc = dd_b64_decode(DD_B64_STD, nonce->val, strlen(nonce->val), &val);
	if (rc == DD_OK)
		rc = dd_b64_decode(DD_B64_STD, nonce->iat, strlen(nonce->iat), &iat);
	if (rc)
		goto out;
	md = EVP_MD_CTX_new();
	rc = DD_ERR_CRYPTO;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha512(), NULL) != 1 ||
	    EVP_DigestUpdate(md, val.data, val.len) != 1 ||
	    EVP_DigestUpdate(md, iat.data, iat.len) != 1 ||
	    (len > 0 && EVP_DigestUpdate(md, runtime_data, len) != 1) ||
	    EVP_DigestFinal_ex(md, out, &n) != 1 || n != 64)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(md);
	dd_buf_free(&val);
	dd_buf_free(&iat);
	return rc;
}

dd_err_t dd_ita_attest_v2(dd_ita *ita, const dd_ita_nonce *nonce,
			  const uint8_t *quote, size_t qlen,
			  const uint8_t *runtime_data, size_t rlen,
			  dd_ita_token_cb cb, void *ud)
{
	struct call *c = NULL;
	dd_buf q64, r64;
	json_t *body = NULL;
	dd_err_t rc;

	if (qlen == 0)
		return DD_ERR_INVALID;
	dd_buf_init(&q64, 4 * (qlen / 3 + 1) + 1);
	dd_buf_init(&r64, 4 * (rlen / 3 + 1) + 1);
	rc = dd_b64_encode(DD_B64_STD, quote, qlen, &q64);
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_STD, runtime_data, rlen, &r64);
	if (rc)
		goto out;
	body = json_pack("{s:{s:s, s:s, s:{s:s, s:s, s:s}}}", "tdx",
			 "quote", dd_buf_str(&q64), "runtime_data", dd_buf_str(&r64),
			 "verifier_nonce", "val", nonce->val, "iat", nonce->iat,
			 "signature", nonce->signature);
	c = new_call(CALL_TOKEN, cb, NULL, ud);
	if (body == NULL || c == NULL) {
		dd_free(c);
		rc = DD_ERR_NOMEM;
		goto out;
	}
	rc = start(ita, "POST", "/appraisal/v2/attest", body, c);
out:
	json_decref(body);
	dd_buf_free(&q64);
	dd_buf_free(&r64);
	return rc;
}

dd_err_t dd_ita_nonce_set(dd_ita_nonce *out, const char *val, const char *iat,
			  const char *signature)
{
	out->val = dd_strdup(val);
	out->iat = dd_strdup(iat);
	out->signature = dd_strdup(signature);
	if (out->val == NULL || out->iat == NULL || out->signature == NULL) {
		dd_ita_nonce_clear(out);
		return DD_ERR_NOMEM;
	}
	return DD_OK;
}

void dd_ita_nonce_clear(dd_ita_nonce *n)
{
	dd_free(n->val);
	dd_free(n->iat);
	dd_free(n->signature);
	n->val = n->iat = n->signature = NULL;
}
