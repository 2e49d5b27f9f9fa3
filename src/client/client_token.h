/*
 * client_token.h: where the client's bearer tokens come from.
 *
 * Either a fixed token (--token, or --token-file read once), or GitHub
 * Actions OIDC: GET ${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=<aud> with
 * "Authorization: Bearer ${ACTIONS_ID_TOKEN_REQUEST_TOKEN}", the JWT in
 * the reply's "value" (spec integrations 5.1). An OIDC token is minted
 * afresh for every request the client makes, because agents and the
 * control plane treat each token's jti as single-use and refuse a replay.
 * A fixed token is reused as given; against such an agent it serves one
 * authenticated call.
 *
 * Tokens are secrets: nothing here prints, the error texts never quote a
 * token or the request token, and every copy is wiped when freed.
 */
#ifndef DD_CLIENT_CLIENT_TOKEN_H
#define DD_CLIENT_CLIENT_TOKEN_H

#include <stddef.h>

#include "client/client_http.h"
#include "core/config.h"
#include "core/err.h"

#define DD_CLIENT_TOKEN_MAX 16384u   /* longest token accepted, bytes */
#define DD_CLIENT_DEFAULT_AUDIENCE "dd-agent"

typedef struct dd_client_token_src dd_client_token_src;

/*
 * Chooses the source: fixed (a token given directly) wins, then the
 * GitHub Actions variables read through get(ud, name). Owned copies are
 * taken; fixed may be wiped by the caller afterwards. Errors (why says
 * which and what to do): UNAUTHORIZED when there is no source at all,
 * INVALID for a malformed fixed token or request URL, NOMEM. Caller
 * releases *out with dd_client_token_src_free().
 */
dd_err_t dd_client_token_src_new(const char *fixed, const char *audience,
				 dd_config_get_fn get, void *ud,
				 dd_client_token_src **out, char *why,
				 size_t why_len);
void dd_client_token_src_free(dd_client_token_src *src);

/* Non-zero when tokens are minted per request (GitHub Actions OIDC). */
int dd_client_token_src_minted(const dd_client_token_src *src);

/*
 * A token for one request. *out is a new NUL-terminated copy the caller
 * wipes and frees with dd_client_token_free(). Minting errors:
 * UNAUTHORIZED (the endpoint refused the request token: 401/403),
 * INVALID (a 200 reply without a usable "value"), UPSTREAM (another
 * status, or no answer), TIMEOUT, TOO_LARGE, NOMEM; why explains without
 * quoting secrets.
 */
dd_err_t dd_client_token_get(dd_client_token_src *src, dd_client_http *h,
			     char **out, char *why, size_t why_len);
void dd_client_token_free(char *tok);

/*
 * Non-zero when s[0..n) may travel as a bearer token: RFC 6750 token68
 * characters (A-Z a-z 0-9 - . _ ~ + /, then '=' padding), 1 to
 * DD_CLIENT_TOKEN_MAX bytes.
 */
int dd_client_token_ok(const char *s, size_t n);

/*
 * Reads a token file ("-": standard input), at most DD_CLIENT_TOKEN_MAX
 * bytes plus surrounding whitespace, trimmed. NOT_FOUND when it cannot be
 * opened, INVALID when it is not one token, TOO_LARGE. Caller frees *out
 * with dd_client_token_free().
 */
dd_err_t dd_client_token_read_file(const char *path, char **out);

#endif
