#include "auth/local_oidc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/signer.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/strutil.h"

#define LIFETIME_S 300

struct dd_local_oidc {
	dd_signer *key;
	char *issuer;
	char *prefix;
	char *request_token;
	dd_principal owner;
	int64_t (*now)(void);
	char jwks_path[128], token_path[128];
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static void handle_jwks(dd_http_req *req, void *ud)
{
	dd_local_oidc *l = ud;
	json_t *jwks = NULL;
	dd_err_t rc = dd_signer_jwks(l->key, &jwks);

	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond_json(req, 200, jwks);
	json_decref(jwks);
}

/* Bearer <request token>, compared in constant time. */
static int authorised(const dd_local_oidc *l, dd_http_req *req)
{
	const char *h = dd_http_req_header(req, "Authorization");
	size_t want = strlen(l->request_token);

	return h != NULL && strncmp(h, "Bearer ", 7) == 0 &&
	       strlen(h + 7) == want &&
	       CRYPTO_memcmp(h + 7, l->request_token, want) == 0;
}

static json_t *claims_for(const dd_local_oidc *l, const char *aud)
{
	const dd_principal *o = &l->owner;
	char jti[33], repo[DD_PRINCIPAL_MAX_NAME + 16], sub[300];
	char owner_name[DD_PRINCIPAL_MAX_NAME + 1], id[24], repo_id[24];
	int64_t now = l->now();
	const char *slash;

	if (dd_random_hex(jti, 16) != DD_OK)
		return NULL;
	/* A repo principal is the repository; others own a dev repository. */
	if (o->kind == DD_PRINCIPAL_REPO) {
		slash = strchr(o->name, '/');
		snprintf(owner_name, sizeof owner_name, "%.*s",
			 (int)(slash - o->name), o->name);
		snprintf(repo, sizeof repo, "%s", o->name);
		snprintf(repo_id, sizeof repo_id, "%llu",
			 (unsigned long long)o->id);
		snprintf(id, sizeof id, "%llu", (unsigned long long)o->id + 1);
	} else {
		snprintf(owner_name, sizeof owner_name, "%s", o->name);
		snprintf(repo, sizeof repo, "%s/dev-app", o->name);
		snprintf(repo_id, sizeof repo_id, "%llu",
			 (unsigned long long)o->id + 1);
		snprintf(id, sizeof id, "%llu", (unsigned long long)o->id);
	}
	snprintf(sub, sizeof sub, "repo:%s:ref:refs/heads/main", repo);
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s,"
			 " s:s, s:s, s:s, s:s}",
			 "iss", l->issuer, "aud", aud, "iat", (json_int_t)now,
			 "nbf", (json_int_t)now,
			 "exp", (json_int_t)(now + LIFETIME_S), "jti", jti,
			 "sub", sub, "repository", repo, "repository_id",
			 repo_id, "repository_owner", owner_name,
			 "repository_owner_id", id, "ref", "refs/heads/main",
			 "workflow", "dev", "actor", owner_name);
}

static void handle_token(dd_http_req *req, void *ud)
{
	dd_local_oidc *l = ud;
	const char *aud = dd_http_req_query(req, "audience");
	json_t *claims, *reply = NULL;
	dd_buf tok;
	dd_err_t rc;

	if (!authorised(l, req)) {
		dd_http_respond_error(req, 401, "unauthenticated",
				      "the request token is missing or wrong");
		return;
	}
	if (aud == NULL || aud[0] == '\0' || strlen(aud) > 256) {
		dd_http_respond_error(req, 400, "bad_request",
				      "audience must be 1-256 bytes");
		return;
	}
	dd_buf_init(&tok, 8192);
	claims = claims_for(l, aud);
	rc = claims ? dd_signer_sign(l->key, claims, &tok) : DD_ERR_NOMEM;
	if (rc == DD_OK)
		reply = json_pack("{s:i, s:s}", "count", 1, "value",
				  dd_buf_str(&tok));
	if (reply == NULL)
		dd_http_respond_err(req, rc ? rc : DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, reply);
	json_decref(reply);
	json_decref(claims);
	dd_buf_free(&tok);
}

dd_err_t dd_local_oidc_mount(dd_local_oidc *l, dd_http_server *srv)
{
	dd_http_route jwks = {.methods = DD_M_GET, .pattern = l->jwks_path,
			      .handler = handle_jwks, .ud = l};
	dd_http_route token = {.methods = DD_M_GET, .pattern = l->token_path,
			       .handler = handle_token, .ud = l};
	dd_err_t rc = dd_http_server_route(srv, &jwks);

	if (rc == DD_OK)
		rc = dd_http_server_route(srv, &token);
	return rc;
}

void dd_local_oidc_free(dd_local_oidc *l)
{
	if (l == NULL)
		return;
	dd_signer_free(l->key);
	dd_free(l->issuer);
	dd_free(l->prefix);
	if (l->request_token != NULL)
		dd_freezero(l->request_token, strlen(l->request_token));
	dd_free(l);
}

dd_err_t dd_local_oidc_new(const dd_local_oidc_opts *o, dd_local_oidc **out)
{
	dd_local_oidc *l;
	dd_err_t rc;

	*out = NULL;
	if (o->env == NULL || strcmp(o->env, "production") == 0 ||
	    strcmp(o->env, "staging") == 0)
		return DD_ERR_FORBIDDEN;
	if (o->issuer == NULL || o->prefix == NULL || o->request_token == NULL ||
	    o->request_token[0] == '\0' || o->owner == NULL)
		return DD_ERR_CONFIG;
	l = dd_calloc(1, sizeof *l);
	if (l == NULL)
		return DD_ERR_NOMEM;
	l->owner = *o->owner;
	l->now = o->now ? o->now : wall_now;
	l->issuer = dd_strdup(o->issuer);
	l->prefix = dd_strdup(o->prefix);
	l->request_token = dd_strdup(o->request_token);
	rc = l->issuer && l->prefix && l->request_token ? DD_OK : DD_ERR_NOMEM;
	if (rc == DD_OK &&
	    (snprintf(l->jwks_path, sizeof l->jwks_path, "%s/.well-known/jwks",
		      o->prefix) >= (int)sizeof l->jwks_path ||
	     snprintf(l->token_path, sizeof l->token_path, "%s/token",
		      o->prefix) >= (int)sizeof l->token_path))
		rc = DD_ERR_TOO_LARGE;
	if (rc == DD_OK)
		rc = dd_signer_new_rs256(&l->key);
	if (rc) {
		dd_local_oidc_free(l);
		return rc;
	}
	*out = l;
	return DD_OK;
}
