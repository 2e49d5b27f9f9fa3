#include "net/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>

#include "core/alloc.h"
#include "core/strutil.h"

/* One c-ares channel: UDP first (TCP on truncation), then TCP only. */
enum { CH_UDP, CH_TCP, CH__COUNT };

typedef struct chan {
	dd_dns *d;
	ares_channel ch;
	bool live;
} chan;

/* A socket c-ares asked us to watch. */
typedef struct sock {
	dd_dns *d;
	chan *c;
	ares_socket_t fd;
	bool closing;
	uv_poll_t h;
	struct sock *next;
} sock;

struct dd_dns_query {
	dd_dns *d;
	dd_dns_cb cb;
	void *ud;
	/* c-ares holds it until its callback, even when we gave up. */
	bool cancelled;
	bool starting;  /* inside ares_getaddrinfo: answers are deferred */
	bool deferred;  /* answered, waiting in d->deferred */
	bool tcp;       /* the retry over TCP is running */
	dd_dns_result res;
	char msg[DD_DNS_NAME_MAX + 160]; /* name, prefix, what (< 96) */
	char name[DD_DNS_NAME_MAX + 1];
	struct dd_dns_query *prev, *next; /* d->live: not cancelled */
	struct dd_dns_query *dnext;       /* d->deferred */
};

struct dd_dns {
	uv_loop_t *loop;
	chan chans[CH__COUNT];
	uv_timer_t timer;     /* c-ares's next timeout */
	uv_timer_t defer;     /* answers that came inside dd_dns_resolve */
	sock *socks;
	dd_dns_query *live;
	dd_dns_query *deferred, *deferred_tail;
	unsigned n_live;      /* started, not answered nor cancelled */
	unsigned n_held;      /* allocated (cancelled ones c-ares still runs) */
	unsigned max_inflight;
	unsigned tries;
	bool closing;
	bool lib_init;
	unsigned open_handles;
};

/* ---- the server list ---- */

typedef struct server {
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	unsigned port;
} server;

static dd_err_t why_fail(char *why, size_t why_len, const char *what,
			 const char *entry, size_t n)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s: \"%.*s\"", what,
			 (int)(n > 64 ? 64 : n), entry);
	return DD_ERR_CONFIG;
}

/* One entry of n bytes: "a.b.c.d[:port]", "v6", "[v6][:port]". */
static dd_err_t parse_server(const char *e, size_t n, server *out, char *why,
			     size_t why_len)
{
	char addr[DD_DNS_ADDR_MAX + 1];
	const char *host = e, *port = NULL, *colon;
	size_t host_n = n;
	uint64_t p = 53;

	if (n == 0)
		return why_fail(why, why_len, "empty server", e, n);
	colon = memchr(e, ':', n);
	if (e[0] == '[') {
		const char *rb = memchr(e, ']', n);

		if (rb == NULL)
			return why_fail(why, why_len, "no closing ]", e, n);
		host = e + 1;
		host_n = (size_t)(rb - host);
		if (rb + 1 < e + n) {
			if (rb[1] != ':')
				return why_fail(why, why_len,
						"junk after ]", e, n);
			port = rb + 2;
		}
	} else if (colon != NULL && memchr(colon + 1, ':',
					   n - (size_t)(colon + 1 - e)) == NULL) {
		host_n = (size_t)(colon - e);
		port = colon + 1;
	}
	if (port != NULL &&
	    dd_parse_u64n(port, n - (size_t)(port - e), 1, 65535, &p) != DD_OK)
		return why_fail(why, why_len, "bad port", e, n);
	if (host_n == 0 || host_n >= sizeof addr)
		return why_fail(why, why_len, "bad address", e, n);
	memcpy(addr, host, host_n);
	addr[host_n] = '\0';
	out->port = (unsigned)p;
	if (inet_pton(AF_INET, addr, &out->a.v4) == 1 && e[0] != '[') {
		out->family = AF_INET;
		return DD_OK;
	}
	if (inet_pton(AF_INET6, addr, &out->a.v6) == 1 &&
	    (e[0] == '[' || port == NULL)) {
		out->family = AF_INET6;
		return DD_OK;
	}
	return why_fail(why, why_len, "not an IP address", e, n);
}

