#include "cp/cp_attest.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "attest/binding.h"
#include "attest/quote.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/ratelimit.h"
#include "core/strutil.h"

struct job;

struct dd_cp_attest {
	uv_loop_t *loop;
	dd_attestor *att;
	dd_ratelimit rate;
	struct job *inflight;   /* at most one quote at a time */
};

struct job {
	dd_cp_attest *ca;       /* NULL once the owner is freed */
	dd_http_req *req;       /* NULL once the client went away */
	uint8_t nonce[DD_CP_ATTEST_MAX_NONCE];
	size_t nonce_len;
	uint8_t report_data[DD_REPORT_DATA_LEN];
};

static void on_abort(void *ud)
{
	struct job *j = ud;

	j->req = NULL;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char hex[2 * DD_REPORT_DATA_LEN + 1];

	dd_hex_encode(p, n, hex);
	return json_string(hex);
}

/* The reply, from the parsed quote; NULL on NOMEM. */
static json_t *describe(const struct job *j, const dd_quote *q,
			const uint8_t *raw, size_t len, const char *kind,
			const char *token)
{
	dd_buf b64;
	json_t *o = NULL, *rtmrs;

	dd_buf_init(&b64, 2 * len + 16);
	if (dd_b64_encode(DD_B64_STD, raw, len, &b64) != DD_OK)
		goto out;
	rtmrs = json_array();
	for (int i = 0; rtmrs != NULL && i < 4; i++)
		json_array_append_new(rtmrs, hex_json(q->body.rtmr[i], 48));
	o = json_pack("{s:o, s:o, s:s%, s:o, s:o?, s:s, s:b, s:s?}",
		      "nonce", hex_json(j->nonce, j->nonce_len),
		      "report_data", hex_json(j->report_data, 64),
		      "quote", b64.data, b64.len,
		      "mrtd", hex_json(q->body.mrtd, 48),
		      "rtmrs", rtmrs,
		      "provider", kind,
		      "simulated", dd_quote_is_simulated(q),
		      "token", token);
out:
	dd_buf_free(&b64);
	return o;
}

static void answer(struct job *j, const uint8_t *quote, size_t len)
{
	dd_quote q;
	json_t *body;
	dd_err_t rc = dd_quote_parse(quote, len, &q);

	/* A provider answering over other data would make the nonce a lie. */
	if (rc == DD_OK &&
	    memcmp(q.body.report_data, j->report_data, DD_REPORT_DATA_LEN) != 0)
		rc = DD_ERR_CRYPTO;
	if (rc) {
		dd_http_respond_error(j->req, 502, "bad_quote",
				      "the quote provider returned an unusable "
				      "quote: %s", dd_strerror(rc));
		return;
	}
	body = describe(j, &q, quote, len,
			dd_quote_provider_kind(dd_attestor_provider(j->ca->att)),
			dd_attestor_token(j->ca->att));
	if (body == NULL) {
		dd_http_respond_err(j->req, DD_ERR_NOMEM, NULL);
		return;
	}
	dd_http_respond_json(j->req, 200, body);
	json_decref(body);
}

static void on_quote(dd_err_t err, const uint8_t *quote, size_t len,
		     const char *why, void *ud)
{
	struct job *j = ud;

	if (j->ca != NULL)
		j->ca->inflight = NULL;
	if (j->req != NULL) {
		dd_http_req_on_abort(j->req, NULL, NULL);
		if (err)
			dd_http_respond_error(j->req, err == DD_ERR_CANCELLED
						      ? 503 : 502,
					      "quote_failed",
					      "no quote: %s", why && why[0]
					      ? why : dd_strerror(err));
		else if (j->ca != NULL && j->ca->att != NULL)
			answer(j, quote, len);
		else
			dd_http_respond_err(j->req, DD_ERR_CANCELLED, NULL);
	}
	dd_free(j);
}

/* 1..32 bytes of hex; anything else is the caller's mistake. */
static int parse_nonce(const char *s, struct job *j)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n % 2 != 0 || n > 2 * DD_CP_ATTEST_MAX_NONCE)
		return 0;
	j->nonce_len = n / 2;
	return dd_hex_decode(s, n, j->nonce, j->nonce_len) == DD_OK;
}

static void refuse_busy(dd_http_req *req, uint64_t retry_ms, const char *why)
{
	char secs[24];

	snprintf(secs, sizeof secs, "%llu",
		 (unsigned long long)((retry_ms + 999) / 1000));
	dd_http_set_header(req, "Retry-After", secs);
	dd_http_respond_error(req, 429, "rate_limited", "%s", why);
}

static void handle_attest(dd_http_req *req, void *ud)
{
	dd_cp_attest *ca = ud;
	struct job *j = dd_calloc(1, sizeof *j);
	uint64_t retry_ms = 0;
	dd_err_t rc;

	if (j == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	if (ca->att == NULL) {
		dd_http_respond_error(req, 503, "shutting_down",
				      "the control plane is shutting down");
		goto fail;
	}
	if (!parse_nonce(dd_http_req_query(req, "nonce"), j)) {
		dd_http_respond_error(req, 400, "bad_nonce",
				      "nonce must be 1 to %d bytes of hex",
				      DD_CP_ATTEST_MAX_NONCE);
		goto fail;
	}
	if (ca->inflight != NULL) {
		refuse_busy(req, 1000, "a quote is being generated; retry");
		goto fail;
	}
	if (!dd_ratelimit_take(&ca->rate, uv_now(ca->loop), &retry_ms)) {
		refuse_busy(req, retry_ms, "too many quote requests; retry later");
		goto fail;
	}
	rc = dd_binding_cp_attest(j->nonce, j->nonce_len, j->report_data);
	if (rc == DD_OK)
		rc = dd_quote_request(dd_attestor_provider(ca->att),
				      j->report_data, on_quote, j);
	if (rc) {
		dd_http_respond_err(req, rc, "cannot request a quote");
		goto fail;
	}
	j->ca = ca;
	j->req = req;
	ca->inflight = j;
	dd_http_req_on_abort(req, on_abort, j);
	return;
fail:
	dd_free(j);
}

dd_err_t dd_cp_attest_new(uv_loop_t *loop, dd_attestor *att,
			  dd_cp_attest **out)
{
	dd_cp_attest *ca = dd_calloc(1, sizeof *ca);

	*out = ca;
	if (ca == NULL)
		return DD_ERR_NOMEM;
	ca->loop = loop;
	ca->att = att;
	dd_ratelimit_init(&ca->rate, DD_CP_ATTEST_BURST, DD_CP_ATTEST_PERIOD_MS,
			  uv_now(loop));
	return DD_OK;
}

static void attest_route(dd_http_req *req, const dd_caller *who, void *ud)
{
	(void)who;
	handle_attest(req, ud);
}

dd_authz_route dd_cp_attest_route(dd_cp_attest *ca)
{
	return (dd_authz_route){DD_M_GET, "/cp/attest", attest_route, ca, 0, 0};
}

void dd_cp_attest_detach(dd_cp_attest *ca)
{
	ca->att = NULL;
}

void dd_cp_attest_free(dd_cp_attest *ca)
{
	if (ca == NULL)
		return;
	if (ca->inflight != NULL)
		ca->inflight->ca = NULL;
	dd_free(ca);
}
