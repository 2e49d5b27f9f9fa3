/*
 * The scrape resolver (net/dns.c) against an in-process DNS responder on
 * 127.0.0.1 (UDP and TCP on one random port, plus a TCP-only port whose
 * UDP side is closed): A and AAAA, NXDOMAIN, no data, truncation to TCP,
 * silence to timeouts, refusal to the TCP retry, no cache, hosts file
 * ignored, cancellation and free with queries in flight. No timing
 * assertions: a guard timer only turns a hang into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/alloc.h"
#include "cp/collect_dns.h"
#include "cp/collector.h"
#include "net/dns.h"

#define GUARD_MS 30000u
#define MAX_CONNS 16

/* ---- the responder ---- */

typedef struct tconn {
	uv_tcp_t h;
	struct responder *r;
	uint8_t buf[1024];
	size_t len;
	bool used, closing;
} tconn;

typedef struct responder {
	uv_udp_t udp;
	uv_tcp_t tcp, tcp_only;
	int port, port_tcp_only;
	unsigned udp_q, tcp_q;   /* questions seen */
	unsigned flip;           /* flip.test answers 192.0.2.(10 + flip) */
	bool late;               /* late.test exists */
	tconn conns[MAX_CONNS];
} responder;

typedef struct rr {
	uint16_t type;
	uint8_t data[16];
	uint16_t len;
} rr;

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static rr a4(unsigned last)
{
	rr x = {.type = 1, .len = 4, .data = {192, 0, 2, (uint8_t)last}};
	return x;
}

static rr a6(void)
{
	rr x = {.type = 28, .len = 16};

	(void)inet_pton(AF_INET6, "2001:db8::1", x.data);
	return x;
}

/*
 * The table. Returns the rcode; -1 for silence. Fills up to 20 records
 * of qtype; *tc asks for a truncated UDP reply.
 */
static int lookup(responder *r, const char *name, unsigned qtype, bool tcp,
		  rr *out, size_t *n, bool *tc)
{
	*n = 0;
	*tc = false;
	if (strcmp(name, "silent.test") == 0)
		return -1;
	if (strcmp(name, "tcpsilent.test") == 0) {
		*tc = true;
		return tcp ? -1 : 0;
	}
	if (strcmp(name, "servfail.test") == 0)
		return 2;
	if (strcmp(name, "both.test") == 0) {
		out[(*n)++] = qtype == 1 ? a4(1) : a6();
		return 0;
	}
	if (strcmp(name, "v4.test") == 0) {
		if (qtype == 1)
			out[(*n)++] = a4(4);
		return 0;
	}
	if (strcmp(name, "big.test") == 0) {
		if (!tcp) {
			*tc = true;
			return 0;
		}
		if (qtype == 1)
			out[(*n)++] = a4(7);
		return 0;
	}
	if (strcmp(name, "flip.test") == 0) {
		if (qtype == 1)
			out[(*n)++] = a4(10 + r->flip);
		return 0;
	}
	if (strcmp(name, "late.test") == 0) {
		if (!r->late)
			return 3;
		if (qtype == 1)
			out[(*n)++] = a4(20);
		return 0;
	}
	if (strcmp(name, "many.test") == 0) {
		for (unsigned i = 0; qtype == 1 && i < 20; i++)
			out[(*n)++] = a4(100 + i);
		return 0;
	}
	if (strcmp(name, "nodata.test") == 0)
		return 0;
	return 3; /* NXDOMAIN, "localhost" included */
}

