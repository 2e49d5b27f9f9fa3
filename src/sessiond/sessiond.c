#include "sessiond/sessiond.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/log.h"
#include "core/strutil.h"
#include "net/service.h"
#include "net/unixsock.h"
#include "runtime/env.h"
#include "runtime/proc.h"
#include "runtime/proto.h"
#include "sessiond/history.h"
#include "sessiond/recipes.h"
#include "sessiond/recipients.h"
#include "sessiond/server.h"
#include "sessiond/session.h"

/* The close ladder of spec section 5.8: HUP, 250 ms, TERM, 1500 ms, KILL. */
#define HUP_MS 250
#define TERM_MS 1500
#define RCPTS_FILE "recipients.json"

extern char **environ;

struct sd {
	const dd_config *cfg;
	dd_service *svc;
	dd_rt_procs *procs;
	dd_hist *hist;
	dd_recipes *recipes;
	dd_sd_rcpts rcpts;
	dd_sd_sessions *sessions;
	dd_sd_server *server;
	char **base_env;
	char rcpts_path[PATH_MAX];
	uid_t peer_uid;
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

static dd_err_t peer_uid(const dd_config *cfg, uid_t *out, char *why,
			 size_t why_len)
{
	uint64_t v;

	*out = geteuid();
	if (cfg->sessiond.peer_uid == NULL)
		return DD_OK;
	if (dd_parse_u64(cfg->sessiond.peer_uid, 0, 0xfffffffeu, &v)) {
		snprintf(why, why_len, "DD_SESSIOND_PEER_UID: must be a "
			 "numeric uid");
		return DD_ERR_CONFIG;
	}
	*out = (uid_t)v;
	return DD_OK;
}

/* History, recipes and the recipient set: everything read from disk. */
static dd_err_t load(struct sd *d, char *why, size_t why_len)
{
	const dd_sessiond_settings *st = &d->cfg->sessiond;
	dd_hist_opts ho;
	dd_err_t rc;
	int n;

	rc = peer_uid(d->cfg, &d->peer_uid, why, why_len);
	if (rc)
		return rc;
	ho.dir = st->dir;
	ho.max_bytes = st->history_max_bytes;
	ho.session_bytes = st->history_session_bytes;
	ho.segment_bytes = st->history_segment_bytes;
	rc = dd_hist_open(&ho, &d->hist, why, why_len);
	if (rc)
		return rc;
	rc = dd_recipes_load(st->recipes, &d->recipes, why, why_len);
	if (rc)
		return rc == DD_ERR_NOMEM ? rc : DD_ERR_CONFIG;
	n = snprintf(d->rcpts_path, sizeof d->rcpts_path, "%s/" RCPTS_FILE,
		     st->dir);
	if (n < 0 || (size_t)n >= sizeof d->rcpts_path) {
		snprintf(why, why_len, "DD_SESSIOND_DIR is too long");
		return DD_ERR_CONFIG;
	}
	/* A bad file is not fatal: the agent pushes the set again. */
	if (dd_sd_rcpts_load(d->rcpts_path, &d->rcpts, why, why_len) !=
	    DD_OK) {
		dd_log_warn("sessiond: ignoring %s: %s", d->rcpts_path, why);
		memset(&d->rcpts, 0, sizeof d->rcpts);
		why[0] = '\0';
	}
	return dd_rt_env_base(environ, NULL, &d->base_env);
}

static dd_err_t start(struct sd *d, char *why, size_t why_len)
{
	const dd_sessiond_settings *st = &d->cfg->sessiond;
	uv_loop_t *loop = dd_service_loop(d->svc);
	dd_sd_server_opts so;
	dd_sd_opts o;
	dd_err_t rc;

	rc = dd_rt_procs_new(loop, &d->procs);
	if (rc)
		return rc;
	memset(&o, 0, sizeof o);
	o.procs = d->procs;
	o.hist = d->hist;
	o.recipes = d->recipes;
	o.rcpts = &d->rcpts;
	o.base_env = d->base_env;
	o.max_sessions = st->max_sessions;
	o.scrollback = st->scrollback;
	o.hup_ms = HUP_MS;
	o.grace_ms = TERM_MS;
	rc = dd_sd_sessions_new(loop, &o, &d->sessions);
	if (rc)
		return rc;
	memset(&so, 0, sizeof so);
	so.path = st->socket;
	so.peer_uid = d->peer_uid;
	so.max_request = st->max_request;
	so.max_connections = st->max_connections;
	so.sessions = d->sessions;
	so.hist = d->hist;
	so.recipes = d->recipes;
	so.rcpts = &d->rcpts;
	so.rcpts_path = d->rcpts_path;
	rc = dd_sd_server_new(loop, &so, &d->server);
	if (rc == DD_OK)
		rc = dd_sd_server_listen(d->server, why, why_len);
	return rc;
}

static void on_part_done(void *ud)
{
	(void)ud;
}

static void on_procs_done(void *ud)
{
	(void)ud;
	dd_log_info("sessiond: every session has ended");
}

static void on_shutdown(void *ud)
{
	struct sd *d = ud;

	d->stopping = 1;
	dd_sd_server_close(d->server, on_part_done, d);
	dd_sd_sessions_close(d->sessions);
	dd_rt_procs_shutdown(d->procs, on_procs_done, d);
}

static void teardown(struct sd *d)
{
	dd_sd_server_free(d->server);
	dd_sd_sessions_free(d->sessions);
	dd_rt_procs_free(d->procs);
	dd_recipes_free(d->recipes);
	dd_hist_free(d->hist);
	dd_rt_argv_free(d->base_env);
}

dd_err_t dd_sessiond_run(const dd_config *cfg)
{
	struct sd d;
	char why[512] = "";
	dd_err_t rc;

	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	hold_stdio();
	rc = dd_unixsock_prepare(cfg->sessiond.socket, "DD_SESSIOND_SOCKET",
				 why, sizeof why);
	if (rc == DD_OK)
		rc = load(&d, why, sizeof why);
	if (rc == DD_OK)
		rc = dd_service_new(cfg, "sessiond", &d.svc);
	if (rc == DD_OK)
		rc = dd_service_on_shutdown(d.svc, on_shutdown, &d);
	if (rc == DD_OK)
		rc = start(&d, why, sizeof why);
	if (rc) {
		dd_log_err(rc, "sessiond: %s", why[0] ? why : "starting");
		goto out;
	}
	dd_log_info("sessiond: listening on %s (peer uid %ld, %zu history "
		    "recipient(s), history %s)", cfg->sessiond.socket,
		    (long)d.peer_uid, d.rcpts.n, cfg->sessiond.dir);
	dd_service_ready(d.svc);
	rc = dd_service_run(d.svc);
	/* Sessions are owed their close ladder: run until they are gone. */
	if (d.stopping)
		(void)uv_run(dd_service_loop(d.svc), UV_RUN_DEFAULT);
out:
	if (d.svc != NULL && !d.stopping && d.procs != NULL)
		dd_rt_procs_shutdown(d.procs, on_part_done, &d);
	dd_service_free(d.svc);
	teardown(&d);
	return rc;
}
