/*
 * ws_harness.h: shared fixtures for test_ws.c and test_ws_conn.c.
 *
 * A "pair" is a socketpair: one end wrapped as a dd_ws (uv_pipe_open), the
 * other a raw non-blocking fd the test reads and writes by hand, so it can
 * send frames no real peer would. Handlers record what they saw in a rec.
 * Include after cmocka.h: the fsrv helpers assert.
 */
#ifndef DD_TEST_WS_HARNESS_H
#define DD_TEST_WS_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "net/ws.h"

#define H_TIMEOUT_MS 5000

typedef struct rec {
	int opens, closes, drains, msgs;
	dd_err_t err;
	uint16_t code;
	char reason[128];
	dd_ws_op op;
	uint8_t *last;          /* copy of the last message */
	size_t last_len;
	size_t total;           /* bytes of all messages */
	dd_ws *ws;              /* NULL once on_close ran */
	/* behaviour switches */
	int echo;
	int abort_in_msg;
	int close_in_msg;
	int send_after_close;   /* dd_ws_send inside on_close */
	dd_err_t send_in_close_rc;
	int abort_in_drain;
	int no_copy;            /* keep no copy of messages (memory test) */
	int msg_before_open;
	size_t queued_at_drain;
} rec;

static inline void h_on_open(dd_ws *ws, void *ud)
{
	rec *r = ud;

	r->opens++;
	r->ws = ws;
}

static inline void h_on_message(dd_ws *ws, dd_ws_op op, const uint8_t *d,
				size_t n, void *ud)
{
	rec *r = ud;

	r->msgs++;
	r->op = op;
	if (r->opens == 0 && r->ws == NULL)
		r->msg_before_open++;
	if (!r->no_copy) {
		free(r->last);
		r->last = malloc(n + 1);
		if (r->last != NULL) {
			memcpy(r->last, d, n);
			r->last[n] = 0;
		}
	}
	r->last_len = n;
	r->total += n;
	if (r->echo)
		(void)dd_ws_send(ws, op, d, n);
	if (r->close_in_msg) {
		(void)dd_ws_close(ws, 1000, "bye");
		/* Sending after close must be refused, not crash. */
		if (dd_ws_send(ws, DD_WS_TEXT, "x", 1) != DD_ERR_CLOSED)
			r->err = DD_ERR_INTERNAL;
	}
	if (r->abort_in_msg)
		dd_ws_abort(ws);
}

static inline void h_on_drain(dd_ws *ws, void *ud)
{
	rec *r = ud;

	r->drains++;
	r->queued_at_drain = dd_ws_queued(ws);
	if (r->abort_in_drain)
		dd_ws_abort(ws);
}

static inline void h_on_close(dd_ws *ws, dd_err_t err, uint16_t code,
			      const char *reason, void *ud)
{
	rec *r = ud;

	r->closes++;
	r->err = err;
	r->code = code;
	snprintf(r->reason, sizeof r->reason, "%s", reason);
	if (r->send_after_close)
		r->send_in_close_rc = dd_ws_send(ws, DD_WS_TEXT, "x", 1);
	r->ws = NULL;
}

static const dd_ws_handlers h_handlers = {
	.on_open = h_on_open,
	.on_message = h_on_message,
	.on_drain = h_on_drain,
	.on_close = h_on_close,
};

static inline void rec_free(rec *r)
{
	free(r->last);
	r->last = NULL;
}

typedef struct pair {
	uv_loop_t loop;
	int raw;
	dd_ws *ws;
	rec r;
	uint8_t in[1 << 20];    /* bytes read from the raw end */
	size_t in_len;
	int raw_eof;
} pair;

static inline void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Wraps fd as a uv_pipe_t allocated the way dd_ws expects (dd_malloc). */
static inline uv_stream_t *h_pipe(uv_loop_t *loop, int fd)
{
	uv_pipe_t *p = dd_malloc(sizeof *p);

	if (p == NULL || uv_pipe_init(loop, p, 0) != 0 ||
	    uv_pipe_open(p, fd) != 0)
		abort();
	return (uv_stream_t *)p;
}

