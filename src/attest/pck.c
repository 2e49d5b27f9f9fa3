#include "attest/pck.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/cursor.h"

static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static X509 *root_cert; /* set once, never changed or freed */

static dd_err_t parse_root(X509 **out)
{
	uint8_t md[32];
	unsigned int n = 0;
	const uint8_t *p = dd_pck_root_der;
	X509 *x;

	if (EVP_Digest(dd_pck_root_der, sizeof dd_pck_root_der, md, &n,
		       EVP_sha256(), NULL) != 1 || n != sizeof md)
		return DD_ERR_CRYPTO;
	if (CRYPTO_memcmp(md, dd_pck_root_sha256, sizeof md) != 0)
		return DD_ERR_INTERNAL;
	x = d2i_X509(NULL, &p, (long)sizeof dd_pck_root_der);
	if (x == NULL)
		return DD_ERR_CRYPTO;
	*out = x;
	return DD_OK;
}

dd_err_t dd_pck_root(X509 **out)
{
	dd_err_t rc = DD_OK;

	*out = NULL;
	pthread_mutex_lock(&root_lock);
	/* Retried on the next call if parsing failed (out of memory). */
	if (root_cert == NULL)
		rc = parse_root(&root_cert);
	if (rc == DD_OK && X509_up_ref(root_cert) != 1)
		rc = DD_ERR_CRYPTO;
	if (rc == DD_OK)
		*out = root_cert;
	pthread_mutex_unlock(&root_lock);
	ERR_clear_error();
	return rc;
}

int dd_pck_der_is_root(const uint8_t *der, size_t len)
{
	return len == sizeof dd_pck_root_der &&
	       memcmp(der, dd_pck_root_der, len) == 0;
}

int dd_pck_is_root(X509 *cert)
{
	uint8_t *der = NULL;
	int n, same;

	n = i2d_X509(cert, &der);
	same = n > 0 && dd_pck_der_is_root(der, (size_t)n);
	OPENSSL_free(der);
	return same;
}

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define PEM_END "-----END CERTIFICATE-----\n"
#define PEM_COLS 64

static int take(dd_cursor *c, const char *lit)
{
	size_t n = strlen(lit);

	if (dd_cur_remaining(c) < n || memcmp(dd_cur_ptr(c), lit, n) != 0)
		return 0;
	return dd_cur_skip(c, n) == DD_OK;
}

/* The base64 lines of one certificate, joined, into text. */
static dd_err_t pem_body(dd_cursor *c, dd_buf *text)
{
	const uint8_t *line, *nl;
	size_t n, look;
	dd_err_t rc;

	for (;;) {
		look = dd_cur_remaining(c);
		if (look > PEM_COLS + 1)
			look = PEM_COLS + 1;
		nl = memchr(dd_cur_ptr(c), '\n', look);
		if (nl == NULL)
			return DD_ERR_INVALID;
		n = (size_t)(nl - dd_cur_ptr(c));
		if (n == 0)
			return DD_ERR_INVALID;
		rc = dd_cur_get_span(c, n + 1, &line);
		if (rc)
			return rc;
		rc = dd_buf_append(text, line, n);
		if (rc)
			return rc;
		if (take(c, PEM_END))
			return DD_OK;
		/* Only a full line may be followed by another. */
		if (n < PEM_COLS)
			return DD_ERR_INVALID;
	}
}

void dd_pck_ders_free(dd_pck_ders *d)
{
	dd_buf_free(&d->der);
	d->n = 0;
}

dd_err_t dd_pck_pem_split(const uint8_t *pem, size_t len, dd_pck_ders *out)
{
	dd_cursor c;
	dd_buf text;
	size_t before;
	dd_err_t rc = DD_OK;

	memset(out, 0, sizeof *out);
	dd_buf_init(&out->der, len + 1);
	dd_buf_init(&text, len + 1);
	dd_cur_init(&c, pem, len);
	while (rc == DD_OK && take(&c, PEM_BEGIN)) {
		if (out->n == DD_PCK_MAX_CHAIN) {
			rc = DD_ERR_INVALID;
			break;
		}
		dd_buf_reset(&text);
		rc = pem_body(&c, &text);
		if (rc)
			break;
		before = out->der.len;
		rc = dd_b64_decode(DD_B64_STD, (const char *)text.data,
				   text.len, &out->der);
		if (rc)
			break;
		out->off[out->n] = before;
		out->len[out->n] = out->der.len - before;
		out->n++;
	}
	if (rc == DD_OK && out->n == 0)
		rc = DD_ERR_INVALID;
	while (rc == DD_OK && dd_cur_remaining(&c) > 0) {
		uint8_t b = 1;

		rc = dd_cur_get_u8(&c, &b);
		if (rc == DD_OK && b != 0)
			rc = DD_ERR_INVALID;
	}
	dd_buf_free(&text);
	/* The caps are the input size: exceeding them means malformed. */
	if (rc == DD_ERR_TRUNCATED || rc == DD_ERR_TOO_LARGE)
		rc = DD_ERR_INVALID;
	return rc;
}

