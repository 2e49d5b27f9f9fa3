#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "tdx_data.h"

/* ---- a small synthetic PKI (the pinned root cannot sign for tests) ---- */

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
		      EVP_PKEY *issuer_key, long serial, int64_t from,
		      int64_t to, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)from);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)to);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
	add_ext(x, issuer ? issuer : x, NID_authority_key_identifier,
		"keyid:always");
	add_ext(x, x, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, x, NID_key_usage,
		ca ? "critical,keyCertSign,cRLSign"
		   : "critical,digitalSignature");
	assert_true(X509_sign(x, issuer_key ? issuer_key : key,
			      EVP_sha256()) > 0);
	return x;
}

static X509_CRL *new_crl(X509 *issuer, EVP_PKEY *key, long revoked,
			 int64_t from, int64_t to)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	ASN1_TIME_set(t, (time_t)from);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, (time_t)to);
	X509_CRL_set1_nextUpdate(crl, t);
	if (revoked > 0) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *serial = ASN1_INTEGER_new();

		ASN1_INTEGER_set(serial, revoked);
		X509_REVOKED_set_serialNumber(r, serial);
		ASN1_TIME_set(t, (time_t)from);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(serial);
	}
	ASN1_TIME_free(t);
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
				"keyid:always");
	assert_non_null(e);
	X509_CRL_add_ext(crl, e, -1);
	X509_EXTENSION_free(e);
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	return crl;
}

#define T0 1700000000   /* certificates start here */
#define T1 1900000000   /* and end here */
#define NOW 1750000000

typedef struct pki {
	EVP_PKEY *root_key, *ca_key, *leaf_key;
	X509 *root, *ca, *leaf;
	STACK_OF(X509) *chain; /* leaf, ca */
} pki;

static void pki_new(pki *p, int64_t leaf_from, int64_t leaf_to)
{
	p->root_key = new_key();
	p->ca_key = new_key();
	p->leaf_key = new_key();
	p->root = new_cert("Test Root", p->root_key, NULL, NULL, 1, T0, T1, 1);
	p->ca = new_cert("Test CA", p->ca_key, p->root, p->root_key, 2, T0,
			 T1, 1);
	p->leaf = new_cert("Test Leaf", p->leaf_key, p->ca, p->ca_key, 3,
			   leaf_from, leaf_to, 0);
	p->chain = sk_X509_new_null();
	sk_X509_push(p->chain, p->leaf);
	sk_X509_push(p->chain, p->ca);
}

static void pki_free(pki *p)
{
	sk_X509_free(p->chain);
	X509_free(p->leaf);
	X509_free(p->ca);
	X509_free(p->root);
	EVP_PKEY_free(p->leaf_key);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->root_key);
}

static int chain_error(pki *p, X509 *root, STACK_OF(X509_CRL) *crls,
		       int64_t now)
{
	int e = -1;
	dd_err_t rc = dd_pck_verify_chain(p->chain, root, crls, now, &e);

	assert_true(rc == DD_OK ? e == X509_V_OK : e != X509_V_OK);
	return e;
}

