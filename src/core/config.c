#include "core/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/config_int.h"
#include "core/strutil.h"
#include "net/dns.h"

const char *dd_config_getenv(void *ud, const char *name)
{
	(void)ud;
	return getenv(name);
}

int dd_config_label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && c == '-');
		if (!ok)
			return 0;
	}
	return 1;
}

static int flag_value(const char *s, size_t n)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (dd_str_ieq(s, n, yes[i]))
			return 1;
		if (dd_str_ieq(s, n, no[i]))
			return 0;
	}
	return -1;
}

static int has_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			return 1;
	}
	return 0;
}

static int is_ip_literal(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 45)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

static dd_err_t store_str(dd_config *cfg, const struct var *v, const char *s,
			  size_t n)
{
	char **slot = (char **)((char *)cfg + v->offset);
	char *copy = dd_strndup(s, n);

	if (copy == NULL)
		return DD_ERR_NOMEM;
	*slot = copy;
	return DD_OK;
}

/* Reports one bad value; the whole load fails after every var is seen. */
static void complain(dd_buf *errors, const struct var *v, const char *why)
{
	if (errors != NULL)
		dd_buf_appendf(errors, "%s: %s\n", v->name, why);
}

static dd_err_t set_number(dd_config *cfg, const struct var *v, const char *s,
			   size_t n, dd_buf *errors)
{
	uint64_t x;
	char why[96];

	if (dd_parse_u64n(s, n, v->min, v->max, &x) != DD_OK) {
		snprintf(why, sizeof why, "must be an integer in [%llu, %llu]",
			 (unsigned long long)v->min, (unsigned long long)v->max);
		complain(errors, v, why);
		return DD_ERR_CONFIG;
	}
	if (v->type == T_U16)
		*(uint16_t *)((char *)cfg + v->offset) = (uint16_t)x;
	else
		*(uint64_t *)((char *)cfg + v->offset) = x;
	return DD_OK;
}

static dd_err_t set_choice(dd_config *cfg, const struct var *v, const char *s,
			   size_t n, dd_buf *errors)
{
	for (int i = 0; v->choices[i] != NULL; i++) {
		if (strlen(v->choices[i]) == n && memcmp(v->choices[i], s, n) == 0) {
			*(int *)((char *)cfg + v->offset) = i;
			return DD_OK;
		}
	}
	if (errors != NULL) {
		dd_buf_appendf(errors, "%s: must be one of", v->name);
		for (int i = 0; v->choices[i] != NULL; i++)
			dd_buf_appendf(errors, " %s", v->choices[i]);
		dd_buf_append_str(errors, "\n");
	}
	return DD_ERR_CONFIG;
}

static dd_err_t set_text(dd_config *cfg, const struct var *v, const char *s,
			 size_t n, dd_buf *errors)
{
	char tmp[64];

	switch (v->type) {
	case T_LABEL:
		if (n >= sizeof tmp)
			goto bad_label;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (!dd_config_label_ok(tmp))
			goto bad_label;
		break;
	case T_URL:
		if ((n < 8 || memcmp(s, "https://", 8) != 0) &&
		    (n < 7 || memcmp(s, "http://", 7) != 0)) {
			complain(errors, v, "must be an http:// or https:// URL");
			return DD_ERR_CONFIG;
		}
		if (has_space(s, n)) {
			complain(errors, v, "must not contain whitespace");
			return DD_ERR_CONFIG;
		}
		while (n > 0 && s[n - 1] == '/')
			n--;
		break;
	case T_PATH:
		if (s[0] != '/' || memchr(s, '\0', n) != NULL) {
			complain(errors, v, "must be an absolute path");
			return DD_ERR_CONFIG;
		}
		break;
	case T_HOSTADDR:
		if (n >= sizeof tmp)
			goto bad_addr;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (!is_ip_literal(tmp))
			goto bad_addr;
		break;
	default:
		break;
	}
	return store_str(cfg, v, s, n);
bad_label:
	complain(errors, v, "must be 1-40 characters of [a-z0-9-], "
			    "starting with a letter or digit");
	return DD_ERR_CONFIG;
bad_addr:
	complain(errors, v, "must be an IPv4 or IPv6 address literal");
	return DD_ERR_CONFIG;
}

