#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "attest/attest_setup.h"
#include "attest/provider.h"
#include "core/alloc.h"
#include "core/log.h"
#include "net/service.h"
#include "net/unixsock.h"
#include "runtime/apps.h"
#include "runtime/env.h"
#include "runtime/proc.h"
#include "runtime/proto.h"
#include "runtime/release.h"
#include "runtime/server.h"

#define MAX_DEPLOYMENTS 256

extern char **environ;

struct rt {
	const dd_config *cfg;
	dd_service *svc;
	dd_rt_procs *procs;
	dd_rt_apps *apps;
	dd_rt_server *server;
	dd_quote_provider *quotes;
	char **base_env;
	char bin_dir[PATH_MAX];
	int stopping;
};

/* Children get stdio from us: 0, 1 and 2 must not be free for reuse. */
static void hold_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			(void)open("/dev/null", O_RDWR); /* takes the lowest */
	}
}

/* Where releases are installed: private, next to the socket. */
static dd_err_t make_bin_dir(struct rt *r, char *why, size_t why_len)
{
	const char *path = r->cfg->ee_socket, *slash = strrchr(path, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - path) : 0;
	int n;

	n = snprintf(r->bin_dir, sizeof r->bin_dir, "%.*s/.dd-runtime-XXXXXX",
		     (int)dlen, path);
	if (n < 0 || (size_t)n >= sizeof r->bin_dir ||
	    mkdtemp(r->bin_dir) == NULL) {
		snprintf(why, why_len, "making a directory for releases "
			 "next to %s (%s)", path, strerror(errno));
		r->bin_dir[0] = '\0';
		return DD_ERR_IO;
	}
	return DD_OK;
}

static dd_err_t make_quotes(struct rt *r, uv_loop_t *loop)
{
	uint8_t mrtd[48];

	/* config.c refuses sim outside DD_DEV; ee would be ourselves. */
	if (r->cfg->dev && r->cfg->quote_provider == DD_PROVIDER_SIM) {
		dd_sim_mrtd(mrtd);
		return dd_quote_provider_sim(loop, mrtd, &r->quotes);
	}
	return dd_quote_provider_tsm(loop, r->cfg->tsm_root, &r->quotes);
}

static void on_signals_open(uv_handle_t *h)
{
	(void)h;
}

/*
 * dd_service_run starts the SIGTERM watcher only when the loop starts,
 * after readiness was announced: a supervisor that stops us at once
 * would find SIGTERM still fatal. Held back until then, it waits.
 */
static void on_first_turn(uv_timer_t *t)
{
	sigset_t *old = t->data;

	pthread_sigmask(SIG_SETMASK, old, NULL);
	uv_close((uv_handle_t *)t, on_signals_open);
}

static void hold_signals(uv_loop_t *loop, uv_timer_t *t, sigset_t *old)
{
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, old);
	(void)uv_timer_init(loop, t);
	t->data = old;
	uv_timer_start(t, on_first_turn, 0, 0);
}

static void on_part_done(void *ud)
{
	(void)ud;
}

static void on_procs_done(void *ud)
{
	(void)ud;
	dd_log_info("every workload has stopped");
}

static void on_shutdown(void *ud)
{
	struct rt *r = ud;

	r->stopping = 1;
	dd_rt_server_close(r->server, on_part_done, r);
	/* Pending attests answer now (cancelled): their connections go. */
	if (r->quotes != NULL)
		dd_quote_provider_close(r->quotes);
	r->quotes = NULL;
	dd_rt_apps_shutdown(r->apps, on_part_done, r);
	dd_rt_procs_shutdown(r->procs, on_procs_done, r);
}