static void chain_validation(void **state)
{
	pki p, other;
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	X509_CRL *root_crl, *ca_crl, *ca_crl_revoking, *old_crl;

	(void)state;
	pki_new(&p, T0, T1);
	pki_new(&other, T0, T1);
	assert_int_equal(chain_error(&p, p.root, NULL, NOW), X509_V_OK);
	assert_int_equal(chain_error(&p, p.root, NULL, T0 - 1),
			 X509_V_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(chain_error(&p, p.root, NULL, T1 + 1),
			 X509_V_ERR_CERT_HAS_EXPIRED);
	assert_int_equal(chain_error(&p, other.root, NULL, NOW),
			 X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

	root_crl = new_crl(p.root, p.root_key, 0, NOW - 100, NOW + 100);
	ca_crl = new_crl(p.ca, p.ca_key, 0, NOW - 100, NOW + 100);
	ca_crl_revoking = new_crl(p.ca, p.ca_key, 3, NOW - 100, NOW + 100);
	old_crl = new_crl(p.ca, p.ca_key, 0, NOW - 100, NOW - 50);

	/* Every certificate needs its issuer's CRL, the root included. */
	sk_X509_CRL_push(crls, root_crl);
	assert_int_equal(chain_error(&p, p.root, crls, NOW),
			 X509_V_ERR_UNABLE_TO_GET_CRL);
	sk_X509_CRL_push(crls, ca_crl);
	assert_int_equal(chain_error(&p, p.root, crls, NOW), X509_V_OK);
	(void)sk_X509_CRL_pop(crls);
	sk_X509_CRL_push(crls, ca_crl_revoking);
	assert_int_equal(chain_error(&p, p.root, crls, NOW),
			 X509_V_ERR_CERT_REVOKED);
	(void)sk_X509_CRL_pop(crls);
	sk_X509_CRL_push(crls, old_crl);
	assert_int_equal(chain_error(&p, p.root, crls, NOW),
			 X509_V_ERR_CRL_HAS_EXPIRED);
	(void)sk_X509_CRL_pop(crls);
	(void)sk_X509_CRL_pop(crls);
	/* Without the root's CRL (only the CA's). */
	sk_X509_CRL_push(crls, ca_crl);
	assert_int_equal(chain_error(&p, p.root, crls, NOW),
			 X509_V_ERR_UNABLE_TO_GET_CRL);

	sk_X509_CRL_free(crls);
	X509_CRL_free(root_crl);
	X509_CRL_free(ca_crl);
	X509_CRL_free(ca_crl_revoking);
	X509_CRL_free(old_crl);
	pki_free(&other);
	pki_free(&p);
}

/* The compiled-in anchor is the certificate we say it is. */
static void pinned_root_identity(void **state)
{
	X509 *root = NULL, *again = NULL;
	uint8_t md[32];
	unsigned int n = 0;
	char cn[64], o[64];
	int64_t from = 0, to = 0;
	struct tm tm;

	(void)state;
	assert_int_equal(EVP_Digest(dd_pck_root_der, DD_PCK_ROOT_DER_LEN, md,
				    &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(md, dd_pck_root_sha256, 32);
	assert_int_equal(dd_pck_root(&root), DD_OK);
	assert_int_equal(dd_pck_root(&again), DD_OK);
	assert_ptr_equal(root, again); /* parsed once, shared */
	X509_free(again);
	assert_true(dd_pck_is_root(root));
	assert_true(dd_pck_subject_cn_is(root, "Intel SGX Root CA"));
	X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_commonName,
				  cn, sizeof cn);
	X509_NAME_get_text_by_NID(X509_get_subject_name(root),
				  NID_organizationName, o, sizeof o);
	assert_string_equal(cn, "Intel SGX Root CA");
	assert_string_equal(o, "Intel Corporation");
	assert_int_equal(X509_check_issued(root, root), X509_V_OK);
	assert_int_equal(X509_verify(root, X509_get0_pubkey(root)), 1);
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(root), &tm), 1);
	from = (int64_t)timegm(&tm);
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(root), &tm), 1);
	to = (int64_t)timegm(&tm);
	assert_int_equal(from, 1526899510); /* 2018-05-21T10:45:10Z */
	assert_int_equal(to, 2524607999);   /* 2049-12-31T23:59:59Z */
	assert_false(dd_pck_subject_cn_is(root, "Intel SGX Root"));
	X509_free(root);
}

static char *pem_of(STACK_OF(X509) *certs, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	for (int i = 0; i < sk_X509_num(certs); i++)
		assert_int_equal(PEM_write_bio_X509(b, sk_X509_value(certs, i)),
				 1);
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 16);
	memcpy(out, data, (size_t)n);
	out[n] = 0;
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static dd_err_t split(const char *pem, size_t len)
{
	dd_pck_ders d;
	dd_err_t rc = dd_pck_pem_split((const uint8_t *)pem, len, &d);

	dd_pck_ders_free(&d);
	return rc;
}

