#include "runtime/server.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "runtime/server_int.h"
#include "runtime/text.h"

#define MAX_REPLY (16u << 20)
#define HIGH_WATER (4u << 20)    /* replies queued: stop reading */
#define LOW_WATER (256u << 10)

/* ---- connection lifetime ----------------------------------------------- */

static struct dd_rt_conn *conn_of(dd_usrv_conn *u)
{
	return (struct dd_rt_conn *)u;
}

/* Pending commands are stopped before the socket closes. */
static void on_closing(dd_usrv_conn *u)
{
	struct dd_rt_conn *c = conn_of(u);

	if (c->exec != NULL) {
		dd_rt_exec_cancel(c->exec);
		c->exec = NULL;
		c->s->execs--;
	}
	if (c->pty != NULL) {
		dd_rt_proc_stop(c->pty);
		dd_rt_proc_detach(c->pty);
		c->pty = NULL;
	}
}

void dd_rt_conn_close(struct dd_rt_conn *c)
{
	dd_usrv_conn_close(&c->u);
}

void dd_rt_conn_end(struct dd_rt_conn *c)
{
	dd_usrv_conn_end(&c->u);
}

/* ---- writing ----------------------------------------------------------- */

size_t dd_rt_conn_queued(const struct dd_rt_conn *c)
{
	return dd_usrv_conn_queued(&c->u);
}

void dd_rt_conn_reading(struct dd_rt_conn *c)
{
	dd_usrv_conn_reading(&c->u, !c->read_eof &&
			     (c->attached ? !c->client_paused
					  : !c->busy && !c->blocked));
}

static void on_wrote(dd_usrv_conn *u)
{
	struct dd_rt_conn *c = conn_of(u);

	if (c->attached && c->pty != NULL &&
	    dd_rt_conn_queued(c) < DD_RT_PTY_LOW)
		dd_rt_proc_pause(c->pty, 0);
	if (c->blocked && dd_rt_conn_queued(c) < LOW_WATER) {
		c->blocked = 0;
		dd_rt_conn_pump(c);
	}
}

void dd_rt_conn_send(struct dd_rt_conn *c, char *data, size_t len)
{
	dd_usrv_conn_send(&c->u, data, len);
}

void dd_rt_conn_error(struct dd_rt_conn *c, const char *msg)
{
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_rt_reply_error(&b, msg) == DD_OK)
		dd_usrv_conn_send_buf(&c->u, &b);
	else
		dd_rt_conn_close(c);
	dd_buf_free(&b);
}

void dd_rt_conn_reply(struct dd_rt_conn *c, const json_t *r)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, MAX_REPLY);
	rc = r != NULL ? dd_rt_reply_line(&b, r) : DD_ERR_NOMEM;
	if (rc)
		dd_rt_conn_error(c, rc == DD_ERR_TOO_LARGE ? "reply too large"
						      : "out of memory");
	else
		dd_usrv_conn_send_buf(&c->u, &b);
	dd_buf_free(&b);
	if (!c->u.closing && dd_rt_conn_queued(c) > HIGH_WATER)
		c->blocked = 1;
}

void dd_rt_conn_reply_new(struct dd_rt_conn *c, json_t *r)
{
	dd_rt_conn_reply(c, r);
	json_decref(r);
}

/* ---- reading ----------------------------------------------------------- */

/* Drops the first n bytes of input; the request may hold the token. */
static void consume(struct dd_rt_conn *c, size_t n)
{
	dd_buf *in = &c->u.in;
	size_t before = in->len;

	if (n == 0)
		return;
	memset(in->data, 0, n);
	dd_buf_consume(in, n);
	if (before > in->len)
		memset(in->data + in->len, 0, before - in->len);
}

/* Handles every complete line while the connection may take one. */
void dd_rt_conn_pump(struct dd_rt_conn *c)
{
	dd_rt_server *s = c->s;
	json_t *req;
	dd_rt_method m = DD_RT_HEALTH;
	char why[DD_RT_WHY];
	size_t len, used;
	dd_usrv_line line;
	dd_err_t rc;

	while (!c->u.closing && !c->u.ending && !c->busy && !c->attached &&
	       !c->blocked) {
		line = dd_usrv_conn_line(&c->u, s->o.max_request, c->read_eof,
					 &len, &used);
		if (line == DD_USRV_LINE_TOO_LONG) {
			snprintf(why, sizeof why, "request line longer than "
				 "%zu bytes", s->o.max_request);
			dd_rt_conn_error(c, why);
			dd_rt_conn_end(c);
			break;
		}
		if (line != DD_USRV_LINE_OK) {
			if (line == DD_USRV_LINE_EOF)
				dd_rt_conn_end(c);
			break;
		}
		req = NULL;
		rc = dd_rt_request_parse(c->u.in.data, len, s->o.max_request,
					 s->token, &req, &m, why, sizeof why);
		consume(c, used);
		if (rc) {
			dd_rt_conn_error(c, why);
			continue;
		}
		dd_rt_dispatch(c, req, m);
		json_decref(req);
	}
	dd_rt_conn_reading(c);
}

