#include "attest/ita_verify.h"

#include <stdio.h>
#include <string.h>

#include "auth/jwks_cache.h"
#include "core/alloc.h"

struct dd_ita_verifier {
	dd_jwks_cache *keys;
	char *issuer;
	dd_jwt_policy policy;
	dd_pin_policy pins;
};

struct pending {
	dd_ita_verify_cb cb;
	void *ud;
	const dd_pin_policy *pins;
};

dd_err_t dd_ita_verifier_new(uv_loop_t *loop, dd_httpc *http,
			     const dd_ita_verifier_opts *opts,
			     dd_ita_verifier **out)
{
	dd_jwks_cache_opts ko = {.url = opts->jwks_url,
				 .refresh_interval_ms = opts->jwks_refresh_ms};
	dd_ita_verifier *v;
	dd_err_t rc;

	*out = NULL;
	if (opts->issuer == NULL || opts->issuer[0] == '\0')
		return DD_ERR_CONFIG;
	v = dd_calloc(1, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	v->issuer = dd_strdup(opts->issuer);
	rc = v->issuer ? dd_jwks_cache_new(loop, http, &ko, &v->keys) : DD_ERR_NOMEM;
	if (rc) {
		dd_ita_verifier_free(v);
		return rc;
	}
	/* ITA signs with RSA (PS384/RS256 seen) or ECDSA; never HMAC. */
	v->policy.algs = DD_JWA_ALL;
	v->policy.issuer = v->issuer;
	v->policy.audience = NULL;
	v->policy.leeway_s = opts->leeway_s ? opts->leeway_s : 60;
	if (opts->pins != NULL)
		v->pins = *opts->pins;
	*out = v;
	return DD_OK;
}

void dd_ita_verifier_free(dd_ita_verifier *v)
{
	if (v == NULL)
		return;
	dd_jwks_cache_free(v->keys);
	dd_free(v->issuer);
	dd_free(v);
}

static void judge(dd_err_t err, json_t *claims, const dd_jwt_result *res,
		  void *ud)
{
	struct pending *p = ud;
	dd_ita_verdict vd;

	memset(&vd, 0, sizeof vd);
	vd.pin = DD_PIN_UNPINNED;
	if (res != NULL)
		vd.jwt = *res;
	if (err != DD_OK) {
		vd.err = err == DD_ERR_UPSTREAM || err == DD_ERR_CANCELLED ||
				 err == DD_ERR_NOMEM
			 ? err : DD_ERR_UNAUTHORIZED;
		snprintf(vd.why, sizeof vd.why, "token refused: %s",
			 res && res->why[0] ? res->why : dd_strerror(err));
		p->cb(&vd, NULL, p->ud);
		dd_free(p);
		return;
	}
	vd.err = dd_att_claims_from_json(claims, &vd.claims, vd.why, sizeof vd.why);
	if (vd.err == DD_OK) {
		int mismatch;

		vd.pin = dd_pin_check(p->pins, &vd.claims, vd.why, sizeof vd.why);
		mismatch = vd.pin != DD_PIN_PASS && vd.pin != DD_PIN_UNPINNED;
		/* Not enforced: accepted, but why keeps the mismatch to warn. */
		if (mismatch && p->pins->enforce)
			vd.err = DD_ERR_UNAUTHORIZED;
		else if (!mismatch)
			vd.why[0] = '\0';
	}
	p->cb(&vd, claims, p->ud);
	dd_free(p);
}

dd_err_t dd_ita_verify(dd_ita_verifier *v, const char *token, size_t len,
		       int64_t now, dd_ita_verify_cb cb, void *ud)
{
	struct pending *p = dd_malloc(sizeof *p);
	dd_err_t rc;

	if (p == NULL)
		return DD_ERR_NOMEM;
	p->cb = cb;
	p->ud = ud;
	p->pins = &v->pins;
	rc = dd_jwks_cache_verify(v->keys, token, len, &v->policy, now, judge, p,
				  NULL);
	if (rc)
		dd_free(p);
	return rc;
}
