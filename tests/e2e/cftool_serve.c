/*
 * `dd-cftool serve ENV CP_HOST AGENTS.json`: serves the CP's Cloudflare
 * views (src/cp/cp_cf.c: GET /admin/cf/snapshot and /admin/cf/map) over a
 * real fleet store (in memory, seeded with the agents of the file) and the
 * real Cloudflare client, without the rest of the CP. Authorization is
 * the CP's authz table's business and is not exercised here: the handlers
 * are mounted directly. Announces its port through DD_READY_FD like every
 * service; stops on SIGTERM.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cloudflare/cf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/cp_cf.h"
#include "cp/store.h"
#include "net/http.h"
#include "net/httpc.h"
#include "net/service.h"

int dd_cftool_serve(int argc, char **argv);

struct serve {
	dd_service *svc;
	dd_http_server *srv;
	dd_httpc *http;
	dd_cf *cf;
	dd_store *store;
	dd_cp_cf *views;
	dd_authz_route routes[DD_CP_CF_ROUTES];
	json_t *agents;
	size_t next;
	const char *env, *host;
	const char *labels[1];
	int failed;
};

static const char *get(void *ud, const char *name)
{
	static const char *const vals[][2] = {
		{"DD_ENV", "dev"}, {"DD_DEV", "1"}, {"DD_ITA_API_KEY", "unused"},
		{"DD_BIND_ADDR", "127.0.0.1"}, {"DD_PORT", "0"},
	};

	(void)ud;
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		if (strcmp(name, vals[i][0]) == 0)
			return vals[i][1];
	return NULL;
}

static void handler(dd_http_req *req, void *ud)
{
	dd_authz_route *r = ud;

	r->handler(req, NULL, r->ud);
}

static void listen_now(struct serve *s)
{
	dd_cp_cf_opts o = {
		.cf = s->cf, .store = s->store, .env = s->env,
		.cp_hostname = s->host, .account_id = dd_cf_account(s->cf),
		.zone_id = dd_cf_zone(s->cf), .cp_labels = s->labels,
		.n_cp_labels = 1,
	};
	dd_err_t rc = dd_cp_cf_new(&o, &s->views);
	size_t n = 0;

	if (rc == DD_OK)
		n = dd_cp_cf_routes(s->views, s->routes);
	for (size_t i = 0; rc == DD_OK && i < n; i++)
		rc = dd_http_server_route(s->srv, &(dd_http_route){
			.methods = s->routes[i].methods,
			.pattern = s->routes[i].pattern,
			.handler = handler, .ud = &s->routes[i]});
	if (rc == DD_OK)
		rc = dd_service_listen(s->svc, "main", "127.0.0.1", 0);
	if (rc) {
		dd_log_err(rc, "serving the views");
		s->failed = 1;
		dd_service_stop(s->svc);
		return;
	}
	dd_service_ready(s->svc);
}

static void seed_next(struct serve *s);

static void seeded(const dd_store_result *res, void *ud)
{
	struct serve *s = ud;

	if (res->rc) {
		dd_log_err(res->rc, "seeding the store: %s", res->why);
		s->failed = 1;
		dd_service_stop(s->svc);
		return;
	}
	seed_next(s);
}

static void copy(char *dst, size_t cap, const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(dst, cap, "%s", v ? v : "");
}

/* One agent of the file into the store, then the next. */
static void seed_next(struct serve *s)
{
	const json_t *j = json_array_get(s->agents, s->next++);
	dd_store_agent a;
	size_t i;
	json_t *x;
	dd_err_t rc;

	if (j == NULL) {
		listen_now(s);
		return;
	}
	dd_store_agent_init(&a);
	copy(a.agent_id, sizeof a.agent_id, j, "agent_id");
	copy(a.hostname, sizeof a.hostname, j, "hostname");
	copy(a.vm_name, sizeof a.vm_name, j, "vm_name");
	copy(a.tunnel_id, sizeof a.tunnel_id, j, "tunnel_id");
	snprintf(a.attestation_type, sizeof a.attestation_type, "tdx");
	a.ingress = DD_INGRESS_TUNNEL;
	a.last_seen_ms = 1767225600000;
	json_array_foreach(json_object_get(j, "extras"), i, x) {
		if (i >= DD_STORE_MAX_EXTRAS)
			break;
		snprintf(a.extras[i].label, sizeof a.extras[i].label, "%s",
			 json_string_value(json_array_get(x, 0)));
		a.extras[i].port = (uint16_t)json_integer_value(
			json_array_get(x, 1));
		a.n_extras = i + 1;
	}
	rc = dd_store_register(s->store, &a, seeded, s);
	dd_store_agent_clear(&a);
	if (rc) {
		dd_log_err(rc, "seeding the store");
		s->failed = 1;
		dd_service_stop(s->svc);
	}
}

static void on_drained(void *ud)
{
	struct serve *s = ud;

	/* Requests still waiting for Cloudflare are answered now. */
	dd_cf_shutdown(s->cf);
	dd_store_close(s->store, NULL, NULL);
	s->store = NULL;
	dd_httpc_close(s->http, NULL, NULL);
}

static uint64_t env_u64(const char *name)
{
	const char *v = getenv(name);
	uint64_t x = 0;

	if (v != NULL && dd_parse_u64(v, 0, UINT64_MAX, &x) != DD_OK)
		x = 0;
	return x;
}

int dd_cftool_serve(int argc, char **argv)
{
	struct serve s = {.labels = {"shell"}};
	dd_config *cfg = NULL;
	dd_buf errs;
	char why[256] = "";
	dd_err_t rc;

	if (argc < 5)
		return 2;
	s.env = argv[2];
	s.host = argv[3];
	s.agents = json_load_file(argv[4], 0, NULL);
	dd_buf_init(&errs, 4096);
	rc = json_is_array(s.agents) ? dd_config_load(DD_MODE_ITA, get, NULL,
						      &cfg, &errs)
				     : DD_ERR_INVALID;
	if (rc == DD_OK)
		rc = dd_service_new(cfg, "cftool", &s.svc);
	if (rc == DD_OK)
		rc = dd_httpc_new(dd_service_loop(s.svc), &(dd_httpc_opts){0},
				  &s.http);
	if (rc == DD_OK)
		rc = dd_cf_new(s.http, &(dd_cf_opts){
			.base_url = getenv("DD_CF_API_URL"),
			.api_token = getenv("DD_CF_API_TOKEN"),
			.account_id = getenv("DD_CF_ACCOUNT_ID"),
			.zone_id = getenv("DD_CF_ZONE_ID"),
			.timeout_ms = env_u64("DD_CF_TIMEOUT_MS"),
			.max_attempts = (unsigned)env_u64("DD_CF_ATTEMPTS"),
			.base_backoff_ms = env_u64("DD_CF_BACKOFF_MS"),
		}, &s.cf, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_store_open(dd_service_loop(s.svc), ":memory:", NULL,
				   &s.store, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_service_server(s.svc, "main", &s.srv);
	if (rc == DD_OK)
		rc = dd_service_on_drained(s.svc, on_drained, &s);
	if (rc) {
		/* A harness that cannot start just says why and exits. */
		fprintf(stderr, "serve: %s %s %s\n", dd_errname(rc), why,
			dd_buf_str(&errs));
		return 1;
	}
	seed_next(&s);
	dd_service_run(s.svc);
	dd_cp_cf_free(s.views);
	dd_cf_free(s.cf);
	dd_service_free(s.svc);
	dd_httpc_free(s.http);
	dd_config_free(cfg);
	dd_buf_free(&errs);
	json_decref(s.agents);
	return rc || s.failed ? 1 : 0;
}
