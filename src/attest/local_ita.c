#include "attest/local_ita.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "auth/signer.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"

struct dd_local_ita {
	dd_signer *signer;
	char *issuer;
	char *api_key;
	uint64_t lifetime_s;
	int64_t (*now)(void);
	uint64_t serial;
};

static int64_t wall_clock(void)
{
	return (int64_t)time(NULL);
}

dd_err_t dd_local_ita_new(const dd_local_ita_opts *opts, dd_local_ita **out)
{
	dd_local_ita *l;
	dd_err_t rc;

	*out = NULL;
	if (opts->env == NULL || opts->issuer == NULL || opts->api_key == NULL ||
	    opts->api_key[0] == '\0')
		return DD_ERR_CONFIG;
	if (strcmp(opts->env, "production") == 0 || strcmp(opts->env, "staging") == 0)
		return DD_ERR_FORBIDDEN;
	l = dd_calloc(1, sizeof *l);
	if (l == NULL)
		return DD_ERR_NOMEM;
	l->issuer = dd_strdup(opts->issuer);
	l->api_key = dd_strdup(opts->api_key);
	rc = l->issuer && l->api_key ? dd_signer_new(&l->signer) : DD_ERR_NOMEM;
	if (rc) {
		dd_local_ita_free(l);
		return rc;
	}
	l->lifetime_s = opts->lifetime_s ? opts->lifetime_s : 300;
	l->now = opts->now ? opts->now : wall_clock;
	*out = l;
	return DD_OK;
}

void dd_local_ita_free(dd_local_ita *l)
{
	if (l == NULL)
		return;
	dd_signer_free(l->signer);
	dd_free(l->issuer);
	if (l->api_key != NULL)
		dd_freezero(l->api_key, strlen(l->api_key));
	dd_free(l);
}

static json_t *hexj(const uint8_t *p, size_t n)
{
	char buf[129];

	dd_hex_encode(p, n, buf);
	return json_string(buf);
}

/* The claims ITA would derive from this quote, in its v1 names. */
static json_t *claims_for(dd_local_ita *l, const dd_quote *q,
			  const dd_quote_result *r)
{
	const dd_quote_body *b = &q->body;
	int64_t now = l->now();
	char jti[33];

	if (dd_random_hex(jti, 16) != DD_OK)
		return NULL;
	return json_pack(
		"{s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o,"
		" s:o, s:o, s:o, s:o, s:o, s:b, s:b}",
		"iss", l->issuer, "iat", (json_int_t)now, "nbf", (json_int_t)now,
		"exp", (json_int_t)(now + (int64_t)l->lifetime_s), "jti", jti,
		"ver", "1.0.0", "attester_type", "TDX",
		"attester_tcb_status", r->simulated ? "UpToDate"
			: dd_tcb_status_name(r->tcb_status == DD_TCB_NOT_EVALUATED
					     ? DD_TCB_UP_TO_DATE : r->tcb_status),
		"tdx_mrtd", hexj(b->mrtd, 48), "tdx_mrseam", hexj(b->mrseam, 48),
		"tdx_mrsignerseam", hexj(b->mrsignerseam, 48),
		"tdx_rtmr0", hexj(b->rtmr[0], 48), "tdx_rtmr1", hexj(b->rtmr[1], 48),
		"tdx_rtmr2", hexj(b->rtmr[2], 48), "tdx_rtmr3", hexj(b->rtmr[3], 48),
		"tdx_report_data", hexj(b->report_data, 64),
		"tdx_td_attributes", hexj(b->td_attributes, 8),
		"tdx_xfam", hexj(b->xfam, 8),
		"tdx_is_debuggable", dd_quote_td_is_debug(q),
		"dd_simulated", r->simulated);
}

static void attest(dd_http_req *req, void *ud)
{
	dd_local_ita *l = ud;
	const char *key = dd_http_req_header(req, "x-api-key");
	const char *q64 = NULL;
	const uint8_t *body;
	size_t n;
	json_t *v = NULL, *claims = NULL, *reply = NULL;
	dd_buf raw, tok;
	dd_quote q;
	dd_quote_result r;
	dd_quote_verify_opts o = {.now = l->now(), .allow_simulated = 1};
	char why[160];

	memset(&r, 0, sizeof r);
	dd_buf_init(&raw, DD_QUOTE_MAX_LEN);
	dd_buf_init(&tok, 16384);
	if (key == NULL || strcmp(key, l->api_key) != 0) {
		dd_http_respond_error(req, 401, "UNAUTHORIZED", "unauthorized");
		goto out;
	}
	body = dd_http_req_body(req, &n);
	if (dd_json_parse(body, n, n + 1, &v, why, sizeof why) != DD_OK ||
	    dd_json_get_str(v, "quote", &q64) != DD_OK ||
	    dd_b64_decode(DD_B64_STD, q64, strlen(q64), &raw) != DD_OK ||
	    raw.len == 0) {
		dd_http_respond_error(req, 400, "BAD_REQUEST",
				      "bad request: Quote cannot be empty or malformed");
		goto out;
	}
	if (dd_quote_parse(raw.data, raw.len, &q) != DD_OK ||
	    dd_quote_verify(&q, &o, &r) != DD_OK || r.reason != DD_QV_OK) {
		dd_http_respond_error(req, 400, "BAD_REQUEST",
				      "bad request: quote does not verify: %s",
				      r.detail[0] ? r.detail : "unparsable");
		goto out;
	}
	claims = claims_for(l, &q, &r);
	if (claims == NULL || dd_signer_sign(l->signer, claims, &tok) != DD_OK) {
		dd_http_respond_err(req, DD_ERR_INTERNAL, "signing the token");
		goto out;
	}
	reply = json_pack("{s:s}", "token", dd_buf_str(&tok));
	dd_http_respond_json(req, 200, reply);
out:
	dd_quote_result_free(&r);
	json_decref(reply);
	json_decref(claims);
	json_decref(v);
	dd_buf_free(&raw);
	dd_buf_free(&tok);
}

static void certs(dd_http_req *req, void *ud)
{
	dd_local_ita *l = ud;
	json_t *jwks = NULL;

	if (dd_signer_jwks(l->signer, &jwks) != DD_OK) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	dd_http_set_header(req, "Cache-Control", "public, max-age=60");
	dd_http_respond_json(req, 200, jwks);
	json_decref(jwks);
}

dd_err_t dd_local_ita_mount(dd_local_ita *l, dd_http_server *srv)
{
	/* A quote is at most 128 KiB, about 171 KiB as Base64 in JSON. */
	dd_http_route a = {.methods = DD_M_POST, .pattern = "/appraisal/v1/attest",
			   .handler = attest, .ud = l,
			   .max_body_unauth = 4 * DD_QUOTE_MAX_LEN / 3 + 1024};
	dd_http_route c = {.methods = DD_M_GET, .pattern = "/certs",
			   .handler = certs, .ud = l};
	dd_err_t rc = dd_http_server_route(srv, &a);

	if (rc == DD_OK)
		rc = dd_http_server_route(srv, &c);
	return rc;
}
