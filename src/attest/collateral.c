#include "attest/collateral.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

#include "attest/p256.h"
#include "attest/qv_internal.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"

/* A real CRL is a few KB; the PCK CRL grows with revocations. */
#define MAX_CRL_DER (256u * 1024u)

/* One signed document: exact bytes, signature, issuer chain, parsed. */
typedef struct signed_doc {
	char *text;
	size_t len;
	uint8_t sig[64];
	STACK_OF(X509) *chain;
	json_t *json;
} signed_doc;

struct dd_collateral {
	signed_doc tcb_info;
	signed_doc qe_identity;
	STACK_OF(X509) *pck_crl_chain;
	X509_CRL *root_crl;             /* borrowed from crls */
	X509_CRL *pck_crl;              /* borrowed from crls */
	STACK_OF(X509_CRL) *crls;       /* owns both CRLs */
};

static void say(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || n == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

static void doc_free(signed_doc *d)
{
	dd_free(d->text);
	sk_X509_pop_free(d->chain, X509_free);
	json_decref(d->json);
}

void dd_collateral_free(dd_collateral *c)
{
	if (c == NULL)
		return;
	doc_free(&c->tcb_info);
	doc_free(&c->qe_identity);
	sk_X509_pop_free(c->pck_crl_chain, X509_free);
	sk_X509_CRL_pop_free(c->crls, X509_CRL_free);
	dd_free(c);
}

STACK_OF(X509_CRL) *dd_collateral_crls(const dd_collateral *c)
{
	return c->crls;
}

static dd_err_t get_chain(const json_t *obj, const char *key,
			  STACK_OF(X509) **out)
{
	const char *s;
	dd_err_t rc;

	rc = dd_json_get_str(obj, key, &s);
	if (rc)
		return rc == DD_ERR_NOT_FOUND ? DD_ERR_INVALID : rc;
	return dd_pck_chain_decode((const uint8_t *)s, strlen(s), 0, out);
}

static dd_err_t get_sig(const json_t *obj, const char *key, uint8_t sig[64])
{
	const char *s;
	dd_err_t rc;

	rc = dd_json_get_str(obj, key, &s);
	if (rc)
		return rc == DD_ERR_NOT_FOUND ? DD_ERR_INVALID : rc;
	return dd_hex_decode(s, strlen(s), sig, 64);
}

/* Hex-encoded DER CRL, decoded through a capped scratch buffer. */
static dd_err_t get_crl(const json_t *obj, const char *key, X509_CRL **out)
{
	const char *s;
	const uint8_t *p;
	uint8_t *der = NULL;
	size_t n;
	X509_CRL *crl = NULL;
	dd_err_t rc;

	*out = NULL;
	rc = dd_json_get_str(obj, key, &s);
	if (rc)
		return rc == DD_ERR_NOT_FOUND ? DD_ERR_INVALID : rc;
	n = strlen(s);
	if (n == 0 || n % 2 != 0)
		return DD_ERR_INVALID;
	if (n / 2 > MAX_CRL_DER)
		return DD_ERR_TOO_LARGE;
	der = dd_malloc(n / 2);
	if (der == NULL)
		return DD_ERR_NOMEM;
	rc = dd_hex_decode(s, n, der, n / 2);
	if (rc)
		goto out;
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)(n / 2));
	rc = DD_ERR_INVALID;
	if (crl == NULL || p != der + n / 2)
		goto out;
	*out = crl;
	crl = NULL; /* transferred */
	rc = DD_OK;
out:
	X509_CRL_free(crl);
	dd_free(der);
	ERR_clear_error();
	return rc;
}

/* The signed body is a JSON string whose exact bytes were signed. */
static dd_err_t get_doc(const json_t *obj, const char *key,
			const char *sig_key, const char *chain_key,
			signed_doc *d)
{
	const char *s;
	char why[160];
	dd_err_t rc;

	rc = dd_json_get_str(obj, key, &s);
	if (rc)
		return rc == DD_ERR_NOT_FOUND ? DD_ERR_INVALID : rc;
	d->len = strlen(s);
	d->text = dd_strndup(s, d->len);
	if (d->text == NULL)
		return DD_ERR_NOMEM;
	rc = dd_json_parse(d->text, d->len, DD_COLLATERAL_MAX_LEN, &d->json,
			   why, sizeof why);
	if (rc)
		return rc;
	if (!json_is_object(d->json))
		return DD_ERR_INVALID;
	rc = get_sig(obj, sig_key, d->sig);
	if (rc)
		return rc;
	return get_chain(obj, chain_key, &d->chain);
}

