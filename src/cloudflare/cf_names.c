#include "cloudflare/cf_names.h"

#include <stdio.h>
#include <string.h>

#include "core/strutil.h"

int dd_cf_env_ok(const char *env)
{
	size_t n = env == NULL ? 0 : strnlen(env, DD_CF_ENV_MAX + 1);

	if (n == 0 || n > DD_CF_ENV_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = env[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && c == '-');
		if (!ok)
			return 0;
	}
	return 1;
}

dd_cf_env_kind dd_cf_env_kind_of(const char *env)
{
	if (strcmp(env, "production") == 0)
		return DD_CF_ENV_PRODUCTION;
	if (strcmp(env, "staging") == 0)
		return DD_CF_ENV_STAGING;
	if (strcmp(env, "dev") == 0)
		return DD_CF_ENV_DEV;
	if (strncmp(env, "pr-", 3) == 0 && strlen(env) > 3)
		return DD_CF_ENV_PREVIEW;
	return DD_CF_ENV_NAMED;
}

const char *dd_cf_env_kind_name(dd_cf_env_kind kind)
{
	static const char *const names[] = {"production", "staging", "dev",
					    "preview", "named"};

	return (unsigned)kind < 5 ? names[kind] : "named";
}

/* Checks label[0..n); the message quotes at most 80 bytes of it. */
static dd_err_t check_label_n(const char *label, size_t n, char *why,
			      size_t why_len)
{
	if (n == 0) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "empty DNS label");
		return DD_ERR_INVALID;
	}
	if (n > DD_CF_LABEL_MAX) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len,
				 "DNS label '%.*s...' is %zu bytes (at most %d)",
				 40, label, n, DD_CF_LABEL_MAX);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		char c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-')) {
			if (why != NULL && why_len > 0)
				snprintf(why, why_len,
					 "DNS label '%.*s' may hold only "
					 "a-z, 0-9 and '-'", (int)n, label);
			return DD_ERR_INVALID;
		}
	}
	if (label[0] == '-' || label[n - 1] == '-') {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "DNS label '%.*s' must not start "
				 "or end with '-'", (int)n, label);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

dd_err_t dd_cf_check_label(const char *label, char *why, size_t why_len)
{
	if (label == NULL)
		return check_label_n("", 0, why, why_len);
	return check_label_n(label, strnlen(label, DD_CF_HOST_MAX + 1), why,
			     why_len);
}

dd_err_t dd_cf_check_hostname(const char *host, char *why, size_t why_len)
{
	size_t n = host == NULL ? 0 : strnlen(host, DD_CF_HOST_MAX + 1);
	size_t start = 0;
	dd_err_t rc;

	if (n == 0) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "empty hostname");
		return DD_ERR_INVALID;
	}
	if (n > DD_CF_HOST_MAX) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "hostname '%.40s...' is longer "
				 "than %d bytes", host, DD_CF_HOST_MAX);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && host[i] != '.')
			continue;
		rc = check_label_n(host + start, i - start, why, why_len);
		if (rc) {
			if (why != NULL && why_len > 0 && i == start)
				snprintf(why, why_len, "hostname '%.*s' has "
					 "an empty label", (int)n, host);
			return rc;
		}
		start = i + 1;
	}
	return DD_OK;
}

dd_err_t dd_cf_uuid4(char out[DD_CF_UUID_LEN + 1])
{
	uint8_t b[16];
	char hex[33];
	dd_err_t rc;

	rc = dd_random_bytes(b, sizeof b);
	if (rc)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	dd_hex_encode(b, sizeof b, hex);
	snprintf(out, DD_CF_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex,
		 hex + 8, hex + 12, hex + 16, hex + 20);
	return DD_OK;
}

static int role_ok(const char *role)
{
	return role != NULL &&
	       (strcmp(role, "cp") == 0 || strcmp(role, "agent") == 0);
}

dd_err_t dd_cf_tunnel_prefix(const char *env, const char *role, char *out,
			     size_t cap)
{
	int n;

	if (!dd_cf_env_ok(env) || !role_ok(role))
		return DD_ERR_INVALID;
	n = snprintf(out, cap, "dd-%s-%s-", env, role);
	return n < 0 || (size_t)n >= cap ? DD_ERR_TOO_LARGE : DD_OK;
}

dd_err_t dd_cf_tunnel_name(const char *env, const char *role, char *out,
			   size_t cap, char *why, size_t why_len)
{
	char uuid[DD_CF_UUID_LEN + 1];
	dd_err_t rc;
	int n;

	if (!dd_cf_env_ok(env) || !role_ok(role)) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "bad env label or tunnel role");
		return DD_ERR_INVALID;
	}
	rc = dd_cf_uuid4(uuid);
	if (rc)
		return rc;
	n = snprintf(out, cap, "dd-%s-%s-%s", env, role, uuid);
	if (n < 0 || (size_t)n >= cap)
		return DD_ERR_TOO_LARGE;
	return dd_cf_check_label(out, why, why_len);
}

