#include "sessiond/server.h"

#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/unixsock.h"
#include "runtime/proto.h"
#include "sessiond/server_int.h"

#define MAX_REPLY (32u << 20)
#define HIGH_WATER (4u << 20)    /* replies queued: stop reading */
#define LOW_WATER (256u << 10)

struct wreq {
	uv_write_t req;
	struct dd_sd_conn *c;
	char *data;
};

/* ---- connection lifetime ----------------------------------------------- */

static void server_maybe_done(dd_sd_server *s)
{
	void (*done)(void *);

	if (!s->closing || s->conns != NULL || !s->listener_closed ||
	    s->done == NULL)
		return;
	done = s->done;
	s->done = NULL;
	done(s->done_ud);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct dd_sd_conn *c = h->data;
	dd_sd_server *s = c->s;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	dd_buf_free(&c->in);
	dd_free(c);
	server_maybe_done(s);
}

void dd_sd_conn_close(struct dd_sd_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	/* A detach: the session goes on. */
	dd_sd_detach(&c->w);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	dd_sd_conn_close(req->data);
}

void dd_sd_conn_end(struct dd_sd_conn *c)
{
	if (c->ending || c->closing)
		return;
	c->ending = 1;
	dd_sd_detach(&c->w);
	uv_read_stop((uv_stream_t *)&c->pipe);
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown) != 0)
		dd_sd_conn_close(c);
}

/* ---- writing ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void pump(struct dd_sd_conn *c);

void dd_sd_conn_reading(struct dd_sd_conn *c)
{
	int want = !c->closing && !c->ending && !c->read_eof &&
		   (c->attached ? !c->input_full : !c->blocked);

	if (want)
		(void)uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&c->pipe);
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct dd_sd_conn *c = w->c;

	dd_free(w->data);
	dd_free(w);
	if (c->closing)
		return;
	if (status < 0) {
		dd_sd_conn_close(c);
		return;
	}
	if (c->blocked && c->pipe.write_queue_size < LOW_WATER) {
		c->blocked = 0;
		pump(c);
	}
}

void dd_sd_conn_send(struct dd_sd_conn *c, char *data, size_t len)
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
		dd_sd_conn_close(c);
		return;
	}
	w->c = c;
	w->data = data;
	b = uv_buf_init(data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
		dd_free(data);
		dd_free(w);
		dd_sd_conn_close(c);
	}
}

static void send_buf(struct dd_sd_conn *c, dd_buf *b)
{
	char *data = NULL;
	size_t len = 0;

	if (dd_buf_steal(b, &data, &len) != DD_OK) {
		dd_sd_conn_close(c);
		return;
	}
	dd_sd_conn_send(c, data, len);
}

void dd_sd_conn_error(struct dd_sd_conn *c, const char *code,
		      const char *detail)
{
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_sd_reply_error(&b, code, detail) == DD_OK)
		send_buf(c, &b);
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
		send_buf(c, &b);
	dd_buf_free(&b);
	json_decref(r);
	if (!c->closing && c->pipe.write_queue_size > HIGH_WATER)
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
	const uint8_t *nl;
	const char *code;
	char why[DD_SD_WHY];
	dd_sd_req req;
	size_t len;
	dd_err_t rc;

	while (!c->closing && !c->ending && !c->attached && !c->blocked) {
		nl = c->in.len > 0 ? memchr(c->in.data, '\n', c->in.len) : NULL;
		len = nl != NULL ? (size_t)(nl - c->in.data) : c->in.len;
		/* Whatever follows an over-long line is not worth parsing. */
		if (len > s->o.max_request) {
			snprintf(why, sizeof why, "request line longer than "
				 "%zu bytes", s->o.max_request);
			dd_sd_conn_error(c, "too_large", why);
			dd_sd_conn_end(c);
			break;
		}
		if (nl == NULL && !(c->read_eof && c->in.len > 0)) {
			if (c->read_eof)
				dd_sd_conn_end(c);
			break;
		}
		rc = dd_sd_req_parse(c->in.data, len, s->o.max_request, &req,
				     &code, why, sizeof why);
		dd_buf_consume(&c->in, nl != NULL ? len + 1 : len);
		if (rc) {
			dd_sd_conn_error(c, rc == DD_ERR_NOMEM ? "internal"
							       : code, why);
			continue;
		}
		dd_sd_dispatch(c, &req);
		dd_sd_req_free(&req);
	}
	/* Bytes that followed an attach request are the first input. */
	if (c->attached && c->in.len > 0 && !c->closing) {
		dd_sd_conn_input(c, c->in.data, c->in.len);
		dd_buf_consume(&c->in, c->in.len);
	}
	dd_sd_conn_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct dd_sd_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)c->chunk, sizeof c->chunk);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct dd_sd_conn *c = st->data;

	(void)buf;
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		c->read_eof = 1;
		uv_read_stop(st);
		if (c->attached || nread != UV_EOF) {
			/* The client left: a detach, the session goes on. */
			dd_sd_conn_close(c);
			return;
		}
		pump(c);
		return;
	}
	if (c->attached) {
		dd_sd_conn_input(c, c->chunk, (size_t)nread);
		return;
	}
	/* The cap leaves room for one chunk past the longest line. */
	if (dd_buf_append(&c->in, c->chunk, (size_t)nread) != DD_OK) {
		dd_sd_conn_close(c);
		return;
	}
	pump(c);
}

