/*
 * dns.h: a dedicated asynchronous resolver on the libuv loop, for the
 * collector's tunnel-agent scrapes (spec: integrations.md 3.4). It asks
 * the configured servers directly, so the host's own resolver (a libvirt
 * dnsmasq that negative-caches fresh hostnames) is never in the way.
 *
 * c-ares does the DNS work (queries, replies, retries, TCP); its sockets
 * are driven by the loop (one uv_poll_t per socket, one uv_timer_t for
 * its timeouts). Fixed policy, not options:
 *   - A and AAAA are both asked (ares_getaddrinfo, AF_UNSPEC);
 *   - only the servers given are used: the hosts file and the system's
 *     resolv.conf (servers, search domains, sortlist) are ignored;
 *   - nothing is cached: every resolution asks the servers (c-ares 1.18
 *     has no cache; a c-ares with one gets it switched off);
 *   - a UDP reply with the TC bit is retried over TCP (c-ares does that);
 *     and when every server refused the UDP query (ICMP unreachable: an
 *     I/O error, not an answer) the whole resolution is retried once over
 *     TCP ("TCP fallback on error"). Timeouts and DNS answers (NXDOMAIN,
 *     SERVFAIL) are not retried over TCP: they are answers or silence.
 * Each query gets timeout_ms per try and tries tries over the server list
 * (c-ares doubles the timeout on each pass after the first).
 *
 * Failures carry a message starting "could not resolve <name>: dns
 * error: ", which dd_collect_is_dns_error() recognises.
 *
 * Everything runs on the loop thread.
 */
#ifndef DD_NET_DNS_H
#define DD_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"

/* Cloudflare's public resolvers (spec 3.4). */
#define DD_DNS_DEFAULT_SERVERS \
	"1.1.1.1,1.0.0.1,[2606:4700:4700::1111],[2606:4700:4700::1001]"
#define DD_DNS_DEFAULT_TIMEOUT_MS 3000u
#define DD_DNS_DEFAULT_TRIES 2u
#define DD_DNS_DEFAULT_MAX_INFLIGHT 256u
#define DD_DNS_MAX_SERVERS 8u
#define DD_DNS_SERVERS_MAX 400u /* bytes of a server list */
#define DD_DNS_NAME_MAX 253u
#define DD_DNS_MAX_ADDRS 16u    /* addresses kept per resolution */
#define DD_DNS_ADDR_MAX 46u     /* INET6_ADDRSTRLEN */

typedef struct dd_dns dd_dns;
typedef struct dd_dns_query dd_dns_query;

/* Zero or NULL selects the default. Strings are copied. */
typedef struct dd_dns_opts {
	/*
	 * Comma-separated servers, each an IPv4 address with an optional
	 * ":port", or an IPv6 address either bare or "[addr]" with an
	 * optional ":port" (dd_dns_check_servers). Default: Cloudflare's.
	 */
	const char *servers;
	uint64_t timeout_ms;   /* per try */
	unsigned tries;
	unsigned max_inflight; /* more resolutions at once: BUSY */
} dd_dns_opts;

typedef struct dd_dns_addr {
	int family;                 /* AF_INET or AF_INET6 */
	char text[DD_DNS_ADDR_MAX]; /* numeric, no brackets */
} dd_dns_addr;

typedef struct dd_dns_result {
	/*
	 * DD_OK with n >= 1; NOT_FOUND (NXDOMAIN, or no A nor AAAA);
	 * TIMEOUT (no answer after every try); UPSTREAM (the servers
	 * failed, refused or answered garbage); NOMEM.
	 */
	dd_err_t err;
	const char *message;        /* never NULL; "" on success */
	size_t n;
	dd_dns_addr addrs[DD_DNS_MAX_ADDRS]; /* c-ares's order (RFC 6724) */
} dd_dns_result;

/*
 * Called exactly once per started resolution, from the loop (never
 * inside dd_dns_resolve), unless it was cancelled or the resolver freed.
 * res is valid only during the call. The callback may start and cancel
 * other resolutions, but must not free the resolver.
 */
typedef void (*dd_dns_cb)(const dd_dns_result *res, void *ud);

/*
 * Creates a resolver on loop. opts may be NULL. CONFIG for a malformed
 * server list (see dd_dns_check_servers) or tries/timeout out of range;
 * NOMEM; UPSTREAM when c-ares cannot be set up. Caller releases it with
 * dd_dns_free().
 */
dd_err_t dd_dns_new(uv_loop_t *loop, const dd_dns_opts *opts, dd_dns **out);

/*
 * Starts resolving name (a DNS name of at most DD_DNS_NAME_MAX bytes;
 * an IP literal is answered as itself). On success *out (if out is not
 * NULL) is a handle for dd_dns_cancel(), valid until the callback
 * starts. On error the callback is never called: INVALID for a bad
 * name, BUSY at max_inflight, NOMEM.
 */
dd_err_t dd_dns_resolve(dd_dns *d, const char *name, dd_dns_cb cb, void *ud,
			dd_dns_query **out);

/*
 * Abandons a resolution that has not completed: its callback is never
 * called. NULL is a no-op. Never call it from the query's own callback.
 */
void dd_dns_cancel(dd_dns_query *q);

/* Resolutions started and not yet completed or cancelled. */
unsigned dd_dns_inflight(const dd_dns *d);

/*
 * Cancels every resolution (no callback runs once this is called),
 * closes the sockets and frees the resolver once its handles have closed
 * (from the loop). NULL is a no-op. Never call it from a callback.
 */
void dd_dns_free(dd_dns *d);

/*
 * Validates a server list as dd_dns_opts.servers takes it: 1 to
 * DD_DNS_MAX_SERVERS entries, no empty entry, at most DD_DNS_SERVERS_MAX
 * bytes, ports 1..65535. CONFIG otherwise, with the reason in why.
 */
dd_err_t dd_dns_check_servers(const char *list, char *why, size_t why_len);

#endif
