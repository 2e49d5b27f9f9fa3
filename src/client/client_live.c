/*
 * client_live.c: the interactive part of `client shell`. A second Noise
 * connection streams the session (spec 4.6: after the attach ack every
 * message is raw terminal bytes); the first one stays in RPC mode for
 * shell.resize_session on SIGWINCH. The local terminal is raw meanwhile
 * and restored on every way out: Ctrl-] (detach), the session's end, a
 * lost connection, end of input, SIGINT/SIGTERM/SIGHUP/SIGQUIT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "client/client_reply.h"
#include "client/client_shell_int.h"
#include "client/client_term.h"
#include "core/json.h"
#include "core/strutil.h"

/* Ctrl-]: telnet's escape, never sent to the session. */
#define DETACH_KEY 0x1d
#define IN_CHUNK 4096

static const int end_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define N_SIG (sizeof end_signals / sizeof end_signals[0])

typedef enum { END_NONE = 0, END_DETACH, END_SESSION, END_LOST, END_SIGNAL,
	       END_EOF } end_kind;

typedef struct live {
	shell_ctx *s;
	dd_cn *ctl, *st;
	const char *id;
	uv_poll_t in;
	uv_signal_t winch, sig[N_SIG];
	int n_open;                 /* handles not yet closed */
	int polling;
	uint8_t pending[IN_CHUNK];  /* input waiting for on_drain */
	size_t pending_len;
	end_kind end;
	int signo;
	char reason[128];
} live;

static void finish(live *l, end_kind k)
{
	if (l->end == END_NONE)
		l->end = k;
	uv_stop(l->s->env->loop);
}