/* Applies one raw value; trimming rules depend on the type. */
static dd_err_t set_var(dd_config *cfg, const struct var *v, const char *raw,
			dd_buf *errors)
{
	const char *s = raw;
	size_t n = strlen(raw);
	int f;

	if (v->type != T_STR)
		dd_str_trim(&s, &n);
	if (n == 0 && v->type != T_STR) {
		complain(errors, v, "must not be blank");
		return DD_ERR_CONFIG;
	}
	switch (v->type) {
	case T_U16:
	case T_U64:
		return set_number(cfg, v, s, n, errors);
	case T_FLAG:
		f = flag_value(s, n);
		if (f < 0) {
			complain(errors, v, "must be one of 1 true yes on 0 false no off");
			return DD_ERR_CONFIG;
		}
		*(int *)((char *)cfg + v->offset) = f;
		return DD_OK;
	case T_CHOICE:
		return set_choice(cfg, v, s, n, errors);
	default:
		return set_text(cfg, v, s, n, errors);
	}
}

static dd_err_t default_vm_name(dd_config *cfg)
{
	char line[256] = "";
	FILE *f = fopen("/etc/hostname", "re");
	const char *s = line;
	size_t n;

	if (f != NULL) {
		if (fgets(line, sizeof line, f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	n = strlen(line);
	dd_str_trim(&s, &n);
	if (n == 0) {
		s = "unknown";
		n = strlen(s);
	}
	cfg->vm_name = dd_strndup(s, n);
	return cfg->vm_name ? DD_OK : DD_ERR_NOMEM;
}

static int env_is_protected(const char *env)
{
	return env != NULL &&
	       (strcmp(env, "production") == 0 || strcmp(env, "staging") == 0);
}

/*
 * Development stand-ins (simulated quotes, the local issuer) must never
 * be reachable by a misconfigured production process: they need DD_DEV,
 * and the protected environments refuse them even then.
 */
static void check_attestation(const dd_config *cfg, dd_buf *errors, int *bad)
{
	const char *what = NULL;

	if (cfg->mode == DD_MODE_ITA)
		what = "DD_MODE: the local ITA";
	else if ((cfg->mode & ALL_SERVERS) && cfg->ita_mode == DD_ITA_LOCAL)
		what = "DD_ITA_MODE: local";
	if (what != NULL && (!cfg->dev || env_is_protected(cfg->env))) {
		dd_buf_appendf(errors, "%s is for development only (needs DD_DEV=1 "
				       "and an environment other than production "
				       "or staging)\n", what);
		*bad = 1;
	}
	if ((cfg->mode & (ALL_SERVERS | DD_MODE_RUNTIME)) &&
	    cfg->quote_provider == DD_PROVIDER_SIM &&
	    (!cfg->dev || env_is_protected(cfg->env))) {
		dd_buf_append_str(errors, "DD_QUOTE_PROVIDER: sim needs DD_DEV=1 and "
					  "an environment other than production "
					  "or staging\n");
		*bad = 1;
	}
}

/*
 * The scrape resolver's servers (spec integrations.md 3.4), checked the
 * way the resolver will read them. A port override for the addresses it
 * finds points every tunnel scrape elsewhere: dev mode only.
 */
static void check_scrape_dns(const dd_config *cfg, dd_buf *errors, int *bad)
{
	char why[160];

	if (cfg->mode != DD_MODE_CP)
		return;
	if (cfg->scrape_dns != NULL && strcmp(cfg->scrape_dns, "system") != 0 &&
	    dd_dns_check_servers(cfg->scrape_dns, why, sizeof why) != DD_OK) {
		dd_buf_appendf(errors, "DD_SCRAPE_DNS: %s (want system, or "
				       "servers as IP[:port] or [IPv6][:port], "
				       "comma-separated)\n", why);
		*bad = 1;
	}
	if (cfg->collect_edge_port != 0 && !cfg->dev) {
		dd_buf_append_str(errors, "DD_COLLECT_EDGE_PORT: is a test and "
					  "development facility (needs DD_DEV=1)\n");
		*bad = 1;
	}
}

/*
 * Redirecting scrapes would let whoever listens there answer for every
 * tunnel agent: a test facility, refused outside dev mode. The host is
 * checked in full by the HTTP client (dd_httpc_check_connect_to).
 */
static void check_collect_connect_to(const dd_config *cfg, dd_buf *errors,
				     int *bad)
{
	const char *hp = cfg->collect_connect_to;
	const char *colon = hp != NULL ? strrchr(hp, ':') : NULL;
	uint64_t port;

	if (cfg->mode != DD_MODE_CP || hp == NULL)
		return;
	if (!cfg->dev) {
		dd_buf_append_str(errors, "DD_COLLECT_CONNECT_TO: is a test and "
					  "development facility (needs DD_DEV=1)\n");
		*bad = 1;
	} else if (colon == NULL || colon == hp ||
		   dd_parse_u64(colon + 1, 1, 65535, &port) != DD_OK) {
		dd_buf_append_str(errors, "DD_COLLECT_CONNECT_TO: must be "
					  "host:port\n");
		*bad = 1;
	}
}

/* Spec: an index outside the shards would scrape nothing, silently. */
static void check_shards(const dd_config *cfg, dd_buf *errors, int *bad)
{
	if (cfg->mode != DD_MODE_CP ||
	    cfg->scraper_shard_index < cfg->scraper_shard_total)
		return;
	dd_buf_appendf(errors, "DD_SCRAPER_SHARD_INDEX: must be less than "
			       "DD_SCRAPER_SHARD_TOTAL (%llu), got %llu\n",
		       (unsigned long long)cfg->scraper_shard_total,
		       (unsigned long long)cfg->scraper_shard_index);
	*bad = 1;
}

dd_err_t dd_config_secret_bytes(const char *value, dd_buf *out)
{
	static const char prefix[] = "base64:";
	size_t n = strlen(value);

	if (n >= sizeof prefix - 1 && memcmp(value, prefix, sizeof prefix - 1) == 0)
		return dd_b64_decode(DD_B64_STD, value + sizeof prefix - 1,
				     n - (sizeof prefix - 1), out);
	return dd_buf_append(out, value, n);
}

/* Sessions signed with a guessable key would let anyone sign in. */
static void check_cookie_secret(const dd_config *cfg, dd_buf *errors, int *bad)
{
	dd_buf key;
	dd_err_t rc;

	if (cfg->mode != DD_MODE_CP || cfg->cookie_secret == NULL)
		return;
	dd_buf_init(&key, 4096);
	rc = dd_config_secret_bytes(cfg->cookie_secret, &key);
	if (rc == DD_ERR_NOMEM) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: out of memory\n");
		*bad = 1;
	} else if (rc) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: base64: value "
					  "is not valid padded base64\n");
		*bad = 1;
	} else if (key.len < 32) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: must be at "
					  "least 32 bytes\n");
		*bad = 1;
	}
	if (key.data != NULL)
		dd_freezero(key.data, key.alloc);
	key.data = NULL;
	dd_buf_free(&key);
}

