#include "agent/noise_attest.h"

#include <string.h>

#include "attest/binding.h"
#include "attest/provider.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/strutil.h"

#define RETRY_MAX_MS 60000

struct dd_noise_attest {
	uv_loop_t *loop;
	uv_timer_t timer;
	dd_attestor *att;
	dd_noise_attest_opts o;
	uint64_t retry_ms;
	uint8_t nonce[DD_NOISE_NONCE_LEN];
	uint8_t rd[64];
	char *quote_b64;     /* NULL until the quote arrives */
	uint8_t *quote;
	size_t quote_len;
	char *token;         /* NULL until the first mint succeeds */
	int quoting, minting;
	int closing, timer_closed;
};

static void maybe_free(dd_noise_attest *n)
{
	if (!n->closing || !n->timer_closed || n->quoting || n->minting)
		return;
	dd_free(n->quote_b64);
	dd_free(n->quote);
	dd_free(n->token);
	dd_free(n);
}

static void changed(dd_noise_attest *n)
{
	if (n->o.changed != NULL)
		n->o.changed(n->o.ud);
}

static void on_timer(uv_timer_t *t);

static void arm(dd_noise_attest *n, uint64_t ms)
{
	if (!n->closing && ms > 0)
		uv_timer_start(&n->timer, on_timer, ms, 0);
}

static void on_token(dd_err_t err, const char *token, const char *why,
		     void *ud)
{
	dd_noise_attest *n = ud;
	char *copy;

	n->minting = 0;
	if (n->closing) {
		maybe_free(n);
		return;
	}
	if (err) {
		dd_log_warn("the Noise key's ITA token%s: %s",
			    n->token ? " refresh failed, keeping the last one"
				     : " could not be minted", why);
	} else {
		copy = dd_strdup(token);
		if (copy != NULL) {
			dd_free(n->token);
			n->token = copy;
			changed(n);
		}
	}
	arm(n, n->o.refresh_ms);
}

static void mint(dd_noise_attest *n)
{
	dd_err_t rc = dd_attestor_mint_quote(n->att, n->quote, n->quote_len,
					     on_token, n);

	if (rc) {
		dd_log_warn("minting the Noise key's ITA token: %s",
			    dd_strerror(rc));
		arm(n, n->o.refresh_ms);
		return;
	}
	n->minting = 1;
}

static void retry_quote(dd_noise_attest *n, const char *why)
{
	dd_log_warn("quoting the Noise key failed (%s); retrying in %llu ms",
		    why, (unsigned long long)n->retry_ms);
	arm(n, n->retry_ms);
	n->retry_ms = n->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
						      : n->retry_ms * 2;
}

static void on_quote(dd_err_t err, const uint8_t *quote, size_t len,
		     const char *why, void *ud)
{
	dd_noise_attest *n = ud;
	dd_buf b64;

	n->quoting = 0;
	if (n->closing) {
		maybe_free(n);
		return;
	}
	if (err) {
		retry_quote(n, why && why[0] ? why : dd_strerror(err));
		return;
	}
	dd_buf_init(&b64, 2 * DD_QUOTE_MAX);
	n->quote = dd_malloc(len);
	if (n->quote != NULL &&
	    dd_b64_encode(DD_B64_STD, quote, len, &b64) == DD_OK)
		n->quote_b64 = dd_strdup(dd_buf_str(&b64));
	dd_buf_free(&b64);
	if (n->quote_b64 == NULL) {
		dd_free(n->quote);
		n->quote = NULL;
		retry_quote(n, "out of memory");
		return;
	}
	memcpy(n->quote, quote, len);
	n->quote_len = len;
	changed(n);
	mint(n);
}

static void ask_quote(dd_noise_attest *n)
{
	dd_err_t rc = dd_quote_request(dd_attestor_provider(n->att), n->rd,
				       on_quote, n);

	if (rc) {
		retry_quote(n, dd_strerror(rc));
		return;
	}
	n->quoting = 1;
}

static void on_timer(uv_timer_t *t)
{
	dd_noise_attest *n = t->data;

	if (n->closing || n->quoting || n->minting)
		return;
	if (n->quote == NULL)
		ask_quote(n);
	else
		mint(n);
}

dd_err_t dd_noise_attest_start(uv_loop_t *loop, dd_attestor *att,
			       const dd_noise_attest_opts *o,
			       dd_noise_attest **out)
{
	dd_noise_attest *n = dd_calloc(1, sizeof *n);
	dd_err_t rc;

	*out = NULL;
	if (n == NULL)
		return DD_ERR_NOMEM;
	n->loop = loop;
	n->att = att;
	n->o = *o;
	n->retry_ms = o->retry_ms ? o->retry_ms : 5000;
	rc = dd_random_bytes(n->nonce, sizeof n->nonce);
	if (rc == DD_OK)
		rc = dd_binding_noise(n->nonce, sizeof n->nonce, o->pubkey, n->rd);
	if (rc) {
		dd_free(n);
		return rc;
	}
	uv_timer_init(loop, &n->timer);
	n->timer.data = n;
	/* Through the timer: nothing runs before this returns. */
	uv_timer_start(&n->timer, on_timer, 0, 0);
	*out = n;
	return DD_OK;
}

json_t *dd_noise_attest_json(const dd_noise_attest *n)
{
	char pub[65], nonce[2 * DD_NOISE_NONCE_LEN + 1];

	dd_hex_encode(n->o.pubkey, sizeof n->o.pubkey, pub);
	dd_hex_encode(n->nonce, sizeof n->nonce, nonce);
	/* No nonce without the quote it went into: nothing to check yet. */
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "pubkey_hex", pub,
			 "quote_b64", n->quote_b64 ? n->quote_b64 : "",
			 "nonce_hex", n->quote_b64 ? nonce : "",
			 "binding", DD_BINDING_NOISE_LABEL,
			 "ita_token", n->token ? n->token : "");
}

static void on_timer_closed(uv_handle_t *h)
{
	dd_noise_attest *n = h->data;

	n->timer_closed = 1;
	maybe_free(n);
}

void dd_noise_attest_free(dd_noise_attest *n)
{
	if (n == NULL || n->closing)
		return;
	n->closing = 1;
	uv_close((uv_handle_t *)&n->timer, on_timer_closed);
}