/* Builds an edited copy of pem: replaces the first from with to. */
static char *edit(const char *pem, const char *from, const char *to,
		  size_t *len)
{
	const char *hit = strstr(pem, from);
	size_t n = strlen(pem), fl = strlen(from), tl = strlen(to);
	char *out = malloc(n + tl + 1);

	assert_non_null(hit);
	memcpy(out, pem, (size_t)(hit - pem));
	memcpy(out + (hit - pem), to, tl);
	memcpy(out + (hit - pem) + tl, hit + fl, n - (size_t)(hit - pem) - fl);
	*len = n - fl + tl;
	out[*len] = 0;
	return out;
}

static void pem_split_is_strict(void **state)
{
	pki p;
	size_t len, n;
	char *pem, *e;
	dd_pck_ders d;
	STACK_OF(X509) *got = NULL;
	uint8_t *der = NULL;
	int dl;

	(void)state;
	pki_new(&p, T0, T1);
	pem = pem_of(p.chain, &len);
	assert_int_equal(dd_pck_pem_split((uint8_t *)pem, len, &d), DD_OK);
	assert_int_equal(d.n, 2);
	dl = i2d_X509(p.leaf, &der);
	assert_int_equal(d.len[0], (size_t)dl);
	assert_memory_equal(d.der.data + d.off[0], der, (size_t)dl);
	OPENSSL_free(der);
	dd_pck_ders_free(&d);
	assert_int_equal(dd_pck_chain_decode((uint8_t *)pem, len, 1, &got),
			 DD_OK);
	assert_int_equal(sk_X509_num(got), 2);
	assert_int_equal(X509_cmp(sk_X509_value(got, 1), p.ca), 0);
	sk_X509_pop_free(got, X509_free);

	/* NUL terminators are fine, anything else after the end is not. */
	pem[len] = 0;
	assert_int_equal(split(pem, len + 1), DD_OK);
	pem[len] = '\n';
	assert_int_equal(split(pem, len + 1), DD_ERR_INVALID);
	pem[len] = ' ';
	assert_int_equal(split(pem, len + 1), DD_ERR_INVALID);
	pem[len] = 0;
	assert_int_equal(split(pem, 0), DD_ERR_INVALID);
	assert_int_equal(split(pem, len - 1), DD_ERR_INVALID);

	e = edit(pem, "\n", "\r\n", &n); /* after BEGIN */
	assert_int_equal(split(e, n), DD_ERR_INVALID);
	assert_int_equal(dd_pck_chain_decode((uint8_t *)e, n, 0, &got), DD_OK);
	sk_X509_pop_free(got, X509_free);
	free(e);
	e = edit(pem, "-----\n", "-----\n\n", &n);
	assert_int_equal(split(e, n), DD_ERR_INVALID);
	free(e);
	e = edit(pem, "-----BEGIN", "x-----BEGIN", &n);
	assert_int_equal(split(e, n), DD_ERR_INVALID);
	free(e);
	e = edit(pem, "-----END CERTIFICATE-----\n", "", &n);
	assert_int_equal(split(e, n), DD_ERR_INVALID);
	free(e);
	/* A line broken early is no longer canonical PEM. */
	{
		const char *body = strstr(pem, "\n") + 1;
		size_t at = (size_t)(body - pem) + 40;

		e = malloc(len + 2);
		memcpy(e, pem, at);
		e[at] = '\n';
		memcpy(e + at + 1, pem + at, len - at + 1);
		assert_int_equal(split(e, len + 1), DD_ERR_INVALID);
		free(e);
	}
	/* More certificates than any chain may have. */
	{
		STACK_OF(X509) *many = sk_X509_new_null();

		for (int i = 0; i < DD_PCK_MAX_CHAIN + 1; i++)
			sk_X509_push(many, p.leaf);
		e = pem_of(many, &n);
		assert_int_equal(split(e, n), DD_ERR_INVALID);
		assert_int_equal(dd_pck_chain_decode((uint8_t *)e, n, 0, &got),
				 DD_ERR_INVALID);
		free(e);
		sk_X509_free(many);
	}
	assert_int_equal(dd_pck_chain_decode((const uint8_t *)"junk", 4, 0,
					     &got), DD_ERR_INVALID);
	free(pem);
	pki_free(&p);
}

