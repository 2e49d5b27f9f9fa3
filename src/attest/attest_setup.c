#include "attest/attest_setup.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/strutil.h"

void dd_sim_mrtd(uint8_t out[48])
{
	static const char label[] = "devopsdefender/simulated-td/v1";
	unsigned int n = 48;

	/* SHA-384 of a constant cannot fail short of a broken libcrypto. */
	if (EVP_Digest(label, sizeof label - 1, out, &n, EVP_sha384(), NULL) != 1)
		memset(out, 0, 48);
}

dd_err_t dd_pin_policy_from_config(const dd_config *cfg, dd_pin_policy *out,
				   char *why, size_t why_len)
{
	const char *rtmrs[4];

	for (int i = 0; i < 4; i++)
		rtmrs[i] = cfg->expected_rtmr[i];
	return dd_pin_policy_parse(cfg->expected_mrtd, cfg->expected_tcb, rtmrs,
				   cfg->measurement_enforce, out, why, why_len);
}

static dd_err_t make_provider(const dd_config *cfg, uv_loop_t *loop,
			      dd_ndjson *ee, dd_quote_provider **out,
			      char *why, size_t why_len)
{
	uint8_t mrtd[48];
	dd_err_t rc;

	switch (cfg->quote_provider) {
	case DD_PROVIDER_TSM:
		rc = dd_quote_provider_tsm(loop, cfg->tsm_root, out);
		break;
	case DD_PROVIDER_SIM:
		/* config.c already refused sim outside dev; say it twice. */
		if (!cfg->dev) {
			snprintf(why, why_len, "simulated quotes need DD_DEV=1");
			return DD_ERR_FORBIDDEN;
		}
		dd_sim_mrtd(mrtd);
		if (cfg->sim_mrtd != NULL &&
		    (strlen(cfg->sim_mrtd) != 96 ||
		     dd_hex_decode(cfg->sim_mrtd, 96, mrtd, 48) != DD_OK)) {
			snprintf(why, why_len, "DD_SIM_MRTD must be 96 hex digits");
			return DD_ERR_CONFIG;
		}
		rc = dd_quote_provider_sim(loop, mrtd, out);
		break;
	default:
		if (ee == NULL) {
			snprintf(why, why_len, "no EasyEnclave client");
			return DD_ERR_CONFIG;
		}
		rc = dd_quote_provider_ee(loop, ee, out);
		break;
	}
	if (rc)
		snprintf(why, why_len, "quote provider: %s", dd_strerror(rc));
	return rc;
}

dd_err_t dd_attestor_from_config(const dd_config *cfg, uv_loop_t *loop,
				 dd_httpc *http, dd_ndjson *ee,
				 dd_attestor **out, char *why, size_t why_len)
{
	dd_pin_policy pins;
	dd_quote_provider *prov = NULL;
	dd_ita_opts io = {.base_url = cfg->ita_base_url,
			  .api_key = cfg->ita_api_key};
	dd_ita_verifier_opts vo = {.jwks_url = cfg->ita_jwks_url,
				   .issuer = cfg->ita_issuer, .pins = &pins,
				   .jwks_refresh_ms =
					   cfg->ita_jwks_refresh_secs * 1000};
	dd_attestor_opts ao = {.ita = &io, .verify = &vo,
			       .refresh_ms = cfg->ita_refresh_secs * 1000};
	dd_err_t rc;

	*out = NULL;
	why[0] = '\0';
	rc = dd_pin_policy_from_config(cfg, &pins, why, why_len);
	if (rc)
		return rc;
	rc = make_provider(cfg, loop, ee, &prov, why, why_len);
	if (rc)
		return rc;
	rc = dd_attestor_new(loop, http, prov, &ao, out);
	if (rc)
		snprintf(why, why_len, "attestation: %s", dd_strerror(rc));
	return rc;
}