static dd_err_t start(struct rt *r, char *why, size_t why_len)
{
	const dd_config *cfg = r->cfg;
	const dd_runtime_settings *rs = &cfg->runtime;
	uv_loop_t *loop = dd_service_loop(r->svc);
	dd_rt_apps_opts ao;
	dd_rt_server_opts so;
	dd_err_t rc;

	rc = dd_rt_procs_new(loop, &r->procs);
	if (rc == DD_OK)
		rc = make_quotes(r, loop);
	if (rc) {
		snprintf(why, why_len, "starting the quote provider");
		return rc;
	}
	memset(&ao, 0, sizeof ao);
	ao.procs = r->procs;
	ao.base_env = r->base_env;
	ao.releases_dir = rs->releases_dir;
	ao.bin_dir = r->bin_dir;
	ao.log_bytes = rs->log_bytes;
	ao.grace_ms = rs->stop_grace_ms;
	ao.backoff_ms = rs->restart_backoff_ms;
	ao.restart_max = (unsigned)rs->restart_max;
	ao.max_deployments = MAX_DEPLOYMENTS;
	rc = dd_rt_apps_new(loop, &ao, &r->apps);
	memset(&so, 0, sizeof so);
	so.path = cfg->ee_socket;
	so.token = cfg->ee_token;
	so.max_request = rs->max_request;
	so.max_connections = rs->max_connections;
	so.exec_max_output = rs->exec_max_output;
	so.grace_ms = rs->stop_grace_ms;
	so.base_env = r->base_env;
	so.procs = r->procs;
	so.apps = r->apps;
	so.quotes = r->quotes;
	so.attestation_type = dd_quote_provider_kind(r->quotes);
	if (strcmp(so.attestation_type, "tsm") == 0)
		so.attestation_type = "tdx";
	if (rc == DD_OK)
		rc = dd_rt_server_new(loop, &so, &r->server);
	if (rc == DD_OK)
		rc = dd_service_on_shutdown(r->svc, on_shutdown, r);
	if (rc) {
		snprintf(why, why_len, "starting the socket server");
		return rc;
	}
	return dd_rt_server_listen(r->server, why, why_len);
}

/* Only what start() made; the loop is already empty or closed. */
static void teardown(struct rt *r)
{
	if (!r->stopping && r->quotes != NULL)
		dd_quote_provider_close(r->quotes);
	dd_rt_server_free(r->server);
	dd_rt_apps_free(r->apps);
	dd_rt_procs_free(r->procs);
	dd_rt_argv_free(r->base_env);
	if (r->bin_dir[0] != '\0')
		dd_rt_remove_dir(r->bin_dir);
}

dd_err_t dd_runtime_run(const dd_config *cfg)
{
	struct rt r;
	char why[512] = "";
	uv_timer_t first_turn;
	sigset_t old_mask;
	dd_err_t rc;

	memset(&r, 0, sizeof r);
	r.cfg = cfg;
	hold_stdio();
	rc = dd_unixsock_prepare(cfg->ee_socket, "EE_SOCKET_PATH", why,
				 sizeof why);
	if (rc == DD_OK)
		rc = make_bin_dir(&r, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_rt_env_base(environ, cfg->ee_socket, &r.base_env);
	if (rc == DD_OK)
		rc = dd_service_new(cfg, "runtime", &r.svc);
	if (rc == DD_OK)
		rc = start(&r, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "runtime: %s", why[0] ? why : "starting");
		goto out;
	}
	dd_log_info("listening on %s: a local runtime, NOT sealed (quotes: %s, "
		    "releases: %s)", cfg->ee_socket,
		    dd_quote_provider_kind(r.quotes),
		    cfg->runtime.releases_dir ? cfg->runtime.releases_dir
					      : "none");
	hold_signals(dd_service_loop(r.svc), &first_turn, &old_mask);
	dd_service_ready(r.svc);
	rc = dd_service_run(r.svc);
	/*
	 * The service gives up on pending work 2 s after its (absent)
	 * listeners drained, but workloads are owed their whole grace
	 * period and SIGKILL after it: the loop goes on until they are gone.
	 */
	if (r.stopping)
		(void)uv_run(dd_service_loop(r.svc), UV_RUN_DEFAULT);
out:
	/* The service closes any handle still open before ours are freed. */
	if (r.svc != NULL && !r.stopping && r.procs != NULL)
		dd_rt_procs_shutdown(r.procs, on_part_done, &r);
	dd_service_free(r.svc);
	teardown(&r);
	return rc;
}
