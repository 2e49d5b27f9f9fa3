/*
 * quote_sim.h: simulated TDX quotes, for development and tests only.
 *
 * A simulated quote has the real layout (header, TD body, signature
 * data) so every consumer exercises the same parser, but it is marked
 * twice so it can never pass for a real one: the QE vendor id is the
 * ASCII DD_QUOTE_SIM_VENDOR_ID and the certification data is type
 * DD_QUOTE_CERT_SIMULATED holding exactly DD_QUOTE_SIM_MARKER (no QE
 * report, no Intel chain). The ECDSA P-256 signature over header and body
 * is real, made with a key the caller holds (the public half sits in the
 * quote), so corruption is still detected. The verifier refuses these
 * quotes unless told it runs in dev mode (quote_verify.h).
 */
#ifndef DD_ATTEST_QUOTE_SIM_H
#define DD_ATTEST_QUOTE_SIM_H

#include <stdint.h>

#include <openssl/evp.h>

#include "attest/quote.h"
#include "core/buf.h"
#include "core/err.h"

typedef struct dd_quote_sim_params {
	uint16_t version;      /* 4 (also when 0) or 5 */
	uint16_t body_type;    /* v5 only: _TD10 (also when 0) or _TD15 */
	uint8_t user_data[20];
	dd_quote_body body;    /* copied field by field; body.type ignored */
} dd_quote_sim_params;

/*
 * Appends a simulated quote signed with key (a P-256 private key) to
 * out. INVALID for an unsupported version/body type, CRYPTO when key is
 * not a P-256 private key, TOO_LARGE past out's cap, NOMEM.
 */
dd_err_t dd_quote_sim_build(const dd_quote_sim_params *p, EVP_PKEY *key,
			    dd_buf *out);

#endif
