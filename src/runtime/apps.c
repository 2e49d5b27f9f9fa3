#include "runtime/apps.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "runtime/env.h"
#include "runtime/logring.h"
#include "runtime/release.h"
#include "runtime/text.h"

#define STABLE_MS 10000u       /* a run this long resets the failure streak */
#define MAX_BACKOFF_MS 30000u
#define MAX_SOURCE 4096u
#define MAX_LOG_LINE 16384u
#define TTY_TERM "TERM=xterm-256color"

enum status {
	ST_DEPLOYING = 0,
	ST_RUNNING,
	ST_RESTARTING,
	ST_COMPLETED,
	ST_FAILED,
	ST_STOPPED,
};

static const char *const status_names[] = {
	"deploying", "running", "restarting", "completed", "failed", "stopped",
};

struct app {
	dd_rt_apps *a;
	struct app *prev, *next;
	char id[DD_RT_ID_LEN + 1];
	dd_rt_spec *spec;
	char *source;
	char *exe;              /* the installed release, or NULL */
	char *error;            /* error_message, or NULL */
	enum status st;
	dd_rt_proc *proc;
	dd_rt_fetch *fetch;
	dd_rt_log *log;
	uv_timer_t timer;       /* restart back-off */
	int64_t started_at;     /* Unix time of the deploy or the last start */
	uint64_t spawned_ms;    /* loop time of the last start */
	int has_exit;
	int exit_code;
	int exit_sig;
	unsigned restarts;
	unsigned streak;        /* quick failures in a row */
	int retiring;           /* replaced: hidden until its process is gone */
	int waiting;            /* for a predecessor's process to go */
};

struct dd_rt_apps {
	uv_loop_t *loop;
	dd_rt_apps_opts o;
	char *releases_dir;
	char *bin_dir;
	struct app *head, *tail;
	size_t listed;
	size_t closing;         /* entries whose timer is still closing */
	int shutting_down;
	void (*done)(void *ud);
	void *done_ud;
};

static void begin(struct app *e);
static void spawn_app(struct app *e);

