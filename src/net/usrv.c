#include "net/usrv.h"

#include <string.h>
#include <sys/un.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/unixsock.h"

struct dd_usrv {
	uv_loop_t *loop;
	const dd_usrv_ops *ops;
	dd_usrv_opts o;
	char *path;
	uv_pipe_t listener;
	int closing;
	int listener_closed;
	dd_usrv_conn *conns;
	size_t nconns;
	dd_unixsock_id sock;     /* the file we made, removed at close */
	void (*done)(void *ud);
	void *done_ud;
};

struct wreq {
	uv_write_t req;
	dd_usrv_conn *c;
	char *data;
};

/* ---- connection lifetime ----------------------------------------------- */

static void server_maybe_done(dd_usrv *s)
{
	void (*done)(void *);

	if (!s->closing || s->conns != NULL || !s->listener_closed ||
	    s->done == NULL)
		return;
	done = s->done;
	s->done = NULL;
	done(s->done_ud);
}

/* Frees a closed connection no callback is owed to any more. */
static void conn_maybe_free(dd_usrv_conn *c)
{
	dd_usrv *s = c->srv;

	if (!c->closed || c->holds > 0)
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

void dd_usrv_conn_hold(dd_usrv_conn *c)
{
	c->holds++;
}

void dd_usrv_conn_unhold(dd_usrv_conn *c)
{
	c->holds--;
	conn_maybe_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
	dd_usrv_conn *c = h->data;

	c->closed = 1;
	conn_maybe_free(c);
}

void dd_usrv_conn_close(dd_usrv_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->srv->ops->closing != NULL)
		c->srv->ops->closing(c);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	dd_usrv_conn_close(req->data);
}

void dd_usrv_conn_end(dd_usrv_conn *c)
{
	if (c->ending || c->closing)
		return;
	c->ending = 1;
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown) != 0)
		dd_usrv_conn_close(c);
}

/* ---- reading and writing ----------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	dd_usrv_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)c->chunk, sizeof c->chunk);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	dd_usrv_conn *c = st->data;

	(void)buf;
	if (nread == 0 || c->closing)
		return;
	c->srv->ops->read(c, c->chunk, nread);
}

void dd_usrv_conn_reading(dd_usrv_conn *c, int want)
{
	if (want && !c->closing && !c->ending)
		(void)uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&c->pipe);
}

size_t dd_usrv_conn_queued(const dd_usrv_conn *c)
{
	return c->pipe.write_queue_size;
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	dd_usrv_conn *c = w->c;

	dd_free(w->data);
	dd_free(w);
	if (c->closing)
		return;
	if (status < 0) {
		dd_usrv_conn_close(c);
		return;
	}
	if (c->srv->ops->wrote != NULL)
		c->srv->ops->wrote(c);
}

void dd_usrv_conn_send(dd_usrv_conn *c, char *data, size_t len)
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
		dd_usrv_conn_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
		dd_free(data);
		dd_free(w);
		dd_usrv_conn_close(c);
	}
}

void dd_usrv_conn_send_buf(dd_usrv_conn *c, dd_buf *b)
{
	char *data = NULL;
	size_t len = 0;

	if (dd_buf_steal(b, &data, &len) != DD_OK) {
		dd_usrv_conn_close(c);
		return;
	}
	dd_usrv_conn_send(c, data, len);
}

dd_usrv_line dd_usrv_conn_line(const dd_usrv_conn *c, size_t max, int eof,
			       size_t *len, size_t *used)
{
	const uint8_t *nl;

	nl = c->in.len > 0 ? memchr(c->in.data, '\n', c->in.len) : NULL;
	*len = nl != NULL ? (size_t)(nl - c->in.data) : c->in.len;
	*used = nl != NULL ? *len + 1 : *len;
	/* Whatever follows an over-long line is not worth parsing. */
	if (*len > max)
		return DD_USRV_LINE_TOO_LONG;
	if (nl != NULL)
		return DD_USRV_LINE_OK;
	/* At EOF a last line without its newline counts too. */
	if (!eof)
		return DD_USRV_LINE_WAIT;
	return c->in.len > 0 ? DD_USRV_LINE_OK : DD_USRV_LINE_EOF;
}

/* ---- accepting --------------------------------------------------------- */

/* The socket's mode already keeps others out; this says it twice. */
static dd_err_t peer_check(dd_usrv_conn *c, uid_t *uid)
{
	const dd_usrv_opts *o = &c->srv->o;

	*uid = (uid_t)-1;
	if (dd_unixsock_peer_uid(&c->pipe, uid) != DD_OK)
		return DD_ERR_FORBIDDEN;
	if (*uid == o->peer_uid || (o->root_too && *uid == 0))
		return DD_OK;
	return DD_ERR_FORBIDDEN;
}

static void on_connection(uv_stream_t *l, int status)
{
	dd_usrv *s = l->data;
	dd_usrv_conn *c;
	uid_t uid;
	dd_err_t rc;

	if (status < 0) {
		dd_log_warn("accept on %s: %s", s->path, uv_strerror(status));
		return;
	}
	c = dd_calloc(1, s->ops->conn_size);
	if (c == NULL) {
		dd_log_err(DD_ERR_NOMEM, "accept on %s", s->path);
		return;
	}
	c->srv = s;
	dd_buf_init(&c->in, s->o.max_line + DD_USRV_CHUNK + 1);
	(void)uv_pipe_init(s->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
		dd_usrv_conn_close(c);
		return;
	}
	rc = peer_check(c, &uid);
	if (rc == DD_OK && s->nconns > s->o.max_connections)
		rc = DD_ERR_BUSY;
	if (rc) {
		s->ops->refused(c, rc, uid);
		dd_usrv_conn_end(c);
		return;
	}
	s->ops->start(c);
}

/* ---- the server -------------------------------------------------------- */

dd_err_t dd_usrv_new(uv_loop_t *loop, const dd_usrv_opts *o,
		     const dd_usrv_ops *ops, dd_usrv **out)
{
	dd_usrv *s;

	*out = NULL;
	/* libuv would cut a longer path and listen somewhere else. */
	if (strlen(o->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return DD_ERR_CONFIG;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->path = dd_strdup(o->path);
	if (s->path == NULL) {
		dd_free(s);
		return DD_ERR_NOMEM;
	}
	s->loop = loop;
	s->ops = ops;
	s->o = *o;
	s->o.path = s->path;
	(void)uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	*out = s;
	return DD_OK;
}

dd_err_t dd_usrv_listen(dd_usrv *s, char *why, size_t why_len)
{
	return dd_unixsock_listen(&s->listener, s->path, s->o.backlog,
				  on_connection, &s->sock, why, why_len);
}

void *dd_usrv_ud(const dd_usrv *s)
{
	return s->o.ud;
}

const char *dd_usrv_path(const dd_usrv *s)
{
	return s->path;
}

size_t dd_usrv_nconns(const dd_usrv *s)
{
	return s->nconns;
}

static void on_listener_closed(uv_handle_t *h)
{
	dd_usrv *s = h->data;

	s->listener_closed = 1;
	server_maybe_done(s);
}

void dd_usrv_close(dd_usrv *s, void (*done)(void *ud), void *ud)
{
	dd_usrv_conn *c, *next;

	if (s->closing)
		return;
	s->closing = 1;
	s->done = done;
	s->done_ud = ud;
	/* Only our own socket file: another server may have the path now. */
	dd_unixsock_unlink(s->path, &s->sock);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		dd_usrv_conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void dd_usrv_free(dd_usrv *s)
{
	if (s == NULL)
		return;
	dd_free(s->path);
	dd_free(s);
}
