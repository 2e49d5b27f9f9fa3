#include "runtime/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"

#define MAX_ECHO 64            /* bytes of a method name put in a reply */
#define MAX_OWNER 100
#define MAX_REPO 100
#define MAX_TAG 128
#define MAX_ASSET 255

static const char *const method_names[] = {
	"health", "list", "logs", "attest", "deploy", "stop", "exec", "attach",
};

#define N_METHODS (sizeof method_names / sizeof method_names[0])

const char *dd_rt_method_name(dd_rt_method m)
{
	return (size_t)m < N_METHODS ? method_names[m] : "unknown";
}

/* ---- the request line -------------------------------------------------- */

static int token_matches(const json_t *req, const char *want)
{
	const json_t *t = json_object_get(req, "token");
	size_t wl = strlen(want);

	if (!json_is_string(t))
		return 0;
	/* The length is public (EasyEnclave's is always 64 hex digits). */
	if (json_string_length(t) != wl)
		return 0;
	return CRYPTO_memcmp(json_string_value(t), want, wl) == 0;
}

/* The token must not outlive the check in memory we hand on. */
static void drop_token(json_t *req)
{
	json_t *t = json_object_get(req, "token");

	if (json_is_string(t))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(t),
				json_string_length(t));
	(void)json_object_del(req, "token");
}

/* Longest prefix of s[0..n) within max bytes that ends on a character. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
	size_t k;

	if (n <= max)
		return n;
	k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	return k;
}

dd_err_t dd_rt_request_parse(const uint8_t *line, size_t len, size_t max,
			     const char *token, json_t **obj,
			     dd_rt_method *method, char *why, size_t why_len)
{
	static const char prefix[] = "invalid JSON at ";
	json_t *v = NULL;
	char jwhy[200];
	const char *m = NULL, *detail;
	size_t mlen;
	dd_err_t rc;

	*obj = NULL;
	why[0] = '\0';
	if (len > max)
		return dd_why(why, why_len, DD_ERR_TOO_LARGE,
			      "request line longer than %zu bytes", max);
	rc = dd_json_parse(line, len, max, &v, jwhy, sizeof jwhy);
	if (rc == DD_ERR_NOMEM)
		return dd_why(why, why_len, rc, "out of memory");
	if (rc) {
		detail = jwhy;
		if (strncmp(detail, prefix, sizeof prefix - 1) == 0)
			detail += sizeof prefix - 1;
		return dd_why(why, why_len, DD_ERR_INVALID, "invalid json: %s",
			      detail);
	}
	if (token != NULL && token[0] != '\0' &&
	    (!json_is_object(v) || !token_matches(v, token))) {
		rc = dd_why(why, why_len, DD_ERR_UNAUTHORIZED,
			    "unauthenticated");
		goto out;
	}
	if (!json_is_object(v)) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    "request must be a JSON object");
		goto out;
	}
	drop_token(v);
	if (dd_json_get_str(v, "method", &m) != DD_OK) {
		rc = dd_why(why, why_len, DD_ERR_INVALID, "missing method");
		goto out;
	}
	rc = DD_ERR_INVALID;
	for (size_t i = 0; i < N_METHODS; i++) {
		if (strcmp(m, method_names[i]) == 0) {
			*method = (dd_rt_method)i;
			rc = DD_OK;
			break;
		}
	}
	if (rc) {
		mlen = utf8_prefix(m, strlen(m), MAX_ECHO);
		dd_why(why, why_len, rc, "unknown method: %.*s%s", (int)mlen, m,
		       mlen < strlen(m) ? "..." : "");
		goto out;
	}
	*obj = v;
	v = NULL; /* transferred */
out:
	if (v != NULL) {
		if (json_is_object(v))
			drop_token(v);
		json_decref(v);
	}
	return rc;
}

/* ---- field helpers ----------------------------------------------------- */