static void on_read(dd_usrv_conn *u, uint8_t *data, ssize_t nread)
{
	struct dd_rt_conn *c = conn_of(u);

	if (nread < 0) {
		c->read_eof = 1;
		dd_usrv_conn_reading(u, 0);
		if (c->attached) {
			/* The client is gone: the command goes too. */
			if (c->pty != NULL)
				dd_rt_proc_stop(c->pty);
			else
				dd_rt_conn_end(c);
			return;
		}
		if (nread != UV_EOF) {
			dd_rt_conn_close(c);
			return;
		}
		dd_rt_conn_pump(c);
		return;
	}
	if (c->attached) {
		dd_rt_attach_input(c, data, (size_t)nread);
		return;
	}
	/* The cap leaves room for one chunk past the longest line. */
	if (dd_buf_append(&u->in, data, (size_t)nread) != DD_OK) {
		dd_rt_conn_close(c);
		return;
	}
	/* Requests carry the token: one copy, wiped as it is consumed. */
	memset(data, 0, (size_t)nread);
	dd_rt_conn_pump(c);
}

/* ---- accepting --------------------------------------------------------- */

static void on_start(dd_usrv_conn *u)
{
	struct dd_rt_conn *c = conn_of(u);

	c->s = dd_usrv_ud(u->srv);
	dd_rt_conn_reading(c);
}

static void on_refused(dd_usrv_conn *u, dd_err_t why, uid_t uid)
{
	struct dd_rt_conn *c = conn_of(u);

	(void)uid;
	c->s = dd_usrv_ud(u->srv);
	dd_rt_conn_error(c, why == DD_ERR_BUSY
			 ? "busy: too many connections"
			 : "forbidden: peer runs as another user");
}

static const dd_usrv_ops conn_ops = {
	.conn_size = sizeof(struct dd_rt_conn),
	.start = on_start,
	.refused = on_refused,
	.read = on_read,
	.wrote = on_wrote,
	.closing = on_closing,
};

/* ---- the server -------------------------------------------------------- */

dd_err_t dd_rt_server_new(uv_loop_t *loop, const dd_rt_server_opts *o,
			  dd_rt_server **out)
{
	/* Our user or root: the socket's mode already says so. */
	dd_usrv_opts uo = {
		.path = o->path,
		.backlog = 128,
		.max_line = o->max_request,
		.max_connections = o->max_connections,
		.peer_uid = geteuid(),
		.root_too = 1,
	};
	dd_rt_server *s;
	dd_err_t rc;

	*out = NULL;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->loop = loop;
	s->o = *o;
	if (o->token != NULL && o->token[0] != '\0') {
		s->token = dd_strdup(o->token);
		if (s->token == NULL) {
			rc = DD_ERR_NOMEM;
			goto out;
		}
	}
	s->o.token = s->token;
	uo.ud = s;
	rc = dd_usrv_new(loop, &uo, &conn_ops, &s->srv);
	if (rc)
		goto out;
	s->o.path = dd_usrv_path(s->srv);
	s->started_ms = uv_now(loop);
	*out = s;
	s = NULL; /* transferred */
out:
	dd_rt_server_free(s);
	return rc;
}

dd_err_t dd_rt_server_listen(dd_rt_server *s, char *why, size_t why_len)
{
	return dd_usrv_listen(s->srv, why, why_len);
}

void dd_rt_server_close(dd_rt_server *s, void (*done)(void *ud), void *ud)
{
	dd_usrv_close(s->srv, done, ud);
}

void dd_rt_server_free(dd_rt_server *s)
{
	if (s == NULL)
		return;
	if (s->token != NULL)
		dd_freezero(s->token, strlen(s->token));
	dd_usrv_free(s->srv);
	dd_free(s);
}
