/*
 * cf_api.h: the call catalogue of spec/integrations.md 1.4, one function
 * per Cloudflare endpoint DD uses. Each starts one call on the client
 * (cf.h: timeouts, retries, envelope) and returns at once; the callback
 * gets the envelope's result (lists: every item of every page).
 *
 * Ids passed in are checked (dd_cf_id_ok) before they go into a path,
 * hostnames with dd_cf_check_hostname; query values are percent-encoded.
 * Start errors (callback never called): INVALID for a bad argument,
 * CONFIG when the client has no account id (tunnels, Access) or zone id
 * (DNS), and whatever dd_cf_call returns.
 */
#ifndef DD_CLOUDFLARE_CF_API_H
#define DD_CLOUDFLARE_CF_API_H

#include <jansson.h>

#include "cloudflare/cf.h"

#define DD_CF_TUNNEL_PAGE 200u
#define DD_CF_DNS_PAGE 500u
#define DD_CF_APPS_PAGE 100u

/* --- tunnels: /accounts/{acct}/cfd_tunnel ------------------------------ */

/* Every tunnel not soft-deleted (C1), all pages. */
dd_err_t dd_cf_tunnels_list(dd_cf *cf, dd_cf_cb cb, void *ud);
/* Tunnels not soft-deleted with exactly this name (C2), all pages. */
dd_err_t dd_cf_tunnels_find(dd_cf *cf, const char *name, dd_cf_cb cb,
			    void *ud);
/* Drops the tunnel's connector connections (C3). */
dd_err_t dd_cf_tunnel_drop_connections(dd_cf *cf, const char *id,
				       dd_cf_cb cb, void *ud);
/* Deletes the tunnel (C4); Cloudflare refuses while connections remain. */
dd_err_t dd_cf_tunnel_delete(dd_cf *cf, const char *id, dd_cf_cb cb,
			     void *ud);
/*
 * Creates a remotely managed tunnel (C5: config_src "cloudflare") with a
 * fresh 32-byte secret. Result: the tunnel object (id, name, token...).
 */
dd_err_t dd_cf_tunnel_create(dd_cf *cf, const char *name, dd_cf_cb cb,
			     void *ud);
/* Replaces the tunnel's ingress (C6): body {"config":{"ingress":...}}. */
dd_err_t dd_cf_tunnel_put_config(dd_cf *cf, const char *id,
				 const json_t *ingress, dd_cf_cb cb, void *ud);
/* The tunnel's current configuration (result.config.ingress). */
dd_err_t dd_cf_tunnel_get_config(dd_cf *cf, const char *id, dd_cf_cb cb,
				 void *ud);
/* One tunnel (C14): result.deleted_at, connections, ... */
dd_err_t dd_cf_tunnel_get(dd_cf *cf, const char *id, dd_cf_cb cb, void *ud);
/* The connector token (result is a string). */
dd_err_t dd_cf_tunnel_token(dd_cf *cf, const char *id, dd_cf_cb cb,
			    void *ud);

/* --- DNS: /zones/{zone}/dns_records ------------------------------------ */

/* CNAME records named host (C7), all pages. */
dd_err_t dd_cf_dns_find(dd_cf *cf, const char *host, dd_cf_cb cb, void *ud);
/* A proxied CNAME host -> {tunnel_id}.cfargotunnel.com (C8). */
dd_err_t dd_cf_dns_create(dd_cf *cf, const char *host, const char *tunnel_id,
			  dd_cf_cb cb, void *ud);
/* Replaces record rec_id with that CNAME (C9). */
dd_err_t dd_cf_dns_update(dd_cf *cf, const char *rec_id, const char *host,
			  const char *tunnel_id, dd_cf_cb cb, void *ud);
/* Deletes record rec_id (C10). */
dd_err_t dd_cf_dns_delete(dd_cf *cf, const char *rec_id, dd_cf_cb cb,
			  void *ud);
/* Every CNAME of the zone (C11), all pages. */
dd_err_t dd_cf_dns_list_cnames(dd_cf *cf, dd_cf_cb cb, void *ud);

/* --- Access: /accounts/{acct}/access/apps ------------------------------ */

/* Every Access application of the account (C12), all pages. */
dd_err_t dd_cf_access_list(dd_cf *cf, dd_cf_cb cb, void *ud);
/* Deletes one Access application (C13). */
dd_err_t dd_cf_access_delete(dd_cf *cf, const char *id, dd_cf_cb cb,
			     void *ud);

/* "{tunnel_id}.cfargotunnel.com" into out (cap >= DD_CF_ID_MAX + 20). */
dd_err_t dd_cf_tunnel_target(const char *tunnel_id, char *out, size_t cap);

#endif
