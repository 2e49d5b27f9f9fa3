/*
 * test_usrv.c: the unix-socket server lifecycle shared by the runtime and
 * sessiond, on a real socket in the test's own loop. The clients are
 * plain blocking sockets of this process: connect() completes from the
 * backlog, and the loop runs while the test waits for what it expects.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "net/unixsock.h"
#include "net/usrv.h"

#define MAX_LINE 64
#define MAX_CONNS 4

/* A line echo server: each line comes back with "> " before it. */
typedef struct tconn {
	dd_usrv_conn u;  /* first, as the header asks */
	int eof;
	int lines;
} tconn;

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	char dir[64];
	char path[96];
	dd_usrv *s;
	dd_usrv_opts o;
	int started;
	int refused_busy;
	int refused_forbidden;
	uid_t refused_uid;
	int closings;
	int wrote;
	int done;
	dd_usrv_conn *last;  /* the last connection let in */
	int fds[MAX_CONNS + 2];
	int nfds;
} fx;

static void on_start(dd_usrv_conn *u)
{
	fx *f = dd_usrv_ud(u->srv);

	f->started++;
	f->last = u;
	dd_usrv_conn_reading(u, 1);
}

static void send_text(dd_usrv_conn *u, const char *text)
{
	dd_buf b;

	dd_buf_init(&b, 256);
	if (dd_buf_append(&b, text, strlen(text)) == DD_OK)
		dd_usrv_conn_send_buf(u, &b);
	else
		dd_usrv_conn_close(u);
	dd_buf_free(&b);
}

static void on_refused(dd_usrv_conn *u, dd_err_t why, uid_t uid)
{
	fx *f = dd_usrv_ud(u->srv);

	if (why == DD_ERR_BUSY) {
		f->refused_busy++;
		send_text(u, "busy\n");
		return;
	}
	assert_int_equal(why, DD_ERR_FORBIDDEN);
	f->refused_forbidden++;
	f->refused_uid = uid;
	send_text(u, "forbidden\n");
}

static void pump(tconn *c)
{
	char out[MAX_LINE + 4];
	size_t len, used;
	dd_usrv_line line;

	for (;;) {
		line = dd_usrv_conn_line(&c->u, MAX_LINE, c->eof, &len, &used);
		if (line == DD_USRV_LINE_TOO_LONG) {
			send_text(&c->u, "too long\n");
			dd_usrv_conn_end(&c->u);
			return;
		}
		if (line == DD_USRV_LINE_EOF)
			dd_usrv_conn_end(&c->u);
		if (line != DD_USRV_LINE_OK)
			return;
		snprintf(out, sizeof out, "> %.*s\n", (int)len,
			 (const char *)c->u.in.data);
		dd_buf_consume(&c->u.in, used);
		c->lines++;
		send_text(&c->u, out);
	}
}

static void on_read(dd_usrv_conn *u, uint8_t *data, ssize_t nread)
{
	tconn *c = (tconn *)u;

	if (nread < 0) {
		c->eof = 1;
		dd_usrv_conn_reading(u, 0);
		pump(c);
		return;
	}
	if (dd_buf_append(&u->in, data, (size_t)nread) != DD_OK) {
		dd_usrv_conn_close(u);
		return;
	}
	pump(c);
}

static void on_wrote(dd_usrv_conn *u)
{
	fx *f = dd_usrv_ud(u->srv);

	f->wrote++;
}

static void on_closing(dd_usrv_conn *u)
{
	fx *f = dd_usrv_ud(u->srv);

	f->closings++;
	if (f->last == u)
		f->last = NULL;
}

static const dd_usrv_ops ops = {
	.conn_size = sizeof(tconn),
	.start = on_start,
	.refused = on_refused,
	.read = on_read,
	.wrote = on_wrote,
	.closing = on_closing,
};

static void on_done(void *ud)
{
	((fx *)ud)->done++;
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	snprintf(f->dir, sizeof f->dir, "/tmp/dd-usrv-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/s.sock", f->dir);
	f->o.path = f->path;
	f->o.backlog = 16;
	f->o.max_line = MAX_LINE;
	f->o.max_connections = MAX_CONNS;
	f->o.peer_uid = geteuid();
	f->o.ud = f;
	*state = f;
	return 0;
}

/* Runs the loop (a tick keeps it from blocking) until *flag >= n. */
static void run_until(fx *f, const int *flag, int n)
{
	uint64_t deadline = dd_now_ms() + 20000;

	uv_timer_start(&f->tick, on_tick, 5, 5);
	while (*flag < n) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&f->tick);
}

