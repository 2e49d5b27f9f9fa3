#include "net/service.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

struct hook {
	void (*cb)(void *ud);
	void *ud;
};

struct dd_service {
	const dd_config *cfg;
	char name[32];
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	struct {
		char label[32];
		dd_http_server *srv;
		bool draining;
	} servers[DD_SERVICE_MAX_SERVERS];
	size_t nservers;
	size_t draining;
	struct hook hooks[8];
	size_t nhooks;
	struct hook drained[8];
	size_t ndrained;
	uv_timer_t hard_stop;
	bool stopping;
};

dd_err_t dd_service_new(const dd_config *cfg, const char *name,
			dd_service **out)
{
	dd_service *svc = dd_calloc(1, sizeof *svc);

	*out = NULL;
	if (svc == NULL)
		return DD_ERR_NOMEM;
	if (uv_loop_init(&svc->loop)) {
		dd_free(svc);
		return DD_ERR_IO;
	}
	svc->cfg = cfg;
	snprintf(svc->name, sizeof svc->name, "%s", name);
	/* A peer closing mid-write must be an error return, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(&svc->loop, &svc->sigint);
	uv_signal_init(&svc->loop, &svc->sigterm);
	svc->sigint.data = svc->sigterm.data = svc;
	uv_timer_init(&svc->loop, &svc->hard_stop);
	svc->hard_stop.data = svc;
	*out = svc;
	return DD_OK;
}

struct walk {
	const uv_handle_t *skip;
	size_t active;
};

static void walk_close(uv_handle_t *h, void *ud)
{
	struct walk *w = ud;

	if (uv_is_closing(h))
		return;
	if (h != w->skip && uv_is_active(h) && uv_has_ref(h))
		w->active++;
	uv_close(h, NULL);
}

void dd_service_free(dd_service *svc)
{
	if (svc == NULL)
		return;
	/* Anything still open is closed so the loop can be torn down. */
	struct walk w = {(uv_handle_t *)&svc->hard_stop, 0};
	uv_walk(&svc->loop, walk_close, &w);
	if (w.active > 0 && svc->stopping)
		dd_log_warn("closing %zu handles still active at exit", w.active);
	uv_run(&svc->loop, UV_RUN_DEFAULT);
	uv_loop_close(&svc->loop);
	for (size_t i = 0; i < svc->nservers; i++)
		dd_http_server_free(svc->servers[i].srv);
	dd_free(svc);
}

uv_loop_t *dd_service_loop(dd_service *svc)
{
	return &svc->loop;
}

dd_err_t dd_service_server(dd_service *svc, const char *label,
			   dd_http_server **out)
{
	char name[64];
	dd_err_t rc;

	if (svc->nservers == DD_SERVICE_MAX_SERVERS)
		return DD_ERR_TOO_LARGE;
	snprintf(name, sizeof name, "%s-%s", svc->name, label);
	rc = dd_http_server_new(&svc->loop, &svc->cfg->http, name, out);
	if (rc)
		return rc;
	snprintf(svc->servers[svc->nservers].label,
		 sizeof svc->servers[0].label, "%s", label);
	svc->servers[svc->nservers].srv = *out;
	svc->nservers++;
	return DD_OK;
}

dd_err_t dd_service_listen(dd_service *svc, const char *label,
			   const char *addr, uint16_t port)
{
	for (size_t i = 0; i < svc->nservers; i++) {
		if (strcmp(svc->servers[i].label, label) == 0)
			return dd_http_server_listen(svc->servers[i].srv, addr, port);
	}
	return DD_ERR_NOT_FOUND;
}

dd_err_t dd_service_on_shutdown(dd_service *svc, void (*cb)(void *ud),
				void *ud)
{
	if (svc->nhooks == sizeof svc->hooks / sizeof svc->hooks[0])
		return DD_ERR_TOO_LARGE;
	svc->hooks[svc->nhooks].cb = cb;
	svc->hooks[svc->nhooks].ud = ud;
	svc->nhooks++;
	return DD_OK;
}

dd_err_t dd_service_on_drained(dd_service *svc, void (*cb)(void *ud),
			       void *ud)
{
	if (svc->ndrained == sizeof svc->drained / sizeof svc->drained[0])
		return DD_ERR_TOO_LARGE;
	svc->drained[svc->ndrained].cb = cb;
	svc->drained[svc->ndrained].ud = ud;
	svc->ndrained++;
	return DD_OK;
}

