#include "dev/ita_mode.h"

#include <stdio.h>

#include "attest/local_ita.h"
#include "auth/local_oidc.h"
#include "auth/principal.h"
#include "core/log.h"
#include "net/http.h"
#include "net/service.h"

/*
 * The issuer defaults to the base URL, which is known only once the
 * listener has its (possibly ephemeral) port: hence listen first, then
 * mount. Nothing is served before readiness is reported.
 */
/*
 * With an owner and a request token, the same process stands in for
 * GitHub Actions' OIDC issuer under /oidc (dev fleets deploy through it).
 */
static dd_err_t start_oidc(const dd_config *cfg, dd_http_server *srv,
			   const char *base, dd_local_oidc **oidc)
{
	dd_principal owner;
	char issuer[160], why[160];
	dd_local_oidc_opts o = {.env = cfg->env, .issuer = issuer,
				.prefix = "/oidc",
				.request_token = cfg->oidc_request_token,
				.owner = &owner};
	dd_err_t rc;

	if (cfg->oidc_request_token == NULL || cfg->owner == NULL)
		return DD_OK;
	snprintf(issuer, sizeof issuer, "%s/oidc", base);
	rc = dd_principal_make((dd_principal_kind)cfg->owner_kind, cfg->owner,
			       cfg->owner_id, &owner, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "the local OIDC issuer's owner: %s", why);
		return rc;
	}
	rc = dd_local_oidc_new(&o, oidc);
	if (rc == DD_OK)
		rc = dd_local_oidc_mount(*oidc, srv);
	if (rc)
		dd_log_err(rc, "starting the local OIDC issuer");
	else
		dd_log_info("local GitHub Actions OIDC issuer (development only) "
			    "at %s, tokens for %s", issuer, owner.name);
	return rc;
}

static dd_err_t start(const dd_config *cfg, dd_service *svc,
		      dd_local_ita **ita, dd_local_oidc **oidc)
{
	dd_http_server *srv;
	char base[96];
	dd_local_ita_opts o = {.env = cfg->env, .api_key = cfg->ita_api_key};
	dd_err_t rc;

	rc = dd_service_server(svc, "main", &srv);
	if (rc == DD_OK)
		rc = dd_service_listen(svc, "main", cfg->bind_addr, cfg->port);
	if (rc) {
		dd_log_err(rc, "starting the local ITA listener on %s:%u",
			   cfg->bind_addr, (unsigned)cfg->port);
		return rc;
	}
	snprintf(base, sizeof base, "http://%s:%u", cfg->bind_addr,
		 (unsigned)dd_http_server_port(srv));
	o.issuer = cfg->ita_issuer ? cfg->ita_issuer : base;
	rc = dd_local_ita_new(&o, ita);
	if (rc == DD_OK)
		rc = dd_local_ita_mount(*ita, srv);
	if (rc) {
		dd_log_err(rc, "starting the local ITA");
		return rc;
	}
	dd_log_info("local ITA (development only) at %s: attest at "
		    "%s/appraisal/v1/attest, keys at %s/certs, issuer %s",
		    base, base, base, o.issuer);
	return start_oidc(cfg, srv, base, oidc);
}

dd_err_t dd_ita_mode_run(const dd_config *cfg)
{
	dd_service *svc = NULL;
	dd_local_ita *ita = NULL;
	dd_local_oidc *oidc = NULL;
	dd_err_t rc;

	rc = dd_service_new(cfg, "ita", &svc);
	if (rc)
		return rc;
	rc = start(cfg, svc, &ita, &oidc);
	if (rc == DD_OK) {
		dd_service_ready(svc);
		rc = dd_service_run(svc);
	}
	dd_service_free(svc);
	dd_local_ita_free(ita);
	dd_local_oidc_free(oidc);
	return rc;
}
