#include "agent/agent.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent_health.h"
#include "agent/agent_state.h"
#include "agent/device_api.h"
#include "agent/devices.h"
#include "agent/noise_attest.h"
#include "agent/ee_watch.h"
#include "agent/metrics.h"
#include "agent/page_reply.h"
#include "agent/pages.h"
#include "agent/shell_plane.h"
#include "agent/registrar.h"
#include "attest/attest_setup.h"
#include "core/strutil.h"
#include "noise/static_key.h"
#include "agent/workload_api.h"
#include "auth/authz.h"
#include "auth/oidc.h"
#include "auth/principal.h"
#include "auth/ticket.h"
#include "cloudflare/cloudflared.h"
#include "core/alloc.h"
#include "core/html.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http.h"
#include "net/httpc.h"
#include "net/ndjson.h"
#include "net/service.h"
#include "net/static.h"

struct agent {
	const dd_config *cfg;
	uint64_t started_ms;
	uv_loop_t *loop;
	dd_service *svc;
	dd_httpc *http;
	dd_ndjson *ee;
	dd_ee_watch *watch;
	dd_workload_api *api;
	dd_attestor *att;
	dd_registrar *reg;
	dd_cloudflared *cfd;    /* Cloudflare ingress: our connector, or NULL */
	dd_metrics *metrics;
	uint64_t pushed_sig;    /* extras the CP was last told about */
	/*
	 * /health is polled constantly (the CP's collector, load balancers)
	 * and its body changes slowly: rendered at most once a second.
	 */
	dd_buf health;
	uint64_t health_sec;
	int health_ok;
	dd_static_key noise;
	dd_noise_attest *noise_att; /* the quote binding noise.pub */
	dd_devices *devices;
	dd_device_api *device_api;
	dd_shell_plane *shell;      /* sessiond, recipients, /noise/ws */
	dd_agent_state st;
	dd_ticket *ticket;
	dd_oidc *oidc;
	dd_authz *authz;
	int closed;
	int serving;
	dd_err_t err;           /* why boot failed */
};

/*
 * The connector as /health shows it: "running", or "down" (an outage:
 * it exited and waits for its restart) with how long and why.
 */
static json_t *cloudflared_json(const struct agent *a)
{
	dd_cloudflared_status st;

	dd_cloudflared_status_get(a->cfd, &st);
	return json_pack("{s:s, s:I, s:I, s:I, s:i, s:I}", "state",
			 st.running ? "running" : st.stopped ? "stopped" : "down",
			 "starts", (json_int_t)st.starts,
			 "exits", (json_int_t)st.exits,
			 "last_status", (json_int_t)st.last_status,
			 "last_signal", st.last_signal,
			 "down_ms", (json_int_t)(st.running || st.down_since_ms == 0
						 ? 0 : uv_now(a->loop) -
						       st.down_since_ms));
}

/* The /health object (new reference), also what pages render from. */
static json_t *health_json(const struct agent *a)
{
	dd_agent_health_in in = {
		.cfg = a->cfg, .st = &a->st,
		.ee_health = a->watch ? dd_ee_watch_health(a->watch) : NULL,
		.ee_list = a->watch ? dd_ee_watch_list(a->watch) : NULL,
		.uptime_secs = (uv_now(a->loop) - a->started_ms) / 1000,
		.ita_token = a->att ? dd_attestor_token(a->att) : NULL,
	};
	char pub[2 * DD_X25519_LEN + 1];
	json_t *m = NULL, *body;

	/* Sampled on a timer; a request only reads the latest sample. */
	if (a->metrics != NULL && dd_metrics_json(a->metrics, &m) == DD_OK)
		in.metrics = m;
	body = dd_agent_health_json(&in);
	json_decref(m);

	dd_hex_encode(a->noise.pub, sizeof a->noise.pub, pub);
	if (body != NULL && a->cfd != NULL &&
	    json_object_set_new(body, "cloudflared", cloudflared_json(a)) != 0) {
		json_decref(body);
		return NULL;
	}
	if (body != NULL &&
	    json_object_set_new(body, "noise", a->noise_att
				? dd_noise_attest_json(a->noise_att)
				: json_pack("{s:s}", "pubkey_hex", pub)) != 0) {
		json_decref(body);
		body = NULL;
	}
	return body;
}

