/*
 * cloudflared supervision with fake connectors (shell scripts written
 * per test): the token travels in the environment and never in argv,
 * our DD_* secrets stay out of the child, exits restart with back-off,
 * stop ends it for good, long output lines are cut, and with the
 * trampoline (this test binary plays our own) the child dies with its
 * parent. No timing assertions: tests wait for counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloudflare/cloudflared.h"
#include "core/log.h"

#define TOKEN "eyJhIjoiYWNjdCIsInQiOiJ0dW4iLCJzIjoic2VjcmV0In0="

static char self_exe[4096];

struct rec {
	unsigned exits;
	int64_t last_status;
	int last_sig;
};

static void on_exited(void *ud, int64_t status, int sig)
{
	struct rec *r = ud;

	r->exits++;
	r->last_status = status;
	r->last_sig = sig;
}

/* Writes an executable script into dir; returns its path (static). */
static const char *script(const char *dir, const char *body)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/cloudflared", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

static bool guard_fired;

static void on_guard(uv_timer_t *t)
{
	(void)t;
	guard_fired = true;
}

struct env {
	uv_loop_t loop;
	uv_timer_t guard;
	char dir[64];
	dd_cloudflared *c;
	struct rec rec;
};

static void env_up(struct env *e)
{
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/dd-cfd-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(uv_loop_init(&e->loop), 0);
	uv_timer_init(&e->loop, &e->guard);
	guard_fired = false;
	uv_timer_start(&e->guard, on_guard, 20000, 0);
	uv_unref((uv_handle_t *)&e->guard);
}

static void env_start(struct env *e, const char *path, const char *self,
		      uint64_t backoff)
{
	dd_cloudflared_opts o = {.path = path, .token = TOKEN,
				 .self_exe = self, .backoff_ms = backoff,
				 .backoff_max_ms = backoff * 4,
				 .grace_ms = 2000, .max_line = 64,
				 .exited = on_exited, .ud = &e->rec};

	assert_int_equal(dd_cloudflared_new(&e->loop, &o, &e->c), DD_OK);
	dd_cloudflared_start(e->c);
}

static void env_down(struct env *e)
{
	char cmd[128];

	dd_cloudflared_free(e->c);
	uv_close((uv_handle_t *)&e->guard, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0); /* test code: src/ bans system() */
}

static void run_until_exits(struct env *e, unsigned n)
{
	while (e->rec.exits < n) {
		assert_false(guard_fired);
		if (uv_run(&e->loop, UV_RUN_ONCE) == 0)
			assert_true(e->rec.exits >= n);
	}
}