/*
 * Every quote's chain repeats the same few Intel CA certificates, and
 * OpenSSL 3.0 spends about as long decoding one certificate's public key
 * as verifying two signatures. Decoded CA certificates are therefore
 * memoised by the SHA-256 of their exact DER: decoding is a pure function
 * of those bytes, the memo is bounded, and an entry never changes or goes
 * away once in (like the pinned root). Leaves, different per machine,
 * are never kept. Validity, revocation and signatures are still checked
 * on every use by the callers.
 */
#define CA_MEMO 8

static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint8_t md[32];
	size_t len;
	X509 *cert;
} memo[CA_MEMO];
static size_t memo_n;

static X509 *memo_find(const uint8_t md[32], size_t len)
{
	X509 *x = NULL;

	pthread_mutex_lock(&memo_lock);
	for (size_t i = 0; i < memo_n && x == NULL; i++) {
		if (memo[i].len == len && memcmp(memo[i].md, md, 32) == 0 &&
		    X509_up_ref(memo[i].cert) == 1)
			x = memo[i].cert;
	}
	pthread_mutex_unlock(&memo_lock);
	return x;
}

static void memo_add(const uint8_t md[32], size_t len, X509 *x)
{
	pthread_mutex_lock(&memo_lock);
	if (memo_n < CA_MEMO && X509_check_ca(x) > 0 && X509_up_ref(x) == 1) {
		memcpy(memo[memo_n].md, md, 32);
		memo[memo_n].len = len;
		memo[memo_n].cert = x;
		memo_n++;
	}
	pthread_mutex_unlock(&memo_lock);
}

dd_err_t dd_pck_cert_from_der(const uint8_t *der, size_t len, X509 **out)
{
	const uint8_t *p = der;
	uint8_t *back = NULL, md[32];
	unsigned int mdlen = 0;
	X509 *x = NULL;
	int n;
	dd_err_t rc = DD_ERR_INVALID;

	*out = NULL;
	if (len == 0 || len > INT_MAX)
		return DD_ERR_INVALID;
	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return DD_ERR_CRYPTO;
	*out = memo_find(md, len);
	if (*out != NULL)
		return DD_OK;
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL || p != der + len)
		goto out;
	n = i2d_X509(x, &back);
	if (n < 0 || (size_t)n != len || memcmp(back, der, len) != 0)
		goto out;
	memo_add(md, len, x);
	*out = x;
	x = NULL; /* transferred */
	rc = DD_OK;
out:
	OPENSSL_free(back);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