/* GET /health on both listeners: public, never waits, never fails. */
static void handle_health(dd_http_req *req, const dd_caller *who, void *ud)
{
	struct agent *a = ud;
	uint64_t sec = (uv_now(a->loop) - a->started_ms) / 1000;
	json_t *body;
	dd_err_t rc = DD_OK;

	(void)who;
	if (!a->health_ok || sec != a->health_sec) {
		body = health_json(a);
		dd_buf_reset(&a->health);
		rc = body ? dd_json_append(&a->health, body) : DD_ERR_NOMEM;
		if (rc == DD_OK)
			rc = dd_buf_append_byte(&a->health, '\n');
		json_decref(body);
		a->health_ok = rc == DD_OK;
		a->health_sec = sec;
	}
	if (rc) {
		dd_http_respond_err(req, rc, NULL);
		return;
	}
	dd_http_respond(req, 200, "application/json", a->health.data,
			a->health.len);
}

/* The page's view of the caller. */
static void page_who(const struct agent *a, const dd_caller *who,
		     char csrf[DD_CSRF_LEN + 1], dd_page_who *out)
{
	if (dd_csrf_token(dd_ticket_keys(a->ticket), who->session_token,
			  who->session_token_len, csrf) != DD_OK)
		csrf[0] = '\0';
	*out = (dd_page_who){.login = who->session.login,
			     .admin = who->kind == DD_CALLER_ADMIN,
			     .dev = a->cfg->dev || who->session.dev,
			     .csrf = csrf};
}

/* GET /: this VM's page, for admins and its tenant. */
static void handle_page(dd_http_req *req, const dd_caller *who, void *ud)
{
	struct agent *a = ud;
	char csrf[DD_CSRF_LEN + 1];
	dd_page_who pw;
	json_t *h = health_json(a);
	dd_buf page;
	dd_err_t rc;

	page_who(a, who, csrf, &pw);
	dd_buf_init(&page, 1024 * 1024);
	rc = h ? dd_page_dashboard(&page, h, &pw) : DD_ERR_NOMEM;
	dd_agent_page_reply(req, 200, &page, rc);
	dd_buf_free(&page);
	json_decref(h);
}

struct wl_page {
	struct agent *a;
	dd_http_req *req;
	dd_ndjson_req *call;
	json_t *dep;
	dd_page_who who;
	char csrf[DD_CSRF_LEN + 1];
	char login[40];
};

static void wl_abort(void *ud)
{
	struct wl_page *p = ud;

	dd_ndjson_cancel(p->call);
	json_decref(p->dep);
	dd_free(p);
}

static void wl_logs(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	struct wl_page *p = ud;
	dd_buf page;

	(void)why;
	dd_http_req_on_abort(p->req, NULL, NULL);
	dd_buf_init(&page, 8 * 1024 * 1024);
	dd_agent_page_reply(p->req, 200, &page,
			    dd_page_workload(&page, p->dep, err ? NULL : reply,
					     &p->who));
	dd_buf_free(&page);
	json_decref(p->dep);
	dd_free(p);
}

/* The workload's entry in the latest EE list, or NULL. */
static json_t *find_workload(const struct agent *a, const char *id)
{
	json_t *deps = json_object_get(dd_ee_watch_list(a->watch),
				       "deployments"), *d;
	size_t i;

	json_array_foreach(deps, i, d) {
		const char *did = json_string_value(json_object_get(d, "id"));

		if (did != NULL && id != NULL && strcmp(did, id) == 0)
			return d;
	}
	return NULL;
}

/* GET /workload/{id}: its state and logs. */
static void handle_workload(dd_http_req *req, const dd_caller *who, void *ud)
{
	struct agent *a = ud;
	json_t *dep = find_workload(a, dd_http_req_param(req, "id"));
	json_t *rq = NULL;
	struct wl_page *p;
	dd_err_t rc;

	if (dep == NULL) {
		dd_http_respond_error(req, 404, "not_found", "no such workload");
		return;
	}
	p = dd_calloc(1, sizeof *p);
	rq = json_pack("{s:s, s:O, s:i}", "method", "logs", "id",
		       json_object_get(dep, "id"), "tail", 500);
	if (p == NULL || rq == NULL) {
		dd_free(p);
		json_decref(rq);
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	p->a = a;
	p->req = req;
	p->dep = json_deep_copy(dep);
	page_who(a, who, p->csrf, &p->who);
	snprintf(p->login, sizeof p->login, "%s", who->session.login);
	p->who.login = p->login;
	p->who.csrf = p->csrf;
	rc = dd_ndjson_call(a->ee, rq, wl_logs, p, &p->call);
	json_decref(rq);
	if (rc) {
		wl_logs(rc, NULL, dd_strerror(rc), p);
		return;
	}
	dd_http_req_on_abort(req, wl_abort, p);
}

static void static_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	dd_static_serve(req, ud);
}

