#include "client/client_noise.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "client/client_tls.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "net/ws.h"
#include "noise/noise.h"

#define CN_DEFAULT_TIMEOUT_MS 30000u
/* Replies to dd_cn_send_json carry this req_id and are dropped. */
#define CN_BG_REQ "bg"
#define CN_MAX_HOST 256

struct dd_cn {
	uv_loop_t *loop;
	dd_ws *ws;                  /* NULL once on_close has run */
	dd_tls_relay *relay;
	dd_noise_hs *hs;
	dd_noise_transport *t;
	uint8_t *pt;                /* DD_NOISE_MAX_MSG plaintext scratch */
	uv_timer_t timer;
	json_t *queue;              /* replies not yet taken */
	json_int_t req;             /* req_id of the last call */
	uint64_t timeout_ms;
	dd_cn_stream s;
	int open, ended, timed_out, timer_closed, streaming, attach_pending;
	dd_err_t end_err, proto_err;
	uint16_t end_code;
	char end_reason[128];
};

/* --- URLs ----------------------------------------------------------------- */

dd_err_t dd_cn_ws_url(const char *agent_url, char *out, size_t cap)
{
	const char *scheme = "wss://", *rest = agent_url;
	size_t n;
	int w;

	if (strncasecmp(agent_url, "https://", 8) == 0) {
		rest = agent_url + 8;
	} else if (strncasecmp(agent_url, "http://", 7) == 0) {
		scheme = "ws://";
		rest = agent_url + 7;
	} else if (strstr(agent_url, "://") != NULL) {
		return DD_ERR_INVALID;
	}
	n = strlen(rest);
	while (n > 0 && rest[n - 1] == '/')
		n--;
	if (n == 0 || rest[0] == '/' || memchr(rest, '?', n) != NULL ||
	    memchr(rest, '#', n) != NULL)
		return DD_ERR_INVALID;
	w = snprintf(out, cap, "%s%.*s/noise/ws", scheme, (int)n, rest);
	return w < 0 || (size_t)w >= cap ? DD_ERR_TOO_LARGE : DD_OK;
}

/* host and port of a wss:// URL, brackets of an IPv6 literal removed. */
static dd_err_t wss_host_port(const char *url, char *host, char *port)
{
	const char *p = url + 6, *end = p + strcspn(p, "/?#"), *h_end, *colon;
	size_t n;

	if (*p == '[') {
		h_end = memchr(p, ']', (size_t)(end - p));
		if (h_end == NULL)
			return DD_ERR_INVALID;
		n = (size_t)(h_end - p - 1);
		memcpy(host, p + 1, n < CN_MAX_HOST ? n : 0);
		colon = h_end + 1 < end && h_end[1] == ':' ? h_end + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		n = (size_t)((colon != NULL ? colon : end) - p);
		memcpy(host, p, n < CN_MAX_HOST ? n : 0);
	}
	if (n == 0 || n >= CN_MAX_HOST)
		return DD_ERR_INVALID;
	host[n] = '\0';
	if (colon == NULL) {
		memcpy(port, "443", 4);
		return DD_OK;
	}
	n = (size_t)(end - colon - 1);
	if (n == 0 || n > 5 || strspn(colon + 1, "0123456789") < n)
		return DD_ERR_INVALID;
	memcpy(port, colon + 1, n);
	port[n] = '\0';
	return DD_OK;
}

/* --- ws handlers ---------------------------------------------------------- */

static void on_open(dd_ws *ws, void *ud)
{
	dd_cn *c = ud;
	uint8_t m1[DD_NOISE_MSG1_OVERHEAD];
	size_t n = 0;

	if (dd_noise_hs_write_message(c->hs, NULL, 0, m1, sizeof m1, &n) ||
	    dd_ws_send(ws, DD_WS_BINARY, m1, n)) {
		c->proto_err = DD_ERR_CRYPTO;
		dd_ws_abort(ws);
	}
}

static void take_reply(dd_cn *c, const uint8_t *p, size_t n)
{
	json_t *v = NULL, *id;
	const char *s;

	if (dd_json_parse(p, n, DD_NOISE_MAX_MSG, &v, NULL, 0) != DD_OK) {
		c->proto_err = DD_ERR_UPSTREAM;
		dd_ws_abort(c->ws);
		return;
	}
	id = json_is_object(v) ? json_object_get(v, "req_id") : NULL;
	s = json_string_value(id);
	if (s != NULL && strcmp(s, CN_BG_REQ) == 0) {
		json_decref(v);
		return;
	}
	if (c->attach_pending && json_integer_value(id) == c->req &&
	    json_object_get(v, "error") == NULL) {
		/* Everything after the ack is terminal output. */
		c->streaming = 1;
		c->attach_pending = 0;
	}
	if (json_array_append_new(c->queue, v) != 0)
		dd_ws_abort(c->ws);
	/* A waiter may be inside uv_run(UV_RUN_ONCE) of a timer callback
	 * pass: let it look now instead of blocking for the next event. */
	uv_stop(c->loop);
}

