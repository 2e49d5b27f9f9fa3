/*
 * quote.h: the TDX quote parser (quote versions 4 and 5).
 *
 * Layout (all integers little-endian; Intel TDX DCAP Quoting Library API,
 * appendix "Quote format"):
 *
 *   header        48 bytes   version, attestation key type, TEE type,
 *                            two reserved u16, QE vendor id, user data
 *   descriptor     6 bytes   v5 only: u16 body type, u32 body size
 *   body         584 bytes   TD 1.0 report (v4, or v5 type 2)
 *                648 bytes   TD 1.5 report (v5 type 3): TD 1.0 plus
 *                            TEE_TCB_SVN_2 and MRSERVICETD
 *   u32 L, then L bytes of signature data:
 *     ECDSA signature (r||s, 64), attestation public key (x||y, 64),
 *     certification data: u16 type, u32 size, then for type 6 (QE report
 *     certification data): QE report (384), QE report signature (64),
 *     u16 QE auth data size + data, and nested certification data
 *     u16 type 5 (PEM PCK certificate chain), u32 size, the PEM bytes.
 *
 * The ECDSA signature covers header, descriptor (v5) and body: the bytes
 * from offset 0 up to the signature data length field.
 *
 * Strictness: every length must agree with its container. Input that
 * ends early is TRUNCATED; a nested length that disagrees with the one
 * around it, an unknown nested layout, or trailing bytes are INVALID; a
 * quote version, attestation key type, TEE type, body type or
 * certification data type we do not handle is UNSUPPORTED. The only
 * tolerated extra is zero padding after the signature data: quote
 * services hand out fixed-size buffers (two of the real quotes in
 * tests/data carry 70 zero bytes), so trailing zeros are accepted and
 * counted in padding_len, and a single non-zero byte there is INVALID.
 * Padding is outside every signed and hashed region.
 *
 * Simulated quotes (development only, see quote_sim.h) use the v4/v5
 * layout with QE vendor id DD_QUOTE_SIM_VENDOR_ID and certification data
 * type DD_QUOTE_CERT_SIMULATED whose payload is exactly
 * DD_QUOTE_SIM_MARKER. Either marker without the other is INVALID, so
 * dd_quote_is_simulated() has no ambiguous case.
 *
 * Lifetime: dd_quote_parse() allocates nothing. Fixed-size fields are
 * copied into the struct; the variable-size parts (signed region, QE
 * auth data, PCK chain, raw) point into the caller's buffer, which must
 * outlive the struct. The struct is public because it is a plain view of
 * the bytes; treat it as read-only.
 */
#ifndef DD_ATTEST_QUOTE_H
#define DD_ATTEST_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* The kernel's configfs-tsm outblob buffer is 128 KiB (DICE quotes). */
#define DD_QUOTE_MAX_LEN (128u * 1024u)

#define DD_QUOTE_HEADER_LEN 48u
#define DD_QUOTE_DESCRIPTOR_LEN 6u
#define DD_QUOTE_TD10_LEN 584u
#define DD_QUOTE_TD15_LEN 648u
#define DD_QUOTE_ENCLAVE_REPORT_LEN 384u

#define DD_QUOTE_TEE_TDX 0x00000081u
#define DD_QUOTE_AK_ECDSA_P256 2u
#define DD_QUOTE_BODY_TD10 2u
#define DD_QUOTE_BODY_TD15 3u
#define DD_QUOTE_CERT_PCK_CHAIN 5u
#define DD_QUOTE_CERT_QE_REPORT 6u
/* Outside Intel's range (1..7); only simulated quotes carry it. */
#define DD_QUOTE_CERT_SIMULATED 0xdd51u

/* ASCII, exactly 16 bytes, no terminator in the quote. */
#define DD_QUOTE_SIM_VENDOR_ID "DD-SIMULATED-QE!"
/* The whole certification data payload of a simulated quote (32 bytes). */
#define DD_QUOTE_SIM_MARKER "DEVOPSDEFENDER SIMULATED QUOTE!!"
#define DD_QUOTE_SIM_MARKER_LEN 32u

/* Intel's QE vendor id, 939a7233-f79c-4ca9-940a-0db3957f0607. */
extern const uint8_t dd_quote_intel_vendor_id[16];