static dd_err_t parse_servers(const char *list, server *v, size_t *n,
			      char *why, size_t why_len)
{
	const char *p = list, *end;
	size_t len = list != NULL ? strnlen(list, DD_DNS_SERVERS_MAX + 1) : 0;
	dd_err_t rc;

	*n = 0;
	if (len == 0 || len > DD_DNS_SERVERS_MAX) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "1 to %u bytes",
				 DD_DNS_SERVERS_MAX);
		return DD_ERR_CONFIG;
	}
	for (;;) {
		end = strchr(p, ',');
		if (end == NULL)
			end = list + len;
		if (*n == DD_DNS_MAX_SERVERS) {
			if (why != NULL && why_len > 0)
				snprintf(why, why_len, "more than %u servers",
					 DD_DNS_MAX_SERVERS);
			return DD_ERR_CONFIG;
		}
		rc = parse_server(p, (size_t)(end - p), &v[*n], why, why_len);
		if (rc)
			return rc;
		(*n)++;
		if (*end == '\0')
			return DD_OK;
		p = end + 1;
	}
}

dd_err_t dd_dns_check_servers(const char *list, char *why, size_t why_len)
{
	server v[DD_DNS_MAX_SERVERS];
	size_t n;

	return parse_servers(list, v, &n, why, why_len);
}

static dd_err_t set_servers(ares_channel ch, const server *v, size_t n)
{
	struct ares_addr_port_node nodes[DD_DNS_MAX_SERVERS];

	memset(nodes, 0, sizeof nodes);
	for (size_t i = 0; i < n; i++) {
		nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
		nodes[i].family = v[i].family;
		if (v[i].family == AF_INET)
			nodes[i].addr.addr4 = v[i].a.v4;
		else
			memcpy(&nodes[i].addr.addr6, &v[i].a.v6,
			       sizeof v[i].a.v6);
		nodes[i].udp_port = (int)v[i].port;
		nodes[i].tcp_port = (int)v[i].port;
	}
	return ares_set_servers_ports(ch, nodes) == ARES_SUCCESS
		       ? DD_OK : DD_ERR_UPSTREAM;
}

/* ---- sockets and the timer ---- */

static void on_timer(uv_timer_t *h);

