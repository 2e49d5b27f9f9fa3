#include "sessiond/server.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "runtime/proto.h"
#include "sessiond/server_int.h"

#define MAX_REPLY (32u << 20)
#define HIGH_WATER (4u << 20)    /* replies queued: stop reading */
#define LOW_WATER (256u << 10)

static void pump(struct dd_sd_conn *c);

/* ---- connection lifetime ----------------------------------------------- */

static struct dd_sd_conn *conn_of(dd_usrv_conn *u)
{
	return (struct dd_sd_conn *)u;
}

/* A close is a detach: the session goes on. */
static void on_closing(dd_usrv_conn *u)
{
	dd_sd_detach(&conn_of(u)->w);
}

void dd_sd_conn_close(struct dd_sd_conn *c)
{
	dd_usrv_conn_close(&c->u);
}

void dd_sd_conn_end(struct dd_sd_conn *c)
{
	if (c->u.ending || c->u.closing)
		return;
	dd_sd_detach(&c->w);
	dd_usrv_conn_end(&c->u);
}

/* ---- writing ----------------------------------------------------------- */

void dd_sd_conn_reading(struct dd_sd_conn *c)
{
	dd_usrv_conn_reading(&c->u, !c->read_eof &&
			     (c->attached ? !c->input_full : !c->blocked));
}

static void on_wrote(dd_usrv_conn *u)
{
	struct dd_sd_conn *c = conn_of(u);

	if (c->blocked && dd_usrv_conn_queued(u) < LOW_WATER) {
		c->blocked = 0;
		pump(c);
	}
}

void dd_sd_conn_send(struct dd_sd_conn *c, char *data, size_t len)
{
	dd_usrv_conn_send(&c->u, data, len);
}

void dd_sd_conn_error(struct dd_sd_conn *c, const char *code,
		      const char *detail)
{
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_sd_reply_error(&b, code, detail) == DD_OK)
		dd_usrv_conn_send_buf(&c->u, &b);
	else
		dd_sd_conn_close(c);
	dd_buf_free(&b);
}

void dd_sd_conn_reply_new(struct dd_sd_conn *c, json_t *r)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, MAX_REPLY);
	rc = r != NULL ? dd_sd_reply_line(&b, r) : DD_ERR_NOMEM;
	if (rc)
		dd_sd_conn_error(c, "internal", rc == DD_ERR_TOO_LARGE
						   ? "reply too large"
						   : "out of memory");
	else
		dd_usrv_conn_send_buf(&c->u, &b);
	dd_buf_free(&b);
	json_decref(r);
	if (!c->u.closing && dd_usrv_conn_queued(&c->u) > HIGH_WATER)
		c->blocked = 1;
}

/* ---- attached streams -------------------------------------------------- */

void dd_sd_conn_input(struct dd_sd_conn *c, const uint8_t *data, size_t len)
{
	size_t queued = 0;
	dd_err_t rc;

	if (len == 0 || !c->w.input)
		return; /* watchers' keys go nowhere */
	rc = dd_sd_input(&c->w, data, len, &queued);
	if (rc == DD_OK && queued > DD_SD_INPUT_HIGH) {
		c->input_full = 1;
		dd_sd_conn_reading(c);
	}
}

/* ---- reading ----------------------------------------------------------- */

static void pump(struct dd_sd_conn *c)
{
	dd_sd_server *s = c->s;
	dd_buf *in = &c->u.in;
	const char *code;
	char why[DD_SD_WHY];
	dd_sd_req req;
	size_t len, used;
	dd_usrv_line line;
	dd_err_t rc;

	while (!c->u.closing && !c->u.ending && !c->attached && !c->blocked) {
		line = dd_usrv_conn_line(&c->u, s->o.max_request, c->read_eof,
					 &len, &used);
		if (line == DD_USRV_LINE_TOO_LONG) {
			snprintf(why, sizeof why, "request line longer than "
				 "%zu bytes", s->o.max_request);
			dd_sd_conn_error(c, "too_large", why);
			dd_sd_conn_end(c);
			break;
		}
		if (line != DD_USRV_LINE_OK) {
			if (line == DD_USRV_LINE_EOF)
				dd_sd_conn_end(c);
			break;
		}
		rc = dd_sd_req_parse(in->data, len, s->o.max_request, &req,
				     &code, why, sizeof why);
		dd_buf_consume(in, used);
		if (rc) {
			dd_sd_conn_error(c, rc == DD_ERR_NOMEM ? "internal"
							       : code, why);
			continue;
		}
		dd_sd_dispatch(c, &req);
		dd_sd_req_free(&req);
	}
	/* Bytes that followed an attach request are the first input. */
	if (c->attached && in->len > 0 && !c->u.closing) {
		dd_sd_conn_input(c, in->data, in->len);
		dd_buf_consume(in, in->len);
	}
	dd_sd_conn_reading(c);
}