/*
 * This agent's public origin: the audience of sign-in tickets and the
 * base of sign-in redirects. DD_PUBLIC_URL, else https://DD_HOSTNAME,
 * else (dev) the loopback URL of the main listener.
 */
static dd_err_t set_origin(struct agent *a, uint16_t port)
{
	const dd_config *cfg = a->cfg;
	const char *broker = cfg->broker_url ? cfg->broker_url : cfg->cp_url;
	char origin[512], sign_in[600];
	dd_err_t rc;

	if (cfg->public_url != NULL)
		snprintf(origin, sizeof origin, "%s", cfg->public_url);
	else if (cfg->hostname != NULL && !cfg->dev)
		snprintf(origin, sizeof origin, "https://%s", cfg->hostname);
	else
		snprintf(origin, sizeof origin, "http://%s:%u",
			 strcmp(cfg->bind_addr, "0.0.0.0") == 0 ? "127.0.0.1"
								: cfg->bind_addr,
			 (unsigned)port);
	snprintf(sign_in, sizeof sign_in, "%s/auth/agent", broker);
	rc = dd_ticket_set_origin(a->ticket, origin);
	if (rc == DD_OK)
		rc = dd_authz_set_origin(a->authz, origin);
	if (rc == DD_OK)
		rc = dd_authz_set_sign_in(a->authz, sign_in);
	return rc;
}

