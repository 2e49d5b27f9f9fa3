/*
 * collect_dns.h: the pieces of a tunnel agent's scrape through the
 * collector's own resolver (spec: integrations.md 3.4, net/dns.h): the
 * name and port to resolve, as libcurl will read the URL, and the
 * connect_to that pins the GET to the address found (the URL, the Host
 * header, SNI and the certificate's name check stay the URL's).
 */
#ifndef DD_CP_COLLECT_DNS_H
#define DD_CP_COLLECT_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "net/dns.h"

/* What a resolution came to. Valid only during the callback. */
typedef struct dd_collect_pinned {
	dd_err_t err;      /* DD_OK: GET the URL with connect_to = pin */
	const char *pin;   /* "a.b.c.d:port" or "[v6]:port" on DD_OK */
	/*
	 * The name did not resolve (err is NOT_FOUND, TIMEOUT or UPSTREAM):
	 * the agent's failure, why "GET /health: could not resolve <name>:
	 * dns error: ...". Otherwise a failure of ours (NOMEM) or an address
	 * that cannot be pinned (INVALID).
	 */
	bool dns;
	const char *why;   /* one line; "" on DD_OK */
} dd_collect_pinned;

typedef void (*dd_collect_pinned_cb)(void *ud, const dd_collect_pinned *p);

/* One scrape's resolution, held by the scrape: no allocation. */
typedef struct dd_collect_resolving {
	dd_dns_query *q;   /* non-NULL while resolving */
	unsigned port;
	dd_collect_pinned_cb cb;
	void *ud;
} dd_collect_resolving;

/*
 * Resolves url's host through dns; cb(ud, ...) runs once, from the loop,
 * unless cancelled. A nonzero port_override replaces the URL's port
 * (dev: a fake edge). r must stay put until the callback or the cancel.
 * On error the callback never runs: INVALID for a URL without a usable
 * host, BUSY, NOMEM.
 */
dd_err_t dd_collect_resolve(dd_dns *dns, const char *url,
			    unsigned port_override, dd_collect_resolving *r,
			    dd_collect_pinned_cb cb, void *ud);

/* Abandons a resolution in progress (no callback); idle: a no-op. */
void dd_collect_resolve_cancel(dd_collect_resolving *r);

/*
 * The host of url (IPv6 brackets removed) in host, and its port (the
 * scheme's default when the URL has none) in *port. libcurl's parser:
 * the same reading the request itself gets. INVALID for a URL it
 * refuses or without a host; TOO_LARGE when host_len is too small;
 * NOMEM.
 */
dd_err_t dd_collect_url_target(const char *url, char *host, size_t host_len,
			       unsigned *port);

/*
 * "a.b.c.d:port" or "[v6]:port" for dd_httpc_request.connect_to, checked
 * with dd_httpc_check_connect_to. INVALID for a bad family, address or
 * port; TOO_LARGE when out_len is too small.
 */
dd_err_t dd_collect_pin(const dd_dns_addr *a, unsigned port, char *out,
			size_t out_len);

#endif
