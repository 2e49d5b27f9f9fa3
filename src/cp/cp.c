#include "cp/cp.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "attest/attest_setup.h"
#include "attest/attestor.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "cp/cp_api.h"
#include "cp/cp_attest.h"
#include "cp/cp_auth.h"
#include "cp/cp_cf.h"
#include "cp/cp_collect.h"
#include "cp/cp_discover.h"
#include "cp/cp_enroll.h"
#include "cp/cp_hydrate.h"
#include "cp/cp_pages.h"
#include "cp/cp_reap.h"
#include "cp/cp_register.h"
#include "cp/cp_self.h"
#include "cp/cp_stonith.h"
#include "cp/store.h"
#include "net/http.h"
#include "net/httpc.h"
#include "net/ndjson.h"
#include "net/service.h"
#include "net/static.h"

struct dd_cp {
	const dd_config *cfg;
	uint64_t started_ms;
	uv_loop_t *loop;
	/*
	 * /health is polled constantly (collectors, load balancers); its
	 * body changes only with uptime_secs and token refreshes, so it is
	 * rendered at most once a second.
	 */
	dd_buf health;
	uint64_t health_sec;
	dd_attestor *att;       /* NULL in tests that mount only /health */
	dd_cp_attest *attest;
	dd_store *store;        /* NULL likewise */
	dd_cp_stonith *stonith; /* NULL without Cloudflare */
};

/*
 * What this CP is, as attested: enough for a reader to see whether the
 * fleet runs on simulated quotes and whether measurements are pinned.
 */
static json_t *attestation_json(const dd_cp *cp)
{
	const dd_ita_verdict *v = dd_attestor_verdict(cp->att);
	const char *kind = dd_quote_provider_kind(dd_attestor_provider(cp->att));

	if (v == NULL)
		return json_pack("{s:s, s:b, s:b}", "provider", kind,
				 "simulated", strcmp(kind, "simulated") == 0,
				 "token", 0);
	return json_pack("{s:s, s:b, s:b, s:s, s:s, s:s, s:b, s:I}",
			 "provider", kind,
			 "simulated", strcmp(kind, "simulated") == 0,
			 "token", 1, "mrtd", v->claims.mrtd,
			 "tcb_status", v->claims.tcb_status,
			 "pinning", dd_pin_verdict_name(v->pin),
			 "enforced", cp->cfg->measurement_enforce,
			 "token_exp", (json_int_t)v->claims.exp);
}

/* The fleet at a glance (spec 3.2): what CI and dashboards poll. */
static dd_err_t add_counts(const dd_cp *cp, json_t *body)
{
	dd_store_counts c;
	dd_err_t rc = dd_store_count(cp->store, &c);

	/* A busy or closing store is no reason to fail /health. */
	if (rc)
		return rc == DD_ERR_NOMEM ? rc : DD_OK;
	if (json_object_set_new(body, "agent_count",
				json_integer((json_int_t)c.agents)) ||
	    json_object_set_new(body, "healthy_count",
				json_integer((json_int_t)
					     c.by_status[DD_AGENT_HEALTHY])) ||
	    json_object_set_new(body, "registering_count",
				json_integer((json_int_t)
					     c.by_status[DD_AGENT_REGISTERING])))
		return DD_ERR_NOMEM;
	return DD_OK;
}

