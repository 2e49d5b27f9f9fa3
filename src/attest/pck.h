/*
 * pck.h: Intel's certificate side of quote verification: the pinned SGX
 * root, PEM chains, X.509 path validation at a given time with optional
 * CRLs, and the SGX extension of PCK certificates.
 *
 * Trust anchor: the "Intel SGX Root CA" certificate is compiled in (DER,
 * 659 bytes, SHA-256 44a0196b...74d3, subject CN=Intel SGX Root CA,
 * O=Intel Corporation, self-signed P-256, valid 2018-05-21 to
 * 2049-12-31; Intel publishes it as
 * Intel_SGX_Provisioning_Certification_RootCA.cer). dd_pck_root() checks
 * the embedded bytes against the pinned digest before first use, so an
 * edit to one without the other fails closed.
 *
 * Time: path validation takes the caller's "now" rather than the clock,
 * so verifying an old quote is deterministic and a caller can ask "was
 * this valid at T". Production callers pass time(NULL).
 *
 * Internal to src/attest. Thread-safe: the only shared state is the
 * parsed root, created once under a mutex and never changed.
 */
#ifndef DD_ATTEST_PCK_H
#define DD_ATTEST_PCK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"

/* The pinned root (pck_root.c) and its SHA-256. */
#define DD_PCK_ROOT_DER_LEN 659u
extern const uint8_t dd_pck_root_der[DD_PCK_ROOT_DER_LEN];
extern const uint8_t dd_pck_root_sha256[32];

/* More certificates than this in one chain is refused (INVALID). */
#define DD_PCK_MAX_CHAIN 8

/*
 * A reference to the pinned root, parsed once per process (parsing a
 * certificate costs OpenSSL 3.0 about 250 us). Caller releases it with
 * X509_free(). INTERNAL if the embedded bytes do not match the digest.
 */
dd_err_t dd_pck_root(X509 **out);

/* 1 when der[0..len) is byte-for-byte the pinned root. */
int dd_pck_der_is_root(const uint8_t *der, size_t len);

/* 1 when cert encodes to exactly the pinned root. */
int dd_pck_is_root(X509 *cert);

/*
 * Certificates split out of a PEM chain, as DER, in order (leaf first):
 * certificate i is der.data[off[i] .. off[i] + len[i]).
 */
typedef struct dd_pck_ders {
	dd_buf der;
	size_t off[DD_PCK_MAX_CHAIN];
	size_t len[DD_PCK_MAX_CHAIN];
	int n;
} dd_pck_ders;

/*
 * Strict split of a quote's PEM chain: each certificate is exactly
 * "-----BEGIN CERTIFICATE-----\n", base64 in 64-column lines (the last
 * 1..64) each ending in "\n", "-----END CERTIFICATE-----\n", with
 * canonical base64 (core/b64.h); after the last one only NUL bytes (quotes
 * NUL-terminate the chain). So no two byte strings split into the same
 * DER. INVALID otherwise (also for no certificate or more than
 * DD_PCK_MAX_CHAIN); NOMEM. Release out with dd_pck_ders_free() in every
 * case.
 */
dd_err_t dd_pck_pem_split(const uint8_t *pem, size_t len, dd_pck_ders *out);
void dd_pck_ders_free(dd_pck_ders *d);

/*
 * One DER certificate; INVALID unless it parses, uses every byte and
 * encodes back to exactly der (DER, not BER). Caller frees with
 * X509_free().
 */
dd_err_t dd_pck_cert_from_der(const uint8_t *der, size_t len, X509 **out);

/*
 * A whole PEM chain (leaf first). canonical = 1: dd_pck_pem_split()
 * rules, every certificate through dd_pck_cert_from_der(). canonical = 0
 * tolerates anything OpenSSL's PEM reader does (collateral from PCS,
 * whose chains are checked cryptographically anyway). INVALID for no
 * certificate, a broken one, or more than DD_PCK_MAX_CHAIN. Caller frees
 * *out with sk_X509_pop_free(*out, X509_free).
 */
dd_err_t dd_pck_chain_decode(const uint8_t *pem, size_t len, int canonical,
			     STACK_OF(X509) **out);

/* 1 when cert's subject CN is exactly cn. */
int dd_pck_subject_cn_is(X509 *cert, const char *cn);

/*
 * Validates chain[0] (the leaf) up to root, with the rest of chain as
 * untrusted intermediates, at time now. With crls (may be NULL) every
 * certificate in the path, the root included, must have a valid CRL from
 * its issuer and must not be on it. Returns DD_OK, or CRYPTO with
 * *x509_err set to the X509_V_ERR_* code (NOMEM on allocation failure).
 */
dd_err_t dd_pck_verify_chain(STACK_OF(X509) *chain, X509 *root,
			     STACK_OF(X509_CRL) *crls, int64_t now,
			     int *x509_err);

/* The fields of the SGX extension (OID 1.2.840.113741.1.13.1). */
typedef struct dd_pck_ext {
	uint8_t ppid[16];
	uint8_t comp_svn[16];   /* SGX TCB components 1..16 */
	uint16_t pcesvn;
	uint8_t cpusvn[16];
	uint8_t pceid[2];
	uint8_t fmspc[6];
	int sgx_type;           /* 0 standard, 1 scalable, 2 scalable with
				 * integrity */
} dd_pck_ext;

/*
 * Reads the SGX extension of a PCK certificate through the cursor. All
 * of PPID, TCB (16 components, PCESVN, CPUSVN), PCE-ID, FMSPC and SGX type
 * are required; unknown members are skipped; a duplicate or malformed one
 * is INVALID; NOT_FOUND when the extension is absent.
 */
dd_err_t dd_pck_parse_ext(X509 *cert, dd_pck_ext *out);

/* The same on the extension's DER value (exposed for tests). */
dd_err_t dd_pck_parse_ext_der(const uint8_t *der, size_t len, dd_pck_ext *out);

#endif
