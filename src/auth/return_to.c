#include "auth/return_to.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "core/strutil.h"

int dd_return_to_local_path(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	/* "//host" and "/\host" are protocol-relative in browsers. */
	if (n == 0 || n > DD_RETURN_TO_MAX || path[0] != '/' ||
	    (n > 1 && (path[1] == '/' || path[1] == '\\')))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x21 || c == 0x7f || c == '\\')
			return 0;
	}
	return 1;
}

static int is_loopback(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
	       strcmp(host, "localhost") == 0;
}

/* host is domain, or ends in "." + domain (ASCII case-insensitive). */
static int under_domain(const char *host, const char *domain)
{
	size_t h = strlen(host), d = strlen(domain);

	if (d == 0 || h < d)
		return 0;
	if (!dd_str_ieq(host + h - d, d, domain))
		return 0;
	return h == d || host[h - d - 1] == '.';
}

static int allowed(const dd_return_to_policy *p, const char *scheme,
		   const char *host, const char *origin)
{
	if (p->own_origin != NULL && strcmp(origin, p->own_origin) == 0)
		return 1;
	if (strcmp(scheme, "http") == 0)
		return p->dev && is_loopback(host);
	if (strcmp(scheme, "https") != 0)
		return 0;
	if (p->dev && is_loopback(host))
		return 1;
	return p->domain != NULL && under_domain(host, p->domain);
}

static dd_err_t fail(char *why, size_t why_len, const char *text)
{
	snprintf(why, why_len, "return_to %s", text);
	return DD_ERR_INVALID;
}

dd_err_t dd_return_to_check(const dd_return_to_policy *p, const char *url,
			    char *origin, size_t origin_cap, char *path,
			    size_t path_cap, char *why, size_t why_len)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char *upath = NULL, *query = NULL;
	CURLUcode uc;
	dd_err_t rc;
	int n;

	if (url == NULL || url[0] == '\0')
		return fail(why, why_len, "is missing");
	if (strlen(url) > DD_RETURN_TO_MAX)
		return fail(why, why_len, "is too long");
	for (size_t i = 0; url[i]; i++) {
		if ((unsigned char)url[i] < 0x21 || url[i] == 0x7f)
			return fail(why, why_len, "holds spaces or controls");
	}
	u = curl_url();
	if (u == NULL)
		return DD_ERR_NOMEM;
	rc = fail(why, why_len, "is not an absolute http(s) URL");
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_PATH, &upath, 0);
	if (uc)
		goto out;
	/* Absent parts are not errors. */
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (user != NULL) {
		rc = fail(why, why_len, "must not carry user info");
		goto out;
	}
	n = snprintf(origin, origin_cap, "%s://%s%s%s", scheme, host,
		     port ? ":" : "", port ? port : "");
	if (n < 0 || (size_t)n >= origin_cap) {
		rc = fail(why, why_len, "is too long");
		goto out;
	}
	if (!allowed(p, scheme, host, origin)) {
		rc = fail(why, why_len, "is not a host of this fleet");
		goto out;
	}
	n = snprintf(path, path_cap, "%s%s%s", upath[0] ? upath : "/",
		     query ? "?" : "", query ? query : "");
	if (n < 0 || (size_t)n >= path_cap || !dd_return_to_local_path(path)) {
		rc = fail(why, why_len, "has an unusable path");
		goto out;
	}
	why[0] = '\0';
	rc = DD_OK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(upath);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}