static dd_err_t add_listener(struct agent *a, const char *label,
			     uint16_t port)
{
	dd_http_server *srv;
	dd_authz_route routes[24];
	size_t n = 0;
	char why[256];
	dd_err_t rc;

	routes[n++] = (dd_authz_route){DD_M_GET, "/health", handle_health, a,
				       0, 0};
	/* People use the main listener; the API one serves machines. */
	if (strcmp(label, "main") == 0) {
		routes[n++] = (dd_authz_route){DD_M_GET, "/static/{path*}",
					       static_route, NULL, 0, 0};
		routes[n++] = (dd_authz_route){DD_M_GET, "/", handle_page, a,
					       0, 0};
		routes[n++] = (dd_authz_route){DD_M_GET, "/workload/{id}",
					       handle_workload, a, 0, 0};
		n += dd_workload_api_routes(a->api, routes + n);
		n += dd_device_api_routes(a->device_api, routes + n);
		n += dd_shell_plane_routes(a->shell, routes + n);
		n += dd_ticket_routes(a->ticket, routes + n);
	}
	rc = dd_service_server(a->svc, label, &srv);
	if (rc == DD_OK)
		rc = dd_authz_mount(a->authz, srv, routes, n, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_service_listen(a->svc, label, a->cfg->bind_addr, port);
	if (rc) {
		dd_log_err(rc, "starting the agent %s listener on %s:%u %s", label,
			   a->cfg->bind_addr, (unsigned)port, why);
		return rc;
	}
	dd_log_info("agent %s listener on http://%s:%u", label,
		    a->cfg->bind_addr, (unsigned)dd_http_server_port(srv));
	if (strcmp(label, "main") == 0)
		rc = set_origin(a, dd_http_server_port(srv));
	return rc;
}

static const dd_principal *tenant_of(void *ud)
{
	struct agent *a = ud;

	return a->st.has_tenant ? &a->st.tenant : NULL;
}

static dd_err_t make_auth(struct agent *a)
{
	const dd_config *cfg = a->cfg;
	dd_httpc_opts ho = {.ca_file = cfg->ca_file,
			    .timeout_ms = cfg->outbound_timeout_ms,
			    .max_response = cfg->outbound_max_response};
	dd_ticket_opts to = {.owner = &a->st.owner,
			     .broker_url = cfg->broker_url ? cfg->broker_url
							   : cfg->cp_url};
	dd_oidc_opts oo = {.issuer = cfg->oidc_issuer,
			   .jwks_url = cfg->oidc_jwks_url,
			   .audience = cfg->oidc_audience,
			   .max_age_s = cfg->oidc_max_age_secs,
			   /* GitHub rotates keys; pick a new kid up quickly. */
			   .jwks_refresh_ms = 10000};
	dd_authz_opts zo = {.service = "agent", .owner = &a->st.owner,
			    .cookie_name = DD_AGENT_SESSION_COOKIE,
			    .dev = cfg->dev};
	char why[160] = "";
	dd_err_t rc;

	rc = dd_principal_make((dd_principal_kind)cfg->owner_kind, cfg->owner,
			       cfg->owner_id, &a->st.owner, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_httpc_new(a->loop, &ho, &a->http);
	if (rc == DD_OK)
		rc = dd_ticket_new(a->loop, a->http, &to, &a->ticket);
	if (rc == DD_OK)
		rc = dd_oidc_new(a->loop, a->http, &oo, &a->oidc);
	if (rc == DD_OK) {
		zo.keys = dd_ticket_keys(a->ticket);
		zo.oidc = a->oidc;
		zo.tenant = tenant_of;
		zo.tenant_ud = a;
		rc = dd_authz_new(&zo, &a->authz);
	}
	if (rc)
		dd_log_err(rc, "setting up sign-in %s", why);
	return rc;
}

/* Cancels outstanding checks and closes the client, once. */
static void close_auth(void *ud)
{
	struct agent *a = ud;

	if (a->closed)
		return;
	a->closed = 1;
	if (a->metrics != NULL)
		dd_metrics_close(a->metrics);
	dd_registrar_free(a->reg);
	a->reg = NULL;
	dd_cloudflared_free(a->cfd);
	a->cfd = NULL;
	/* Before the attestor: its cancellations still reach this. */
	dd_noise_attest_free(a->noise_att);
	a->noise_att = NULL;
	dd_attestor_free(a->att);
	a->att = NULL;
	dd_workload_api_free(a->api);
	a->api = NULL;
	/* Before the EE client: the gateway's calls are cancelled first. */
	dd_shell_plane_free(a->shell);
	a->shell = NULL;
	dd_ee_watch_free(a->watch);
	a->watch = NULL;
	if (a->ee != NULL)
		dd_ndjson_close(a->ee, NULL, NULL);
	if (a->authz != NULL)
		dd_authz_close(a->authz);
	dd_oidc_free(a->oidc);
	a->oidc = NULL;
	dd_ticket_free(a->ticket);
	a->ticket = NULL;
	if (a->http != NULL)
		dd_httpc_close(a->http, NULL, NULL);
}

/* A cheap fingerprint of the extras: has the ingress the CP knows changed? */
static uint64_t extras_sig(const dd_agent_state *st)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < st->n_extras; i++) {
		for (const char *c = st->extras[i].label; *c; c++)
			h = (h ^ (uint8_t)*c) * 1099511628211ull;
		h = (h ^ st->extras[i].port) * 1099511628211ull;
	}
	return h;
}

static void workloads_changed(void *ud)
{
	struct agent *a = ud;
	uint64_t sig = extras_sig(&a->st);

	a->health_ok = 0;  /* callers read their own writes at once */
	if (a->watch != NULL)
		dd_ee_watch_refresh(a->watch);
	/* A deploy that exposed a port: tell the CP, with fresh evidence. */
	if (sig != a->pushed_sig && a->reg != NULL) {
		a->pushed_sig = sig;
		dd_registrar_push(a->reg);
	}
}

/* The trust set changed (the shell plane pushes it to sessiond). */
static void devices_changed(void *ud)
{
	struct agent *a = ud;
	uint8_t keys[1][DD_DEVICE_KEY_LEN];
	size_t n = 0;

	(void)dd_devices_recipients(a->devices, keys, 0, &n);
	dd_log_info("device trust set changed: %zu recipient(s)", n);
}