/* The member, or NULL when absent or null (both mean "not given"). */
static const json_t *field(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

void dd_rt_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		dd_free(argv[i]);
	dd_free(argv);
}

/*
 * Copies an array of strings into a NULL-terminated vector. INVALID for
 * anything but strings without NULs, TOO_LARGE past max elements.
 */
static dd_err_t str_array(const json_t *arr, size_t max, char ***out,
			  size_t *n)
{
	size_t count = json_array_size(arr), i;
	char **v = NULL;
	const json_t *e;

	*out = NULL;
	*n = 0;
	if (count > max)
		return DD_ERR_TOO_LARGE;
	json_array_foreach(arr, i, e) {
		if (!json_is_string(e) ||
		    strlen(json_string_value(e)) != json_string_length(e))
			return DD_ERR_INVALID;
	}
	v = dd_calloc(count + 1, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	json_array_foreach(arr, i, e) {
		v[i] = dd_strdup(json_string_value(e));
		if (v[i] == NULL) {
			dd_rt_argv_free(v);
			return DD_ERR_NOMEM;
		}
	}
	*out = v;
	*n = count;
	return DD_OK;
}

dd_err_t dd_rt_parse_cmd(const json_t *req, const char *def, char ***argv,
			 size_t *argc, char *why, size_t why_len)
{
	const json_t *v = field(req, "cmd");
	char **a = NULL;
	dd_err_t rc;

	*argv = NULL;
	*argc = 0;
	if (v == NULL && def != NULL) {
		a = dd_calloc(2, sizeof *a);
		if (a != NULL)
			a[0] = dd_strdup(def);
		if (a == NULL || a[0] == NULL) {
			dd_free(a);
			return dd_why(why, why_len, DD_ERR_NOMEM,
				      "out of memory");
		}
		*argv = a;
		*argc = 1;
		return DD_OK;
	}
	if (!json_is_array(v))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "missing cmd array");
	if (json_array_size(v) == 0)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "cmd array is empty");
	rc = str_array(v, DD_RT_MAX_ARGS, argv, argc);
	if (rc == DD_ERR_TOO_LARGE)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "cmd has more than %d elements", DD_RT_MAX_ARGS);
	if (rc == DD_ERR_INVALID)
		return dd_why(why, why_len, rc,
			      "cmd must be an array of strings");
	if (rc)
		return dd_why(why, why_len, rc, "out of memory");
	return DD_OK;
}

dd_err_t dd_rt_parse_exec(const json_t *req, char ***argv, size_t *argc,
			  uint64_t *timeout_secs, char *why, size_t why_len)
{
	dd_err_t rc;

	*argv = NULL;
	*timeout_secs = DD_RT_DEFAULT_EXEC_TIMEOUT;
	rc = dd_json_get_u64(req, "timeout_secs", 1, DD_RT_MAX_EXEC_TIMEOUT,
			     timeout_secs);
	if (rc == DD_ERR_NOT_FOUND)
		*timeout_secs = DD_RT_DEFAULT_EXEC_TIMEOUT;
	else if (rc)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "timeout_secs must be an integer from 1 to %u",
			      DD_RT_MAX_EXEC_TIMEOUT);
	return dd_rt_parse_cmd(req, NULL, argv, argc, why, why_len);
}

dd_err_t dd_rt_parse_id(const json_t *req, const char **id, char *why,
			size_t why_len)
{
	*id = NULL;
	if (dd_json_get_str(req, "id", id) != DD_OK)
		return dd_why(why, why_len, DD_ERR_INVALID, "missing id");
	return DD_OK;
}

dd_err_t dd_rt_parse_logs(const json_t *req, const char **id,
			  uint64_t *tail, char *why, size_t why_len)
{
	dd_err_t rc;

	rc = dd_rt_parse_id(req, id, why, why_len);
	if (rc)
		return rc;
	rc = dd_json_get_u64(req, "tail", 0, DD_RT_MAX_TAIL, tail);
	if (rc == DD_ERR_NOT_FOUND)
		*tail = DD_RT_DEFAULT_TAIL;
	else if (rc)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "tail must be an integer from 0 to %u",
			      DD_RT_MAX_TAIL);
	return DD_OK;
}

