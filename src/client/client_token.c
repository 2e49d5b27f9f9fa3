#include "client/client_token.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"

#define AUDIENCE_MAX 256u
#define MINT_REPLY_MAX (64u * 1024u)
#define FILE_SLACK 4096u   /* whitespace around a token in a file */

struct dd_client_token_src {
	char *fixed;        /* secret */
	char *url;          /* the request URL with the audience added */
	char *auth_header;  /* secret: Authorization with the request token */
	size_t auth_len;
};

/* GitHub's endpoint is worth a few tries; its reply is only a token. */
static const dd_retry_policy mint_retry = {
	.max_attempts = 3, .base_ms = 500, .cap_ms = 4000, .max_wait_ms = 10000,
};

static void why_set(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

int dd_client_token_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > DD_CLIENT_TOKEN_MAX)
		return 0;
	for (; i < n && s[i] != '='; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || c == '~' || c == '+' || c == '/'))
			return 0;
	}
	if (i == 0)
		return 0;
	for (; i < n; i++)
		if (s[i] != '=')
			return 0;
	return 1;
}

void dd_client_token_free(char *tok)
{
	if (tok != NULL)
		dd_freezero(tok, strlen(tok));
}

void dd_client_token_src_free(dd_client_token_src *src)
{
	if (src == NULL)
		return;
	dd_client_token_free(src->fixed);
	dd_free(src->url);
	if (src->auth_header != NULL)
		dd_freezero(src->auth_header, src->auth_len);
	dd_free(src);
}

int dd_client_token_src_minted(const dd_client_token_src *src)
{
	return src->fixed == NULL;
}

static int audience_ok(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n > AUDIENCE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (a[i] <= ' ' || a[i] >= 0x7f)
			return 0;
	return 1;
}

static dd_err_t github_source(dd_client_token_src *src, const char *url,
			      const char *req_token, const char *audience,
			      char *why, size_t why_len)
{
	char uwhy[160];
	dd_buf b;
	size_t dummy;
	dd_err_t rc;

	if (dd_client_url_check(url, 1, uwhy, sizeof uwhy) != DD_OK) {
		why_set(why, why_len, "ACTIONS_ID_TOKEN_REQUEST_URL: %s", uwhy);
		return DD_ERR_INVALID;
	}
	if (!dd_client_token_ok(req_token, strlen(req_token))) {
		why_set(why, why_len, "ACTIONS_ID_TOKEN_REQUEST_TOKEN is "
			"malformed");
		return DD_ERR_INVALID;
	}
	if (!audience_ok(audience)) {
		why_set(why, why_len, "the audience must be 1-%u visible "
			"characters", AUDIENCE_MAX);
		return DD_ERR_INVALID;
	}
	dd_buf_init(&b, 16384);
	rc = dd_buf_appendf(&b, "%s%caudience=", url,
			    strchr(url, '?') != NULL ? '&' : '?');
	if (rc == DD_OK)
		rc = dd_pct_encode(audience, strlen(audience), &b);
	if (rc == DD_OK)
		rc = dd_buf_steal(&b, &src->url, &dummy);
	dd_buf_free(&b);
	if (rc)
		return rc;
	dd_buf_init(&b, DD_CLIENT_TOKEN_MAX + 64);
	rc = dd_buf_appendf(&b, "Authorization: Bearer %s", req_token);
	if (rc == DD_OK)
		rc = dd_buf_steal(&b, &src->auth_header, &src->auth_len);
	dd_buf_freezero(&b);
	return rc;
}

