#include "runtime/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h */
#endif

#define POLL_MS 50       /* while a session is being stopped */
#define LINGER_MS 500    /* output that never ends after the session is gone */
#define GIVE_UP_MS 5000  /* after SIGKILL: processes stuck in the kernel */
#define CHUNK 16384
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct wreq {
	uv_write_t req;
	dd_rt_proc *p;
	uint8_t data[];
};

struct dd_rt_proc {
	dd_rt_procs *ps;
	dd_rt_proc *prev, *next;
	pid_t pid;              /* 0 until started */
	int pty;
	int reaped;
	int gone;               /* no live process of the session left */
	int closing;
	int detached;
	int paused;
	uv_pipe_t s[2];         /* stdout (or the PTY master), stderr */
	int ns;                 /* streams opened */
	int eof[2];
	uv_timer_t timer;       /* stop polling, then the output linger */
	unsigned handles;       /* initialised and not yet closed */
	uint64_t grace_ms;
	uint64_t hup_ms;
	uint64_t term_at;       /* SIGTERM due (hang-up first), 0: sent */
	uint64_t kill_at;       /* 0 until a stop begins */
	uint64_t give_up_at;
	int killed;             /* SIGKILL sent */
	dd_rt_proc_cbs cbs;
	void *ud;
	uint8_t chunk[CHUNK];
};

struct dd_rt_procs {
	uv_loop_t *loop;
	uv_signal_t sigchld;
	dd_rt_proc *list;
	size_t count;
	int shutting_down;
	int closed;
	void (*done)(void *ud);
	void *done_ud;
};

/* ---- the session sweep ------------------------------------------------- */

/*
 * Whether /proc/<pid>/stat names a live member of session (or group) sid.
 * The command name may hold anything, so fields are read after its last
 * ')': " S ppid pgrp session".
 */
