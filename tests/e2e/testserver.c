/*
 * dd-testserver: the real HTTP server (and the real CP routes) plus a few
 * routes that exist only for the end-to-end tests and benchmarks: echo,
 * slow and streaming responses, a gated route with the two body caps,
 * parameters, and a minimal /hello reference route. Never shipped.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"
#include "cp/cp.h"
#include "net/http.h"
#include "net/service.h"
#include "net/ws.h"

static void hello(dd_http_req *req, void *ud)
{
	(void)ud;
	dd_http_respond(req, 200, "text/plain", "hello\n", 6);
}

static void echo(dd_http_req *req, void *ud)
{
	size_t n;
	const uint8_t *b = dd_http_req_body(req, &n);
	const char *ct = dd_http_req_header(req, "Content-Type");

	(void)ud;
	dd_http_respond(req, 200, ct ? ct : "application/octet-stream", b, n);
}

/* Bearer good -> authenticated (big cap); bad -> 401 now; none -> small cap. */
static dd_err_t gate(dd_http_req *req, void *ud, int *authed)
{
	const char *auth = dd_http_req_header(req, "Authorization");

	(void)ud;
	if (auth == NULL)
		return DD_OK;
	if (strcmp(auth, "Bearer good") == 0) {
		*authed = 1;
		return DD_OK;
	}
	dd_http_respond_error(req, 401, "UNAUTHORIZED", "unauthorized");
	return DD_ERR_UNAUTHORIZED;
}

struct slow {
	uv_timer_t timer;
	dd_http_req *req;
	struct slow *prev, *next;
};

/* Pending /slow requests, cancelled when the service has drained. */
static struct slow *slow_pending;

static void slow_closed(uv_handle_t *h)
{
	struct slow *s = h->data;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		slow_pending = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	dd_free(s);
}

static void slow_cancel_all(void *ud)
{
	(void)ud;
	for (struct slow *s = slow_pending; s != NULL; s = s->next) {
		if (uv_is_closing((uv_handle_t *)&s->timer))
			continue;
		dd_http_req_on_abort(s->req, NULL, NULL);
		dd_http_respond_error(s->req, 503, "UNAVAILABLE", "shutting down");
		uv_close((uv_handle_t *)&s->timer, slow_closed);
	}
}

static void slow_fire(uv_timer_t *t)
{
	struct slow *s = t->data;

	dd_http_req_on_abort(s->req, NULL, NULL);
	dd_http_respond(s->req, 200, "text/plain", "slow\n", 5);
	uv_close((uv_handle_t *)&s->timer, slow_closed);
}

static void slow_abort(void *ud)
{
	struct slow *s = ud;

	uv_close((uv_handle_t *)&s->timer, slow_closed);
}

static uint64_t query_u64(dd_http_req *req, const char *name, uint64_t def,
			  uint64_t max)
{
	const char *v = dd_http_req_query(req, name);
	uint64_t x;

	if (v == NULL || dd_parse_u64(v, 0, max, &x) != DD_OK)
		return def;
	return x;
}

