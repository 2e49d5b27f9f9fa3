#include "runtime/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/unixsock.h"
#include "runtime/server_int.h"
#include "runtime/text.h"

#define MAX_REPLY (16u << 20)
#define HIGH_WATER (4u << 20)    /* replies queued: stop reading */
#define LOW_WATER (256u << 10)

struct wreq {
	uv_write_t req;
	struct dd_rt_conn *c;
	char *data;
};

/* ---- connection lifetime ----------------------------------------------- */

static void server_maybe_done(dd_rt_server *s)
{
	void (*done)(void *);

	if (!s->closing || s->conns != NULL || !s->listener_closed ||
	    s->done == NULL)
		return;
	done = s->done;
	s->done = NULL;
	done(s->done_ud);
}

void dd_rt_conn_maybe_free(struct dd_rt_conn *c)
{
	dd_rt_server *s = c->s;

	if (!c->closed || c->quote_pending)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	dd_buf_freezero(&c->in);
	dd_free(c);
	server_maybe_done(s);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct dd_rt_conn *c = h->data;

	c->closed = 1;
	dd_rt_conn_maybe_free(c);
}

void dd_rt_conn_close(struct dd_rt_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
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
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	dd_rt_conn_close(req->data);
}

/* Closes once every queued reply is written. */
void dd_rt_conn_end(struct dd_rt_conn *c)
{
	if (c->ending || c->closing)
		return;
	c->ending = 1;
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown) != 0)
		dd_rt_conn_close(c);
}

/* ---- writing ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

size_t dd_rt_conn_queued(const struct dd_rt_conn *c)
{
	return c->pipe.write_queue_size;
}

void dd_rt_conn_reading(struct dd_rt_conn *c)
{
	int want = !c->closing && !c->ending && !c->read_eof &&
		   (c->attached ? !c->client_paused
				: !c->busy && !c->blocked);

	if (want)
		(void)uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&c->pipe);
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct dd_rt_conn *c = w->c;

	dd_free(w->data);
	dd_free(w);
	if (c->closing)
		return;
	if (status < 0) {
		dd_rt_conn_close(c);
		return;
	}
	if (c->attached && c->pty != NULL &&
	    dd_rt_conn_queued(c) < DD_RT_PTY_LOW)
		dd_rt_proc_pause(c->pty, 0);
	if (c->blocked && dd_rt_conn_queued(c) < LOW_WATER) {
		c->blocked = 0;
		dd_rt_conn_pump(c);
	}
}

/* Queues data (owned, freed after the write) on the connection. */
void dd_rt_conn_send(struct dd_rt_conn *c, char *data, size_t len)
{
	struct wreq *w;
	uv_buf_t b;

	if (c->closing || c->ending) {
		dd_free(data);
		return;
	}
	w = dd_malloc(sizeof *w);
	if (w == NULL) {
		dd_free(data);
		dd_rt_conn_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
		dd_free(data);
		dd_free(w);
		dd_rt_conn_close(c);
	}
}

static void send_buf(struct dd_rt_conn *c, dd_buf *b)
{
	char *data = NULL;
	size_t len = 0;

	if (dd_buf_steal(b, &data, &len) != DD_OK) {
		dd_rt_conn_close(c);
		return;
	}
	dd_rt_conn_send(c, data, len);
}

void dd_rt_conn_error(struct dd_rt_conn *c, const char *msg)
{
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_rt_reply_error(&b, msg) == DD_OK)
		send_buf(c, &b);
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
		send_buf(c, &b);
	dd_buf_free(&b);
	if (!c->closing && dd_rt_conn_queued(c) > HIGH_WATER)
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
	size_t before = c->in.len;

	if (n == 0)
		return;
	memset(c->in.data, 0, n);
	dd_buf_consume(&c->in, n);
	if (before > c->in.len)
		memset(c->in.data + c->in.len, 0, before - c->in.len);
}