/*
 * Dev sign-in's code goes in a URL as it is and must not be guessable;
 * outside dev mode there is no dev sign-in for it to open.
 */
static void check_dev_signin_code(const dd_config *cfg, dd_buf *errors,
				  int *bad)
{
	const char *s = cfg->dev_signin_code;
	size_t n = s != NULL ? strlen(s) : 0;
	bool ok = n >= 22 && n <= 128;

	if (cfg->mode != DD_MODE_CP || s == NULL)
		return;
	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_';
	if (!cfg->dev) {
		dd_buf_append_str(errors, "DD_DEV_SIGNIN_CODE: is for development "
					  "only (needs DD_DEV=1)\n");
		*bad = 1;
	} else if (!ok) {
		dd_buf_append_str(errors, "DD_DEV_SIGNIN_CODE: must be 22-128 of "
					  "[A-Za-z0-9_-]\n");
		*bad = 1;
	}
}

/* Cloudflare ingress is all or nothing. */
static void check_cloudflare(const dd_config *cfg, dd_buf *errors, int *bad)
{
	int set = (cfg->cf.api_token != NULL) + (cfg->cf.account_id != NULL) +
		  (cfg->cf.zone_id != NULL);

	if (cfg->mode != DD_MODE_CP || set == 0)
		return;
	if (set < 3 || cfg->cf_domain == NULL) {
		dd_buf_append_str(errors, "DD_CF_API_TOKEN: Cloudflare needs "
					  "DD_CF_API_TOKEN, DD_CF_ACCOUNT_ID, "
					  "DD_CF_ZONE_ID and DD_CF_DOMAIN together\n");
		*bad = 1;
	}
}