static void rearm(dd_dns *d)
{
	struct timeval tv, *best = NULL, *t;
	uint64_t ms;

	if (d->closing)
		return;
	for (int i = 0; i < CH__COUNT; i++) {
		t = ares_timeout(d->chans[i].ch, best, &tv);
		if (t != NULL) {
			tv = *t;
			best = &tv;
		}
	}
	if (best == NULL) {
		uv_timer_stop(&d->timer);
		return;
	}
	/* Rounded up: waking early would only spin. */
	ms = (uint64_t)best->tv_sec * 1000u +
	     ((uint64_t)best->tv_usec + 999u) / 1000u;
	uv_timer_start(&d->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *h)
{
	dd_dns *d = h->data;

	for (int i = 0; i < CH__COUNT; i++)
		ares_process_fd(d->chans[i].ch, ARES_SOCKET_BAD,
				ARES_SOCKET_BAD);
	rearm(d);
}

static void handle_done(dd_dns *d);

static void on_sock_closed(uv_handle_t *h)
{
	sock *s = h->data;
	dd_dns *d = s->d;
	sock **pp;

	for (pp = &d->socks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	dd_free(s);
	handle_done(d);
}

static void sock_close(sock *s)
{
	if (s->closing)
		return;
	s->closing = true;
	uv_poll_stop(&s->h);
	uv_close((uv_handle_t *)&s->h, on_sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	sock *s = h->data;
	dd_dns *d = s->d;
	ares_socket_t fd = s->fd;

	/* An error: let c-ares read and write, and meet it itself. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	ares_process_fd(s->c->ch, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
			(events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
	rearm(d);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	chan *c = data;
	dd_dns *d = c->d;
	sock *s;
	int events = (readable ? UV_READABLE : 0) |
		     (writable ? UV_WRITABLE : 0);

	for (s = d->socks; s != NULL; s = s->next) {
		if (s->fd == fd && !s->closing)
			break;
	}
	if (events == 0) {
		if (s != NULL)
			sock_close(s);
		return;
	}
	if (s == NULL) {
		if (d->closing)
			return;
		s = dd_calloc(1, sizeof *s);
		/* Unwatched, the query ends by its timeout: not a hang. */
		if (s == NULL)
			return;
		if (uv_poll_init_socket(d->loop, &s->h, fd) != 0) {
			dd_free(s);
			return;
		}
		s->d = d;
		s->c = c;
		s->fd = fd;
		s->h.data = s;
		s->next = d->socks;
		d->socks = s;
		d->open_handles++;
	}
	(void)uv_poll_start(&s->h, events, on_poll);
}

/* ---- answers ---- */

static void set_error(dd_dns_query *q, dd_err_t err, const char *what)
{
	q->res.err = err;
	q->res.n = 0;
	snprintf(q->msg, sizeof q->msg, "could not resolve %s: dns error: %s",
		 q->name, what);
	q->res.message = q->msg;
}

/* c-ares parsed the reply; its result is still checked as outside data. */
static void take_addrs(dd_dns_query *q, const struct ares_addrinfo *ai)
{
	const struct ares_addrinfo_node *nd;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	dd_dns_addr *a;
	const void *src;

	for (nd = ai != NULL ? ai->nodes : NULL;
	     nd != NULL && q->res.n < DD_DNS_MAX_ADDRS; nd = nd->ai_next) {
		a = &q->res.addrs[q->res.n];
		if (nd->ai_addr == NULL)
			continue;
		if (nd->ai_family == AF_INET &&
		    nd->ai_addrlen >= (ares_socklen_t)sizeof sin) {
			memcpy(&sin, nd->ai_addr, sizeof sin);
			if (sin.sin_family != AF_INET)
				continue;
			src = &sin.sin_addr;
		} else if (nd->ai_family == AF_INET6 &&
			   nd->ai_addrlen >= (ares_socklen_t)sizeof sin6) {
			memcpy(&sin6, nd->ai_addr, sizeof sin6);
			if (sin6.sin6_family != AF_INET6)
				continue;
			src = &sin6.sin6_addr;
		} else {
			continue;
		}
		if (inet_ntop(nd->ai_family, src, a->text, sizeof a->text) ==
		    NULL)
			continue;
		a->family = nd->ai_family;
		q->res.n++;
	}
}

static void fill(dd_dns_query *q, int status, const struct ares_addrinfo *ai)
{
	char what[96];

	switch (status) {
	case ARES_SUCCESS:
		take_addrs(q, ai);
		if (q->res.n == 0) {
			set_error(q, DD_ERR_NOT_FOUND,
				  "no record found (no usable A or AAAA)");
			return;
		}
		q->res.err = DD_OK;
		q->res.message = "";
		return;
	case ARES_ENOTFOUND:
		set_error(q, DD_ERR_NOT_FOUND, "no such name (NXDOMAIN)");
		return;
	case ARES_ENODATA:
		set_error(q, DD_ERR_NOT_FOUND, "no record found (no A or AAAA)");
		return;
	case ARES_ETIMEOUT:
		snprintf(what, sizeof what, "no answer after %u tries",
			 q->d->tries);
		set_error(q, DD_ERR_TIMEOUT, what);
		return;
	case ARES_ENOMEM:
		set_error(q, DD_ERR_NOMEM, "out of memory");
		return;
	case ARES_ECONNREFUSED:
		set_error(q, DD_ERR_UPSTREAM,
			  q->tcp ? "the servers refused UDP and TCP"
				 : "the servers refused");
		return;
	default:
		snprintf(what, sizeof what, "%s", ares_strerror(status));
		set_error(q, DD_ERR_UPSTREAM, what);
		return;
	}
}

static void query_free(dd_dns_query *q)
{
	q->d->n_held--;
	dd_free(q);
}

static void unlink_live(dd_dns_query *q)
{
	dd_dns *d = q->d;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->live = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	d->n_live--;
}

static void deliver(dd_dns_query *q)
{
	unlink_live(q);
	q->cb(&q->res, q->ud);
	query_free(q);
}

static void on_defer(uv_timer_t *h)
{
	dd_dns *d = h->data;
	size_t n = 0;
	dd_dns_query *q;

	/*
	 * Only the answers waiting now: a callback that resolves an IP
	 * literal again is answered on a later turn, not in this loop.
	 */
	for (q = d->deferred; q != NULL; q = q->dnext)
		n++;
	while (n-- > 0 && d->deferred != NULL) {
		q = d->deferred;
		d->deferred = q->dnext;
		if (d->deferred == NULL)
			d->deferred_tail = NULL;
		q->dnext = NULL;
		q->deferred = false;
		deliver(q);
	}
	if (d->deferred != NULL)
		uv_timer_start(&d->defer, on_defer, 0, 0);
}

/* An answer that came inside dd_dns_resolve: delivered from the loop. */
static void defer(dd_dns_query *q)
{
	dd_dns *d = q->d;

	q->deferred = true;
	if (d->deferred_tail != NULL)
		d->deferred_tail->dnext = q;
	else
		d->deferred = q;
	d->deferred_tail = q;
	uv_timer_start(&d->defer, on_defer, 0, 0);
}

/*
 * An IP literal answers itself. Not left to c-ares: 1.18 also sends it
 * to the servers as a name.
 */
static bool literal(dd_dns_query *q)
{
	dd_dns_addr *a = &q->res.addrs[0];
	struct in6_addr v6;
	struct in_addr v4;

	if (inet_pton(AF_INET, q->name, &v4) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, q->name, &v6) == 1)
		a->family = AF_INET6;
	else
		return false;
	if (inet_ntop(a->family, a->family == AF_INET ? (const void *)&v4
						      : (const void *)&v6,
		      a->text, sizeof a->text) == NULL)
		return false;
	q->res.err = DD_OK;
	q->res.message = "";
	q->res.n = 1;
	return true;
}

static void start(dd_dns_query *q, int ch);

static void on_addrinfo(void *arg, int status, int timeouts,
			struct ares_addrinfo *ai)
{
	dd_dns_query *q = arg;
	dd_dns *d = q->d;

	(void)timeouts;
	if (q->cancelled || d->closing) {
		ares_freeaddrinfo(ai);
		if (!q->cancelled)
			unlink_live(q);
		query_free(q);
		return;
	}
	/* Refused over UDP (ICMP unreachable): an I/O error, try TCP once. */
	if (status == ARES_ECONNREFUSED && !q->tcp) {
		ares_freeaddrinfo(ai);
		q->tcp = true;
		start(q, CH_TCP);
		return;
	}
	fill(q, status, ai);
	ares_freeaddrinfo(ai);
	if (q->starting)
		defer(q);
	else
		deliver(q);
}

static void start(dd_dns_query *q, int ch)
{
	struct ares_addrinfo_hints hints;
	bool outer = q->starting;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	q->starting = true;
	ares_getaddrinfo(q->d->chans[ch].ch, q->name, NULL, &hints,
			 on_addrinfo, q);
	q->starting = outer;
}

/* ---- public ---- */

static bool name_ok(const char *name, size_t *len)
{
	size_t n = name != NULL ? strnlen(name, DD_DNS_NAME_MAX + 1) : 0;

	if (n == 0 || n > DD_DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		      ch == '_' || ch == ':'))
			return false;
	}
	*len = n;
	return true;
}

