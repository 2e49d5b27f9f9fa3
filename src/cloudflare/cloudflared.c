#include "cloudflare/cloudflared.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

extern char **environ;

#define TOKEN_VAR "TUNNEL_TOKEN="
#define CS(s) ((char *)(uintptr_t)(s))

/* One stream's partial line. */
struct line {
	char *buf;
	size_t len;
	bool cut;        /* the current line passed max_line */
};

/* One spawn: freed once its process and pipe handles have all closed. */
struct run {
	dd_cloudflared *c;
	uv_process_t proc;
	uv_pipe_t pipe[2];
	struct line line[2];
	unsigned open;   /* handles not yet closed */
	bool exited;
	uint64_t started_ms;
};

struct dd_cloudflared {
	uv_loop_t *loop;
	dd_cloudflared_opts o;   /* path/self_exe/token point at copies */
	char *path, *self_exe, *token;
	size_t token_len;
	uv_timer_t restart, kill;
	unsigned handles_open;   /* our two timers */
	unsigned runs;           /* runs not yet freed */
	struct run *cur;         /* the running spawn, NULL otherwise */
	unsigned quick;          /* short runs in a row */
	bool stopped, closing;
	dd_cloudflared_status st;
};

static void maybe_free(dd_cloudflared *c)
{
	if (!c->closing || c->handles_open > 0 || c->runs > 0)
		return;
	dd_freezero(c->token, c->token_len);
	dd_free(c->path);
	dd_free(c->self_exe);
	dd_free(c);
}

static void run_free(struct run *r)
{
	dd_cloudflared *c = r->c;

	for (int i = 0; i < 2; i++)
		dd_free(r->line[i].buf);
	dd_free(r);
	c->runs--;
	maybe_free(c);
}

static void on_run_handle_closed(uv_handle_t *h)
{
	struct run *r = h->data;

	if (--r->open == 0)
		run_free(r);
}

static void emit(dd_cloudflared *c, struct line *l)
{
	if (l->len > 0 && l->buf[l->len - 1] == '\r')
		l->len--;
	if (l->len > 0 || l->cut)
		dd_log_info("cloudflared: %.*s%s", (int)l->len, l->buf,
			    l->cut ? " [line cut]" : "");
	l->len = 0;
	l->cut = false;
	(void)c;
}

static void take_bytes(dd_cloudflared *c, struct line *l, const char *p,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			emit(c, l);
		} else if (l->len < c->o.max_line) {
			l->buf[l->len++] = p[i];
		} else {
			l->cut = true;
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char scratch[4096]; /* reads are consumed before the next */

	(void)h;
	(void)hint;
	b->base = scratch;
	b->len = sizeof scratch;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct run *r = s->data;
	int i = s == (uv_stream_t *)&r->pipe[0] ? 0 : 1;

	if (n > 0) {
		take_bytes(r->c, &r->line[i], b->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* EOF or error: what is left is the last line. */
	emit(r->c, &r->line[i]);
	uv_read_stop(s);
	uv_close((uv_handle_t *)s, on_run_handle_closed);
}

static void schedule_restart(dd_cloudflared *c, uint64_t ran_ms);

static void note_exit(dd_cloudflared *c, int64_t status, int sig,
		      uint64_t ran_ms)
{
	c->st.running = false;
	c->st.pid = 0;
	c->st.exits++;
	c->st.last_status = status;
	c->st.last_signal = sig;
	c->st.down_since_ms = uv_now(c->loop);
	if (c->closing)
		return;
	if (!c->stopped)
		schedule_restart(c, ran_ms);
	if (c->o.exited != NULL)
		c->o.exited(c->o.ud, status, sig);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct run *r = p->data;
	dd_cloudflared *c = r->c;
	uint64_t ran = uv_now(c->loop) - r->started_ms;

	r->exited = true;
	if (c->cur == r)
		c->cur = NULL;
	uv_timer_stop(&c->kill);
	if (sig != 0)
		dd_log_warn("cloudflared (pid %d) killed by signal %d after "
			    "%llu ms", p->pid, sig, (unsigned long long)ran);
	else
		dd_log_warn("cloudflared (pid %d) exited with status %lld "
			    "after %llu ms", p->pid, (long long)status,
			    (unsigned long long)ran);
	uv_close((uv_handle_t *)p, on_run_handle_closed);
	note_exit(c, sig != 0 ? -1 : status, sig, ran);
}

/* Our environment without our secrets, plus the token. NULL: NOMEM. */
static char **child_env(const dd_cloudflared *c)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = dd_calloc(n + 2, sizeof *env);
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *v = environ[i];

		if (strncmp(v, "DD_", 3) == 0 || strncmp(v, "EE_", 3) == 0 ||
		    strncmp(v, TOKEN_VAR, strlen(TOKEN_VAR)) == 0)
			continue;
		env[k++] = environ[i];
	}
	env[k] = c->token;
	return env;
}