/* The end of a PEM read loop is "no start line"; anything else is bad. */
static int clean_end(void)
{
	unsigned long e = ERR_peek_last_error();

	return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			  ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

static dd_err_t decode_lenient(const uint8_t *pem, size_t len,
			       STACK_OF(X509) *chain)
{
	BIO *in = NULL;
	X509 *x = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	if (len > INT_MAX)
		return DD_ERR_TOO_LARGE;
	ERR_clear_error();
	in = BIO_new_mem_buf(pem, (int)len);
	if (in == NULL)
		goto out;
	for (;;) {
		x = PEM_read_bio_X509(in, NULL, NULL, NULL);
		if (x == NULL)
			break;
		rc = DD_ERR_INVALID;
		if (sk_X509_num(chain) >= DD_PCK_MAX_CHAIN)
			goto out;
		rc = DD_ERR_NOMEM;
		if (sk_X509_push(chain, x) <= 0)
			goto out;
		x = NULL; /* transferred */
	}
	rc = clean_end() ? DD_OK : DD_ERR_INVALID;
out:
	X509_free(x);
	BIO_free(in);
	return rc;
}

static dd_err_t decode_canonical(const uint8_t *pem, size_t len,
				 STACK_OF(X509) *chain)
{
	dd_pck_ders ders;
	X509 *x = NULL;
	dd_err_t rc;

	rc = dd_pck_pem_split(pem, len, &ders);
	for (int i = 0; rc == DD_OK && i < ders.n; i++) {
		rc = dd_pck_cert_from_der(ders.der.data + ders.off[i],
					  ders.len[i], &x);
		if (rc == DD_OK && sk_X509_push(chain, x) <= 0)
			rc = DD_ERR_NOMEM;
		if (rc == DD_OK)
			x = NULL; /* transferred */
	}
	X509_free(x);
	dd_pck_ders_free(&ders);
	return rc;
}

dd_err_t dd_pck_chain_decode(const uint8_t *pem, size_t len, int canonical,
			     STACK_OF(X509) **out)
{
	STACK_OF(X509) *chain = NULL;
	dd_err_t rc;

	*out = NULL;
	chain = sk_X509_new_null();
	if (chain == NULL)
		return DD_ERR_NOMEM;
	if (canonical)
		rc = decode_canonical(pem, len, chain);
	else
		rc = decode_lenient(pem, len, chain);
	if (rc == DD_OK && sk_X509_num(chain) == 0)
		rc = DD_ERR_INVALID;
	if (rc == DD_OK) {
		*out = chain;
		chain = NULL; /* transferred */
	}
	ERR_clear_error();
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int dd_pck_subject_cn_is(X509 *cert, const char *cn)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	const X509_NAME_ENTRY *e;
	const ASN1_STRING *s;
	size_t n = strlen(cn);
	int idx;

	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return 0;
	/* A second CN would make "the" subject ambiguous. */
	if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
		return 0;
	e = X509_NAME_get_entry(name, idx);
	s = X509_NAME_ENTRY_get_data(e);
	return s != NULL && (size_t)ASN1_STRING_length(s) == n &&
	       memcmp(ASN1_STRING_get0_data(s), cn, n) == 0;
}

dd_err_t dd_pck_verify_chain(STACK_OF(X509) *chain, X509 *root,
			     STACK_OF(X509_CRL) *crls, int64_t now,
			     int *x509_err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_VERIFY_PARAM *param;
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	dd_err_t rc = DD_ERR_NOMEM;

	*x509_err = X509_V_OK;
	if (sk_X509_num(chain) < 1) {
		*x509_err = X509_V_ERR_UNSPECIFIED;
		return DD_ERR_CRYPTO;
	}
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	untrusted = sk_X509_new_null();
	if (store == NULL || ctx == NULL || untrusted == NULL)
		goto out;
	if (X509_STORE_add_cert(store, root) != 1)
		goto out;
	/* Borrowed pointers: untrusted is freed with sk_X509_free only. */
	for (int i = 1; i < sk_X509_num(chain); i++)
		if (sk_X509_push(untrusted, sk_X509_value(chain, i)) <= 0)
			goto out;
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0),
				untrusted) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, (time_t)now);
	X509_VERIFY_PARAM_set_depth(param, DD_PCK_MAX_CHAIN);
	if (crls != NULL) {
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
		X509_STORE_CTX_set0_crls(ctx, crls);
	}
	X509_VERIFY_PARAM_set_flags(param, flags);
	rc = DD_OK;
	if (X509_verify_cert(ctx) != 1) {
		*x509_err = X509_STORE_CTX_get_error(ctx);
		if (*x509_err == X509_V_OK)
			*x509_err = X509_V_ERR_UNSPECIFIED;
		rc = DD_ERR_CRYPTO;
	}
out:
	ERR_clear_error();
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* ---- SGX extension (DER through the cursor) ---- */

#define TAG_INTEGER 0x02
#define TAG_OCTETS 0x04
#define TAG_OID 0x06
#define TAG_ENUM 0x0a
#define TAG_SEQ 0x30

/* 1.2.840.113741.1.13.1, the SGX extension and prefix of its members. */
static const uint8_t sgx_oid[] = {
	0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01,
};

/* Members 1..5 (PPID, TCB, PCE-ID, FMSPC, SGX type) are all required. */
#define SEEN_ALL 0x1fu