/* Handles every complete line while the connection may take one. */
void dd_rt_conn_pump(struct dd_rt_conn *c)
{
	dd_rt_server *s = c->s;
	const uint8_t *nl;
	json_t *req;
	dd_rt_method m = DD_RT_HEALTH;
	char why[DD_RT_WHY];
	size_t len;
	dd_err_t rc;

	while (!c->closing && !c->ending && !c->busy && !c->attached &&
	       !c->blocked) {
		nl = c->in.len > 0 ? memchr(c->in.data, '\n', c->in.len) : NULL;
		len = nl != NULL ? (size_t)(nl - c->in.data) : c->in.len;
		/* Whatever follows an over-long line is not worth parsing. */
		if (len > s->o.max_request) {
			snprintf(why, sizeof why, "request line longer than "
				 "%zu bytes", s->o.max_request);
			dd_rt_conn_error(c, why);
			dd_rt_conn_end(c);
			break;
		}
		if (nl == NULL && !(c->read_eof && c->in.len > 0)) {
			if (c->read_eof)
				dd_rt_conn_end(c);
			break;
		}
		/* At EOF a last line without its newline counts too. */
		req = NULL;
		rc = dd_rt_request_parse(c->in.data, len, s->o.max_request,
					 s->token, &req, &m, why, sizeof why);
		consume(c, nl != NULL ? len + 1 : len);
		if (rc) {
			dd_rt_conn_error(c, why);
			continue;
		}
		dd_rt_dispatch(c, req, m);
		json_decref(req);
	}
	dd_rt_conn_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct dd_rt_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)c->chunk, sizeof c->chunk);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct dd_rt_conn *c = st->data;

	(void)buf;
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		c->read_eof = 1;
		uv_read_stop(st);
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
		dd_rt_attach_input(c, c->chunk, (size_t)nread);
		return;
	}
	/* The cap leaves room for one chunk past the longest line. */
	if (dd_buf_append(&c->in, c->chunk, (size_t)nread) != DD_OK) {
		dd_rt_conn_close(c);
		return;
	}
	/* Requests carry the token: one copy, wiped as it is consumed. */
	memset(c->chunk, 0, (size_t)nread);
	dd_rt_conn_pump(c);
}

/* ---- accepting --------------------------------------------------------- */

/* Our user or root: the socket's mode already says so, this says it twice. */
static int peer_ok(struct dd_rt_conn *c)
{
	uid_t uid;

	if (dd_unixsock_peer_uid(&c->pipe, &uid) != DD_OK)
		return 0;
	return uid == 0 || uid == geteuid();
}

static void on_connection(uv_stream_t *l, int status)
{
	dd_rt_server *s = l->data;
	struct dd_rt_conn *c;

	if (status < 0) {
		dd_log_warn("accept on %s: %s", s->path, uv_strerror(status));
		return;
	}
	c = dd_calloc(1, sizeof *c);
	if (c == NULL) {
		dd_log_err(DD_ERR_NOMEM, "accept on %s", s->path);
		return;
	}
	c->s = s;
	dd_buf_init(&c->in, s->o.max_request + DD_RT_CHUNK + 1);
	(void)uv_pipe_init(s->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
		dd_rt_conn_close(c);
		return;
	}
	if (!peer_ok(c)) {
		dd_rt_conn_error(c, "forbidden: peer runs as another user");
		dd_rt_conn_end(c);
		return;
	}
	if (s->nconns > s->o.max_connections) {
		dd_rt_conn_error(c, "busy: too many connections");
		dd_rt_conn_end(c);
		return;
	}
	dd_rt_conn_reading(c);
}

/* ---- the server -------------------------------------------------------- */

dd_err_t dd_rt_server_new(uv_loop_t *loop, const dd_rt_server_opts *o,
			  dd_rt_server **out)
{
	dd_rt_server *s;

	*out = NULL;
	if (strlen(o->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return DD_ERR_CONFIG;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->loop = loop;
	s->o = *o;
	s->path = dd_strdup(o->path);
	if (o->token != NULL && o->token[0] != '\0')
		s->token = dd_strdup(o->token);
	if (s->path == NULL ||
	    (o->token != NULL && o->token[0] != '\0' && s->token == NULL)) {
		dd_rt_server_free(s);
		return DD_ERR_NOMEM;
	}
	s->o.path = s->path;
	s->o.token = s->token;
	s->started_ms = uv_now(loop);
	(void)uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	*out = s;
	return DD_OK;
}

dd_err_t dd_rt_server_listen(dd_rt_server *s, char *why, size_t why_len)
{
	dd_err_t rc;

	rc = dd_unixsock_listen(&s->listener, s->path, 128, on_connection,
				&s->sock, why, why_len);
	s->listening = rc == DD_OK;
	return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
	dd_rt_server *s = h->data;

	s->listener_closed = 1;
	server_maybe_done(s);
}

void dd_rt_server_close(dd_rt_server *s, void (*done)(void *ud), void *ud)
{
	struct dd_rt_conn *c, *next;

	if (s->closing)
		return;
	s->closing = 1;
	s->done = done;
	s->done_ud = ud;
	/* Only our own socket file: another runtime may have taken the path. */
	dd_unixsock_unlink(s->path, &s->sock);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		dd_rt_conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void dd_rt_server_free(dd_rt_server *s)
{
	if (s == NULL)
		return;
	if (s->token != NULL)
		dd_freezero(s->token, strlen(s->token));
	dd_free(s->path);
	dd_free(s);
}