static void on_signal(uv_signal_t *s, int signum);

/*
 * Signals are watched before anyone can be told we are ready: a
 * supervisor that stops us right after readiness must get a drain, not
 * the default action (which kills the process mid-flight).
 */
static void watch_signals(dd_service *svc)
{
	if (svc->stopping)
		return;
	uv_signal_start(&svc->sigint, on_signal, SIGINT);
	uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
}

void dd_service_ready(dd_service *svc)
{
	const char *fdtext = getenv("DD_READY_FD");
	json_t *line = NULL, *ports;
	char *text = NULL;
	uint64_t fd;

	watch_signals(svc);
	if (fdtext == NULL || dd_parse_u64(fdtext, 3, 1024, &fd) != DD_OK)
		return;
	ports = json_object();
	for (size_t i = 0; ports != NULL && i < svc->nservers; i++)
		json_object_set_new(ports, svc->servers[i].label,
				    json_integer(dd_http_server_port(svc->servers[i].srv)));
	line = json_pack("{s:s, s:o, s:I}", "service", svc->name, "ports",
			 ports ? ports : json_object(), "pid", (json_int_t)getpid());
	if (line != NULL)
		text = json_dumps(line, JSON_COMPACT);
	if (text != NULL) {
		size_t n = strlen(text);
		/* Best effort: a supervisor that went away is not our failure. */
		if (write((int)fd, text, n) == (ssize_t)n)
			(void)!write((int)fd, "\n", 1);
	}
	dd_free(text);
	json_decref(line);
	close((int)fd);
	unsetenv("DD_READY_FD");
}

static void on_hard_stop(uv_timer_t *t)
{
	dd_service *svc = t->data;

	dd_log_warn("work still pending after drain; stopping the loop");
	uv_stop(&svc->loop);
}

static void on_server_drained(dd_http_server *srv, void *ud)
{
	dd_service *svc = ud;

	(void)srv;
	if (--svc->draining > 0)
		return;
	dd_log_info("all listeners drained");
	for (size_t i = 0; i < svc->ndrained; i++)
		svc->drained[i].cb(svc->drained[i].ud);
	/* Unreferenced: it only matters if something else keeps the loop up. */
	uv_timer_start(&svc->hard_stop, on_hard_stop, 2000, 0);
	uv_unref((uv_handle_t *)&svc->hard_stop);
}

void dd_service_stop(dd_service *svc)
{
	if (svc->stopping)
		return;
	svc->stopping = true;
	uv_close((uv_handle_t *)&svc->sigint, NULL);
	uv_close((uv_handle_t *)&svc->sigterm, NULL);
	for (size_t i = 0; i < svc->nhooks; i++)
		svc->hooks[i].cb(svc->hooks[i].ud);
	svc->draining = svc->nservers;
	for (size_t i = 0; i < svc->nservers; i++)
		dd_http_server_shutdown(svc->servers[i].srv,
					svc->cfg->http.drain_timeout_ms,
					on_server_drained, svc);
	/* Stopped before any listener existed: nothing to drain. */
	if (svc->nservers == 0) {
		svc->draining = 1;
		on_server_drained(NULL, svc);
	}
}

static void on_signal(uv_signal_t *s, int signum)
{
	dd_service *svc = s->data;

	dd_log_info("received %s; draining (deadline %llu ms)",
		    signum == SIGINT ? "SIGINT" : "SIGTERM",
		    (unsigned long long)svc->cfg->http.drain_timeout_ms);
	dd_service_stop(svc);
}

dd_err_t dd_service_run(dd_service *svc)
{
	watch_signals(svc);
	uv_run(&svc->loop, UV_RUN_DEFAULT);
	return DD_OK;
}

void dd_service_bind_to_supervisor(void)
{
	const char *p = getenv("DD_SUPERVISOR_PID");
	uint64_t pid;

	if (p == NULL || dd_parse_u64(p, 1, INT32_MAX, &pid) != DD_OK)
		return;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* The supervisor may have died before prctl took effect. */
	if ((uint64_t)getppid() != pid)
		raise(SIGTERM);
}