/* Rules that span several variables. */
static void check_cross(const dd_config *cfg, dd_buf *errors, int *bad)
{
	check_cloudflare(cfg, errors, bad);
	if (cfg->owner != NULL && (cfg->mode & ALL_SERVERS)) {
		int has_slash = strchr(cfg->owner, '/') != NULL;
		if (cfg->owner_kind == DD_OWNER_REPO && !has_slash) {
			dd_buf_append_str(errors, "DD_OWNER: kind repo needs owner/repo\n");
			*bad = 1;
		} else if (cfg->owner_kind != DD_OWNER_REPO && has_slash) {
			dd_buf_append_str(errors, "DD_OWNER: kinds user and org take a "
						  "name without '/'\n");
			*bad = 1;
		}
	}
	if (cfg->mode == DD_MODE_AGENT && cfg->port != 0 &&
	    cfg->port == cfg->api_port) {
		dd_buf_append_str(errors, "DD_API_PORT: must differ from DD_PORT\n");
		*bad = 1;
	}
	check_attestation(cfg, errors, bad);
	check_scrape_dns(cfg, errors, bad);
	check_collect_connect_to(cfg, errors, bad);
	check_shards(cfg, errors, bad);
	if (cfg->mode == DD_MODE_CP && cfg->store_path != NULL &&
	    cfg->store_path[0] != '/' && strcmp(cfg->store_path, ":memory:") != 0) {
		dd_buf_append_str(errors, "DD_STORE_PATH: must be an absolute path "
					  "or :memory:\n");
		*bad = 1;
	}
	check_cookie_secret(cfg, errors, bad);
	check_dev_signin_code(cfg, errors, bad);
	if (cfg->http.max_body_unauth > cfg->http.max_body) {
		dd_buf_append_str(errors, "DD_HTTP_MAX_BODY_UNAUTH: must not exceed "
					  "DD_HTTP_MAX_BODY\n");
		*bad = 1;
	}
}

