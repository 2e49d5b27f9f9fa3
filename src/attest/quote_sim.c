#include "attest/quote_sim.h"

#include <string.h>

#include "attest/p256.h"

static dd_err_t put_u16(dd_buf *b, uint16_t v)
{
	uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	return dd_buf_append(b, le, sizeof le);
}

static dd_err_t put_u32(dd_buf *b, uint32_t v)
{
	uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24)};

	return dd_buf_append(b, le, sizeof le);
}

/* Header, descriptor (v5) and body into b, in quote order. */
static dd_err_t put_signed(dd_buf *b, const dd_quote_sim_params *p,
			   uint16_t version, uint16_t body_type)
{
	const dd_quote_body *q = &p->body;
	const struct {
		const void *src;
		size_t n;
	} f[] = {
		{q->tee_tcb_svn, sizeof q->tee_tcb_svn},
		{q->mrseam, sizeof q->mrseam},
		{q->mrsignerseam, sizeof q->mrsignerseam},
		{q->seam_attributes, sizeof q->seam_attributes},
		{q->td_attributes, sizeof q->td_attributes},
		{q->xfam, sizeof q->xfam},
		{q->mrtd, sizeof q->mrtd},
		{q->mrconfigid, sizeof q->mrconfigid},
		{q->mrowner, sizeof q->mrowner},
		{q->mrownerconfig, sizeof q->mrownerconfig},
		{q->rtmr, sizeof q->rtmr},
		{q->report_data, sizeof q->report_data},
		{q->tee_tcb_svn2, sizeof q->tee_tcb_svn2},
		{q->mrservicetd, sizeof q->mrservicetd},
	};
	/* The last two fields exist only in a TD 1.5 body. */
	size_t nf = body_type == DD_QUOTE_BODY_TD15 ? 14 : 12;
	dd_err_t rc;

	rc = put_u16(b, version);
	if (rc == DD_OK)
		rc = put_u16(b, DD_QUOTE_AK_ECDSA_P256);
	if (rc == DD_OK)
		rc = put_u32(b, DD_QUOTE_TEE_TDX);
	if (rc == DD_OK)
		rc = put_u32(b, 0); /* the two reserved u16 */
	if (rc == DD_OK)
		rc = dd_buf_append(b, DD_QUOTE_SIM_VENDOR_ID, 16);
	if (rc == DD_OK)
		rc = dd_buf_append(b, p->user_data, sizeof p->user_data);
	if (rc == DD_OK && version == 5) {
		rc = put_u16(b, body_type);
		if (rc == DD_OK)
			rc = put_u32(b, body_type == DD_QUOTE_BODY_TD15
						? DD_QUOTE_TD15_LEN
						: DD_QUOTE_TD10_LEN);
	}
	for (size_t i = 0; rc == DD_OK && i < nf; i++)
		rc = dd_buf_append(b, f[i].src, f[i].n);
	return rc;
}

dd_err_t dd_quote_sim_build(const dd_quote_sim_params *p, EVP_PKEY *key,
			    dd_buf *out)
{
	uint16_t version = p->version ? p->version : 4;
	uint16_t body_type = p->body_type ? p->body_type : DD_QUOTE_BODY_TD10;
	uint8_t sig[64], xy[64];
	dd_buf q;
	dd_err_t rc;

	if (version != 4 && version != 5)
		return DD_ERR_INVALID;
	if (body_type != DD_QUOTE_BODY_TD10 &&
	    (version != 5 || body_type != DD_QUOTE_BODY_TD15))
		return DD_ERR_INVALID;
	rc = dd_p256_key_to_xy(key, xy);
	if (rc)
		return rc;
	/* Built aside so that out never holds half a quote. */
	dd_buf_init(&q, DD_QUOTE_MAX_LEN);
	rc = put_signed(&q, p, version, body_type);
	if (rc == DD_OK)
		rc = dd_p256_sign(key, q.data, q.len, sig);
	if (rc == DD_OK)
		rc = put_u32(&q, 64 + 64 + 2 + 4 + DD_QUOTE_SIM_MARKER_LEN);
	if (rc == DD_OK)
		rc = dd_buf_append(&q, sig, sizeof sig);
	if (rc == DD_OK)
		rc = dd_buf_append(&q, xy, sizeof xy);
	if (rc == DD_OK)
		rc = put_u16(&q, DD_QUOTE_CERT_SIMULATED);
	if (rc == DD_OK)
		rc = put_u32(&q, DD_QUOTE_SIM_MARKER_LEN);
	if (rc == DD_OK)
		rc = dd_buf_append(&q, DD_QUOTE_SIM_MARKER,
				   DD_QUOTE_SIM_MARKER_LEN);
	if (rc == DD_OK)
		rc = dd_buf_append(out, q.data, q.len);
	dd_buf_free(&q);
	return rc;
}
