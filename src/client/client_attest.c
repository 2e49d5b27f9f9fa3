#include "client/client_attest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "attest/binding.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"
#include "noise/noise.h"

static dd_err_t fail(dd_client_attest_result *res, dd_err_t rc,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static dd_err_t fail(dd_client_attest_result *res, dd_err_t rc,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->why, sizeof res->why, fmt, ap);
	va_end(ap);
	return rc;
}

static int lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* The bundle's fields, decoded; the quote appended to quote. */
static dd_err_t read_bundle(const json_t *health, uint8_t pub[32],
			    uint8_t nonce[32], dd_buf *quote,
			    dd_client_attest_result *res)
{
	const json_t *n = json_is_object(health) ?
			  json_object_get(health, "noise") : NULL;
	const char *binding, *pk, *nh, *qb;
	dd_err_t rc;

	if (!json_is_object(n))
		return fail(res, DD_ERR_INVALID, "bundle: /health has no "
			    "`noise` object (not an attested agent?)");
	if (dd_json_get_str(n, "binding", &binding) != DD_OK)
		return fail(res, DD_ERR_INVALID, "bundle: no `binding`");
	if (strcmp(binding, DD_BINDING_NOISE_LABEL) != 0)
		return fail(res, DD_ERR_INVALID, "bundle: unknown binding "
			    "'%.64s' (want %s)", binding,
			    DD_BINDING_NOISE_LABEL);
	if (dd_json_get_str(n, "pubkey_hex", &pk) != DD_OK ||
	    strlen(pk) != 64 || !lower_hex(pk, 64) ||
	    dd_hex_decode(pk, 64, pub, 32) != DD_OK)
		return fail(res, DD_ERR_INVALID, "bundle: `pubkey_hex` is not "
			    "64 lower-case hex digits");
	if (!dd_noise_pubkey_ok(pub))
		return fail(res, DD_ERR_INVALID, "bundle: `pubkey_hex` is a "
			    "low-order point");
	if (dd_json_get_str(n, "nonce_hex", &nh) != DD_OK || nh[0] == '\0')
		return fail(res, DD_ERR_INVALID, "bundle: no `nonce_hex` (the "
			    "agent has no quote yet; retry later)");
	if (strlen(nh) != 64 || dd_hex_decode(nh, 64, nonce, 32) != DD_OK)
		return fail(res, DD_ERR_INVALID, "bundle: `nonce_hex` is not "
			    "64 hex digits");
	if (dd_json_get_str(n, "quote_b64", &qb) != DD_OK || qb[0] == '\0')
		return fail(res, DD_ERR_INVALID, "bundle: no `quote_b64` (the "
			    "agent has no quote yet; retry later)");
	rc = dd_b64_decode(DD_B64_STD, qb, strlen(qb), quote);
	if (rc == DD_ERR_NOMEM)
		return fail(res, rc, "bundle: out of memory");
	if (rc)
		return fail(res, DD_ERR_INVALID, "bundle: `quote_b64` is not "
			    "standard base64 of at most %u bytes",
			    DD_QUOTE_MAX_LEN);
	return DD_OK;
}

static void mrtd_hex(const uint8_t *m, char out[2 * DD_CLIENT_MRTD_LEN + 1])
{
	dd_hex_encode(m, DD_CLIENT_MRTD_LEN, out);
	out[2 * DD_CLIENT_MRTD_LEN] = '\0';
}

static dd_err_t check_quote(const dd_buf *quote, const uint8_t pub[32],
			    const uint8_t nonce[32],
			    const dd_client_attest_opts *o,
			    dd_client_attest_result *res)
{
	dd_quote_verify_opts vo = {.now = o->now,
				   .allow_simulated = o->allow_simulated};
	char got[2 * DD_CLIENT_MRTD_LEN + 1], want[2 * DD_CLIENT_MRTD_LEN + 1];
	uint8_t want_rd[DD_REPORT_DATA_LEN];
	dd_quote_result qr;
	dd_quote q;
	dd_err_t rc;

	rc = dd_quote_parse((const uint8_t *)quote->data, quote->len, &q);
	if (rc)
		return fail(res, DD_ERR_CRYPTO, "quote: does not parse: %s",
			    dd_strerror(rc));
	rc = dd_quote_verify(&q, &vo, &qr);
	if (rc == DD_OK) {
		res->simulated = qr.simulated;
	} else if (qr.reason == DD_QV_SIMULATED_REFUSED) {
		rc = fail(res, DD_ERR_FORBIDDEN, "quote: simulated (a dev "
			  "fleet, no TDX); pass --allow-simulated to accept "
			  "it");
	} else {
		rc = fail(res, rc == DD_ERR_FORBIDDEN ? rc : DD_ERR_CRYPTO,
			  "quote: %s: %s", dd_qv_reason_name(qr.reason),
			  qr.detail);
	}
	dd_quote_result_free(&qr);
	if (rc)
		return rc;
	/* dd_binding_check is the registration binding: not this one. */
	if (dd_binding_noise(nonce, 32, pub, want_rd) != DD_OK ||
	    CRYPTO_memcmp(want_rd, q.body.report_data, sizeof want_rd) != 0)
		return fail(res, DD_ERR_CRYPTO, "binding: the quote's "
			    "REPORTDATA is not SHA-512(\"%s\" || nonce || "
			    "pubkey): the key is not the one this TD chose",
			    DD_BINDING_NOISE_LABEL);
	memcpy(res->mrtd, q.body.mrtd, DD_CLIENT_MRTD_LEN);
	if (o->expect_mrtd != NULL &&
	    memcmp(o->expect_mrtd, q.body.mrtd, DD_CLIENT_MRTD_LEN) != 0) {
		mrtd_hex(q.body.mrtd, got);
		mrtd_hex(o->expect_mrtd, want);
		return fail(res, DD_ERR_CRYPTO, "mrtd: the quote has %.16s..., "
			    "expected %.16s...", got, want);
	}
	return DD_OK;
}

dd_err_t dd_client_attest_check(const json_t *health,
				const dd_client_attest_opts *o,
				dd_client_attest_result *res)
{
	uint8_t pub[32], nonce[32];
	dd_buf quote;
	dd_err_t rc;

	memset(res, 0, sizeof *res);
	dd_buf_init(&quote, DD_QUOTE_MAX_LEN);
	rc = read_bundle(health, pub, nonce, &quote, res);
	if (!rc)
		rc = check_quote(&quote, pub, nonce, o, res);
	if (!rc)
		memcpy(res->pubkey, pub, sizeof pub);
	dd_buf_free(&quote);
	return rc;
}