/* Writes a[0..alen) b c d and checks it as a hostname. */
static dd_err_t emit(char *out, size_t cap, char *why, size_t why_len,
		     const char *a, size_t alen, const char *b, const char *c,
		     const char *d)
{
	int n = snprintf(out, cap, "%.*s%s%s%s", (int)alen, a, b, c, d);

	if (n < 0 || (size_t)n >= cap || n > DD_CF_HOST_MAX) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "hostname for '%.*s' would be "
				 "longer than %d bytes", (int)(alen > 80 ? 80 : alen),
				 a, DD_CF_HOST_MAX);
		if (cap > 0)
			out[0] = '\0';
		return DD_ERR_INVALID;
	}
	return dd_cf_check_hostname(out, why, why_len);
}

dd_err_t dd_cf_agent_hostname(const char *tunnel_name, const char *domain,
			      char *out, size_t cap, char *why,
			      size_t why_len)
{
	dd_err_t rc = dd_cf_check_label(tunnel_name, why, why_len);

	if (rc)
		return rc;
	return emit(out, cap, why, why_len, tunnel_name, strlen(tunnel_name),
		    ".", domain, "");
}

dd_err_t dd_cf_label_hostname(const char *host, const char *label,
			      char *out, size_t cap, char *why,
			      size_t why_len)
{
	const char *dot;
	dd_err_t rc;

	rc = dd_cf_check_label(label, why, why_len);
	if (rc)
		return rc;
	dot = host != NULL ? strchr(host, '.') : NULL;
	if (host == NULL || host[0] == '\0')
		return dd_cf_check_hostname("", why, why_len);
	if (dot == NULL)
		return emit(out, cap, why, why_len, host, strlen(host), "-",
			    label, "");
	return emit(out, cap, why, why_len, host, (size_t)(dot - host), "-",
		    label, dot);
}

dd_err_t dd_cf_agent_api_hostname(const char *host, char *out, size_t cap,
				  char *why, size_t why_len)
{
	static const char marker[] = "-agent-";
	const char *dot, *hit;
	size_t base_len;
	char base[DD_CF_HOST_MAX + 1];

	if (host == NULL || host[0] == '\0')
		return dd_cf_check_hostname("", why, why_len);
	dot = strchr(host, '.');
	base_len = dot != NULL ? (size_t)(dot - host) : strlen(host);
	if (base_len > DD_CF_HOST_MAX)
		return dd_cf_check_hostname(host, why, why_len);
	memcpy(base, host, base_len);
	base[base_len] = '\0';
	hit = strstr(base, marker);
	if (hit == NULL)
		return emit(out, cap, why, why_len, host, base_len, "-agent-api",
			    dot != NULL ? dot : "", "");
	/* base up to the marker, "-api-", the rest of the base, the rest. */
	{
		int n = snprintf(out, cap, "%.*s-api-%s%s%s",
				 (int)(hit - base), base,
				 hit + sizeof marker - 1,
				 dot != NULL ? "." : "",
				 dot != NULL ? dot + 1 : "");
		if (n < 0 || (size_t)n >= cap || n > DD_CF_HOST_MAX) {
			if (why != NULL && why_len > 0)
				snprintf(why, why_len, "API hostname of '%.80s' "
					 "is too long", host);
			return DD_ERR_INVALID;
		}
	}
	return dd_cf_check_hostname(out, why, why_len);
}

dd_err_t dd_cf_extra_hostname(const char *host, const char *label,
			      char *out, size_t cap, char *why,
			      size_t why_len)
{
	if (label != NULL && strcmp(label, DD_CF_AGENT_API_LABEL) == 0)
		return dd_cf_agent_api_hostname(host, out, cap, why, why_len);
	return dd_cf_label_hostname(host, label, out, cap, why, why_len);
}

int dd_cf_env_from_name(const char *name, char *env, size_t cap)
{
	static const char *const markers[] = {"-cp-", "-agent-", "-api-"};
	const char *s = name, *best = NULL;
	size_t n;

	if (name == NULL)
		return 0;
	if (strncmp(s, "dd-", 3) == 0)
		s += 3;
	for (size_t i = 0; i < 3; i++) {
		const char *hit = strstr(s, markers[i]);
		if (hit != NULL && (best == NULL || hit < best))
			best = hit;
	}
	if (best == NULL)
		return 0;
	n = (size_t)(best - s);
	if (n == 0 || n > DD_CF_ENV_MAX || n >= cap)
		return 0;
	memcpy(env, s, n);
	env[n] = '\0';
	if (!dd_cf_env_ok(env)) {
		env[0] = '\0';
		return 0;
	}
	return 1;
}

size_t dd_cf_host_len(const char *domain)
{
	const char *slash = strchr(domain, '/');

	return slash != NULL ? (size_t)(slash - domain) : strlen(domain);
}