static void run_until_file(struct env *e, const char *path)
{
	while (access(path, F_OK) != 0) {
		assert_false(guard_fired);
		uv_run(&e->loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
}

/* Reads /proc/<pid>/<what> with NULs turned into spaces. */
static void read_proc(int pid, const char *what, char *out, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, out, cap - 1);
	close(fd);
	assert_true(n > 0);
	for (ssize_t i = 0; i < n; i++) {
		if (out[i] == '\0')
			out[i] = '\n';
	}
	out[n] = '\0';
}

static void check_token_placement(const char *self)
{
	struct env e;
	char ready[128], buf[8192];
	dd_cloudflared_status st;

	env_up(&e);
	snprintf(ready, sizeof ready, "%s/ready", e.dir);
	snprintf(buf, sizeof buf, "touch %s\nwhile :; do sleep 1; done", ready);
	setenv("DD_CF_API_TOKEN", "api-secret-must-not-leak", 1);
	setenv("EE_TOKEN", "seal-secret-must-not-leak", 1);
	setenv("TUNNEL_TOKEN", "stale-token", 1);
	setenv("SOME_VAR", "kept", 1);
	env_start(&e, script(e.dir, buf), self, 10);
	run_until_file(&e, ready);
	dd_cloudflared_status_get(e.c, &st);
	assert_true(st.running);
	assert_true(st.pid > 0);

	read_proc(st.pid, "cmdline", buf, sizeof buf);
	assert_null(strstr(buf, TOKEN));
	assert_null(strstr(buf, "--token"));
	assert_non_null(strstr(buf, "\ntunnel\n--no-autoupdate\n--metrics=\nrun"));
	/* The trampoline is gone: cloudflared runs in its place. */
	assert_null(strstr(buf, DD_CLOUDFLARED_EXEC_ARG));

	read_proc(st.pid, "environ", buf, sizeof buf);
	assert_non_null(strstr(buf, "TUNNEL_TOKEN=" TOKEN "\n"));
	assert_null(strstr(buf, "stale-token"));
	assert_null(strstr(buf, "api-secret-must-not-leak"));
	assert_null(strstr(buf, "seal-secret-must-not-leak"));
	assert_non_null(strstr(buf, "SOME_VAR=kept"));

	/* Stopping ends it for good: SIGTERM, reported, no restart. */
	dd_cloudflared_stop(e.c);
	run_until_exits(&e, 1);
	assert_int_equal(e.rec.last_sig, SIGTERM);
	dd_cloudflared_status_get(e.c, &st);
	assert_false(st.running);
	assert_int_equal(st.starts, 1);
	unsetenv("DD_CF_API_TOKEN");
	unsetenv("EE_TOKEN");
	unsetenv("TUNNEL_TOKEN");
	unsetenv("SOME_VAR");
	env_down(&e);
}

static void test_token_in_env_not_argv(void **state)
{
	(void)state;
	check_token_placement(NULL);
}

static void test_token_in_env_not_argv_trampoline(void **state)
{
	(void)state;
	check_token_placement(self_exe);
}

static void test_exit_restarts_with_backoff(void **state)
{
	struct env e;
	dd_cloudflared_status st;

	(void)state;
	env_up(&e);
	env_start(&e, script(e.dir, "echo connecting; exit 3"), NULL, 5);
	run_until_exits(&e, 4);
	assert_int_equal(e.rec.last_status, 3);
	assert_int_equal(e.rec.last_sig, 0);
	dd_cloudflared_status_get(e.c, &st);
	assert_true(st.starts >= 4);
	assert_true(st.exits >= 4);
	assert_int_equal(st.last_status, 3);
	dd_cloudflared_stop(e.c);
	env_down(&e);
}

static void test_missing_binary_backs_off(void **state)
{
	struct env e;
	dd_cloudflared_status st;

	(void)state;
	env_up(&e);
	env_start(&e, "/nonexistent/cloudflared", NULL, 5);
	run_until_exits(&e, 3);
	assert_int_equal(e.rec.last_status, -1);
	dd_cloudflared_status_get(e.c, &st);
	assert_false(st.running);
	assert_true(st.down_since_ms > 0 || st.exits >= 3);
	env_down(&e);
}

static void test_bad_opts(void **state)
{
	uv_loop_t loop;
	dd_cloudflared *c = (void *)1;
	dd_cloudflared_opts o = {.path = "/bin/true"};

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(dd_cloudflared_new(&loop, &o, &c), DD_ERR_CONFIG);
	assert_null(c);
	o.token = "t";
	o.max_line = DD_CLOUDFLARED_MAX_LINE + 1;
	assert_int_equal(dd_cloudflared_new(&loop, &o, &c), DD_ERR_CONFIG);
	uv_loop_close(&loop);
}

/* Output reaches our log (stderr here), lines cut at max_line. */
static void test_output_lines_are_logged_and_cut(void **state)
{
	struct env e;
	char logpath[128], buf[16384];
	int saved, fd;
	ssize_t n;
	FILE *f;

	(void)state;
	env_up(&e);
	snprintf(logpath, sizeof logpath, "%s/log", e.dir);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(2);
	dup2(fd, 2);
	close(fd);
	dd_log_setup(DD_LOG_INFO, DD_LOG_LOGFMT, "test");
	env_start(&e, script(e.dir,
			     "echo short-line-out\n"
			     "echo short-line-err >&2\n"
			     "printf 'A%.0s' $(seq 1 500); echo TAIL-NOT-LOGGED\n"
			     "exit 0"), NULL, 100000);
	run_until_exits(&e, 1);
	/* The pipes may still hold the last bytes: drain them. */
	for (int i = 0; i < 50; i++)
		uv_run(&e.loop, UV_RUN_NOWAIT);
	dd_cloudflared_stop(e.c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	f = fopen(logpath, "r");
	assert_non_null(f);
	n = (ssize_t)fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = '\0';
	env_down(&e);
	assert_non_null(strstr(buf, "cloudflared: short-line-out"));
	assert_non_null(strstr(buf, "cloudflared: short-line-err"));
	assert_non_null(strstr(buf, "[line cut]"));
	assert_null(strstr(buf, "TAIL-NOT-LOGGED"));
	assert_null(strstr(buf, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}

/*
 * A "CP" (forked child) runs cloudflared through the trampoline and is
 * killed with SIGKILL: cloudflared must die too.
 */
static void test_dies_with_parent(void **state)
{
	char dir[] = "/tmp/dd-cfd-XXXXXX", pidfile[128], body[512], buf[64];
	int fds[2];
	pid_t cp, cfd = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
	snprintf(body, sizeof body,
		 "echo $$ > %s.tmp; mv %s.tmp %s\nwhile :; do sleep 1; done",
		 pidfile, pidfile, pidfile);
	script(dir, body);
	assert_int_equal(pipe(fds), 0);
	cp = fork();
	assert_true(cp >= 0);
	if (cp == 0) {
		uv_loop_t loop;
		dd_cloudflared *c;
		char path[256];
		dd_cloudflared_opts o = {.path = path, .token = TOKEN,
					 .self_exe = self_exe};

		snprintf(path, sizeof path, "%s/cloudflared", dir);
		close(fds[0]);
		uv_loop_init(&loop);
		if (dd_cloudflared_new(&loop, &o, &c) != DD_OK)
			_exit(3);
		dd_cloudflared_start(c);
		if (write(fds[1], "x", 1) != 1)
			_exit(5);
		uv_run(&loop, UV_RUN_DEFAULT);
		_exit(4);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], buf, 1), 1);
	close(fds[0]);
	while (access(pidfile, F_OK) != 0)
		usleep(2000);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	cfd = (pid_t)strtol(buf, NULL, 10);
	assert_true(cfd > 0);
	assert_int_equal(kill(cfd, 0), 0);
	kill(cp, SIGKILL);
	assert_int_equal(waitpid(cp, NULL, 0), cp);
	/* Gone, or a zombie waiting for whoever adopted it. */
	for (int i = 0; i < 5000; i++) {
		char stat[512] = "", *rp;

		f = NULL;
		snprintf(buf, sizeof buf, "/proc/%d/stat", (int)cfd);
		f = fopen(buf, "r");
		if (f == NULL)
			break;
		(void)!fgets(stat, sizeof stat, f);
		fclose(f);
		rp = strrchr(stat, ')');
		if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
			break;
		usleep(2000);
		assert_true(i < 4999);
	}
	unlink(pidfile);
	snprintf(buf, sizeof buf, "%s/cloudflared", dir);
	unlink(buf);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_token_in_env_not_argv),
		cmocka_unit_test(test_token_in_env_not_argv_trampoline),
		cmocka_unit_test(test_exit_restarts_with_backoff),
		cmocka_unit_test(test_missing_binary_backs_off),
		cmocka_unit_test(test_output_lines_are_logged_and_cut),
		cmocka_unit_test(test_dies_with_parent),
	};
	ssize_t n;

	/* This binary is also the trampoline, as devopsdefender is. */
	if (argc > 1 && strcmp(argv[1], DD_CLOUDFLARED_EXEC_ARG) == 0)
		return dd_cloudflared_exec_main(argc, argv);
	n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return 1;
	self_exe[n] = '\0';
	signal(SIGPIPE, SIG_IGN);
	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
