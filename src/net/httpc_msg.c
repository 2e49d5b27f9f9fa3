/*
 * httpc_msg.c: the socket-free half of httpc: checks on what callers ask
 * us to send, and the store for response headers (hostile input). Kept
 * apart so it can be unit tested and fuzzed without a loop.
 */
#include "net/httpc.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/strutil.h"

#define MAX_URL_LEN 8192u
#define MAX_HEADER_LEN 8192u
#define MAX_METHOD_LEN 32u

static int is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

dd_err_t dd_httpc_check_method(const char *m)
{
	size_t i = 0;

	if (m == NULL)
		return DD_ERR_INVALID;
	while (i <= MAX_METHOD_LEN && is_tchar((unsigned char)m[i]))
		i++;
	return i > 0 && i <= MAX_METHOD_LEN && m[i] == '\0' ? DD_OK
							   : DD_ERR_INVALID;
}

dd_err_t dd_httpc_check_header(const char *h)
{
	size_t i = 0;

	if (h == NULL)
		return DD_ERR_INVALID;
	while (i < MAX_HEADER_LEN && is_tchar((unsigned char)h[i]))
		i++;
	if (i == 0 || h[i] != ':')
		return DD_ERR_INVALID;
	/* A CR or LF would let a value smuggle in headers of its own. */
	for (; h[i] != '\0'; i++) {
		if (h[i] == '\r' || h[i] == '\n' || i >= MAX_HEADER_LEN)
			return DD_ERR_INVALID;
	}
	return DD_OK;
}

dd_err_t dd_httpc_check_url(const char *url)
{
	CURLU *u = NULL;
	char *scheme = NULL;
	CURLUcode uc;
	dd_err_t rc = DD_ERR_INVALID;

	if (url == NULL)
		return DD_ERR_INVALID;
	for (size_t i = 0; url[i] != '\0'; i++) {
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f ||
		    i >= MAX_URL_LEN)
			return DD_ERR_INVALID;
	}
	u = curl_url();
	if (u == NULL)
		return DD_ERR_NOMEM;
	/* No flags: no scheme guessing, no non-curl schemes. */
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_OUT_OF_MEMORY)
		rc = DD_ERR_NOMEM;
	if (uc)
		goto out;
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0)
		rc = DD_OK;
out:
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static bool connect_host_ok(const char *h, size_t n)
{
	bool v6 = n >= 2 && h[0] == '[' && h[n - 1] == ']';

	if (v6) {
		h++;
		n -= 2;
	}
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || ch == '.' ||
			  (v6 ? ch == ':' : ch == '-');

		if (!ok)
			return false;
	}
	return true;
}

dd_err_t dd_httpc_check_connect_to(const char *hp)
{
	const char *colon;
	size_t n, plen;
	unsigned long port = 0;

	if (hp == NULL)
		return DD_ERR_INVALID;
	n = strnlen(hp, DD_HTTPC_CONNECT_TO_MAX + 1);
	colon = n <= DD_HTTPC_CONNECT_TO_MAX ? strrchr(hp, ':') : NULL;
	if (colon == NULL ||
	    !connect_host_ok(hp, (size_t)(colon - hp)))
		return DD_ERR_INVALID;
	plen = n - (size_t)(colon - hp) - 1;
	if (plen == 0 || plen > 5 || colon[1] == '0')
		return DD_ERR_INVALID;
	for (size_t i = 1; i <= plen; i++) {
		if (colon[i] < '0' || colon[i] > '9')
			return DD_ERR_INVALID;
		port = port * 10 + (unsigned long)(colon[i] - '0');
	}
	return port <= 65535 ? DD_OK : DD_ERR_INVALID;
}

dd_err_t dd_httpc_check_ca_file(const char *path)
{
	struct stat st;
	int fd, ok;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DD_ERR_CONFIG;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	return ok ? DD_OK : DD_ERR_CONFIG;
}

dd_err_t dd_httpc_hdr_add(dd_buf *store, const char *line, size_t n)
{
	const char *colon, *val;
	size_t nlen, vlen;
	dd_err_t rc;

	/* A status line starts a new response: interim 1xx headers go. */
	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		dd_buf_reset(store);
		return DD_OK;
	}
	colon = memchr(line, ':', n);
	if (colon == NULL || colon == line || line[0] == ' ' ||
	    line[0] == '\t' || memchr(line, '\0', n) != NULL)
		return DD_OK;
	nlen = (size_t)(colon - line);
	val = colon + 1;
	vlen = n - nlen - 1;
	dd_str_trim(&val, &vlen);
	/* Reserve once so a pair is stored whole or not at all. */
	rc = dd_buf_reserve(store, nlen + vlen + 2);
	if (rc)
		return rc;
	(void)dd_buf_append(store, line, nlen);
	(void)dd_buf_append_byte(store, 0);
	(void)dd_buf_append(store, val, vlen);
	(void)dd_buf_append_byte(store, 0);
	return DD_OK;
}

const char *dd_httpc_hdr_get(const dd_buf *store, const char *name)
{
	const char *p = dd_buf_str(store);
	const char *end = p + store->len;
	const char *v;
	size_t nlen;

	while (p < end) {
		nlen = strlen(p);
		v = p + nlen + 1;
		if (v >= end)
			break;
		if (dd_str_ieq(p, nlen, name))
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

const char *dd_httpc_result_header(const dd_httpc_result *res,
				   const char *name)
{
	return dd_httpc_hdr_get(&res->headers, name);
}
