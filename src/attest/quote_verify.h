/*
 * quote_verify.h: offline verification of a parsed TDX quote.
 *
 * Steps, in order; the first that fails decides the result (all must
 * pass, so the order only decides which reason is reported, and puts the
 * cheap checks first):
 *   1. simulated quotes are refused unless allow_simulated (dev mode);
 *      an allowed one is checked for its own signature (step 2) and TD
 *      attributes (step 9) only
 *   2. the attestation key is a valid P-256 point, and its ECDSA-SHA256
 *      signature covers header, body descriptor (v5) and body
 *   3. the QE report binds that key: report_data[0..32) equals
 *      SHA-256(attestation key || QE auth data), report_data[32..64) is 0
 *   4. with collateral: its own checks (collateral.h): CRLs, signing
 *      chains, TCB info and QE identity signatures, validity at now
 *   5. the PCK chain is canonical PEM of exactly: leaf "Intel SGX PCK
 *      Certificate", an "Intel SGX PCK Platform CA" or "... Processor CA",
 *      and a byte-identical copy of the pinned Intel SGX Root CA
 *   6. the PCK leaf key (P-256) signs the 384-byte QE report
 *   7. the chain validates at opts->now up to the pinned root; with
 *      collateral every certificate is also checked against its CRL
 *   8. the leaf's SGX extension yields FMSPC, PCE-ID, PCESVN and the SGX
 *      TCB components
 *   9. TD attributes: a debug TD is refused unless allow_debug
 *  10. with collateral: the QE identity match and the TCB level match give
 *      a TCB status and advisory IDs; a converged Revoked is refused
 *
 * Without collateral, the steps prove that a quoting enclave holding a
 * PCK key certified by Intel (certificates valid at now) vouched for the
 * TD, but neither that the platform's TCB is current nor that no
 * certificate has been revoked: tcb_status is then DD_TCB_NOT_EVALUATED
 * and DD_QV_CHECK_CRL and DD_QV_CHECK_TCB are absent from checks.
 *
 * Everything is pure computation (no I/O, no clock, no global state), so
 * it may run on any thread. A quote is about 1 ms of CPU.
 */
#ifndef DD_ATTEST_QUOTE_VERIFY_H
#define DD_ATTEST_QUOTE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "attest/quote.h"
#include "core/err.h"

typedef struct dd_collateral dd_collateral;

/* Why verification stopped. DD_QV_OK only when every step passed. */
typedef enum {
	DD_QV_OK = 0,
	DD_QV_MALFORMED,            /* the bytes do not parse (see err) */
	DD_QV_SIMULATED_REFUSED,    /* simulated quote, not in dev mode */
	DD_QV_ATTESTATION_KEY,      /* attestation key is not a P-256 point */
	DD_QV_QUOTE_SIGNATURE,      /* header/body signature does not verify */
	DD_QV_QE_REPORT_DATA,       /* QE report does not bind the key */
	DD_QV_PCK_CHAIN_FORMAT,     /* chain is not 3 canonical PEM certs */
	DD_QV_PCK_CHAIN_UNTRUSTED,  /* does not lead to the pinned root */
	DD_QV_CERT_EXPIRED,         /* a certificate expired before now */
	DD_QV_CERT_NOT_YET_VALID,   /* a certificate starts after now */
	DD_QV_CERT_REVOKED,         /* a certificate is on its CA's CRL */
	DD_QV_CRL,                  /* a CRL is missing, bad or out of date */
	DD_QV_PCK_CERT,             /* leaf is not a usable PCK certificate */
	DD_QV_QE_REPORT_SIGNATURE,  /* PCK key did not sign the QE report */
	DD_QV_TD_DEBUG,             /* debug TD and allow_debug not set */
	DD_QV_COLLATERAL_FORMAT,    /* collateral malformed / wrong kind */
	DD_QV_COLLATERAL_SIGNATURE, /* TCB info / QE identity not signed */
	DD_QV_COLLATERAL_EXPIRED,   /* outside issueDate..nextUpdate */
	DD_QV_TCB_INFO_MISMATCH,    /* FMSPC / PCE-ID / TEE type differ */
	DD_QV_TDX_MODULE_MISMATCH,  /* MRSIGNERSEAM / SEAM attrs / module */
	DD_QV_QE_IDENTITY_MISMATCH, /* QE MRSIGNER / ISVPRODID / masks */
	DD_QV_TCB_NOT_SUPPORTED,    /* no TCB level matches the platform */
	DD_QV_TCB_REVOKED,          /* the matched TCB level is Revoked */
	DD_QV_NOMEM,
	DD_QV_INTERNAL,
	DD_QV__COUNT
} dd_qv_reason;