static json_t *health_json(const dd_cp *cp, uint64_t uptime, int verbose)
{
	const dd_config *cfg = cp->cfg;
	json_t *body;

	body = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:s}",
			 "ok", 1, "service", "cp", "env", cfg->env,
			 "hostname", cfg->hostname ? cfg->hostname : cfg->vm_name,
			 "vm_name", cfg->vm_name, "build", DD_BUILD_SHA,
			 "version", DD_VERSION, "dev", cfg->dev,
			 "uptime_secs", (json_int_t)uptime,
			 "ita_mode", cfg->ita_mode == DD_ITA_LOCAL ? "local"
								    : "intel");
	/* serving, draining or evicted (STONITH; always serving without it) */
	if (body != NULL &&
	    json_object_set_new(body, "stonith",
				json_string(dd_cp_stonith_state(cp->stonith)))) {
		json_decref(body);
		return NULL;
	}
	if (body != NULL && cp->store != NULL && add_counts(cp, body) != DD_OK) {
		json_decref(body);
		return NULL;
	}
	if (body == NULL || cp->att == NULL)
		return body;
	if (json_object_set_new(body, "attestation", attestation_json(cp)) != 0)
		goto nomem;
	/* The token is public by design; verbose keeps /health small. */
	if (verbose && dd_attestor_token(cp->att) != NULL &&
	    (json_object_set_new(body, "cp_ita",
				 json_string(dd_attestor_token(cp->att))) != 0 ||
	     json_object_set(body, "cp_ita_claims",
			     dd_attestor_claims_json(cp->att)) != 0))
		goto nomem;
	return body;
nomem:
	json_decref(body);
	return NULL;
}

static dd_err_t render_health(dd_cp *cp, uint64_t uptime, int verbose,
			      dd_buf *out)
{
	json_t *body = health_json(cp, uptime, verbose);
	dd_err_t rc;

	if (body == NULL)
		return DD_ERR_NOMEM;
	dd_buf_reset(out);
	rc = dd_json_append(out, body);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(out, '\n');
	json_decref(body);
	return rc;
}

static void respond_verbose(dd_cp *cp, dd_http_req *req, uint64_t uptime)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, 256 * 1024);
	rc = render_health(cp, uptime, 1, &b);
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond(req, 200, "application/json", b.data, b.len);
	dd_buf_free(&b);
}

/*
 * GET /health: public liveness and identity; ?verbose=1 (exactly) adds
 * the CP's ITA token and its verified claims.
 */
static void handle_health(dd_http_req *req, void *ud)
{
	dd_cp *cp = ud;
	uint64_t uptime = (uv_now(cp->loop) - cp->started_ms) / 1000;
	const char *verbose = dd_http_req_query(req, "verbose");
	dd_err_t rc;

	if (verbose != NULL && strcmp(verbose, "1") == 0) {
		respond_verbose(cp, req, uptime);
		return;
	}
	if (cp->health.len == 0 || uptime != cp->health_sec) {
		rc = render_health(cp, uptime, 0, &cp->health);
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
	dd_cp_attest_free(cp->attest);
	dd_buf_free(&cp->health);
	dd_free(cp);
}

void dd_cp_set_attestor(dd_cp *cp, dd_attestor *att)
{
	cp->att = att;
}

void dd_cp_set_store(dd_cp *cp, dd_store *store)
{
	cp->store = store;
}

dd_err_t dd_cp_mount(dd_cp *cp, dd_http_server *srv)
{
	const dd_http_route health = {.methods = DD_M_GET, .pattern = "/health",
				      .handler = handle_health, .ud = cp};
	dd_err_t rc;

	rc = dd_http_server_route(srv, &health);
	if (rc == DD_OK)
		rc = dd_static_mount(srv, "/static");
	return rc;
}

static void health_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	handle_health(req, ud);
}

static void static_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	dd_static_serve(req, ud);
}

dd_err_t dd_cp_mount_authz(dd_cp *cp, dd_authz *authz, dd_http_server *srv,
			   const dd_authz_route *extra, size_t n_extra,
			   char *why, size_t why_len)
{
	dd_authz_route routes[DD_CP_MAX_ROUTES];
	size_t n = 0;
	dd_err_t rc;

	if (n_extra > DD_CP_MAX_ROUTES - 3)
		return DD_ERR_TOO_LARGE;
	routes[n++] = (dd_authz_route){DD_M_GET, "/health", health_route, cp,
				       0, 0};
	routes[n++] = (dd_authz_route){DD_M_GET, "/static/{path*}",
				       static_route, NULL, 0, 0};
	if (cp->att != NULL) {
		rc = dd_cp_attest_new(cp->loop, cp->att, &cp->attest);
		if (rc)
			return rc;
		routes[n++] = dd_cp_attest_route(cp->attest);
	}
	for (size_t i = 0; i < n_extra; i++)
		routes[n++] = extra[i];
	return dd_authz_mount(authz, srv, routes, n, why, why_len);
}

