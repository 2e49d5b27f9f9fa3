/*
 * attest_bench: what the attestation checks cost, as ratios against the
 * one signature verification each of them cannot avoid, measured in the
 * same run on the same machine (docs/benchmarks.md). A ratio is reported,
 * never judged by the exit status: a loaded machine must not fail a build.
 *
 *   quote_verify     dd_quote_verify_bytes() on the three real quotes of
 *                    tests/data/tdx in turn (parse, then every offline
 *                    step of quote_verify.h) against one ECDSA P-256
 *                    EVP_DigestVerify over a message of a quote's size
 *   quote_collateral the same with the sample's Intel collateral parsed
 *                    once beforehand, as a service would cache it
 *                    (reported only; no target)
 *   ita_rs256        an ITA-shaped token through dd_jwt_verify() with a
 *   ita_ps384        JWKS and ITA's policy, the claims mapping and a
 *                    pinning check, against one EVP_DigestVerify of the
 *                    same signature over the same signing input with the
 *                    same key object
 *   oidc_rs256       a GitHub-Actions-shaped OIDC token (RSA 2048, as
 *                    GitHub's keys are, whatever --rsa-bits says) through
 *                    what dd_oidc_verify() does once its keys are cached:
 *                    dd_oidc_bearer(), dd_jwt_verify() with the OIDC
 *                    policy, dd_oidc_claims_parse(), dd_oidc_match() and
 *                    dd_replay_use() of a fresh jti (the replay set would
 *                    refuse the same token twice), against one
 *                    EVP_DigestVerify of the same signature
 *
 * Each round times every reference, then its subject, for a fixed number
 * of iterations; the figures are medians over rounds. References include
 * creating and initialising the EVP_MD_CTX, because a single signature
 * cannot be verified with less.
 *
 * Exit status: 0 whatever the ratios; 1 when a verification that must
 * succeed fails or setup fails (the figures would then time an error
 * path); 2 on bad usage.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attest/claims.h"
#include "attest/collateral.h"
#include "attest/pinning.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "auth/jwk.h"
#include "auth/jwt.h"
#include "auth/oidc.h"
#include "auth/principal.h"
#include "auth/replay.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/strutil.h"

#ifndef DD_BENCH_DATA
#define DD_BENCH_DATA "tests/data"
#endif

/* 2025-06-25T00:00:00Z: inside every PCK chain and the collateral
 * (tests/unit/tdx_data.h). */
#define TDX_NOW 1750809600
/* Any fixed instant will do for tokens signed in this run. */
#define JWT_NOW 1800000000
#define ITA_ISSUER "https://portal.trustauthority.intel.com"
#define GH_BITS 2048
/* As dd_oidc_new() keeps ids: about iat + max age + leeway from now. */
#define GH_KEEP_S 931

#define MAX_ROUNDS 101
#define MAX_QUOTES 3
#define WARMUP 3

#define OFFLINE_CHECKS                                                      \
	(DD_QV_CHECK_QUOTE_SIG | DD_QV_CHECK_QE_BINDING |                   \
	 DD_QV_CHECK_PCK_CHAIN | DD_QV_CHECK_QE_REPORT_SIG |                 \
	 DD_QV_CHECK_PCK_EXT | DD_QV_CHECK_TD_ATTRS)
#define ALL_CHECKS                                                          \
	(OFFLINE_CHECKS | DD_QV_CHECK_CRL | DD_QV_CHECK_COLLATERAL |        \
	 DD_QV_CHECK_QE_IDENTITY | DD_QV_CHECK_TCB)

static const char *const quote_files[MAX_QUOTES] = {
	"dcap-qvl-tdx_quote.bin", "edgeless-tdx-v4.bin", "tappd-tdx-v4.hex",
};

/* One timed operation; anything but DD_OK stops the benchmark. */
typedef dd_err_t (*op_fn)(void *ctx);

typedef struct measure {
	const char *name;
	const char *reference;   /* for the table */
	double target;           /* largest acceptable ratio; 0: none */
	op_fn ref, subj;
	void *ref_ctx, *subj_ctx;
	double ref_ns[MAX_ROUNDS], subj_ns[MAX_ROUNDS];
} measure;

/* One EVP_DigestVerify, the floor every subject is compared with. */
typedef struct sig_ref {
	EVP_PKEY *key;           /* public; owned only when own_key */
	int own_key;
	const EVP_MD *md;
	int pss;
	const uint8_t *msg;      /* borrowed */
	size_t msg_len;
	uint8_t *sig;            /* owned (OPENSSL_malloc) */
	size_t sig_len;
} sig_ref;

typedef struct quote_subj {
	const uint8_t *data[MAX_QUOTES]; /* borrowed */
	size_t len[MAX_QUOTES];
	size_t n, next;
	dd_quote_verify_opts opts;
	unsigned want_checks;
	dd_tcb_status want_tcb;
} quote_subj;

typedef struct jwt_subj {
	const char *token;       /* borrowed */
	size_t len;
	dd_jwt_policy pol;
	const dd_jwks *keys;
	const dd_pin_policy *pins;
} jwt_subj;