static int spawn_run(dd_cloudflared *c, struct run *r)
{
	char ppid[24];
	/* execve never writes to argv: the casts only drop const. */
	char *direct[] = {CS("cloudflared"), CS("tunnel"),
			  CS("--no-autoupdate"), CS("--metrics="), CS("run"),
			  NULL};
	char *tramp[10];
	uv_stdio_container_t stdio[3];
	uv_process_options_t opt;
	char **env = child_env(c);
	int rc;

	if (env == NULL)
		return UV_ENOMEM;
	snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
	tramp[0] = c->self_exe;
	tramp[1] = CS(DD_CLOUDFLARED_EXEC_ARG);
	tramp[2] = ppid;
	tramp[3] = c->path;
	for (int i = 0; i < 6; i++)
		tramp[4 + i] = direct[i];
	for (int i = 0; i < 2; i++) {
		uv_pipe_init(c->loop, &r->pipe[i], 0);
		r->pipe[i].data = r;
		r->open++;
	}
	stdio[0].flags = UV_IGNORE;
	for (int i = 0; i < 2; i++) {
		stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[i + 1].data.stream = (uv_stream_t *)&r->pipe[i];
	}
	memset(&opt, 0, sizeof opt);
	opt.file = c->self_exe != NULL ? c->self_exe : c->path;
	opt.args = c->self_exe != NULL ? tramp : direct;
	opt.env = env;
	opt.exit_cb = on_proc_exit;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	r->proc.data = r;
	rc = uv_spawn(c->loop, &r->proc, &opt);
	dd_free(env);
	/* Initialised even when the spawn failed: it is closed either way. */
	r->open++;
	return rc;
}

static void start_run(dd_cloudflared *c)
{
	struct run *r;
	int rc;

	if (c->closing || c->stopped || c->cur != NULL)
		return;
	c->st.starts++;
	r = dd_calloc(1, sizeof *r);
	if (r != NULL) {
		r->line[0].buf = dd_malloc(c->o.max_line);
		r->line[1].buf = dd_malloc(c->o.max_line);
	}
	if (r == NULL || r->line[0].buf == NULL || r->line[1].buf == NULL) {
		if (r != NULL) {
			dd_free(r->line[0].buf);
			dd_free(r->line[1].buf);
		}
		dd_free(r);
		dd_log_err(DD_ERR_NOMEM, "starting cloudflared");
		note_exit(c, -1, 0, 0);
		return;
	}
	r->c = c;
	c->runs++;
	r->started_ms = uv_now(c->loop);
	rc = spawn_run(c, r);
	if (rc != 0) {
		dd_log_error("cannot start cloudflared %s: %s", c->path,
			     uv_strerror(rc));
		if (r->open == 0) {
			run_free(r); /* nothing was initialised */
		} else {
			uv_close((uv_handle_t *)&r->proc, on_run_handle_closed);
			for (int i = 0; i < 2; i++)
				uv_close((uv_handle_t *)&r->pipe[i],
					 on_run_handle_closed);
		}
		note_exit(c, -1, 0, 0);
		return;
	}
	c->cur = r;
	c->st.running = true;
	c->st.pid = r->proc.pid;
	c->st.down_since_ms = 0;
	dd_log_info("cloudflared started (pid %d)", r->proc.pid);
	for (int i = 0; i < 2; i++)
		uv_read_start((uv_stream_t *)&r->pipe[i], on_alloc, on_read);
}

static void on_restart(uv_timer_t *t)
{
	start_run(t->data);
}

static void schedule_restart(dd_cloudflared *c, uint64_t ran_ms)
{
	uint64_t wait = c->o.backoff_ms;

	if (ran_ms >= c->o.stable_ms)
		c->quick = 0;
	for (unsigned i = 0; i < c->quick && wait < c->o.backoff_max_ms; i++)
		wait *= 2;
	if (wait > c->o.backoff_max_ms)
		wait = c->o.backoff_max_ms;
	c->quick++;
	dd_log_info("cloudflared restarts in %llu ms", (unsigned long long)wait);
	uv_timer_start(&c->restart, on_restart, wait, 0);
}

static char *copy_opt(const char *s)
{
	return s != NULL ? dd_strdup(s) : NULL;
}