/* A reply to query q of qn bytes in out; 0 for none. */
static size_t answer(responder *r, const uint8_t *q, size_t qn, bool tcp,
		     uint8_t *out, size_t cap)
{
	char name[256];
	size_t off = 12, nl = 0, len, qend, n = 0;
	rr recs[20];
	bool tc;
	unsigned qtype;
	int rcode;

	if (qn < 12 || q[4] != 0 || q[5] != 1)
		return 0;
	while (off < qn && q[off] != 0) {
		len = q[off];
		if (len > 63 || off + 1 + len > qn || nl + len + 1 >= sizeof name)
			return 0;
		if (nl > 0)
			name[nl++] = '.';
		memcpy(name + nl, q + off + 1, len);
		nl += len;
		off += 1 + len;
	}
	name[nl] = '\0';
	qend = off + 5;
	if (qend > qn || qend > cap)
		return 0;
	qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
	if (tcp)
		r->tcp_q++;
	else
		r->udp_q++;
	rcode = lookup(r, name, qtype, tcp, recs, &n, &tc);
	if (rcode < 0)
		return 0;
	memcpy(out, q, qend);
	out[2] = (uint8_t)(0x81 | (tc ? 0x02 : 0)); /* QR, RD, TC */
	out[3] = (uint8_t)(0x80 | rcode);           /* RA, rcode */
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	off = qend;
	for (size_t i = 0; i < n && !tc; i++) {
		if (off + 12 + recs[i].len > cap)
			break;
		put16(out + off, 0xc00c);
		put16(out + off + 2, recs[i].type);
		put16(out + off + 4, 1);
		memset(out + off + 6, 0, 4); /* TTL 0 */
		put16(out + off + 10, recs[i].len);
		memcpy(out + off + 12, recs[i].data, recs[i].len);
		off += 12u + recs[i].len;
		put16(out + 6, (unsigned)i + 1);
	}
	return off;
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	static char slab[2048];

	(void)h;
	(void)want;
	b->base = slab;
	b->len = sizeof slab;
}

static void on_udp_sent(uv_udp_send_t *s, int status)
{
	(void)status;
	free(s);
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
		   const struct sockaddr *from, unsigned flags)
{
	responder *r = h->data;
	uv_udp_send_t *s;
	uint8_t *out;
	size_t len;
	uv_buf_t ob;

	(void)flags;
	if (n <= 0 || from == NULL)
		return;
	s = malloc(sizeof *s + 2048);
	assert_non_null(s);
	out = (uint8_t *)(s + 1);
	len = answer(r, (const uint8_t *)b->base, (size_t)n, false, out, 512);
	if (len == 0) {
		free(s);
		return;
	}
	ob = uv_buf_init((char *)out, (unsigned)len);
	assert_int_equal(uv_udp_send(s, h, &ob, 1, from, on_udp_sent), 0);
}

static void on_tcp_written(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

static void on_conn_closed(uv_handle_t *h)
{
	tconn *c = h->data;

	c->used = false;
	c->closing = false;
}

static void conn_close(tconn *c)
{
	if (c->used && !c->closing) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->h, on_conn_closed);
	}
}

static void on_tcp_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b)
{
	tconn *c = h->data;
	size_t need, len;
	uv_write_t *w;
	uint8_t *out;
	uv_buf_t ob;

	if (n < 0) {
		conn_close(c);
		return;
	}
	if ((size_t)n > sizeof c->buf - c->len) {
		conn_close(c);
		return;
	}
	memcpy(c->buf + c->len, b->base, (size_t)n);
	c->len += (size_t)n;
	while (c->len >= 2) {
		need = (size_t)(c->buf[0] << 8 | c->buf[1]);
		if (c->len < 2 + need)
			return;
		w = malloc(sizeof *w + 2048);
		assert_non_null(w);
		out = (uint8_t *)(w + 1);
		len = answer(c->r, c->buf + 2, need, true, out + 2, 2046);
		if (len > 0) {
			put16(out, (unsigned)len);
			ob = uv_buf_init((char *)out, (unsigned)len + 2);
			assert_int_equal(uv_write(w, h, &ob, 1, on_tcp_written),
					 0);
		} else {
			free(w);
		}
		memmove(c->buf, c->buf + 2 + need, c->len - 2 - need);
		c->len -= 2 + need;
	}
}