static void slow(dd_http_req *req, void *ud)
{
	struct slow *s = dd_calloc(1, sizeof *s);
	int abortable = dd_http_req_query(req, "abortable") != NULL;

	(void)ud;
	if (s == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	s->req = req;
	s->next = slow_pending;
	if (slow_pending != NULL)
		slow_pending->prev = s;
	slow_pending = s;
	uv_timer_init(dd_http_req_loop(req), &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, slow_fire, query_u64(req, "ms", 1000, 600000), 0);
	if (abortable)
		dd_http_req_on_abort(req, slow_abort, s);
}

struct stream {
	uv_timer_t timer;
	dd_http_req *req;
	uint64_t left, size, delay;
	char *chunk;
	bool done;
};

static void stream_closed(uv_handle_t *h)
{
	struct stream *s = h->data;

	dd_free(s->chunk);
	dd_free(s);
}

static void stream_finish(struct stream *s)
{
	if (s->done)
		return;
	s->done = true;
	uv_close((uv_handle_t *)&s->timer, stream_closed);
}

static void stream_pump(struct stream *s);

static void stream_tick(uv_timer_t *t)
{
	stream_pump(t->data);
}

static void stream_drained(void *ud)
{
	stream_pump(ud);
}

static void stream_abort(void *ud)
{
	stream_finish(ud);
}

static void stream_pump(struct stream *s)
{
	while (s->left > 0) {
		dd_err_t rc = dd_http_stream_write(s->req, s->chunk, s->size);
		s->left--;
		if (rc == DD_ERR_BUSY) {
			dd_http_stream_on_drain(s->req, stream_drained, s);
			return;
		}
		if (rc) {
			stream_finish(s);
			return;
		}
		if (s->delay) {
			uv_timer_start(&s->timer, stream_tick, s->delay, 0);
			return;
		}
	}
	dd_http_req_on_abort(s->req, NULL, NULL);
	dd_http_stream_end(s->req);
	stream_finish(s);
}

static void stream(dd_http_req *req, void *ud)
{
	struct stream *s = dd_calloc(1, sizeof *s);

	(void)ud;
	if (s == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	s->req = req;
	s->left = query_u64(req, "chunks", 3, 1000000);
	s->size = query_u64(req, "size", 16, 1 << 20);
	s->delay = query_u64(req, "delay_ms", 0, 60000);
	s->chunk = dd_malloc(s->size ? s->size : 1);
	if (s->chunk == NULL) {
		dd_free(s);
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	memset(s->chunk, 'x', s->size);
	if (s->size > 0)
		s->chunk[s->size - 1] = '\n';
	uv_timer_init(dd_http_req_loop(req), &s->timer);
	s->timer.data = s;
	dd_http_req_on_abort(req, stream_abort, s);
	if (dd_http_stream_begin(req, 200, "text/plain") != DD_OK) {
		stream_finish(s);
		return;
	}
	stream_pump(s);
}

static void params(dd_http_req *req, void *ud)
{
	json_t *v = json_pack("{s:s?, s:s?, s:s?, s:s?}",
			      "a", dd_http_req_param(req, "a"),
			      "b", dd_http_req_param(req, "b"),
			      "rest", dd_http_req_param(req, "rest"),
			      "x", dd_http_req_query(req, "x"));

	(void)ud;
	dd_http_respond_json(req, 200, v);
	json_decref(v);
}

static void headers(dd_http_req *req, void *ud)
{
	const char *n, *val;
	size_t count = 0;
	json_t *v;

	(void)ud;
	while (dd_http_req_header_at(req, count, &n, &val))
		count++;
	v = json_pack("{s:I, s:s?, s:s, s:b}", "count", (json_int_t)count,
		      "x_test", dd_http_req_header(req, "X-Test"),
		      "method", dd_http_req_method(req),
		      "authenticated", dd_http_req_authenticated(req));
	dd_http_respond_json(req, 200, v);
	json_decref(v);
}

/*
 * WebSocket echo: every message comes back as it came. Open sockets are
 * tracked so shutdown can say goodbye (1001) to each.
 */
#define MAX_WS 20000
static dd_ws *ws_open[MAX_WS];
static size_t ws_count;

static void ws_track(dd_ws *ws, void *ud)
{
	(void)ud;
	if (ws_count == MAX_WS) {
		dd_ws_close(ws, DD_WS_CLOSE_POLICY, "too many");
		return;
	}
	dd_ws_set_userdata(ws, (void *)(uintptr_t)ws_count);
	ws_open[ws_count++] = ws;
}

static void ws_message(dd_ws *ws, dd_ws_op op, const uint8_t *data,
		       size_t len, void *ud)
{
	(void)ud;
	if (len == 5 && memcmp(data, "close", 5) == 0) {
		dd_ws_close(ws, DD_WS_CLOSE_NORMAL, "bye");
		return;
	}
	if (dd_ws_send(ws, op, data, len) == DD_ERR_BUSY)
		dd_ws_close(ws, DD_WS_CLOSE_POLICY, "echo backlog");
}

static void ws_closed(dd_ws *ws, dd_err_t err, uint16_t code,
		      const char *reason, void *ud)
{
	size_t i = (size_t)(uintptr_t)ud;

	(void)ws;
	(void)err;
	(void)code;
	(void)reason;
	/* Swap-remove; the moved entry learns its new index. */
	if (i < ws_count && ws_open[i] == ws) {
		ws_open[i] = ws_open[--ws_count];
		if (i < ws_count)
			dd_ws_set_userdata(ws_open[i], (void *)(uintptr_t)i);
	}
}

static void ws_echo(dd_http_req *req, void *ud)
{
	static const dd_ws_handlers h = {
		.on_open = ws_track, .on_message = ws_message,
		.on_close = ws_closed,
	};
	const dd_config *cfg = ud;
	dd_ws_opts opts;

	dd_ws_opts_default(&opts);
	opts.max_message = cfg->http.ws_max_message;
	dd_ws_accept(req, &opts, &h, NULL);
}

static void ws_close_all(void *ud)
{
	(void)ud;
	for (size_t i = 0; i < ws_count; i++)
		dd_ws_close(ws_open[i], DD_WS_CLOSE_GOING_AWAY, "shutting down");
}

static void created(dd_http_req *req, void *ud)
{
	(void)ud;
	dd_http_set_header(req, "Location", "/things/1");
	dd_http_respond(req, 204, NULL, NULL, 0);
}

/*
 * The test server mounts the CP's /health without its attestation, so
 * the ITA settings a real CP requires get inert placeholders here.
 */
static const char *testserver_env(void *ud, const char *name)
{
	static const char *const placeholders[][2] = {
		{"DD_ITA_BASE_URL", "http://127.0.0.1:9"},
		{"DD_ITA_JWKS_URL", "http://127.0.0.1:9/certs"},
		{"DD_ITA_ISSUER", "unused"},
		{"DD_ITA_API_KEY", "unused"},
		{"DD_AUTH_COOKIE_SECRET", "placeholder-secret-of-32-bytes-or-more"},
	};
	const char *v = getenv(name);

	(void)ud;
	for (size_t i = 0; v == NULL && i < 5; i++) {
		if (strcmp(placeholders[i][0], name) == 0)
			v = placeholders[i][1];
	}
	return v;
}

int main(void)
{
	dd_config *cfg = NULL;
	dd_service *svc = NULL;
	dd_http_server *srv;
	dd_cp *cp = NULL;
	dd_buf errs;
	dd_err_t rc;
	const dd_http_route routes[] = {
		{.methods = DD_M_GET, .pattern = "/hello", .handler = hello},
		{.methods = DD_M_POST | DD_M_PUT, .pattern = "/echo", .handler = echo},
		{.methods = DD_M_POST, .pattern = "/gated/echo", .handler = echo,
		 .gate = gate},
		{.methods = DD_M_GET, .pattern = "/slow", .handler = slow},
		{.methods = DD_M_GET, .pattern = "/stream", .handler = stream},
		{.methods = DD_M_GET, .pattern = "/params/{a}/{b}", .handler = params},
		{.methods = DD_M_GET, .pattern = "/files/{rest*}", .handler = params},
		{.methods = DD_M_GET | DD_M_POST, .pattern = "/headers",
		 .handler = headers, .gate = gate},
		{.methods = DD_M_DELETE, .pattern = "/things/{a}", .handler = created},
		{.methods = DD_M_GET, .pattern = "/ws/echo", .handler = ws_echo},
	};

	dd_json_setup();
	dd_service_bind_to_supervisor();
	dd_buf_init(&errs, 8192);
	rc = dd_config_load(DD_MODE_CP, testserver_env, NULL, &cfg, &errs);
	if (rc) {
		fputs(dd_buf_str(&errs), stderr);
		dd_buf_free(&errs);
		return 1;
	}
	dd_buf_free(&errs);
	dd_log_setup((dd_log_level)cfg->log_level, (dd_log_format)cfg->log_format,
		     "testserver");
	rc = dd_service_new(cfg, "testserver", &svc);
	if (rc == DD_OK)
		rc = dd_cp_new(cfg, dd_service_loop(svc), &cp);
	if (rc == DD_OK)
		rc = dd_service_server(svc, "main", &srv);
	if (rc == DD_OK)
		rc = dd_cp_mount(cp, srv);
	for (size_t i = 0; rc == DD_OK && i < sizeof routes / sizeof routes[0]; i++) {
		dd_http_route r = routes[i];
		if (r.handler == ws_echo)
			r.ud = cfg;
		rc = dd_http_server_route(srv, &r);
	}
	if (rc == DD_OK)
		rc = dd_service_on_shutdown(svc, ws_close_all, NULL);
	if (rc == DD_OK)
		rc = dd_service_on_drained(svc, slow_cancel_all, NULL);
	if (rc == DD_OK)
		rc = dd_service_listen(svc, "main", cfg->bind_addr, cfg->port);
	if (rc == DD_OK) {
		dd_service_ready(svc);
		rc = dd_service_run(svc);
	}
	dd_service_free(svc);
	dd_cp_free(cp);
	dd_config_free(cfg);
	if (rc) {
		fprintf(stderr, "dd-testserver: %s\n", dd_strerror(rc));
		return 1;
	}
	return 0;
}