/* Paired devices: a registry that cannot be read stops the boot. */
static dd_err_t make_devices(struct agent *a)
{
	const dd_config *cfg = a->cfg;
	dd_devices_hooks h = {.on_change = devices_changed, .ud = a};
	dd_device_api_opts o = {.keys = dd_ticket_keys(a->ticket),
				.hostname = cfg->hostname ? cfg->hostname
							  : cfg->vm_name,
				.dev = cfg->dev};
	unsigned id;
	char why[256] = "";
	dd_err_t rc;

	rc = dd_devices_open(cfg->devices_path, cfg->max_devices, &a->devices,
			     why, sizeof why);
	if (rc) {
		dd_log_err(rc, "the device registry %s: %s",
			   cfg->devices_path ? cfg->devices_path : "(memory)", why);
		return rc;
	}
	o.devices = a->devices;
	rc = dd_devices_subscribe(a->devices, &h, &id);
	if (rc == DD_OK)
		rc = dd_device_api_new(&o, &a->device_api);
	if (rc == DD_OK)
		dd_log_info("%zu paired device(s) loaded from %s",
			    dd_devices_count(a->devices),
			    cfg->devices_path ? cfg->devices_path : "(memory)");
	return rc;
}

static void noise_changed(void *ud)
{
	struct agent *a = ud;

	a->health_ok = 0;  /* the new quote or token shows at once */
}

static dd_err_t make_runtime_client(struct agent *a)
{
	const dd_config *cfg = a->cfg;
	dd_ndjson_opts eo = {.path = cfg->ee_socket, .token = cfg->ee_token,
			     .timeout_ms = 60000};
	dd_err_t rc;

	char why[256] = "";

	rc = dd_static_key_load(cfg->noise_key_path, &a->noise, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "the Noise static key: %s", why);
		return rc;
	}
	rc = dd_ndjson_new(a->loop, &eo, &a->ee);
	if (rc == DD_OK)
		rc = dd_attestor_from_config(cfg, a->loop, a->http, a->ee, &a->att,
					     why, sizeof why);
	if (rc) {
		dd_log_err(rc, "setting up attestation %s", why);
		return rc;
	}
	rc = dd_metrics_new(a->loop, &(dd_metrics_opts){0}, &a->metrics);
	if (rc == DD_OK)
		rc = dd_metrics_start(a->metrics);
	if (rc == DD_OK)
		rc = dd_ee_watch_new(a->loop, a->ee, 5000, &a->watch);
	if (rc == DD_OK)
		rc = dd_workload_api_new(a->ee, &a->st, workloads_changed, a,
					 &a->api);
	if (rc) {
		dd_log_err(rc, "setting up the EasyEnclave client (%s)",
			   cfg->ee_socket);
		return rc;
	}
	return dd_shell_plane_new(&(dd_shell_plane_opts){
		.loop = a->loop, .key = &a->noise, .devices = a->devices,
		.ee = a->ee, .sessiond_socket = cfg->sessiond.socket,
		.confidential = cfg->confidential,
		.handshake_ms = cfg->noise_handshake_ms}, &a->shell);
}

static void on_round(dd_err_t err, int first, const char *why, void *ud)
{
	(void)ud;
	if (err)
		dd_log_warn("own ITA token %s: %s", first ? "at boot" : "refresh",
			    why);
}

/*
 * With Cloudflare ingress the CP's answer carries the connector token:
 * (re)start cloudflared with it, restarted with back-off when it exits.
 */
static void start_cloudflared(struct agent *a)
{
	const char *token = dd_registrar_tunnel_token(a->reg);
	char self[4096];
	size_t n = sizeof self;
	dd_cloudflared_opts o = {.path = a->cfg->cloudflared_path,
				 .token = token,
				 .backoff_ms = a->cfg->cloudflared_backoff_ms};
	dd_err_t rc;

	if (token == NULL)
		return;
	/* Our own binary is its launcher, so it dies with us. */
	if (uv_exepath(self, &n) == 0)
		o.self_exe = self;
	dd_cloudflared_free(a->cfd);
	a->cfd = NULL;
	rc = dd_cloudflared_new(a->loop, &o, &a->cfd);
	if (rc) {
		dd_log_err(rc, "starting cloudflared");
		return;
	}
	dd_cloudflared_start(a->cfd);
}

static void on_registered(dd_err_t err, const char *agent_id,
			  const char *hostname, const char *why, void *ud)
{
	struct agent *a = ud;

	if (err) {
		dd_log_err(err, "registration refused, stopping: %s", why);
		a->err = err;
		dd_service_stop(a->svc);
		return;
	}
	snprintf(a->st.agent_id, sizeof a->st.agent_id, "%s", agent_id);
	start_cloudflared(a);
	a->health_ok = 0;
	dd_log_info("registered with %s as %s (%s) after %u attempt(s)",
		    a->cfg->cp_url, agent_id, hostname,
		    dd_registrar_attempts(a->reg));
}

