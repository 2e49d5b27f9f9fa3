/*
 * github_check.c: the GitHub client's checks that need no request in
 * flight: the shapes of what we put in URLs, headers and bodies, and
 * the first reading of every reply (transport failure, status, JSON
 * kind). Private to the client (github_int.h).
 */
#include "auth/github_int.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"

static int gh_char_ok(unsigned char ch, enum gh_charset cs)
{
	int alnum = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z');

	switch (cs) {
	case GH_CS_LOGIN:
		return alnum || ch == '-';
	case GH_CS_ID:
	case GH_CS_REPO:
		return alnum || ch == '-' || ch == '.' || ch == '_';
	case GH_CS_TOKEN:
		/* RFC 6750 b64token: safe in a header and in our JSON. */
		return alnum || ch == '-' || ch == '.' || ch == '_' ||
		       ch == '~' || ch == '+' || ch == '/' || ch == '=';
	}
	return 0;
}

int gh_text_ok(const char *s, size_t max, enum gh_charset cs)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!gh_char_ok((unsigned char)s[i], cs))
			return 0;
	return 1;
}

int gh_login_ok(const char *s)
{
	return gh_text_ok(s, 39, GH_CS_LOGIN);
}

/* The owner goes into API paths: its shape keeps them well-formed. */
int gh_owner_ok(const dd_principal *o)
{
	const char *slash;

	if (o == NULL || o->id == 0 ||
	    strnlen(o->name, sizeof o->name) >= sizeof o->name)
		return 0;
	if (o->kind == DD_PRINCIPAL_USER || o->kind == DD_PRINCIPAL_ORG)
		return gh_login_ok(o->name);
	if (o->kind != DD_PRINCIPAL_REPO)
		return 0;
	slash = strchr(o->name, '/');
	if (slash == NULL || (size_t)(slash - o->name) > 39)
		return 0;
	for (const char *p = o->name; p < slash; p++)
		if (!gh_char_ok((unsigned char)*p, GH_CS_LOGIN))
			return 0;
	return slash > o->name && gh_text_ok(slash + 1, 100, GH_CS_REPO) &&
	       strcmp(slash + 1, ".") != 0 && strcmp(slash + 1, "..") != 0;
}

int gh_app_ok(const dd_github_app *app, int need_secret)
{
	return app != NULL && gh_text_ok(app->client_id, 100, GH_CS_ID) &&
	       (!need_secret || gh_text_ok(app->client_secret, GH_MAX_SECRET,
					GH_CS_TOKEN));
}

/*
 * GitHub's own words for a why: printable, bounded, and never holding
 * the client secret (a hostile or buggy server could echo it).
 */
void gh_quote(const char *in, const char *secret, char *out, size_t size)
{
	size_t w = 0;

	if (secret != NULL && secret[0] != '\0' && strstr(in, secret) != NULL) {
		snprintf(out, size, "(redacted)");
		return;
	}
	for (size_t i = 0; in[i] != '\0' && w + 1 < size && w < 160; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[w++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[w] = '\0';
}

/* --- replies ------------------------------------------------------------ */

/* A transport failure of a call whose answer we need. */
dd_err_t gh_transport(const dd_httpc_result *res, const char *what,
		      char *why, size_t n)
{
	dd_err_t e = res->err;

	if (e == DD_ERR_CANCELLED || e == DD_ERR_TIMEOUT || e == DD_ERR_NOMEM) {
		snprintf(why, n, "GitHub %s: %s", what,
			 e == DD_ERR_TIMEOUT ? "timed out" : dd_strerror(e));
		return e;
	}
	if (e == DD_ERR_TOO_LARGE)
		snprintf(why, n, "GitHub %s reply too large", what);
	else
		snprintf(why, n, "GitHub %s unreachable: %s", what,
			 res->message);
	return DD_ERR_UPSTREAM;
}

int gh_is_2xx(const dd_httpc_result *res)
{
	return res->err == DD_OK && res->status >= 200 && res->status <= 299;
}

/* The body as JSON of the wanted kind; UPSTREAM (or NOMEM) otherwise. */
dd_err_t gh_parse(const dd_httpc_result *res, int array, const char *what,
		  json_t **out, char *why, size_t n)
{
	dd_err_t rc;

	rc = dd_json_parse(dd_buf_str(&res->body), res->body.len,
			   res->body.cap, out, NULL, 0);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc == DD_OK && (array ? json_is_array(*out) : json_is_object(*out)))
		return DD_OK;
	json_decref(*out);
	*out = NULL;
	snprintf(why, n, "GitHub %s reply is not a JSON %s", what,
		 array ? "array" : "object");
	return DD_ERR_UPSTREAM;
}
