#include "dev/ita_mode.h"

#include <stdio.h>

#include "attest/local_ita.h"
#include "core/log.h"
#include "net/http.h"
#include "net/service.h"

/*
 * The issuer defaults to the base URL, which is known only once the
 * listener has its (possibly ephemeral) port: hence listen first, then
 * mount. Nothing is served before readiness is reported.
 */
static dd_err_t start(const dd_config *cfg, dd_service *svc,
		      dd_local_ita **ita)
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
	return DD_OK;
}

dd_err_t dd_ita_mode_run(const dd_config *cfg)
{
	dd_service *svc = NULL;
	dd_local_ita *ita = NULL;
	dd_err_t rc;

	rc = dd_service_new(cfg, "ita", &svc);
	if (rc)
		return rc;
	rc = start(cfg, svc, &ita);
	if (rc == DD_OK) {
		dd_service_ready(svc);
		rc = dd_service_run(svc);
	}
	dd_service_free(svc);
	dd_local_ita_free(ita);
	return rc;
}