/* Registration runs beside serving: /health reports it until it lands. */
static dd_err_t start_registration(struct agent *a)
{
	dd_registrar_opts ro = {.cp_url = a->cfg->cp_url,
				.vm_name = a->cfg->vm_name,
				.url = dd_authz_origin(a->authz), .att = a->att,
				.http = a->http, .st = &a->st,
				.backoff_ms = a->cfg->register_backoff_ms,
				.check_ms = a->cfg->register_check_secs * 1000};
	dd_noise_attest_opts no = {.refresh_ms = a->cfg->ita_refresh_secs * 1000,
				   .changed = noise_changed, .ud = a};
	dd_err_t rc;

	memcpy(ro.noise_pub, a->noise.pub, sizeof ro.noise_pub);
	memcpy(no.pubkey, a->noise.pub, sizeof no.pubkey);
	a->pushed_sig = extras_sig(&a->st);
	rc = dd_attestor_start(a->att, on_round, a);
	if (rc == DD_OK)
		rc = dd_noise_attest_start(a->loop, a->att, &no, &a->noise_att);
	if (rc == DD_OK)
		rc = dd_registrar_start(a->loop, &ro, on_registered, a, &a->reg);
	return rc;
}

static void serve(struct agent *a)
{
	dd_err_t rc;

	if (a->serving)
		return;
	a->serving = 1;
	rc = add_listener(a, "main", a->cfg->port);
	if (rc == DD_OK)
		rc = add_listener(a, "api", a->cfg->api_port);
	if (rc == DD_OK)
		rc = start_registration(a);
	if (rc) {
		a->err = rc;
		dd_service_stop(a->svc);
		return;
	}
	dd_service_ready(a->svc);
}

/* Boot waits for EasyEnclave: an agent that cannot run workloads must not serve. */
static void on_ee_ready(dd_err_t err, const char *why, void *ud)
{
	struct agent *a = ud;

	if (err && a->cfg->ee_wait_secs > 0) {
		dd_log_err(err, "EasyEnclave at %s did not answer within %llu s: "
			   "%s", a->cfg->ee_socket,
			   (unsigned long long)a->cfg->ee_wait_secs, why);
		a->err = err;
		dd_service_stop(a->svc);
		return;
	}
	serve(a);
}

dd_err_t dd_agent_run(const dd_config *cfg)
{
	struct agent a = {.cfg = cfg};
	dd_err_t rc;

	rc = dd_service_new(cfg, "agent", &a.svc);
	if (rc)
		return rc;
	a.loop = dd_service_loop(a.svc);
	a.started_ms = uv_now(a.loop);
	dd_buf_init(&a.health, 256 * 1024);
	a.st.confidential = cfg->confidential;
	/* Anything that can run arbitrary code is a taint from the start. */
	if (!cfg->confidential)
		a.st.taints |= DD_TAINT_EXEC;
	rc = make_auth(&a);
	if (rc == DD_OK)
		rc = make_devices(&a);
	if (rc == DD_OK)
		rc = make_runtime_client(&a);
	if (rc == DD_OK)
		rc = dd_service_on_drained(a.svc, close_auth, &a);
	if (rc == DD_OK && cfg->ee_wait_secs == 0)
		serve(&a);
	if (rc == DD_OK)
		rc = dd_ee_watch_start(a.watch, cfg->ee_wait_secs * 1000,
				       on_ee_ready, &a);
	if (rc == DD_OK) {
		rc = dd_service_run(a.svc);
		if (rc == DD_OK)
			rc = a.err;
	}
	close_auth(&a);
	uv_run(a.loop, UV_RUN_DEFAULT);
	dd_service_free(a.svc);
	dd_ndjson_free(a.ee);
	dd_httpc_free(a.http);
	dd_authz_free(a.authz);
	dd_metrics_free(a.metrics);
	dd_buf_free(&a.health);
	dd_static_key_wipe(&a.noise);
	dd_device_api_free(a.device_api);
	dd_devices_free(a.devices);
	return rc;
}
