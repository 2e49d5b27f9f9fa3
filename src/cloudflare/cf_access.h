/*
 * cf_access.h: removing legacy Cloudflare Access applications that cover
 * hosts DD publishes (spec/integrations.md 1.7).
 *
 * DD creates no Access apps (all auth is in code), but a leftover app
 * would intercept traffic before DD sees it. Two variants:
 *   - strict (CP boot, /register, /ingress/replace): every app matching
 *     the domain set is deleted; the first failed delete fails the whole
 *     cleanup;
 *   - lenient (collector GC): only the app's "domain" field is considered
 *     and every error is swallowed.
 * Unlike the reference system, an app that matches only through a
 * wildcard ("*.example.com" covers every host of the zone) is never
 * deleted: it is reported in "left_alone" for an operator to decide.
 */
#ifndef DD_CLOUDFLARE_CF_ACCESS_H
#define DD_CLOUDFLARE_CF_ACCESS_H

#include <stddef.h>

#include <jansson.h>

#include "cloudflare/cf.h"

typedef enum {
	DD_CF_MATCH_NONE = 0,
	DD_CF_MATCH_WILDCARD,  /* only through "*.suffix" */
	DD_CF_MATCH_EXACT,     /* same string, or same host part */
} dd_cf_match;

/*
 * The CP's domain set: host, label_hostname(host, l) for each label, and
 * host + each CP path. *out is a new array of strings (json_decref).
 */
dd_err_t dd_cf_access_cp_domains(const char *host, const char *const *labels,
				 size_t n_labels, json_t **out);

/*
 * An agent's domain set: its host, its API host, host + each agent path,
 * and extra_hostname(host, l) for every label. New array (json_decref).
 */
dd_err_t dd_cf_access_agent_domains(const char *host,
				    const char *const *labels,
				    size_t n_labels, json_t **out);

/* Domain-matches-target of spec 1.7, telling how it matched. */
dd_cf_match dd_cf_domain_match(const char *app_domain, const char *target);

/*
 * The strongest match of an app (its domain, public destinations and
 * self_hosted_domains) against any target string in domains.
 */
dd_cf_match dd_cf_app_match(const json_t *app, const json_t *domains);

/* The lenient test: only app.domain against the agent's hosts. */
int dd_cf_app_match_lenient(const json_t *app, const char *agent_host);

/*
 * Outcome of a cleanup. report (borrowed during the call) is
 * {"deleted":[{id,name,domain}], "left_alone":[{id,name,domain,reason}],
 *  "failed":[{id,error}]}. err/msg: strict failures (list or delete);
 * lenient cleanups always report DD_OK.
 */
typedef void (*dd_cf_access_cb)(dd_err_t err, const char *msg,
				const json_t *report, void *ud);

/*
 * Strict cleanup over domains (array of strings; copied). An empty set
 * makes no call: the callback then runs before this returns.
 */
dd_err_t dd_cf_access_cleanup_strict(dd_cf *cf, const json_t *domains,
				     dd_cf_access_cb cb, void *ud);

/* Lenient cleanup for one agent host. */
dd_err_t dd_cf_access_cleanup_lenient(dd_cf *cf, const char *agent_host,
				      dd_cf_access_cb cb, void *ud);

#endif