static void set_error(struct app *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_error(struct app *e, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dd_free(e->error);
	/* Without memory the status alone still tells the story. */
	e->error = dd_strdup(buf);
}

static void fail(struct app *e, const char *prefix, const char *detail)
{
	e->st = ST_FAILED;
	set_error(e, "%s%s", prefix, detail);
	dd_log_warn("%s (%s): failed: %s%s", e->spec->app_name, e->id, prefix,
		    detail);
}

/* ---- entries ----------------------------------------------------------- */

static void maybe_done(dd_rt_apps *a)
{
	if (a->shutting_down && a->head == NULL && a->closing == 0 &&
	    a->done != NULL) {
		void (*done)(void *) = a->done;

		a->done = NULL;
		done(a->done_ud);
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	struct app *e = h->data;
	dd_rt_apps *a = e->a;

	dd_free(e);
	a->closing--;
	maybe_done(a);
}

static void bin_dir_of(const struct app *e, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", e->a->bin_dir, e->id);
}

/* Unlinks and releases e; its timer's close finishes the job. */
static void entry_free(struct app *e)
{
	dd_rt_apps *a = e->a;
	char dir[4096];

	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		a->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		a->tail = e->prev;
	if (!e->retiring)
		a->listed--;
	if (e->proc != NULL) {
		dd_rt_proc_stop(e->proc);
		dd_rt_proc_detach(e->proc);
	}
	if (e->fetch != NULL) {
		dd_rt_fetch_cancel(e->fetch); /* it removes its own files */
	} else if (e->spec->release != NULL) {
		bin_dir_of(e, dir, sizeof dir);
		dd_rt_remove_dir(dir);
	}
	dd_rt_spec_free(e->spec);
	dd_rt_log_free(e->log);
	dd_free(e->source);
	dd_free(e->exe);
	dd_free(e->error);
	a->closing++;
	uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

static struct app *find(const dd_rt_apps *a, const char *id)
{
	for (struct app *e = a->head; e != NULL; e = e->next) {
		if (!e->retiring && strcmp(e->id, id) == 0)
			return e;
	}
	return NULL;
}

/* A predecessor of the same name still has a process on its way out. */
static int blocked(const dd_rt_apps *a, const char *name)
{
	for (struct app *e = a->head; e != NULL; e = e->next) {
		if (e->retiring && e->proc != NULL &&
		    strcmp(e->spec->app_name, name) == 0)
			return 1;
	}
	return 0;
}

/* A predecessor is gone: start whoever waited for the name. */
static void wake(dd_rt_apps *a, const char *name)
{
	struct app *e, *next;

	if (blocked(a, name))
		return;
	for (e = a->head; e != NULL; e = next) {
		next = e->next;
		if (!e->retiring && e->waiting &&
		    strcmp(e->spec->app_name, name) == 0) {
			e->waiting = 0;
			begin(e);
		}
	}
}

/* Replaced by a new deployment: hide it and let its process go. */
static void retire(struct app *e)
{
	e->retiring = 1;
	e->a->listed--;
	e->waiting = 0;
	uv_timer_stop(&e->timer);
	if (e->fetch != NULL) {
		dd_rt_fetch_cancel(e->fetch);
		e->fetch = NULL;
	}
	if (e->proc != NULL)
		dd_rt_proc_stop(e->proc);
	else
		entry_free(e);
}

/* ---- processes --------------------------------------------------------- */

static void app_output(void *ud, int stream, const uint8_t *data, size_t len)
{
	struct app *e = ud;

	/* A line lost to memory is counted by the log; output goes on. */
	if (len == 0)
		(void)dd_rt_log_flush(e->log, stream);
	else
		(void)dd_rt_log_write(e->log, stream, data, len);
}

static void app_exited(void *ud, int code, int sig)
{
	struct app *e = ud;

	e->has_exit = 1;
	e->exit_code = code;
	e->exit_sig = sig;
}

static void on_restart(uv_timer_t *t)
{
	struct app *e = t->data;

	if (e->st != ST_RESTARTING)
		return;
	e->restarts++;
	spawn_app(e);
}

static void describe_exit(const struct app *e, char *out, size_t len)
{
	if (e->exit_sig > 0)
		snprintf(out, len, "killed by signal %d", e->exit_sig);
	else if (e->has_exit && e->exit_code >= 0)
		snprintf(out, len, "exited with code %d", e->exit_code);
	else
		snprintf(out, len, "exited");
}

/* The process and everything of its session are gone: now what. */
static void after_exit(struct app *e)
{
	dd_rt_apps *a = e->a;
	dd_rt_restart pol = e->spec->restart;
	int failed = !e->has_exit || e->exit_code != 0 || e->exit_sig != 0;
	uint64_t now = uv_now(a->loop), delay;
	char what[64];

	describe_exit(e, what, sizeof what);
	if (pol == DD_RT_RESTART_NO ||
	    (pol == DD_RT_RESTART_ON_FAILURE && !failed)) {
		e->st = failed ? ST_FAILED : ST_COMPLETED;
		if (failed)
			set_error(e, "%s", what);
		dd_log_info("%s (%s): %s", e->spec->app_name, e->id, what);
		return;
	}
	if (now - e->spawned_ms >= STABLE_MS)
		e->streak = 0;
	if (e->streak >= a->o.restart_max) {
		e->st = ST_FAILED;
		set_error(e, "%s; gave up after %u restarts in a row", what,
			  e->streak);
		dd_log_warn("%s (%s): %s", e->spec->app_name, e->id, e->error ?
			    e->error : what);
		return;
	}
	e->streak++;
	delay = a->o.backoff_ms;
	for (unsigned i = 1; i < e->streak && delay < MAX_BACKOFF_MS; i++)
		delay *= 2;
	if (delay > MAX_BACKOFF_MS && a->o.backoff_ms <= MAX_BACKOFF_MS)
		delay = MAX_BACKOFF_MS;
	e->st = ST_RESTARTING;
	dd_log_info("%s (%s): %s; restarting in %llu ms", e->spec->app_name,
		    e->id, what, (unsigned long long)delay);
	uv_timer_start(&e->timer, on_restart, delay, 0);
}

static void app_done(void *ud)
{
	struct app *e = ud;
	dd_rt_apps *a = e->a;
	char name[DD_RT_MAX_APP_NAME + 1];

	e->proc = NULL;
	if (e->retiring) {
		snprintf(name, sizeof name, "%s", e->spec->app_name);
		entry_free(e);
		wake(a, name);
		return;
	}
	if (e->st == ST_STOPPED || a->shutting_down)
		return;
	after_exit(e);
}

/* argv with cmd[0] replaced by the installed release, if there is one. */
static dd_err_t build_argv(const struct app *e, char ***out)
{
	const dd_rt_spec *s = e->spec;
	char **v = dd_calloc(s->argc + 1, sizeof *v);

	*out = NULL;
	if (v == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < s->argc; i++) {
		v[i] = dd_strdup(i == 0 && e->exe != NULL ? e->exe
							  : s->argv[i]);
		if (v[i] == NULL) {
			dd_rt_argv_free(v);
			return DD_ERR_NOMEM;
		}
	}
	*out = v;
	return DD_OK;
}

static dd_err_t build_env(const struct app *e, char ***out)
{
	const dd_rt_spec *s = e->spec;
	char *const *extra = s->env;
	size_t n = s->envc;
	char **with_term = NULL;
	dd_err_t rc;

	/* The request's env may still override TERM. */
	if (s->tty) {
		with_term = dd_calloc(n + 2, sizeof *with_term);
		if (with_term == NULL)
			return DD_ERR_NOMEM;
		with_term[0] = (char *)(uintptr_t)TTY_TERM;
		for (size_t i = 0; i < n; i++)
			with_term[i + 1] = s->env[i];
		extra = with_term;
		n++;
	}
	rc = dd_rt_env_compose(e->a->o.base_env, extra, n, out);
	dd_free(with_term);
	return rc;
}

static void spawn_app(struct app *e)
{
	dd_rt_apps *a = e->a;
	char **argv = NULL, **env = NULL;
	char why[DD_RT_WHY];
	dd_rt_spawn o;
	dd_err_t rc;

	rc = build_argv(e, &argv);
	if (rc == DD_OK)
		rc = build_env(e, &env);
	if (rc) {
		fail(e, "spawn failed: ", dd_strerror(rc));
		goto out;
	}
	memset(&o, 0, sizeof o);
	o.argv = argv;
	o.env = env;
	o.pty = e->spec->tty;
	o.grace_ms = a->o.grace_ms;
	o.cbs.output = app_output;
	o.cbs.exited = app_exited;
	o.cbs.done = app_done;
	o.ud = e;
	rc = dd_rt_proc_spawn(a->o.procs, &o, &e->proc, why, sizeof why);
	if (rc) {
		fail(e, "spawn failed: ", why);
		goto out;
	}
	e->st = ST_RUNNING;
	e->started_at = (int64_t)time(NULL);
	e->spawned_ms = uv_now(a->loop);
	dd_log_info("%s (%s): running, pid %d", e->spec->app_name, e->id,
		    (int)dd_rt_proc_pid(e->proc));
	dd_free(e->error);
	e->error = NULL;
out:
	dd_rt_argv_free(argv);
	dd_rt_argv_free(env);
}

static void on_fetched(dd_err_t err, const char *path, const char *why,
		       void *ud)
{
	struct app *e = ud;

	e->fetch = NULL;
	if (err) {
		fail(e, "", why);
		return;
	}
	if (e->spec->argc == 0) {
		e->st = ST_COMPLETED;
		return;
	}
	e->exe = dd_strdup(path);
	if (e->exe == NULL) {
		fail(e, "spawn failed: ", "out of memory");
		return;
	}
	spawn_app(e);
}

static void begin(struct app *e)
{
	dd_rt_apps *a = e->a;
	char dir[4096];
	dd_err_t rc;

	if (e->spec->release != NULL) {
		bin_dir_of(e, dir, sizeof dir);
		rc = dd_rt_fetch_start(a->loop, a->releases_dir, dir,
				       e->spec->release, DD_RT_MAX_ASSET_BYTES,
				       on_fetched, e, &e->fetch);
		if (rc)
			fail(e, "github_release: ", dd_strerror(rc));
		return;
	}
	if (e->spec->argc == 0) {
		fail(e, "", "neither github_release nor cmd specified");
		return;
	}
	spawn_app(e);
}

/* ---- requests ---------------------------------------------------------- */

static dd_err_t make_source(const dd_rt_spec *s, char **out)
{
	size_t room, n;
	dd_buf b;
	dd_err_t rc = DD_OK;

	/* Room for MAX_SOURCE bytes and the "..." of a cut command line. */
	dd_buf_init(&b, MAX_SOURCE + 4);
	if (s->release != NULL) {
		const dd_rt_release *r = s->release;

		rc = dd_buf_appendf(&b, "%s/%s@%s", r->owner, r->repo,
				    r->tag ? r->tag : "latest");
	}
	for (size_t i = 0; s->release == NULL && rc == DD_OK && i < s->argc;
	     i++) {
		if (b.len >= MAX_SOURCE) {
			rc = dd_buf_append_str(&b, "...");
			break;
		}
		if (i > 0)
			rc = dd_buf_append_byte(&b, ' ');
		room = MAX_SOURCE - b.len;
		n = strlen(s->argv[i]);
		if (rc == DD_OK)
			rc = dd_buf_append(&b, s->argv[i], n < room ? n : room);
		if (rc == DD_OK && n > room) {
			rc = dd_buf_append_str(&b, "...");
			break;
		}
	}
	if (rc == DD_OK)
		rc = dd_buf_steal(&b, out, &n);
	dd_buf_free(&b);
	return rc;
}

/* Makes room for one more listed entry: the oldest finished one goes. */
static int make_room(dd_rt_apps *a, const char *name)
{
	size_t same = 0;
	struct app *e;

	for (e = a->head; e != NULL; e = e->next) {
		if (!e->retiring && strcmp(e->spec->app_name, name) == 0)
			same++;
	}
	if (a->listed - same < a->o.max_deployments)
		return 1;
	for (e = a->head; e != NULL; e = e->next) {
		if (!e->retiring && e->proc == NULL && e->fetch == NULL &&
		    (e->st == ST_COMPLETED || e->st == ST_FAILED ||
		     e->st == ST_STOPPED)) {
			entry_free(e);
			return 1;
		}
	}
	return 0;
}

dd_err_t dd_rt_apps_deploy(dd_rt_apps *a, dd_rt_spec *spec,
			   char id[DD_RT_ID_LEN + 1], char *why,
			   size_t why_len)
{
	struct app *e = NULL, *o, *next;
	dd_err_t rc;

	if (a->shutting_down) {
		snprintf(why, why_len, "the runtime is shutting down");
		return DD_ERR_CLOSED;
	}
	if (spec->release != NULL && a->releases_dir == NULL) {
		snprintf(why, why_len, "invalid deploy request: github_release "
			 "needs DD_RUNTIME_RELEASES_DIR (the local runtime "
			 "fetches nothing from the network)");
		return DD_ERR_INVALID;
	}
	if (!make_room(a, spec->app_name)) {
		snprintf(why, why_len, "too many deployments (%u); stop or "
			 "replace one first", a->o.max_deployments);
		return DD_ERR_BUSY;
	}
	rc = DD_ERR_NOMEM;
	e = dd_calloc(1, sizeof *e);
	if (e == NULL)
		goto out;
	e->a = a;
	rc = dd_rt_uuid(e->id);
	if (rc == DD_OK)
		rc = dd_rt_log_new(a->o.log_bytes, MAX_LOG_LINE, &e->log);
	if (rc == DD_OK)
		rc = make_source(spec, &e->source);
	if (rc)
		goto out;
	(void)uv_timer_init(a->loop, &e->timer);
	e->timer.data = e;
	e->spec = spec;
	e->st = ST_DEPLOYING;
	e->started_at = (int64_t)time(NULL);
	for (o = a->head; o != NULL; o = next) {
		next = o->next;
		if (!o->retiring &&
		    strcmp(o->spec->app_name, spec->app_name) == 0)
			retire(o);
	}
	e->prev = a->tail;
	if (a->tail != NULL)
		a->tail->next = e;
	else
		a->head = e;
	a->tail = e;
	a->listed++;
	memcpy(id, e->id, sizeof e->id);
	/* Not the command line: it may carry what should not be logged. */
	dd_log_info("%s (%s): deploying", spec->app_name, e->id);
	if (blocked(a, spec->app_name))
		e->waiting = 1;
	else
		begin(e);
	return DD_OK;
out:
	if (e != NULL) {
		dd_rt_log_free(e->log);
		dd_free(e->source);
		dd_free(e);
	}
	snprintf(why, why_len, "deploy: %s", dd_strerror(rc));
	return rc;
}

dd_err_t dd_rt_apps_stop(dd_rt_apps *a, const char *id, char *why,
			 size_t why_len)
{
	struct app *e = find(a, id);

	if (e == NULL) {
		snprintf(why, why_len, "deployment not found");
		return DD_ERR_NOT_FOUND;
	}
	if (e->st != ST_RUNNING && e->st != ST_DEPLOYING &&
	    e->st != ST_RESTARTING) {
		snprintf(why, why_len, "cannot stop deployment in '%s' status",
			 status_names[e->st]);
		return DD_ERR_INVALID;
	}
	dd_log_info("%s (%s): stopping", e->spec->app_name, e->id);
	e->st = ST_STOPPED;
	e->waiting = 0;
	uv_timer_stop(&e->timer);
	if (e->fetch != NULL) {
		dd_rt_fetch_cancel(e->fetch);
		e->fetch = NULL;
	}
	if (e->proc != NULL)
		dd_rt_proc_stop(e->proc);
	return DD_OK;
}

static json_t *entry_json(const struct app *e)
{
	char when[32];
	pid_t pid = e->proc != NULL ? dd_rt_proc_pid(e->proc) : 0;
	json_t *o;

	dd_rt_rfc3339(e->started_at, when, sizeof when);
	o = json_pack("{s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:I}",
		      "id", e->id,
		      "pid", pid > 0 ? json_integer(pid) : json_null(),
		      "app_name", e->spec->app_name,
		      "source", dd_rt_json_text(e->source, strlen(e->source)),
		      "status", status_names[e->st],
		      "started_at", when,
		      "exit_code", !e->has_exit ? json_null()
				   : json_integer(e->exit_sig ? -1
							      : e->exit_code),
		      "restarts", (json_int_t)e->restarts);
	if (o != NULL && e->error != NULL &&
	    json_object_set_new(o, "error_message",
				dd_rt_json_text(e->error,
						strlen(e->error))) != 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

dd_err_t dd_rt_apps_list(const dd_rt_apps *a, json_t **out)
{
	json_t *arr = json_array();

	*out = NULL;
	if (arr == NULL)
		return DD_ERR_NOMEM;
	for (struct app *e = a->head; e != NULL; e = e->next) {
		if (e->retiring)
			continue;
		if (json_array_append_new(arr, entry_json(e)) != 0) {
			json_decref(arr);
			return DD_ERR_NOMEM;
		}
	}
	*out = arr;
	return DD_OK;
}

dd_err_t dd_rt_apps_logs(const dd_rt_apps *a, const char *id, size_t tail,
			 size_t budget, json_t **lines, char *why,
			 size_t why_len)
{
	const struct app *e = find(a, id);
	const uint8_t *data;
	size_t n, start, len, cost = 0;
	json_t *arr;

	*lines = NULL;
	if (e == NULL) {
		snprintf(why, why_len, "deployment not found");
		return DD_ERR_NOT_FOUND;
	}
	n = dd_rt_log_count(e->log);
	/* Newest first until tail lines or the reply budget is reached. */
	for (start = n; start > 0 && n - start < tail; start--) {
		dd_rt_log_get(e->log, start - 1, &data, &len, NULL);
		cost += dd_rt_json_cost(data, len);
		if (cost > budget)
			break;
	}
	arr = json_array();
	for (size_t i = start; arr != NULL && i < n; i++) {
		dd_rt_log_get(e->log, i, &data, &len, NULL);
		if (json_array_append_new(arr, dd_rt_json_text(data, len))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr == NULL) {
		snprintf(why, why_len, "read log: out of memory");
		return DD_ERR_NOMEM;
	}
	*lines = arr;
	return DD_OK;
}

size_t dd_rt_apps_count(const dd_rt_apps *a)
{
	return a->listed;
}

/* ---- life -------------------------------------------------------------- */

dd_err_t dd_rt_apps_new(uv_loop_t *loop, const dd_rt_apps_opts *o,
			dd_rt_apps **out)
{
	dd_rt_apps *a = dd_calloc(1, sizeof *a);

	*out = NULL;
	if (a == NULL)
		return DD_ERR_NOMEM;
	a->loop = loop;
	a->o = *o;
	if (o->releases_dir != NULL)
		a->releases_dir = dd_strdup(o->releases_dir);
	a->bin_dir = dd_strdup(o->bin_dir);
	if ((o->releases_dir != NULL && a->releases_dir == NULL) ||
	    a->bin_dir == NULL) {
		dd_rt_apps_free(a);
		return DD_ERR_NOMEM;
	}
	a->o.releases_dir = a->releases_dir;
	a->o.bin_dir = a->bin_dir;
	*out = a;
	return DD_OK;
}

void dd_rt_apps_shutdown(dd_rt_apps *a, void (*done)(void *ud), void *ud)
{
	if (a->shutting_down)
		return;
	a->shutting_down = 1;
	a->done = done;
	a->done_ud = ud;
	while (a->head != NULL)
		entry_free(a->head);
	maybe_done(a);
}

void dd_rt_apps_free(dd_rt_apps *a)
{
	if (a == NULL)
		return;
	dd_free(a->releases_dir);
	dd_free(a->bin_dir);
	dd_free(a);
}