/* ---- attest ------------------------------------------------------------ */

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (dd_hex_digit(s[i]) < 0)
			return 0;
	}
	return 1;
}

dd_err_t dd_rt_parse_report_data(const json_t *req, uint8_t rd[64],
				 size_t *len, char *why, size_t why_len)
{
	const json_t *b64 = field(req, "report_data_b64");
	const json_t *nonce = field(req, "nonce");
	const char *s, *what;
	size_t n;
	dd_buf out;
	dd_err_t rc = DD_OK;

	memset(rd, 0, 64);
	*len = 0;
	if (b64 == NULL && nonce == NULL)
		return DD_OK;
	if ((b64 != NULL && !json_is_string(b64)) ||
	    (b64 == NULL && !json_is_string(nonce)))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "%s must be a string",
			      b64 != NULL ? "report_data_b64" : "nonce");
	s = json_string_value(b64 != NULL ? b64 : nonce);
	n = json_string_length(b64 != NULL ? b64 : nonce);
	dd_buf_init(&out, dd_b64_decoded_max(n) + 1);
	if (b64 == NULL && n > 0 && n % 2 == 0 && all_hex(s, n)) {
		what = "invalid nonce hex";
		rc = dd_buf_reserve(&out, n / 2);
		if (rc == DD_OK) {
			rc = dd_hex_decode(s, n, out.data, n / 2);
			out.len = n / 2;
		}
	} else {
		what = b64 != NULL ? "invalid report_data_b64 base64"
				   : "invalid nonce base64";
		rc = dd_b64_decode(DD_B64_STD, s, n, &out);
	}
	if (rc == DD_ERR_NOMEM) {
		rc = dd_why(why, why_len, rc, "out of memory");
	} else if (rc) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    "%s: not padded standard encoding", what);
	} else if (out.len > 64) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    "TDX report data is %zu bytes; maximum is 64",
			    out.len);
	} else {
		if (out.len > 0)
			memcpy(rd, out.data, out.len);
		*len = out.len;
	}
	dd_buf_free(&out);
	return rc;
}

/* ---- deploy ------------------------------------------------------------ */

#define BAD_DEPLOY "invalid deploy request: "

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int app_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > DD_RT_MAX_APP_NAME || !name_char(s[0]) ||
	    s[0] == '.' || s[0] == '_' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!name_char(s[i]))
			return 0;
	}
	return 1;
}

/*
 * One path component of a release: a plain name that can only ever mean
 * an entry of its directory (no '/', never "." or "..").
 */
static int segment_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!name_char(s[i]) && s[i] != '+' && s[i] != '~')
			return 0;
	}
	return 1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void release_free(dd_rt_release *r)
{
	if (r == NULL)
		return;
	dd_free(r->owner);
	dd_free(r->repo);
	dd_free(r->tag);
	dd_free(r->asset);
	dd_free(r->rename);
	dd_free(r);
}

/* A string member copied when it is a valid segment; NULL when absent. */
static dd_err_t segment_field(const json_t *obj, const char *key, size_t max,
			      int required, char **out, char *why,
			      size_t why_len)
{
	const char *s = NULL;
	dd_err_t rc = dd_json_get_str(obj, key, &s);

	*out = NULL;
	if (rc == DD_ERR_NOT_FOUND && !required)
		return DD_OK;
	if (rc || !segment_ok(s, strlen(s), max))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      BAD_DEPLOY "github_release.%s must be a plain "
			      "name (1-%zu of [A-Za-z0-9._+~-], not . or ..)",
			      key, max);
	*out = dd_strdup(s);
	return *out != NULL ? DD_OK
			    : dd_why(why, why_len, DD_ERR_NOMEM,
				     "out of memory");
}