dd_err_t dd_dns_resolve(dd_dns *d, const char *name, dd_dns_cb cb, void *ud,
			dd_dns_query **out)
{
	dd_dns_query *q;
	size_t n = 0;

	if (out != NULL)
		*out = NULL;
	if (cb == NULL || !name_ok(name, &n))
		return DD_ERR_INVALID;
	if (d->closing)
		return DD_ERR_CLOSED;
	if (d->n_held >= d->max_inflight)
		return DD_ERR_BUSY;
	q = dd_calloc(1, sizeof *q);
	if (q == NULL)
		return DD_ERR_NOMEM;
	q->d = d;
	q->cb = cb;
	q->ud = ud;
	memcpy(q->name, name, n);
	q->next = d->live;
	if (d->live != NULL)
		d->live->prev = q;
	d->live = q;
	d->n_live++;
	d->n_held++;
	if (out != NULL)
		*out = q;
	if (literal(q)) {
		defer(q);
		return DD_OK;
	}
	start(q, CH_UDP);
	rearm(d);
	return DD_OK;
}

void dd_dns_cancel(dd_dns_query *q)
{
	dd_dns_query **pp, *prev = NULL;
	dd_dns *d;

	if (q == NULL || q->cancelled)
		return;
	d = q->d;
	unlink_live(q);
	if (!q->deferred) {
		q->cancelled = true; /* freed by on_addrinfo */
		return;
	}
	/* Answered already: c-ares is done with it. */
	pp = &d->deferred;
	while (*pp != q) {
		prev = *pp;
		pp = &prev->dnext;
	}
	*pp = q->dnext;
	if (d->deferred_tail == q)
		d->deferred_tail = prev;
	query_free(q);
}

unsigned dd_dns_inflight(const dd_dns *d)
{
	return d->n_live;
}

static void maybe_free(dd_dns *d)
{
	if (d->open_handles > 0)
		return;
	if (d->lib_init)
		ares_library_cleanup();
	dd_free(d);
}

static void handle_done(dd_dns *d)
{
	d->open_handles--;
	if (d->closing)
		maybe_free(d);
}

static void on_handle_closed(uv_handle_t *h)
{
	handle_done(h->data);
}