static void run_a_little(fx *f)
{
	for (int i = 0; i < 20; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void start(fx *f)
{
	char why[256] = "";

	assert_int_equal(dd_usrv_new(&f->loop, &f->o, &ops, &f->s), DD_OK);
	assert_int_equal(dd_usrv_listen(f->s, why, sizeof why), DD_OK);
}

static void stop(fx *f)
{
	int want = f->done + 1;

	dd_usrv_close(f->s, on_done, f);
	run_until(f, &f->done, want);
}

static int teardown(void **state)
{
	fx *f = *state;

	if (f->s != NULL && f->done == 0)
		stop(f);
	dd_usrv_free(f->s);
	for (int i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	uv_close((uv_handle_t *)&f->tick, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int client(fx *f)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_true(f->nfds < (int)(sizeof f->fds / sizeof f->fds[0]));
	f->fds[f->nfds++] = fd;
	return fd;
}

static void put(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/*
 * Reads from fd while the loop runs until want has arrived (want NULL:
 * until EOF); returns what came, which must be exactly want.
 */
static void expect(fx *f, int fd, const char *want, int then_eof)
{
	char got[1024];
	size_t n = 0;
	uint64_t deadline = dd_now_ms() + 20000;
	ssize_t r;
	int eof = 0;

	uv_timer_start(&f->tick, on_tick, 5, 5);
	while (n < strlen(want) || (then_eof && !eof)) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
		r = recv(fd, got + n, sizeof got - 1 - n, MSG_DONTWAIT);
		if (r == 0)
			eof = 1;
		if (r == 0 && n < strlen(want))
			break;
		if (r > 0)
			n += (size_t)r;
		else if (r < 0 && errno != EAGAIN)
			eof = 1;
	}
	uv_timer_stop(&f->tick);
	got[n] = '\0';
	assert_string_equal(got, want);
}

/* A listening server and one client it let in; returns that connection. */
static dd_usrv_conn *serve_one(fx *f, int *fd)
{
	start(f);
	*fd = client(f);
	run_until(f, &f->started, 1);
	assert_non_null(f->last);
	return f->last;
}

/* ---- tests ---- */

static void test_new_path_too_long(void **state)
{
	fx *f = *state;
	char path[200];
	dd_usrv *s = NULL;

	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	f->o.path = path;
	assert_int_equal(dd_usrv_new(&f->loop, &f->o, &ops, &s),
			 DD_ERR_CONFIG);
	assert_null(s);
	/* The longest that fits is taken. */
	path[sizeof(((struct sockaddr_un *)0)->sun_path) - 1] = '\0';
	assert_int_equal(dd_usrv_new(&f->loop, &f->o, &ops, &s), DD_OK);
	assert_string_equal(dd_usrv_path(s), path);
	dd_usrv_close(s, on_done, f);
	run_until(f, &f->done, 1);
	dd_usrv_free(s);
}

static void test_listen_mode_0600(void **state)
{
	fx *f = *state;
	struct stat st;

	start(f);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	stop(f);
	/* Our own file goes at close. */
	assert_int_equal(lstat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_stale_socket_file(void **state)
{
	fx *f = *state;
	struct sockaddr_un sa;
	char why[256] = "";
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	/* A socket file nobody listens on, as a dead server leaves. */
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	assert_int_equal(dd_usrv_new(&f->loop, &f->o, &ops, &f->s), DD_OK);
	assert_int_equal(dd_usrv_listen(f->s, why, sizeof why), DD_ERR_IO);
	assert_non_null(strstr(why, f->path));
	/* The servers clear it first: then the path is theirs. */
	assert_int_equal(dd_unixsock_prepare(f->path, "TEST", why, sizeof why),
			 DD_OK);
	assert_int_equal(dd_usrv_listen(f->s, why, sizeof why), DD_OK);
	/* And a live one is not taken over. */
	assert_int_equal(dd_unixsock_prepare(f->path, "TEST", why, sizeof why),
			 DD_ERR_EXISTS);
	fd = client(f);
	put(fd, "hi\n");
	expect(f, fd, "> hi\n", 0);
}

static void test_close_leaves_a_foreign_file(void **state)
{
	fx *f = *state;
	char other[128];
	struct stat st;
	int fd;

	start(f);
	/*
	 * Another server took the path over. Its file is made before ours
	 * goes, so that it cannot be given our inode number again.
	 */
	snprintf(other, sizeof other, "%s/other", f->dir);
	fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rename(other, f->path), 0);
	stop(f);
	assert_int_equal(lstat(f->path, &st), 0);
}

static void test_lines_and_eof(void **state)
{
	fx *f = *state;
	int fd;

	start(f);
	fd = client(f);
	put(fd, "one\ntwo\nthr");
	expect(f, fd, "> one\n> two\n", 0);
	/* A last line without its newline still counts at EOF. */
	put(fd, "ee");
	shutdown(fd, SHUT_WR);
	expect(f, fd, "> three\n", 1);
	assert_int_equal(f->started, 1);
	run_until(f, &f->closings, 1);
	assert_int_equal(f->wrote, 3);
}

static void test_line_too_long(void **state)
{
	fx *f = *state;
	char big[MAX_LINE + 2];
	int fd;

	start(f);
	fd = client(f);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	put(fd, big);
	/* Refused before its newline arrives; then the connection ends. */
	expect(f, fd, "too long\n", 1);
}

static void test_many_and_busy(void **state)
{
	fx *f = *state;
	int fds[MAX_CONNS], extra;
	char want[32];

	start(f);
	for (int i = 0; i < MAX_CONNS; i++)
		fds[i] = client(f);
	run_until(f, &f->started, MAX_CONNS);
	assert_int_equal(dd_usrv_nconns(f->s), MAX_CONNS);
	extra = client(f);
	expect(f, extra, "busy\n", 1);
	assert_int_equal(f->refused_busy, 1);
	assert_int_equal(f->started, MAX_CONNS);
	/* The others are served, each its own. */
	for (int i = 0; i < MAX_CONNS; i++) {
		snprintf(want, sizeof want, "c%d\n", i);
		put(fds[i], want);
	}
	for (int i = 0; i < MAX_CONNS; i++) {
		snprintf(want, sizeof want, "> c%d\n", i);
		expect(f, fds[i], want, 0);
	}
	/* The refused one is freed: a place is free again. */
	run_until(f, &f->closings, 1);
	run_a_little(f);
	assert_int_equal(dd_usrv_nconns(f->s), MAX_CONNS);
	close(fds[0]);
	f->fds[0] = -1;
	run_until(f, &f->closings, 2);
	run_a_little(f);
	assert_int_equal(dd_usrv_nconns(f->s), MAX_CONNS - 1);
	extra = client(f);
	put(extra, "again\n");
	expect(f, extra, "> again\n", 0);
	assert_int_equal(f->started, MAX_CONNS + 1);
}

static void test_peer_uid(void **state)
{
	fx *f = *state;
	int fd;

	/* Only another uid may connect: we are refused, and told why. */
	f->o.peer_uid = geteuid() + 1;
	start(f);
	fd = client(f);
	expect(f, fd, "forbidden\n", 1);
	assert_int_equal(f->refused_forbidden, 1);
	assert_int_equal(f->refused_uid, geteuid());
	assert_int_equal(f->started, 0);
	stop(f);
	dd_usrv_free(f->s);
	f->s = NULL;

	/* root_too lets root in as well, and nobody else. */
	f->o.root_too = 1;
	f->done = 0;
	start(f);
	fd = client(f);
	if (geteuid() == 0) {
		put(fd, "root\n");
		expect(f, fd, "> root\n", 0);
		assert_int_equal(f->refused_forbidden, 1);
	} else {
		expect(f, fd, "forbidden\n", 1);
		assert_int_equal(f->refused_forbidden, 2);
	}
}

static void test_close_all_with_connections_open(void **state)
{
	fx *f = *state;
	int fds[3];

	start(f);
	for (int i = 0; i < 3; i++)
		fds[i] = client(f);
	run_until(f, &f->started, 3);
	put(fds[1], "pending");
	run_a_little(f);
	dd_usrv_close(f->s, on_done, f);
	/* A second close is nothing. */
	dd_usrv_close(f->s, on_done, f);
	assert_int_equal(f->closings, 3);
	assert_int_equal(f->done, 0);
	run_until(f, &f->done, 1);
	assert_int_equal(dd_usrv_nconns(f->s), 0);
	for (int i = 0; i < 3; i++)
		expect(f, fds[i], "", 1);
	run_a_little(f);
	assert_int_equal(f->done, 1);
}

static void test_hold_delays_free(void **state)
{
	fx *f = *state;
	dd_usrv_conn *c;
	int fd;

	c = serve_one(f, &fd);
	dd_usrv_conn_hold(c);
	/* Closing while a callback is owed: the memory stays. */
	dd_usrv_close(f->s, on_done, f);
	run_a_little(f);
	assert_true(c->closing);
	assert_true(c->closed);
	assert_int_equal(f->done, 0);
	assert_int_equal(dd_usrv_nconns(f->s), 1);
	expect(f, fd, "", 1);
	/* The callback comes: now it goes, and the server is done. */
	dd_usrv_conn_unhold(c);
	assert_int_equal(f->done, 1);
	assert_int_equal(dd_usrv_nconns(f->s), 0);
}

static void test_hold_while_open(void **state)
{
	fx *f = *state;
	dd_usrv_conn *c;
	int fd;

	c = serve_one(f, &fd);
	dd_usrv_conn_hold(c);
	dd_usrv_conn_unhold(c);
	/* Still open and serving. */
	put(fd, "still\n");
	expect(f, fd, "> still\n", 0);
	dd_usrv_conn_hold(c);
	dd_usrv_conn_close(c);
	run_a_little(f);
	assert_int_equal(dd_usrv_nconns(f->s), 1);
	dd_usrv_conn_unhold(c);
	assert_int_equal(dd_usrv_nconns(f->s), 0);
}

static void test_end_after_writes(void **state)
{
	fx *f = *state;
	dd_usrv_conn *c;
	int fd;

	c = serve_one(f, &fd);
	send_text(c, "first\n");
	send_text(c, "second\n");
	dd_usrv_conn_end(c);
	/* Once ending, what is sent is dropped. */
	send_text(c, "dropped\n");
	expect(f, fd, "first\nsecond\n", 1);
	run_until(f, &f->closings, 1);
}

static void test_line_states(void **state)
{
	static const struct {
		const char *in;
		int eof;
		dd_usrv_line want;
		size_t len, used;
	} cases[] = {
		{"", 0, DD_USRV_LINE_WAIT, 0, 0},
		{"", 1, DD_USRV_LINE_EOF, 0, 0},
		{"abc\ndef", 0, DD_USRV_LINE_OK, 3, 4},
		{"def", 0, DD_USRV_LINE_WAIT, 3, 3},
		/* At EOF a last line without its newline counts. */
		{"def", 1, DD_USRV_LINE_OK, 3, 3},
		{"\n", 0, DD_USRV_LINE_OK, 0, 1},
		/* max bytes fit; one more does not, newline or not. */
		{"12345678\n", 0, DD_USRV_LINE_OK, 8, 9},
		{"123456789\n", 0, DD_USRV_LINE_TOO_LONG, 9, 10},
		{"123456789", 0, DD_USRV_LINE_TOO_LONG, 9, 9},
		{"123456789", 1, DD_USRV_LINE_TOO_LONG, 9, 9},
	};
	dd_usrv_conn *c = calloc(1, sizeof *c);
	size_t len, used;

	(void)state;
	assert_non_null(c);
	dd_buf_init(&c->in, 1024);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		dd_buf_reset(&c->in);
		assert_int_equal(dd_buf_append(&c->in, cases[i].in,
					       strlen(cases[i].in)), DD_OK);
		assert_int_equal(dd_usrv_conn_line(c, 8, cases[i].eof, &len,
						   &used), cases[i].want);
		if (cases[i].want == DD_USRV_LINE_EOF)
			continue;
		assert_int_equal(len, cases[i].len);
		assert_int_equal(used, cases[i].used);
	}
	dd_buf_free(&c->in);
	free(c);
}

/* Every allocation failing in turn: new and accept fail cleanly. */
static void test_torture(void **state)
{
	fx *f = *state;
	unsigned long n, used;
	char why[256];
	dd_err_t rc;

	for (n = 1;; n++) {
		f->done = 0;
		f->started = 0;
		dd_alloc_fail_at(n);
		rc = dd_usrv_new(&f->loop, &f->o, &ops, &f->s);
		if (rc == DD_OK)
			rc = dd_usrv_listen(f->s, why, sizeof why);
		if (rc == DD_OK) {
			client(f);
			run_a_little(f);
		}
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (f->s != NULL) {
			stop(f);
			dd_usrv_free(f->s);
			f->s = NULL;
		}
		for (int i = 0; i < f->nfds; i++)
			close(f->fds[i]);
		f->nfds = 0;
		if (used < n)
			break;
	}
	assert_int_equal(f->started, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_states),
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_new_path_too_long),
		T(test_listen_mode_0600),
		T(test_stale_socket_file),
		T(test_close_leaves_a_foreign_file),
		T(test_lines_and_eof),
		T(test_line_too_long),
		T(test_many_and_busy),
		T(test_peer_uid),
		T(test_close_all_with_connections_open),
		T(test_hold_delays_free),
		T(test_hold_while_open),
		T(test_end_after_writes),
		T(test_torture),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