static void on_tcp_conn(uv_stream_t *srv, int status)
{
	responder *r = srv->data;
	tconn *c = NULL;

	assert_int_equal(status, 0);
	for (size_t i = 0; i < MAX_CONNS && c == NULL; i++) {
		if (!r->conns[i].used)
			c = &r->conns[i];
	}
	/* Not assert_non_null: -O3 does not know it never returns. */
	if (c == NULL) {
		fail_msg("no free connection slot");
		return;
	}
	memset(c, 0, sizeof *c);
	c->used = true;
	c->r = r;
	assert_int_equal(uv_tcp_init(srv->loop, &c->h), 0);
	c->h.data = c;
	assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->h), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->h, on_alloc,
				       on_tcp_read), 0);
}

static int bound_port(const uv_handle_t *h, bool udp)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;

	if (udp)
		assert_int_equal(uv_udp_getsockname((const uv_udp_t *)h,
						    (struct sockaddr *)&ss, &len),
				 0);
	else
		assert_int_equal(uv_tcp_getsockname((const uv_tcp_t *)h,
						    (struct sockaddr *)&ss, &len),
				 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A socket of type bound to 127.0.0.1:port (0: any); -1 when taken. */
static int bound_socket(int type, int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sa), 0);
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void listen_fd(uv_loop_t *loop, uv_tcp_t *t, responder *r, int fd)
{
	assert_int_equal(uv_tcp_init(loop, t), 0);
	t->data = r;
	assert_int_equal(uv_tcp_open(t, fd), 0);
	assert_int_equal(uv_listen((uv_stream_t *)t, 16, on_tcp_conn), 0);
}

static void responder_start(uv_loop_t *loop, responder *r)
{
	int tfd = -1, ufd = -1, port = 0;

	memset(r, 0, sizeof *r);
	/* One port for both: a TCP port first, then its UDP twin if free. */
	for (int i = 0; i < 50 && ufd < 0; i++) {
		if (tfd >= 0)
			close(tfd);
		tfd = bound_socket(SOCK_STREAM, 0);
		assert_true(tfd >= 0);
		{
			struct sockaddr_in sa;
			socklen_t len = sizeof sa;

			assert_int_equal(getsockname(tfd, (struct sockaddr *)&sa,
						     &len), 0);
			port = ntohs(sa.sin_port);
		}
		ufd = bound_socket(SOCK_DGRAM, port);
	}
	assert_true(ufd >= 0);
	r->port = port;
	assert_int_equal(uv_udp_init(loop, &r->udp), 0);
	r->udp.data = r;
	assert_int_equal(uv_udp_open(&r->udp, ufd), 0);
	assert_int_equal(uv_udp_recv_start(&r->udp, on_alloc, on_udp), 0);
	listen_fd(loop, &r->tcp, r, tfd);
	/* TCP only: UDP queries to this port meet ICMP unreachable. */
	tfd = bound_socket(SOCK_STREAM, 0);
	assert_true(tfd >= 0);
	listen_fd(loop, &r->tcp_only, r, tfd);
	r->port_tcp_only = bound_port((uv_handle_t *)&r->tcp_only, false);
}

static void responder_stop(responder *r)
{
	uv_close((uv_handle_t *)&r->udp, NULL);
	uv_close((uv_handle_t *)&r->tcp, NULL);
	uv_close((uv_handle_t *)&r->tcp_only, NULL);
	for (size_t i = 0; i < MAX_CONNS; i++)
		conn_close(&r->conns[i]);
}

/* ---- fixture ---- */

typedef struct got {
	int called;
	dd_err_t err;
	char msg[512];
	size_t n;
	dd_dns_addr addrs[DD_DNS_MAX_ADDRS];
} got;

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t guard;
	bool fired;
	responder r;
	dd_dns *d;
} fx;

/*
 * The loop under test: a callback stops uv_run(UV_RUN_ONCE) so that an
 * answer delivered from a timer does not leave run_until blocked in poll.
 */
static uv_loop_t *cur_loop;

static void on_got(const dd_dns_result *res, void *ud)
{
	got *g = ud;

	uv_stop(cur_loop);

	g->called++;
	g->err = res->err;
	snprintf(g->msg, sizeof g->msg, "%s", res->message);
	g->n = res->n;
	memcpy(g->addrs, res->addrs, sizeof g->addrs);
}

static void on_guard(uv_timer_t *h)
{
	fx *f = h->data;

	f->fired = true;
}