dd_err_t dd_collateral_parse(const void *json, size_t len, dd_collateral **out,
			     char *why, size_t why_len)
{
	dd_collateral *c = NULL;
	json_t *root = NULL;
	const char *field = "collateral";
	dd_err_t rc;

	*out = NULL;
	say(why, why_len, "%s", "");
	rc = dd_json_parse(json, len, DD_COLLATERAL_MAX_LEN, &root, why,
			   why_len);
	if (rc)
		return rc;
	rc = DD_ERR_INVALID;
	if (!json_is_object(root))
		goto out;
	rc = DD_ERR_NOMEM;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		goto out;
	c->crls = sk_X509_CRL_new_null();
	if (c->crls == NULL)
		goto out;
	field = "tcb_info";
	rc = get_doc(root, "tcb_info", "tcb_info_signature",
		     "tcb_info_issuer_chain", &c->tcb_info);
	if (rc)
		goto out;
	field = "qe_identity";
	rc = get_doc(root, "qe_identity", "qe_identity_signature",
		     "qe_identity_issuer_chain", &c->qe_identity);
	if (rc)
		goto out;
	field = "pck_crl_issuer_chain";
	rc = get_chain(root, "pck_crl_issuer_chain", &c->pck_crl_chain);
	if (rc)
		goto out;
	field = "root_ca_crl";
	rc = get_crl(root, "root_ca_crl", &c->root_crl);
	if (rc)
		goto out;
	if (sk_X509_CRL_push(c->crls, c->root_crl) <= 0) {
		X509_CRL_free(c->root_crl);
		rc = DD_ERR_NOMEM;
		goto out;
	}
	field = "pck_crl";
	rc = get_crl(root, "pck_crl", &c->pck_crl);
	if (rc)
		goto out;
	if (sk_X509_CRL_push(c->crls, c->pck_crl) <= 0) {
		X509_CRL_free(c->pck_crl);
		rc = DD_ERR_NOMEM;
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
out:
	if (rc && rc != DD_ERR_NOMEM)
		say(why, why_len, "%s: %s", field, dd_strerror(rc));
	dd_collateral_free(c);
	json_decref(root);
	return rc;
}

/* Proleptic Gregorian days since 1970-01-01 (Howard Hinnant's method). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int num(const char *s, size_t at, size_t n, uint64_t max, uint64_t *v)
{
	return dd_parse_u64n(s + at, n, 0, max, v) == DD_OK;
}

dd_err_t dd_collateral_parse_time(const char *s, int64_t *out)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31};
	uint64_t y, mo, d, h, mi, se;

	/* YYYY-MM-DDTHH:MM:SSZ, exactly; PCS uses nothing else. */
	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return DD_ERR_INVALID;
	if (!num(s, 0, 4, 9999, &y) || !num(s, 5, 2, 12, &mo) ||
	    !num(s, 8, 2, 31, &d) || !num(s, 11, 2, 23, &h) ||
	    !num(s, 14, 2, 59, &mi) || !num(s, 17, 2, 59, &se))
		return DD_ERR_INVALID;
	if (y < 1970 || mo == 0 || d == 0 || d > mdays[mo - 1])
		return DD_ERR_INVALID;
	if (mo == 2 && d == 29 &&
	    !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return DD_ERR_INVALID;
	*out = days_from_civil((int64_t)y, (unsigned)mo, (unsigned)d) * 86400 +
	       (int64_t)(h * 3600 + mi * 60 + se);
	return DD_OK;
}

/* A signing chain up to root (with CRLs), then the document signature. */
static dd_err_t check_doc(const signed_doc *d, const char *what, X509 *root,
			  STACK_OF(X509_CRL) *crls, int64_t now,
			  dd_quote_result *res)
{
	char label[64];
	X509 *leaf = sk_X509_value(d->chain, 0);
	int x509_err = 0;
	dd_err_t rc;

	snprintf(label, sizeof label, "%s issuer chain", what);
	if (!dd_pck_subject_cn_is(leaf, "Intel SGX TCB Signing"))
		return dd_qv_fail(res, DD_QV_COLLATERAL_SIGNATURE,
				  "%s: signer is not \"Intel SGX TCB Signing\"",
				  label);
	rc = dd_pck_verify_chain(d->chain, root, crls, now, &x509_err);
	if (rc)
		return dd_qv_chain_fail(res, x509_err,
					DD_QV_COLLATERAL_SIGNATURE, label);
	rc = dd_p256_verify(X509_get0_pubkey(leaf), d->text, d->len, d->sig);
	if (rc)
		return dd_qv_fail(res, DD_QV_COLLATERAL_SIGNATURE,
				  "%s signature does not verify", what);
	return DD_OK;
}

/* id, version and the issueDate..nextUpdate window at now. */
static dd_err_t check_doc_header(const signed_doc *d, const char *what,
				 const char *want_id, uint64_t want_version,
				 int64_t now, int64_t *next,
				 dd_quote_result *res)
{
	const char *id, *issue_s, *next_s;
	int64_t issue, next_update;
	uint64_t version;

	if (dd_json_get_str(d->json, "id", &id) != DD_OK ||
	    dd_json_get_u64(d->json, "version", 0, 1000, &version) != DD_OK)
		return dd_qv_fail(res, DD_QV_COLLATERAL_FORMAT,
				  "%s lacks id/version", what);
	if (strcmp(id, want_id) != 0 || version != want_version)
		return dd_qv_fail(res, DD_QV_COLLATERAL_FORMAT,
				  "%s is %s v%llu, want %s v%llu", what, id,
				  (unsigned long long)version, want_id,
				  (unsigned long long)want_version);
	if (dd_json_get_str(d->json, "issueDate", &issue_s) != DD_OK ||
	    dd_json_get_str(d->json, "nextUpdate", &next_s) != DD_OK ||
	    dd_collateral_parse_time(issue_s, &issue) != DD_OK ||
	    dd_collateral_parse_time(next_s, &next_update) != DD_OK)
		return dd_qv_fail(res, DD_QV_COLLATERAL_FORMAT,
				  "%s has no valid issueDate/nextUpdate", what);
	if (now < issue)
		return dd_qv_fail(res, DD_QV_COLLATERAL_EXPIRED,
				  "%s issued after now (%s)", what, issue_s);
	if (now > next_update)
		return dd_qv_fail(res, DD_QV_COLLATERAL_EXPIRED,
				  "%s expired at %s", what, next_s);
	*next = next_update;
	return DD_OK;
}

/* Lowers *when to the CRL's nextUpdate (CRLs often run out first). */
static void crl_expiry(X509_CRL *crl, int64_t *when)
{
	const ASN1_TIME *t = X509_CRL_get0_nextUpdate(crl);
	struct tm tm;
	int64_t v;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	v = days_from_civil((int64_t)tm.tm_year + 1900,
			    (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday) *
		    86400 +
	    tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	if (v < *when)
		*when = v;
}

dd_err_t dd_collateral_check(const dd_collateral *c, X509 *root, int64_t now,
			     dd_quote_result *res)
{
	X509 *pck_ca = sk_X509_value(c->pck_crl_chain, 0);
	int64_t next_tcb = 0, next_qe = 0;
	int x509_err = 0;
	dd_err_t rc;

	if (X509_CRL_verify(c->root_crl, X509_get0_pubkey(root)) != 1) {
		ERR_clear_error();
		return dd_qv_fail(res, DD_QV_CRL,
				  "root CA CRL is not signed by the pinned "
				  "root");
	}
	rc = dd_pck_verify_chain(c->pck_crl_chain, root, c->crls, now,
				 &x509_err);
	if (rc)
		return dd_qv_chain_fail(res, x509_err, DD_QV_CRL,
					"PCK CRL issuer chain");
	if (X509_CRL_verify(c->pck_crl, X509_get0_pubkey(pck_ca)) != 1) {
		ERR_clear_error();
		return dd_qv_fail(res, DD_QV_CRL,
				  "PCK CRL is not signed by its issuer chain");
	}
	rc = check_doc(&c->tcb_info, "TCB info", root, c->crls, now, res);
	if (rc)
		return rc;
	rc = check_doc(&c->qe_identity, "QE identity", root, c->crls, now,
		       res);
	if (rc)
		return rc;
	rc = check_doc_header(&c->tcb_info, "TCB info", "TDX", 3, now,
			      &next_tcb, res);
	if (rc)
		return rc;
	rc = check_doc_header(&c->qe_identity, "QE identity", "TD_QE", 2, now,
			      &next_qe, res);
	if (rc)
		return rc;
	res->collateral_expires = next_tcb < next_qe ? next_tcb : next_qe;
	crl_expiry(c->root_crl, &res->collateral_expires);
	crl_expiry(c->pck_crl, &res->collateral_expires);
	res->checks |= DD_QV_CHECK_COLLATERAL;
	return DD_OK;
}

dd_err_t dd_collateral_evaluate(const dd_collateral *c, const dd_quote *q,
				const dd_pck_ext *ext, dd_quote_result *res)
{
	return dd_tcb_evaluate(c->tcb_info.json, c->qe_identity.json, q, ext,
			       res);
}