/* One DER TLV: short tags only, minimal definite lengths up to 2^24. */
static dd_err_t der_next(dd_cursor *c, uint8_t *tag, dd_cursor *val)
{
	uint8_t t, b;
	size_t len = 0;
	dd_err_t rc;

	rc = dd_cur_get_u8(c, &t);
	if (rc)
		return rc;
	if ((t & 0x1f) == 0x1f)
		return DD_ERR_INVALID;
	rc = dd_cur_get_u8(c, &b);
	if (rc)
		return rc;
	if (b & 0x80) {
		unsigned n = b & 0x7f;

		if (n == 0 || n > 3)
			return DD_ERR_INVALID;
		for (unsigned i = 0; i < n; i++) {
			rc = dd_cur_get_u8(c, &b);
			if (rc)
				return rc;
			if (i == 0 && b == 0)
				return DD_ERR_INVALID;
			len = (len << 8) | b;
		}
		if (len < 0x80)
			return DD_ERR_INVALID;
	} else {
		len = b;
	}
	rc = dd_cur_sub(c, len, val);
	if (rc)
		return rc;
	*tag = t;
	return DD_OK;
}

static dd_err_t der_expect(dd_cursor *c, uint8_t want, dd_cursor *val)
{
	uint8_t tag;
	dd_err_t rc = der_next(c, &tag, val);

	if (rc)
		return rc;
	return tag == want ? DD_OK : DD_ERR_INVALID;
}

/* A non-negative, minimally encoded INTEGER/ENUMERATED up to max. */
static dd_err_t der_uint(dd_cursor *v, uint32_t max, uint32_t *out)
{
	size_t n = dd_cur_remaining(v);
	const uint8_t *p;
	uint32_t x = 0;
	dd_err_t rc;

	if (n == 0 || n > 4)
		return DD_ERR_INVALID;
	rc = dd_cur_get_span(v, n, &p);
	if (rc)
		return rc;
	if (p[0] & 0x80)
		return DD_ERR_INVALID;
	if (n > 1 && p[0] == 0 && !(p[1] & 0x80))
		return DD_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | p[i];
	if (x > max)
		return DD_ERR_INVALID;
	*out = x;
	return DD_OK;
}

static dd_err_t der_octets(dd_cursor *v, uint8_t *out, size_t n)
{
	if (dd_cur_remaining(v) != n)
		return DD_ERR_INVALID;
	return dd_cur_get_bytes(v, out, n);
}

/* Member number k when oid is sgx_oid + prefix + k, else 0. */
static unsigned member_of(dd_cursor *oid, const uint8_t *prefix,
			  size_t prefix_len)
{
	size_t n = dd_cur_remaining(oid);
	const uint8_t *p = dd_cur_ptr(oid);

	if (n != sizeof sgx_oid + prefix_len + 1)
		return 0;
	if (memcmp(p, sgx_oid, sizeof sgx_oid) != 0)
		return 0;
	if (prefix_len > 0 &&
	    memcmp(p + sizeof sgx_oid, prefix, prefix_len) != 0)
		return 0;
	/* Member numbers above 127 would need more bytes; none exist. */
	return p[n - 1] & 0x80 ? 0 : p[n - 1];
}

/* SEQUENCE { OID, value }: splits one member. */
static dd_err_t member(dd_cursor *seq, dd_cursor *oid, uint8_t *tag,
		       dd_cursor *val)
{
	dd_cursor item;
	dd_err_t rc;

	rc = der_expect(seq, TAG_SEQ, &item);
	if (rc)
		return rc;
	rc = der_expect(&item, TAG_OID, oid);
	if (rc)
		return rc;
	rc = der_next(&item, tag, val);
	if (rc)
		return rc;
	return dd_cur_remaining(&item) == 0 ? DD_OK : DD_ERR_INVALID;
}