static int member_of(uint64_t pid, pid_t sid)
{
	char path[64], buf[512];
	const char *p, *end, *f[4];
	size_t flen[4];
	uint64_t pgrp, session;
	ssize_t n;
	int fd, k = 0;

	snprintf(path, sizeof path, "/proc/%llu/stat", (unsigned long long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	p = memrchr(buf, ')', (size_t)n);
	end = buf + n;
	if (p == NULL)
		return 0;
	p++;
	while (k < 4 && p < end) {
		while (p < end && *p == ' ')
			p++;
		f[k] = p;
		while (p < end && *p != ' ')
			p++;
		flen[k] = (size_t)(p - f[k]);
		if (flen[k] > 0)
			k++;
	}
	if (k < 4 || flen[0] != 1 || f[0][0] == 'Z' || f[0][0] == 'X')
		return 0;
	if (dd_parse_u64n(f[2], flen[2], 0, INT32_MAX, &pgrp) != DD_OK ||
	    dd_parse_u64n(f[3], flen[3], 0, INT32_MAX, &session) != DD_OK)
		return 0;
	return pgrp == (uint64_t)sid || session == (uint64_t)sid;
}

size_t dd_rt_session_sweep(pid_t sid, int sig)
{
	DIR *d;
	struct dirent *de;
	uint64_t pid, self = (uint64_t)getpid();
	size_t n = 0;

	if (sid <= 1)
		return 0;
	/* The group at once first, so a fork race cannot outrun the scan. */
	if (sig != 0)
		(void)kill(-sid, sig);
	d = opendir("/proc");
	if (d == NULL)
		return kill(-sid, 0) == 0 ? 1 : 0;
	while ((de = readdir(d)) != NULL) {
		if (dd_parse_u64(de->d_name, 1, INT32_MAX, &pid) != DD_OK ||
		    pid == self || !member_of(pid, sid))
			continue;
		n++;
		if (sig != 0)
			(void)kill((pid_t)pid, sig);
	}
	closedir(d);
	return n;
}

/* errno in words (uv_strerror knows only libuv's own codes). */
static const char *err_text(int e, char *buf, size_t len)
{
	/* Not strerror_r: its return type differs between glibc and musl. */
	snprintf(buf, len, "%s", dd_strerrno(e));
	return buf;
}

/* ---- lifecycle --------------------------------------------------------- */

static void procs_maybe_done(dd_rt_procs *ps);

static void on_handle_closed(uv_handle_t *h)
{
	dd_rt_proc *p = h->data;
	dd_rt_procs *ps = p->ps;

	if (--p->handles > 0)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		ps->list = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	ps->count--;
	if (!p->detached && p->cbs.done != NULL)
		p->cbs.done(p->ud);
	dd_free(p);
	procs_maybe_done(ps);
}

static void close_all(dd_rt_proc *p)
{
	if (p->closing)
		return;
	p->closing = 1;
	for (int i = 0; i < 2; i++) {
		if (!uv_is_closing((uv_handle_t *)&p->s[i]))
			uv_close((uv_handle_t *)&p->s[i], on_handle_closed);
	}
	uv_close((uv_handle_t *)&p->timer, on_handle_closed);
}

static int all_eof(const dd_rt_proc *p)
{
	for (int i = 0; i < p->ns; i++) {
		if (!p->eof[i])
			return 0;
	}
	return 1;
}

static void on_timer(uv_timer_t *t);

/* Finished once the leader is reaped, the session empty, output over. */
static void maybe_finish(dd_rt_proc *p)
{
	if (p->closing || !p->reaped || !p->gone)
		return;
	if (all_eof(p)) {
		close_all(p);
		return;
	}
	/* Someone who left the session may still hold the output open. */
	uv_timer_start(&p->timer, on_timer, LINGER_MS, 0);
}

static void signal_session(dd_rt_proc *p, int sig)
{
	(void)dd_rt_session_sweep(p->pid, sig);
}

static void send_term(dd_rt_proc *p)
{
	p->term_at = 0;
	signal_session(p, SIGTERM);
	/* A stopped process must be woken to act on SIGTERM. */
	signal_session(p, SIGCONT);
}

static void begin_stop(dd_rt_proc *p)
{
	uint64_t now = uv_now(p->ps->loop);

	if (p->kill_at != 0 || p->gone)
		return;
	p->kill_at = now + p->hup_ms + p->grace_ms;
	if (p->kill_at == 0)
		p->kill_at = 1;
	p->give_up_at = p->kill_at + GIVE_UP_MS;
	if (p->pty)
		signal_session(p, SIGHUP);
	if (p->pty && p->hup_ms > 0)
		p->term_at = now + p->hup_ms;
	else
		send_term(p);
	uv_timer_start(&p->timer, on_timer, POLL_MS, POLL_MS);
}

/* Escalates a stop and notices when the session has emptied. */
static void tick(dd_rt_proc *p)
{
	uint64_t now = uv_now(p->ps->loop);
	size_t n;

	if (p->closing || p->gone)
		return;
	if (p->term_at != 0 && now >= p->term_at)
		send_term(p);
	if (p->kill_at != 0 && now >= p->kill_at && !p->killed) {
		p->killed = 1;
		signal_session(p, SIGKILL);
	}
	if (!p->reaped)
		return; /* SIGCHLD brings the leader's end */
	n = dd_rt_session_sweep(p->pid, p->killed ? SIGKILL : 0);
	if (n > 0 && p->kill_at != 0 && now >= p->give_up_at) {
		dd_log_warn("pid %d: %zu processes of its session survive "
			    "SIGKILL; no longer waiting for them",
			    (int)p->pid, n);
		n = 0;
	}
	if (n == 0) {
		p->gone = 1;
		uv_timer_stop(&p->timer);
		maybe_finish(p);
		return;
	}
	/* The leader left processes behind: they go too. */
	begin_stop(p);
}

static void on_timer(uv_timer_t *t)
{
	dd_rt_proc *p = t->data;

	if (p->gone)
		close_all(p); /* the linger is over */
	else
		tick(p);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
	dd_rt_procs *ps = h->data;
	dd_rt_proc *p, *next;
	int st = 0;
	pid_t r;

	(void)signum;
	for (p = ps->list; p != NULL; p = next) {
		next = p->next;
		if (p->pid == 0 || p->reaped)
			continue;
		do
			r = waitpid(p->pid, &st, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			continue;
		p->reaped = 1;
		if (!p->detached && p->cbs.exited != NULL) {
			if (r > 0 && WIFEXITED(st))
				p->cbs.exited(p->ud, WEXITSTATUS(st), 0);
			else
				p->cbs.exited(p->ud, -1,
					      r > 0 && WIFSIGNALED(st)
						      ? WTERMSIG(st) : 0);
		}
		tick(p);
	}
}

/* ---- output ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	dd_rt_proc *p = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)p->chunk, sizeof p->chunk);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	dd_rt_proc *p = s->data;
	int i = (uv_pipe_t *)s == &p->s[0] ? 0 : 1;

	(void)buf;
	if (nread == 0)
		return;
	if (nread > 0) {
		if (!p->detached && p->cbs.output != NULL)
			p->cbs.output(p->ud, i + 1, p->chunk, (size_t)nread);
		return;
	}
	/* EOF, or EIO from a PTY whose last slave closed: the stream ends. */
	uv_read_stop(s);
	p->eof[i] = 1;
	if (!p->detached && p->cbs.output != NULL)
		p->cbs.output(p->ud, i + 1, NULL, 0);
	if (p->gone && all_eof(p))
		close_all(p);
}

static void set_reading(dd_rt_proc *p)
{
	for (int i = 0; i < p->ns; i++) {
		if (p->eof[i] || p->closing)
			continue;
		if (p->paused)
			uv_read_stop((uv_stream_t *)&p->s[i]);
		else
			(void)uv_read_start((uv_stream_t *)&p->s[i], on_alloc,
					    on_read);
	}
}

/* ---- spawning ---------------------------------------------------------- */

static const char *env_path(char *const *env)
{
	for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
		if (strncmp(env[i], "PATH=", 5) == 0)
			return env[i] + 5;
	}
	return DEFAULT_PATH;
}

/* cmd as execvp would find it, looked up in the child's PATH. */
static int resolve(const char *cmd, char *const *env, char *out,
		   size_t out_len)
{
	const char *dirs = env_path(env), *end;
	struct stat st;
	size_t dlen;
	int n;

	if (cmd[0] == '\0')
		return ENOENT;
	if (strchr(cmd, '/') != NULL) {
		n = snprintf(out, out_len, "%s", cmd);
		return n < 0 || (size_t)n >= out_len ? ENAMETOOLONG : 0;
	}
	for (;;) {
		end = strchr(dirs, ':');
		dlen = end != NULL ? (size_t)(end - dirs) : strlen(dirs);
		n = dlen == 0 ? snprintf(out, out_len, "./%s", cmd)
			      : snprintf(out, out_len, "%.*s/%s", (int)dlen,
					 dirs, cmd);
		if (n > 0 && (size_t)n < out_len && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		if (end == NULL)
			return ENOENT;
		dirs = end + 1;
	}
}

struct plan {
	const char *path;
	char *const *argv;
	char *const *env;
	const char *cwd;        /* NULL: ours */
	int in, out, err;       /* become 0, 1, 2 */
	int ctty;
	int report;             /* errno goes here if exec fails */
};

/*
 * The child between fork and exec: async-signal-safe calls only, and no
 * allocation (the parent is multi-threaded).
 */
static void child_exec(const struct plan *pl) __attribute__((noreturn));

static void child_exec(const struct plan *pl)
{
	struct sigaction sa;
	sigset_t none;
	int e;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	/* Ignored signals would survive exec (SIGPIPE is ignored here). */
	for (int s = 1; s < NSIG; s++)
		(void)sigaction(s, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		goto fail;
	if (pl->ctty && ioctl(pl->in, TIOCSCTTY, 0) < 0)
		goto fail;
	if (dup2(pl->in, 0) < 0 || dup2(pl->out, 1) < 0 ||
	    dup2(pl->err, 2) < 0)
		goto fail;
	if (pl->cwd != NULL && chdir(pl->cwd) != 0)
		goto fail;
	/* Belt and braces: whatever a library opened without O_CLOEXEC.
	 * The raw syscall: musl has no close_range() wrapper. */
	(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(pl->path, pl->argv, pl->env);
fail:
	e = errno;
	(void)!write(pl->report, &e, sizeof e);
	_exit(127);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The child's stdio: a PTY (one fd for all three) or /dev/null + pipes. */
static int make_stdio(const dd_rt_spawn *o, int mine[2], int theirs[3])
{
	struct winsize ws = {.ws_row = o->rows ? o->rows : 24,
			     .ws_col = o->cols ? o->cols : 80};
	char name[64];
	int fds[2];

	if (o->pty) {
		mine[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (mine[0] < 0 || grantpt(mine[0]) != 0 ||
		    unlockpt(mine[0]) != 0 ||
		    ptsname_r(mine[0], name, sizeof name) != 0)
			return errno;
		theirs[0] = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (theirs[0] < 0 || ioctl(theirs[0], TIOCSWINSZ, &ws) != 0)
			return errno;
		theirs[1] = dup(theirs[0]);
		theirs[2] = dup(theirs[0]);
		if (theirs[1] < 0 || theirs[2] < 0)
			return errno;
		return 0;
	}
	theirs[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (theirs[0] < 0)
		return errno;
	for (int i = 0; i < 2; i++) {
		if (pipe2(fds, O_CLOEXEC) != 0)
			return errno;
		mine[i] = fds[0];
		theirs[i + 1] = fds[1];
	}
	return 0;
}

/* Forks and executes; 0, or the errno of whatever failed. */
static int start_child(const struct plan *pl, pid_t *pid)
{
	sigset_t all, old;
	int rep[2], e = 0;
	ssize_t n;

	if (pipe2(rep, O_CLOEXEC) != 0)
		return errno;
	/* No handler of ours may run in the child before exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	*pid = fork();
	if (*pid == 0) {
		struct plan mine = *pl;

		mine.report = rep[1];
		child_exec(&mine);
	}
	if (*pid < 0)
		e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(rep[1]);
	if (e == 0) {
		/* EOF: exec succeeded (the pipe was close-on-exec). */
		do
			n = read(rep[0], &e, sizeof e);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof e)
			e = 0;
		if (e != 0) {
			while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
				;
			*pid = 0;
		}
	}
	close(rep[0]);
	return e;
}

/* Cleans up a proc that never started: no callbacks, closed from the loop. */
static void abandon(dd_rt_proc *p)
{
	p->detached = 1;
	p->reaped = 1;
	p->gone = 1;
	close_all(p);
}

dd_err_t dd_rt_proc_spawn(dd_rt_procs *ps, const dd_rt_spawn *o,
			  dd_rt_proc **out, char *why, size_t why_len)
{
	char path[PATH_MAX], ebuf[128];
	int mine[2] = {-1, -1}, theirs[3] = {-1, -1, -1}, e;
	struct plan pl;
	dd_rt_proc *p;
	pid_t pid = 0;

	*out = NULL;
	why[0] = '\0';
	if (ps->shutting_down) {
		snprintf(why, why_len, "the runtime is shutting down");
		return DD_ERR_CLOSED;
	}
	if (o->argv == NULL || o->argv[0] == NULL)
		return DD_ERR_INVALID;
	e = resolve(o->argv[0], o->env, path, sizeof path);
	if (e) {
		snprintf(why, why_len, "%s: %s", o->argv[0],
			 err_text(e, ebuf, sizeof ebuf));
		return DD_ERR_NOT_FOUND;
	}
	p = dd_calloc(1, sizeof *p);
	if (p == NULL) {
		snprintf(why, why_len, "out of memory");
		return DD_ERR_NOMEM;
	}
	p->ps = ps;
	p->pty = o->pty;
	p->grace_ms = o->grace_ms;
	p->hup_ms = o->pty ? o->hup_ms : 0;
	p->detached = 1; /* until it has started */
	for (int i = 0; i < 2; i++) {
		(void)uv_pipe_init(ps->loop, &p->s[i], 0);
		p->s[i].data = p;
	}
	(void)uv_timer_init(ps->loop, &p->timer);
	p->timer.data = p;
	p->handles = 3;
	p->next = ps->list;
	if (ps->list != NULL)
		ps->list->prev = p;
	ps->list = p;
	ps->count++;

	e = make_stdio(o, mine, theirs);
	p->ns = o->pty ? 1 : 2;
	for (int i = 0; e == 0 && i < p->ns; i++) {
		e = -uv_pipe_open(&p->s[i], mine[i]);
		if (e == 0)
			mine[i] = -1; /* the handle owns it */
	}
	if (e == 0) {
		pl = (struct plan){.path = path, .argv = o->argv,
				   .env = o->env, .cwd = o->cwd,
				   .in = theirs[0],
				   .out = theirs[1], .err = theirs[2],
				   .ctty = o->pty, .report = -1};
		e = start_child(&pl, &pid);
	}
	for (int i = 0; i < 3; i++)
		close_fd(&theirs[i]);
	close_fd(&mine[0]);
	close_fd(&mine[1]);
	if (e) {
		snprintf(why, why_len, "%s: %s", o->argv[0],
			 err_text(e, ebuf, sizeof ebuf));
		abandon(p);
		return DD_ERR_IO;
	}
	p->pid = pid;
	p->cbs = o->cbs;
	p->ud = o->ud;
	p->detached = 0;
	set_reading(p);
	*out = p;
	return DD_OK;
}

/* ---- control ----------------------------------------------------------- */

pid_t dd_rt_proc_pid(const dd_rt_proc *p)
{
	return p->reaped ? 0 : p->pid;
}

void dd_rt_proc_stop(dd_rt_proc *p)
{
	if (p->closing || p->gone)
		return;
	begin_stop(p);
	tick(p);
}

dd_err_t dd_rt_proc_resize(dd_rt_proc *p, uint16_t cols, uint16_t rows)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	uv_os_fd_t fd;

	if (!p->pty || p->closing ||
	    uv_fileno((uv_handle_t *)&p->s[0], &fd) != 0)
		return DD_ERR_CLOSED;
	if (ioctl(fd, TIOCSWINSZ, &ws) != 0)
		return DD_ERR_IO;
	/* A background job that asked for the size learns it too. */
	if (!p->gone && p->pid > 1)
		(void)kill(-p->pid, SIGWINCH);
	return DD_OK;
}

void dd_rt_proc_detach(dd_rt_proc *p)
{
	p->detached = 1;
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	dd_rt_proc *p = w->p;

	(void)status; /* a child that stopped reading is not an error here */
	dd_free(w);
	if (!p->detached && !p->closing && p->cbs.drained != NULL)
		p->cbs.drained(p->ud);
}

dd_err_t dd_rt_proc_write(dd_rt_proc *p, const uint8_t *data, size_t len)
{
	struct wreq *w;
	uv_buf_t b;

	if (!p->pty || p->closing || p->eof[0])
		return DD_ERR_CLOSED;
	if (len == 0)
		return DD_OK;
	w = dd_malloc(sizeof *w + len);
	if (w == NULL)
		return DD_ERR_NOMEM;
	w->p = p;
	memcpy(w->data, data, len);
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&p->s[0], &b, 1, on_write) != 0) {
		dd_free(w);
		return DD_ERR_CLOSED;
	}
	return DD_OK;
}

size_t dd_rt_proc_write_queue(const dd_rt_proc *p)
{
	return p->pty ? p->s[0].write_queue_size : 0;
}

void dd_rt_proc_pause(dd_rt_proc *p, int paused)
{
	p->paused = paused;
	set_reading(p);
}

/* ---- the registry ------------------------------------------------------ */

dd_err_t dd_rt_procs_new(uv_loop_t *loop, dd_rt_procs **out)
{
	dd_rt_procs *ps = dd_calloc(1, sizeof *ps);

	*out = NULL;
	if (ps == NULL)
		return DD_ERR_NOMEM;
	ps->loop = loop;
	(void)uv_signal_init(loop, &ps->sigchld);
	ps->sigchld.data = ps;
	/* Fails only for a signal number that does not exist. */
	(void)uv_signal_start(&ps->sigchld, on_sigchld, SIGCHLD);
	/* Children keep the loop alive through their own handles. */
	uv_unref((uv_handle_t *)&ps->sigchld);
	*out = ps;
	return DD_OK;
}

static void on_sigchld_closed(uv_handle_t *h)
{
	dd_rt_procs *ps = h->data;

	if (ps->done != NULL)
		ps->done(ps->done_ud);
}

static void procs_maybe_done(dd_rt_procs *ps)
{
	if (!ps->shutting_down || ps->count > 0 || ps->closed)
		return;
	ps->closed = 1;
	uv_close((uv_handle_t *)&ps->sigchld, on_sigchld_closed);
}

void dd_rt_procs_shutdown(dd_rt_procs *ps, void (*done)(void *ud), void *ud)
{
	dd_rt_proc *p, *next;

	if (ps->shutting_down)
		return;
	ps->shutting_down = 1;
	ps->done = done;
	ps->done_ud = ud;
	for (p = ps->list; p != NULL; p = next) {
		next = p->next;
		dd_rt_proc_stop(p);
	}
	procs_maybe_done(ps);
}

void dd_rt_procs_free(dd_rt_procs *ps)
{
	dd_free(ps);
}

size_t dd_rt_procs_count(const dd_rt_procs *ps)
{
	return ps->count;
}