static dd_err_t parse_repo(const json_t *gr, dd_rt_release *r, char *why,
			   size_t why_len)
{
	const char *s = NULL, *slash;
	dd_err_t rc;

	rc = dd_json_get_str(gr, "repo", &s);
	slash = rc == DD_OK ? strchr(s, '/') : NULL;
	if (slash == NULL ||
	    !segment_ok(s, (size_t)(slash - s), MAX_OWNER) ||
	    !segment_ok(slash + 1, strlen(slash + 1), MAX_REPO))
		goto bad;
	r->owner = dd_strndup(s, (size_t)(slash - s));
	r->repo = dd_strdup(slash + 1);
	if (r->owner == NULL || r->repo == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	return DD_OK;
bad:
	return dd_why(why, why_len, DD_ERR_INVALID,
		      BAD_DEPLOY "github_release.repo must be owner/name, each "
		      "a plain name (no path traversal)");
}

static dd_err_t parse_release(const json_t *gr, dd_rt_release **out,
			      char *why, size_t why_len)
{
	dd_rt_release *r = NULL;
	const char *sha = NULL;
	dd_err_t rc;

	*out = NULL;
	if (!json_is_object(gr))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      BAD_DEPLOY "github_release must be an object");
	r = dd_calloc(1, sizeof *r);
	if (r == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	rc = parse_repo(gr, r, why, why_len);
	if (rc == DD_OK)
		rc = segment_field(gr, "asset", MAX_ASSET, 1, &r->asset, why,
				   why_len);
	if (rc == DD_OK)
		rc = segment_field(gr, "tag", MAX_TAG, 0, &r->tag, why,
				   why_len);
	if (rc == DD_OK)
		rc = segment_field(gr, "rename", MAX_ASSET, 0, &r->rename, why,
				   why_len);
	if (rc)
		goto out;
	if (ends_with(r->asset, ".tar.gz") || ends_with(r->asset, ".tgz")) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    BAD_DEPLOY "github_release: tarball assets are not "
			    "supported by the local runtime");
		goto out;
	}
	rc = dd_json_get_str(gr, "sha256", &sha);
	if (rc == DD_OK) {
		if (dd_hex_decode(sha, strlen(sha), r->sha256, 32) != DD_OK) {
			rc = dd_why(why, why_len, DD_ERR_INVALID,
				    BAD_DEPLOY "github_release.sha256 must be "
				    "64 hex digits");
			goto out;
		}
		r->has_sha256 = 1;
	} else if (rc != DD_ERR_NOT_FOUND) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    BAD_DEPLOY "github_release.sha256 must be a "
			    "string");
		goto out;
	}
	*out = r;
	r = NULL; /* transferred */
	rc = DD_OK;
out:
	release_free(r);
	return rc;
}

void dd_rt_spec_free(dd_rt_spec *spec)
{
	if (spec == NULL)
		return;
	dd_free(spec->app_name);
	dd_rt_argv_free(spec->argv);
	dd_rt_argv_free(spec->env);
	release_free(spec->release);
	dd_free(spec);
}

/* Keeps only "KEY=VALUE" entries with a key, as EasyEnclave does. */
static void drop_bad_env(dd_rt_spec *s)
{
	size_t w = 0;

	for (size_t i = 0; i < s->envc; i++) {
		const char *eq = strchr(s->env[i], '=');

		if (eq == NULL || eq == s->env[i])
			dd_free(s->env[i]);
		else
			s->env[w++] = s->env[i];
	}
	s->env[w] = NULL;
	s->envc = w;
}