/* Base64 whose unused bits are set decodes to the same DER elsewhere. */
static void pem_split_refuses_lenient_base64(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	const char *pem = (const char *)raw + 1258;
	size_t plen = 3678;
	char *copy = malloc(plen);
	STACK_OF(X509) *chain = NULL;
	char *tail;

	(void)state;
	memcpy(copy, pem, plen);
	assert_int_equal(split(copy, plen), DD_OK);
	/* The root ends "...qI=": 'I' and 'K' differ only in unused bits. */
	tail = strstr(copy, "qI=\n-----END");
	assert_non_null(tail);
	tail[1] = 'K';
	assert_int_equal(split(copy, plen), DD_ERR_INVALID);
	/* OpenSSL's own reader would have taken it, root and all. */
	assert_int_equal(dd_pck_chain_decode((uint8_t *)copy, plen - 1, 0,
					     &chain), DD_OK);
	assert_int_equal(sk_X509_num(chain), 3);
	assert_true(dd_pck_is_root(sk_X509_value(chain, 2)));
	sk_X509_pop_free(chain, X509_free);
	free(copy);
	free(raw);
}

static void der_must_round_trip(void **state)
{
	pki p;
	uint8_t *der = NULL, *ber;
	X509 *x = NULL;
	int n;

	(void)state;
	pki_new(&p, T0, T1);
	n = i2d_X509(p.leaf, &der);
	assert_true(n > 200 && der[0] == 0x30 && der[1] == 0x82);
	assert_int_equal(dd_pck_cert_from_der(der, (size_t)n, &x), DD_OK);
	X509_free(x);
	assert_int_equal(dd_pck_cert_from_der(der, (size_t)n - 1, &x),
			 DD_ERR_INVALID);
	assert_null(x);
	/* The same certificate with a non-minimal outer length (BER). */
	ber = malloc((size_t)n + 2);
	ber[0] = 0x30;
	ber[1] = 0x83;
	ber[2] = 0x00;
	memcpy(ber + 3, der + 2, (size_t)n - 2);
	assert_int_equal(dd_pck_cert_from_der(ber, (size_t)n + 1, &x),
			 DD_ERR_INVALID);
	memcpy(ber, der, (size_t)n);
	ber[n] = 0;
	assert_int_equal(dd_pck_cert_from_der(ber, (size_t)n + 1, &x),
			 DD_ERR_INVALID);
	assert_int_equal(dd_pck_cert_from_der(ber, 0, &x), DD_ERR_INVALID);
	free(ber);
	OPENSSL_free(der);
	pki_free(&p);
}

/* ---- the SGX extension ---- */

typedef struct der {
	uint8_t b[2048];
	size_t n;
} der;

static void put_tlv(der *d, uint8_t tag, const uint8_t *v, size_t n)
{
	d->b[d->n++] = tag;
	if (n < 0x80) {
		d->b[d->n++] = (uint8_t)n;
	} else {
		d->b[d->n++] = 0x82;
		d->b[d->n++] = (uint8_t)(n >> 8);
		d->b[d->n++] = (uint8_t)n;
	}
	memcpy(d->b + d->n, v, n);
	d->n += n;
}

static void put_member(der *seq, const uint8_t *tail, size_t tail_len,
		       uint8_t tag, const uint8_t *v, size_t n)
{
	static const uint8_t sgx[] = {0x2a, 0x86, 0x48, 0x86, 0xf8,
				      0x4d, 0x01, 0x0d, 0x01};
	uint8_t oid[16];
	der item = {.n = 0};

	memcpy(oid, sgx, sizeof sgx);
	memcpy(oid + sizeof sgx, tail, tail_len);
	put_tlv(&item, 0x06, oid, sizeof sgx + tail_len);
	put_tlv(&item, tag, v, n);
	put_tlv(seq, 0x30, item.b, item.n);
}