/* TDATTRIBUTES bit 0: the TD is debuggable (its memory is not private). */
#define DD_TD_ATTR_DEBUG 0x01u

typedef struct dd_quote_header {
	uint16_t version;          /* 4 or 5 */
	uint16_t att_key_type;     /* DD_QUOTE_AK_ECDSA_P256 */
	uint32_t tee_type;         /* DD_QUOTE_TEE_TDX */
	uint16_t reserved1;        /* QE SVN in older layouts */
	uint16_t reserved2;        /* PCE SVN in older layouts */
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
} dd_quote_header;

/* Byte arrays are exactly as in the quote (attributes little-endian). */
typedef struct dd_quote_body {
	uint16_t type;             /* DD_QUOTE_BODY_TD10 (all v4) or _TD15 */
	uint8_t tee_tcb_svn[16];
	uint8_t mrseam[48];
	uint8_t mrsignerseam[48];
	uint8_t seam_attributes[8];
	uint8_t td_attributes[8];  /* byte 0 bit 0: DD_TD_ATTR_DEBUG */
	uint8_t xfam[8];
	uint8_t mrtd[48];
	uint8_t mrconfigid[48];
	uint8_t mrowner[48];
	uint8_t mrownerconfig[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	/* TD 1.5 only; all zero for a TD 1.0 body. */
	uint8_t tee_tcb_svn2[16];
	uint8_t mrservicetd[48];
} dd_quote_body;

/* The SGX enclave report of the quoting enclave (384 bytes). */
typedef struct dd_quote_qe_report {
	uint8_t cpusvn[16];
	uint8_t miscselect[4];     /* as in the report (little-endian) */
	uint8_t attributes[16];
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	uint16_t isvsvn;
	uint8_t report_data[64];
} dd_quote_qe_report;

typedef struct dd_quote {
	dd_quote_header header;
	uint16_t body_descriptor_type; /* v5 only; 0 for v4 */
	uint32_t body_descriptor_size; /* v5 only; 0 for v4 */
	dd_quote_body body;

	uint32_t sig_data_len;         /* L */
	uint8_t signature[64];         /* r || s, big-endian */
	uint8_t attestation_key[64];   /* x || y, big-endian */
	uint16_t cert_type;            /* _QE_REPORT or _SIMULATED */
	uint32_t cert_size;

	/* cert_type == DD_QUOTE_CERT_QE_REPORT only (zero/NULL otherwise): */
	uint8_t qe_report_raw[DD_QUOTE_ENCLAVE_REPORT_LEN];
	dd_quote_qe_report qe_report;
	uint8_t qe_report_signature[64];
	const uint8_t *qe_auth_data;   /* borrowed */
	uint16_t qe_auth_data_len;
	uint16_t pck_cert_type;        /* DD_QUOTE_CERT_PCK_CHAIN */
	const uint8_t *pck_chain;      /* borrowed PEM, as in the quote */
	uint32_t pck_chain_len;

	const uint8_t *signed_data;    /* borrowed: header..end of body */
	size_t signed_len;
	const uint8_t *raw;            /* borrowed: the whole input */
	size_t raw_len;
	size_t padding_len;            /* trailing zero bytes accepted */
} dd_quote;

/*
 * Parses data[0..len) into *out (overwritten; nothing allocated). On
 * error *out is zeroed. Errors: TOO_LARGE above DD_QUOTE_MAX_LEN,
 * TRUNCATED, INVALID, UNSUPPORTED as described above. Pure and
 * thread-safe.
 */
dd_err_t dd_quote_parse(const uint8_t *data, size_t len, dd_quote *out);

/*
 * 1 when q is a simulated quote (both markers present; the parser
 * refuses one without the other), else 0. The verifier refuses these
 * unless the caller allows simulated quotes (dev mode only).
 */
int dd_quote_is_simulated(const dd_quote *q);

/*
 * The same decision on raw bytes, without a full parse: 1 only when the
 * bytes parse and are simulated. For callers that hold bytes only.
 */
int dd_quote_bytes_are_simulated(const uint8_t *data, size_t len);

/* 1 when TDATTRIBUTES has the debug bit set. */
int dd_quote_td_is_debug(const dd_quote *q);

/* Short name of the body type: "TD1.0", "TD1.5". */
const char *dd_quote_body_name(const dd_quote *q);

#endif