static void on_read(dd_usrv_conn *u, uint8_t *data, ssize_t nread)
{
	struct dd_sd_conn *c = conn_of(u);

	if (nread < 0) {
		c->read_eof = 1;
		dd_usrv_conn_reading(u, 0);
		if (c->attached || nread != UV_EOF) {
			/* The client left: a detach, the session goes on. */
			dd_sd_conn_close(c);
			return;
		}
		pump(c);
		return;
	}
	if (c->attached) {
		dd_sd_conn_input(c, data, (size_t)nread);
		return;
	}
	/* The cap leaves room for one chunk past the longest line. */
	if (dd_buf_append(&u->in, data, (size_t)nread) != DD_OK) {
		dd_sd_conn_close(c);
		return;
	}
	pump(c);
}

/* ---- accepting --------------------------------------------------------- */

static void on_start(dd_usrv_conn *u)
{
	struct dd_sd_conn *c = conn_of(u);

	c->s = dd_usrv_ud(u->srv);
	dd_sd_conn_reading(c);
}

static void on_refused(dd_usrv_conn *u, dd_err_t why, uid_t uid)
{
	struct dd_sd_conn *c = conn_of(u);

	c->s = dd_usrv_ud(u->srv);
	if (why == DD_ERR_BUSY) {
		dd_sd_conn_error(c, "busy", "too many connections");
		return;
	}
	dd_log_warn("sessiond: refused a connection from uid %ld "
		    "(only %ld may connect)", (long)(int)uid,
		    (long)c->s->o.peer_uid);
	dd_sd_conn_error(c, "forbidden", "peer runs as another user");
}

static const dd_usrv_ops conn_ops = {
	.conn_size = sizeof(struct dd_sd_conn),
	.start = on_start,
	.refused = on_refused,
	.read = on_read,
	.wrote = on_wrote,
	.closing = on_closing,
};

/* ---- the server -------------------------------------------------------- */

dd_err_t dd_sd_server_new(uv_loop_t *loop, const dd_sd_server_opts *o,
			  dd_sd_server **out)
{
	dd_usrv_opts uo = {
		.path = o->path,
		.backlog = 64,
		.max_line = o->max_request,
		.max_connections = o->max_connections,
		.peer_uid = o->peer_uid,
	};
	dd_sd_server *s;
	dd_err_t rc;

	*out = NULL;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->o = *o;
	s->rcpts_path = dd_strdup(o->rcpts_path);
	if (s->rcpts_path == NULL || dd_rt_uuid(s->boot_id) != DD_OK) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	s->o.rcpts_path = s->rcpts_path;
	uo.ud = s;
	rc = dd_usrv_new(loop, &uo, &conn_ops, &s->srv);
	if (rc)
		goto out;
	s->o.path = dd_usrv_path(s->srv);
	s->started = (uint64_t)time(NULL);
	*out = s;
	s = NULL; /* transferred */
out:
	dd_sd_server_free(s);
	return rc;
}

dd_err_t dd_sd_server_listen(dd_sd_server *s, char *why, size_t why_len)
{
	return dd_usrv_listen(s->srv, why, why_len);
}

void dd_sd_server_close(dd_sd_server *s, void (*done)(void *ud), void *ud)
{
	dd_usrv_close(s->srv, done, ud);
}

void dd_sd_server_free(dd_sd_server *s)
{
	if (s == NULL)
		return;
	dd_usrv_free(s->srv);
	dd_free(s->rcpts_path);
	dd_free(s);
}
