#include "cp/cp_auth.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/broker.h"
#include "auth/dev_signin.h"
#include "auth/github.h"
#include "auth/oidc.h"
#include "auth/session.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

struct dd_cp_auth {
	const dd_config *cfg;
	dd_principal owner;
	dd_session_keys *keys;
	dd_github *github;
	dd_broker *broker;
	dd_oidc *oidc;
	dd_authz *authz;
	dd_dev_signin *dev_signin; /* DD_DEV only */
	int dev_signin_logged;
};

static dd_err_t make_keys(const dd_config *cfg, dd_session_keys **out)
{
	dd_buf key;
	dd_err_t rc;

	dd_buf_init(&key, 4096);
	rc = dd_config_secret_bytes(cfg->cookie_secret, &key);
	if (rc == DD_OK)
		rc = dd_session_keys_new(key.data, key.len, out);
	if (key.data != NULL)
		dd_freezero(key.data, key.alloc);
	key.data = NULL;
	dd_buf_free(&key);
	return rc;
}

static dd_err_t make_broker(dd_cp_auth *a, const dd_config *cfg)
{
	dd_broker_opts bo = {
		.owner = &a->owner, .keys = a->keys, .github = a->github,
		.oauth_base = cfg->github_oauth_url,
		.callback_url = cfg->github_callback_url,
		.cookie_domain = cfg->cookie_domain,
		.domain = cfg->cf_domain, .dev = cfg->dev,
	};

	for (int i = 0; i < 3; i++) {
		bo.apps[i].client_id = cfg->github_client_id[i];
		bo.apps[i].client_secret = cfg->github_client_secret[i];
	}
	return dd_broker_new(&bo, &a->broker);
}

dd_err_t dd_cp_auth_new(const dd_config *cfg, uv_loop_t *loop,
			dd_httpc *http, dd_cp_auth **out, char *why,
			size_t why_len)
{
	dd_cp_auth *a = dd_calloc(1, sizeof *a);
	dd_github_opts go = {.oauth_base = cfg->github_oauth_url,
			     .api_base = cfg->github_api_url};
	dd_oidc_opts oo = {.issuer = cfg->oidc_issuer,
			   .jwks_url = cfg->oidc_jwks_url,
			   .audience = cfg->oidc_audience,
			   .max_age_s = cfg->oidc_max_age_secs,
			   /* GitHub rotates keys; pick a new kid up quickly. */
			   .jwks_refresh_ms = 10000};
	dd_authz_opts zo = {.service = "cp", .cookie_name = DD_SESSION_COOKIE,
			    .accept_bearer_sessions = 1, .dev = cfg->dev};
	dd_err_t rc;

	*out = NULL;
	why[0] = '\0';
	if (a == NULL)
		return DD_ERR_NOMEM;
	a->cfg = cfg;
	rc = dd_principal_make((dd_principal_kind)cfg->owner_kind, cfg->owner,
			       cfg->owner_id, &a->owner, why, why_len);
	if (rc == DD_OK)
		rc = make_keys(cfg, &a->keys);
	if (rc == DD_OK)
		rc = dd_github_new(http, &go, &a->github);
	if (rc == DD_OK)
		rc = make_broker(a, cfg);
	/* Without DD_DEV_SIGNIN_CODE, a code of our own (logged once up). */
	if (rc == DD_OK && cfg->dev)
		rc = dd_dev_signin_new(a->broker, cfg->dev_signin_code,
				       &a->dev_signin);
	if (rc == DD_OK)
		rc = dd_oidc_new(loop, http, &oo, &a->oidc);
	if (rc == DD_OK) {
		zo.owner = &a->owner;
		zo.keys = a->keys;
		zo.oidc = a->oidc;
		rc = dd_authz_new(&zo, &a->authz);
	}
	if (rc) {
		if (why[0] == '\0')
			snprintf(why, why_len, "%s", dd_strerror(rc));
		dd_cp_auth_close(a);
		dd_cp_auth_free(a);
		return rc;
	}
	*out = a;
	return DD_OK;
}

