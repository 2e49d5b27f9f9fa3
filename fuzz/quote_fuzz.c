/*
 * quote_fuzz.c: the TDX quote parser and offline verifier on hostile
 * bytes.
 *
 * Every input is parsed, then verified twice at a fixed instant (inside
 * the validity of the real PCK chains in the seeds): once as production
 * does (simulated quotes refused) and once as dev mode does. Beyond
 * sanitizer findings, the harness traps on broken invariants: a parsed
 * quote's regions stay inside the input, the two simulated-marker checks
 * agree, production never accepts a simulated quote, and the result's
 * err always matches the return value.
 *
 * Seeds (fuzz/seeds/quote/): the three real quotes of tests/data/tdx
 * (binary) and two simulated quotes (v4, and v5 with a TD 1.5 body).
 */
#include <stddef.h>
#include <stdint.h>

#include "attest/quote.h"
#include "attest/quote_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2025-06-25T00:00:00Z, as in the unit tests. */
#define FUZZ_NOW 1750809600

static void check_view(const dd_quote *q, const uint8_t *data, size_t size)
{
	if (q->raw != data || q->raw_len != size || q->signed_len > size)
		__builtin_trap();
	if (q->padding_len > size)
		__builtin_trap();
	if (q->pck_chain != NULL &&
	    (q->pck_chain < data ||
	     q->pck_chain_len > size - (size_t)(q->pck_chain - data)))
		__builtin_trap();
	if (q->qe_auth_data != NULL &&
	    (q->qe_auth_data < data ||
	     q->qe_auth_data_len > size - (size_t)(q->qe_auth_data - data)))
		__builtin_trap();
}

static void run(const uint8_t *data, size_t size, int allow_simulated,
		int parsed, int simulated)
{
	dd_quote_verify_opts opts = {
		.now = FUZZ_NOW,
		.allow_simulated = allow_simulated,
	};
	dd_quote_result res;
	dd_err_t rc;

	rc = dd_quote_verify_bytes(data, size, &opts, &res);
	if (rc != res.err || (rc == DD_OK) != (res.reason == DD_QV_OK))
		__builtin_trap();
	if (!parsed && res.reason != DD_QV_MALFORMED)
		__builtin_trap();
	if (simulated && !allow_simulated &&
	    res.reason != DD_QV_SIMULATED_REFUSED)
		__builtin_trap();
	if (rc == DD_OK && res.simulated != simulated)
		__builtin_trap();
	dd_quote_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dd_quote q;
	int parsed, simulated = 0;

	parsed = dd_quote_parse(data, size, &q) == DD_OK;
	if (parsed) {
		check_view(&q, data, size);
		simulated = dd_quote_is_simulated(&q);
	}
	if (simulated != dd_quote_bytes_are_simulated(data, size))
		__builtin_trap();
	run(data, size, 0, parsed, simulated);
	run(data, size, 1, parsed, simulated);
	return 0;
}
