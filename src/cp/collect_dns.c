#include "cp/collect_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "core/strutil.h"
#include "net/httpc.h"

dd_err_t dd_collect_url_target(const char *url, char *host, size_t host_len,
			       unsigned *port)
{
	CURLU *u = curl_url();
	char *h = NULL, *p = NULL;
	const char *name;
	size_t n;
	uint64_t v = 0;
	dd_err_t rc = DD_ERR_INVALID;

	if (u == NULL)
		return DD_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK)
		goto out;
	if (dd_parse_u64(p, 1, 65535, &v) != DD_OK)
		goto out;
	name = h;
	n = strlen(h);
	/* libcurl keeps an IPv6 literal's brackets; a resolver takes none. */
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		name = h + 1;
		n -= 2;
	}
	if (n == 0)
		goto out;
	if (n >= host_len) {
		rc = DD_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(host, name, n);
	host[n] = '\0';
	*port = (unsigned)v;
	rc = DD_OK;
out:
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

dd_err_t dd_collect_pin(const dd_dns_addr *a, unsigned port, char *out,
			size_t out_len)
{
	unsigned char bin[sizeof(struct in6_addr)];
	int n;

	if (port == 0 || port > 65535 ||
	    (a->family != AF_INET && a->family != AF_INET6) ||
	    memchr(a->text, '\0', sizeof a->text) == NULL ||
	    inet_pton(a->family, a->text, bin) != 1)
		return DD_ERR_INVALID;
	n = snprintf(out, out_len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		     a->text, port);
	if (n < 0 || (size_t)n >= out_len)
		return DD_ERR_TOO_LARGE;
	return dd_httpc_check_connect_to(out);
}

static void on_answer(const dd_dns_result *res, void *ud)
{
	dd_collect_resolving *r = ud;
	dd_collect_pinned p = {.err = res->err, .why = res->message};
	char pin[DD_HTTPC_CONNECT_TO_MAX + 1], why[DD_DNS_NAME_MAX + 200];

	r->q = NULL;
	if (res->err == DD_OK) {
		p.err = dd_collect_pin(&res->addrs[0], r->port, pin, sizeof pin);
		p.pin = pin;
		p.why = p.err ? "the address found cannot be connected to" : "";
	} else if (res->err != DD_ERR_NOMEM) {
		snprintf(why, sizeof why, "GET /health: %s", res->message);
		p.dns = true;
		p.why = why;
	}
	r->cb(r->ud, &p);
}

dd_err_t dd_collect_resolve(dd_dns *dns, const char *url,
			    unsigned port_override, dd_collect_resolving *r,
			    dd_collect_pinned_cb cb, void *ud)
{
	char host[DD_DNS_NAME_MAX + 1];
	unsigned port = 0;
	dd_err_t rc;

	rc = dd_collect_url_target(url, host, sizeof host, &port);
	if (rc)
		return rc == DD_ERR_NOMEM ? rc : DD_ERR_INVALID;
	r->port = port_override ? port_override : port;
	r->cb = cb;
	r->ud = ud;
	return dd_dns_resolve(dns, host, on_answer, r, &r->q);
}

void dd_collect_resolve_cancel(dd_collect_resolving *r)
{
	dd_dns_cancel(r->q);
	r->q = NULL;
}
