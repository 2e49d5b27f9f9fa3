#include "attest/quote.h"

#include <string.h>

#include "core/cursor.h"

const uint8_t dd_quote_intel_vendor_id[16] = {
	0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
	0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

/*
 * Inside a length-delimited container the input has not run out: the
 * container's own length field disagrees with what it holds.
 */
static dd_err_t inner(dd_err_t rc)
{
	return rc == DD_ERR_TRUNCATED ? DD_ERR_INVALID : rc;
}

static dd_err_t parse_header(dd_cursor *c, dd_quote_header *h)
{
	dd_err_t rc;

	rc = dd_cur_get_u16le(c, &h->version);
	if (rc)
		return rc;
	rc = dd_cur_get_u16le(c, &h->att_key_type);
	if (rc)
		return rc;
	rc = dd_cur_get_u32le(c, &h->tee_type);
	if (rc)
		return rc;
	rc = dd_cur_get_u16le(c, &h->reserved1);
	if (rc)
		return rc;
	rc = dd_cur_get_u16le(c, &h->reserved2);
	if (rc)
		return rc;
	rc = dd_cur_get_bytes(c, h->qe_vendor_id, sizeof h->qe_vendor_id);
	if (rc)
		return rc;
	return dd_cur_get_bytes(c, h->user_data, sizeof h->user_data);
}

/* The 584 bytes of a TD 1.0 report body, in order. */
static dd_err_t parse_td10(dd_cursor *c, dd_quote_body *b)
{
	struct {
		void *dst;
		size_t n;
	} f[] = {
		{b->tee_tcb_svn, sizeof b->tee_tcb_svn},
		{b->mrseam, sizeof b->mrseam},
		{b->mrsignerseam, sizeof b->mrsignerseam},
		{b->seam_attributes, sizeof b->seam_attributes},
		{b->td_attributes, sizeof b->td_attributes},
		{b->xfam, sizeof b->xfam},
		{b->mrtd, sizeof b->mrtd},
		{b->mrconfigid, sizeof b->mrconfigid},
		{b->mrowner, sizeof b->mrowner},
		{b->mrownerconfig, sizeof b->mrownerconfig},
		{b->rtmr[0], sizeof b->rtmr[0]},
		{b->rtmr[1], sizeof b->rtmr[1]},
		{b->rtmr[2], sizeof b->rtmr[2]},
		{b->rtmr[3], sizeof b->rtmr[3]},
		{b->report_data, sizeof b->report_data},
	};
	dd_err_t rc;

	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		rc = dd_cur_get_bytes(c, f[i].dst, f[i].n);
		if (rc)
			return rc;
	}
	return DD_OK;
}

static dd_err_t parse_body(dd_cursor *c, dd_quote *q)
{
	dd_cursor body;
	size_t want;
	dd_err_t rc;

	if (q->header.version == 4) {
		q->body.type = DD_QUOTE_BODY_TD10;
		return parse_td10(c, &q->body);
	}
	rc = dd_cur_get_u16le(c, &q->body_descriptor_type);
	if (rc)
		return rc;
	rc = dd_cur_get_u32le(c, &q->body_descriptor_size);
	if (rc)
		return rc;
	if (q->body_descriptor_type == DD_QUOTE_BODY_TD10)
		want = DD_QUOTE_TD10_LEN;
	else if (q->body_descriptor_type == DD_QUOTE_BODY_TD15)
		want = DD_QUOTE_TD15_LEN;
	else
		return DD_ERR_UNSUPPORTED; /* 1 = SGX report, or unknown */
	if (q->body_descriptor_size != want)
		return DD_ERR_INVALID;
	rc = dd_cur_sub(c, want, &body);
	if (rc)
		return rc;
	q->body.type = q->body_descriptor_type;
	rc = parse_td10(&body, &q->body);
	if (rc == DD_OK && q->body.type == DD_QUOTE_BODY_TD15) {
		rc = dd_cur_get_bytes(&body, q->body.tee_tcb_svn2,
				      sizeof q->body.tee_tcb_svn2);
		if (rc == DD_OK)
			rc = dd_cur_get_bytes(&body, q->body.mrservicetd,
					      sizeof q->body.mrservicetd);
	}
	return inner(rc);
}