/* --- the cp mode: boot, serve, stop ------------------------------------ */

struct boot {
	const dd_config *cfg;
	dd_service *svc;
	dd_http_server *srv;
	dd_cp *cp;
	dd_httpc *http;
	dd_ndjson *ee;
	dd_attestor *att;
	dd_cp_auth *auth;
	dd_cp_register *reg;
	dd_store *store;
	int store_closed;
	dd_cp_collect *collect;
	dd_cp_api *api;          /* /api/agents, the export */
	dd_cp_self *self;        /* the control-plane entry */
	dd_cp_hydrate *hydrate;  /* the predecessor's export, at boot */
	dd_cp_pages *pages;      /* the dashboard */
	int clients_closed;
	dd_cp_stonith *stonith;  /* our tunnel, cloudflared; NULL without CF */
	dd_cf *cf;               /* the views' client; NULL without CF */
	dd_cp_cf *cf_views;      /* the /admin/cf views; NULL without CF */
	dd_cp_reap *reap;        /* orphan reaping; NULL without CF */
	dd_cp_discover *disc;    /* unknown agent tunnels; NULL without CF */
	dd_err_t err;       /* why the boot failed, DD_OK otherwise */
};

static void listen_and_serve(struct boot *b)
{
	const dd_config *cfg = b->cfg;
	dd_err_t rc;

	rc = dd_service_listen(b->svc, "main", cfg->bind_addr, cfg->port);
	if (rc) {
		dd_log_err(rc, "starting the CP listener on %s:%u",
			   cfg->bind_addr, (unsigned)cfg->port);
		b->err = rc;
		dd_service_stop(b->svc);
		return;
	}
	rc = dd_cp_auth_listening(b->auth, dd_http_server_port(b->srv));
	if (rc) {
		dd_log_err(rc, "setting the CP's public origin");
		b->err = rc;
		dd_service_stop(b->svc);
		return;
	}
	dd_log_info("cp listening on http://%s:%u env=%s", cfg->bind_addr,
		    (unsigned)dd_http_server_port(b->srv), cfg->env);
	dd_cp_collect_start(b->collect);
	dd_service_ready(b->svc);
	/* Spec 2.1: tunnel (the DNS cut-over) only once we can serve it. */
	if (b->stonith != NULL)
		dd_cp_stonith_start(b->stonith, dd_http_server_port(b->srv));
}

/*
 * Spec 1.2 steps 5 and 10: the predecessor's export first (if one is
 * configured), then our own entry over whatever it brought, then serve.
 */
static void serve(void *ud)
{
	listen_and_serve(ud);
}

static void on_hydrated(dd_err_t err, size_t imported, const char *why,
			void *ud)
{
	struct boot *b = ud;

	if (err)
		dd_log_warn("hydrate from %s failed, booting with our own "
			    "store: %s", b->cfg->predecessor_url, why);
	else
		dd_log_info("hydrated %zu agents from %s", imported,
			    b->cfg->predecessor_url);
	dd_cp_self_seed(b->self, serve, b);
}

static void hydrate_then_serve(struct boot *b)
{
	dd_cp_hydrate_opts ho = {.url = b->cfg->predecessor_url,
				 .http = b->http, .att = b->att,
				 .store = b->store};
	dd_err_t rc;

	if (b->cfg->predecessor_url == NULL) {
		dd_cp_self_seed(b->self, serve, b);
		return;
	}
	rc = dd_cp_hydrate_start(&ho, on_hydrated, b, &b->hydrate);
	if (rc)
		on_hydrated(rc, 0, "cannot start the request", b);
}

