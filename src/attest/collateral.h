/*
 * collateral.h: Intel PCS collateral for TDX quotes and its checks.
 *
 * Input is one JSON object with the fields of dcap-qvl's
 * QuoteCollateralV3 (what PCS / a PCCS serve, bundled):
 *   tcb_info, qe_identity            the signed JSON bodies, as strings,
 *                                    byte-exact as Intel signed them
 *   tcb_info_signature,              raw ECDSA r||s, 128 hex digits
 *   qe_identity_signature
 *   tcb_info_issuer_chain,           PEM: "Intel SGX TCB Signing" + root
 *   qe_identity_issuer_chain
 *   pck_crl_issuer_chain             PEM: the PCK CA + root
 *   root_ca_crl, pck_crl             DER, hex-encoded
 * Unknown fields are ignored. Parsing checks form only; nothing here is
 * trusted until dd_quote_verify() has checked the signatures, chains and
 * CRLs against the pinned root at its "now".
 *
 * What the checks do (called from dd_quote_verify, in this order):
 *   - root CRL signed by the pinned root; the PCK CRL issuer chain and
 *     both signing chains validate up to the root at now, with CRLs
 *   - TCB info (id "TDX", version 3) and QE identity (id "TD_QE",
 *     version 2) verify under the TCB signing key and are inside their
 *     issueDate..nextUpdate window at now
 *   - the QE report matches the QE identity (MRSIGNER, ISVPRODID,
 *     MISCSELECT and ATTRIBUTES under their masks) and its ISVSVN picks a
 *     QE TCB level
 *   - the TCB info matches the PCK certificate (FMSPC, PCE-ID) and the
 *     quote (MRSIGNERSEAM and SEAM attributes against the TDX module
 *     identity); the PCK's SGX components and PCESVN and the quote's
 *     TEE_TCB_SVN pick a TCB level; module, QE and (TD 1.5) relaunch
 *     rules converge its status as Intel's QVL does
 * TCB levels are taken in document order, newest first, as PCS serves
 * them (the order is covered by Intel's signature).
 */
#ifndef DD_ATTEST_COLLATERAL_H
#define DD_ATTEST_COLLATERAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "core/err.h"

/* Real collateral is about 16 KB. */
#define DD_COLLATERAL_MAX_LEN (1u << 20)

typedef struct dd_collateral dd_collateral;

/*
 * Parses the JSON described above. TOO_LARGE above DD_COLLATERAL_MAX_LEN,
 * INVALID for anything malformed (why, if not NULL, says which field),
 * NOMEM. Caller frees *out with dd_collateral_free().
 */
dd_err_t dd_collateral_parse(const void *json, size_t len, dd_collateral **out,
			     char *why, size_t why_len);

/* Accepts NULL. */
void dd_collateral_free(dd_collateral *c);

/* The root and PCK CRLs, borrowed, for PCK chain validation. */
STACK_OF(X509_CRL) *dd_collateral_crls(const dd_collateral *c);

/*
 * The collateral's own checks (first two bullets above) against root at
 * now. Records failures in res; sets DD_QV_CHECK_COLLATERAL and
 * res->collateral_expires on success.
 */
dd_err_t dd_collateral_check(const dd_collateral *c, X509 *root, int64_t now,
			     dd_quote_result *res);

/*
 * The QE identity and TCB level evaluation (last two bullets), on
 * collateral that dd_collateral_check() accepted. Sets the statuses,
 * tcb_date, advisory IDs and DD_QV_CHECK_QE_IDENTITY / _TCB. A converged
 * status of Revoked is recorded as DD_QV_TCB_REVOKED.
 */
dd_err_t dd_collateral_evaluate(const dd_collateral *c, const dd_quote *q,
				const dd_pck_ext *ext, dd_quote_result *res);

/*
 * The same evaluation on TCB info and QE identity JSON objects, without
 * signatures (exposed so tests can walk the status rules on crafted
 * levels). tcb_info and qe_identity are borrowed.
 */
dd_err_t dd_tcb_evaluate(const json_t *tcb_info, const json_t *qe_identity,
			 const dd_quote *q, const dd_pck_ext *ext,
			 dd_quote_result *res);

/* "2025-06-19T10:16:03Z" to seconds since the epoch; INVALID otherwise. */
dd_err_t dd_collateral_parse_time(const char *s, int64_t *out);

#endif