static dd_err_t chan_init(dd_dns *d, int i, const dd_dns_opts *o,
			  const server *sv, size_t n_sv)
{
	struct ares_options ao;
	char lookups[] = "b"; /* DNS only: never the hosts file */
	char resolvconf[] = "/dev/null"; /* nothing from the system's */
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB |
		   ARES_OPT_RESOLVCONF;

	memset(&ao, 0, sizeof ao);
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES |
		   (i == CH_TCP ? ARES_FLAG_USEVC : 0);
	ao.timeout = (int)o->timeout_ms;
	ao.tries = (int)o->tries;
	ao.lookups = lookups;
	ao.sock_state_cb = on_sock_state;
	ao.sock_state_cb_data = &d->chans[i];
	ao.resolvconf_path = resolvconf;
#ifdef ARES_OPT_QUERY_CACHE
	/* A c-ares with a cache: off (spec 3.4, no cache). */
	ao.qcache_max_ttl = 0;
	mask |= ARES_OPT_QUERY_CACHE;
#endif
	d->chans[i].d = d;
	if (ares_init_options(&d->chans[i].ch, &ao, mask) != ARES_SUCCESS)
		return DD_ERR_UPSTREAM;
	d->chans[i].live = true;
	return set_servers(d->chans[i].ch, sv, n_sv);
}

dd_err_t dd_dns_new(uv_loop_t *loop, const dd_dns_opts *opts, dd_dns **out)
{
	dd_dns_opts o = {0};
	server sv[DD_DNS_MAX_SERVERS];
	size_t n_sv = 0;
	dd_dns *d = NULL;
	dd_err_t rc;

	*out = NULL;
	if (opts != NULL)
		o = *opts;
	if (o.servers == NULL)
		o.servers = DD_DNS_DEFAULT_SERVERS;
	if (o.timeout_ms == 0)
		o.timeout_ms = DD_DNS_DEFAULT_TIMEOUT_MS;
	if (o.tries == 0)
		o.tries = DD_DNS_DEFAULT_TRIES;
	if (o.max_inflight == 0)
		o.max_inflight = DD_DNS_DEFAULT_MAX_INFLIGHT;
	rc = parse_servers(o.servers, sv, &n_sv, NULL, 0);
	if (rc)
		return rc;
	if (o.timeout_ms > 60000u || o.tries > 10u)
		return DD_ERR_CONFIG;
	d = dd_calloc(1, sizeof *d);
	if (d == NULL)
		return DD_ERR_NOMEM;
	d->loop = loop;
	d->max_inflight = o.max_inflight;
	d->tries = o.tries;
	rc = DD_ERR_UPSTREAM;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		goto out;
	d->lib_init = true;
	for (int i = 0; i < CH__COUNT; i++) {
		rc = chan_init(d, i, &o, sv, n_sv);
		if (rc)
			goto out;
	}
	/* Only fill in the structs; they cannot fail. */
	(void)uv_timer_init(loop, &d->timer);
	(void)uv_timer_init(loop, &d->defer);
	d->timer.data = d;
	d->defer.data = d;
	d->open_handles = 2;
	*out = d;
	d = NULL; /* transferred */
	rc = DD_OK;
out:
	if (d != NULL) {
		for (int i = 0; i < CH__COUNT; i++) {
			if (d->chans[i].live)
				ares_destroy(d->chans[i].ch);
		}
		if (d->lib_init)
			ares_library_cleanup();
		dd_free(d);
	}
	return rc;
}

void dd_dns_free(dd_dns *d)
{
	dd_dns_query *q, *next;
	sock *s;

	if (d == NULL)
		return;
	d->closing = true;
	/* Answered ones: c-ares is done with them. */
	for (q = d->deferred; q != NULL; q = next) {
		next = q->dnext;
		unlink_live(q);
		query_free(q);
	}
	d->deferred = d->deferred_tail = NULL;
	/* The rest are freed by their EDESTRUCTION callbacks, silently. */
	for (q = d->live; q != NULL; q = q->next)
		q->cancelled = true;
	d->live = NULL;
	d->n_live = 0;
	for (int i = 0; i < CH__COUNT; i++) {
		ares_destroy(d->chans[i].ch);
		d->chans[i].live = false;
	}
	/* c-ares reports its closed sockets; any it did not are closed here. */
	for (s = d->socks; s != NULL; s = s->next)
		sock_close(s);
	uv_close((uv_handle_t *)&d->timer, on_handle_closed);
	uv_close((uv_handle_t *)&d->defer, on_handle_closed);
}