dd_err_t dd_client_token_src_new(const char *fixed, const char *audience,
				 dd_config_get_fn get, void *ud,
				 dd_client_token_src **out, char *why,
				 size_t why_len)
{
	dd_client_token_src *src = NULL;
	const char *url = get(ud, "ACTIONS_ID_TOKEN_REQUEST_URL");
	const char *req_token = get(ud, "ACTIONS_ID_TOKEN_REQUEST_TOKEN");
	dd_err_t rc = DD_OK;

	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	src = dd_calloc(1, sizeof *src);
	if (src == NULL)
		return DD_ERR_NOMEM;
	if (fixed != NULL) {
		if (!dd_client_token_ok(fixed, strlen(fixed))) {
			why_set(why, why_len, "the token is malformed (one "
				"bearer token, no spaces)");
			rc = DD_ERR_INVALID;
			goto out;
		}
		src->fixed = dd_strdup(fixed);
		if (src->fixed == NULL)
			rc = DD_ERR_NOMEM;
		goto out;
	}
	if (url == NULL || url[0] == '\0' || req_token == NULL ||
	    req_token[0] == '\0') {
		why_set(why, why_len, "no token: pass --token-file FILE, or "
			"run in GitHub Actions with `permissions: id-token: "
			"write` "
			"(ACTIONS_ID_TOKEN_REQUEST_URL and "
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN are %s)",
			url == NULL || url[0] == '\0' ? "not set" :
			"only half set");
		rc = DD_ERR_UNAUTHORIZED;
		goto out;
	}
	rc = github_source(src, url, req_token,
			   audience != NULL ? audience :
			   DD_CLIENT_DEFAULT_AUDIENCE, why, why_len);
out:
	if (rc == DD_OK) {
		*out = src;
		src = NULL; /* transferred */
	}
	dd_client_token_src_free(src);
	return rc;
}

static dd_err_t mint(dd_client_token_src *src, dd_client_http *h, char **out,
		     char *why, size_t why_len)
{
	const char *headers[] = {src->auth_header, "Accept: application/json"};
	dd_httpc_request rq = {
		.url = src->url, .headers = headers, .n_headers = 2,
		.max_response = MINT_REPLY_MAX, .retry = &mint_retry,
	};
	dd_client_resp r;
	json_t *reply = NULL;
	const char *value = NULL;
	dd_err_t rc;

	rc = dd_client_http_call(h, &rq, &r);
	if (rc) {
		why_set(why, why_len, "token endpoint: %s: %s", dd_strerror(rc),
			r.message);
		goto out;
	}
	if (r.status == 401 || r.status == 403) {
		why_set(why, why_len, "the token endpoint refused the request "
			"token (HTTP %ld); does the job have `permissions: "
			"id-token: write`?", r.status);
		rc = DD_ERR_UNAUTHORIZED;
		goto out;
	}
	if (r.status != 200) {
		why_set(why, why_len, "the token endpoint answered HTTP %ld",
			r.status);
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	rc = dd_json_parse(r.body, r.body_len, MINT_REPLY_MAX, &reply, NULL, 0);
	if (rc == DD_OK)
		rc = dd_json_get_str(reply, "value", &value);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc || !dd_client_token_ok(value, strlen(value))) {
		why_set(why, why_len, "the token endpoint's reply has no "
			"usable \"value\"");
		rc = DD_ERR_INVALID;
		goto out;
	}
	*out = dd_strdup(value);
	if (*out == NULL)
		rc = DD_ERR_NOMEM;
out:
	json_decref(reply);
	dd_client_resp_free(&r);
	return rc;
}

dd_err_t dd_client_token_get(dd_client_token_src *src, dd_client_http *h,
			     char **out, char *why, size_t why_len)
{
	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (src->fixed == NULL)
		return mint(src, h, out, why, why_len);
	*out = dd_strdup(src->fixed);
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

dd_err_t dd_client_token_read_file(const char *path, char **out)
{
	FILE *f = NULL;
	uint8_t chunk[4096];
	const char *s;
	size_t n;
	dd_buf b;
	dd_err_t rc = DD_OK;

	*out = NULL;
	dd_buf_init(&b, DD_CLIENT_TOKEN_MAX + FILE_SLACK);
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
	if (f == NULL)
		return DD_ERR_NOT_FOUND;
	for (;;) {
		n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		rc = dd_buf_append(&b, chunk, n);
		if (rc)
			goto out;
	}
	if (ferror(f)) {
		rc = DD_ERR_IO;
		goto out;
	}
	s = dd_buf_str(&b);
	n = b.len;
	dd_str_trim(&s, &n);
	if (!dd_client_token_ok(s, n)) {
		rc = n > DD_CLIENT_TOKEN_MAX ? DD_ERR_TOO_LARGE :
		     DD_ERR_INVALID;
		goto out;
	}
	*out = dd_strndup(s, n);
	if (*out == NULL)
		rc = DD_ERR_NOMEM;
out:
	OPENSSL_cleanse(chunk, sizeof chunk);
	if (f != stdin)
		fclose(f);
	dd_buf_freezero(&b);
	return rc;
}