/* dd_oidc_verify() minus the loop; n gives each use its own jti. */
typedef struct oidc_subj {
	const char *authorization; /* borrowed */
	dd_jwt_policy pol;
	const dd_jwks *keys;
	dd_principal owner;
	dd_replay *seen;
	uint64_t n;
} oidc_subj;

/* One signed ITA-shaped token and what the reference needs from it. */
typedef struct token {
	const char *alg;
	char kid[97];
	EVP_PKEY *key;           /* private, owned */
	dd_buf text;             /* header.payload.signature */
	size_t input_len;        /* header.payload */
} token;

/* ---- timed operations ---- */

static dd_err_t sig_ref_op(void *p)
{
	sig_ref *r = p;
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (mctx == NULL)
		return DD_ERR_NOMEM;
	if (EVP_DigestVerifyInit(mctx, &pctx, r->md, NULL, r->key) != 1)
		goto out;
	if (r->pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, r->md) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
					      EVP_MD_get_size(r->md)) != 1))
		goto out;
	if (EVP_DigestVerify(mctx, r->sig, r->sig_len, r->msg,
			     r->msg_len) != 1)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

static dd_err_t quote_op(void *p)
{
	quote_subj *s = p;
	size_t i = s->next;
	dd_quote_result res;
	dd_err_t rc;

	s->next = (i + 1) % s->n;
	rc = dd_quote_verify_bytes(s->data[i], s->len[i], &s->opts, &res);
	if (rc) {
		fprintf(stderr, "attest_bench: %s: %s\n", quote_files[i],
			res.detail);
		goto out;
	}
	if (res.checks != s->want_checks || res.tcb_status != s->want_tcb) {
		fprintf(stderr, "attest_bench: %s: checks 0x%x, TCB %s\n",
			quote_files[i], res.checks,
			dd_tcb_status_name(res.tcb_status));
		rc = DD_ERR_INTERNAL;
	}
out:
	dd_quote_result_free(&res);
	return rc;
}

/* What dd_ita_verify() does once the keys are cached, minus the loop. */
static dd_err_t jwt_op(void *p)
{
	jwt_subj *s = p;
	json_t *claims = NULL;
	dd_jwt_result res;
	dd_att_claims ac;
	char why[256];
	dd_err_t rc;

	rc = dd_jwt_verify(s->token, s->len, &s->pol, s->keys, JWT_NOW,
			   &claims, &res);
	if (rc) {
		fprintf(stderr, "attest_bench: token refused: %s\n", res.why);
		goto out;
	}
	rc = dd_att_claims_from_json(claims, &ac, why, sizeof why);
	if (rc) {
		fprintf(stderr, "attest_bench: claims refused: %s\n", why);
		goto out;
	}
	if (dd_pin_check(s->pins, &ac, why, sizeof why) != DD_PIN_PASS) {
		fprintf(stderr, "attest_bench: pinning refused: %s\n", why);
		rc = DD_ERR_UNAUTHORIZED;
	}
out:
	json_decref(claims);
	return rc;
}

/*
 * The replay step gets a fresh jti and a clock one second on each time,
 * so the set holds what a busy verifier's does (GH_KEEP_S ids) and drops
 * one as it adds one; the token's own checks stay at JWT_NOW.
 */
static dd_err_t oidc_op(void *p)
{
	oidc_subj *s = p;
	json_t *claims = NULL;
	dd_jwt_result res;
	dd_oidc_claims c;
	char why[192], jti[DD_REPLAY_MAX_ID + 32];
	const char *tok;
	size_t len;
	int64_t now;
	dd_err_t rc;

	rc = dd_oidc_bearer(s->authorization, &tok, &len, why, sizeof why);
	if (rc)
		goto out;
	rc = dd_jwt_verify(tok, len, &s->pol, s->keys, JWT_NOW, &claims,
			   &res);
	if (rc == DD_OK)
		rc = dd_oidc_claims_parse(claims, &c, &res);
	if (rc) {
		snprintf(why, sizeof why, "%s", res.why);
		goto out;
	}
	if (dd_oidc_match(&c, &s->owner, 1, why, sizeof why) != 0) {
		rc = DD_ERR_FORBIDDEN;
		goto out;
	}
	s->n++;
	now = JWT_NOW + (int64_t)s->n;
	len = (size_t)snprintf(jti, sizeof jti, "%s-%llu", c.jti,
			       (unsigned long long)s->n);
	rc = dd_replay_use(s->seen, jti, len, now + GH_KEEP_S, now);
	if (rc)
		snprintf(why, sizeof why, "replay set: %s", dd_strerror(rc));
out:
	if (rc)
		fprintf(stderr, "attest_bench: OIDC token refused: %s\n", why);
	json_decref(claims);
	return rc;
}

/* ---- timing ---- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static dd_err_t time_op(op_fn fn, void *ctx, unsigned long n, double *ns)
{
	double t0 = now_ns();
	dd_err_t rc;

	for (unsigned long i = 0; i < n; i++) {
		rc = fn(ctx);
		if (rc)
			return rc;
	}
	*ns = (now_ns() - t0) / (double)n;
	return DD_OK;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof *v);
	qsort(s, n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- setup ---- */