static inline pair *pair_new(int is_server, const dd_ws_opts *o)
{
	pair *p = calloc(1, sizeof *p);
	int sv[2];

	if (p == NULL || uv_loop_init(&p->loop) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	p->raw = sv[1];
	set_nonblock(p->raw);
	if (dd_ws_from_stream(h_pipe(&p->loop, sv[0]), is_server, NULL, 0, o,
			      &h_handlers, &p->r, &p->ws) != DD_OK)
		abort();
	p->r.ws = p->ws;
	return p;
}

/* Reads whatever the raw end has (never blocks). */
static inline void pair_drain_raw(pair *p)
{
	ssize_t n;

	for (;;) {
		if (p->in_len == sizeof p->in)
			return;
		n = read(p->raw, p->in + p->in_len, sizeof p->in - p->in_len);
		if (n > 0) {
			p->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			p->raw_eof = 1;
		return;
	}
}

typedef int (*h_cond)(void *arg);

/* Runs the loop (and reads the raw end, if any) until cond or timeout. */
static inline int spin(uv_loop_t *loop, pair *p, h_cond cond, void *arg)
{
	uint64_t end = dd_now_ms() + H_TIMEOUT_MS;

	while (dd_now_ms() < end) {
		(void)uv_run(loop, UV_RUN_NOWAIT);
		if (p != NULL && p->raw >= 0)
			pair_drain_raw(p);
		if (cond(arg))
			return 1;
		(void)poll(NULL, 0, 1);
	}
	return 0;
}

/* Runs the loop for ms milliseconds regardless. */
static inline void spin_for(uv_loop_t *loop, pair *p, uint64_t ms)
{
	uint64_t end = dd_now_ms() + ms;

	while (dd_now_ms() < end) {
		(void)uv_run(loop, UV_RUN_NOWAIT);
		if (p != NULL && p->raw >= 0)
			pair_drain_raw(p);
		(void)poll(NULL, 0, 1);
	}
}

static inline int c_closed(void *arg)
{
	return ((rec *)arg)->closes > 0;
}

static inline int c_msgs1(void *arg)
{
	return ((rec *)arg)->msgs > 0;
}

static inline int c_raw_eof(void *arg)
{
	return ((pair *)arg)->raw_eof;
}

/* Writes everything, running the loop while the socket is full. Returns
 * -1 if the ws end is gone (no SIGPIPE). */
static inline int raw_write(pair *p, const void *d, size_t n)
{
	const uint8_t *b = d;

	while (n > 0) {
		ssize_t w = send(p->raw, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			(void)uv_run(&p->loop, UV_RUN_NOWAIT);
			pair_drain_raw(p);
			continue;
		}
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Ends a pair: aborts the ws if still open, closes the raw end, and runs
 * the loop dry. uv_loop_close succeeding proves no handle was left.
 */
static inline int pair_free(pair *p)
{
	int rc;

	if (p->r.ws != NULL && p->r.closes == 0)
		dd_ws_abort(p->r.ws);
	if (p->raw >= 0)
		close(p->raw);
	p->raw = -1;
	(void)uv_run(&p->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&p->loop);
	rec_free(&p->r);
	free(p);
	return rc;
}

/*
 * fsrv: a hand-written WebSocket "server" on 127.0.0.1 for the client
 * tests: plain non-blocking sockets, polled from the spin conditions.
 */
typedef struct fsrv {
	uv_loop_t loop;
	int lfd, cfd;
	uint16_t port;
	char in[16384];
	size_t in_len;
	int eof;
} fsrv;

static inline void fsrv_open(fsrv *s)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;

	memset(s, 0, sizeof *s);
	s->cfd = -1;
	assert_int_equal(uv_loop_init(&s->loop), 0);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	set_nonblock(s->lfd);
}

static inline void fsrv_poll(fsrv *s)
{
	ssize_t n;

	if (s->cfd == -1) {
		s->cfd = accept(s->lfd, NULL, NULL);
		if (s->cfd >= 0)
			set_nonblock(s->cfd);
	}
	while (s->cfd >= 0 && s->in_len < sizeof s->in - 1) {
		n = read(s->cfd, s->in + s->in_len, sizeof s->in - 1 -
			 s->in_len);
		if (n == 0)
			s->eof = 1;
		if (n <= 0)
			break;
		s->in_len += (size_t)n;
		s->in[s->in_len] = '\0';
	}
}

static inline int c_head(void *arg)
{
	fsrv *s = arg;

	fsrv_poll(s);
	return strstr(s->in, "\r\n\r\n") != NULL;
}

static inline int c_fsrv_eof(void *arg)
{
	fsrv *s = arg;

	fsrv_poll(s);
	return s->eof;
}

static inline void fsrv_send(fsrv *s, const void *d, size_t n)
{
	assert_int_equal(write(s->cfd, d, n), (ssize_t)n);
}

static inline int fsrv_close(fsrv *s)
{
	if (s->cfd >= 0)
		close(s->cfd);
	close(s->lfd);
	(void)uv_run(&s->loop, UV_RUN_DEFAULT);
	return uv_loop_close(&s->loop);
}

/* The accept value for the key in the request the server has read. */
static inline void fsrv_accept(fsrv *s, char out[DD_WS_ACCEPT_LEN + 1])
{
	const char *k = strstr(s->in, "Sec-WebSocket-Key: ");

	assert_non_null(k);
	k += strlen("Sec-WebSocket-Key: ");
	assert_int_equal(strcspn(k, "\r"), 24);
	assert_int_equal(dd_ws_accept_key(k, 24, out), DD_OK);
}

/*
 * Builds one frame. mask != 0 masks with a fixed key. len_form forces the
 * length encoding (0: shortest, 2: 16-bit, 8: 64-bit) to craft
 * non-minimal headers.
 */
static inline size_t mkframe_ex(uint8_t *out, uint8_t b0, int mask,
				const void *payload, size_t len, int len_form)
{
	static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
	const uint8_t *pl = payload;
	size_t h = 2;

	out[0] = b0;
	if (len_form == 0 && len < 126) {
		out[1] = (uint8_t)len;
	} else if (len_form == 2 || (len_form == 0 && len < 65536)) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		h = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	if (mask) {
		out[1] |= 0x80;
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < len; i++)
		out[h + i] = mask ? (uint8_t)(pl[i] ^ key[i & 3]) : pl[i];
	return h + len;
}

static inline size_t mkframe(uint8_t *out, uint8_t b0, int mask,
			     const void *payload, size_t len)
{
	return mkframe_ex(out, b0, mask, payload, len, 0);
}

/* Parses one frame sent to us; unmasks into pl. 0 if incomplete. */
static inline size_t parse_frame(const uint8_t *b, size_t n, uint8_t *b0,
				 int *masked, uint8_t *mkey, uint8_t *pl,
				 size_t *plen)
{
	size_t h = 2, len;

	if (n < 2)
		return 0;
	*b0 = b[0];
	*masked = (b[1] & 0x80) != 0;
	len = b[1] & 0x7f;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (size_t)b[2] << 8 | b[3];
		h = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | b[2 + i];
		h = 10;
	}
	if (*masked) {
		if (n < h + 4)
			return 0;
		memcpy(mkey, b + h, 4);
		h += 4;
	}
	if (n < h + len)
		return 0;
	for (size_t i = 0; i < len; i++)
		pl[i] = *masked ? (uint8_t)(b[h + i] ^ mkey[i & 3]) : b[h + i];
	*plen = len;
	return h + len;
}

#endif