dd_authz *dd_cp_auth_authz(dd_cp_auth *a)
{
	return a->authz;
}

const dd_session_keys *dd_cp_auth_keys(const dd_cp_auth *a)
{
	return a->keys;
}

size_t dd_cp_auth_routes(dd_cp_auth *a, dd_authz_route *routes)
{
	size_t n = dd_broker_routes(a->broker, routes);

	if (a->dev_signin != NULL)
		n += dd_dev_signin_routes(a->dev_signin, routes + n);
	return n;
}

static int github_configured(const dd_config *cfg)
{
	for (int i = 0; i < 3; i++) {
		if (cfg->github_client_id[i] && cfg->github_client_secret[i])
			return 1;
	}
	return 0;
}

/*
 * A code this CP made is known to nobody else: its one way out is this
 * line, for the person who started the CP (as Jupyter prints its token;
 * the one secret the log carries, on purpose). A configured code is the
 * configurer's to share, and stays out of the log.
 */
static dd_err_t log_dev_signin_url(dd_cp_auth *a, const char *origin)
{
	char url[700];
	dd_err_t rc;

	if (a->dev_signin == NULL || !dd_dev_signin_made_code(a->dev_signin) ||
	    a->dev_signin_logged)
		return DD_OK;
	rc = dd_dev_signin_url(a->dev_signin, origin, url, sizeof url);
	if (rc)
		return rc;
	dd_log_warn("dev sign-in needs this run's code (DD_DEV_SIGNIN_CODE "
		    "unset, so one was made): sign in at %s", url);
	a->dev_signin_logged = 1;
	OPENSSL_cleanse(url, sizeof url);
	return DD_OK;
}

dd_err_t dd_cp_auth_listening(dd_cp_auth *a, uint16_t port)
{
	const dd_config *cfg = a->cfg;
	char origin[512], sign_in[600];
	dd_err_t rc;

	if (cfg->public_url != NULL)
		snprintf(origin, sizeof origin, "%s", cfg->public_url);
	else if (cfg->hostname != NULL && !cfg->dev)
		snprintf(origin, sizeof origin, "https://%s", cfg->hostname);
	else
		snprintf(origin, sizeof origin, "http://%s:%u",
			 strcmp(cfg->bind_addr, "0.0.0.0") == 0 ? "127.0.0.1"
								: cfg->bind_addr,
			 (unsigned)port);
	/* Without a GitHub app, a dev fleet signs people in locally. */
	snprintf(sign_in, sizeof sign_in, "%s%s", origin,
		 cfg->dev && !github_configured(cfg) ? "/auth/dev"
						     : "/auth/github/start");
	rc = dd_broker_set_origin(a->broker, origin);
	if (rc == DD_OK)
		rc = dd_authz_set_origin(a->authz, origin);
	if (rc == DD_OK)
		rc = dd_authz_set_sign_in(a->authz, sign_in);
	if (rc == DD_OK)
		rc = log_dev_signin_url(a, origin);
	return rc;
}

void dd_cp_auth_close(dd_cp_auth *a)
{
	if (a == NULL)
		return;
	/* Detach first, then cancel: cancelled calls still reach the broker. */
	if (a->broker != NULL)
		dd_broker_close(a->broker);
	if (a->authz != NULL)
		dd_authz_close(a->authz);
	dd_github_free(a->github);
	a->github = NULL;
	dd_oidc_free(a->oidc);
	a->oidc = NULL;
}

void dd_cp_auth_free(dd_cp_auth *a)
{
	if (a == NULL)
		return;
	dd_cp_auth_close(a);
	dd_authz_free(a->authz);
	dd_dev_signin_free(a->dev_signin);
	dd_broker_free(a->broker);
	dd_session_keys_free(a->keys);
	dd_free(a);
}