static void run_until(fx *f, const int *flag, int want)
{
	uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
	while (*flag < want && !f->fired)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->guard);
	assert_false(f->fired);
}

static dd_dns *open_dns(fx *f, int port, uint64_t timeout_ms)
{
	char servers[64];
	dd_dns_opts o = {.servers = servers, .timeout_ms = timeout_ms,
			 .tries = 2};
	dd_dns *d = NULL;

	snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
	assert_int_equal(dd_dns_new(&f->loop, &o, &d), DD_OK);
	return d;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
	f->guard.data = f;
	cur_loop = &f->loop;
	responder_start(&f->loop, &f->r);
	f->d = open_dns(f, f->r.port, 200);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	dd_dns_free(f->d);
	responder_stop(&f->r);
	uv_close((uv_handle_t *)&f->guard, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	/* Every handle, the resolver's included, is closed. */
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void resolve(fx *f, const char *name, got *g)
{
	memset(g, 0, sizeof *g);
	assert_int_equal(dd_dns_resolve(f->d, name, on_got, g, NULL), DD_OK);
	assert_int_equal(g->called, 0); /* never inside dd_dns_resolve */
	run_until(f, &g->called, 1);
	assert_int_equal(g->called, 1);
}

static bool has(const got *g, int family, const char *text)
{
	for (size_t i = 0; i < g->n; i++) {
		if (g->addrs[i].family == family &&
		    strcmp(g->addrs[i].text, text) == 0)
			return true;
	}
	return false;
}

/* ---- tests ---- */

static void test_a_and_aaaa(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "both.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_string_equal(g.msg, "");
	assert_int_equal(g.n, 2);
	assert_true(has(&g, AF_INET, "192.0.2.1"));
	assert_true(has(&g, AF_INET6, "2001:db8::1"));
	assert_int_equal(f->r.udp_q, 2); /* one A, one AAAA */

	resolve(f, "v4.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.n, 1);
	assert_true(has(&g, AF_INET, "192.0.2.4"));
}

static void test_nxdomain_and_nodata_are_dns_errors(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "nx.test", &g);
	assert_int_equal(g.err, DD_ERR_NOT_FOUND);
	assert_non_null(strstr(g.msg, "could not resolve nx.test: dns error"));
	assert_true(dd_collect_is_dns_error(g.msg));

	resolve(f, "nodata.test", &g);
	assert_int_equal(g.err, DD_ERR_NOT_FOUND);
	assert_true(dd_collect_is_dns_error(g.msg));

	resolve(f, "servfail.test", &g);
	assert_int_equal(g.err, DD_ERR_UPSTREAM);
	assert_true(dd_collect_is_dns_error(g.msg));
}

static void test_silence_times_out_after_the_tries(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "silent.test", &g);
	assert_int_equal(g.err, DD_ERR_TIMEOUT);
	assert_non_null(strstr(g.msg, "no answer after 2 tries"));
	assert_true(dd_collect_is_dns_error(g.msg));
	/* Two tries each of A and AAAA, over UDP only. */
	assert_int_equal(f->r.udp_q, 4);
	assert_int_equal(f->r.tcp_q, 0);
}

static void test_truncation_goes_to_tcp(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "big.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.n, 1);
	assert_true(has(&g, AF_INET, "192.0.2.7"));
	assert_int_equal(f->r.udp_q, 2);
	assert_int_equal(f->r.tcp_q, 2);
}

static void test_refused_udp_falls_back_to_tcp(void **state)
{
	fx *f = *state;
	got g;

	dd_dns_free(f->d);
	f->d = open_dns(f, f->r.port_tcp_only, 200);
	resolve(f, "both.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.n, 2);
	assert_int_equal(f->r.udp_q, 0);
	assert_int_equal(f->r.tcp_q, 2);
}

static void test_nothing_is_cached(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "flip.test", &g);
	assert_true(has(&g, AF_INET, "192.0.2.10"));
	f->r.flip = 1;
	resolve(f, "flip.test", &g);
	assert_true(has(&g, AF_INET, "192.0.2.11"));

	/* No negative caching: a name that appears resolves at once. */
	resolve(f, "late.test", &g);
	assert_int_equal(g.err, DD_ERR_NOT_FOUND);
	f->r.late = true;
	resolve(f, "late.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_true(has(&g, AF_INET, "192.0.2.20"));
	assert_int_equal(f->r.udp_q, 8);
}

/* The first name in /etc/hosts other than localhost, if any. */
static bool hosts_name(char *out, size_t len)
{
	FILE *fp = fopen("/etc/hosts", "r");
	char line[512], *tok, *save;
	bool found = false;

	if (fp == NULL)
		return false;
	while (!found && fgets(line, sizeof line, fp) != NULL) {
		if (line[0] == '#')
			continue;
		tok = strtok_r(line, " \t\r\n", &save);
		while (tok != NULL && !found) {
			tok = strtok_r(NULL, " \t\r\n", &save);
			if (tok != NULL && tok[0] != '#' &&
			    strcmp(tok, "localhost") != 0 &&
			    strspn(tok, "abcdefghijklmnopqrstuvwxyz0123456789"
					"-.") == strlen(tok)) {
				snprintf(out, len, "%s", tok);
				found = true;
			}
		}
	}
	fclose(fp);
	return found;
}

static void test_hosts_file_is_ignored(void **state)
{
	fx *f = *state;
	char name[256];
	got g;

	/*
	 * /etc/hosts has localhost; nothing may answer it with an address.
	 * (c-ares 1.18 refuses it without asking: RFC 6761 says not to.)
	 */
	resolve(f, "localhost", &g);
	assert_int_not_equal(g.err, DD_OK);
	assert_int_equal(g.n, 0);
	assert_true(dd_collect_is_dns_error(g.msg));
	/* Any other name there goes to the server, which says NXDOMAIN. */
	if (!hosts_name(name, sizeof name)) {
		print_message("no name in /etc/hosts but localhost\n");
		return;
	}
	f->r.udp_q = 0;
	resolve(f, name, &g);
	assert_int_equal(g.err, DD_ERR_NOT_FOUND);
	assert_int_equal(g.n, 0);
	assert_int_equal(f->r.udp_q, 2);
}

static void test_addresses_are_capped(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "many.test", &g);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.n, DD_DNS_MAX_ADDRS);
}

