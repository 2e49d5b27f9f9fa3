/*
 * ref_server: the floor for the HTTP benchmarks. A libuv server that does
 * no parsing at all: for every "\r\n\r\n" it reads, it writes one canned
 * 200 response. It shows what one request costs on this machine in the
 * kernel and libuv alone, measured in the same run as the real server.
 * Prints its port on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

static const char reply[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n"
	"hello\n";

struct client {
	uv_tcp_t tcp;
	int tail; /* how much of "\r\n\r\n" the previous read ended with */
};

static char rbuf[65536];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	*b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h)
{
	free(h);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	static const char end[] = "\r\n\r\n";
	struct client *c = (struct client *)s;
	uv_buf_t out[64];
	unsigned count = 0;

	if (n < 0) {
		uv_close((uv_handle_t *)s, on_closed);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		c->tail = b->base[i] == end[c->tail] ? c->tail + 1
			  : (b->base[i] == '\r' ? 1 : 0);
		if (c->tail == 4) {
			c->tail = 0;
			if (count < 64)
				out[count++] = uv_buf_init((char *)(uintptr_t)reply,
							   sizeof reply - 1);
		}
	}
	if (count > 0 && uv_try_write(s, out, count) < 0)
		uv_close((uv_handle_t *)s, on_closed);
}

static void on_conn(uv_stream_t *ls, int status)
{
	struct client *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	uv_tcp_init(ls->loop, &c->tcp);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) == 0) {
		uv_tcp_nodelay(&c->tcp, 1);
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	} else {
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

int main(void)
{
	uv_tcp_t ls;
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof ss;

	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(uv_default_loop(), &ls);
	if (uv_tcp_bind(&ls, (struct sockaddr *)&a, 0) ||
	    uv_listen((uv_stream_t *)&ls, 511, on_conn))
		return 1;
	uv_tcp_getsockname(&ls, (struct sockaddr *)&ss, &len);
	printf("%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
