/*
 * test_httpc.c: the outbound HTTP client against real servers on
 * loopback (a canned-response HTTP server on the test's own loop and a
 * blocking OpenSSL server on a thread), plus the pure retry maths.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "net/httpc.h"
#include "net/retry.h"

/* ---- canned HTTP server on the test loop ---- */

typedef struct conn {
	uv_tcp_t tcp;
	struct srv *s;
	char buf[16384];
	size_t len;
	int done;
	struct conn *prev, *next;
} conn;

typedef struct srv {
	uv_tcp_t listener;
	int port;
	conn *conns;
	int flaky_hits;
	int open;
	char last[16384]; /* the last complete request, head and body */
} srv;

typedef struct wreq {
	uv_write_t w;
	char *data;
	int close_after;
} wreq;

static void conn_closed(uv_handle_t *h)
{
	conn *c = h->data;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->s->open--;
	free(c);
}

static void conn_close(conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_srv_write(uv_write_t *w, int status)
{
	wreq *wr = (wreq *)w;

	(void)status;
	if (wr->close_after)
		conn_close(w->data);
	free(wr->data);
	free(wr);
}

static void srv_send(conn *c, const char *data, size_t len, int close_after)
{
	wreq *wr = calloc(1, sizeof *wr);
	uv_buf_t b;

	assert_non_null(wr);
	wr->data = malloc(len + 1);
	assert_non_null(wr->data);
	memcpy(wr->data, data, len);
	wr->close_after = close_after;
	wr->w.data = c;
	b = uv_buf_init(wr->data, (unsigned)len);
	assert_int_equal(uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1,
				  on_srv_write), 0);
}

static void sendf(conn *c, int close_after, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sendf(conn *c, int close_after, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof tmp);
	srv_send(c, tmp, (size_t)n, close_after);
}

static void send_big(conn *c, size_t n, int chunked)
{
	size_t cap = n * 2 + 256, off = 0;
	char *p = malloc(cap);

	assert_non_null(p);
	if (chunked) {
		off += (size_t)snprintf(p, cap, "HTTP/1.1 200 OK\r\n"
				       "Transfer-Encoding: chunked\r\n\r\n");
		for (size_t i = 0; i < n; i += 1000)
			off += (size_t)snprintf(p + off, cap - off,
						"3e8\r\n%01000d\r\n", 0);
		off += (size_t)snprintf(p + off, cap - off, "0\r\n\r\n");
	} else {
		off += (size_t)snprintf(p, cap, "HTTP/1.1 200 OK\r\n"
				       "Content-Length: %zu\r\n\r\n", n);
		memset(p + off, 'x', n);
		off += n;
	}
	srv_send(c, p, off, 1);
	free(p);
}

/* Answers one complete request according to its path. */
static void respond(conn *c, const char *method, const char *path,
		    const char *body, size_t body_len)
{
	srv *s = c->s;

	if (strcmp(path, "/ok") == 0) {
		sendf(c, 1, "HTTP/1.1 200 OK\r\nContent-Type: application/json"
		      "\r\nX-Dup: first\r\nX-Dup: second\r\n"
		      "Content-Length: 10\r\n\r\n{\"a\":\"ok\"}");
	} else if (strcmp(path, "/echo") == 0) {
		sendf(c, 1, "HTTP/1.1 201 Created\r\nContent-Type: text/plain"
		      "\r\nX-Method: %s\r\nContent-Length: %zu\r\n\r\n%.*s",
		      method, body_len, (int)body_len, body);
	} else if (strcmp(path, "/429") == 0) {
		sendf(c, 1, "HTTP/1.1 429 Too Many Requests\r\n"
		      "retry-after:   7  \r\nContent-Length: 0\r\n\r\n");
	} else if (strcmp(path, "/429long") == 0) {
		sendf(c, 1, "HTTP/1.1 429 Too Many Requests\r\n"
		      "Retry-After: 3600\r\nContent-Length: 0\r\n\r\n");
	} else if (strcmp(path, "/503") == 0) {
		sendf(c, 1, "HTTP/1.1 503 Unavailable\r\nRetry-After: 0\r\n"
		      "Content-Length: 4\r\n\r\nbusy");
	} else if (strcmp(path, "/flaky") == 0) {
		if (s->flaky_hits++ < 2)
			sendf(c, 1, "HTTP/1.1 503 Unavailable\r\n"
			      "Retry-After: 0\r\nContent-Length: 0\r\n\r\n");
		else
			sendf(c, 1, "HTTP/1.1 200 OK\r\nContent-Length: 2"
			      "\r\n\r\nok");
	} else if (strcmp(path, "/404") == 0) {
		sendf(c, 1, "HTTP/1.1 404 Not Found\r\nContent-Length: 4"
		      "\r\n\r\nnope");
	} else if (strcmp(path, "/redirect") == 0) {
		sendf(c, 1, "HTTP/1.1 302 Found\r\nLocation: /ok\r\n"
		      "Content-Length: 0\r\n\r\n");
	} else if (strcmp(path, "/big") == 0) {
		send_big(c, 100000, 0);
	} else if (strcmp(path, "/bigchunked") == 0) {
		send_big(c, 100000, 1);
	} else if (strcmp(path, "/bighdr") == 0) {
		char line[1100];
		memset(line, 'a', 1000);
		line[1000] = '\0';
		sendf(c, 0, "HTTP/1.1 200 OK\r\n");
		for (int i = 0; i < 80; i++)
			sendf(c, 0, "X-Pad-%d: %s\r\n", i, line);
		sendf(c, 1, "Content-Length: 0\r\n\r\n");
	} else if (strcmp(path, "/garbage") == 0) {
		sendf(c, 1, "SURPRISE, NOT HTTP\r\n\r\n");
	} else if (strcmp(path, "/cut") == 0) {
		sendf(c, 1, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
		      "short");
	} else if (strcmp(path, "/interim") == 0) {
		sendf(c, 1, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
		      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	} else if (strcmp(path, "/hang") != 0) {
		sendf(c, 1, "HTTP/1.1 500 Unknown Path\r\nContent-Length: 0"
		      "\r\n\r\n");
	}
	/* /hang: never answer; the connection stays until shutdown. */
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	conn *c = h->data;

	(void)hint;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len -
						     1));
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	conn *c = st->data;
	char method[16], path[256], *end, *cl;
	size_t head, want = 0;

	(void)b;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (c->done || end == NULL)
		return;
	head = (size_t)(end - c->buf) + 4;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (cl != NULL && cl < end)
		want = strtoul(cl + 17, NULL, 10);
	if (c->len < head + want)
		return;
	c->done = 1;
	memcpy(c->s->last, c->buf, c->len + 1);
	{
		const char *sp1 = strchr(c->buf, ' ');
		const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		assert_non_null(sp2);
		snprintf(method, sizeof method, "%.*s",
			 (int)(sp1 - c->buf), c->buf);
		snprintf(path, sizeof path, "%.*s", (int)(sp2 - sp1 - 1),
			 sp1 + 1);
	}
	respond(c, method, path, c->buf + head, want);
}

