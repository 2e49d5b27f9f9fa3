#include "cp/cp.h"

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http.h"
#include "net/service.h"
#include "net/static.h"

struct dd_cp {
	const dd_config *cfg;
	uint64_t started_ms;
	uv_loop_t *loop;
	/*
	 * /health is polled constantly (collectors, load balancers); its
	 * body only changes with uptime_secs, so it is rendered once a second.
	 */
	dd_buf health;
	uint64_t health_sec;
};

static dd_err_t render_health(dd_cp *cp, uint64_t uptime)
{
	const dd_config *cfg = cp->cfg;
	json_t *body;
	dd_err_t rc;

	body = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}",
			 "ok", 1, "service", "cp", "env", cfg->env,
			 "hostname", cfg->hostname ? cfg->hostname : cfg->vm_name,
			 "vm_name", cfg->vm_name, "build", DD_BUILD_SHA,
			 "version", DD_VERSION, "dev", cfg->dev,
			 "uptime_secs", (json_int_t)uptime);
	if (body == NULL)
		return DD_ERR_NOMEM;
	dd_buf_reset(&cp->health);
	rc = dd_json_append(&cp->health, body);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(&cp->health, '\n');
	json_decref(body);
	return rc;
}

/* GET /health: public liveness and identity; grows with later issues. */
static void handle_health(dd_http_req *req, void *ud)
{
	dd_cp *cp = ud;
	uint64_t uptime = (uv_now(cp->loop) - cp->started_ms) / 1000;
	dd_err_t rc;

	if (cp->health.len == 0 || uptime != cp->health_sec) {
		rc = render_health(cp, uptime);
		if (rc) {
			dd_buf_reset(&cp->health);
			dd_http_respond_err(req, rc, NULL);
			return;
		}
		cp->health_sec = uptime;
	}
	dd_http_respond(req, 200, "application/json", cp->health.data,
			cp->health.len);
}

dd_err_t dd_cp_new(const dd_config *cfg, uv_loop_t *loop, dd_cp **out)
{
	dd_cp *cp = dd_calloc(1, sizeof *cp);

	*out = NULL;
	if (cp == NULL)
		return DD_ERR_NOMEM;
	cp->cfg = cfg;
	cp->loop = loop;
	dd_buf_init(&cp->health, 64 * 1024);
	cp->started_ms = uv_now(loop);
	*out = cp;
	return DD_OK;
}

void dd_cp_free(dd_cp *cp)
{
	if (cp == NULL)
		return;
	dd_buf_free(&cp->health);
	dd_free(cp);
}

dd_err_t dd_cp_mount(dd_cp *cp, dd_http_server *srv)
{
	const dd_http_route routes[] = {
		{.methods = DD_M_GET, .pattern = "/health",
		 .handler = handle_health, .ud = cp},
	};
	dd_err_t rc = DD_OK;

	for (size_t i = 0; rc == DD_OK && i < sizeof routes / sizeof routes[0]; i++)
		rc = dd_http_server_route(srv, &routes[i]);
	if (rc == DD_OK)
		rc = dd_static_mount(srv, "/static");
	return rc;
}

dd_err_t dd_cp_run(const dd_config *cfg)
{
	dd_service *svc = NULL;
	dd_http_server *srv;
	dd_cp *cp = NULL;
	dd_err_t rc;

	rc = dd_service_new(cfg, "cp", &svc);
	if (rc)
		return rc;
	rc = dd_cp_new(cfg, dd_service_loop(svc), &cp);
	if (rc == DD_OK)
		rc = dd_service_server(svc, "main", &srv);
	if (rc == DD_OK)
		rc = dd_cp_mount(cp, srv);
	if (rc == DD_OK)
		rc = dd_service_listen(svc, "main", cfg->bind_addr, cfg->port);
	if (rc) {
		dd_log_err(rc, "starting the CP listener on %s:%u", cfg->bind_addr,
			   (unsigned)cfg->port);
		goto out;
	}
	dd_log_info("cp listening on http://%s:%u env=%s", cfg->bind_addr,
		    (unsigned)dd_http_server_port(srv), cfg->env);
	dd_service_ready(svc);
	rc = dd_service_run(svc);
out:
	dd_service_free(svc);
	dd_cp_free(cp);
	return rc;
}
