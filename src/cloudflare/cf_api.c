#include "cloudflare/cf_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_names.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/strutil.h"

#define PATH_MAX_LEN 1024
#define SECRET_BYTES 32

enum scope { ACCOUNT, ZONE };

static dd_err_t path_start(dd_cf *cf, enum scope s, dd_buf *p)
{
	const char *id = s == ACCOUNT ? dd_cf_account(cf) : dd_cf_zone(cf);

	if (id[0] == '\0')
		return DD_ERR_CONFIG;
	return dd_buf_appendf(p, s == ACCOUNT ? "/accounts/%s" : "/zones/%s",
			      id);
}

/* "/accounts/{acct}" or "/zones/{zone}" followed by fmt. */
static dd_err_t build(dd_cf *cf, enum scope s, dd_buf *p, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static dd_err_t build(dd_cf *cf, enum scope s, dd_buf *p, const char *fmt,
		      ...)
{
	va_list ap;
	dd_err_t rc = path_start(cf, s, p);

	if (rc)
		return rc;
	va_start(ap, fmt);
	rc = dd_buf_vappendf(p, fmt, ap);
	va_end(ap);
	return rc;
}

/* A call on one object of the account: "{base}/{id}{suffix}". */
static dd_err_t on_id(dd_cf *cf, enum scope s, const char *method,
		      const char *coll, const char *id, const char *suffix,
		      const json_t *body, dd_cf_cb cb, void *ud)
{
	dd_buf p;
	dd_err_t rc;

	if (!dd_cf_id_ok(id))
		return DD_ERR_INVALID;
	dd_buf_init(&p, PATH_MAX_LEN);
	rc = build(cf, s, &p, "%s/%s%s", coll, id, suffix);
	if (rc == DD_OK)
		rc = dd_cf_call(cf, method, dd_buf_str(&p), body, cb, ud);
	dd_buf_free(&p);
	return rc;
}

/* A paginated list with an optional "key=value" filter (value encoded). */
static dd_err_t list(dd_cf *cf, enum scope s, const char *coll,
		     const char *fixed, const char *key, const char *value,
		     unsigned per_page, dd_cf_cb cb, void *ud)
{
	dd_buf p;
	dd_err_t rc;

	dd_buf_init(&p, PATH_MAX_LEN);
	rc = build(cf, s, &p, "%s%s%s", coll, fixed ? "?" : "",
		   fixed ? fixed : "");
	if (rc == DD_OK && key != NULL)
		rc = dd_buf_appendf(&p, "%c%s=", fixed ? '&' : '?', key);
	if (rc == DD_OK && key != NULL)
		rc = dd_cf_query_append(&p, value);
	if (rc == DD_OK)
		rc = dd_cf_list(cf, dd_buf_str(&p), per_page, cb, ud);
	dd_buf_free(&p);
	return rc;
}

/* --- tunnels ------------------------------------------------------------ */

dd_err_t dd_cf_tunnels_list(dd_cf *cf, dd_cf_cb cb, void *ud)
{
	return list(cf, ACCOUNT, "/cfd_tunnel", "is_deleted=false", NULL, NULL,
		    DD_CF_TUNNEL_PAGE, cb, ud);
}

dd_err_t dd_cf_tunnels_find(dd_cf *cf, const char *name, dd_cf_cb cb,
			    void *ud)
{
	if (dd_cf_check_label(name, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	return list(cf, ACCOUNT, "/cfd_tunnel", "is_deleted=false", "name",
		    name, DD_CF_TUNNEL_PAGE, cb, ud);
}

dd_err_t dd_cf_tunnel_drop_connections(dd_cf *cf, const char *id,
				       dd_cf_cb cb, void *ud)
{
	return on_id(cf, ACCOUNT, "DELETE", "/cfd_tunnel", id, "/connections",
		     NULL, cb, ud);
}

dd_err_t dd_cf_tunnel_delete(dd_cf *cf, const char *id, dd_cf_cb cb,
			     void *ud)
{
	return on_id(cf, ACCOUNT, "DELETE", "/cfd_tunnel", id, "", NULL, cb,
		     ud);
}

dd_err_t dd_cf_tunnel_get(dd_cf *cf, const char *id, dd_cf_cb cb, void *ud)
{
	return on_id(cf, ACCOUNT, "GET", "/cfd_tunnel", id, "", NULL, cb, ud);
}

dd_err_t dd_cf_tunnel_token(dd_cf *cf, const char *id, dd_cf_cb cb,
			    void *ud)
{
	return on_id(cf, ACCOUNT, "GET", "/cfd_tunnel", id, "/token", NULL, cb,
		     ud);
}

dd_err_t dd_cf_tunnel_get_config(dd_cf *cf, const char *id, dd_cf_cb cb,
				 void *ud)
{
	return on_id(cf, ACCOUNT, "GET", "/cfd_tunnel", id, "/configurations",
		     NULL, cb, ud);
}

dd_err_t dd_cf_tunnel_put_config(dd_cf *cf, const char *id,
				 const json_t *ingress, dd_cf_cb cb, void *ud)
{
	json_t *body;
	dd_err_t rc;

	if (!json_is_array(ingress))
		return DD_ERR_INVALID;
	body = json_pack("{s:{s:O}}", "config", "ingress", ingress);
	if (body == NULL)
		return DD_ERR_NOMEM;
	rc = on_id(cf, ACCOUNT, "PUT", "/cfd_tunnel", id, "/configurations",
		   body, cb, ud);
	json_decref(body);
	return rc;
}

dd_err_t dd_cf_tunnel_create(dd_cf *cf, const char *name, dd_cf_cb cb,
			     void *ud)
{
	uint8_t secret[SECRET_BYTES];
	json_t *body = NULL;
	dd_buf p, s64;
	dd_err_t rc;

	if (dd_cf_check_label(name, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	dd_buf_init(&p, PATH_MAX_LEN);
	dd_buf_init(&s64, 128);
	/*
	 * Cloudflare asks for at least 32 bytes; the connector learns the
	 * secret from the token, so DD never needs it again.
	 */
	rc = dd_random_bytes(secret, sizeof secret);
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_STD, secret, sizeof secret, &s64);
	if (rc == DD_OK)
		rc = build(cf, ACCOUNT, &p, "/cfd_tunnel");
	if (rc)
		goto out;
	body = json_pack("{s:s, s:s, s:s}", "name", name, "tunnel_secret",
			 dd_buf_str(&s64), "config_src", "cloudflare");
	if (body == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	rc = dd_cf_call(cf, "POST", dd_buf_str(&p), body, cb, ud);
out:
	memset(secret, 0, sizeof secret);
	json_decref(body);
	dd_buf_freezero(&s64);
	dd_buf_free(&p);
	return rc;
}

/* --- DNS ---------------------------------------------------------------- */

dd_err_t dd_cf_tunnel_target(const char *tunnel_id, char *out, size_t cap)
{
	int n;

	if (!dd_cf_id_ok(tunnel_id))
		return DD_ERR_INVALID;
	n = snprintf(out, cap, "%s.cfargotunnel.com", tunnel_id);
	return n < 0 || (size_t)n >= cap ? DD_ERR_TOO_LARGE : DD_OK;
}

static dd_err_t cname_body(const char *host, const char *tunnel_id,
			   json_t **out)
{
	char target[DD_CF_ID_MAX + 32];
	dd_err_t rc;

	*out = NULL;
	if (dd_cf_check_hostname(host, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	rc = dd_cf_tunnel_target(tunnel_id, target, sizeof target);
	if (rc)
		return rc;
	*out = json_pack("{s:s, s:s, s:s, s:b}", "type", "CNAME", "name", host,
			 "content", target, "proxied", 1);
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

dd_err_t dd_cf_dns_find(dd_cf *cf, const char *host, dd_cf_cb cb, void *ud)
{
	if (dd_cf_check_hostname(host, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	return list(cf, ZONE, "/dns_records", "type=CNAME", "name", host,
		    DD_CF_DNS_PAGE, cb, ud);
}

dd_err_t dd_cf_dns_create(dd_cf *cf, const char *host, const char *tunnel_id,
			  dd_cf_cb cb, void *ud)
{
	json_t *body = NULL;
	dd_buf p;
	dd_err_t rc;

	dd_buf_init(&p, PATH_MAX_LEN);
	rc = cname_body(host, tunnel_id, &body);
	if (rc == DD_OK)
		rc = build(cf, ZONE, &p, "/dns_records");
	if (rc == DD_OK)
		rc = dd_cf_call(cf, "POST", dd_buf_str(&p), body, cb, ud);
	json_decref(body);
	dd_buf_free(&p);
	return rc;
}

dd_err_t dd_cf_dns_update(dd_cf *cf, const char *rec_id, const char *host,
			  const char *tunnel_id, dd_cf_cb cb, void *ud)
{
	json_t *body = NULL;
	dd_err_t rc;

	rc = cname_body(host, tunnel_id, &body);
	if (rc == DD_OK)
		rc = on_id(cf, ZONE, "PUT", "/dns_records", rec_id, "", body,
			   cb, ud);
	json_decref(body);
	return rc;
}

dd_err_t dd_cf_dns_delete(dd_cf *cf, const char *rec_id, dd_cf_cb cb,
			  void *ud)
{
	return on_id(cf, ZONE, "DELETE", "/dns_records", rec_id, "", NULL, cb,
		     ud);
}

dd_err_t dd_cf_dns_list_cnames(dd_cf *cf, dd_cf_cb cb, void *ud)
{
	return list(cf, ZONE, "/dns_records", "type=CNAME", NULL, NULL,
		    DD_CF_DNS_PAGE, cb, ud);
}

/* --- Access ------------------------------------------------------------- */

dd_err_t dd_cf_access_list(dd_cf *cf, dd_cf_cb cb, void *ud)
{
	return list(cf, ACCOUNT, "/access/apps", NULL, NULL, NULL,
		    DD_CF_APPS_PAGE, cb, ud);
}

dd_err_t dd_cf_access_delete(dd_cf *cf, const char *id, dd_cf_cb cb,
			     void *ud)
{
	return on_id(cf, ACCOUNT, "DELETE", "/access/apps", id, "", NULL, cb,
		     ud);
}
