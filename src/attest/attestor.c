#include "attest/attestor.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/binding.h"
#include "core/alloc.h"
#include "core/strutil.h"

#define NONCE_LEN 16

struct dd_attestor {
	uv_loop_t *loop;
	uv_timer_t timer;
	dd_quote_provider *provider;
	dd_ita *ita;
	dd_ita_verifier *verifier;
	uint64_t refresh_ms;
	int64_t (*now)(void);
	dd_attestor_round_cb cb;
	void *ud;
	int closing;
	int busy;        /* a round is in flight */
	int first_done;  /* the boot round has reported */

	uint8_t want_rd[DD_REPORT_DATA_LEN];
	char *pending;   /* minted, not yet verified */

	char *token;     /* served */
	json_t *claims;
	dd_ita_verdict verdict;
};

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static void on_timer(uv_timer_t *t);

static void schedule(dd_attestor *a)
{
	if (a->refresh_ms > 0 && !a->closing)
		uv_timer_start(&a->timer, on_timer, a->refresh_ms, 0);
}

/* Ends a round: reports it and arms the next one. */
static void finish(dd_attestor *a, dd_err_t err, const char *why)
{
	int first = !a->first_done;

	a->busy = 0;
	a->first_done = 1;
	dd_freezero(a->pending, a->pending ? strlen(a->pending) : 0);
	a->pending = NULL;
	schedule(a);
	a->cb(err, first, err ? why : "", a->ud);
}

static void finishf(dd_attestor *a, dd_err_t err, const char *step,
		    const char *why)
{
	char line[512];

	snprintf(line, sizeof line, "%s: %s", step,
		 why && why[0] ? why : dd_strerror(err));
	finish(a, err, line);
}

/* The token must speak for the quote we just asked for, not any quote. */
static int binds_our_nonce(const dd_attestor *a, const dd_ita_verdict *v)
{
	char want[DD_REPORT_DATA_HEX + 1];

	dd_hex_encode(a->want_rd, sizeof a->want_rd, want);
	return strcmp(want, v->claims.report_data) == 0;
}

static void on_verdict(const dd_ita_verdict *v, json_t *claims, void *ud)
{
	dd_attestor *a = ud;

	if (a->closing)
		return;
	if (v->err) {
		finishf(a, v->err, "verifying the token", v->why);
		return;
	}
	if (!binds_our_nonce(a, v)) {
		finishf(a, DD_ERR_UNAUTHORIZED, "verifying the token",
			"its report_data is not the one this process asked for");
		return;
	}
	dd_freezero(a->token, a->token ? strlen(a->token) : 0);
	json_decref(a->claims);
	a->token = a->pending;
	a->pending = NULL;
	a->claims = json_incref(claims);
	a->verdict = *v;
	finish(a, DD_OK, "");
}

static void on_token(dd_err_t err, const char *token, const char *why,
		     void *ud)
{
	dd_attestor *a = ud;
	dd_err_t rc;

	if (a->closing)
		return;
	if (err) {
		finishf(a, err, "minting a token", why);
		return;
	}
	a->pending = dd_strdup(token);
	if (a->pending == NULL) {
		finishf(a, DD_ERR_NOMEM, "minting a token", NULL);
		return;
	}
	rc = dd_ita_verify(a->verifier, a->pending, strlen(a->pending), a->now(),
			   on_verdict, a);
	if (rc)
		finishf(a, rc, "verifying the token", NULL);
}

static void on_quote(dd_err_t err, const uint8_t *quote, size_t len,
		     const char *why, void *ud)
{
	dd_attestor *a = ud;
	dd_err_t rc;

	if (a->closing)
		return;
	if (err) {
		finishf(a, err, "obtaining a quote", why);
		return;
	}
	rc = dd_ita_attest_v1(a->ita, quote, len, on_token, a);
	if (rc)
		finishf(a, rc, "minting a token", NULL);
}

static dd_err_t begin_round(dd_attestor *a)
{
	uint8_t nonce[NONCE_LEN];
	dd_err_t rc;

	rc = dd_random_bytes(nonce, sizeof nonce);
	if (rc == DD_OK)
		rc = dd_binding_cp_attest(nonce, sizeof nonce, a->want_rd);
	if (rc == DD_OK)
		rc = dd_quote_request(a->provider, a->want_rd, on_quote, a);
	if (rc == DD_OK)
		a->busy = 1;
	return rc;
}

static void on_timer(uv_timer_t *t)
{
	dd_attestor *a = t->data;
	dd_err_t rc;

	if (a->busy || a->closing)
		return;
	rc = begin_round(a);
	if (rc)
		finishf(a, rc, "starting a round", NULL);
}

