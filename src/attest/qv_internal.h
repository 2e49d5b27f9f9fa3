/*
 * qv_internal.h: what the parts of the quote verifier (quote_verify.c,
 * collateral.c, tcb.c) share. Not for use outside src/attest.
 */
#ifndef DD_ATTEST_QV_INTERNAL_H
#define DD_ATTEST_QV_INTERNAL_H

#include "attest/quote_verify.h"
#include "core/err.h"

/*
 * Records the failure in res (reason, detail, err) and returns res->err.
 * The first failure wins: a later call does not overwrite it.
 */
dd_err_t dd_qv_fail(dd_quote_result *res, dd_qv_reason reason,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Maps an X509_V_ERR_* from chain validation onto a reason (expired, not
 * yet valid, revoked, CRL problem, or other_reason) and records it with
 * what ("PCK chain", "TCB info issuer chain") and OpenSSL's text.
 */
dd_err_t dd_qv_chain_fail(dd_quote_result *res, int x509_err,
			  dd_qv_reason other_reason, const char *what);

/*
 * Appends id to res->advisory_ids unless already there. INVALID for an
 * implausible id (empty, longer than 63, outside [A-Za-z0-9._-]) or more
 * than DD_QV_MAX_ADVISORIES; NOMEM.
 */
#define DD_QV_MAX_ADVISORIES 256
dd_err_t dd_qv_add_advisory(dd_quote_result *res, const char *id);

#endif