static dd_err_t load_file(const char *dir, const char *name, uint8_t **out,
			  size_t *len)
{
	char path[1024];
	uint8_t *data = NULL, *bin = NULL;
	size_t n, cap = DD_COLLATERAL_MAX_LEN;
	FILE *f;
	dd_err_t rc = DD_ERR_IO;

	*out = NULL;
	snprintf(path, sizeof path, "%s/tdx/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "attest_bench: cannot open %s\n", path);
		return DD_ERR_IO;
	}
	data = dd_malloc(cap);
	if (data == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	n = fread(data, 1, cap, f);
	if (n == 0 || n == cap)
		goto out;
	if (strstr(name, ".hex") != NULL) {
		while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
			n--;
		rc = DD_ERR_NOMEM;
		bin = dd_malloc(n / 2 + 1);
		if (bin == NULL)
			goto out;
		rc = dd_hex_decode((const char *)data, n, bin, n / 2);
		if (rc)
			goto out;
		dd_free(data);
		data = bin;
		bin = NULL;
		n /= 2;
	}
	*out = data;
	*len = n;
	data = NULL; /* transferred */
	rc = DD_OK;
out:
	if (rc)
		fprintf(stderr, "attest_bench: cannot read %s\n", path);
	fclose(f);
	dd_free(bin);
	dd_free(data);
	return rc;
}

static dd_err_t sign(EVP_PKEY *key, const EVP_MD *md, int pss,
		     const void *msg, size_t len, uint8_t **sig,
		     size_t *sig_len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	*sig = NULL;
	if (mctx == NULL)
		return DD_ERR_NOMEM;
	if (EVP_DigestSignInit(mctx, &pctx, md, NULL, key) != 1)
		goto out;
	if (pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
					      EVP_MD_get_size(md)) != 1))
		goto out;
	if (EVP_DigestSign(mctx, NULL, sig_len, msg, len) != 1)
		goto out;
	*sig = OPENSSL_malloc(*sig_len);
	if (*sig == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestSign(mctx, *sig, sig_len, msg, len) != 1) {
		OPENSSL_free(*sig);
		*sig = NULL;
		goto out;
	}
	rc = DD_OK;
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* A public-only copy, so the reference holds what a verifier holds. */
static dd_err_t public_copy(EVP_PKEY *key, EVP_PKEY **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	*out = NULL;
	n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return DD_ERR_CRYPTO;
	p = der;
	*out = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	return *out != NULL ? DD_OK : DD_ERR_CRYPTO;
}

/* The reference for quotes: a P-256 key of this run signs msg. */
static dd_err_t ecdsa_ref_new(const uint8_t *msg, size_t len, sig_ref *r)
{
	EVP_PKEY *priv;
	dd_err_t rc;

	memset(r, 0, sizeof *r);
	r->md = EVP_sha256();
	r->msg = msg;
	r->msg_len = len;
	priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (priv == NULL)
		return DD_ERR_CRYPTO;
	rc = sign(priv, r->md, 0, msg, len, &r->sig, &r->sig_len);
	if (rc)
		goto out;
	rc = public_copy(priv, &r->key);
	r->own_key = 1;
out:
	EVP_PKEY_free(priv);
	return rc;
}

static void sig_ref_free(sig_ref *r)
{
	if (r->own_key)
		EVP_PKEY_free(r->key);
	OPENSSL_free(r->sig);
}

static dd_err_t b64url(dd_buf *out, const void *data, size_t n)
{
	return dd_b64_encode(DD_B64_URL, data, n, out);
}

static dd_err_t bn_b64(EVP_PKEY *key, const char *name, dd_buf *out)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	int n;
	dd_err_t rc = DD_ERR_CRYPTO;

	if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
		return rc;
	if (BN_num_bytes(bn) > (int)sizeof buf)
		goto out;
	n = BN_bn2bin(bn, buf);
	rc = b64url(out, buf, (size_t)n);
out:
	BN_free(bn);
	return rc;
}

/* The public JWK of t->key, with "alg" as ITA's JWKS carries it. */
static dd_err_t jwk_of(const token *t, json_t **out)
{
	dd_buf n, e;
	dd_err_t rc;

	*out = NULL;
	dd_buf_init(&n, 4096);
	dd_buf_init(&e, 64);
	rc = bn_b64(t->key, OSSL_PKEY_PARAM_RSA_N, &n);
	if (rc)
		goto out;
	rc = bn_b64(t->key, OSSL_PKEY_PARAM_RSA_E, &e);
	if (rc)
		goto out;
	*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA",
			 "use", "sig", "alg", t->alg, "kid", t->kid,
			 "n", dd_buf_str(&n), "e", dd_buf_str(&e));
	if (*out == NULL)
		rc = DD_ERR_NOMEM;
out:
	dd_buf_free(&n);
	dd_buf_free(&e);
	return rc;
}

