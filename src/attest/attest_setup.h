/*
 * attest_setup.h: a CP's or agent's attestation, built from the process
 * configuration (core/config.h): the quote provider DD_QUOTE_PROVIDER
 * names, the ITA client and verifier of DD_ITA_*, and the measurement
 * policy of DD_EXPECTED_* / DD_MEASUREMENT_ENFORCE. The modes call this;
 * the attest modules themselves never read the configuration.
 */
#ifndef DD_ATTEST_ATTEST_SETUP_H
#define DD_ATTEST_ATTEST_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "attest/attestor.h"
#include "attest/pinning.h"
#include "core/config.h"
#include "core/err.h"
#include "net/httpc.h"
#include "net/ndjson.h"

/*
 * The MRTD of simulated quotes: SHA-384("devopsdefender/simulated-td/v1"),
 * fixed so dev fleets can pin it like a real image.
 */
void dd_sim_mrtd(uint8_t out[48]);

/* The policy of DD_EXPECTED_*; INVALID with why on a malformed entry. */
dd_err_t dd_pin_policy_from_config(const dd_config *cfg, dd_pin_policy *out,
				   char *why, size_t why_len);

/*
 * Builds the attestor (not started). ee is borrowed (needed only when
 * the provider is ee) and must outlive the attestor; http likewise.
 * CONFIG/INVALID with why on a configuration the modules refuse.
 */
dd_err_t dd_attestor_from_config(const dd_config *cfg, uv_loop_t *loop,
				 dd_httpc *http, dd_ndjson *ee,
				 dd_attestor **out, char *why, size_t why_len);

#endif