static void on_message(dd_ws *ws, dd_ws_op op, const uint8_t *data,
		       size_t len, void *ud)
{
	dd_cn *c = ud;
	size_t n = 0;

	if (op != DD_WS_BINARY)
		return;
	if (!c->open) {
		if (dd_noise_hs_read_message(c->hs, data, len, NULL, 0, NULL) ||
		    dd_noise_hs_split(c->hs, &c->t)) {
			c->proto_err = DD_ERR_CRYPTO;
			dd_ws_abort(ws);
			return;
		}
		dd_noise_hs_free(c->hs);
		c->hs = NULL;
		c->open = 1;
		uv_stop(c->loop);
		return;
	}
	if (dd_noise_transport_decrypt(c->t, data, len, c->pt,
				       DD_NOISE_MAX_MSG, &n)) {
		c->proto_err = DD_ERR_CRYPTO;
		dd_ws_abort(ws);
		return;
	}
	if (c->streaming) {
		if (c->s.on_data != NULL)
			c->s.on_data(c->pt, n, c->s.ud);
	} else {
		take_reply(c, c->pt, n);
	}
	OPENSSL_cleanse(c->pt, n);
}

static void on_drain(dd_ws *ws, void *ud)
{
	dd_cn *c = ud;

	(void)ws;
	if (c->streaming && c->s.on_drain != NULL)
		c->s.on_drain(c->s.ud);
}

static void on_close(dd_ws *ws, dd_err_t err, uint16_t code,
		     const char *reason, void *ud)
{
	dd_cn *c = ud;

	(void)ws;
	c->ws = NULL;
	c->ended = 1;
	uv_stop(c->loop);
	c->end_err = err;
	c->end_code = code;
	snprintf(c->end_reason, sizeof c->end_reason, "%s", reason);
	if (c->streaming && c->s.on_end != NULL)
		c->s.on_end(c->proto_err ? c->proto_err : err, code, reason,
			    c->s.ud);
}

static const dd_ws_handlers handlers = {
	.on_open = on_open, .on_message = on_message, .on_drain = on_drain,
	.on_close = on_close,
};

/* --- waiting -------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	((dd_cn *)t->data)->timed_out = 1;
	uv_stop(t->loop);
}

static void on_timer_closed(uv_handle_t *h)
{
	((dd_cn *)h->data)->timer_closed = 1;
}

/* Runs the loop until done(c) or the end or the deadline. */
static dd_err_t wait_for(dd_cn *c, int (*done)(const dd_cn *))
{
	c->timed_out = 0;
	(void)uv_timer_start(&c->timer, on_timer, c->timeout_ms, 0);
	while (!done(c) && !c->ended && !c->timed_out)
		(void)uv_run(c->loop, UV_RUN_ONCE);
	(void)uv_timer_stop(&c->timer);
	if (done(c))
		return DD_OK;
	return c->ended ? DD_ERR_CLOSED : DD_ERR_TIMEOUT;
}

static int is_open(const dd_cn *c)
{
	return c->open;
}

static int has_reply(const dd_cn *c)
{
	return json_array_size(c->queue) > 0;
}

static dd_err_t ended_why(const dd_cn *c, dd_err_t rc, char *why,
			  size_t why_len)
{
	if (rc == DD_ERR_TIMEOUT)
		return dd_why(why, why_len, rc, "no answer within %llu ms",
			      (unsigned long long)c->timeout_ms);
	if (c->proto_err == DD_ERR_CRYPTO)
		return dd_why(why, why_len, DD_ERR_CRYPTO,
			      "a Noise message did "
			      "not authenticate (is this the attested agent?)");
	if (c->proto_err)
		return dd_why(why, why_len, c->proto_err, "the agent sent a "
			      "reply that is not JSON");
	if (c->end_code == DD_WS_CLOSE_POLICY)
		return dd_why(why, why_len, DD_ERR_FORBIDDEN,
			      "the agent refused "
			      "this device (1008 %s): pair it first with "
			      "`devopsdefender client pair`", c->end_reason);
	return dd_why(why, why_len, DD_ERR_CLOSED, "connection ended (%s, "
		      "close %u%s%s)", dd_strerror(c->end_err), c->end_code,
		      c->end_reason[0] != '\0' ? " " : "", c->end_reason);
}

