#include "attest/claims.h"

#include <stdio.h>
#include <string.h>

#include "core/strutil.h"

/* Copies a hex claim of exactly `len` digits, lower-cased. */
static dd_err_t hex_claim(const json_t *obj, const char *name, size_t len,
			  int required, char *out, char *why, size_t why_len)
{
	const json_t *v = json_object_get(obj, name);
	const char *s;

	out[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return DD_OK;
		snprintf(why, why_len, "claim %s is missing", name);
		return DD_ERR_INVALID;
	}
	s = json_string_value(v);
	if (s == NULL || json_string_length(v) != len) {
		snprintf(why, why_len, "claim %s must be %zu hex digits", name, len);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		int d = dd_hex_digit(s[i]);
		if (d < 0) {
			snprintf(why, why_len, "claim %s is not hex", name);
			return DD_ERR_INVALID;
		}
		out[i] = "0123456789abcdef"[d];
	}
	out[len] = '\0';
	return DD_OK;
}

static void text_claim(const json_t *obj, const char *name, char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(obj, name));

	snprintf(out, n, "%s", s ? s : "");
}

static int64_t time_claim(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return 0;
}

dd_err_t dd_att_claims_from_json(const json_t *claims, dd_att_claims *out,
				 char *why, size_t why_len)
{
	const json_t *tdx = json_object_get(claims, "tdx");
	const json_t *src = json_is_object(tdx) ? tdx : claims;
	static const char *const rtmr_names[4] = {"tdx_rtmr0", "tdx_rtmr1",
						  "tdx_rtmr2", "tdx_rtmr3"};
	const json_t *dbg;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	if (!json_is_object(claims)) {
		snprintf(why, why_len, "claims are not an object");
		return DD_ERR_INVALID;
	}
	out->v2 = src == tdx;
	text_claim(src, "attester_type", out->attester_type, sizeof out->attester_type);
	if (out->attester_type[0] == '\0')
		text_claim(claims, "attester_type", out->attester_type,
			   sizeof out->attester_type);
	if (strcmp(out->attester_type, "TDX") != 0) {
		snprintf(why, why_len, "attester_type is not TDX");
		return DD_ERR_INVALID;
	}
	text_claim(src, "attester_tcb_status", out->tcb_status, sizeof out->tcb_status);
	rc = hex_claim(src, "tdx_mrtd", DD_MEAS_HEX, 1, out->mrtd, why, why_len);
	if (rc == DD_OK)
		rc = hex_claim(src, "tdx_report_data", DD_REPORT_DATA_HEX, 1,
			       out->report_data, why, why_len);
	if (rc == DD_OK)
		rc = hex_claim(src, "tdx_mrseam", DD_MEAS_HEX, 0, out->mrseam, why,
			       why_len);
	if (rc == DD_OK)
		rc = hex_claim(src, "tdx_mrsignerseam", DD_MEAS_HEX, 0,
			       out->mrsignerseam, why, why_len);
	for (int i = 0; rc == DD_OK && i < 4; i++)
		rc = hex_claim(src, rtmr_names[i], DD_MEAS_HEX, 0, out->rtmr[i], why,
			       why_len);
	if (rc)
		return rc;
	dbg = json_object_get(src, "tdx_is_debuggable");
	out->debuggable = json_is_boolean(dbg) ? json_is_true(dbg) : -1;
	out->iat = time_claim(claims, "iat");
	out->exp = time_claim(claims, "exp");
	return DD_OK;
}
