/*
 * test_runtime_proc.c: the runtime's children on a real loop: output and
 * exit codes, sessions of their own, SIGTERM then SIGKILL, processes
 * left behind by a leader, PTYs with a controlling terminal, descriptor
 * hygiene, and shutdown of the whole registry.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/alloc.h"
#include "runtime/proc.h"

#define SV(a) ((char *const *)(uintptr_t)(a))

extern char **environ;

typedef struct ev {
	char out[2][8192];
	size_t len[2];
	int eof[2];
	int exited, code, sig;
	int done;
	int drained;
} ev;

typedef struct fx {
	uv_loop_t loop;
	dd_rt_procs *ps;
	int shut;
} fx;

static void on_output(void *ud, int stream, const uint8_t *data, size_t len)
{
	ev *e = ud;
	int i = stream - 1;

	if (len == 0) {
		e->eof[i] = 1;
		return;
	}
	if (len > sizeof e->out[i] - 1 - e->len[i])
		len = sizeof e->out[i] - 1 - e->len[i];
	memcpy(e->out[i] + e->len[i], data, len);
	e->len[i] += len;
	e->out[i][e->len[i]] = '\0';
}

static void on_exited(void *ud, int code, int sig)
{
	ev *e = ud;

	e->exited++;
	e->code = code;
	e->sig = sig;
}

static void on_done(void *ud)
{
	ev *e = ud;

	e->done++;
}

static void on_drained(void *ud)
{
	ev *e = ud;

	e->drained++;
}

static void on_shut(void *ud)
{
	fx *f = ud;

	f->shut = 1;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(dd_rt_procs_new(&f->loop, &f->ps), DD_OK);
	*state = f;
	return 0;
}

static void on_stop_timer(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *flag is set or ms pass. */
static int run_until(fx *f, const int *flag, uint64_t ms)
{
	uv_timer_t t;
	uint64_t end = uv_now(&f->loop) + ms;

	uv_timer_init(&f->loop, &t);
	uv_timer_start(&t, on_stop_timer, 10, 10);
	while (!*flag && uv_now(&f->loop) < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return *flag;
}

static int teardown(void **state)
{
	fx *f = *state;

	dd_rt_procs_shutdown(f->ps, on_shut, f);
	assert_true(run_until(f, &f->shut, 10000));
	assert_int_equal(dd_rt_procs_count(f->ps), 0);
	dd_rt_procs_free(f->ps);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static dd_err_t spawn(fx *f, const char *const *argv, int pty, ev *e,
		      dd_rt_proc **p, char *why)
{
	dd_rt_spawn o;

	memset(&o, 0, sizeof o);
	o.argv = SV(argv);
	o.env = environ;
	o.pty = pty;
	o.grace_ms = 300;
	o.cbs.output = on_output;
	o.cbs.exited = on_exited;
	o.cbs.done = on_done;
	o.cbs.drained = on_drained;
	o.ud = e;
	return dd_rt_proc_spawn(f->ps, &o, p, why, 256);
}

static void output_and_exit_code(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3",
			      NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0};

	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	assert_true(dd_rt_proc_pid(p) > 1);
	assert_true(run_until(f, &e.done, 10000));
	assert_string_equal(e.out[0], "out\n");
	assert_string_equal(e.out[1], "err\n");
	assert_true(e.eof[0] && e.eof[1]);
	assert_int_equal(e.exited, 1);
	assert_int_equal(e.code, 3);
	assert_int_equal(e.sig, 0);
	assert_int_equal(dd_rt_procs_count(f->ps), 0);
}

static void spawn_failures(void **state)
{
	fx *f = *state;
	const char *missing[] = {"no-such-command-for-sure", NULL};
	char plain[] = "/tmp/dd-proc-test-XXXXXX";
	const char *notexec[] = {plain, NULL};
	int fd;
	const char *empty[] = {"", NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0};

	assert_int_equal(spawn(f, missing, 0, &e, &p, why), DD_ERR_NOT_FOUND);
	assert_null(p);
	assert_non_null(strstr(why, "no-such-command-for-sure"));
	assert_int_equal(spawn(f, empty, 0, &e, &p, why), DD_ERR_NOT_FOUND);
	/* Found, but execve refuses: reported through the child's pipe. */
	fd = mkstemp(plain);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(plain, 0644), 0);
	assert_int_equal(spawn(f, notexec, 0, &e, &p, why), DD_ERR_IO);
	unlink(plain);
	if (strstr(why, "Permission denied") == NULL)
		fail_msg("why: %s", why);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(e.done, 0);
	assert_int_equal(e.exited, 0);
}

static void own_session(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat", NULL};
	dd_rt_proc *p = NULL;
	char why[256], want[64];
	ev e = {0};
	pid_t pid;

	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	pid = dd_rt_proc_pid(p);
	assert_true(run_until(f, &e.done, 10000));
	/* Group and session are both the child's own pid. */
	snprintf(want, sizeof want, "%d %d\n", (int)pid, (int)pid);
	assert_string_equal(e.out[0], want);
}