/*
 * The boot round decides whether the CP starts at all: a CP that cannot
 * prove what it runs must not serve (in production the caller powers the
 * VM off). Later rounds only keep the token fresh.
 */
static void on_round(dd_err_t err, int first, const char *why, void *ud)
{
	struct boot *b = ud;
	const dd_ita_verdict *v = dd_attestor_verdict(b->att);

	if (err && first) {
		dd_log_err(err, "attestation at boot failed: %s", why);
		b->err = err;
		dd_service_stop(b->svc);
		return;
	}
	if (err) {
		dd_log_warn("token refresh failed, keeping the current token: %s",
			    why);
		return;
	}
	if (v->pin != DD_PIN_PASS && v->pin != DD_PIN_UNPINNED)
		dd_log_warn("own measurements do not match the policy "
			    "(not enforced): %s", v->why);
	if (!first) {
		dd_cp_self_refresh(b->self);
		return;
	}
	dd_log_info("attested: provider=%s mrtd=%s tcb=%s pinning=%s",
		    dd_quote_provider_kind(dd_attestor_provider(b->att)),
		    v->claims.mrtd, v->claims.tcb_status[0]
		    ? v->claims.tcb_status : "-", dd_pin_verdict_name(v->pin));
	hydrate_then_serve(b);
}

static void on_shutdown(void *ud)
{
	struct boot *b = ud;

	dd_cp_stonith_shutdown(b->stonith);
	/* The collector verifies with the attestor: it goes first. */
	dd_cp_collect_free(b->collect);
	b->collect = NULL;
	/* Before the store closes: no store read, no new delete. */
	dd_cp_reap_stop(b->reap);
	dd_cp_discover_stop(b->disc);
	dd_cp_hydrate_cancel(b->hydrate);
	b->hydrate = NULL;
	dd_cp_self_close(b->self);
	/* Nothing may reach the attestor once it starts closing. */
	if (b->cp->attest != NULL)
		dd_cp_attest_detach(b->cp->attest);
	dd_cp_set_attestor(b->cp, NULL);
	dd_attestor_free(b->att);
	b->att = NULL;
	dd_cp_auth_close(b->auth);
}

static void close_store(struct boot *b)
{
	if (b->store_closed)
		return;
	b->store_closed = 1;
	if (b->cp != NULL)
		dd_cp_set_store(b->cp, NULL);
	/* Queued writes finish (and answer their requests) first. */
	dd_store_close(b->store, NULL, NULL);
	b->store = NULL;
}

static void on_drained(void *ud)
{
	struct boot *b = ud;

	close_store(b);
	if (b->clients_closed)
		return;
	b->clients_closed = 1;
	/* Views still waiting for Cloudflare are answered now. */
	dd_cf_shutdown(b->cf);
	if (b->ee != NULL)
		dd_ndjson_close(b->ee, NULL, NULL);
	if (b->http != NULL)
		dd_httpc_close(b->http, NULL, NULL);
	/* An evicted CP powers off here, drained (spec 2.6's port note). */
	dd_cp_stonith_drained(b->stonith);
}

static void stonith_drain(void *ud)
{
	struct boot *b = ud;

	dd_service_stop(b->svc);
}

/* Only with Cloudflare configured; without it the CP is as before. */
static dd_err_t make_stonith(struct boot *b, char *why, size_t why_len)
{
	char self[4096];
	size_t n = sizeof self;
	dd_cp_stonith_opts o = {.cfg = b->cfg, .http = b->http,
				.drain = stonith_drain, .ud = b};

	if (!dd_cp_stonith_configured(b->cfg))
		return DD_OK;
	/* Our own binary is cloudflared's trampoline (PDEATHSIG). */
	if (uv_exepath(self, &n) == 0)
		o.self_exe = self;
	return dd_cp_stonith_new(dd_service_loop(b->svc), &o, &b->stonith, why,
				 why_len);
}

