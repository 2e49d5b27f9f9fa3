#include "agent/noise_gw.h"

#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"
#include "net/ws.h"
#include "noise/noise.h"

/* Input bytes waiting for the session before the device is paused. */
#define PIPE_HIGH (256u * 1024)

enum state { S_HANDSHAKE, S_RPC, S_STREAM, S_DONE };

struct held {                 /* a queued plaintext request */
	uint8_t *data;
	size_t len;
};

struct conn {
	dd_noise_gw *gw;          /* NULL once the gateway is gone */
	dd_ws *ws;                /* NULL after on_close */
	enum state state;
	dd_noise_hs *hs;
	dd_noise_transport *tr;
	uint8_t device[DD_X25519_LEN];
	uv_timer_t timer;         /* the handshake deadline */
	unsigned refs;            /* the timer + pipe writes in flight */
	/* RPC mode */
	struct held queue[DD_NOISE_GW_QUEUE];
	size_t q_head, q_len;
	dd_noise_rpc_call *call;
	int calling, pumping;
	json_t *req_id;           /* of the request being answered */
	uint8_t *blocked;         /* an encrypted message the ws refused */
	size_t blocked_len;
	uint8_t *rest;            /* output after an attach ack, not yet sent */
	size_t rest_len, rest_off;
	/* stream mode */
	uv_pipe_t *pipe;
	size_t pipe_queued;
	uint8_t rbuf[DD_NOISE_GW_CHUNK];
	struct conn *prev, *next;
};

struct dd_noise_gw {
	dd_noise_gw_opts o;
	struct conn *all;
	size_t n;
};

/* ---- lifetime ---------------------------------------------------------- */