static void srv_accept(uv_stream_t *l, int status)
{
	srv *s = l->data;
	conn *c;

	assert_int_equal(status, 0);
	c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->s = s;
	uv_tcp_init(l->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->open++;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static void listener_closed(uv_handle_t *h)
{
	((srv *)h->data)->open--;
}

static void srv_start(uv_loop_t *loop, srv *s)
{
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof got;

	memset(s, 0, sizeof *s);
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->open = 1;
	assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0),
			 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64,
				   srv_accept), 0);
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
	s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void srv_stop(srv *s)
{
	for (conn *c = s->conns; c != NULL; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->listener, listener_closed);
}

/* A port on which nothing listens (bound, then released). */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* ---- fixture ---- */

typedef struct out {
	int called;
	dd_err_t err;
	long status;
	char body[256];
	size_t body_len;
	char ctype[64], retry_after[64], location[64], dup[64], xmethod[16];
	int has_interim;
	char message[512];
	unsigned attempts;
} out;

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	srv s;
	dd_httpc *c;
	int closed;
	char url[512];
} fx;

static void copy_hdr(const dd_httpc_result *r, const char *name, char *dst,
		     size_t n)
{
	const char *v = dd_httpc_result_header(r, name);

	snprintf(dst, n, "%s", v != NULL ? v : "");
}

static void on_result(dd_httpc_result *r, void *ud)
{
	out *o = ud;

	o->called++;
	o->err = r->err;
	o->status = r->status;
	o->body_len = r->body.len;
	snprintf(o->body, sizeof o->body, "%s", dd_buf_str(&r->body));
	copy_hdr(r, "Content-Type", o->ctype, sizeof o->ctype);
	copy_hdr(r, "RETRY-AFTER", o->retry_after, sizeof o->retry_after);
	copy_hdr(r, "location", o->location, sizeof o->location);
	copy_hdr(r, "X-Dup", o->dup, sizeof o->dup);
	copy_hdr(r, "X-Method", o->xmethod, sizeof o->xmethod);
	o->has_interim = dd_httpc_result_header(r, "X-Interim") != NULL;
	assert_non_null(r->message);
	snprintf(o->message, sizeof o->message, "%s", r->message);
	o->attempts = r->attempts;
}

static void on_never(dd_httpc_result *r, void *ud)
{
	(void)r;
	(void)ud;
	fail_msg("callback of a cancelled request ran");
}