/* TCB: components 1..16, PCESVN (17), CPUSVN (18), each exactly once. */
static dd_err_t parse_tcb(dd_cursor *seq, dd_pck_ext *out)
{
	static const uint8_t prefix[] = {0x02};
	uint32_t seen = 0, v;
	dd_cursor oid, val;
	uint8_t tag;
	unsigned k;
	dd_err_t rc;

	while (dd_cur_remaining(seq) > 0) {
		rc = member(seq, &oid, &tag, &val);
		if (rc)
			return rc;
		k = member_of(&oid, prefix, sizeof prefix);
		if (k == 0 || k > 18)
			continue; /* not ours: skipped, for later additions */
		if (seen & (1u << k))
			return DD_ERR_INVALID;
		seen |= 1u << k;
		if (k == 18) {
			if (tag != TAG_OCTETS)
				return DD_ERR_INVALID;
			rc = der_octets(&val, out->cpusvn, sizeof out->cpusvn);
		} else {
			if (tag != TAG_INTEGER)
				return DD_ERR_INVALID;
			rc = der_uint(&val, k == 17 ? 0xffff : 0xff, &v);
			if (rc == DD_OK && k == 17)
				out->pcesvn = (uint16_t)v;
			else if (rc == DD_OK)
				out->comp_svn[k - 1] = (uint8_t)v;
		}
		if (rc)
			return rc;
	}
	return seen == ((1u << 19) - 2) ? DD_OK : DD_ERR_INVALID;
}

static dd_err_t parse_member(unsigned k, uint8_t tag, dd_cursor *val,
			     dd_pck_ext *out)
{
	uint32_t v;
	dd_err_t rc;

	switch (k) {
	case 1:
		if (tag != TAG_OCTETS)
			return DD_ERR_INVALID;
		return der_octets(val, out->ppid, sizeof out->ppid);
	case 2:
		if (tag != TAG_SEQ)
			return DD_ERR_INVALID;
		return parse_tcb(val, out);
	case 3:
		if (tag != TAG_OCTETS)
			return DD_ERR_INVALID;
		return der_octets(val, out->pceid, sizeof out->pceid);
	case 4:
		if (tag != TAG_OCTETS)
			return DD_ERR_INVALID;
		return der_octets(val, out->fmspc, sizeof out->fmspc);
	default: /* 5: SGX type */
		if (tag != TAG_ENUM)
			return DD_ERR_INVALID;
		rc = der_uint(val, 0xff, &v);
		if (rc == DD_OK)
			out->sgx_type = (int)v;
		return rc;
	}
}

dd_err_t dd_pck_parse_ext_der(const uint8_t *der, size_t len, dd_pck_ext *out)
{
	dd_cursor c, seq, oid, val;
	uint32_t seen = 0;
	uint8_t tag;
	unsigned k;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	dd_cur_init(&c, der, len);
	rc = der_expect(&c, TAG_SEQ, &seq);
	if (rc == DD_OK && dd_cur_remaining(&c) != 0)
		rc = DD_ERR_INVALID;
	while (rc == DD_OK && dd_cur_remaining(&seq) > 0) {
		rc = member(&seq, &oid, &tag, &val);
		if (rc)
			break;
		k = member_of(&oid, NULL, 0);
		if (k == 0 || k > 5)
			continue; /* platform instance, configuration, ... */
		if (seen & (1u << (k - 1))) {
			rc = DD_ERR_INVALID;
			break;
		}
		seen |= 1u << (k - 1);
		rc = parse_member(k, tag, &val, out);
	}
	if (rc == DD_OK && seen != SEEN_ALL)
		rc = DD_ERR_INVALID;
	if (rc) {
		memset(out, 0, sizeof *out);
		/* Everything is inside one length-delimited extension. */
		return rc == DD_ERR_TRUNCATED ? DD_ERR_INVALID : rc;
	}
	return DD_OK;
}

dd_err_t dd_pck_parse_ext(X509 *cert, dd_pck_ext *out)
{
	ASN1_OBJECT *obj = NULL;
	const ASN1_OCTET_STRING *data;
	X509_EXTENSION *ext;
	int idx;
	dd_err_t rc = DD_ERR_NOMEM;

	memset(out, 0, sizeof *out);
	obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
	if (obj == NULL)
		goto out;
	idx = X509_get_ext_by_OBJ(cert, obj, -1);
	rc = DD_ERR_NOT_FOUND;
	if (idx < 0)
		goto out;
	rc = DD_ERR_INVALID;
	if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0)
		goto out;
	ext = X509_get_ext(cert, idx);
	data = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
	if (data == NULL)
		goto out;
	rc = dd_pck_parse_ext_der(ASN1_STRING_get0_data(data),
				  (size_t)ASN1_STRING_length(data), out);
out:
	ERR_clear_error();
	ASN1_OBJECT_free(obj);
	return rc;
}