typedef struct variant {
	int skip_top;         /* 1..5: leave that member out */
	int skip_tcb;         /* 1..18 */
	int dup_top;          /* 1..5: write it twice */
	int dup_tcb;
	const uint8_t *svn3;  /* encoding of component 3, with its length */
	size_t svn3_len;
	size_t fmspc_len;
} variant;

static size_t build_ext(uint8_t *out, const variant *v)
{
	static const uint8_t ppid[16] = {1, 2, 3};
	static const uint8_t cpusvn[16] = {9, 8, 7};
	static const uint8_t pceid[2] = {0, 0};
	static const uint8_t fmspc[6] = {0xb0, 0xc0, 0x6f, 0, 0, 0};
	static const uint8_t pcesvn[] = {0x00, 0xc8}; /* 200 */
	static const uint8_t type[] = {1};
	der tcb = {.n = 0}, top = {.n = 0}, ext = {.n = 0};

	for (int k = 1; k <= 18; k++) {
		uint8_t tail[2] = {0x02, (uint8_t)k};
		uint8_t svn = (uint8_t)(k * 3);

		for (int rep = 0; rep < (k == v->dup_tcb ? 2 : 1); rep++) {
			if (k == v->skip_tcb)
				continue;
			if (k == 18)
				put_member(&tcb, tail, 2, 0x04, cpusvn, 16);
			else if (k == 17)
				put_member(&tcb, tail, 2, 0x02, pcesvn, 2);
			else if (k == 3 && v->svn3 != NULL)
				put_member(&tcb, tail, 2, 0x02, v->svn3,
					   v->svn3_len);
			else
				put_member(&tcb, tail, 2, 0x02, &svn, 1);
		}
	}
	for (int k = 1; k <= 6; k++) {
		uint8_t tail[1] = {(uint8_t)k};

		for (int rep = 0; rep < (k == v->dup_top ? 2 : 1); rep++) {
			if (k == v->skip_top)
				continue;
			if (k == 1)
				put_member(&top, tail, 1, 0x04, ppid, 16);
			else if (k == 2)
				put_member(&top, tail, 1, 0x30, tcb.b, tcb.n);
			else if (k == 3)
				put_member(&top, tail, 1, 0x04, pceid, 2);
			else if (k == 4)
				put_member(&top, tail, 1, 0x04, fmspc,
					   v->fmspc_len ? v->fmspc_len : 6);
			else if (k == 5)
				put_member(&top, tail, 1, 0x0a, type, 1);
			else /* an unknown member, to be skipped */
				put_member(&top, tail, 1, 0x04, ppid, 16);
		}
	}
	put_tlv(&ext, 0x30, top.b, top.n);
	memcpy(out, ext.b, ext.n);
	return ext.n;
}

static dd_err_t parse_variant(const variant *v, dd_pck_ext *e)
{
	uint8_t buf[2048];
	size_t n = build_ext(buf, v);

	return dd_pck_parse_ext_der(buf, n, e);
}