static void stop_escalates_to_sigkill(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; "
			      "while :; do sleep 0.05; done", NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0};
	uint64_t t0;
	pid_t pid;

	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	pid = dd_rt_proc_pid(p);
	while (strstr(e.out[0], "ready") == NULL)
		uv_run(&f->loop, UV_RUN_ONCE);
	t0 = uv_now(&f->loop);
	dd_rt_proc_stop(p);
	assert_true(run_until(f, &e.done, 10000));
	assert_true(uv_now(&f->loop) - t0 >= 250);
	assert_int_equal(e.sig, SIGKILL);
	assert_int_equal(e.code, -1);
	assert_int_equal(dd_rt_session_sweep(pid, 0), 0);
}

/* A process that exists and is not a zombie. */
static int alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void leftovers_are_stopped(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sh", "-c", "sleep 100 & echo $!", NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0};
	pid_t pid, child;

	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	pid = dd_rt_proc_pid(p);
	assert_true(run_until(f, &e.exited, 10000));
	assert_int_equal(e.code, 0);
	/* The leader is gone; the sleep it left holds the session open. */
	assert_true(run_until(f, &e.done, 10000));
	child = (pid_t)strtol(e.out[0], NULL, 10);
	assert_true(child > 1);
	/* Gone, or a zombie its new parent (init) has yet to reap. */
	assert_false(alive(child));
	assert_int_equal(dd_rt_session_sweep(pid, 0), 0);
}

static void pty_is_the_controlling_terminal(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sh", NULL};
	const char *ctty[] = {"sh", "-c", "exec 3</dev/tty && echo ctty-ok",
			      NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0}, e2 = {0};
	static const char keys[] = "echo a$((1+1))b; exit 0\n";

	assert_int_equal(spawn(f, argv, 1, &e, &p, why), DD_OK);
	assert_int_equal(dd_rt_proc_write(p, (const uint8_t *)keys,
					  sizeof keys - 1), DD_OK);
	assert_true(run_until(f, &e.done, 10000));
	assert_non_null(strstr(e.out[0], "a2b"));
	assert_int_equal(e.len[1], 0);
	assert_true(e.drained >= 1);
	assert_int_equal(e.code, 0);
	assert_int_equal(spawn(f, ctty, 1, &e2, &p, why), DD_OK);
	assert_true(run_until(f, &e2.done, 10000));
	assert_non_null(strstr(e2.out[0], "ctty-ok"));
	/* Pipes, not a PTY: nothing to write to. */
	{
		const char *cat[] = {"sleep", "5", NULL};
		ev e3 = {0};

		assert_int_equal(spawn(f, cat, 0, &e3, &p, why), DD_OK);
		assert_int_equal(dd_rt_proc_write(p, (const uint8_t *)"x", 1),
				 DD_ERR_CLOSED);
		dd_rt_proc_stop(p);
		assert_true(run_until(f, &e3.done, 10000));
	}
}

/* sessiond's additions: a working directory, resize, hang-up first. */
static void pty_cwd_resize_and_hangup_first(void **state)
{
	fx *f = *state;
	const char *pwd[] = {"sh", "-c", "pwd", NULL};
	/* Reports each signal; TERM ends it, so HUP must come alone first. */
	const char *ladder[] = {"sh", "-c",
				"trap 'echo got-hup' HUP; "
				"trap 'echo got-term; exit 0' TERM; "
				"echo ready; while :; do sleep 0.05; done", NULL};
	const char *size[] = {"sh", "-c",
			      "trap 'stty size; exit 0' WINCH; echo ready; "
			      "while :; do sleep 0.05; done", NULL};
	dd_rt_spawn o;
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0}, e2 = {0}, e3 = {0};
	const char *hup, *term;
	uint64_t t0;

	memset(&o, 0, sizeof o);
	o.argv = SV(pwd);
	o.env = environ;
	o.pty = 1;
	o.cwd = "/tmp";
	o.cbs.output = on_output;
	o.cbs.done = on_done;
	o.ud = &e;
	assert_int_equal(dd_rt_proc_spawn(f->ps, &o, &p, why, sizeof why),
			 DD_OK);
	assert_true(run_until(f, &e.done, 10000));
	assert_non_null(strstr(e.out[0], "/tmp"));

	o.argv = SV(ladder);
	o.cwd = NULL;
	o.hup_ms = 400;
	o.grace_ms = 2000;
	o.ud = &e2;
	assert_int_equal(dd_rt_proc_spawn(f->ps, &o, &p, why, sizeof why),
			 DD_OK);
	while (strstr(e2.out[0], "ready") == NULL)
		assert_true(run_until(f, &e2.done, 50) == 0 ||
			    strstr(e2.out[0], "ready") != NULL);
	t0 = uv_now(&f->loop);
	dd_rt_proc_stop(p);
	assert_true(run_until(f, &e2.done, 10000));
	hup = strstr(e2.out[0], "got-hup");
	term = strstr(e2.out[0], "got-term");
	assert_non_null(hup);
	assert_non_null(term);
	assert_true(hup < term);
	/* TERM came after hup_ms, long before SIGKILL would have. */
	assert_true(uv_now(&f->loop) - t0 >= 350);
	assert_true(uv_now(&f->loop) - t0 < 2000);

	o.argv = SV(size);
	o.hup_ms = 0;
	o.ud = &e3;
	assert_int_equal(dd_rt_proc_spawn(f->ps, &o, &p, why, sizeof why),
			 DD_OK);
	while (strstr(e3.out[0], "ready") == NULL)
		assert_true(run_until(f, &e3.done, 50) == 0 ||
			    strstr(e3.out[0], "ready") != NULL);
	assert_int_equal(dd_rt_proc_resize(p, 100, 30), DD_OK);
	assert_true(run_until(f, &e3.done, 10000));
	assert_non_null(strstr(e3.out[0], "30 100"));
	/* Without a PTY there is nothing to resize. */
	{
		const char *sl[] = {"sleep", "5", NULL};
		ev e4 = {0};

		assert_int_equal(spawn(f, sl, 0, &e4, &p, why), DD_OK);
		assert_int_equal(dd_rt_proc_resize(p, 80, 24), DD_ERR_CLOSED);
		dd_rt_proc_stop(p);
		assert_true(run_until(f, &e4.done, 10000));
	}
}