static void unref(struct conn *c)
{
	if (--c->refs == 0)
		dd_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void unlink_conn(struct conn *c)
{
	dd_noise_gw *gw = c->gw;

	if (gw == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		gw->all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	gw->n--;
	c->gw = NULL;
}

/* Lets go of everything but the ws and the conn's memory. */
static void release(struct conn *c)
{
	c->state = S_DONE;
	if (c->call != NULL)
		dd_noise_rpc_cancel(c->call);
	c->call = NULL;
	if (c->pipe != NULL)
		dd_ndjson_pipe_close(c->pipe);
	c->pipe = NULL;
	while (c->q_len > 0) {
		dd_free(c->queue[c->q_head].data);
		c->q_head = (c->q_head + 1) % DD_NOISE_GW_QUEUE;
		c->q_len--;
	}
	json_decref(c->req_id);
	c->req_id = NULL;
	dd_free(c->blocked);
	c->blocked = NULL;
	dd_free(c->rest);
	c->rest = NULL;
	dd_noise_hs_free(c->hs);
	c->hs = NULL;
	dd_noise_transport_free(c->tr);
	c->tr = NULL;
}

static void on_close(dd_ws *ws, dd_err_t err, uint16_t code,
		     const char *reason, void *ud)
{
	struct conn *c = ud;

	(void)ws;
	(void)err;
	(void)code;
	(void)reason;
	release(c);
	unlink_conn(c);
	c->ws = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* Drops the connection without a word, as the spec's errors do. */
static void drop(struct conn *c, const char *why)
{
	dd_log_info("noise: dropping a connection: %s", why);
	release(c);
	if (c->ws != NULL)
		dd_ws_abort(c->ws);
}

/* ---- sending ----------------------------------------------------------- */

/*
 * Encrypts and sends one message. A message the ws will not queue yet is
 * kept (its nonce is spent) and goes first once the ws drains: the
 * caller stops producing while c->blocked is set.
 */
static dd_err_t send_plain(struct conn *c, const uint8_t *pt, size_t len)
{
	uint8_t *ct;
	size_t n;
	dd_err_t rc;

	ct = dd_malloc(len + DD_NOISE_TAG_LEN);
	if (ct == NULL)
		return DD_ERR_NOMEM;
	rc = dd_noise_transport_encrypt(c->tr, pt, len, ct,
					len + DD_NOISE_TAG_LEN, &n);
	if (rc == DD_OK)
		rc = dd_ws_send(c->ws, DD_WS_BINARY, ct, n);
	if (rc == DD_ERR_BUSY) {
		c->blocked = ct;
		c->blocked_len = n;
		return DD_OK;
	}
	dd_free(ct);
	return rc;
}

/* The reply with the request's req_id, if it had one (new reference). */
static json_t *with_req_id(struct conn *c, json_t *reply)
{
	if (c->req_id == NULL)
		return json_incref(reply);
	if (json_is_object(reply)) {
		json_t *r = json_copy(reply);

		if (r != NULL && json_object_set(r, "req_id", c->req_id) != 0)
			r = (json_decref(r), NULL);
		return r;
	}
	return json_pack("{s:O, s:O}", "req_id", c->req_id, "result", reply);
}

static dd_err_t send_json(struct conn *c, json_t *reply)
{
	json_t *r = with_req_id(c, reply);
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	dd_err_t rc;

	json_decref(r);
	if (text == NULL)
		return DD_ERR_NOMEM;
	if (len > DD_NOISE_MAX_PLAINTEXT) {
		/* The reference drops the connection here; say why instead. */
		char detail[128];
		json_t *e;

		snprintf(detail, sizeof detail, "the reply is %zu bytes; one "
			 "Noise message holds %d", len, DD_NOISE_MAX_PLAINTEXT);
		dd_free(text);
		e = json_pack("{s:s, s:s}", "error", "too_large", "detail",
			      detail);
		rc = e ? send_json(c, e) : DD_ERR_NOMEM;
		json_decref(e);
		return rc;
	}
	rc = send_plain(c, (const uint8_t *)text, len);
	dd_free(text);
	return rc;
}

/* ---- stream mode ------------------------------------------------------- */

struct pipe_write {
	uv_write_t req;
	struct conn *c;
	size_t len;
	uint8_t data[];
};

static void on_pipe_written(uv_write_t *w, int status)
{
	struct pipe_write *pw = (struct pipe_write *)w;
	struct conn *c = pw->c;

	(void)status; /* a failed write ends the pipe: its read sees it */
	c->pipe_queued -= pw->len;
	if (c->ws != NULL && c->state == S_STREAM &&
	    c->pipe_queued <= PIPE_HIGH / 4)
		dd_ws_set_read_paused(c->ws, 0);
	dd_free(pw);
	unref(c);
}

static void to_pipe(struct conn *c, const uint8_t *data, size_t len)
{
	struct pipe_write *pw;
	uv_buf_t b;

	if (len == 0)
		return;
	pw = dd_malloc(sizeof *pw + len);
	if (pw == NULL) {
		drop(c, "out of memory for terminal input");
		return;
	}
	memcpy(pw->data, data, len);
	pw->c = c;
	pw->len = len;
	b = uv_buf_init((char *)pw->data, (unsigned)len);
	if (uv_write(&pw->req, (uv_stream_t *)c->pipe, &b, 1,
		     on_pipe_written) != 0) {
		dd_free(pw);
		drop(c, "the session's input is closed");
		return;
	}
	c->refs++;
	c->pipe_queued += len;
	if (c->pipe_queued > PIPE_HIGH)
		dd_ws_set_read_paused(c->ws, 1);
}

static void alloc_rbuf(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)hint;
	*b = uv_buf_init((char *)c->rbuf, sizeof c->rbuf);
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	dd_err_t rc;

	if (nread == 0)
		return;
	if (nread < 0) {
		/* The session ended or detached us: so does the device. */
		uv_read_stop(s);
		c->state = S_DONE;
		dd_ws_close(c->ws, DD_WS_CLOSE_NORMAL, "session ended");
		return;
	}
	rc = send_plain(c, (const uint8_t *)b->base, (size_t)nread);
	if (rc) {
		drop(c, dd_strerror(rc));
		return;
	}
	if (c->blocked != NULL)
		uv_read_stop(s);
}

/*
 * Sends what arrived with the attach ack, then reads the session; stops
 * whenever the ws is full (on_drain calls this again).
 */
static void stream_on(struct conn *c)
{
	while (c->rest != NULL && c->blocked == NULL && c->state == S_STREAM) {
		size_t n = c->rest_len - c->rest_off;

		n = n > DD_NOISE_GW_CHUNK ? DD_NOISE_GW_CHUNK : n;
		if (send_plain(c, c->rest + c->rest_off, n) != DD_OK) {
			drop(c, "cannot send output");
			return;
		}
		c->rest_off += n;
		if (c->rest_off == c->rest_len) {
			dd_free(c->rest);
			c->rest = NULL;
		}
	}
	if (c->state == S_STREAM && c->blocked == NULL)
		uv_read_start((uv_stream_t *)c->pipe, alloc_rbuf, on_pipe_read);
}

static void start_stream(struct conn *c, const dd_noise_rpc_result *res)
{
	c->pipe = res->pipe;
	c->pipe->data = c;
	c->state = S_STREAM;
	if (send_json(c, res->reply) != DD_OK) {
		drop(c, "cannot send the attach ack");
		return;
	}
	/* Pipelined messages behind an attach are the session's input. */
	while (c->q_len > 0 && c->state == S_STREAM) {
		struct held *h = &c->queue[c->q_head];

		to_pipe(c, h->data, h->len);
		dd_free(h->data);
		c->q_head = (c->q_head + 1) % DD_NOISE_GW_QUEUE;
		c->q_len--;
	}
	if (c->state != S_STREAM)
		return;
	dd_ws_set_read_paused(c->ws, 0);
	if (res->extra_len > 0) {
		c->rest = dd_malloc(res->extra_len);
		if (c->rest == NULL) {
			drop(c, "out of memory for terminal output");
			return;
		}
		memcpy(c->rest, res->extra, res->extra_len);
		c->rest_len = res->extra_len;
		c->rest_off = 0;
	}
	stream_on(c);
}

/* ---- RPC mode ---------------------------------------------------------- */

static void pump(struct conn *c);

static int on_result(const dd_noise_rpc_result *res, void *ud)
{
	struct conn *c = ud;
	int final = res->pipe != NULL || !res->more;

	if (final) {
		c->call = NULL;
		c->calling = 0;
	}
	if (c->state != S_RPC) {
		if (res->pipe != NULL)
			dd_ndjson_pipe_close(res->pipe);
		return 1;
	}
	if (res->pipe != NULL) {
		start_stream(c, res);
		return 0;
	}
	if (send_json(c, res->reply) != DD_OK) {
		drop(c, "cannot send a reply");
		return 1;
	}
	if (final) {
		json_decref(c->req_id);
		c->req_id = NULL;
		if (!c->pumping)
			pump(c);
		return 0;
	}
	return c->blocked != NULL;
}

/* The request's req_id when it is a short string or an integer. */
static json_t *req_id_of(const json_t *req)
{
	json_t *v = json_object_get(req, "req_id");

	if (json_is_integer(v) || (json_is_string(v) &&
				   json_string_length(v) <= 64))
		return json_incref(v);
	return NULL;
}

/* Starts queued requests, one at a time, while nothing blocks. */
static void pump(struct conn *c)
{
	c->pumping = 1;
	while (c->state == S_RPC && !c->calling && c->blocked == NULL &&
	       c->q_len > 0) {
		struct held h = c->queue[c->q_head];
		json_t *req;
		dd_err_t rc;

		c->q_head = (c->q_head + 1) % DD_NOISE_GW_QUEUE;
		c->q_len--;
		dd_ws_set_read_paused(c->ws, 0);
		req = json_loadb((const char *)h.data, h.len,
				 JSON_REJECT_DUPLICATES, NULL);
		dd_free(h.data);
		if (req == NULL) {
			drop(c, "a request that is not JSON");
			break;
		}
		c->req_id = json_is_object(req) ? req_id_of(req) : NULL;
		c->calling = 1;
		rc = dd_noise_rpc_start(&c->gw->o.rpc, req, on_result, c,
					&c->call);
		json_decref(req);
		if (rc) {
			drop(c, dd_strerror(rc));
			break;
		}
	}
	c->pumping = 0;
}

static void on_rpc_message(struct conn *c, const uint8_t *ct, size_t len)
{
	struct held *h;
	uint8_t *pt;
	size_t n;

	if (len < DD_NOISE_TAG_LEN) {
		drop(c, "a transport message shorter than its tag");
		return;
	}
	pt = dd_malloc(len - DD_NOISE_TAG_LEN + 1);
	if (pt == NULL) {
		drop(c, "out of memory");
		return;
	}
	if (dd_noise_transport_decrypt(c->tr, ct, len, pt,
				       len - DD_NOISE_TAG_LEN + 1, &n) != DD_OK) {
		dd_free(pt);
		drop(c, "a transport message failed to authenticate");
		return;
	}
	if (c->state == S_STREAM) {
		to_pipe(c, pt, n);
		dd_free(pt);
		return;
	}
	h = &c->queue[(c->q_head + c->q_len) % DD_NOISE_GW_QUEUE];
	h->data = pt;
	h->len = n;
	c->q_len++;
	if (c->q_len == DD_NOISE_GW_QUEUE)
		dd_ws_set_read_paused(c->ws, 1);
	if (!c->pumping)
		pump(c);
}

/* ---- the handshake ----------------------------------------------------- */

static void on_handshake(struct conn *c, const uint8_t *msg, size_t len)
{
	uint8_t m2[DD_NOISE_MSG2_OVERHEAD];
	char hex[2 * DD_X25519_LEN + 1];
	size_t n;
	dd_err_t rc;

	rc = dd_noise_hs_read_message(c->hs, msg, len, NULL, 0, NULL);
	if (rc == DD_OK)
		rc = dd_noise_hs_remote_static(c->hs, c->device);
	if (rc) {
		drop(c, "a first message that does not decrypt");
		return;
	}
	if (!c->gw->o.trusted(c->device, c->gw->o.trusted_ud)) {
		dd_hex_encode(c->device, DD_X25519_LEN, hex);
		dd_log_warn("noise: refused device %s: not paired", hex);
		release(c);
		dd_ws_close(c->ws, DD_WS_CLOSE_POLICY, "unknown peer");
		return;
	}
	rc = dd_noise_hs_write_message(c->hs, NULL, 0, m2, sizeof m2, &n);
	if (rc == DD_OK)
		rc = dd_noise_hs_split(c->hs, &c->tr);
	dd_noise_hs_free(c->hs);
	c->hs = NULL;
	if (rc == DD_OK)
		rc = dd_ws_send(c->ws, DD_WS_BINARY, m2, n);
	if (rc) {
		drop(c, dd_strerror(rc));
		return;
	}
	uv_timer_stop(&c->timer);
	c->state = S_RPC;
	dd_hex_encode(c->device, DD_X25519_LEN, hex);
	dd_log_info("noise: device %s connected", hex);
}

static void on_message(dd_ws *ws, dd_ws_op op, const uint8_t *data,
		       size_t len, void *ud)
{
	struct conn *c = ud;

	(void)ws;
	if (op != DD_WS_BINARY)
		return; /* text is ignored, as in the reference */
	if (c->state == S_HANDSHAKE)
		on_handshake(c, data, len);
	else if (c->state == S_RPC || c->state == S_STREAM)
		on_rpc_message(c, data, len);
}

static void on_drain(dd_ws *ws, void *ud)
{
	struct conn *c = ud;
	dd_err_t rc;

	if (c->blocked == NULL || c->state == S_DONE)
		return;
	rc = dd_ws_send(ws, DD_WS_BINARY, c->blocked, c->blocked_len);
	if (rc == DD_ERR_BUSY)
		return;
	dd_free(c->blocked);
	c->blocked = NULL;
	if (rc) {
		drop(c, dd_strerror(rc));
		return;
	}
	if (c->state == S_STREAM)
		stream_on(c);
	else if (c->call != NULL)
		dd_noise_rpc_resume(c->call);
	else if (!c->pumping)
		pump(c);
}

static void on_deadline(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->state == S_HANDSHAKE)
		drop(c, "no handshake within the deadline");
}

/* ---- accepting --------------------------------------------------------- */

static void on_open(dd_ws *ws, void *ud)
{
	struct conn *c = ud;
	dd_noise_gw *gw = c->gw;

	c->ws = ws;
	c->next = gw->all;
	if (gw->all != NULL)
		gw->all->prev = c;
	gw->all = c;
	gw->n++;
	uv_timer_start(&c->timer, on_deadline, gw->o.handshake_ms, 0);
}

static void handle(dd_http_req *req, const dd_caller *who, void *ud)
{
	static const dd_ws_handlers h = {on_open, on_message, on_drain,
					 on_close};
	dd_noise_gw *gw = ud;
	struct conn *c;
	dd_ws_opts wo;

	(void)who;
	if (gw->n >= gw->o.max_conns) {
		dd_http_respond_error(req, 503, "busy",
				      "too many Noise connections");
		return;
	}
	c = dd_calloc(1, sizeof *c);
	if (c == NULL || dd_noise_hs_new_responder(gw->o.key, NULL, 0,
						   &c->hs) != DD_OK) {
		if (c != NULL)
			dd_noise_hs_free(c->hs);
		dd_free(c);
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	c->gw = gw;
	uv_timer_init(dd_http_req_loop(req), &c->timer);
	c->timer.data = c;
	c->refs = 1;
	dd_ws_opts_default(&wo);
	wo.max_message = DD_NOISE_MAX_MSG;
	wo.high_water = 256 * 1024;
	wo.ping_interval_ms = 30000;
	if (dd_ws_accept(req, &wo, &h, c) != DD_OK) {
		dd_noise_hs_free(c->hs);
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	}
}

dd_authz_route dd_noise_gw_route(dd_noise_gw *gw)
{
	return (dd_authz_route){DD_M_GET, "/noise/ws", handle, gw, 0, 0};
}

dd_err_t dd_noise_gw_new(const dd_noise_gw_opts *opts, dd_noise_gw **out)
{
	dd_noise_gw *gw;

	*out = NULL;
	if (opts->key == NULL || opts->trusted == NULL)
		return DD_ERR_INVALID;
	gw = dd_calloc(1, sizeof *gw);
	if (gw == NULL)
		return DD_ERR_NOMEM;
	gw->o = *opts;
	if (gw->o.handshake_ms == 0)
		gw->o.handshake_ms = DD_NOISE_GW_HANDSHAKE_MS;
	if (gw->o.max_conns == 0)
		gw->o.max_conns = DD_NOISE_GW_MAX_CONNS;
	*out = gw;
	return DD_OK;
}

void dd_noise_gw_revoke(dd_noise_gw *gw, const uint8_t pub[DD_X25519_LEN])
{
	struct conn *c, *next;

	for (c = gw->all; c != NULL; c = next) {
		next = c->next;
		if ((c->state == S_RPC || c->state == S_STREAM) &&
		    memcmp(c->device, pub, DD_X25519_LEN) == 0) {
			release(c);
			dd_ws_close(c->ws, DD_WS_CLOSE_POLICY, "device revoked");
		}
	}
}

size_t dd_noise_gw_count(const dd_noise_gw *gw)
{
	return gw->n;
}

void dd_noise_gw_free(dd_noise_gw *gw)
{
	if (gw == NULL)
		return;
	while (gw->all != NULL) {
		struct conn *c = gw->all;

		release(c);
		unlink_conn(c);
		dd_ws_abort(c->ws);
	}
	dd_free(gw);
}