/* Statuses as Intel names them; NOT_EVALUATED without collateral. */
typedef enum {
	DD_TCB_NOT_EVALUATED = 0,
	DD_TCB_UP_TO_DATE,
	DD_TCB_SW_HARDENING_NEEDED,
	DD_TCB_CONFIGURATION_NEEDED,
	DD_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	DD_TCB_OUT_OF_DATE,
	DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	DD_TCB_TD_RELAUNCH_ADVISED,
	DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
	DD_TCB_REVOKED,
	DD_TCB__COUNT
} dd_tcb_status;

/* Bits of dd_quote_result.checks: the steps that passed. */
#define DD_QV_CHECK_QUOTE_SIG     (1u << 0) /* step 2 */
#define DD_QV_CHECK_QE_BINDING    (1u << 1) /* step 3 */
#define DD_QV_CHECK_PCK_CHAIN     (1u << 2) /* steps 5 and 7 */
#define DD_QV_CHECK_CRL           (1u << 3) /* step 7 with collateral */
#define DD_QV_CHECK_QE_REPORT_SIG (1u << 4) /* step 6 */
#define DD_QV_CHECK_PCK_EXT       (1u << 5) /* step 8 */
#define DD_QV_CHECK_TD_ATTRS      (1u << 6) /* step 9 */
#define DD_QV_CHECK_COLLATERAL    (1u << 7) /* step 4 */
#define DD_QV_CHECK_QE_IDENTITY   (1u << 8) /* step 10 */
#define DD_QV_CHECK_TCB           (1u << 9) /* step 10: level matched */

typedef struct dd_quote_verify_opts {
	/* Seconds since the epoch at which certificates, CRLs and collateral
	 * must be valid. Production passes time(NULL); tests a fixed time. */
	int64_t now;
	int allow_simulated;   /* dev mode only */
	int allow_debug;       /* accept TDs with the debug attribute */
	/* NULL: no TCB/CRL evaluation. Ignored for simulated quotes. */
	const dd_collateral *collateral;
} dd_quote_verify_opts;

#define DD_QV_DETAIL_LEN 256

typedef struct dd_quote_result {
	dd_qv_reason reason;
	dd_err_t err;            /* the same outcome as a dd_err_t */
	char detail[DD_QV_DETAIL_LEN]; /* one line: what failed and why */
	unsigned checks;         /* DD_QV_CHECK_* that passed */
	int simulated;           /* 1 for an (allowed) simulated quote */
	int td_debug;            /* the TD's debug attribute */

	/* From the PCK certificate (valid when checks has _PCK_EXT). */
	uint8_t fmspc[6];
	uint8_t pceid[2];
	uint16_t pcesvn;
	uint8_t cpusvn[16];

	/* From collateral (valid when checks has DD_QV_CHECK_TCB). */
	dd_tcb_status tcb_status;      /* the converged status */
	dd_tcb_status platform_status; /* TDX TCB level before QE/module */
	dd_tcb_status qe_status;       /* QE identity level */
	dd_tcb_status module_status;   /* TDX module level (UpToDate when
					* the quote has no module version) */
	char tcb_date[24];             /* matched TDX level's tcbDate */
	int64_t collateral_expires;    /* earliest nextUpdate */
	char **advisory_ids;           /* owned; n_advisory_ids entries */
	size_t n_advisory_ids;
} dd_quote_result;

/*
 * Verifies q as described above and fills *res (always, also on
 * failure; previous contents are overwritten, not freed). Returns
 * res->err: DD_OK when verified; FORBIDDEN for a refused simulated or
 * debug quote; INVALID for malformed collateral or a bad chain format;
 * CRYPTO for every failed check; NOMEM. Release res with
 * dd_quote_result_free() in every case.
 */
dd_err_t dd_quote_verify(const dd_quote *q, const dd_quote_verify_opts *opts,
			 dd_quote_result *res);

/* Parse, then verify; a parse error gives DD_QV_MALFORMED. */
dd_err_t dd_quote_verify_bytes(const uint8_t *data, size_t len,
			       const dd_quote_verify_opts *opts,
			       dd_quote_result *res);

/* Frees what res owns (advisory IDs); res itself is the caller's. */
void dd_quote_result_free(dd_quote_result *res);

/* Stable snake_case token ("quote_signature") for logs and JSON. */
const char *dd_qv_reason_name(dd_qv_reason r);

/* Intel's spelling ("UpToDate"); "NotEvaluated" for NOT_EVALUATED. */
const char *dd_tcb_status_name(dd_tcb_status s);

/* Inverse of dd_tcb_status_name for Intel's names; INVALID otherwise. */
dd_err_t dd_tcb_status_parse(const char *s, dd_tcb_status *out);

#endif