static dd_err_t make_clients(struct boot *b)
{
	const dd_config *cfg = b->cfg;
	uv_loop_t *loop = dd_service_loop(b->svc);
	dd_httpc_opts ho = {.ca_file = cfg->ca_file,
			    .timeout_ms = cfg->outbound_timeout_ms,
			    .max_response = cfg->outbound_max_response};
	dd_ndjson_opts eo = {.path = cfg->ee_socket, .token = cfg->ee_token,
			     .timeout_ms = 60000};
	dd_err_t rc;

	rc = dd_httpc_new(loop, &ho, &b->http);
	if (rc == DD_OK && cfg->quote_provider == DD_PROVIDER_EE)
		rc = dd_ndjson_new(loop, &eo, &b->ee);
	return rc;
}

/* /api/agents and the export, behind the same authorization table. */
static dd_err_t mount_api(struct boot *b, char *why, size_t why_len)
{
	dd_authz_route routes[DD_CP_API_ROUTES];
	size_t n;
	dd_err_t rc;

	rc = dd_cp_api_new(dd_service_loop(b->svc), &(dd_cp_api_opts){
				   .store = b->store, .att = b->att,
				   .reg = b->reg}, &b->api);
	if (rc)
		return rc;
	n = dd_cp_api_routes(b->api, routes);
	rc = dd_authz_mount(dd_cp_auth_authz(b->auth), b->srv, routes, n, why,
			    why_len);
	if (rc)
		dd_log_err(rc, "mounting the fleet API: %s", why);
	return rc;
}

/* GET /admin/cf/snapshot and /map: only with Cloudflare configured. */
static dd_err_t make_cf_views(struct boot *b, char *why, size_t why_len)
{
	const dd_config *cfg = b->cfg;
	dd_cf_extra ex[DD_CF_MAX_EXTRAS];
	const char *labels[DD_CF_MAX_EXTRAS];
	dd_cf_opts co;
	size_t n = 0;
	dd_err_t rc;

	dd_cf_opts_from_config(cfg, &co);
	if (co.api_token == NULL)
		return DD_OK;
	if (cfg->hostname == NULL) {
		snprintf(why, why_len, "DD_HOSTNAME is needed with Cloudflare");
		return DD_ERR_CONFIG;
	}
	rc = dd_cf_extras_parse(cfg->cf.cp_extras ? cfg->cf.cp_extras : "", ex,
				DD_CF_MAX_EXTRAS, &n, why, why_len);
	for (size_t i = 0; rc == DD_OK && i < n; i++)
		labels[i] = ex[i].label;
	if (rc == DD_OK)
		rc = dd_cf_new(b->http, &co, &b->cf, why, why_len);
	if (rc == DD_OK)
		rc = dd_cp_cf_new(&(dd_cp_cf_opts){
			.cf = b->cf, .store = b->store, .env = cfg->env,
			.cp_hostname = cfg->hostname,
			.account_id = cfg->cf.account_id,
			.zone_id = cfg->cf.zone_id, .cp_labels = labels,
			.n_cp_labels = n}, &b->cf_views);
	return rc;
}

