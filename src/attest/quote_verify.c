#include "attest/quote_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/p256.h"
#include "attest/pck.h"
#include "attest/qv_internal.h"
#include "core/alloc.h"

static const char *const reason_names[DD_QV__COUNT] = {
	[DD_QV_OK] = "ok",
	[DD_QV_MALFORMED] = "malformed",
	[DD_QV_SIMULATED_REFUSED] = "simulated_refused",
	[DD_QV_ATTESTATION_KEY] = "attestation_key",
	[DD_QV_QUOTE_SIGNATURE] = "quote_signature",
	[DD_QV_QE_REPORT_DATA] = "qe_report_data",
	[DD_QV_PCK_CHAIN_FORMAT] = "pck_chain_format",
	[DD_QV_PCK_CHAIN_UNTRUSTED] = "pck_chain_untrusted",
	[DD_QV_CERT_EXPIRED] = "cert_expired",
	[DD_QV_CERT_NOT_YET_VALID] = "cert_not_yet_valid",
	[DD_QV_CERT_REVOKED] = "cert_revoked",
	[DD_QV_CRL] = "crl",
	[DD_QV_PCK_CERT] = "pck_cert",
	[DD_QV_QE_REPORT_SIGNATURE] = "qe_report_signature",
	[DD_QV_TD_DEBUG] = "td_debug",
	[DD_QV_COLLATERAL_FORMAT] = "collateral_format",
	[DD_QV_COLLATERAL_SIGNATURE] = "collateral_signature",
	[DD_QV_COLLATERAL_EXPIRED] = "collateral_expired",
	[DD_QV_TCB_INFO_MISMATCH] = "tcb_info_mismatch",
	[DD_QV_TDX_MODULE_MISMATCH] = "tdx_module_mismatch",
	[DD_QV_QE_IDENTITY_MISMATCH] = "qe_identity_mismatch",
	[DD_QV_TCB_NOT_SUPPORTED] = "tcb_not_supported",
	[DD_QV_TCB_REVOKED] = "tcb_revoked",
	[DD_QV_NOMEM] = "nomem",
	[DD_QV_INTERNAL] = "internal",
};