static void descriptors_do_not_leak(void **state)
{
	fx *f = *state;
	const char *argv[] = {"ls", "/proc/self/fd", NULL};
	dd_rt_proc *p = NULL;
	char why[256];
	ev e = {0};
	int leak;

	/* Opened without O_CLOEXEC, as a careless library might. */
	leak = dup2(2, 77);
	assert_int_equal(leak, 77);
	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	assert_true(run_until(f, &e.done, 10000));
	close(leak);
	/* 0, 1, 2 and the directory ls itself opened. */
	assert_string_equal(e.out[0], "0\n1\n2\n3\n");
}

static void detach_and_shutdown(void **state)
{
	fx *f = *state;
	const char *argv[] = {"sleep", "100", NULL};
	const char *stubborn[] = {"sh", "-c", "trap '' TERM HUP; echo ready; "
				  "while :; do sleep 0.05; done", NULL};
	dd_rt_proc *p = NULL, *q = NULL;
	char why[256];
	ev e = {0}, e2 = {0};

	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_OK);
	assert_int_equal(spawn(f, stubborn, 1, &e2, &q, why), DD_OK);
	while (strstr(e2.out[0], "ready") == NULL)
		uv_run(&f->loop, UV_RUN_ONCE);
	dd_rt_proc_detach(p);
	dd_rt_proc_pause(q, 1);
	dd_rt_proc_pause(q, 0);
	assert_int_equal(dd_rt_procs_count(f->ps), 2);
	dd_rt_procs_shutdown(f->ps, on_shut, f);
	/* No new children once shutting down. */
	assert_int_equal(spawn(f, argv, 0, &e, &p, why), DD_ERR_CLOSED);
	assert_true(run_until(f, &f->shut, 10000));
	assert_int_equal(dd_rt_procs_count(f->ps), 0);
	assert_int_equal(e.done, 0);   /* detached: silent */
	assert_int_equal(e2.done, 1);
	assert_int_equal(e2.sig, SIGKILL);
}

/* R17: a failed allocation refuses the spawn cleanly; nothing leaks. */
static void torture(void **state)
{
	fx *f = *state;
	const char *argv[] = {"true", NULL};
	unsigned long n, used;
	dd_rt_proc *p;
	char why[256];
	dd_err_t rc;
	ev e;

	for (n = 1;; n++) {
		memset(&e, 0, sizeof e);
		p = NULL;
		dd_alloc_fail_at(n);
		rc = spawn(f, argv, n % 2 == 0, &e, &p, why);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_OK)
			assert_true(run_until(f, &e.done, 10000));
		if (used < n)
			break;
	}
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(output_and_exit_code, setup,
						teardown),
		cmocka_unit_test_setup_teardown(spawn_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(own_session, setup, teardown),
		cmocka_unit_test_setup_teardown(stop_escalates_to_sigkill, setup,
						teardown),
		cmocka_unit_test_setup_teardown(leftovers_are_stopped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(pty_is_the_controlling_terminal,
						setup, teardown),
		cmocka_unit_test_setup_teardown(pty_cwd_resize_and_hangup_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(descriptors_do_not_leak, setup,
						teardown),
		cmocka_unit_test_setup_teardown(detach_and_shutdown, setup,
						teardown),
		cmocka_unit_test_setup_teardown(torture, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