static dd_err_t mount(struct boot *b, char *why, size_t why_len)
{
	dd_authz_route extra[DD_CP_ENROLL_ROUTES + DD_CP_AUTH_ROUTES +
			     DD_REG_ROUTES +
			     DD_CP_PAGES_ROUTES + DD_CP_CF_ROUTES];
	size_t n = dd_cp_auth_routes(b->auth, extra);
	dd_cp_register_opts ro = {.env = b->cfg->env, .att = b->att,
				  .store = b->store, .dev = b->cfg->dev};
	dd_err_t rc;

	/* Registration creates agents' tunnels with the views' client. */
	rc = make_cf_views(b, why, why_len);
	if (rc)
		return rc;
	ro.cf = b->cf;
	ro.cf_domain = b->cfg->cf_domain;
	ro.cf_agent_port = b->cfg->cf.agent_port;
	ro.cf_api_port = b->cfg->cf.agent_api_port;
	rc = dd_cp_register_new(dd_service_loop(b->svc), &ro, &b->reg);
	if (rc)
		return rc;
	n += dd_cp_register_routes(b->reg, extra + n);
	n += dd_cp_enroll_routes(b->store, extra + n);
	rc = dd_cp_pages_new(dd_service_loop(b->svc), &(dd_cp_pages_opts){
				     .cfg = b->cfg, .store = b->store,
				     .keys = dd_cp_auth_keys(b->auth)},
			     &b->pages);
	if (rc)
		return rc;
	n += dd_cp_pages_routes(b->pages, extra + n);
	if (b->cf_views != NULL)
		n += dd_cp_cf_routes(b->cf_views, extra + n);
	rc = mount_api(b, why, why_len);
	if (rc)
		return rc;

	rc = dd_cp_mount_authz(b->cp, dd_cp_auth_authz(b->auth), b->srv, extra,
			       n, why, why_len);
	if (rc)
		dd_log_err(rc, "mounting the CP's routes: %s", why);
	return rc;
}

static bool reap_serving(void *ud)
{
	struct boot *b = ud;

	return dd_cp_stonith_serving(b->stonith);
}

static const char *reap_own_cp(void *ud)
{
	struct boot *b = ud;

	return dd_cp_stonith_tunnel(b->stonith);
}

/*
 * Reaping rides on the collector's ticks and the views' client, only
 * with Cloudflare (and so STONITH) configured.
 */
static dd_err_t make_reaper(struct boot *b)
{
	const dd_config *cfg = b->cfg;
	dd_err_t rc;

	if (b->cf == NULL || b->stonith == NULL)
		return DD_OK;
	rc = dd_cp_reap_new(&(dd_cp_reap_opts){
		.cf = b->cf, .store = b->store, .env = cfg->env,
		.domain = cfg->cf_domain,
		.grace_ms = cfg->cf.reap_grace_secs * 1000,
		.interval_ms = cfg->cf.reap_interval_secs * 1000,
		.max = (unsigned)cfg->cf.reap_max, .serving = reap_serving,
		.own_cp = reap_own_cp, .ud = b}, &b->reap);
	if (rc == DD_OK)
		dd_cp_collect_set_reaper(b->collect, b->reap);
	return rc;
}

static void discovered(void *ud)
{
	struct boot *b = ud;

	dd_cp_collect_wake(b->collect);
}

/*
 * Discovery rides on the collector's ticks and the views' client, only
 * with Cloudflare; never more often than the ticks (spec 2.4).
 */
static dd_err_t make_discover(struct boot *b)
{
	const dd_config *cfg = b->cfg;
	uint64_t secs = cfg->discovery_interval_secs;
	dd_err_t rc;

	if (b->cf == NULL)
		return DD_OK;
	if (secs < cfg->scrape_interval_secs)
		secs = cfg->scrape_interval_secs;
	rc = dd_cp_discover_new(&(dd_cp_discover_opts){
		.cf = b->cf, .env = cfg->env, .domain = cfg->cf_domain,
		.interval_ms = secs * 1000, .listed = discovered, .ud = b},
		&b->disc);
	if (rc == DD_OK)
		dd_cp_collect_set_discover(b->collect, b->disc);
	return rc;
}

/* Every collector tick refreshes the CP's own entry (spec 6.2). */
static void refresh_self(void *ud)
{
	dd_cp_self_refresh(ud);
}