dd_err_t dd_config_load(dd_mode mode, dd_config_get_fn get, void *ud,
			dd_config **out, dd_buf *errors)
{
	dd_config *cfg = NULL;
	dd_err_t rc = DD_OK;
	int bad = 0;

	*out = NULL;
	cfg = dd_calloc(1, sizeof *cfg);
	if (cfg == NULL)
		return DD_ERR_NOMEM;
	cfg->mode = mode;
	for (size_t i = 0; i < dd_config_nvars; i++) {
		const struct var *v = &dd_config_vars[i];
		const char *raw;

		if (!(v->modes & mode))
			continue;
		raw = get(ud, v->name);
		if (raw == NULL || (v->type != T_STR && raw[0] == '\0'))
			raw = NULL;
		if (raw == NULL && (v->required & mode)) {
			complain(errors, v, "required but not set");
			bad = 1;
			continue;
		}
		if (raw == NULL)
			raw = v->def;
		if (raw == NULL)
			continue;
		rc = set_var(cfg, v, raw, errors);
		if (rc == DD_ERR_NOMEM)
			goto out;
		if (rc)
			bad = 1;
		rc = DD_OK;
	}
	if ((mode & ALL_SERVERS) && cfg->vm_name == NULL) {
		rc = default_vm_name(cfg);
		if (rc)
			goto out;
	}
	if (!bad)
		check_cross(cfg, errors, &bad);
	if (bad) {
		rc = DD_ERR_CONFIG;
		goto out;
	}
	*out = cfg;
	cfg = NULL; /* transferred */
out:
	dd_config_free(cfg);
	return rc;
}

void dd_config_free(dd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < dd_config_nvars; i++) {
		const struct var *v = &dd_config_vars[i];
		char **slot;

		if (v->type == T_U16 || v->type == T_U64 || v->type == T_FLAG ||
		    v->type == T_CHOICE)
			continue;
		slot = (char **)((char *)cfg + v->offset);
		if (*slot != NULL)
			dd_freezero(*slot, strlen(*slot));
	}
	dd_free(cfg);
}

static const struct {
	const char *name;
	dd_mode mode;
} mode_names[] = {
	{"cp", DD_MODE_CP},           {"management", DD_MODE_CP},
	{"agent", DD_MODE_AGENT},     {"sessiond", DD_MODE_SESSIOND},
	{"runtime", DD_MODE_RUNTIME}, {"dev", DD_MODE_DEV},
	{"client", DD_MODE_CLIENT},   {"ita", DD_MODE_ITA},
};

dd_err_t dd_mode_parse(const char *s, dd_mode *out)
{
	for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (strcmp(s, mode_names[i].name) == 0) {
			*out = mode_names[i].mode;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}

const char *dd_mode_name(dd_mode mode)
{
	for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (mode_names[i].mode == mode)
			return mode_names[i].name;
	}
	return "unknown";
}

const char *dd_owner_kind_name(dd_owner_kind kind)
{
	return (unsigned)kind < 3 ? dd_config_owner_kinds[kind] : "unknown";
}

static void describe_value(const struct var *v, const dd_config *cfg, FILE *f)
{
	const char *p = (const char *)cfg + v->offset;

	switch (v->type) {
	case T_U16:
		fprintf(f, "%u", (unsigned)*(const uint16_t *)(const void *)p);
		break;
	case T_U64:
		fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)(const void *)p);
		break;
	case T_FLAG:
		fputs(*(const int *)(const void *)p ? "true" : "false", f);
		break;
	case T_CHOICE:
		fputs(v->choices[*(const int *)(const void *)p], f);
		break;
	default: {
		const char *s = *(char *const *)(const void *)p;
		fputs(s == NULL ? "(unset)" : v->secret ? "(set)" : s, f);
	}
	}
}

void dd_config_describe(dd_mode mode, const dd_config *cfg, FILE *f)
{
	for (size_t i = 0; i < dd_config_nvars; i++) {
		const struct var *v = &dd_config_vars[i];

		if (!(v->modes & mode))
			continue;
		fprintf(f, "  %-28s %s", v->name, v->help);
		if (v->required & mode)
			fputs(" [required]", f);
		else if (v->def != NULL)
			fprintf(f, " [default: %s]", v->def);
		if (cfg != NULL) {
			fputs(" = ", f);
			describe_value(v, cfg, f);
		}
		fputc('\n', f);
	}
}