static dd_err_t hex_field(const uint8_t *b, size_t n, json_t **out)
{
	char hex[2 * 64 + 1];

	dd_hex_encode(b, n, hex);
	*out = json_string(hex);
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

/*
 * The claims ITA puts in a v1 TDX token (flat "tdx_*" names), with the
 * measurements of quote q, so the mapping and pinning see real values
 * and the payload has a real token's size.
 */
static dd_err_t ita_claims(const dd_quote *q, char **out)
{
	static const struct {
		const char *name;
		size_t off, len;
	} meas[] = {
		{"tdx_mrseam", offsetof(dd_quote_body, mrseam), 48},
		{"tdx_mrsignerseam", offsetof(dd_quote_body, mrsignerseam), 48},
		{"tdx_mrtd", offsetof(dd_quote_body, mrtd), 48},
		{"tdx_mrconfigid", offsetof(dd_quote_body, mrconfigid), 48},
		{"tdx_mrowner", offsetof(dd_quote_body, mrowner), 48},
		{"tdx_mrownerconfig", offsetof(dd_quote_body, mrownerconfig),
		 48},
		{"tdx_rtmr0", offsetof(dd_quote_body, rtmr), 48},
		{"tdx_rtmr1", offsetof(dd_quote_body, rtmr) + 48, 48},
		{"tdx_rtmr2", offsetof(dd_quote_body, rtmr) + 96, 48},
		{"tdx_rtmr3", offsetof(dd_quote_body, rtmr) + 144, 48},
		{"tdx_report_data", offsetof(dd_quote_body, report_data), 64},
		{"tdx_seam_attributes",
		 offsetof(dd_quote_body, seam_attributes), 8},
		{"tdx_td_attributes", offsetof(dd_quote_body, td_attributes),
		 8},
		{"tdx_xfam", offsetof(dd_quote_body, xfam), 8},
		{"tdx_tee_tcb_svn", offsetof(dd_quote_body, tee_tcb_svn), 16},
	};
	const uint8_t *body = (const uint8_t *)&q->body;
	json_t *c, *v = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	c = json_pack("{s:s, s:s, s:s, s:s, s:[], s:b, s:s, s:s, s:s, s:s,"
		      " s:[s, s], s:[{s:s, s:s}], s:[], s:{}, s:I, s:I, s:I,"
		      " s:s}",
		      "iss", ITA_ISSUER,
		      "attester_type", "TDX",
		      "attester_tcb_status", "UpToDate",
		      "attester_tcb_date", "2024-03-13T00:00:00Z",
		      "attester_advisory_ids",
		      "tdx_is_debuggable", 0,
		      "dbgstat", "disabled",
		      "eat_profile",
		      ITA_ISSUER "/eat_profile.html",
		      "intuse", "generic",
		      "ver", "1.0.0",
		      "verifier_instance_ids",
		      "3f1d8e5c-2a47-4b9e-9c61-7d0e5b2a8f13",
		      "b8c2a9d4-61f0-4e3a-8d57-0c9e4f1b6a72",
		      "policy_ids_matched", "id",
		      "0d6c5a3e-8b21-4f7d-a9e0-52c1b7d4e386", "version", "v1",
		      "policy_ids_unmatched",
		      "policy_defined_claims",
		      "iat", (json_int_t)JWT_NOW - 5,
		      "nbf", (json_int_t)JWT_NOW - 5,
		      "exp", (json_int_t)JWT_NOW + 300,
		      "jti", "6a2f9d1c-4e8b-4c07-b3a5-9f1e2d7c8b40");
	if (c == NULL)
		return rc;
	for (size_t i = 0; i < sizeof meas / sizeof meas[0]; i++) {
		rc = hex_field(body + meas[i].off, meas[i].len, &v);
		if (rc)
			goto out;
		rc = DD_ERR_NOMEM;
		if (json_object_set_new(c, meas[i].name, v) != 0)
			goto out;
	}
	*out = json_dumps(c, JSON_COMPACT);
	rc = *out != NULL ? DD_OK : DD_ERR_NOMEM;
out:
	json_decref(c);
	return rc;
}

static const EVP_MD *alg_md(const char *alg)
{
	return strcmp(alg + 2, "256") == 0 ? EVP_sha256() : EVP_sha384();
}

/* Signs header and claims with t's key as a compact JWS into t->text. */
static dd_err_t token_sign(token *t, const char *header, const char *claims)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	dd_err_t rc;

	rc = b64url(&t->text, header, strlen(header));
	if (rc)
		return rc;
	rc = dd_buf_append_byte(&t->text, '.');
	if (rc)
		return rc;
	rc = b64url(&t->text, claims, strlen(claims));
	if (rc)
		return rc;
	t->input_len = t->text.len;
	rc = sign(t->key, alg_md(t->alg), t->alg[0] == 'P', t->text.data,
		  t->input_len, &sig, &sig_len);
	if (rc)
		goto out;
	rc = dd_buf_append_byte(&t->text, '.');
	if (rc)
		goto out;
	rc = b64url(&t->text, sig, sig_len);
out:
	OPENSSL_free(sig);
	return rc;
}