static void on_closed(dd_httpc *c, void *ud)
{
	(void)c;
	((fx *)ud)->closed = 1;
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	srv_start(&f->loop, &f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	if (f->c != NULL)
		dd_httpc_close(f->c, on_closed, f);
	srv_stop(&f->s);
	uv_close((uv_handle_t *)&f->tick, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_true(f->c == NULL || f->closed);
	assert_int_equal(f->s.open, 0);
	dd_httpc_free(f->c);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static dd_httpc *client(fx *f, const dd_httpc_opts *o)
{
	dd_httpc_opts def = {.timeout_ms = 5000};

	assert_null(f->c);
	assert_int_equal(dd_httpc_new(&f->loop, o != NULL ? o : &def, &f->c),
			 DD_OK);
	return f->c;
}

static const char *url(fx *f, const char *path)
{
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->s.port,
		 path);
	return f->url;
}

/* Runs the loop until *counter reaches n, failing after 20 s. */
static void run_until(fx *f, const int *counter, int n)
{
	uint64_t deadline = dd_now_ms() + 20000;

	uv_timer_start(&f->tick, on_tick, 50, 50);
	while (*counter < n) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&f->tick);
}

/* Runs the loop for about ms milliseconds. */
static void run_for(fx *f, uint64_t ms)
{
	uint64_t end = dd_now_ms() + ms;

	uv_timer_start(&f->tick, on_tick, 10, 10);
	while (dd_now_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->tick);
}

/* Starts rq and waits for its result. */
static void fetch(fx *f, const dd_httpc_request *rq, out *o)
{
	memset(o, 0, sizeof *o);
	assert_int_equal(dd_httpc_start(f->c, rq, on_result, o, NULL), DD_OK);
	run_until(f, &o->called, 1);
	assert_int_equal(o->called, 1);
}

static void get(fx *f, const char *path, out *o)
{
	dd_httpc_request rq = {.url = url(f, path)};

	fetch(f, &rq, o);
}

/* ---- pure: back-off, Retry-After, HTTP-date, decisions ---- */

static void test_backoff(void **state)
{
	dd_retry_policy p = {.base_ms = 100, .cap_ms = 1000,
			     .max_wait_ms = 100000};

	(void)state;
	/* Equal jitter: [d/2, d] where d = min(cap, base * 2^(n-1)). */
	assert_int_equal(dd_retry_backoff_ms(&p, 1, 0), 50);
	assert_int_equal(dd_retry_backoff_ms(&p, 1, 50), 100);
	assert_int_equal(dd_retry_backoff_ms(&p, 1, 51), 50);
	assert_int_equal(dd_retry_backoff_ms(&p, 2, 0), 100);
	assert_int_equal(dd_retry_backoff_ms(&p, 2, 100), 200);
	assert_int_equal(dd_retry_backoff_ms(&p, 3, 7), 207);
	assert_int_equal(dd_retry_backoff_ms(&p, 5, 0), 500);
	assert_int_equal(dd_retry_backoff_ms(&p, 5, 500), 1000);
	assert_int_equal(dd_retry_backoff_ms(&p, 1000, UINT64_MAX), 500 +
			 UINT64_MAX % 501);
	for (uint64_t r = 0; r < 5000; r += 7) {
		uint64_t d = dd_retry_backoff_ms(&p, 40, r * 2654435761u);
		assert_true(d >= 500 && d <= 1000);
	}
	p.max_wait_ms = 300;
	assert_int_equal(dd_retry_backoff_ms(&p, 9, UINT64_MAX), 300);
	/* Zero fields take the defaults. */
	p = (dd_retry_policy){0};
	assert_int_equal(dd_retry_backoff_ms(&p, 1, 0),
			 DD_RETRY_DEFAULT_BASE_MS / 2);
	assert_true(dd_retry_backoff_ms(&p, 60, UINT64_MAX) <=
		    DD_RETRY_DEFAULT_CAP_MS);
}

static void expect_date(const char *s, int64_t now, int64_t want)
{
	int64_t got = -1;

	assert_int_equal(dd_http_date_parse(s, strlen(s), now, &got), DD_OK);
	assert_int_equal(got, want);
}

static void expect_bad_date(const char *s)
{
	int64_t got = 12345;

	assert_int_equal(dd_http_date_parse(s, strlen(s), 1700000000, &got),
			 DD_ERR_INVALID);
	assert_int_equal(got, 12345);
}

static void test_http_date(void **state)
{
	const int64_t now = 1700000000; /* 2023-11-14 */

	(void)state;
	/* RFC 9110's own example in its three forms. */
	expect_date("Sun, 06 Nov 1994 08:49:37 GMT", now, 784111777);
	expect_date("Sunday, 06-Nov-94 08:49:37 GMT", now, 784111777);
	expect_date("Sun Nov  6 08:49:37 1994", now, 784111777);
	expect_date("Thu, 01 Jan 1970 00:00:00 GMT", now, 0);
	expect_date("Tue, 29 Feb 2000 23:59:59 GMT", now, 951868799);
	expect_date("Fri, 31 Dec 1999 23:59:60 GMT", now, 946684800);
	expect_date("Sat Nov 18 22:13:20 2023", now, 1700345600);
	/* Two-digit years: more than 50 years ahead means last century. */
	expect_date("Tuesday, 01-Jan-74 00:00:00 GMT", now, 126230400);
	expect_date("Monday, 01-Jan-73 00:00:00 GMT", now, 3250454400);
	expect_date("Sunday, 01-Jan-50 00:00:00 GMT", now, 2524608000);
	expect_bad_date("");
	expect_bad_date("Sun, 06 Nov 1994 08:49:37 UTC");
	expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMT ");
	expect_bad_date("Sun, 6 Nov 1994 08:49:37 GMT");
	expect_bad_date("sun, 06 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun, 06 nov 1994 08:49:37 GMT");
	expect_bad_date("Sun, 31 Feb 1994 08:49:37 GMT");
	expect_bad_date("Sun, 29 Feb 1900 08:49:37 GMT");
	expect_bad_date("Sun, 00 Nov 1994 08:49:37 GMT");
	expect_bad_date("Sun, 06 Nov 1994 24:00:00 GMT");
	expect_bad_date("Sun, 06 Nov 1994 23:60:00 GMT");
	expect_bad_date("Sun, 06 Nov 1994 23:59:61 GMT");
	expect_bad_date("Sun, 06 Nov 94 08:49:37 GMT");
	expect_bad_date("Sunday, 06-Nov-1994 08:49:37 GMT");
	expect_bad_date("Sun Nov 6 08:49:37 1994");
	expect_bad_date("Sun Nov  6 08:49:37 1994 GMT");
	expect_bad_date("Funday, 06-Nov-94 08:49:37 GMT");
	expect_bad_date("Sun, 06 Nov 1994 08:49 GMT");
}

/* Flip, truncate and extend valid dates: parsing must fail cleanly. */
static void test_http_date_mutations(void **state)
{
	static const char *const seeds[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	};
	char buf[64];
	int64_t t;
	uint64_t ms;

	(void)state;
	for (size_t s = 0; s < 3; s++) {
		size_t n = strlen(seeds[s]);
		for (size_t cut = 0; cut < n; cut++) {
			/* An exact-size heap copy lets ASan catch overreads. */
			char *p = malloc(cut ? cut : 1);
			assert_non_null(p);
			memcpy(p, seeds[s], cut);
			assert_int_not_equal(dd_http_date_parse(p, cut, 0, &t),
					     DD_OK);
			(void)dd_retry_after_parse(p, cut, 0, &ms);
			free(p);
		}
		for (size_t i = 0; i < n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				memcpy(buf, seeds[s], n);
				buf[i] = (char)(buf[i] ^ (1 << bit));
				(void)dd_http_date_parse(buf, n, 0, &t);
				(void)dd_retry_after_parse(buf, n, 0, &ms);
			}
		}
	}
}

