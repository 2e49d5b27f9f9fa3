#include "sessiond/proto.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "runtime/text.h"
#include "sessiond/history.h"

static const struct {
	const char *name;
	dd_sd_method m;
} methods[] = {
	{"shell.list_recipes", DD_SD_LIST_RECIPES},
	{"shell.list_sessions", DD_SD_LIST_SESSIONS},
	{"shell.list_history", DD_SD_LIST_HISTORY},
	{"shell.create_session", DD_SD_CREATE},
	{"shell.attach_session", DD_SD_ATTACH},
	{"shell.replay_session", DD_SD_REPLAY},
	{"shell.resize_session", DD_SD_RESIZE},
	{"shell.close_session", DD_SD_CLOSE},
	{"recipients.set", DD_SD_SET_RECIPIENTS},
	{"status", DD_SD_STATUS},
};

const char *dd_sd_method_name(dd_sd_method m)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (methods[i].m == m)
			return methods[i].name;
	}
	return "unknown";
}

/* An optional string: NULL when absent or null; INVALID when not text. */
static dd_err_t opt_text(const json_t *o, const char *key, size_t max,
			 const char **out, char *why, size_t why_len)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return DD_OK;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > max) {
		snprintf(why, why_len, "%s must be a string of 1..%zu bytes",
			 key, max);
		return DD_ERR_INVALID;
	}
	*out = json_string_value(v);
	for (const char *p = *out; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(why, why_len, "%s holds a control character",
				 key);
			return DD_ERR_INVALID;
		}
	}
	return DD_OK;
}

static dd_err_t opt_bool(const json_t *o, const char *key, int def,
			 int *out, char *why, size_t why_len)
{
	const json_t *v = json_object_get(o, key);

	*out = def;
	if (v == NULL || json_is_null(v))
		return DD_OK;
	if (!json_is_boolean(v)) {
		snprintf(why, why_len, "%s must be a boolean", key);
		return DD_ERR_INVALID;
	}
	*out = json_is_true(v);
	return DD_OK;
}

static dd_err_t opt_u64(const json_t *o, const char *key, uint64_t min,
			uint64_t max, uint64_t def, uint64_t *out, char *why,
			size_t why_len)
{
	const json_t *v = json_object_get(o, key);

	*out = def;
	if (v == NULL || json_is_null(v))
		return DD_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max) {
		snprintf(why, why_len, "%s must be an integer in [%llu, %llu]",
			 key, (unsigned long long)min,
			 (unsigned long long)max);
		return DD_ERR_INVALID;
	}
	*out = (uint64_t)json_integer_value(v);
	return DD_OK;
}