static const char *const status_names[DD_TCB__COUNT] = {
	[DD_TCB_NOT_EVALUATED] = "NotEvaluated",
	[DD_TCB_UP_TO_DATE] = "UpToDate",
	[DD_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
	[DD_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
	[DD_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] =
		"ConfigurationAndSWHardeningNeeded",
	[DD_TCB_OUT_OF_DATE] = "OutOfDate",
	[DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] =
		"OutOfDateConfigurationNeeded",
	[DD_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
	[DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] =
		"TDRelaunchAdvisedConfigurationNeeded",
	[DD_TCB_REVOKED] = "Revoked",
};

const char *dd_qv_reason_name(dd_qv_reason r)
{
	if ((unsigned)r >= DD_QV__COUNT)
		return "unknown";
	return reason_names[r];
}

const char *dd_tcb_status_name(dd_tcb_status s)
{
	if ((unsigned)s >= DD_TCB__COUNT)
		return "Unknown";
	return status_names[s];
}

dd_err_t dd_tcb_status_parse(const char *s, dd_tcb_status *out)
{
	/* NotEvaluated is ours, never Intel's. */
	for (unsigned i = DD_TCB_UP_TO_DATE; i < DD_TCB__COUNT; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (dd_tcb_status)i;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}

static dd_err_t err_for(dd_qv_reason r)
{
	switch (r) {
	case DD_QV_OK:
		return DD_OK;
	case DD_QV_MALFORMED:
	case DD_QV_PCK_CHAIN_FORMAT:
	case DD_QV_COLLATERAL_FORMAT:
		return DD_ERR_INVALID;
	case DD_QV_SIMULATED_REFUSED:
	case DD_QV_TD_DEBUG:
		return DD_ERR_FORBIDDEN;
	case DD_QV_NOMEM:
		return DD_ERR_NOMEM;
	case DD_QV_INTERNAL:
		return DD_ERR_INTERNAL;
	default:
		return DD_ERR_CRYPTO;
	}
}

dd_err_t dd_qv_fail(dd_quote_result *res, dd_qv_reason reason,
		    const char *fmt, ...)
{
	va_list ap;

	if (res->reason != DD_QV_OK)
		return res->err;
	res->reason = reason;
	res->err = err_for(reason);
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof res->detail, fmt, ap);
	va_end(ap);
	return res->err;
}

static int is_crl_error(int e)
{
	switch (e) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		return 1;
	default:
		return 0;
	}
}

dd_err_t dd_qv_chain_fail(dd_quote_result *res, int x509_err,
			  dd_qv_reason other_reason, const char *what)
{
	dd_qv_reason r = other_reason;

	if (x509_err == X509_V_ERR_CERT_HAS_EXPIRED)
		r = DD_QV_CERT_EXPIRED;
	else if (x509_err == X509_V_ERR_CERT_NOT_YET_VALID)
		r = DD_QV_CERT_NOT_YET_VALID;
	else if (x509_err == X509_V_ERR_CERT_REVOKED)
		r = DD_QV_CERT_REVOKED;
	else if (is_crl_error(x509_err))
		r = DD_QV_CRL;
	else if (x509_err == X509_V_ERR_OUT_OF_MEM)
		r = DD_QV_NOMEM;
	return dd_qv_fail(res, r, "%s: %s", what,
			  X509_verify_cert_error_string(x509_err));
}

static int plausible_advisory(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

dd_err_t dd_qv_add_advisory(dd_quote_result *res, const char *id)
{
	char **grown;
	char *copy;

	if (!plausible_advisory(id))
		return DD_ERR_INVALID;
	for (size_t i = 0; i < res->n_advisory_ids; i++)
		if (strcmp(res->advisory_ids[i], id) == 0)
			return DD_OK;
	if (res->n_advisory_ids >= DD_QV_MAX_ADVISORIES)
		return DD_ERR_INVALID;
	copy = dd_strdup(id);
	if (copy == NULL)
		return DD_ERR_NOMEM;
	grown = dd_realloc(res->advisory_ids,
			   (res->n_advisory_ids + 1) * sizeof *grown);
	if (grown == NULL) {
		dd_free(copy);
		return DD_ERR_NOMEM;
	}
	grown[res->n_advisory_ids++] = copy;
	res->advisory_ids = grown;
	return DD_OK;
}

void dd_quote_result_free(dd_quote_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n_advisory_ids; i++)
		dd_free(res->advisory_ids[i]);
	dd_free(res->advisory_ids);
	res->advisory_ids = NULL;
	res->n_advisory_ids = 0;
}

/* Step 2: the attestation key signs header, descriptor and body. */
static dd_err_t check_quote_signature(const dd_quote *q, dd_quote_result *res)
{
	EVP_PKEY *ak = NULL;
	dd_err_t rc;

	rc = dd_p256_key_from_xy(q->attestation_key, &ak);
	if (rc) {
		rc = dd_qv_fail(res, DD_QV_ATTESTATION_KEY,
				"attestation key is not a P-256 public key");
		goto out;
	}
	rc = dd_p256_verify(ak, q->signed_data, q->signed_len, q->signature);
	if (rc) {
		rc = dd_qv_fail(res, DD_QV_QUOTE_SIGNATURE,
				"quote signature does not verify under the "
				"attestation key");
		goto out;
	}
	res->checks |= DD_QV_CHECK_QUOTE_SIG;
out:
	EVP_PKEY_free(ak);
	return rc;
}

/* Step 3: the QE report vouches for exactly this attestation key. */
static dd_err_t check_qe_binding(const dd_quote *q, dd_quote_result *res)
{
	static const uint8_t zero[32];
	uint8_t h[32];
	dd_err_t rc;

	rc = dd_sha256_2(q->attestation_key, sizeof q->attestation_key,
			 q->qe_auth_data, q->qe_auth_data_len, h);
	if (rc)
		return dd_qv_fail(res, DD_QV_INTERNAL, "SHA-256 failed");
	if (CRYPTO_memcmp(h, q->qe_report.report_data, 32) != 0)
		return dd_qv_fail(res, DD_QV_QE_REPORT_DATA,
				  "QE report data is not SHA-256(attestation "
				  "key || QE auth data)");
	if (CRYPTO_memcmp(zero, q->qe_report.report_data + 32, 32) != 0)
		return dd_qv_fail(res, DD_QV_QE_REPORT_DATA,
				  "QE report data has non-zero upper half");
	res->checks |= DD_QV_CHECK_QE_BINDING;
	return DD_OK;
}

/* One certificate of the split chain, appended to chain. */
static dd_err_t take_cert(const dd_pck_ders *d, int i, STACK_OF(X509) *chain,
			  dd_quote_result *res)
{
	X509 *x = NULL;
	dd_err_t rc;

	rc = dd_pck_cert_from_der(d->der.data + d->off[i], d->len[i], &x);
	if (rc)
		return dd_qv_fail(res, DD_QV_PCK_CHAIN_FORMAT,
				  "PCK chain certificate %d is not DER X.509",
				  i);
	if (sk_X509_push(chain, x) <= 0) {
		X509_free(x);
		return dd_qv_fail(res, DD_QV_NOMEM, "PCK chain");
	}
	return DD_OK;
}

/*
 * Steps 5-8. Certificates are parsed only as far as needed (OpenSSL 3.0
 * takes about 250 us per certificate): the root is compared as bytes and
 * the leaf is enough to check the QE report signature.
 */
static dd_err_t check_pck(const dd_quote *q, X509 *root,
			  const dd_quote_verify_opts *opts, dd_pck_ext *ext,
			  dd_quote_result *res)
{
	dd_pck_ders ders;
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	EVP_PKEY *leaf_key;
	X509 *leaf, *ca;
	int x509_err = 0;
	dd_err_t rc;

	rc = dd_pck_pem_split(q->pck_chain, q->pck_chain_len, &ders);
	if (rc) {
		rc = dd_qv_fail(res,
				rc == DD_ERR_NOMEM ? DD_QV_NOMEM
						   : DD_QV_PCK_CHAIN_FORMAT,
				"PCK chain is not canonical PEM certificates");
		goto out;
	}
	if (ders.n != 3) {
		rc = dd_qv_fail(res, DD_QV_PCK_CHAIN_FORMAT,
				"PCK chain has %d certificates, want 3",
				ders.n);
		goto out;
	}
	if (!dd_pck_der_is_root(ders.der.data + ders.off[2], ders.len[2])) {
		rc = dd_qv_fail(res, DD_QV_PCK_CHAIN_UNTRUSTED,
				"PCK chain root is not the pinned Intel SGX "
				"Root CA");
		goto out;
	}
	chain = sk_X509_new_null();
	if (chain == NULL) {
		rc = dd_qv_fail(res, DD_QV_NOMEM, "PCK chain");
		goto out;
	}
	rc = take_cert(&ders, 0, chain, res);
	if (rc)
		goto out;
	leaf = sk_X509_value(chain, 0);
	leaf_key = X509_get0_pubkey(leaf);
	if (!dd_pck_subject_cn_is(leaf, "Intel SGX PCK Certificate") ||
	    !dd_p256_is_p256(leaf_key)) {
		rc = dd_qv_fail(res, DD_QV_PCK_CERT,
				"PCK leaf is not an \"Intel SGX PCK "
				"Certificate\" with a P-256 key");
		goto out;
	}
	rc = dd_p256_verify(leaf_key, q->qe_report_raw,
			    sizeof q->qe_report_raw, q->qe_report_signature);
	if (rc) {
		rc = dd_qv_fail(res, DD_QV_QE_REPORT_SIGNATURE,
				"QE report signature does not verify under the "
				"PCK leaf key");
		goto out;
	}
	res->checks |= DD_QV_CHECK_QE_REPORT_SIG;

	rc = take_cert(&ders, 1, chain, res);
	if (rc)
		goto out;
	ca = sk_X509_value(chain, 1);
	if (!dd_pck_subject_cn_is(ca, "Intel SGX PCK Platform CA") &&
	    !dd_pck_subject_cn_is(ca, "Intel SGX PCK Processor CA")) {
		rc = dd_qv_fail(res, DD_QV_PCK_CHAIN_UNTRUSTED,
				"PCK intermediate is not an Intel SGX PCK "
				"Platform/Processor CA");
		goto out;
	}
	if (opts->collateral != NULL)
		crls = dd_collateral_crls(opts->collateral);
	rc = dd_pck_verify_chain(chain, root, crls, opts->now, &x509_err);
	if (rc) {
		rc = dd_qv_chain_fail(res, x509_err, DD_QV_PCK_CHAIN_UNTRUSTED,
				      "PCK chain");
		goto out;
	}
	res->checks |= DD_QV_CHECK_PCK_CHAIN;
	if (crls != NULL)
		res->checks |= DD_QV_CHECK_CRL;

	rc = dd_pck_parse_ext(leaf, ext);
	if (rc) {
		rc = dd_qv_fail(res, rc == DD_ERR_NOMEM ? DD_QV_NOMEM
							: DD_QV_PCK_CERT,
				"PCK leaf SGX extension: %s", dd_strerror(rc));
		goto out;
	}
	memcpy(res->fmspc, ext->fmspc, sizeof res->fmspc);
	memcpy(res->pceid, ext->pceid, sizeof res->pceid);
	memcpy(res->cpusvn, ext->cpusvn, sizeof res->cpusvn);
	res->pcesvn = ext->pcesvn;
	res->checks |= DD_QV_CHECK_PCK_EXT;
out:
	sk_X509_pop_free(chain, X509_free);
	dd_pck_ders_free(&ders);
	return rc;
}

/* Step 7: a debug TD's memory is readable by the host. */
static dd_err_t check_td_attrs(const dd_quote *q,
			       const dd_quote_verify_opts *opts,
			       dd_quote_result *res)
{
	res->td_debug = dd_quote_td_is_debug(q);
	if (res->td_debug && !opts->allow_debug)
		return dd_qv_fail(res, DD_QV_TD_DEBUG,
				  "TD has the debug attribute set");
	res->checks |= DD_QV_CHECK_TD_ATTRS;
	return DD_OK;
}

/* Step 1 for an allowed simulated quote: its own signature only. */
static dd_err_t verify_simulated(const dd_quote *q,
				 const dd_quote_verify_opts *opts,
				 dd_quote_result *res)
{
	dd_err_t rc;

	if (!opts->allow_simulated)
		return dd_qv_fail(res, DD_QV_SIMULATED_REFUSED,
				  "simulated quote refused outside dev mode");
	res->simulated = 1;
	rc = check_quote_signature(q, res);
	if (rc)
		return rc;
	return check_td_attrs(q, opts, res);
}

static dd_err_t verify_intel(const dd_quote *q,
			     const dd_quote_verify_opts *opts,
			     dd_quote_result *res)
{
	X509 *root = NULL;
	dd_pck_ext ext;
	dd_err_t rc;

	/* Cheapest first: a tampered quote mostly fails here. */
	rc = check_quote_signature(q, res);
	if (rc)
		goto out;
	rc = check_qe_binding(q, res);
	if (rc)
		goto out;
	rc = dd_pck_root(&root);
	if (rc) {
		rc = dd_qv_fail(res, DD_QV_INTERNAL,
				"pinned Intel SGX Root CA unusable: %s",
				dd_strerror(rc));
		goto out;
	}
	/* Stale or forged collateral is reported as such, not as a chain
	 * failure caused by its CRLs. */
	if (opts->collateral != NULL) {
		rc = dd_collateral_check(opts->collateral, root, opts->now,
					 res);
		if (rc)
			goto out;
	}
	rc = check_pck(q, root, opts, &ext, res);
	if (rc)
		goto out;
	rc = check_td_attrs(q, opts, res);
	if (rc)
		goto out;
	if (opts->collateral != NULL)
		rc = dd_collateral_evaluate(opts->collateral, q, &ext, res);
out:
	X509_free(root);
	return rc;
}

dd_err_t dd_quote_verify(const dd_quote *q, const dd_quote_verify_opts *opts,
			 dd_quote_result *res)
{
	dd_err_t rc;

	memset(res, 0, sizeof *res);
	if (dd_quote_is_simulated(q))
		rc = verify_simulated(q, opts, res);
	else
		rc = verify_intel(q, opts, res);
	/* OpenSSL's per-thread error queue is not ours to leave filled. */
	ERR_clear_error();
	if (rc && res->reason == DD_QV_OK)
		rc = dd_qv_fail(res, DD_QV_INTERNAL, "%s", dd_strerror(rc));
	return rc;
}

dd_err_t dd_quote_verify_bytes(const uint8_t *data, size_t len,
			       const dd_quote_verify_opts *opts,
			       dd_quote_result *res)
{
	dd_quote q;
	dd_err_t rc;

	rc = dd_quote_parse(data, len, &q);
	if (rc) {
		memset(res, 0, sizeof *res);
		(void)dd_qv_fail(res, DD_QV_MALFORMED,
				 "quote does not parse: %s", dd_strerror(rc));
		res->err = rc;
		return rc;
	}
	return dd_quote_verify(&q, opts, res);
}