dd_err_t dd_cloudflared_new(uv_loop_t *loop, const dd_cloudflared_opts *opts,
			    dd_cloudflared **out)
{
	dd_cloudflared *c;
	size_t tn;

	*out = NULL;
	if (opts->path == NULL || opts->path[0] == '\0' ||
	    opts->token == NULL || opts->token[0] == '\0' ||
	    opts->max_line > DD_CLOUDFLARED_MAX_LINE)
		return DD_ERR_CONFIG;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	tn = strlen(TOKEN_VAR) + strlen(opts->token) + 1;
	c->path = dd_strdup(opts->path);
	c->self_exe = copy_opt(opts->self_exe);
	c->token = dd_malloc(tn);
	if (c->path == NULL || c->token == NULL ||
	    (opts->self_exe != NULL && c->self_exe == NULL)) {
		dd_free(c->path);
		dd_free(c->self_exe);
		dd_free(c->token);
		dd_free(c);
		return DD_ERR_NOMEM;
	}
	c->token_len = tn;
	snprintf(c->token, tn, "%s%s", TOKEN_VAR, opts->token);
	c->loop = loop;
	c->o = *opts;
	c->o.path = c->o.token = c->o.self_exe = NULL;
	if (c->o.backoff_ms == 0)
		c->o.backoff_ms = DD_CLOUDFLARED_DEFAULT_BACKOFF_MS;
	if (c->o.backoff_max_ms == 0)
		c->o.backoff_max_ms = DD_CLOUDFLARED_DEFAULT_BACKOFF_MAX_MS;
	if (c->o.backoff_max_ms < c->o.backoff_ms)
		c->o.backoff_max_ms = c->o.backoff_ms;
	if (c->o.stable_ms == 0)
		c->o.stable_ms = DD_CLOUDFLARED_DEFAULT_STABLE_MS;
	if (c->o.grace_ms == 0)
		c->o.grace_ms = DD_CLOUDFLARED_DEFAULT_GRACE_MS;
	if (c->o.max_line == 0)
		c->o.max_line = DD_CLOUDFLARED_DEFAULT_MAX_LINE;
	uv_timer_init(loop, &c->restart);
	uv_timer_init(loop, &c->kill);
	c->restart.data = c->kill.data = c;
	c->handles_open = 2;
	*out = c;
	return DD_OK;
}

void dd_cloudflared_start(dd_cloudflared *c)
{
	c->stopped = false;
	c->st.stopped = false;
	start_run(c);
}

static void on_kill(uv_timer_t *t)
{
	dd_cloudflared *c = t->data;

	if (c->cur != NULL && !c->cur->exited) {
		dd_log_warn("cloudflared ignored SIGTERM; killing it");
		uv_process_kill(&c->cur->proc, SIGKILL);
	}
}

void dd_cloudflared_stop(dd_cloudflared *c)
{
	if (c == NULL)
		return;
	c->stopped = true;
	c->st.stopped = true;
	uv_timer_stop(&c->restart);
	if (c->cur == NULL || c->cur->exited || uv_is_active(
		    (uv_handle_t *)&c->kill))
		return;
	uv_process_kill(&c->cur->proc, SIGTERM);
	uv_timer_start(&c->kill, on_kill, c->o.grace_ms, 0);
}

void dd_cloudflared_status_get(const dd_cloudflared *c,
			       dd_cloudflared_status *out)
{
	*out = c->st;
}

static void on_timer_closed(uv_handle_t *h)
{
	dd_cloudflared *c = h->data;

	c->handles_open--;
	maybe_free(c);
}

void dd_cloudflared_free(dd_cloudflared *c)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	c->stopped = true;
	if (c->cur != NULL && !c->cur->exited) {
		struct run *r = c->cur;

		uv_process_kill(&r->proc, SIGKILL);
		/* No exit callback after close: the run goes with its pipes. */
		uv_close((uv_handle_t *)&r->proc, on_run_handle_closed);
		for (int i = 0; i < 2; i++) {
			if (!uv_is_closing((uv_handle_t *)&r->pipe[i]))
				uv_close((uv_handle_t *)&r->pipe[i],
					 on_run_handle_closed);
		}
		c->cur = NULL;
	}
	uv_close((uv_handle_t *)&c->restart, on_timer_closed);
	uv_close((uv_handle_t *)&c->kill, on_timer_closed);
}

int dd_cloudflared_exec_main(int argc, char **argv)
{
	uint64_t ppid;

	if (argc < 5 || strcmp(argv[1], DD_CLOUDFLARED_EXEC_ARG) != 0 ||
	    dd_parse_u64(argv[2], 1, INT32_MAX, &ppid) != DD_OK) {
		fprintf(stderr, "devopsdefender: bad trampoline arguments\n");
		return 127;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		fprintf(stderr, "devopsdefender: PR_SET_PDEATHSIG: %s\n",
			strerror(errno));
		return 127;
	}
	/* The parent may have died before the prctl took effect. */
	if ((uint64_t)getppid() != ppid)
		return 127;
	execv(argv[3], argv + 4);
	fprintf(stderr, "devopsdefender: cannot execute %s: %s\n", argv[3],
		strerror(errno));
	return 127;
}