static dd_err_t need_id(dd_sd_req *r, char *why, size_t why_len)
{
	const json_t *v = json_object_get(r->obj, "id");

	r->id = json_string_value(v);
	if (r->id == NULL ||
	    !dd_hist_id_ok(r->id, json_string_length(v))) {
		snprintf(why, why_len, "id must be a session id (a lowercase "
			 "UUID)");
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

static dd_err_t size_fields(dd_sd_req *r, uint64_t def_cols,
			    uint64_t def_rows, char *why, size_t why_len)
{
	uint64_t c, w;
	dd_err_t rc;

	rc = opt_u64(r->obj, "cols", 1, 65535, def_cols, &c, why, why_len);
	if (rc == DD_OK)
		rc = opt_u64(r->obj, "rows", 1, 65535, def_rows, &w, why,
			     why_len);
	if (rc == DD_OK) {
		r->cols = (uint16_t)c;
		r->rows = (uint16_t)w;
	}
	return rc;
}

static dd_err_t create_fields(dd_sd_req *r, const char **code, char *why,
			      size_t why_len)
{
	dd_err_t rc;

	if (json_object_get(r->obj, "command") != NULL) {
		*code = "not_allowed";
		snprintf(why, why_len, "command is not allowed: sessions run "
			 "configured recipes (recipe_id)");
		return DD_ERR_FORBIDDEN;
	}
	rc = opt_text(r->obj, "recipe_id", 64, &r->recipe, why, why_len);
	if (rc == DD_OK)
		rc = opt_text(r->obj, "name", DD_SD_MAX_NAME, &r->name, why,
			      why_len);
	if (rc == DD_OK)
		rc = opt_text(r->obj, "cwd", DD_SD_MAX_CWD, &r->cwd, why,
			      why_len);
	if (rc == DD_OK && r->cwd != NULL && r->cwd[0] != '/') {
		snprintf(why, why_len, "cwd must be an absolute path");
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK)
		rc = size_fields(r, 0, 0, why, why_len);
	return rc;
}

static dd_err_t fields(dd_sd_req *r, const char **code, char *why,
		       size_t why_len)
{
	dd_err_t rc = DD_OK;

	switch (r->method) {
	case DD_SD_CREATE:
		return create_fields(r, code, why, why_len);
	case DD_SD_ATTACH:
		rc = need_id(r, why, why_len);
		if (rc == DD_OK)
			rc = opt_bool(r->obj, "tail", 1, &r->tail, why,
				      why_len);
		if (rc == DD_OK)
			rc = opt_bool(r->obj, "input", 1, &r->input, why,
				      why_len);
		return rc;
	case DD_SD_REPLAY:
		rc = need_id(r, why, why_len);
		if (rc == DD_OK)
			rc = opt_u64(r->obj, "cursor", 0, UINT64_MAX >> 1, 0,
				     &r->cursor, why, why_len);
		if (rc == DD_OK)
			rc = opt_u64(r->obj, "max_bytes", DD_SD_MIN_REPLAY,
				     DD_SD_MAX_REPLAY, DD_SD_DEFAULT_REPLAY,
				     &r->max_bytes, why, why_len);
		return rc;
	case DD_SD_RESIZE:
		rc = need_id(r, why, why_len);
		return rc ? rc : size_fields(r, 80, 24, why, why_len);
	case DD_SD_CLOSE:
		return need_id(r, why, why_len);
	case DD_SD_SET_RECIPIENTS:
		return dd_sd_rcpts_parse(json_object_get(r->obj, "pubkeys"),
					 &r->rcpts, why, why_len);
	default:
		return DD_OK;
	}
}

dd_err_t dd_sd_req_parse(const uint8_t *line, size_t len, size_t max,
			 dd_sd_req *out, const char **code, char *why,
			 size_t why_len)
{
	const char *m;
	size_t i;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	*code = "bad_request";
	why[0] = '\0';
	if (len > max) {
		*code = "too_large";
		snprintf(why, why_len, "request longer than %zu bytes", max);
		return DD_ERR_TOO_LARGE;
	}
	rc = dd_json_parse(line, len, max, &out->obj, why, why_len);
	if (rc)
		return rc == DD_ERR_NOMEM ? rc : DD_ERR_INVALID;
	if (!json_is_object(out->obj)) {
		snprintf(why, why_len, "a request is a JSON object");
		rc = DD_ERR_INVALID;
		goto out;
	}
	m = json_string_value(json_object_get(out->obj, "method"));
	if (m == NULL) {
		snprintf(why, why_len, "missing method");
		rc = DD_ERR_INVALID;
		goto out;
	}
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(m, methods[i].name) == 0)
			break;
	}
	if (i == sizeof methods / sizeof methods[0]) {
		*code = "unknown_method";
		snprintf(why, why_len, "unknown method");
		rc = DD_ERR_INVALID;
		goto out;
	}
	out->method = methods[i].m;
	rc = fields(out, code, why, why_len);
out:
	if (rc) {
		json_decref(out->obj);
		out->obj = NULL;
	}
	return rc;
}

void dd_sd_req_free(dd_sd_req *r)
{
	json_decref(r->obj);
	r->obj = NULL;
}

dd_err_t dd_sd_reply_line(dd_buf *out, const json_t *reply)
{
	dd_err_t rc = dd_json_append(out, reply);

	return rc ? rc : dd_buf_append_byte(out, '\n');
}

dd_err_t dd_sd_reply_error(dd_buf *out, const char *code,
			   const char *detail)
{
	static const char fixed[] =
		"{\"ok\":false,\"error\":\"internal\",\"detail\":\"out of "
		"memory\"}\n";
	json_t *r;
	dd_err_t rc = DD_ERR_NOMEM;

	r = json_pack("{s:b,s:s,s:o}", "ok", 0, "error", code, "detail",
		      dd_rt_json_text(detail, strlen(detail)));
	if (r != NULL)
		rc = dd_sd_reply_line(out, r);
	json_decref(r);
	if (rc)
		rc = dd_buf_append(out, fixed, sizeof fixed - 1);
	return rc;
}