/* ---- accepting --------------------------------------------------------- */

static void on_connection(uv_stream_t *l, int status)
{
	dd_sd_server *s = l->data;
	struct dd_sd_conn *c;
	uid_t uid = (uid_t)-1;

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
	dd_buf_init(&c->in, s->o.max_request + DD_SD_CHUNK + 1);
	(void)uv_pipe_init(s->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
		dd_sd_conn_close(c);
		return;
	}
	if (dd_unixsock_peer_uid(&c->pipe, &uid) != DD_OK ||
	    uid != s->o.peer_uid) {
		dd_log_warn("sessiond: refused a connection from uid %ld "
			    "(only %ld may connect)", (long)(int)uid,
			    (long)s->o.peer_uid);
		dd_sd_conn_error(c, "forbidden", "peer runs as another user");
		dd_sd_conn_end(c);
		return;
	}
	if (s->nconns > s->o.max_connections) {
		dd_sd_conn_error(c, "busy", "too many connections");
		dd_sd_conn_end(c);
		return;
	}
	dd_sd_conn_reading(c);
}

/* ---- the server -------------------------------------------------------- */

dd_err_t dd_sd_server_new(uv_loop_t *loop, const dd_sd_server_opts *o,
			  dd_sd_server **out)
{
	dd_sd_server *s;

	*out = NULL;
	if (strlen(o->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return DD_ERR_CONFIG;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->loop = loop;
	s->o = *o;
	s->path = dd_strdup(o->path);
	s->rcpts_path = dd_strdup(o->rcpts_path);
	if (s->path == NULL || s->rcpts_path == NULL ||
	    dd_rt_uuid(s->boot_id) != DD_OK) {
		dd_sd_server_free(s);
		return DD_ERR_NOMEM;
	}
	s->o.path = s->path;
	s->o.rcpts_path = s->rcpts_path;
	s->started = (uint64_t)time(NULL);
	(void)uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	*out = s;
	return DD_OK;
}

dd_err_t dd_sd_server_listen(dd_sd_server *s, char *why, size_t why_len)
{
	dd_err_t rc;

	rc = dd_unixsock_listen(&s->listener, s->path, 64, on_connection,
				&s->sock, why, why_len);
	s->listening = rc == DD_OK;
	return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
	dd_sd_server *s = h->data;

	s->listener_closed = 1;
	server_maybe_done(s);
}

void dd_sd_server_close(dd_sd_server *s, void (*done)(void *ud), void *ud)
{
	struct dd_sd_conn *c, *next;

	if (s->closing)
		return;
	s->closing = 1;
	s->done = done;
	s->done_ud = ud;
	/* Only our own socket file: another sessiond may have the path. */
	dd_unixsock_unlink(s->path, &s->sock);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		dd_sd_conn_close(c);
	}
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void dd_sd_server_free(dd_sd_server *s)
{
	if (s == NULL)
		return;
	dd_free(s->path);
	dd_free(s->rcpts_path);
	dd_free(s);
}