static void test_ip_literals_answer_themselves(void **state)
{
	fx *f = *state;
	got g;

	resolve(f, "192.0.2.99", &g);
	assert_int_equal(g.err, DD_OK);
	assert_int_equal(g.n, 1);
	assert_true(has(&g, AF_INET, "192.0.2.99"));
	resolve(f, "2001:db8::5", &g);
	assert_int_equal(g.err, DD_OK);
	assert_true(has(&g, AF_INET6, "2001:db8::5"));
	assert_int_equal(f->r.udp_q, 0);
}

static void test_bad_names_busy_and_cancel(void **state)
{
	fx *f = *state;
	char longname[300];
	got g1, g2, g3, g4;
	dd_dns *d;
	dd_dns_query *q1 = NULL, *q4 = NULL;
	dd_dns_opts o = {.max_inflight = 2};

	memset(&g1, 0, sizeof g1);
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(dd_dns_resolve(f->d, "", on_got, &g1, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_dns_resolve(f->d, "a b.test", on_got, &g1, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_dns_resolve(f->d, longname, on_got, &g1, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_dns_resolve(f->d, NULL, on_got, &g1, NULL),
			 DD_ERR_INVALID);

	/* A cancelled query never calls back; the cap counts it until c-ares
	 * is done with it. */
	memset(&g2, 0, sizeof g2);
	memset(&g3, 0, sizeof g3);
	memset(&g4, 0, sizeof g4);
	{
		char servers[64];

		snprintf(servers, sizeof servers, "127.0.0.1:%d", f->r.port);
		o.servers = servers;
		o.timeout_ms = 200;
		assert_int_equal(dd_dns_new(&f->loop, &o, &d), DD_OK);
	}
	assert_int_equal(dd_dns_resolve(d, "silent.test", on_got, &g1, &q1),
			 DD_OK);
	assert_int_equal(dd_dns_resolve(d, "both.test", on_got, &g2, NULL),
			 DD_OK);
	assert_int_equal(dd_dns_inflight(d), 2);
	assert_int_equal(dd_dns_resolve(d, "both.test", on_got, &g3, NULL),
			 DD_ERR_BUSY);
	dd_dns_cancel(q1);
	assert_int_equal(dd_dns_inflight(d), 1);
	run_until(f, &g2.called, 1);
	assert_int_equal(g2.err, DD_OK);
	/* An answered-but-deferred query cancelled before its turn. */
	assert_int_equal(dd_dns_resolve(d, "192.0.2.1", on_got, &g4, &q4),
			 DD_OK);
	dd_dns_cancel(q4);
	assert_int_equal(dd_dns_inflight(d), 0);
	/* Let the silent one's tries run out: still no callback. */
	while (f->r.udp_q < 4 + 2)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(dd_dns_resolve(d, "v4.test", on_got, &g3, NULL),
			 DD_OK);
	run_until(f, &g3.called, 1);
	assert_int_equal(g1.called, 0);
	assert_int_equal(g4.called, 0);
	dd_dns_free(d);
}

static void test_free_with_queries_in_flight(void **state)
{
	fx *f = *state;
	got g[4];

	memset(g, 0, sizeof g);
	assert_int_equal(dd_dns_resolve(f->d, "silent.test", on_got, &g[0],
					NULL), DD_OK);
	assert_int_equal(dd_dns_resolve(f->d, "tcpsilent.test", on_got, &g[1],
					NULL), DD_OK);
	/* Until the TCP connection carries its questions. */
	while (f->r.tcp_q < 2)
		uv_run(&f->loop, UV_RUN_ONCE);
	/* Answered, waiting for its turn. */
	assert_int_equal(dd_dns_resolve(f->d, "192.0.2.3", on_got, &g[2],
					NULL), DD_OK);
	/* Just sent. */
	assert_int_equal(dd_dns_resolve(f->d, "both.test", on_got, &g[3],
					NULL), DD_OK);
	assert_int_equal(dd_dns_inflight(f->d), 4);
	dd_dns_free(f->d);
	f->d = NULL;
	/* teardown runs the loop to its end: no callback, nothing left. */
	for (int i = 0; i < 4; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	for (int i = 0; i < 4; i++)
		assert_int_equal(g[i].called, 0);
}

static void test_check_servers(void **state)
{
	static const char *const good[] = {
		DD_DNS_DEFAULT_SERVERS, "1.1.1.1", "1.1.1.1:5353", "[::1]:53",
		"::1", "[2606:4700:4700::1111]", "127.0.0.1:53,[::1]:5353",
	};
	static const char *const bad[] = {
		"", ",", "1.1.1.1,", ",1.1.1.1", "1.1.1", "1.1.1.1:0",
		"1.1.1.1:65536", "1.1.1.1:", "[::1", "[::1]x", "[::1]:",
		"[1.1.1.1]", "one.one.one.one", "1.1.1.1 ", " 1.1.1.1",
		"1,2,3,4,5,6,7,8,9", "1.1.1.1:53x", "[]",
	};
	char why[128];
	dd_dns *d = NULL;
	dd_dns_opts o = {0};
	fx *f = *state;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(dd_dns_check_servers(good[i], why, sizeof why),
				 DD_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(dd_dns_check_servers(bad[i], why, sizeof why),
				 DD_ERR_CONFIG);
		assert_true(why[0] != '\0');
		o.servers = bad[i];
		assert_int_equal(dd_dns_new(&f->loop, &o, &d), DD_ERR_CONFIG);
		assert_null(d);
	}
	assert_int_equal(dd_dns_check_servers(NULL, why, sizeof why),
			 DD_ERR_CONFIG);
	/* The default list opens (nothing is sent until a resolution). */
	assert_int_equal(dd_dns_new(&f->loop, NULL, &d), DD_OK);
	dd_dns_free(d);
}

static void test_allocation_failures(void **state)
{
	fx *f = *state;
	dd_dns_opts o = {.timeout_ms = 200};
	char servers[64];
	unsigned long used;
	dd_err_t rc, rc2;
	dd_dns *d;
	got g;

	snprintf(servers, sizeof servers, "127.0.0.1:%d", f->r.port);
	o.servers = servers;
	for (unsigned long n = 1;; n++) {
		memset(&g, 0, sizeof g);
		d = NULL;
		rc2 = DD_ERR_INTERNAL;
		dd_alloc_fail_at(n);
		rc = dd_dns_new(&f->loop, &o, &d);
		if (rc == DD_OK) {
			rc2 = dd_dns_resolve(d, "both.test", on_got, &g, NULL);
			if (rc2 == DD_OK)
				run_until(f, &g.called, 1);
		}
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_true(rc != DD_OK || rc2 == DD_OK || rc2 == DD_ERR_NOMEM);
		/* A socket it had no memory to watch ends in a timeout. */
		if (rc2 == DD_OK)
			assert_true(g.err == DD_OK || g.err == DD_ERR_TIMEOUT);
		dd_dns_free(d);
		if (used < n)
			break;
	}
}

/* The collector's use of the answers (cp/collect_dns.c). */
static void test_collect_url_target_and_pin(void **state)
{
	char host[DD_DNS_NAME_MAX + 1], pin[64], tiny[4];
	dd_dns_addr a4 = {.family = AF_INET, .text = "192.0.2.1"};
	dd_dns_addr a6 = {.family = AF_INET6, .text = "2001:db8::1"};
	dd_dns_addr bad = {.family = AF_INET, .text = "2001:db8::1"};
	dd_dns_addr fam = {.family = AF_UNIX, .text = "192.0.2.1"};
	unsigned port = 0;

	(void)state;
	assert_int_equal(dd_collect_url_target("https://dd-x-api-1.example.com/"
					       "health", host, sizeof host,
					       &port), DD_OK);
	assert_string_equal(host, "dd-x-api-1.example.com");
	assert_int_equal(port, 443);
	assert_int_equal(dd_collect_url_target("http://a.example:8081/health",
					       host, sizeof host, &port), DD_OK);
	assert_string_equal(host, "a.example");
	assert_int_equal(port, 8081);
	assert_int_equal(dd_collect_url_target("https://[2001:db8::2]:9/health",
					       host, sizeof host, &port), DD_OK);
	assert_string_equal(host, "2001:db8::2");
	assert_int_equal(port, 9);
	assert_int_equal(dd_collect_url_target("not a url", host, sizeof host,
					       &port), DD_ERR_INVALID);
	assert_int_equal(dd_collect_url_target("https://a.example/", tiny,
					       sizeof tiny, &port),
			 DD_ERR_TOO_LARGE);

	assert_int_equal(dd_collect_pin(&a4, 443, pin, sizeof pin), DD_OK);
	assert_string_equal(pin, "192.0.2.1:443");
	assert_int_equal(dd_collect_pin(&a6, 8443, pin, sizeof pin), DD_OK);
	assert_string_equal(pin, "[2001:db8::1]:8443");
	assert_int_equal(dd_collect_pin(&bad, 443, pin, sizeof pin),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collect_pin(&fam, 443, pin, sizeof pin),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collect_pin(&a4, 0, pin, sizeof pin),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collect_pin(&a4, 65536, pin, sizeof pin),
			 DD_ERR_INVALID);
	assert_int_equal(dd_collect_pin(&a6, 443, tiny, sizeof tiny),
			 DD_ERR_TOO_LARGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_and_aaaa, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_nxdomain_and_nodata_are_dns_errors, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_silence_times_out_after_the_tries, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_truncation_goes_to_tcp,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_refused_udp_falls_back_to_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_is_cached, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hosts_file_is_ignored,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_addresses_are_capped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ip_literals_answer_themselves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_busy_and_cancel,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_free_with_queries_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_servers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_allocation_failures,
						setup, teardown),
		cmocka_unit_test(test_collect_url_target_and_pin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