/* Generates t's key and signs claims as ITA would. */
static dd_err_t token_new(token *t, const char *alg, unsigned bits,
			  const char *claims)
{
	char header[256];
	uint8_t kid[48];
	dd_err_t rc;

	memset(t, 0, sizeof *t);
	t->alg = alg;
	dd_buf_init(&t->text, DD_JWT_MAX_LEN);
	/* ITA's kids are 48-byte hex digests. */
	rc = dd_random_bytes(kid, sizeof kid);
	if (rc)
		return rc;
	dd_hex_encode(kid, sizeof kid, t->kid);
	t->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (t->key == NULL)
		return DD_ERR_CRYPTO;
	snprintf(header, sizeof header,
		 "{\"alg\":\"%s\",\"jku\":\"%s/certs\",\"kid\":\"%s\","
		 "\"typ\":\"JWT\"}", alg, ITA_ISSUER, t->kid);
	return token_sign(t, header, claims);
}

/*
 * A GitHub Actions token: GitHub's header (typ, alg, x5t, kid) and the
 * claims its docs list, ids as strings, nbf 5 min before iat, exp 6 h
 * after (tests/data/oidc/README.md), signed with RSA 2048 as GitHub's are.
 */
static dd_err_t gh_token_new(token *t)
{
	uint8_t rnd[36];
	char hex[2 * sizeof rnd + 1], header[256], *claims = NULL;
	dd_buf x5t;
	json_t *c;
	dd_err_t rc;

	memset(t, 0, sizeof *t);
	t->alg = "RS256";
	dd_buf_init(&t->text, DD_JWT_MAX_LEN);
	dd_buf_init(&x5t, 64);
	rc = dd_random_bytes(rnd, sizeof rnd);
	if (rc)
		return rc;
	dd_hex_encode(rnd, sizeof rnd, hex);
	snprintf(t->kid, sizeof t->kid, "%.8s-%.4s-%.4s-%.4s-%.12s", hex,
		 hex + 8, hex + 12, hex + 16, hex + 20);
	rc = b64url(&x5t, rnd + 16, 20);
	if (rc)
		goto out;
	snprintf(header, sizeof header, "{\"typ\":\"JWT\",\"alg\":\"RS256\","
		 "\"x5t\":\"%s\",\"kid\":\"%s\"}", dd_buf_str(&x5t), t->kid);
	rc = DD_ERR_CRYPTO;
	t->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)GH_BITS);
	if (t->key == NULL)
		goto out;
	rc = DD_ERR_NOMEM;
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
		      " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
		      " s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
		      "jti", "4a576b35-ff09-41c5-af2c-ca62dd89b76a",
		      "sub", "repo:octo-org/octo-repo:ref:refs/heads/main",
		      "aud", DD_OIDC_DEFAULT_AUDIENCE,
		      "ref", "refs/heads/main", "ref_protected", "true",
		      "ref_type", "branch",
		      "sha", "7f93a73b8273af5d35fcd70661704c1cadc57054",
		      "repository", "octo-org/octo-repo",
		      "repository_id", "74", "repository_owner", "octo-org",
		      "repository_owner_id", "65",
		      "repository_visibility", "private",
		      "run_id", "9876543210", "run_number", "42",
		      "run_attempt", "1", "runner_environment", "github-hosted",
		      "actor", "octocat", "actor_id", "583231",
		      "workflow", "Deploy",
		      "workflow_ref", "octo-org/octo-repo/.github/workflows/"
		      "deploy.yml@refs/heads/main",
		      "job_workflow_ref", "octo-org/octo-repo/.github/"
		      "workflows/deploy.yml@refs/heads/main",
		      "job_workflow_sha",
		      "7f93a73b8273af5d35fcd70661704c1cadc57054",
		      "event_name", "workflow_dispatch", "head_ref", "",
		      "base_ref", "", "iss", DD_OIDC_DEFAULT_ISSUER,
		      "nbf", (json_int_t)JWT_NOW - 330,
		      "iat", (json_int_t)JWT_NOW - 30,
		      "exp", (json_int_t)JWT_NOW - 30 + 21600);
	claims = c != NULL ? json_dumps(c, JSON_COMPACT) : NULL;
	json_decref(c);
	if (claims == NULL)
		goto out;
	rc = token_sign(t, header, claims);
out:
	dd_free(claims);
	dd_buf_free(&x5t);
	return rc;
}

/* The JWKS holding the public keys of t[0..n), as text and parsed. */
static dd_err_t jwks_new(const token *t, size_t n, char **text,
			 dd_jwks **out)
{
	json_t *keys = json_array(), *k = NULL;
	char why[256];
	dd_err_t rc = DD_ERR_NOMEM;

	*text = NULL;
	*out = NULL;
	if (keys == NULL)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = jwk_of(&t[i], &k);
		if (rc)
			goto out;
		rc = DD_ERR_NOMEM;
		if (json_array_append_new(keys, k) != 0)
			goto out;
	}
	k = json_pack("{s:O}", "keys", keys);
	*text = k != NULL ? json_dumps(k, JSON_COMPACT) : NULL;
	json_decref(k);
	if (*text == NULL)
		goto out;
	rc = dd_jwks_parse(*text, strlen(*text), 0, out, why, sizeof why);
	if (rc)
		fprintf(stderr, "attest_bench: JWKS: %s\n", why);