static void expect_ra(const char *s, int64_t now, uint64_t want)
{
	uint64_t got = 0;

	assert_int_equal(dd_retry_after_parse(s, strlen(s), now, &got), DD_OK);
	assert_int_equal(got, want);
}

static void test_retry_after(void **state)
{
	uint64_t ms;

	(void)state;
	expect_ra("120", 0, 120000);
	expect_ra("  5\t", 0, 5000);
	expect_ra("0", 0, 0);
	expect_ra("99999999999999999999999", 0, UINT64_MAX);
	expect_ra("18446744073709551615", 0, UINT64_MAX);
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30, 30000);
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30, 0);
	expect_ra("Sun Nov  6 08:49:37 1994", 784111700, 77000);
	assert_int_equal(dd_retry_after_parse("", 0, 0, &ms), DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("  ", 2, 0, &ms),
			 DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("-1", 2, 0, &ms),
			 DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("1.5", 3, 0, &ms),
			 DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("5s", 2, 0, &ms),
			 DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("0x10", 4, 0, &ms),
			 DD_ERR_INVALID);
	assert_int_equal(dd_retry_after_parse("999999999999999999999x", 22, 0,
					      &ms), DD_ERR_INVALID);
}

static void test_retry_decide(void **state)
{
	static const long only500[] = {500};
	dd_retry_policy p = {.max_attempts = 3, .base_ms = 100,
			     .cap_ms = 1000, .max_wait_ms = 5000};
	uint64_t d = 0;

	(void)state;
	assert_true(dd_retry_next(&p, 1, DD_OK, 429, "2", 0, 0, &d));
	assert_int_equal(d, 2000);
	assert_true(dd_retry_next(&p, 1, DD_OK, 503, "3600", 0, 0, &d));
	assert_int_equal(d, 5000); /* Retry-After clamped to max_wait */
	assert_true(dd_retry_next(&p, 1, DD_OK, 503, "soon", 0, 0, &d));
	assert_int_equal(d, 50); /* unparseable: back-off */
	assert_true(dd_retry_next(&p, 2, DD_OK, 502, "60", 0, 100, &d));
	assert_int_equal(d, 200); /* 502: Retry-After not honoured */
	assert_true(dd_retry_next(&p, 1, DD_OK, 504, NULL, 0, 0, &d));
	assert_true(dd_retry_next(&p, 1, DD_ERR_UPSTREAM, 0, NULL, 0, 0, &d));
	assert_true(dd_retry_next(&p, 1, DD_ERR_TIMEOUT, 0, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 3, DD_OK, 503, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_OK, 200, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_OK, 404, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_OK, 500, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_ERR_TOO_LARGE, 200, NULL, 0, 0,
				   &d));
	assert_false(dd_retry_next(&p, 1, DD_ERR_INVALID, 0, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_ERR_CANCELLED, 0, NULL, 0, 0,
				   &d));
	p.no_transport_retry = 1;
	assert_false(dd_retry_next(&p, 1, DD_ERR_UPSTREAM, 0, NULL, 0, 0, &d));
	assert_true(dd_retry_next(&p, 1, DD_OK, 503, NULL, 0, 0, &d));
	p.statuses = only500;
	p.n_statuses = 1;
	assert_true(dd_retry_next(&p, 1, DD_OK, 500, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, 1, DD_OK, 503, NULL, 0, 0, &d));
	p = (dd_retry_policy){0};
	assert_true(dd_retry_next(&p, DD_RETRY_DEFAULT_ATTEMPTS - 1, DD_OK,
				  429, NULL, 0, 0, &d));
	assert_false(dd_retry_next(&p, DD_RETRY_DEFAULT_ATTEMPTS, DD_OK, 429,
				   NULL, 0, 0, &d));
}

/* ---- pure: request validation and the header store ---- */