static void parse_enclave_report(const uint8_t raw[DD_QUOTE_ENCLAVE_REPORT_LEN],
				 dd_quote_qe_report *r)
{
	dd_cursor c;

	/* Fixed size, already in hand: none of these reads can fail. */
	dd_cur_init(&c, raw, DD_QUOTE_ENCLAVE_REPORT_LEN);
	(void)dd_cur_get_bytes(&c, r->cpusvn, sizeof r->cpusvn);
	(void)dd_cur_get_bytes(&c, r->miscselect, sizeof r->miscselect);
	(void)dd_cur_skip(&c, 28);
	(void)dd_cur_get_bytes(&c, r->attributes, sizeof r->attributes);
	(void)dd_cur_get_bytes(&c, r->mrenclave, sizeof r->mrenclave);
	(void)dd_cur_skip(&c, 32);
	(void)dd_cur_get_bytes(&c, r->mrsigner, sizeof r->mrsigner);
	(void)dd_cur_skip(&c, 96);
	(void)dd_cur_get_u16le(&c, &r->isvprodid);
	(void)dd_cur_get_u16le(&c, &r->isvsvn);
	(void)dd_cur_skip(&c, 60);
	(void)dd_cur_get_bytes(&c, r->report_data, sizeof r->report_data);
}

/* Type 6: QE report, its signature, QE auth data, nested PCK chain. */
static dd_err_t parse_qe_cert_data(dd_cursor *c, dd_quote *q)
{
	uint16_t auth_len;
	uint32_t chain_len;
	dd_err_t rc;

	rc = dd_cur_get_bytes(c, q->qe_report_raw, sizeof q->qe_report_raw);
	if (rc)
		return rc;
	parse_enclave_report(q->qe_report_raw, &q->qe_report);
	rc = dd_cur_get_bytes(c, q->qe_report_signature,
			      sizeof q->qe_report_signature);
	if (rc)
		return rc;
	rc = dd_cur_get_u16le(c, &auth_len);
	if (rc)
		return rc;
	rc = dd_cur_get_span(c, auth_len, &q->qe_auth_data);
	if (rc)
		return rc;
	q->qe_auth_data_len = auth_len;
	rc = dd_cur_get_u16le(c, &q->pck_cert_type);
	if (rc)
		return rc;
	if (q->pck_cert_type != DD_QUOTE_CERT_PCK_CHAIN)
		return DD_ERR_UNSUPPORTED;
	rc = dd_cur_get_u32le(c, &chain_len);
	if (rc)
		return rc;
	if (chain_len == 0)
		return DD_ERR_INVALID;
	rc = dd_cur_get_span(c, chain_len, &q->pck_chain);
	if (rc)
		return rc;
	q->pck_chain_len = chain_len;
	return dd_cur_remaining(c) == 0 ? DD_OK : DD_ERR_INVALID;
}

static dd_err_t parse_sim_cert_data(dd_cursor *c)
{
	const uint8_t *m;
	dd_err_t rc;

	rc = dd_cur_get_span(c, DD_QUOTE_SIM_MARKER_LEN, &m);
	if (rc)
		return rc;
	if (memcmp(m, DD_QUOTE_SIM_MARKER, DD_QUOTE_SIM_MARKER_LEN) != 0)
		return DD_ERR_INVALID;
	return dd_cur_remaining(c) == 0 ? DD_OK : DD_ERR_INVALID;
}