out:
	json_decref(keys);
	return rc;
}

static void token_free(token *t)
{
	EVP_PKEY_free(t->key);
	dd_buf_free(&t->text);
}

/*
 * The reference for a token: the signature bytes of the token itself
 * over its signing input, verified with the very EVP_PKEY the JWKS
 * holds, so only the project's own work separates the two figures.
 */
static dd_err_t token_ref_new(const token *t, const dd_jwks *keys,
			      sig_ref *r)
{
	const char *s = dd_buf_str(&t->text) + t->input_len + 1;
	const dd_jwk *k = dd_jwks_find(keys, t->kid, strlen(t->kid));
	dd_buf sig;
	dd_err_t rc;

	memset(r, 0, sizeof *r);
	if (k == NULL)
		return DD_ERR_NOT_FOUND;
	r->key = dd_jwk_pkey(k);
	r->md = alg_md(t->alg);
	r->pss = t->alg[0] == 'P';
	r->msg = t->text.data;
	r->msg_len = t->input_len;
	dd_buf_init(&sig, 4096);
	rc = dd_b64_decode(DD_B64_URL, s, strlen(s), &sig);
	if (rc)
		goto out;
	r->sig = OPENSSL_memdup(sig.data, sig.len);
	r->sig_len = sig.len;
	if (r->sig == NULL)
		rc = DD_ERR_NOMEM;
out:
	dd_buf_free(&sig);
	return rc;
}

/* ---- options and report ---- */

typedef struct opts {
	unsigned long iterations;
	unsigned rounds;
	unsigned rsa_bits;
	const char *data;
	const char *only;        /* one measure, for profiling; NULL: all */
} opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: attest_bench [--iterations N] [--rounds R] "
		"[--rsa-bits 2048|3072|4096] [--data DIR]\n"
		"                    [--only quote_verify|quote_collateral|"
		"ita_rs256|ita_ps384|oidc_rs256]\n"
		"  N operations per round and side (default 300), R rounds "
		"(default 7, at most %d);\n"
		"  DIR holds tdx/ (default %s)\n", MAX_ROUNDS, DD_BENCH_DATA);
}

static dd_err_t num_arg(const char *s, uint64_t min, uint64_t max,
			uint64_t *out)
{
	dd_err_t rc = s != NULL ? dd_parse_u64(s, min, max, out)
				: DD_ERR_INVALID;

	if (rc)
		fprintf(stderr, "attest_bench: bad number '%s' (%llu..%llu)\n",
			s ? s : "", (unsigned long long)min,
			(unsigned long long)max);
	return rc;
}

static dd_err_t parse_opts(int argc, char **argv, opts *o)
{
	uint64_t v = 0;
	dd_err_t rc = DD_OK;

	o->iterations = 300;
	o->rounds = 7;
	o->rsa_bits = 3072;
	o->data = DD_BENCH_DATA;
	o->only = NULL;
	/* Every option but --help takes a value. */
	for (int i = 1; i < argc && rc == DD_OK; i += 2) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1]
							      : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--iterations") == 0) {
			rc = num_arg(val, 1, 10000000, &v);
			o->iterations = (unsigned long)v;
		} else if (strcmp(a, "--rounds") == 0) {
			rc = num_arg(val, 1, MAX_ROUNDS, &v);
			o->rounds = (unsigned)v;
		} else if (strcmp(a, "--rsa-bits") == 0) {
			rc = num_arg(val, 2048, 4096, &v);
			if (rc == DD_OK && v != 2048 && v != 3072 && v != 4096)
				rc = DD_ERR_INVALID;
			o->rsa_bits = (unsigned)v;
		} else if (strcmp(a, "--data") == 0 && val != NULL) {
			o->data = val;
		} else if (strcmp(a, "--only") == 0 && val != NULL) {
			o->only = val;
		} else {
			rc = DD_ERR_INVALID;
		}
	}
	if (rc)
		usage(stderr);
	return rc;
}

