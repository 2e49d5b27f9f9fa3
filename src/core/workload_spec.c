#include "core/workload_spec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_ARGS 256u
#define MAX_ARG_BYTES 4096u
#define MAX_ENV 256u
#define MAX_ENV_BYTES (32u * 1024u)
#define MAX_NAME_BYTES 256u   /* repo, asset, tag, rename */
#define LABEL_MAX 63u

static dd_err_t fail(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static dd_err_t fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DD_ERR_INVALID;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

int dd_workload_spec_app_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DD_WORKLOAD_SPEC_APP_NAME_MAX || !is_alnum(s[0]))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-')
			return 0;
	return 1;
}

/* A DNS label as the tunnel ingress uses it: lower case, no edge dashes. */
static int dns_label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int env_key_ok(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* json_string_length counts bytes; a NUL inside was refused by the parser. */
static size_t slen(const json_t *v)
{
	return json_string_length(v);
}

static dd_err_t check_cmd(const json_t *v, size_t *n_args, char *why,
			  size_t why_len)
{
	size_t i;
	json_t *a;

	if (!json_is_array(v))
		return fail(why, why_len, "cmd: must be an array of strings");
	if (json_array_size(v) > MAX_ARGS)
		return fail(why, why_len, "cmd: more than %u entries",
			    MAX_ARGS);
	json_array_foreach(v, i, a) {
		if (!json_is_string(a))
			return fail(why, why_len, "cmd[%zu]: must be a string",
				    i);
		if (slen(a) >= MAX_ARG_BYTES)
			return fail(why, why_len, "cmd[%zu]: longer than %u "
				    "bytes", i, MAX_ARG_BYTES - 1);
		if (i == 0 && slen(a) == 0)
			return fail(why, why_len, "cmd[0]: the program must "
				    "not be empty");
	}
	*n_args = json_array_size(v);
	return DD_OK;
}

static dd_err_t check_env(const json_t *v, char *why, size_t why_len)
{
	const char *s, *eq;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(why, why_len, "env: must be an array of "
			    "\"KEY=VALUE\" strings");
	if (json_array_size(v) > MAX_ENV)
		return fail(why, why_len, "env: more than %u entries", MAX_ENV);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return fail(why, why_len, "env[%zu]: must be a string",
				    i);
		if (slen(e) >= MAX_ENV_BYTES)
			return fail(why, why_len, "env[%zu]: longer than %u "
				    "bytes", i, MAX_ENV_BYTES - 1);
		s = json_string_value(e);
		eq = memchr(s, '=', slen(e));
		/* The runtime drops such entries without a word. */
		if (eq == NULL || !env_key_ok(s, (size_t)(eq - s)))
			return fail(why, why_len, "env[%zu]: must be KEY=VALUE "
				    "with KEY of letters, digits and _", i);
	}
	return DD_OK;
}

/* A string member of a nested object: required or optional, no '/'. */
static dd_err_t nested_str(const json_t *obj, const char *ctx,
			   const char *key, int required, int slash_ok,
			   char *why, size_t why_len)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;

	if (v == NULL)
		return required ? fail(why, why_len, "%s.%s: required", ctx,
				       key) : DD_OK;
	if (!json_is_string(v))
		return fail(why, why_len, "%s.%s: must be a string", ctx, key);
	s = json_string_value(v);
	if (slen(v) == 0 || slen(v) > MAX_NAME_BYTES)
		return fail(why, why_len, "%s.%s: must be 1-%u bytes", ctx,
			    key, MAX_NAME_BYTES);
	if (!slash_ok && strchr(s, '/') != NULL)
		return fail(why, why_len, "%s.%s: must not contain '/'", ctx,
			    key);
	return DD_OK;
}

/*
 * jansson's object iteration takes a non-const object although it only
 * reads it; the one cast lives here so callers can pass what they hold.
 */
static json_t *readable(const json_t *obj)
{
	return (json_t *)(uintptr_t)obj;
}

static dd_err_t only_keys(const json_t *obj, const char *ctx,
			  const char *const *keys, char *why, size_t why_len)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(readable(obj), k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return fail(why, why_len, "%s: unknown field '%.64s'",
				    ctx, k);
	}
	return DD_OK;
}