static void write_out(const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void on_data(const uint8_t *p, size_t n, void *ud)
{
	(void)ud;
	write_out(p, n);
}

static void on_end(dd_err_t err, uint16_t code, const char *reason, void *ud)
{
	live *l = ud;

	snprintf(l->reason, sizeof l->reason, "%s", reason);
	finish(l, err == DD_OK && code == 1000 ? END_SESSION : END_LOST);
}

static void on_input(uv_poll_t *h, int status, int events);

static void set_polling(live *l, int on)
{
	if (on == l->polling || l->end != END_NONE)
		return;
	l->polling = on;
	if (on)
		(void)uv_poll_start(&l->in, UV_READABLE, on_input);
	else
		(void)uv_poll_stop(&l->in);
}

/* Sends input; on BUSY keeps it and stops reading until on_drain. */
static void send_input(live *l, const uint8_t *p, size_t n)
{
	dd_err_t rc;

	if (n == 0)
		return;
	rc = dd_cn_send_raw(l->st, p, n);
	if (rc == DD_ERR_BUSY) {
		memcpy(l->pending, p, n);
		l->pending_len = n;
		set_polling(l, 0);
	} else if (rc) {
		finish(l, END_LOST);
	}
}

static void on_drain(void *ud)
{
	live *l = ud;
	size_t n = l->pending_len;

	if (n == 0)
		return;
	l->pending_len = 0;
	set_polling(l, 1);
	send_input(l, l->pending, n);
}

static void on_input(uv_poll_t *h, int status, int events)
{
	live *l = h->data;
	uint8_t buf[IN_CHUNK];
	uint8_t *key;
	ssize_t n;

	(void)events;
	if (status < 0) {
		finish(l, END_EOF);
		return;
	}
	n = read(STDIN_FILENO, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		finish(l, END_EOF);
		return;
	}
	key = memchr(buf, DETACH_KEY, (size_t)n);
	send_input(l, buf, key != NULL ? (size_t)(key - buf) : (size_t)n);
	if (key != NULL)
		finish(l, END_DETACH);
}

static void send_size(live *l)
{
	uint16_t cols, rows;
	json_t *req;

	dd_term_size(STDIN_FILENO, &cols, &rows);
	req = json_pack("{s:s, s:s, s:i, s:i}", "method",
			"shell.resize_session", "id", l->id, "cols", (int)cols,
			"rows", (int)rows);
	if (req != NULL)
		(void)dd_cn_send_json(l->ctl, req);
	json_decref(req);
}

static void on_winch(uv_signal_t *h, int signo)
{
	(void)signo;
	send_size(h->data);
}

static void on_signal(uv_signal_t *h, int signo)
{
	live *l = h->data;

	l->signo = signo;
	finish(l, END_SIGNAL);
}

static void on_closed(uv_handle_t *h)
{
	((live *)h->data)->n_open--;
}

static void start_handles(live *l)
{
	uv_loop_t *loop = l->s->env->loop;

	l->in.data = l->winch.data = l;
	if (uv_poll_init(loop, &l->in, STDIN_FILENO) == 0) {
		l->n_open++;
		set_polling(l, 1);
	}
	if (uv_signal_init(loop, &l->winch) == 0) {
		l->n_open++;
		(void)uv_signal_start(&l->winch, on_winch, SIGWINCH);
	}
	for (size_t i = 0; i < N_SIG; i++) {
		l->sig[i].data = l;
		if (uv_signal_init(loop, &l->sig[i]) == 0) {
			l->n_open++;
			(void)uv_signal_start(&l->sig[i], on_signal,
					      end_signals[i]);
		}
	}
}

static void stop_handles(live *l)
{
	uv_handle_t *hs[2 + N_SIG] = {(uv_handle_t *)&l->in,
				      (uv_handle_t *)&l->winch};

	for (size_t i = 0; i < N_SIG; i++)
		hs[2 + i] = (uv_handle_t *)&l->sig[i];
	for (size_t i = 0; i < 2 + N_SIG; i++) {
		if (hs[i]->loop != NULL && !uv_is_closing(hs[i]))
			uv_close(hs[i], on_closed);
	}
	while (l->n_open > 0)
		(void)uv_run(l->s->env->loop, UV_RUN_ONCE);
}

/* The session to attach: --session (sized to this terminal) or a new one. */
static int pick_session(live *l, char *id, size_t cap)
{
	shell_ctx *s = l->s;
	uint16_t cols, rows;
	json_t *req, *reply = NULL;
	const char *got = NULL;
	int code;

	dd_term_size(STDIN_FILENO, &cols, &rows);
	if (s->a.session != NULL) {
		snprintf(id, cap, "%s", s->a.session);
		req = json_pack("{s:s, s:s, s:i, s:i}", "method",
				"shell.resize_session", "id", id, "cols",
				(int)cols, "rows", (int)rows);
	} else {
		req = json_pack("{s:s, s:s, s:i, s:i}", "method",
				"shell.create_session", "recipe_id",
				s->a.recipe != NULL ? s->a.recipe : "shell",
				"cols", (int)cols, "rows", (int)rows);
	}
	if (req == NULL)
		return DD_CLIENT_EXIT_FAILED;
	code = shell_call(s, l->ctl, req, &reply, s->a.session != NULL ?
			  "session" : "shell.create_session");
	json_decref(req);
	if (!code && s->a.session == NULL) {
		if (dd_json_get_str(reply, "id", &got) != DD_OK ||
		    !dd_uuid_ok(got)) {
			shell_say(s, "shell.create_session: no session id");
			code = DD_CLIENT_EXIT_FAILED;
		} else {
			snprintf(id, cap, "%s", got);
		}
	}
	json_decref(reply);
	return code;
}

static int report(live *l)
{
	shell_ctx *s = l->s;

	switch (l->end) {
	case END_SESSION:
		shell_say(s, "session %s ended", l->id);
		return 0;
	case END_LOST:
		shell_say(s, "connection lost%s%s; session %s may still run",
			  l->reason[0] ? ": " : "", l->reason, l->id);
		return DD_CLIENT_EXIT_TRANSPORT;
	case END_SIGNAL:
		shell_say(s, "signal %d: detached from session %s (still "
			  "running)", l->signo, l->id);
		return DD_CLIENT_EXIT_FAILED;
	default:
		shell_say(s, "detached from session %s (still running; "
			  "`devopsdefender client shell %s --session %s` "
			  "returns to it)", l->id, s->a.url, l->id);
		return 0;
	}
}

int shell_live(shell_ctx *s, dd_cn *ctl)
{
	dd_cn_stream hs = {.on_data = on_data, .on_end = on_end,
			   .on_drain = on_drain};
	char id[40], why[320];
	live l;
	dd_term term = {0};
	int code;

	memset(&l, 0, sizeof l);
	l.s = s;
	l.ctl = ctl;
	l.id = id;
	hs.ud = &l;
	code = pick_session(&l, id, sizeof id);
	if (!code)
		code = shell_open(s, &l.st);
	if (code)
		return code;
	if (dd_cn_attach(l.st, id, 1, &hs, why, sizeof why) != DD_OK) {
		shell_say(s, "session %s: %s", id, why);
		dd_cn_close(l.st);
		return DD_CLIENT_EXIT_FAILED;
	}
	shell_say(s, "attached to session %s; Ctrl-] detaches", id);
	/* Not a terminal (a pipe): no raw mode, input is passed as is. */
	(void)dd_term_raw(&term, STDIN_FILENO);
	start_handles(&l);
	while (l.end == END_NONE)
		(void)uv_run(s->env->loop, UV_RUN_ONCE);
	dd_term_restore(&term);
	stop_handles(&l);
	dd_cn_close(l.st);
	return report(&l);
}