static void test_validation(void **state)
{
	char longurl[9000];

	(void)state;
	assert_int_equal(dd_httpc_check_method("GET"), DD_OK);
	assert_int_equal(dd_httpc_check_method("M-SEARCH"), DD_OK);
	assert_int_equal(dd_httpc_check_method(""), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_method("GET /x"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_method("G\r\nX"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_method(
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_header("Authorization: Bearer x"),
			 DD_OK);
	assert_int_equal(dd_httpc_check_header("X-Empty:"), DD_OK);
	assert_int_equal(dd_httpc_check_header("X: a\r\nEvil: 1"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_header("X: a\nEvil: 1"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_header("No colon"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_header(": value"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_header("Bad Name: v"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("https://api.example.com/x?y=1"),
			 DD_OK);
	assert_int_equal(dd_httpc_check_url("http://127.0.0.1:8080/"), DD_OK);
	assert_int_equal(dd_httpc_check_url("file:///etc/passwd"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("ftp://example.com/"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("gopher://example.com/"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("example.com/x"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("http://a b/"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url("http://a/\r\nX: y"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url(""), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_url(NULL), DD_ERR_INVALID);
	memset(longurl, 'a', sizeof longurl - 1);
	memcpy(longurl, "http://x/", 9);
	longurl[sizeof longurl - 1] = '\0';
	assert_int_equal(dd_httpc_check_url(longurl), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_ca_file("/nonexistent/ca.pem"),
			 DD_ERR_CONFIG);
	assert_int_equal(dd_httpc_check_ca_file("/"), DD_ERR_CONFIG);
	assert_int_equal(dd_httpc_check_connect_to("127.0.0.1:8443"), DD_OK);
	assert_int_equal(dd_httpc_check_connect_to("edge.test:1"), DD_OK);
	assert_int_equal(dd_httpc_check_connect_to("[::1]:65535"), DD_OK);
	assert_int_equal(dd_httpc_check_connect_to("::1:443"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("edge.test"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to(":443"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:0"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:65536"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:08"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a b:1"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:1\r\nX: y"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to("a:b:1"), DD_ERR_INVALID);
	assert_int_equal(dd_httpc_check_connect_to(NULL), DD_ERR_INVALID);
}

static void add(dd_buf *b, const char *line)
{
	assert_int_equal(dd_httpc_hdr_add(b, line, strlen(line)), DD_OK);
}

static void test_header_store(void **state)
{
	static const char nul_line[] = "X-Nul: a\0b\r\n";
	dd_buf b;
	size_t before;

	(void)state;
	dd_buf_init(&b, 64);
	add(&b, "HTTP/1.1 100 Continue\r\n");
	add(&b, "X-Old: 1\r\n");
	add(&b, "HTTP/1.1 200 OK\r\n");
	add(&b, "Content-Type:  text/plain ; charset=utf-8 \r\n");
	add(&b, " folded continuation\r\n");
	add(&b, "no colon here\r\n");
	add(&b, ":empty-name\r\n");
	add(&b, "\r\n");
	add(&b, "Retry-After: 5");
	assert_int_equal(dd_httpc_hdr_add(&b, nul_line, sizeof nul_line - 1),
			 DD_OK);
	assert_null(dd_httpc_hdr_get(&b, "X-Old"));
	assert_null(dd_httpc_hdr_get(&b, "X-Nul"));
	assert_string_equal(dd_httpc_hdr_get(&b, "content-TYPE"),
			    "text/plain ; charset=utf-8");
	assert_string_equal(dd_httpc_hdr_get(&b, "retry-after"), "5");
	assert_null(dd_httpc_hdr_get(&b, "Content"));
	assert_null(dd_httpc_hdr_get(&b, "Retry-After:"));
	/* Over the cap: refused whole, the store is unchanged. */
	before = b.len;
	assert_int_equal(dd_httpc_hdr_add(&b, "X-Long: 0123456789012345678",
					  27), DD_ERR_TOO_LARGE);
	assert_int_equal(b.len, before);
	assert_string_equal(dd_httpc_hdr_get(&b, "Retry-After"), "5");
	dd_buf_free(&b);
}

/* ---- against the loopback server ---- */

static void test_get_ok(void **state)
{
	fx *f = *state;
	const char *hdrs[] = {"X-Test: one", "Authorization: Bearer s3cret"};
	dd_httpc_request rq = {.url = NULL, .headers = hdrs, .n_headers = 2};
	out o;

	client(f, NULL);
	rq.url = url(f, "/ok");
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "{\"a\":\"ok\"}");
	assert_string_equal(o.ctype, "application/json");
	assert_string_equal(o.dup, "first");
	assert_string_equal(o.message, "");
	assert_int_equal(o.attempts, 1);
	assert_non_null(strstr(f->s.last, "GET /ok HTTP/1.1\r\n"));
	assert_non_null(strstr(f->s.last, "\r\nX-Test: one\r\n"));
	assert_non_null(strstr(f->s.last, "\r\nUser-Agent: devopsdefender/"));
	assert_null(strstr(f->s.last, "Expect:"));
	assert_null(strstr(f->s.last, "Accept-Encoding"));
	assert_int_equal(dd_httpc_inflight(f->c), 0);
}

static void test_methods_and_body(void **state)
{
	fx *f = *state;
	const char *hdrs[] = {"Content-Type: application/json"};
	static const char body[] = "{\"k\":\"v\"}";
	dd_httpc_request rq = {.method = "POST", .headers = hdrs,
			       .n_headers = 1, .body = body,
			       .body_len = sizeof body - 1};
	dd_httpc_opts o = {.user_agent = "dd-test/1"};
	out r;

	client(f, &o);
	rq.url = url(f, "/echo");
	fetch(f, &rq, &r);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, body);
	assert_string_equal(r.xmethod, "POST");
	assert_non_null(strstr(f->s.last, "\r\nUser-Agent: dd-test/1\r\n"));
	assert_non_null(strstr(f->s.last,
			       "\r\nContent-Type: application/json\r\n"));
	rq.method = "PUT";
	fetch(f, &rq, &r);
	assert_string_equal(r.xmethod, "PUT");
	assert_string_equal(r.body, body);
	rq.method = "DELETE";
	rq.body = NULL;
	rq.body_len = 0;
	fetch(f, &rq, &r);
	assert_string_equal(r.xmethod, "DELETE");
	assert_int_equal(r.body_len, 0);
	rq.method = "POST"; /* an empty POST still sends Content-Length */
	fetch(f, &rq, &r);
	assert_string_equal(r.xmethod, "POST");
	assert_non_null(strstr(f->s.last, "\r\nContent-Length: 0\r\n"));
	rq.method = "HEAD";
	rq.url = url(f, "/ok");
	fetch(f, &rq, &r);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
}

static void test_statuses_pass_through(void **state)
{
	fx *f = *state;
	out o;

	client(f, NULL);
	get(f, "/404", &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 404);
	assert_string_equal(o.body, "nope");
	get(f, "/redirect", &o); /* never followed */
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 302);
	assert_string_equal(o.location, "/ok");
	get(f, "/429", &o);
	assert_int_equal(o.status, 429);
	assert_string_equal(o.retry_after, "7");
	get(f, "/interim", &o);
	assert_int_equal(o.status, 200);
	assert_false(o.has_interim);
}

static void test_timeout(void **state)
{
	fx *f = *state;
	dd_httpc_request rq = {.timeout_ms = 200};
	uint64_t t0;
	out o;

	client(f, NULL);
	rq.url = url(f, "/hang");
	t0 = dd_now_ms();
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_TIMEOUT);
	assert_int_equal(o.status, 0);
	assert_true(dd_now_ms() - t0 >= 190);
	assert_true(dd_now_ms() - t0 < 3000);
	assert_true(strlen(o.message) > 0);
}

static void test_too_large(void **state)
{
	fx *f = *state;
	dd_httpc_request rq = {.max_response = 1000};
	out o;

	client(f, NULL);
	rq.url = url(f, "/big"); /* refused from Content-Length */
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_TOO_LARGE);
	assert_non_null(strstr(o.message, "1000"));
	rq.url = url(f, "/bigchunked"); /* stopped while streaming */
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_TOO_LARGE);
	assert_true(o.body_len <= 1000);
	rq.url = url(f, "/bighdr");
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_TOO_LARGE);
	assert_non_null(strstr(o.message, "headers"));
	rq.max_response = 100000; /* exactly the body: accepted */
	rq.url = url(f, "/big");
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.body_len, 100000);
}

static void test_transport_errors(void **state)
{
	fx *f = *state;
	char u[64];
	dd_httpc_request rq = {.url = u};
	out o;

	client(f, NULL);
	snprintf(u, sizeof u, "http://127.0.0.1:%d/", closed_port());
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_int_equal(o.status, 0);
	assert_true(strlen(o.message) > 0);
	get(f, "/garbage", &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	get(f, "/cut", &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_string_equal(o.body, "short");
}

static void test_invalid_requests(void **state)
{
	fx *f = *state;
	const char *crlf[] = {"X-A: 1\r\nX-Evil: 2"};
	dd_httpc_request rq = {0};
	out o = {0};

	client(f, NULL);
	rq.url = "file:///etc/passwd";
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	rq.url = "ftp://127.0.0.1/";
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	rq.url = url(f, "/ok");
	rq.headers = crlf;
	rq.n_headers = 1;
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	rq.n_headers = 0;
	rq.method = "GET /evil";
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	rq.method = NULL;
	rq.body_len = 5; /* with a NULL body */
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	rq.body_len = 0;
	assert_int_equal(dd_httpc_start(f->c, &rq, NULL, NULL, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_httpc_inflight(f->c), 0);
	assert_int_equal(o.called, 0);
}

static void test_retry_until_success(void **state)
{
	fx *f = *state;
	dd_retry_policy p = {.max_attempts = 4, .base_ms = 10, .cap_ms = 20};
	dd_httpc_request rq = {.retry = &p};
	out o;

	client(f, NULL);
	rq.url = url(f, "/flaky");
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "ok");
	assert_int_equal(o.attempts, 3);
	assert_int_equal(f->s.flaky_hits, 3);
}

static void test_retry_gives_up(void **state)
{
	fx *f = *state;
	static const long codes[] = {503};
	dd_retry_policy p = {.max_attempts = 3, .base_ms = 5, .cap_ms = 10,
			     .statuses = codes, .n_statuses = 1};
	dd_httpc_request rq = {.retry = &p};
	char u[64];
	uint64_t t0;
	out o;

	client(f, NULL);
	rq.url = url(f, "/503");
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 503);
	assert_string_equal(o.body, "busy"); /* the last attempt's body */
	assert_int_equal(o.attempts, 3);
	get(f, "/404", &o); /* not retryable: one attempt */
	assert_int_equal(o.attempts, 1);
	/* A Retry-After of an hour is clamped to max_wait. */
	p.max_wait_ms = 30;
	p.statuses = NULL;
	p.n_statuses = 0;
	p.max_attempts = 2;
	rq.url = url(f, "/429long");
	t0 = dd_now_ms();
	fetch(f, &rq, &o);
	assert_int_equal(o.status, 429);
	assert_int_equal(o.attempts, 2);
	assert_true(dd_now_ms() - t0 >= 25 && dd_now_ms() - t0 < 3000);
	/* Transport errors are retried too. */
	snprintf(u, sizeof u, "http://127.0.0.1:%d/", closed_port());
	rq.url = u;
	fetch(f, &rq, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_int_equal(o.attempts, 2);
	p.no_transport_retry = 1;
	fetch(f, &rq, &o);
	assert_int_equal(o.attempts, 1);
}

static void test_cancel(void **state)
{
	fx *f = *state;
	dd_retry_policy p = {.max_attempts = 5, .base_ms = 60000,
			     .cap_ms = 60000};
	dd_httpc_request rq = {0};
	dd_httpc_req *h = NULL, *h2 = NULL;
	out o = {0};

	client(f, NULL);
	rq.url = url(f, "/hang");
	assert_int_equal(dd_httpc_start(f->c, &rq, on_never, NULL, &h), DD_OK);
	/* A second request completes while the first hangs. */
	rq.url = url(f, "/ok");
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_OK);
	run_until(f, &o.called, 1);
	assert_int_equal(o.status, 200);
	assert_int_equal(dd_httpc_inflight(f->c), 1);
	dd_httpc_cancel(h);
	assert_int_equal(dd_httpc_inflight(f->c), 0);
	/* Cancel one that is waiting for its back-off timer. */
	rq.url = url(f, "/429long"); /* waits max_wait: 60 s */
	rq.retry = &p;
	assert_int_equal(dd_httpc_start(f->c, &rq, on_never, NULL, &h2),
			 DD_OK);
	run_for(f, 300); /* the 429 is in; the retry waits 60 s */
	dd_httpc_cancel(h2);
	assert_int_equal(dd_httpc_inflight(f->c), 0);
}

typedef struct closer {
	fx *f;
	int called;
	dd_err_t err;
	int started_after_close;
} closer;

static void on_cancelled(dd_httpc_result *r, void *ud)
{
	closer *c = ud;
	dd_httpc_request rq = {.url = "http://127.0.0.1:1/"};

	c->called++;
	c->err = r->err;
	assert_string_equal(r->message, "client closed");
	c->started_after_close = dd_httpc_start(c->f->c, &rq, on_never, NULL,
						NULL);
}

static void test_close_in_flight(void **state)
{
	fx *f = *state;
	dd_retry_policy p = {.max_attempts = 5, .base_ms = 60000,
			     .cap_ms = 60000};
	dd_httpc_request rq = {0};
	closer a = {.f = f}, b = {.f = f};

	client(f, NULL);
	rq.url = url(f, "/hang");
	assert_int_equal(dd_httpc_start(f->c, &rq, on_cancelled, &a, NULL),
			 DD_OK);
	rq.url = url(f, "/429long"); /* waits max_wait: 60 s */
	rq.retry = &p;
	assert_int_equal(dd_httpc_start(f->c, &rq, on_cancelled, &b, NULL),
			 DD_OK);
	run_for(f, 300);
	dd_httpc_close(f->c, on_closed, f);
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	assert_int_equal(b.err, DD_ERR_CANCELLED);
	assert_int_equal(a.started_after_close, DD_ERR_CLOSED);
	assert_int_equal(dd_httpc_inflight(f->c), 0);
	/* teardown closes again (ignored) and runs the loop dry. */
}

static void test_busy_and_concurrency(void **state)
{
	fx *f = *state;
	dd_httpc_opts op = {.max_inflight = 20};
	dd_httpc_request rq = {0};
	out o[20];
	int total = 0;

	memset(o, 0, sizeof o);
	client(f, &op);
	rq.url = url(f, "/ok");
	for (int i = 0; i < 20; i++)
		assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o[i],
						 NULL), DD_OK);
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o[0], NULL),
			 DD_ERR_BUSY);
	while (total < 20) {
		uv_run(&f->loop, UV_RUN_ONCE);
		total = 0;
		for (int i = 0; i < 20; i++)
			total += o[i].called;
	}
	for (int i = 0; i < 20; i++) {
		assert_int_equal(o[i].called, 1);
		assert_int_equal(o[i].status, 200);
	}
}

static void test_bad_ca_file(void **state)
{
	fx *f = *state;
	dd_httpc_opts o = {.ca_file = "/nonexistent/ca.pem"};
	dd_httpc *c = (dd_httpc *)(uintptr_t)1;

	assert_int_equal(dd_httpc_new(&f->loop, &o, &c), DD_ERR_CONFIG);
	assert_null(c);
}

/* ---- TLS: a throw-away self-signed certificate and a server thread ---- */

typedef struct tls_srv {
	int lfd;
	int port;
	SSL_CTX *ctx;
	pthread_t th;
	char ca_path[64];
	char host[128];  /* the last request's Host header */
} tls_srv;

static void add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A P-256 self-signed CA certificate valid for san; PEM in ca_path. */
static void make_cert(tls_srv *t, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	FILE *fp;
	int fd;

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)"dd-httpc-test", -1,
				   -1, 0);
	X509_set_issuer_name(x, nm);
	add_ext(x, NID_subject_alt_name, san);
	add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
	add_ext(x, NID_subject_key_identifier, "hash");
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	t->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(t->ctx);
	assert_int_equal(SSL_CTX_use_certificate(t->ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(t->ctx, k), 1);
	snprintf(t->ca_path, sizeof t->ca_path, "/tmp/dd-httpc-ca-XXXXXX");
	fd = mkstemp(t->ca_path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Read by the test once the response has arrived (the GET is done). */
static void keep_host(tls_srv *t, const char *head)
{
	const char *h = strstr(head, "\r\nHost: ");
	size_t n = 0;

	t->host[0] = '\0';
	if (h == NULL)
		return;
	h += strlen("\r\nHost: ");
	while (h[n] != '\r' && h[n] != '\0' && n < sizeof t->host - 1)
		n++;
	memcpy(t->host, h, n);
	t->host[n] = '\0';
}

static void *tls_main(void *arg)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
				   "Connection: close\r\n\r\ntls-ok";
	tls_srv *t = arg;

	for (;;) {
		struct timeval tv = {.tv_sec = 5};
		char buf[4096];
		size_t got = 0;
		int fd = accept(t->lfd, NULL, NULL), n;
		SSL *ssl;

		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			break; /* shutdown() of the listener: stop */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		ssl = SSL_new(t->ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			while (got < sizeof buf - 1) {
				n = SSL_read(ssl, buf + got,
					     (int)(sizeof buf - 1 - got));
				if (n <= 0)
					break;
				got += (size_t)n;
				buf[got] = '\0';
				if (strstr(buf, "\r\n\r\n") != NULL) {
					keep_host(t, buf);
					SSL_write(ssl, resp, sizeof resp - 1);
					break;
				}
			}
			SSL_shutdown(ssl);
		}
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static void tls_start(tls_srv *t, const char *san)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;

	make_cert(t, san);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->lfd >= 0);
	assert_int_equal(bind(t->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(t->lfd, 16), 0);
	assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&a, &len), 0);
	t->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&t->th, NULL, tls_main, t), 0);
}

static void tls_stop(tls_srv *t)
{
	shutdown(t->lfd, SHUT_RDWR);
	pthread_join(t->th, NULL);
	close(t->lfd);
	SSL_CTX_free(t->ctx);
	unlink(t->ca_path);
}

/* One HTTPS GET of u, maybe connecting to connect_to instead. */
static void tls_get(fx *f, tls_srv *t, int with_ca, const char *u,
		    const char *connect_to, out *o)
{
	dd_httpc_opts op = {.timeout_ms = 5000,
			    .ca_file = with_ca ? t->ca_path : NULL};
	dd_httpc_request rq = {.url = u, .connect_to = connect_to};

	client(f, &op);
	fetch(f, &rq, o);
	dd_httpc_close(f->c, on_closed, f);
	while (!f->closed)
		uv_run(&f->loop, UV_RUN_ONCE);
	dd_httpc_free(f->c);
	f->c = NULL;
	f->closed = 0;
}

/* One HTTPS GET of /, with or without the test CA as extra anchor. */
static void tls_fetch(fx *f, tls_srv *t, int with_ca, out *o)
{
	char u[64];

	snprintf(u, sizeof u, "https://127.0.0.1:%d/", t->port);
	tls_get(f, t, with_ca, u, NULL, o);
}

/*
 * connect_to (a fake edge): the connection goes to the given address,
 * while the Host header and the certificate check stay the URL's name,
 * which is never resolved (.invalid cannot be).
 */
static void test_connect_to(void **state)
{
	static const char name[] = "dd-pr-1-api-x.edge.invalid";
	fx *f = *state;
	tls_srv edge = {0}, wrong = {0};
	char to[64], u[96];
	dd_httpc_request rq = {.url = "https://x.invalid/",
			       .connect_to = "127.0.0.1:0"};
	out o;

	tls_start(&edge, "DNS:dd-pr-1-api-x.edge.invalid");
	tls_start(&wrong, "DNS:wrong.example,IP:127.0.0.1");
	snprintf(u, sizeof u, "https://%s/health", name);
	snprintf(to, sizeof to, "127.0.0.1:%d", edge.port);
	tls_get(f, &edge, 1, u, to, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "tls-ok");
	assert_string_equal(edge.host, name);
	/* Without it the name does not resolve. */
	tls_get(f, &edge, 1, u, NULL, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	/* A certificate for the address but not the name: refused. */
	snprintf(to, sizeof to, "127.0.0.1:%d", wrong.port);
	tls_get(f, &wrong, 1, u, to, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_int_equal(o.status, 0);
	/* A malformed value is refused before anything starts. */
	client(f, NULL);
	assert_int_equal(dd_httpc_start(f->c, &rq, on_result, &o, NULL),
			 DD_ERR_INVALID);
	tls_stop(&edge);
	tls_stop(&wrong);
}

static void test_tls(void **state)
{
	fx *f = *state;
	tls_srv good = {0}, wrong = {0};
	out o;

	tls_start(&good, "IP:127.0.0.1,DNS:localhost");
	tls_start(&wrong, "DNS:wrong.example");
	/* (a) untrusted: verification fails without the CA file. */
	tls_fetch(f, &good, 0, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.message, "certificate"));
	/* (b) trusted through the extra CA file: it works. */
	tls_fetch(f, &good, 1, &o);
	assert_int_equal(o.err, DD_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "tls-ok");
	/* (c) trusted but for another name: host verification fails. */
	tls_fetch(f, &wrong, 1, &o);
	assert_int_equal(o.err, DD_ERR_UPSTREAM);
	assert_true(strlen(o.message) > 0);
	tls_stop(&good);
	tls_stop(&wrong);
}

/* R17: fail each of our allocations of a request in turn (torture). */
static void test_torture(void **state)
{
	fx *f = *state;
	dd_retry_policy p = {.max_attempts = 2, .base_ms = 1, .cap_ms = 2};
	const char *hdrs[] = {"X-A: 1"};
	dd_httpc_request rq = {.method = "POST", .headers = hdrs,
			       .n_headers = 1, .body = "x", .body_len = 1,
			       .retry = &p};
	unsigned long n, used;
	dd_err_t rc;
	out o;

	client(f, NULL);
	rq.url = url(f, "/flaky");
	for (n = 1;; n++) {
		memset(&o, 0, sizeof o);
		f->s.flaky_hits = 0;
		dd_alloc_fail_at(n);
		rc = dd_httpc_start(f->c, &rq, on_result, &o, NULL);
		if (rc == DD_OK)
			run_until(f, &o.called, 1);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_true(rc != DD_OK || o.err == DD_OK ||
			    o.err == DD_ERR_NOMEM);
		if (used < n)
			break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_http_date_mutations),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_retry_decide),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_header_store),
		cmocka_unit_test_setup_teardown(test_get_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_methods_and_body, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_statuses_pass_through,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transport_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retry_until_success, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retry_gives_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_busy_and_concurrency,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ca_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_to, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torture, setup, teardown),
	};

	/* A peer that goes away mid-write must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
