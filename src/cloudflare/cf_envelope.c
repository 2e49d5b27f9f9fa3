/*
 * cf_envelope.c: the v4 reply envelope and list pages, socket-free so the
 * unit tests and the fuzzer reach them directly (cf.h).
 */
#include "cloudflare/cf.h"

#include <string.h>

#include "core/json.h"
#include "core/strutil.h"

#define SNIPPET_MAX 200
#define TEXT_MAX 200
#define MAX_ERRORS 5

/* Appends at most max bytes of s, non-printable bytes as '?'. */
static dd_err_t append_clean(dd_buf *msg, const char *s, size_t n, size_t max)
{
	dd_err_t rc = DD_OK;

	for (size_t i = 0; i < n && i < max && rc == DD_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		rc = dd_buf_append_byte(msg, c >= 0x20 && c < 0x7f ? c : '?');
	}
	if (rc == DD_OK && n > max)
		rc = dd_buf_append_str(msg, "...");
	return rc;
}

/* "[code] message; [code] message" from an errors array; 0 if none. */
static size_t append_errors(const json_t *errors, long *cf_code, dd_buf *msg)
{
	size_t shown = 0, i;
	json_t *e;

	if (!json_is_array(errors))
		return 0;
	json_array_foreach(errors, i, e) {
		const json_t *code = json_object_get(e, "code");
		const json_t *text = json_object_get(e, "message");

		if (!json_is_object(e))
			continue;
		if (shown == MAX_ERRORS) {
			(void)dd_buf_appendf(msg, "; (%zu more)",
					     json_array_size(errors) - i);
			break;
		}
		if (shown > 0)
			(void)dd_buf_append_str(msg, "; ");
		if (json_is_integer(code)) {
			if (*cf_code == 0)
				*cf_code = (long)json_integer_value(code);
			(void)dd_buf_appendf(msg, "[%lld] ",
					     (long long)json_integer_value(code));
		}
		if (json_is_string(text))
			(void)append_clean(msg, json_string_value(text),
					   json_string_length(text), TEXT_MAX);
		else
			(void)dd_buf_append_str(msg, "(no message)");
		shown++;
	}
	return shown;
}

/* A refused call: Cloudflare's errors if the body carries them. */
static dd_err_t refusal(long status, const json_t *env, const void *body,
			size_t len, long *cf_code, dd_buf *msg)
{
	(void)dd_buf_appendf(msg, "-> %ld: ", status);
	if (env != NULL && append_errors(json_object_get(env, "errors"),
					 cf_code, msg) > 0)
		return DD_ERR_UPSTREAM;
	if (env != NULL && status >= 200 && status <= 299) {
		(void)dd_buf_append_str(msg, "success false without errors");
		return DD_ERR_UPSTREAM;
	}
	if (len == 0)
		(void)dd_buf_append_str(msg, "(empty body)");
	else
		(void)append_clean(msg, body, len, SNIPPET_MAX);
	return DD_ERR_UPSTREAM;
}

dd_err_t dd_cf_envelope_parse(long status, const void *body, size_t len,
			      size_t max, json_t **env, long *cf_code,
			      dd_buf *msg)
{
	json_t *v = NULL;
	const json_t *success;
	int ok2xx = status >= 200 && status <= 299;
	dd_err_t rc;

	*env = NULL;
	*cf_code = 0;
	rc = dd_json_parse(body, len, max, &v, NULL, 0);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc == DD_ERR_TOO_LARGE) {
		(void)dd_buf_appendf(msg, "-> %ld: reply larger than %zu bytes",
				     status, max);
		return DD_ERR_TOO_LARGE;
	}
	if (rc == DD_OK && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	if (!ok2xx) {
		rc = refusal(status, v, body, len, cf_code, msg);
		goto out;
	}
	if (v == NULL) {
		(void)dd_buf_appendf(msg, "-> %ld: reply is not a JSON object: ",
				     status);
		(void)append_clean(msg, body, len, SNIPPET_MAX / 2);
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	success = json_object_get(v, "success");
	if (!json_is_boolean(success)) {
		(void)dd_buf_appendf(msg, "-> %ld: reply is not a Cloudflare v4 "
				     "envelope (no boolean \"success\")", status);
		rc = DD_ERR_UPSTREAM;
		goto out;
	}
	if (!json_is_true(success)) {
		rc = refusal(status, v, body, len, cf_code, msg);
		goto out;
	}
	*env = v;
	v = NULL; /* transferred */
	rc = DD_OK;
out:
	json_decref(v);
	return rc;
}

dd_err_t dd_cf_page_parse(const json_t *env, const json_t **items,
			  uint64_t *total_pages, dd_buf *msg)
{
	const json_t *result = json_object_get(env, "result");
	const json_t *info = json_object_get(env, "result_info");
	const json_t *tp = json_object_get(info, "total_pages");

	*items = NULL;
	*total_pages = 0;
	if (!json_is_array(result)) {
		(void)dd_buf_append_str(msg, result == NULL
			? ": reply has no \"result\" list"
			: ": reply's \"result\" is not a list");
		return DD_ERR_UPSTREAM;
	}
	if (json_is_integer(tp) && json_integer_value(tp) > 0)
		*total_pages = (uint64_t)json_integer_value(tp);
	*items = result;
	return DD_OK;
}

int dd_cf_id_ok(const char *id)
{
	size_t n = id == NULL ? 0 : strnlen(id, DD_CF_ID_MAX + 1);

	if (n == 0 || n > DD_CF_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

dd_err_t dd_cf_query_append(dd_buf *b, const char *s)
{
	return dd_pct_encode(s, strlen(s), b);
}