static dd_err_t parse_sig_data(dd_cursor *c, dd_quote *q)
{
	dd_cursor cert;
	int sim_vendor;
	dd_err_t rc;

	rc = dd_cur_get_bytes(c, q->signature, sizeof q->signature);
	if (rc)
		return rc;
	rc = dd_cur_get_bytes(c, q->attestation_key, sizeof q->attestation_key);
	if (rc)
		return rc;
	rc = dd_cur_get_u16le(c, &q->cert_type);
	if (rc)
		return rc;
	rc = dd_cur_get_u32le(c, &q->cert_size);
	if (rc)
		return rc;
	/* The certification data is the rest of the signature data. */
	if (q->cert_size != dd_cur_remaining(c))
		return DD_ERR_INVALID;
	rc = dd_cur_sub(c, q->cert_size, &cert);
	if (rc)
		return rc;
	sim_vendor = memcmp(q->header.qe_vendor_id, DD_QUOTE_SIM_VENDOR_ID,
			    sizeof q->header.qe_vendor_id) == 0;
	if (q->cert_type == DD_QUOTE_CERT_SIMULATED)
		return sim_vendor ? parse_sim_cert_data(&cert) : DD_ERR_INVALID;
	if (sim_vendor)
		return DD_ERR_INVALID;
	if (q->cert_type != DD_QUOTE_CERT_QE_REPORT)
		return DD_ERR_UNSUPPORTED;
	return parse_qe_cert_data(&cert, q);
}

static dd_err_t parse(dd_cursor *c, dd_quote *q)
{
	dd_cursor sig;
	const uint8_t *pad;
	size_t total = dd_cur_remaining(c);
	dd_err_t rc;

	rc = parse_header(c, &q->header);
	if (rc)
		return rc;
	if (q->header.version != 4 && q->header.version != 5)
		return DD_ERR_UNSUPPORTED;
	if (q->header.att_key_type != DD_QUOTE_AK_ECDSA_P256)
		return DD_ERR_UNSUPPORTED;
	if (q->header.tee_type != DD_QUOTE_TEE_TDX)
		return DD_ERR_UNSUPPORTED;
	rc = parse_body(c, q);
	if (rc)
		return rc;
	q->signed_len = total - dd_cur_remaining(c);
	rc = dd_cur_get_u32le(c, &q->sig_data_len);
	if (rc)
		return rc;
	rc = dd_cur_sub(c, q->sig_data_len, &sig);
	if (rc)
		return rc;
	rc = inner(parse_sig_data(&sig, q));
	if (rc)
		return rc;
	q->padding_len = dd_cur_remaining(c);
	rc = dd_cur_get_span(c, q->padding_len, &pad);
	if (rc)
		return rc;
	for (size_t i = 0; i < q->padding_len; i++)
		if (pad[i] != 0)
			return DD_ERR_INVALID;
	return DD_OK;
}

dd_err_t dd_quote_parse(const uint8_t *data, size_t len, dd_quote *out)
{
	dd_cursor c;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	if (len > DD_QUOTE_MAX_LEN)
		return DD_ERR_TOO_LARGE;
	dd_cur_init(&c, data, len);
	rc = parse(&c, out);
	if (rc) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->signed_data = data;
	out->raw = data;
	out->raw_len = len;
	return DD_OK;
}

int dd_quote_is_simulated(const dd_quote *q)
{
	return q->cert_type == DD_QUOTE_CERT_SIMULATED &&
	       memcmp(q->header.qe_vendor_id, DD_QUOTE_SIM_VENDOR_ID,
		      sizeof q->header.qe_vendor_id) == 0;
}

int dd_quote_bytes_are_simulated(const uint8_t *data, size_t len)
{
	dd_quote q;

	if (dd_quote_parse(data, len, &q) != DD_OK)
		return 0;
	return dd_quote_is_simulated(&q);
}

int dd_quote_td_is_debug(const dd_quote *q)
{
	return (q->body.td_attributes[0] & DD_TD_ATTR_DEBUG) != 0;
}

const char *dd_quote_body_name(const dd_quote *q)
{
	return q->body.type == DD_QUOTE_BODY_TD15 ? "TD1.5" : "TD1.0";
}
