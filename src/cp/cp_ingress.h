/*
 * cp_ingress.h: Cloudflare ingress for agents (spec/integrations.md 1.5
 * and 1.6, http-surface.md 3.3 and 3.4): what /register and
 * /ingress/replace ask of the Cloudflare client, and what they store and
 * answer once it is done. cp_register.c decides when; the operations
 * below run the calls, the rest is socket-free.
 *
 * Naming differs from the reference system on purpose: an agent's tunnel
 * is named by its agent id ("dd-{env}-agent-{16 hex of SHA-256(Noise
 * key)}") rather than a fresh UUID, so an agent that registers again with
 * its key gets its own tunnel (and connector token) back instead of a
 * second one; the hostname is "{agent id}.{domain}" as before.
 */
#ifndef DD_CP_CP_INGRESS_H
#define DD_CP_CP_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_names.h"
#include "cloudflare/cf_ops.h"
#include "core/err.h"

/*
 * A request's "extra_ingress" ([{hostname_label, port}], NULL or null for
 * none) as the client's extras, in order. Labels are checked as DNS
 * labels and ports as 1..65535. INVALID with why naming the entry.
 */
dd_err_t dd_cp_ingress_extras(const json_t *list, dd_cf_extra *out,
			      size_t max, size_t *n, char *why,
			      size_t why_len);

/* The settings a plan needs (strings borrowed). */
typedef struct dd_cp_ingress_cfg {
	const char *domain;       /* DD_CF_DOMAIN */
	uint16_t agent_port;      /* DD_CF_AGENT_PORT */
	uint16_t api_port;        /* DD_CF_AGENT_API_PORT */
} dd_cp_ingress_cfg;

/* What one agent's tunnel routes. spec points into this struct. */
typedef struct dd_cp_ingress_plan {
	char host[DD_CF_HOST_MAX + 1];        /* the primary hostname */
	dd_cf_extra extras[DD_CF_MAX_EXTRAS];
	size_t n_extras;
	dd_cf_ingress_spec spec;
} dd_cp_ingress_plan;

/*
 * The plan for agent_id's tunnel: host "{agent_id}.{domain}" when host
 * is NULL (registration), else the recorded host (replacement); extras
 * from list; the ports of cfg. INVALID with why (a label or the host
 * does not make a DNS name).
 */
dd_err_t dd_cp_ingress_plan_make(const dd_cp_ingress_cfg *cfg,
				 const char *agent_id, const char *host,
				 const json_t *list, dd_cp_ingress_plan *p,
				 char *why, size_t why_len);

/*
 * The store's ingress detail of a tunnel agent: {"hostname", "url"
 * ("https://{host}"), "tunnel_name"}. Small on purpose (the store caps
 * it); the extra hostnames follow from the extras. New reference; NULL
 * when out of memory.
 */
json_t *dd_cp_ingress_detail(const char *host, const char *tunnel_name);

/*
 * The /register answer for a tunnel agent: {"agent_id", "hostname",
 * "ingress": {"kind": "tunnel", "hostname", "url", "tunnel_id",
 * "extra_hostnames"}, "tunnel_token"}. extra_hostnames may be NULL ([]).
 * The token is a secret: the caller answers with the object and drops
 * it, never logs it. New reference; NULL when out of memory.
 */
json_t *dd_cp_ingress_reply(const char *agent_id, const char *host,
			    const char *tunnel_id, const json_t *extra_hosts,
			    const char *token);

/*
 * HTTP status for a failed Cloudflare operation: 503 when it was cut
 * short on our side (CANCELLED, CLOSED, BUSY, NOMEM), 502 for everything
 * Cloudflare refused, broke or did not answer in time.
 */
int dd_cp_ingress_status(dd_err_t err);

/*
 * What an operation did. Borrowed for the callback. On err (DD_OK or
 * the failure) msg says what failed, with Cloudflare's own message.
 * tunnel_id, host and token are "" unless set; the token (registration
 * only) is a secret: answer it, never log it. The Access fields tell
 * the legacy app cleanup (spec 1.7, strict), whose failure fails
 * nothing: access_msg is "" when it went well.
 */
typedef struct dd_cp_ingress_result {
	dd_err_t err;
	const char *msg;
	const char *tunnel_id;
	const char *host;
	const char *token;
	const json_t *extra_hostnames;    /* array, never NULL */
	const json_t *removed_hostnames;  /* array, never NULL */
	const char *access_msg;
	size_t access_deleted;
	size_t access_left_alone;         /* wildcards, never deleted */
} dd_cp_ingress_result;

/* Runs exactly once per started operation, on the loop thread. */
typedef void (*dd_cp_ingress_cb)(const dd_cp_ingress_result *res, void *ud);

/*
 * Registration: the plan for agent_id (host "{agent_id}.{domain}", the
 * extras of list), then create-or-reuse the tunnel named agent_id with
 * it (ingress, CNAMEs), then the Access cleanup over the agent's hosts.
 * Start errors mean cb is never called: INVALID with why for a label or
 * name that makes no DNS name; CLOSED, BUSY, NOMEM from the client.
 * A cleanup cut short (CANCELLED, CLOSED: the client shutting down) is
 * the operation's err; any other cleanup failure is only reported.
 */
dd_err_t dd_cp_ingress_register(dd_cf *cf, const dd_cp_ingress_cfg *cfg,
				const char *agent_id, const json_t *list,
				dd_cp_ingress_cb cb, void *ud, char *why,
				size_t why_len);

/*
 * Replacement: applies the plan for host (the recorded one) and list to
 * tunnel_id (the old ingress read, the new put, the CNAMEs upserted,
 * those of dropped hostnames that point at the tunnel deleted), then the
 * Access cleanup. Errors as for dd_cp_ingress_register.
 */
dd_err_t dd_cp_ingress_replace(dd_cf *cf, const dd_cp_ingress_cfg *cfg,
			       const char *agent_id, const char *host,
			       const char *tunnel_id, const json_t *list,
			       dd_cp_ingress_cb cb, void *ud, char *why,
			       size_t why_len);

/*
 * Logs what an operation did, for the handler that decides: the Access
 * cleanup's deletions, wildcards and failure, and the operation's own
 * failure ("{what} of {agent_id}: Cloudflare: ..."). Never the token.
 */
void dd_cp_ingress_log(const char *agent_id, const char *what,
		       const dd_cp_ingress_result *res);

#endif