/* --- opening -------------------------------------------------------------- */

static void free_pipe(uv_handle_t *h)
{
	dd_free(h);
}

static dd_err_t connect_wss(dd_cn *c, const dd_cn_opts *o,
			    const dd_ws_opts *wo, char *why, size_t why_len)
{
	char host[CN_MAX_HOST], port[6];
	uv_pipe_t *p;
	int fd = -1;
	dd_err_t rc;

	if (wss_host_port(o->url, host, port) != DD_OK)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "bad URL %s", o->url);
	rc = dd_tls_relay_open(host, port, o->ca_file, c->timeout_ms, &fd,
			       &c->relay, why, why_len);
	if (rc)
		return rc;
	p = dd_malloc(sizeof *p);
	if (p == NULL || uv_pipe_init(c->loop, p, 0) != 0) {
		dd_free(p);
		close(fd);
		return dd_why(why, why_len, DD_ERR_NOMEM, "pipe");
	}
	if (uv_pipe_open(p, fd) != 0) {
		close(fd);
		uv_close((uv_handle_t *)p, free_pipe);
		return dd_why(why, why_len, DD_ERR_IO, "pipe open");
	}
	rc = dd_ws_connect_stream((uv_stream_t *)p, o->url, NULL, wo,
				  &handlers, c, &c->ws);
	if (rc) {
		uv_close((uv_handle_t *)p, free_pipe);
		return dd_why(why, why_len, rc,
			      "WebSocket: %s", dd_strerror(rc));
	}
	return DD_OK;
}

dd_err_t dd_cn_open(const dd_cn_opts *o, dd_cn **out, char *why,
		    size_t why_len)
{
	dd_ws_opts wo;
	dd_cn *c;
	dd_err_t rc;

	*out = NULL;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	c->loop = o->loop;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : CN_DEFAULT_TIMEOUT_MS;
	(void)uv_timer_init(c->loop, &c->timer);
	c->timer.data = c;
	c->queue = json_array();
	c->pt = dd_malloc(DD_NOISE_MAX_MSG);
	if (c->queue == NULL || c->pt == NULL) {
		rc = dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
		goto fail;
	}
	rc = dd_noise_hs_new_initiator(o->key, o->agent_pub, NULL, 0, &c->hs);
	if (rc) {
		rc = dd_why(why, why_len, rc, "Noise: %s", dd_strerror(rc));
		goto fail;
	}
	dd_ws_opts_default(&wo);
	wo.max_message = DD_NOISE_MAX_MSG;
	wo.handshake_timeout_ms = c->timeout_ms;
	if (strncasecmp(o->url, "wss://", 6) == 0) {
		rc = connect_wss(c, o, &wo, why, why_len);
	} else {
		rc = dd_ws_connect(c->loop, o->url, NULL, &wo, &handlers, c,
				   &c->ws);
		if (rc)
			rc = dd_why(why, why_len, rc,
				    "WebSocket %s: %s", o->url,
				    dd_strerror(rc));
	}
	if (!rc) {
		rc = wait_for(c, is_open);
		if (rc)
			rc = ended_why(c, rc, why, why_len);
	}
	if (!rc) {
		*out = c;
		return DD_OK;
	}
fail:
	dd_cn_close(c);
	return rc;
}

/* --- calls ---------------------------------------------------------------- */

static dd_err_t send_json(dd_cn *c, json_t *req, json_t *req_id)
{
	json_t *copy = json_copy(req);
	dd_buf b;
	dd_err_t rc;

	if (copy == NULL || req_id == NULL ||
	    json_object_set_new(copy, "req_id", req_id) != 0) {
		json_decref(copy);
		return DD_ERR_NOMEM;
	}
	dd_buf_init(&b, DD_NOISE_MAX_MSG);
	rc = dd_json_append(&b, copy);
	json_decref(copy);
	if (!rc && b.len > DD_NOISE_MAX_PLAINTEXT)
		rc = DD_ERR_TOO_LARGE;
	if (!rc)
		rc = dd_cn_send_raw(c, b.data, b.len);
	dd_buf_freezero(&b);
	return rc;
}