static dd_err_t parse_restart(const json_t *req, dd_rt_spec *s, char *why,
			      size_t why_len)
{
	static const char *const names[] = {"on-failure", "no", "always"};
	const char *v = NULL;
	dd_err_t rc = dd_json_get_str(req, "restart", &v);

	s->restart = DD_RT_RESTART_ON_FAILURE;
	if (rc == DD_ERR_NOT_FOUND)
		return DD_OK;
	for (size_t i = 0; rc == DD_OK && i < 3; i++) {
		if (strcmp(v, names[i]) == 0) {
			s->restart = (dd_rt_restart)i;
			return DD_OK;
		}
	}
	return dd_why(why, why_len, DD_ERR_INVALID,
		      BAD_DEPLOY "restart must be \"no\", \"on-failure\" or "
		      "\"always\"");
}

static dd_err_t parse_lists(const json_t *req, dd_rt_spec *s, char *why,
			    size_t why_len)
{
	const json_t *cmd = field(req, "cmd"), *env = field(req, "env");
	dd_err_t rc;

	if (cmd != NULL && !json_is_array(cmd))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      BAD_DEPLOY "cmd must be an array of strings");
	if (env != NULL && !json_is_array(env))
		return dd_why(why, why_len, DD_ERR_INVALID,
			      BAD_DEPLOY "env must be an array of strings");
	if (cmd != NULL) {
		rc = str_array(cmd, DD_RT_MAX_ARGS, &s->argv, &s->argc);
	} else {
		s->argv = dd_calloc(1, sizeof *s->argv);
		rc = s->argv != NULL ? DD_OK : DD_ERR_NOMEM;
	}
	if (rc == DD_OK && env != NULL)
		rc = str_array(env, DD_RT_MAX_ENV, &s->env, &s->envc);
	if (rc == DD_OK && s->env != NULL)
		drop_bad_env(s);
	if (rc == DD_ERR_NOMEM)
		return dd_why(why, why_len, rc, "out of memory");
	if (rc)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      BAD_DEPLOY "cmd and env must be arrays of at "
			      "most %d strings", DD_RT_MAX_ARGS);
	return DD_OK;
}

dd_err_t dd_rt_parse_deploy(const json_t *req, dd_rt_spec **out, char *why,
			    size_t why_len)
{
	dd_rt_spec *s = NULL;
	const json_t *v;
	const char *name = "unnamed";
	int tty = 0;
	dd_err_t rc;

	*out = NULL;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	v = field(req, "app_name");
	if (v != NULL) {
		name = json_string_value(v);
		if (name == NULL || strlen(name) != json_string_length(v) ||
		    !app_name_ok(name, strlen(name))) {
			rc = dd_why(why, why_len, DD_ERR_INVALID,
				    BAD_DEPLOY "app_name must be 1-%d "
				    "characters of [A-Za-z0-9._-], starting "
				    "with a letter or digit",
				    DD_RT_MAX_APP_NAME);
			goto out;
		}
	}
	s->app_name = dd_strdup(name);
	if (s->app_name == NULL) {
		rc = dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = parse_lists(req, s, why, why_len);
	if (rc)
		goto out;
	rc = dd_json_get_bool(req, "tty", &tty);
	if (rc && rc != DD_ERR_NOT_FOUND) {
		rc = dd_why(why, why_len, DD_ERR_INVALID,
			    BAD_DEPLOY "tty must be a boolean");
		goto out;
	}
	s->tty = tty;
	rc = parse_restart(req, s, why, why_len);
	if (rc)
		goto out;
	v = field(req, "github_release");
	if (v != NULL) {
		rc = parse_release(v, &s->release, why, why_len);
		if (rc)
			goto out;
	}
	*out = s;
	s = NULL; /* transferred */
	rc = DD_OK;
out:
	dd_rt_spec_free(s);
	return rc;
}

/* ---- ids and times ----------------------------------------------------- */

dd_err_t dd_rt_uuid(char out[DD_RT_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	size_t o = 0;
	dd_err_t rc;

	rc = dd_random_bytes(b, sizeof b);
	if (rc)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return DD_OK;
}

void dd_rt_rfc3339(int64_t t, char *out, size_t out_len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, out_len, "1970-01-01T00:00:00Z");
}