static dd_err_t boot(struct boot *b)
{
	uv_loop_t *loop = dd_service_loop(b->svc);
	char why[256] = "";
	dd_err_t rc;

	rc = make_clients(b);
	if (rc) {
		dd_log_err(rc, "creating the outbound clients");
		return rc;
	}
	rc = make_stonith(b, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "setting up Cloudflare: %s", why);
		return rc;
	}
	rc = dd_attestor_from_config(b->cfg, loop, b->http, b->ee, &b->att, why,
				     sizeof why);
	if (rc) {
		dd_log_err(rc, "setting up attestation: %s", why);
		return rc;
	}
	rc = dd_cp_auth_new(b->cfg, loop, b->http, &b->auth, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "setting up sign-in: %s", why);
		return rc;
	}
	rc = dd_store_open(loop, b->cfg->store_path, &(dd_store_opts){
				   .env = b->cfg->env}, &b->store, why,
			   sizeof why);
	if (rc) {
		dd_log_err(rc, "opening the fleet store %s: %s",
			   b->cfg->store_path, why);
		return rc;
	}
	rc = dd_cp_collect_new(b->cfg, loop, b->att, b->store, &b->collect);
	if (rc) {
		dd_log_err(rc, "setting up the collector");
		return rc;
	}
	rc = dd_cp_self_new(b->cfg, loop, b->att, b->store, NULL, &b->self);
	if (rc) {
		dd_log_err(rc, "setting up the control-plane entry");
		return rc;
	}
	dd_cp_collect_on_tick(b->collect, refresh_self, b->self);
	rc = dd_cp_new(b->cfg, loop, &b->cp);
	if (rc == DD_OK) {
		dd_cp_set_attestor(b->cp, b->att);
		dd_cp_set_store(b->cp, b->store);
		b->cp->stonith = b->stonith;
		rc = dd_service_server(b->svc, "main", &b->srv);
	}
	if (rc == DD_OK)
		rc = mount(b, why, sizeof why);
	if (rc == DD_OK)
		rc = make_reaper(b);
	if (rc == DD_OK)
		rc = make_discover(b);
	if (rc == DD_OK)
		rc = dd_service_on_shutdown(b->svc, on_shutdown, b);
	if (rc == DD_OK)
		rc = dd_service_on_drained(b->svc, on_drained, b);
	if (rc == DD_OK)
		rc = dd_attestor_start(b->att, on_round, b);
	if (rc)
		dd_log_err(rc, "starting the CP");
	return rc;
}

dd_err_t dd_cp_run(const dd_config *cfg)
{
	struct boot b = {.cfg = cfg};
	dd_err_t rc;

	rc = dd_service_new(cfg, "cp", &b.svc);
	if (rc)
		return rc;
	rc = boot(&b);
	if (rc == DD_OK) {
		rc = dd_service_run(b.svc);
		if (rc == DD_OK)
			rc = b.err;
	}
	/*
	 * After a failed boot the hooks never ran; after a clean run these
	 * are no-ops. The loop then finishes the closes.
	 */
	if (b.cp != NULL) {
		on_shutdown(&b);
	} else {
		dd_cp_collect_free(b.collect);
		dd_cp_reap_stop(b.reap);
		dd_cp_discover_stop(b.disc);
		dd_cp_hydrate_cancel(b.hydrate);
		dd_cp_self_close(b.self);
		dd_attestor_free(b.att);
		dd_cp_auth_close(b.auth);
	}
	on_drained(&b);
	/* Its handles close through the loop below, not dd_service_free's. */
	dd_cp_stonith_free(b.stonith);
	uv_run(dd_service_loop(b.svc), UV_RUN_DEFAULT);
	/* The store has answered its last write: nothing points here now. */
	dd_service_free(b.svc);
	dd_cp_cf_free(b.cf_views);
	/* The client was shut down in on_drained: nothing is in flight. */
	dd_cp_reap_free(b.reap);
	dd_cp_discover_free(b.disc);
	dd_cf_free(b.cf);
	dd_cp_register_free(b.reg);
	dd_cp_pages_free(b.pages);
	dd_cp_api_free(b.api);
	dd_cp_self_free(b.self);
	dd_cp_auth_free(b.auth);
	dd_ndjson_free(b.ee);
	dd_httpc_free(b.http);
	dd_cp_free(b.cp);
	return rc;
}