static void report(const measure *m, size_t n, const opts *o)
{
	double ref, subj, paired[MAX_ROUNDS];

	printf("attest_bench: %lu iterations x %u rounds, RSA %u, "
	       "medians over rounds\n\n", o->iterations, o->rounds,
	       o->rsa_bits);
	printf("%-17s %-22s %12s %14s %7s %7s  %s\n", "measure", "reference",
	       "ref ns/op", "subject ns/op", "ratio", "target", "verdict");
	for (size_t i = 0; i < n; i++) {
		char target[16] = "-";

		ref = median(m[i].ref_ns, o->rounds);
		subj = median(m[i].subj_ns, o->rounds);
		if (m[i].target > 0)
			snprintf(target, sizeof target, "<= %g", m[i].target);
		printf("%-17s %-22s %12.0f %14.0f %7.2f %7s  %s\n", m[i].name,
		       m[i].reference, ref, subj, subj / ref, target,
		       m[i].target <= 0 ? "reported only"
		       : subj / ref <= m[i].target ? "met" : "MISSED");
	}
	printf("\n{\"bench\":\"attest\",\"iterations\":%lu,\"rounds\":%u,"
	       "\"rsa_bits\":%u,\"results\":[", o->iterations, o->rounds,
	       o->rsa_bits);
	for (size_t i = 0; i < n; i++) {
		for (unsigned r = 0; r < o->rounds; r++)
			paired[r] = m[i].subj_ns[r] / m[i].ref_ns[r];
		ref = median(m[i].ref_ns, o->rounds);
		subj = median(m[i].subj_ns, o->rounds);
		printf("%s{\"name\":\"%s\",\"ref_ns\":%.0f,\"subject_ns\":%.0f,"
		       "\"ratio\":%.3f,\"ratio_paired\":%.3f,", i ? "," : "",
		       m[i].name, ref, subj, subj / ref,
		       median(paired, o->rounds));
		if (m[i].target > 0)
			printf("\"target\":%g,\"met\":%s}", m[i].target,
			       subj / ref <= m[i].target ? "true" : "false");
		else
			printf("\"target\":null,\"met\":null}");
	}
	printf("]}\n");
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	opts o;
	uint8_t *quotes[MAX_QUOTES] = {0}, *coll_json = NULL;
	size_t quote_len[MAX_QUOTES], coll_len = 0;
	dd_collateral *coll = NULL;
	dd_quote q0;
	char *claims = NULL, *jwks_text = NULL, *gh_text = NULL, why[256];
	char mrtd[2 * 48 + 1], rtmr_hex[4][2 * 48 + 1];
	const char *rtmrs[4];
	token tok[2], gh;
	dd_jwks *jwks = NULL, *gh_jwks = NULL;
	dd_pin_policy pins;
	sig_ref ecdsa_ref = {0}, tok_ref[2], gh_ref = {0};
	quote_subj qs, qcs;
	jwt_subj js[2];
	oidc_subj os = {0};
	dd_buf gh_auth;
	measure m[5];
	size_t nm = 0;
	int status = 1;
	dd_err_t rc;

	memset(tok, 0, sizeof tok);
	memset(&gh, 0, sizeof gh);
	memset(tok_ref, 0, sizeof tok_ref);
	dd_buf_init(&gh_auth, DD_JWT_MAX_LEN + 16);
	memset(m, 0, sizeof m);
	rc = parse_opts(argc, argv, &o);
	if (rc)
		return 2;
	/* Allocate as the service does (src/main.c). */
	dd_json_setup();

	/* Quotes: the subject cycles through all three. */
	memset(&qs, 0, sizeof qs);
	for (size_t i = 0; i < MAX_QUOTES; i++) {
		rc = load_file(o.data, quote_files[i], &quotes[i],
			       &quote_len[i]);
		if (rc)
			goto out;
		qs.data[i] = quotes[i];
		qs.len[i] = quote_len[i];
	}
	qs.n = MAX_QUOTES;
	qs.opts.now = TDX_NOW;
	qs.want_checks = OFFLINE_CHECKS;
	qs.want_tcb = DD_TCB_NOT_EVALUATED;
	rc = ecdsa_ref_new(quotes[0], quote_len[0], &ecdsa_ref);
	if (rc)
		goto out;
	m[nm++] = (measure){"quote_verify", "ECDSA P-256 verify", 8.0,
			    sig_ref_op, quote_op, &ecdsa_ref, &qs,
			    {0}, {0}};

	/* Collateral only fits the dcap-qvl sample. */
	rc = load_file(o.data, "dcap-qvl-tdx_quote_collateral.json",
		       &coll_json, &coll_len);
	if (rc)
		goto out;
	rc = dd_collateral_parse(coll_json, coll_len, &coll, why, sizeof why);
	if (rc) {
		fprintf(stderr, "attest_bench: collateral: %s\n", why);
		goto out;
	}
	qcs = qs;
	qcs.n = 1;
	qcs.opts.collateral = coll;
	qcs.want_checks = ALL_CHECKS;
	qcs.want_tcb = DD_TCB_UP_TO_DATE;
	m[nm++] = (measure){"quote_collateral", "ECDSA P-256 verify", 0,
			    sig_ref_op, quote_op, &ecdsa_ref, &qcs,
			    {0}, {0}};

	/* Tokens: claims from the first quote, pinned to its values. */
	rc = dd_quote_parse(quotes[0], quote_len[0], &q0);
	if (rc)
		goto out;
	rc = ita_claims(&q0, &claims);
	if (rc)
		goto out;
	rc = token_new(&tok[0], "RS256", o.rsa_bits, claims);
	if (rc)
		goto out;
	rc = token_new(&tok[1], "PS384", o.rsa_bits, claims);
	if (rc)
		goto out;
	rc = jwks_new(tok, 2, &jwks_text, &jwks);
	if (rc)
		goto out;
	dd_hex_encode(q0.body.mrtd, 48, mrtd);
	for (int i = 0; i < 4; i++) {
		dd_hex_encode(q0.body.rtmr[i], 48, rtmr_hex[i]);
		rtmrs[i] = rtmr_hex[i];
	}
	rc = dd_pin_policy_parse(mrtd, "UpToDate", rtmrs, 1, &pins, why,
				 sizeof why);
	if (rc) {
		fprintf(stderr, "attest_bench: pins: %s\n", why);
		goto out;
	}
	for (size_t i = 0; i < 2; i++) {
		rc = token_ref_new(&tok[i], jwks, &tok_ref[i]);
		if (rc)
			goto out;
		memset(&js[i], 0, sizeof js[i]);
		js[i].token = dd_buf_str(&tok[i].text);
		js[i].len = tok[i].text.len;
		/* ITA's policy (attest/ita_verify.c). */
		js[i].pol.algs = DD_JWA_ALL;
		js[i].pol.issuer = ITA_ISSUER;
		js[i].pol.leeway_s = 60;
		js[i].keys = jwks;
		js[i].pins = &pins;
		m[nm++] = (measure){i == 0 ? "ita_rs256" : "ita_ps384",
				    i == 0 ? "RSA PKCS#1 v1.5 verify"
					   : "RSA-PSS verify",
				    2.5, sig_ref_op, jwt_op, &tok_ref[i],
				    &js[i], {0}, {0}};
	}

	/* GitHub: its own key, JWKS, policy (auth/oidc.c) and principal. */
	rc = gh_token_new(&gh);
	if (rc)
		goto out;
	rc = jwks_new(&gh, 1, &gh_text, &gh_jwks);
	if (rc)
		goto out;
	rc = token_ref_new(&gh, gh_jwks, &gh_ref);
	if (rc)
		goto out;
	rc = dd_buf_appendf(&gh_auth, "Bearer %s", dd_buf_str(&gh.text));
	if (rc)
		goto out;
	rc = dd_principal_make(DD_PRINCIPAL_ORG, "octo-org", 65, &os.owner,
			       why, sizeof why);
	if (rc)
		goto out;
	rc = dd_replay_new(65536, &os.seen);
	if (rc)
		goto out;
	os.authorization = dd_buf_str(&gh_auth);
	os.pol.algs = DD_JWA_RS256;
	os.pol.issuer = DD_OIDC_DEFAULT_ISSUER;
	os.pol.audience = DD_OIDC_DEFAULT_AUDIENCE;
	os.pol.leeway_s = 60;
	os.pol.max_age_s = 900;
	os.pol.max_len = DD_OIDC_MAX_TOKEN;
	os.keys = gh_jwks;
	m[nm++] = (measure){"oidc_rs256", "RSA PKCS#1 v1.5 verify", 2.5,
			    sig_ref_op, oidc_op, &gh_ref, &os, {0}, {0}};

	if (o.only != NULL) {
		size_t j = 0;

		for (size_t i = 0; i < nm; i++)
			if (strcmp(m[i].name, o.only) == 0)
				m[j++] = m[i];
		if (j == 0) {
			fprintf(stderr, "attest_bench: no measure '%s'\n",
				o.only);
			status = 2;
			goto out;
		}
		nm = j;
	}
	/* Warm-up doubles as the check that every path verifies. */
	for (size_t i = 0; i < nm; i++) {
		double ns;

		rc = time_op(m[i].ref, m[i].ref_ctx, WARMUP, &ns);
		if (rc) {
			fprintf(stderr, "attest_bench: %s: reference does not "
				"verify\n", m[i].name);
			goto out;
		}
		rc = time_op(m[i].subj, m[i].subj_ctx, WARMUP, &ns);
		if (rc)
			goto out;
	}
	for (unsigned r = 0; r < o.rounds; r++) {
		for (size_t i = 0; i < nm; i++) {
			rc = time_op(m[i].ref, m[i].ref_ctx, o.iterations,
				     &m[i].ref_ns[r]);
			if (rc)
				goto out;
			rc = time_op(m[i].subj, m[i].subj_ctx, o.iterations,
				     &m[i].subj_ns[r]);
			if (rc)
				goto out;
		}
	}
	report(m, nm, &o);
	status = 0;
out:
	if (status == 1)
		fprintf(stderr, "attest_bench: failed (%s): the benchmark is "
			"broken, not slow\n", dd_strerror(rc));
	for (size_t i = 0; i < 2; i++) {
		sig_ref_free(&tok_ref[i]);
		token_free(&tok[i]);
	}
	sig_ref_free(&gh_ref);
	token_free(&gh);
	dd_replay_free(os.seen);
	dd_buf_free(&gh_auth);
	dd_jwks_free(gh_jwks);
	dd_free(gh_text);
	sig_ref_free(&ecdsa_ref);
	dd_jwks_free(jwks);
	dd_free(jwks_text);
	dd_free(claims);
	dd_collateral_free(coll);
	dd_free(coll_json);
	for (size_t i = 0; i < MAX_QUOTES; i++)
		dd_free(quotes[i]);
	return status;
}
