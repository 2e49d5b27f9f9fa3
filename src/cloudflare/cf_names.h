/*
 * cf_names.h: how DD names what it creates in Cloudflare
 * (spec/integrations.md 1.3), and the DNS checks the reference system
 * never made.
 *
 * Pure string functions: no I/O beyond the CSPRNG for tunnel UUIDs.
 * Every hostname built here is checked before it is returned: labels of
 * [a-z0-9-], 1..63 bytes, not starting or ending with '-', the whole name
 * at most 253 bytes. A failure is INVALID with a sentence in why naming
 * the offending label, so it can go straight into a 400 or a log line.
 * Output buffers of DD_CF_HOST_MAX + 1 bytes always suffice.
 */
#ifndef DD_CLOUDFLARE_CF_NAMES_H
#define DD_CLOUDFLARE_CF_NAMES_H

#include <stddef.h>

#include "core/err.h"

#define DD_CF_LABEL_MAX 63
#define DD_CF_HOST_MAX 253
#define DD_CF_UUID_LEN 36
#define DD_CF_ENV_MAX 40
#define DD_CF_WHY_MAX 200
/* The reserved extra label of the agent's API listener. */
#define DD_CF_AGENT_API_LABEL "agent-api"

typedef enum {
	DD_CF_ENV_PRODUCTION = 0,
	DD_CF_ENV_STAGING,
	DD_CF_ENV_DEV,
	DD_CF_ENV_PREVIEW,   /* "pr-..." longer than 3 bytes: ephemeral */
	DD_CF_ENV_NAMED,     /* any other valid label: bot, dogfood, ... */
} dd_cf_env_kind;

/* Kind of a valid env label; "production", ... from kind_name. */
dd_cf_env_kind dd_cf_env_kind_of(const char *env);
const char *dd_cf_env_kind_name(dd_cf_env_kind kind);

/* 1..40 bytes of [a-z0-9-], first byte [a-z0-9] (the DD_ENV grammar). */
int dd_cf_env_ok(const char *env);

/* One DNS label as above. INVALID with why (may be NULL) otherwise. */
dd_err_t dd_cf_check_label(const char *label, char *why, size_t why_len);

/* Dot-separated labels, each checked, at most 253 bytes in all. */
dd_err_t dd_cf_check_hostname(const char *host, char *why, size_t why_len);

/* A fresh random UUIDv4, canonical lower-case form, into out[37]. */
dd_err_t dd_cf_uuid4(char out[DD_CF_UUID_LEN + 1]);

/*
 * "dd-{env}-{role}-" (role "cp" or "agent"): the prefix that marks a
 * tunnel as this env's. INVALID for a bad env or role.
 */
dd_err_t dd_cf_tunnel_prefix(const char *env, const char *role, char *out,
			     size_t cap);

/* "dd-{env}-{role}-{fresh uuid}"; checked as a DNS label. */
dd_err_t dd_cf_tunnel_name(const char *env, const char *role, char *out,
			   size_t cap, char *why, size_t why_len);

/* "{tunnel name}.{domain}", checked. */
dd_err_t dd_cf_agent_hostname(const char *tunnel_name, const char *domain,
			      char *out, size_t cap, char *why,
			      size_t why_len);

/*
 * label_hostname: "{base}-{label}.{rest}" where base is the host up to its
 * first dot; "{host}-{label}" for a host without a dot. The label and the
 * result are checked (so the flattened first label must fit in 63 bytes).
 */
dd_err_t dd_cf_label_hostname(const char *host, const char *label,
			      char *out, size_t cap, char *why,
			      size_t why_len);

/*
 * agent_api_hostname: the first "-agent-" of the base becomes "-api-";
 * a base without it gets "-agent-api" appended. Checked.
 */
dd_err_t dd_cf_agent_api_hostname(const char *host, char *out, size_t cap,
				  char *why, size_t why_len);

/* agent_api_hostname for label "agent-api", label_hostname otherwise. */
dd_err_t dd_cf_extra_hostname(const char *host, const char *label,
			      char *out, size_t cap, char *why,
			      size_t why_len);

/*
 * from_resource_name: strips a leading "dd-", finds the earliest of
 * "-cp-", "-agent-", "-api-"; the text before it, if a valid env label,
 * goes to env (cap >= DD_CF_ENV_MAX + 1) and 1 is returned; else 0.
 */
int dd_cf_env_from_name(const char *name, char *env, size_t cap);

/* Length of the host part of an Access domain (text before the first /). */
size_t dd_cf_host_len(const char *domain);

#endif
