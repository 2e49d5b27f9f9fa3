/*
 * http_request_fuzz.c: hostile bytes into the real HTTP server.
 *
 * Each input is written into one end of a socketpair whose other end the
 * server adopts (dd_http_server_adopt), exactly as if a client had sent
 * it over TCP, then the write side is shut. The loop runs until the
 * server has closed the connection. Routes cover synchronous replies,
 * bodies, path parameters, a gate and a streamed reply, so requests that
 * parse reach every response path. The first input byte picks how the
 * bytes are split into writes, which moves llhttp's buffer boundaries.
 *
 * Seeds: fuzz/seeds/http_request/ (pipelined keep-alive, chunked bodies,
 * smuggling attempts, obs-fold, Expect: 100-continue, HEAD, HTTP/1.0).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t *loop;
static dd_http_server *srv;

static void hello(dd_http_req *req, void *ud)
{
	(void)ud;
	dd_http_respond(req, 200, "text/plain", "hello\n", 6);
}

static void echo(dd_http_req *req, void *ud)
{
	size_t n;
	const uint8_t *b = dd_http_req_body(req, &n);

	(void)ud;
	dd_http_respond(req, 200, "application/octet-stream", b, n);
}

static void params(dd_http_req *req, void *ud)
{
	json_t *v = json_pack("{s:s?, s:s?, s:s?}", "a", dd_http_req_param(req, "a"),
			      "x", dd_http_req_query(req, "x"),
			      "h", dd_http_req_header(req, "X-Test"));

	(void)ud;
	dd_http_respond_json(req, 200, v);
	json_decref(v);
}

static void stream(dd_http_req *req, void *ud)
{
	(void)ud;
	if (dd_http_stream_begin(req, 200, "text/plain") != DD_OK)
		return;
	dd_http_stream_write(req, "a\n", 2);
	dd_http_stream_write(req, "b\n", 2);
	dd_http_stream_end(req);
}

static dd_err_t gate(dd_http_req *req, void *ud, int *authed)
{
	const char *a = dd_http_req_header(req, "Authorization");

	(void)ud;
	if (a != NULL && strcmp(a, "Bearer good") == 0)
		*authed = 1;
	else if (a != NULL)
		return DD_ERR_UNAUTHORIZED;
	return DD_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const dd_http_limits lim = {
		.max_head_bytes = 4096, .max_headers = 32, .max_body = 65536,
		.max_body_unauth = 1024, .head_timeout_ms = 1000,
		.body_timeout_ms = 1000, .idle_timeout_ms = 1000,
		.write_timeout_ms = 1000, .max_connections = 16,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	const dd_http_route routes[] = {
		{.methods = DD_M_GET, .pattern = "/hello", .handler = hello},
		{.methods = DD_M_POST | DD_M_PUT, .pattern = "/echo", .handler = echo},
		{.methods = DD_M_POST, .pattern = "/gated", .handler = echo, .gate = gate},
		{.methods = DD_M_GET, .pattern = "/p/{a}", .handler = params},
		{.methods = DD_M_GET, .pattern = "/f/{a*}", .handler = params},
		{.methods = DD_M_GET, .pattern = "/stream", .handler = stream},
	};

	(void)argc;
	(void)argv;
	dd_json_setup();
	dd_log_setup(DD_LOG_ERROR, DD_LOG_LOGFMT, "fuzz");
	loop = uv_default_loop();
	if (dd_http_server_new(loop, &lim, "fuzz", &srv) != DD_OK)
		abort();
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (dd_http_server_route(srv, &routes[i]) != DD_OK)
			abort();
	}
	return 0;
}

/* Reads and drops whatever the server wrote, so it never blocks. */
static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	size_t chunk, off = 0;

	if (size < 1 || size > 32768)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	if (dd_http_server_adopt(srv, sv[0]) != DD_OK)
		abort();
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t w = write(sv[1], data + off, n);
		if (w > 0)
			off += (size_t)w;
		uv_run(loop, UV_RUN_NOWAIT);
		drain(sv[1]);
		if (dd_http_server_connections(srv) == 0)
			break;
	}
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 10000 && dd_http_server_connections(srv) > 0; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		drain(sv[1]);
	}
	close(sv[1]);
	/* Let close callbacks run so nothing is left between inputs. */
	for (int i = 0; i < 4; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	return 0;
}