static dd_err_t check_release(const json_t *v, char *why, size_t why_len)
{
	static const char *const keys[] = {"repo", "asset", "tag", "rename",
					   NULL};
	const char *repo, *slash;
	dd_err_t rc;

	if (!json_is_object(v))
		return fail(why, why_len, "github_release: must be an object");
	rc = only_keys(v, "github_release", keys, why, why_len);
	if (rc == DD_OK)
		rc = nested_str(v, "github_release", "repo", 1, 1, why,
				why_len);
	if (rc == DD_OK)
		rc = nested_str(v, "github_release", "asset", 1, 0, why,
				why_len);
	if (rc == DD_OK)
		rc = nested_str(v, "github_release", "tag", 0, 0, why,
				why_len);
	if (rc == DD_OK)
		rc = nested_str(v, "github_release", "rename", 0, 0, why,
				why_len);
	if (rc)
		return rc;
	repo = json_string_value(json_object_get(v, "repo"));
	slash = strchr(repo, '/');
	if (slash == NULL || slash == repo || slash[1] == '\0' ||
	    strchr(slash + 1, '/') != NULL)
		return fail(why, why_len, "github_release.repo: must be "
			    "owner/name");
	return DD_OK;
}

static dd_err_t check_expose(const json_t *v, char *why, size_t why_len)
{
	static const char *const keys[] = {"hostname_label", "port", NULL};
	const json_t *label, *port;
	dd_err_t rc;

	if (!json_is_object(v))
		return fail(why, why_len, "expose: must be an object");
	rc = only_keys(v, "expose", keys, why, why_len);
	if (rc)
		return rc;
	label = json_object_get(v, "hostname_label");
	port = json_object_get(v, "port");
	if (!json_is_string(label) || !dns_label_ok(json_string_value(label)))
		return fail(why, why_len, "expose.hostname_label: must be a "
			    "DNS label (a-z, 0-9, '-', at most 63)");
	/* The agent ignores ports given as strings, so we refuse them. */
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)
		return fail(why, why_len, "expose.port: must be an integer "
			    "1-65535");
	return DD_OK;
}

static dd_err_t check_field(const char *k, const json_t *v, size_t *n_args,
			    char *why, size_t why_len)
{
	const char *s;

	if (strcmp(k, "app_name") == 0) {
		if (!json_is_string(v))
			return fail(why, why_len, "app_name: must be a string");
		if (!dd_workload_spec_app_name_ok(json_string_value(v)))
			return fail(why, why_len, "app_name: 1-%u of A-Z a-z "
				    "0-9 . _ -, starting with a letter or "
				    "digit", DD_WORKLOAD_SPEC_APP_NAME_MAX);
		return DD_OK;
	}
	if (strcmp(k, "cmd") == 0)
		return check_cmd(v, n_args, why, why_len);
	if (strcmp(k, "env") == 0)
		return check_env(v, why, why_len);
	if (strcmp(k, "tty") == 0)
		return json_is_boolean(v) ? DD_OK :
		       fail(why, why_len, "tty: must be true or false");
	if (strcmp(k, "github_release") == 0)
		return check_release(v, why, why_len);
	if (strcmp(k, "expose") == 0)
		return check_expose(v, why, why_len);
	if (strcmp(k, "requires_agent_mode") == 0) {
		s = json_string_value(v);
		if (s == NULL || (strcmp(s, "read_only") != 0 &&
				  strcmp(s, "read_write") != 0))
			return fail(why, why_len, "requires_agent_mode: "
				    "read_only or read_write");
		return DD_OK;
	}
	/* The local runtime's restart policy (docs/runtime.md); EE ignores it. */
	if (strcmp(k, "restart") == 0) {
		s = json_string_value(v);
		if (s == NULL || (strcmp(s, "on-failure") != 0 &&
				  strcmp(s, "always") != 0 && strcmp(s, "no") != 0))
			return fail(why, why_len, "restart: on-failure, always "
				    "or no");
		return DD_OK;
	}
	if (strcmp(k, "oracle") == 0 || strcmp(k, "inherit_token") == 0)
		return fail(why, why_len, "%s: applies to boot workloads only; "
			    "a deployed workload would silently lose it", k);
	return fail(why, why_len, "unknown field '%.64s'", k);
}

dd_err_t dd_workload_spec_check(const json_t *spec, char *why,
				size_t why_len)
{
	size_t n_args = 0;
	const char *k;
	json_t *v;
	dd_err_t rc;

	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (!json_is_object(spec))
		return fail(why, why_len, "must be a JSON object");
	json_object_foreach(readable(spec), k, v) {
		rc = check_field(k, v, &n_args, why, why_len);
		if (rc)
			return rc;
	}
	if (json_object_get(spec, "app_name") == NULL)
		return fail(why, why_len, "app_name: required");
	if (n_args == 0 && json_object_get(spec, "github_release") == NULL)
		return fail(why, why_len, "needs a non-empty cmd or a "
			    "github_release (the runtime would fail it)");
	return DD_OK;
}
