#include "agent/agent.h"

#include <string.h>

#include <jansson.h>

#include "core/log.h"
#include "net/http.h"
#include "net/service.h"
#include "net/static.h"

struct agent {
	const dd_config *cfg;
	uint64_t started_ms;
	uv_loop_t *loop;
};

/* GET /health on both listeners; the full shape comes with the agent issue. */
static void handle_health(dd_http_req *req, void *ud)
{
	struct agent *a = ud;
	const dd_config *cfg = a->cfg;
	json_t *body;

	body = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}",
			 "ok", 1, "service", "agent", "env", cfg->env,
			 "vm_name", cfg->vm_name, "cp_url", cfg->cp_url,
			 "build", DD_BUILD_SHA, "version", DD_VERSION,
			 "dev", cfg->dev, "uptime_secs",
			 (json_int_t)((uv_now(a->loop) - a->started_ms) / 1000));
	if (body == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	dd_http_respond_json(req, 200, body);
	json_decref(body);
}

static dd_err_t add_listener(dd_service *svc, struct agent *a,
			     const char *label, uint16_t port)
{
	dd_http_server *srv;
	dd_http_route health = {
		.methods = DD_M_GET, .pattern = "/health",
		.handler = handle_health, .ud = a,
	};
	dd_err_t rc;

	rc = dd_service_server(svc, label, &srv);
	if (rc == DD_OK)
		rc = dd_http_server_route(srv, &health);
	if (rc == DD_OK && strcmp(label, "main") == 0)
		rc = dd_static_mount(srv, "/static");
	if (rc == DD_OK)
		rc = dd_service_listen(svc, label, a->cfg->bind_addr, port);
	if (rc) {
		dd_log_err(rc, "starting the agent %s listener on %s:%u", label,
			   a->cfg->bind_addr, (unsigned)port);
		return rc;
	}
	dd_log_info("agent %s listener on http://%s:%u", label,
		    a->cfg->bind_addr, (unsigned)dd_http_server_port(srv));
	return DD_OK;
}

dd_err_t dd_agent_run(const dd_config *cfg)
{
	dd_service *svc = NULL;
	struct agent a = {.cfg = cfg};
	dd_err_t rc;

	rc = dd_service_new(cfg, "agent", &svc);
	if (rc)
		return rc;
	a.loop = dd_service_loop(svc);
	a.started_ms = uv_now(a.loop);
	rc = add_listener(svc, &a, "main", cfg->port);
	if (rc == DD_OK)
		rc = add_listener(svc, &a, "api", cfg->api_port);
	if (rc)
		goto out;
	dd_service_ready(svc);
	rc = dd_service_run(svc);
out:
	dd_service_free(svc);
	return rc;
}
