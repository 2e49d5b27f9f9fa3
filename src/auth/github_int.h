/*
 * github_int.h: private to the GitHub client (github.c runs the calls,
 * github_check.c checks shapes and reads replies). No other module
 * includes this.
 */
#ifndef DD_AUTH_GITHUB_INT_H
#define DD_AUTH_GITHUB_INT_H

#include <stddef.h>

#include <jansson.h>

#include "auth/github.h"
#include "net/httpc.h"

#define GH_MAX_SECRET 256

/* What a string may hold, by where it goes. */
enum gh_charset {
	GH_CS_LOGIN, /* GitHub logins: letters, digits, '-' */
	GH_CS_ID,    /* client ids, codes: also '.', '_' */
	GH_CS_REPO,  /* repository names: as GH_CS_ID */
	GH_CS_TOKEN, /* RFC 6750 b64token */
};

/* 1 when s is 1..max characters, all of cs. */
int gh_text_ok(const char *s, size_t max, enum gh_charset cs);
/* A GitHub login (at most 39 characters). */
int gh_login_ok(const char *s);
/* The owner goes into API paths: its shape keeps them well-formed. */
int gh_owner_ok(const dd_principal *o);
/* The app's client id, and its secret when need_secret. */
int gh_app_ok(const dd_github_app *app, int need_secret);
/*
 * GitHub's own words for a why into out (size bytes): printable,
 * bounded, "(redacted)" when they hold the client secret.
 */
void gh_quote(const char *in, const char *secret, char *out, size_t size);

/*
 * A transport failure of a call whose answer we need: writes why and
 * returns CANCELLED, TIMEOUT or NOMEM as they came, else UPSTREAM.
 */
dd_err_t gh_transport(const dd_httpc_result *res, const char *what,
		      char *why, size_t n);
/* A complete 2xx response. */
int gh_is_2xx(const dd_httpc_result *res);
/*
 * The body as a JSON array (array) or object: on DD_OK the caller owns
 * *out (json_decref); UPSTREAM with why, or NOMEM, otherwise.
 */
dd_err_t gh_parse(const dd_httpc_result *res, int array, const char *what,
		  json_t **out, char *why, size_t n);

#endif