static void sgx_extension_crafted(void **state)
{
	static const uint8_t big[] = {0x01, 0x00};      /* 256 */
	static const uint8_t padded[] = {0x00, 0x05};   /* non-minimal */
	static const uint8_t neg[] = {0x85};
	static const uint8_t wide[] = {0x00, 0x80};     /* 128, minimal */
	uint8_t buf[2048];
	variant v;
	dd_pck_ext e;
	size_t n;

	(void)state;
	memset(&v, 0, sizeof v);
	assert_int_equal(parse_variant(&v, &e), DD_OK);
	for (int k = 0; k < 16; k++)
		assert_int_equal(e.comp_svn[k], (k + 1) * 3);
	assert_int_equal(e.pcesvn, 200);
	assert_int_equal(e.cpusvn[0], 9);
	assert_int_equal(e.ppid[2], 3);
	assert_int_equal(e.fmspc[0], 0xb0);
	assert_int_equal(e.sgx_type, 1);

	for (int k = 1; k <= 5; k++) {
		memset(&v, 0, sizeof v);
		v.skip_top = k;
		assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
		memset(&v, 0, sizeof v);
		v.dup_top = k;
		assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
	}
	for (int k = 1; k <= 18; k++) {
		memset(&v, 0, sizeof v);
		v.skip_tcb = k;
		assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
		memset(&v, 0, sizeof v);
		v.dup_tcb = k;
		assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
	}
	memset(&v, 0, sizeof v);
	v.svn3 = big;
	v.svn3_len = sizeof big;
	assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
	v.svn3 = padded;
	v.svn3_len = sizeof padded;
	assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
	v.svn3 = neg;
	v.svn3_len = sizeof neg;
	assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);
	v.svn3 = wide;
	v.svn3_len = sizeof wide;
	assert_int_equal(parse_variant(&v, &e), DD_OK);
	assert_int_equal(e.comp_svn[2], 128);
	memset(&v, 0, sizeof v);
	v.fmspc_len = 5;
	assert_int_equal(parse_variant(&v, &e), DD_ERR_INVALID);

	/* Trailing bytes, every truncation, every bit flip: no crash. */
	memset(&v, 0, sizeof v);
	n = build_ext(buf, &v);
	buf[n] = 0;
	assert_int_equal(dd_pck_parse_ext_der(buf, n + 1, &e), DD_ERR_INVALID);
	for (size_t k = 0; k < n; k++) {
		uint8_t *cut = malloc(k ? k : 1);

		memcpy(cut, buf, k);
		assert_int_equal(dd_pck_parse_ext_der(cut, k, &e),
				 DD_ERR_INVALID);
		free(cut);
	}
	for (size_t bit = 0; bit < n * 8; bit++) {
		dd_err_t rc;

		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = dd_pck_parse_ext_der(buf, n, &e);
		assert_true(rc == DD_OK || rc == DD_ERR_INVALID);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

static void sgx_extension_real(void **state)
{
	size_t len;
	uint8_t *raw = tdx_load("dcap-qvl-tdx_quote.bin", &len);
	dd_quote q;
	dd_pck_ders d;
	X509 *leaf = NULL;
	dd_pck_ext e;
	pki p;
	static const uint8_t comps[16] = {3, 3, 2, 2, 4, 1, 0, 5};
	uint8_t want[16];

	(void)state;
	assert_int_equal(dd_quote_parse(raw, len, &q), DD_OK);
	assert_int_equal(dd_pck_pem_split(q.pck_chain, q.pck_chain_len, &d),
			 DD_OK);
	assert_int_equal(d.n, 3);
	assert_true(dd_pck_der_is_root(d.der.data + d.off[2], d.len[2]));
	assert_false(dd_pck_der_is_root(d.der.data + d.off[1], d.len[1]));
	assert_int_equal(dd_pck_cert_from_der(d.der.data, d.len[0], &leaf),
			 DD_OK);
	assert_int_equal(dd_pck_parse_ext(leaf, &e), DD_OK);
	assert_memory_equal(e.comp_svn, comps, 16);
	assert_int_equal(e.pcesvn, 11);
	tdx_unhex("03030202040100050000000000000000", want, 16);
	assert_memory_equal(e.cpusvn, want, 16);
	tdx_unhex("b0c06f000000", want, 6);
	assert_memory_equal(e.fmspc, want, 6);
	assert_int_equal(e.pceid[0] | e.pceid[1], 0);
	tdx_unhex("811dca2a26b952e85bb6448b097ba4fd", want, 16);
	assert_memory_equal(e.ppid, want, 16);
	assert_int_equal(e.sgx_type, 1);
	X509_free(leaf);
	dd_pck_ders_free(&d);
	free(raw);

	pki_new(&p, T0, T1);
	assert_int_equal(dd_pck_parse_ext(p.leaf, &e), DD_ERR_NOT_FOUND);
	pki_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chain_validation),
		cmocka_unit_test(pinned_root_identity),
		cmocka_unit_test(pem_split_is_strict),
		cmocka_unit_test(pem_split_refuses_lenient_base64),
		cmocka_unit_test(der_must_round_trip),
		cmocka_unit_test(sgx_extension_crafted),
		cmocka_unit_test(sgx_extension_real),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
