/*
 * cf_ops.h: the composite Cloudflare operations of spec/integrations.md
 * 1.5, built from the catalogue calls (cf_api.h).
 *
 * Differences from the reference system, on purpose:
 *   - service ports come from the caller (configuration), never fixed;
 *   - a tunnel is created or reused by name (a retried /register does
 *     not leave a second tunnel behind);
 *   - replacing ingress also deletes the CNAMEs of extras that were
 *     dropped, but only records that point at this very tunnel;
 *   - a failed CNAME lookup fails the upsert instead of passing for "not
 *     found" (which led to "record already exists").
 *
 * Every operation reports once through dd_cf_op_cb with a JSON result
 * (borrowed for the call). Start errors mean the callback is never
 * called: INVALID with why filled for bad names, labels or ports.
 */
#ifndef DD_CLOUDFLARE_CF_OPS_H
#define DD_CLOUDFLARE_CF_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_names.h"

#define DD_CF_MAX_EXTRAS 32

typedef struct dd_cf_extra {
	char label[DD_CF_LABEL_MAX + 1];
	uint16_t port;   /* 1..65535 */
} dd_cf_extra;

/* What a tunnel routes. Strings are copied by the functions below. */
typedef struct dd_cf_ingress_spec {
	const char *primary;     /* primary hostname */
	uint16_t primary_port;   /* localhost port behind the primary */
	/*
	 * Non-zero: the "agent-api" extra on this port is added unless the
	 * extras already carry that label. Zero for the CP's own tunnel.
	 */
	uint16_t api_port;
	const dd_cf_extra *extras;
	size_t n_extras;         /* at most DD_CF_MAX_EXTRAS */
} dd_cf_ingress_spec;

/*
 * The ingress rules in Cloudflare's order: one per extra (in the given
 * order, agent-api last if added), then the primary, then the
 * http_status:404 catch-all. *hostnames gets the extra hostnames in the
 * same order. Both new arrays (json_decref). INVALID with why.
 */
dd_err_t dd_cf_ingress_build(const dd_cf_ingress_spec *s, json_t **rules,
			     json_t **hostnames, char *why, size_t why_len);

/*
 * err is DD_OK or the failure, msg "" or its text; result is described
 * per operation. The result of a tunnel creation holds the connector
 * token: a secret, never to be logged.
 */
typedef void (*dd_cf_op_cb)(dd_err_t err, const char *msg,
			    const json_t *result, void *ud);

/*
 * Create-or-reuse: finds tunnels named name; reuses the first (its token
 * from the token endpoint), or creates one (config_src "cloudflare");
 * then applies the ingress. Result {"id","name","token","hostname",
 * "extra_hostnames":[...],"removed_hostnames":[...],"reused":bool}.
 */
dd_err_t dd_cf_op_create_tunnel(dd_cf *cf, const char *name,
				const dd_cf_ingress_spec *s, dd_cf_op_cb cb,
				void *ud, char *why, size_t why_len);

/*
 * Reads the tunnel's current ingress, puts the new one, upserts the
 * CNAMEs (primary first, then each extra), then deletes the CNAMEs of
 * hostnames the old ingress had and the new one lacks, if they point at
 * this tunnel. Result {"extra_hostnames":[...],"removed_hostnames":[...]}.
 */
dd_err_t dd_cf_op_apply_ingress(dd_cf *cf, const char *tunnel_id,
				const dd_cf_ingress_spec *s, dd_cf_op_cb cb,
				void *ud, char *why, size_t why_len);

/*
 * Deletes every tunnel named name, dropping its connections first
 * (Cloudflare refuses to delete a connected tunnel). Result
 * {"deleted":[ids],"failed":[{id,error}]}; err is the first failure.
 */
dd_err_t dd_cf_op_delete_tunnel(dd_cf *cf, const char *name, dd_cf_op_cb cb,
				void *ud);

/*
 * Points host at the tunnel: updates the existing CNAME or creates one.
 * Result {"record_id","action":"created"|"updated"|"unchanged"}.
 */
dd_err_t dd_cf_op_upsert_cname(dd_cf *cf, const char *host,
			       const char *tunnel_id, dd_cf_op_cb cb, void *ud);

/*
 * Deletes the CNAMEs named host; with tunnel_id, only those pointing at
 * that tunnel. Result {"deleted":[ids]}; err is the first failure.
 */
dd_err_t dd_cf_op_delete_cname(dd_cf *cf, const char *host,
			       const char *tunnel_id, dd_cf_op_cb cb,
			       void *ud);

/*
 * Parses "label:port,label:port" (whitespace and empty entries
 * tolerated) into extras. INVALID with why for a missing colon, a bad
 * label, a port outside 1..65535 or more than max entries.
 */
dd_err_t dd_cf_extras_parse(const char *s, dd_cf_extra *out, size_t max,
			    size_t *n, char *why, size_t why_len);

#endif
