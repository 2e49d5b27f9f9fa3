/*
 * claims.h: the attestation facts inside a verified ITA token, in one
 * shape whichever token layout carried them.
 *
 * ITA v1 tokens are flat ("tdx_mrtd" at the top level); v2 tokens nest the
 * TDX claims under "tdx" (and say "ver": "2.x"). Both map here. Hex
 * measurements are checked for exact length and lower-cased, so they can
 * be compared as strings. The input must already be a verified claims
 * object (auth/jwt.h): this module decides nothing about trust.
 */
#ifndef DD_ATTEST_CLAIMS_H
#define DD_ATTEST_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define DD_MEAS_HEX 96        /* 48-byte measurements as hex */
#define DD_REPORT_DATA_HEX 128

typedef struct dd_att_claims {
	char attester_type[16];           /* "TDX" */
	char tcb_status[48];              /* "UpToDate", ... ("" if absent) */
	char mrtd[DD_MEAS_HEX + 1];
	char mrseam[DD_MEAS_HEX + 1];     /* "" if absent */
	char mrsignerseam[DD_MEAS_HEX + 1];
	char rtmr[4][DD_MEAS_HEX + 1];    /* "" if absent */
	char report_data[DD_REPORT_DATA_HEX + 1];
	int debuggable;                   /* 1, 0, or -1 when not stated */
	int64_t iat, exp;
	int v2;                           /* claims came from the "tdx" object */
} dd_att_claims;

/*
 * Fills out from a claims object. INVALID (with why naming the claim)
 * when attester_type is not TDX, tdx_mrtd or tdx_report_data is missing,
 * or any present measurement is not hex of the exact length.
 */
dd_err_t dd_att_claims_from_json(const json_t *claims, dd_att_claims *out,
				 char *why, size_t why_len);

#endif