dd_err_t dd_attestor_new(uv_loop_t *loop, dd_httpc *http,
			 dd_quote_provider *provider,
			 const dd_attestor_opts *opts, dd_attestor **out)
{
	dd_attestor *a = dd_calloc(1, sizeof *a);
	dd_err_t rc;

	*out = NULL;
	if (a == NULL) {
		dd_quote_provider_close(provider);
		return DD_ERR_NOMEM;
	}
	a->loop = loop;
	a->provider = provider;
	a->refresh_ms = opts->refresh_ms;
	a->now = opts->now ? opts->now : wall_now;
	uv_timer_init(loop, &a->timer);
	a->timer.data = a;
	rc = dd_ita_new(http, opts->ita, &a->ita);
	if (rc == DD_OK)
		rc = dd_ita_verifier_new(loop, http, opts->verify, &a->verifier);
	if (rc) {
		dd_attestor_free(a);
		return rc;
	}
	*out = a;
	return DD_OK;
}

dd_err_t dd_attestor_start(dd_attestor *a, dd_attestor_round_cb cb, void *ud)
{
	if (a->busy || a->first_done)
		return DD_ERR_BUSY;
	a->cb = cb;
	a->ud = ud;
	/* Through the timer, so cb never runs before this returns. */
	uv_timer_start(&a->timer, on_timer, 0, 0);
	return DD_OK;
}

const char *dd_attestor_token(const dd_attestor *a)
{
	return a->token;
}

json_t *dd_attestor_claims_json(const dd_attestor *a)
{
	return a->claims;
}

const dd_ita_verdict *dd_attestor_verdict(const dd_attestor *a)
{
	return a->token ? &a->verdict : NULL;
}

dd_quote_provider *dd_attestor_provider(const dd_attestor *a)
{
	return a->provider;
}

/* --- mints for others ------------------------------------------------- */

struct mint {
	dd_attestor *a;
	dd_attestor_mint_cb cb;
	void *ud;
};

static void mint_token(dd_err_t err, const char *token, const char *why,
		       void *ud)
{
	struct mint *m = ud;

	m->cb(err, err ? NULL : token, err ? why : "", m->ud);
	dd_free(m);
}

static void mint_quote(dd_err_t err, const uint8_t *quote, size_t len,
		       const char *why, void *ud)
{
	struct mint *m = ud;
	dd_err_t rc;

	if (err || m->a->closing) {
		m->cb(err ? err : DD_ERR_CANCELLED, NULL, why, m->ud);
		dd_free(m);
		return;
	}
	rc = dd_ita_attest_v1(m->a->ita, quote, len, mint_token, m);
	if (rc) {
		m->cb(rc, NULL, "minting a token", m->ud);
		dd_free(m);
	}
}

dd_err_t dd_attestor_mint(dd_attestor *a, const uint8_t report_data[64],
			  dd_attestor_mint_cb cb, void *ud)
{
	struct mint *m;
	dd_err_t rc;

	if (a->closing)
		return DD_ERR_CLOSED;
	m = dd_calloc(1, sizeof *m);
	if (m == NULL)
		return DD_ERR_NOMEM;
	*m = (struct mint){a, cb, ud};
	rc = dd_quote_request(a->provider, report_data, mint_quote, m);
	if (rc)
		dd_free(m);
	return rc;
}

dd_err_t dd_attestor_mint_quote(dd_attestor *a, const uint8_t *quote,
				size_t len, dd_attestor_mint_cb cb, void *ud)
{
	struct mint *m;
	dd_err_t rc;

	if (a->closing)
		return DD_ERR_CLOSED;
	m = dd_calloc(1, sizeof *m);
	if (m == NULL)
		return DD_ERR_NOMEM;
	*m = (struct mint){a, cb, ud};
	rc = dd_ita_attest_v1(a->ita, quote, len, mint_token, m);
	if (rc)
		dd_free(m);
	return rc;
}

dd_err_t dd_attestor_verify(dd_attestor *a, const char *token, size_t len,
			    dd_ita_verify_cb cb, void *ud)
{
	if (a->closing)
		return DD_ERR_CLOSED;
	return dd_ita_verify(a->verifier, token, len, a->now(), cb, ud);
}

static void on_closed(uv_handle_t *h)
{
	dd_attestor *a = h->data;

	dd_free(a);
}

void dd_attestor_free(dd_attestor *a)
{
	if (a == NULL)
		return;
	a->closing = 1;
	/* Each of these runs its pending callbacks (ignored now) first. */
	dd_ita_free(a->ita);
	dd_quote_provider_close(a->provider);
	dd_ita_verifier_free(a->verifier);
	dd_freezero(a->pending, a->pending ? strlen(a->pending) : 0);
	dd_freezero(a->token, a->token ? strlen(a->token) : 0);
	json_decref(a->claims);
	uv_close((uv_handle_t *)&a->timer, on_closed);
}