dd_err_t dd_cn_send_raw(dd_cn *c, const void *p, size_t n)
{
	uint8_t *ct;
	size_t ct_len = 0;
	dd_err_t rc;

	if (c->ws == NULL)
		return DD_ERR_CLOSED;
	if (n > DD_NOISE_MAX_PLAINTEXT)
		return DD_ERR_TOO_LARGE;
	ct = dd_malloc(n + DD_NOISE_TAG_LEN);
	if (ct == NULL)
		return DD_ERR_NOMEM;
	/* A queue over high water: refuse before a nonce is spent. */
	rc = dd_ws_queued(c->ws) > 256u * 1024 ? DD_ERR_BUSY : DD_OK;
	if (!rc)
		rc = dd_noise_transport_encrypt(c->t, p, n, ct,
						n + DD_NOISE_TAG_LEN, &ct_len);
	if (!rc)
		rc = dd_ws_send(c->ws, DD_WS_BINARY, ct, ct_len);
	dd_free(ct);
	/* An encrypted message that could not be queued leaves a nonce gap
	 * the agent will refuse: end the connection rather than limp on. */
	if (rc && rc != DD_ERR_BUSY && c->ws != NULL)
		dd_ws_abort(c->ws);
	return rc;
}

dd_err_t dd_cn_send_json(dd_cn *c, json_t *req)
{
	return send_json(c, req, json_string(CN_BG_REQ));
}

/* Pops the first reply: it must carry c->req; unwraps arrays. */
static dd_err_t pop_reply(dd_cn *c, json_t **reply, char *why,
			  size_t why_len)
{
	json_t *v = json_incref(json_array_get(c->queue, 0));
	json_t *id = json_object_get(v, "req_id"), *res;

	(void)json_array_remove(c->queue, 0);
	if (!json_is_integer(id) || json_integer_value(id) != c->req) {
		json_decref(v);
		return dd_why(why, why_len, DD_ERR_UPSTREAM, "a reply out of "
			      "order (req_id mismatch)");
	}
	res = json_object_get(v, "result");
	if (res != NULL && json_object_size(v) == 2) {
		*reply = json_incref(res);
		json_decref(v);
		return DD_OK;
	}
	(void)json_object_del(v, "req_id");
	*reply = v;
	return DD_OK;
}

dd_err_t dd_cn_next(dd_cn *c, json_t **reply, char *why, size_t why_len)
{
	dd_err_t rc;

	*reply = NULL;
	rc = wait_for(c, has_reply);
	if (rc)
		return ended_why(c, rc, why, why_len);
	return pop_reply(c, reply, why, why_len);
}

dd_err_t dd_cn_call(dd_cn *c, json_t *req, json_t **reply, char *why,
		    size_t why_len)
{
	dd_err_t rc;

	*reply = NULL;
	json_array_clear(c->queue);
	rc = send_json(c, req, json_integer(++c->req));
	if (rc)
		return dd_why(why, why_len, rc, "sending: %s", dd_strerror(rc));
	return dd_cn_next(c, reply, why, why_len);
}

dd_err_t dd_cn_attach(dd_cn *c, const char *id, int tail,
		      const dd_cn_stream *s, char *why, size_t why_len)
{
	json_t *req, *ack = NULL;
	const char *detail = NULL, *code = NULL;
	dd_err_t rc;

	req = json_pack("{s:s, s:s, s:b}", "method", "shell.attach_session",
			"id", id, "tail", tail);
	if (req == NULL)
		return dd_why(why, why_len, DD_ERR_NOMEM, "out of memory");
	c->s = *s;
	c->attach_pending = 1;
	rc = dd_cn_call(c, req, &ack, why, why_len);
	json_decref(req);
	c->attach_pending = 0;
	if (!rc && !c->streaming) {
		(void)dd_json_get_str(ack, "error", &code);
		(void)dd_json_get_str(ack, "detail", &detail);
		rc = dd_why(why, why_len, DD_ERR_UPSTREAM,
			    "attach refused: %s%s%s",
			    code != NULL ? code : "no ack",
			    detail != NULL ? ": " : "",
			    detail != NULL ? detail : "");
	}
	json_decref(ack);
	return rc;
}

static int is_ended(const dd_cn *c)
{
	return c->ended;
}

static int is_timer_closed(const dd_cn *c)
{
	return c->timer_closed;
}

void dd_cn_close(dd_cn *c)
{
	if (c == NULL)
		return;
	c->s = (dd_cn_stream){0};
	if (c->ws != NULL && !c->ended) {
		if (!c->open ||
		    dd_ws_close(c->ws, DD_WS_CLOSE_NORMAL, NULL) != DD_OK)
			dd_ws_abort(c->ws);
		/* close_timeout_ms bounds this. */
		while (!is_ended(c))
			(void)uv_run(c->loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	while (!is_timer_closed(c))
		(void)uv_run(c->loop, UV_RUN_ONCE);
	dd_noise_hs_free(c->hs);
	dd_noise_transport_free(c->t);
	dd_tls_relay_free(c->relay);
	json_decref(c->queue);
	dd_freezero(c->pt, c->pt != NULL ? DD_NOISE_MAX_MSG : 0);
	dd_free(c);
}
