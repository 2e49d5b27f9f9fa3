/*
 * TCB evaluation of a TDX quote against Intel's TCB info (v3) and QE
 * identity (v2): the matching and status convergence rules of Intel's
 * quote verification library, written from its documented behaviour.
 */
#include "attest/collateral.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "attest/qv_internal.h"
#include "core/json.h"
#include "core/strutil.h"

/* More levels than any real TCB info carries (about a dozen). */
#define MAX_LEVELS 1024

typedef struct level {
	const json_t *obj;
	dd_tcb_status status;
} level;

static dd_err_t bad(dd_quote_result *res, const char *what)
{
	return dd_qv_fail(res, DD_QV_COLLATERAL_FORMAT, "collateral: %s", what);
}

/* A hex string member that must decode to exactly n bytes. */
static int get_hex(const json_t *obj, const char *key, uint8_t *out, size_t n)
{
	const char *s;

	if (dd_json_get_str(obj, key, &s) != DD_OK)
		return 0;
	return dd_hex_decode(s, strlen(s), out, n) == DD_OK;
}

static int get_u16(const json_t *obj, const char *key, uint16_t *out)
{
	uint64_t v;

	if (dd_json_get_u64(obj, key, 0, 0xffff, &v) != DD_OK)
		return 0;
	*out = (uint16_t)v;
	return 1;
}

static const json_t *get_array(const json_t *obj, const char *key)
{
	const json_t *a = json_object_get(obj, key);

	if (!json_is_array(a) || json_array_size(a) > MAX_LEVELS)
		return NULL;
	return a;
}

/* 16 {"svn": n} objects into svn[16]. */
static int get_components(const json_t *tcb, const char *key, uint8_t svn[16])
{
	const json_t *a = get_array(tcb, key);
	uint64_t v;

	if (a == NULL || json_array_size(a) != 16)
		return 0;
	for (size_t i = 0; i < 16; i++) {
		if (dd_json_get_u64(json_array_get(a, i), "svn", 0, 255, &v))
			return 0;
		svn[i] = (uint8_t)v;
	}
	return 1;
}

/* A level's tcbStatus; module and QE levels allow only three values. */
static int get_status(const json_t *lvl, int narrow, dd_tcb_status *out)
{
	const char *s;

	if (dd_json_get_str(lvl, "tcbStatus", &s) != DD_OK ||
	    dd_tcb_status_parse(s, out) != DD_OK)
		return 0;
	if (*out == DD_TCB_TD_RELAUNCH_ADVISED ||
	    *out == DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED)
		return 0; /* a verdict, never a level's status */
	return !narrow || *out == DD_TCB_UP_TO_DATE ||
	       *out == DD_TCB_OUT_OF_DATE || *out == DD_TCB_REVOKED;
}

static dd_err_t add_advisories(const json_t *lvl, dd_quote_result *res)
{
	const json_t *a = json_object_get(lvl, "advisoryIDs");
	dd_err_t rc;

	if (a == NULL)
		return DD_OK;
	if (!json_is_array(a))
		return bad(res, "advisoryIDs is not an array");
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *id = json_array_get(a, i);

		if (!json_is_string(id))
			return bad(res, "advisory ID is not a string");
		rc = dd_qv_add_advisory(res, json_string_value(id));
		if (rc == DD_ERR_NOMEM)
			return dd_qv_fail(res, DD_QV_NOMEM, "advisory IDs");
		if (rc)
			return bad(res, "implausible advisory ID");
	}
	return DD_OK;
}

/*
 * First {"tcb": {"isvsvn": n}} level with n <= isvsvn (levels run newest
 * first). *found = 0 when the platform is older than every level.
 */
static dd_err_t pick_isv_level(const json_t *levels, uint16_t isvsvn,
			       level *out, int *found, dd_quote_result *res)
{
	uint16_t v;

	*found = 0;
	for (size_t i = 0; i < json_array_size(levels); i++) {
		const json_t *lvl = json_array_get(levels, i);

		if (!get_u16(json_object_get(lvl, "tcb"), "isvsvn", &v) ||
		    !get_status(lvl, 1, &out->status))
			return bad(res, "malformed ISVSVN TCB level");
		if (isvsvn >= v) {
			out->obj = lvl;
			*found = 1;
			return DD_OK;
		}
	}
	return DD_OK;
}

static dd_err_t check_qe_identity(const json_t *qe, const dd_quote *q,
				  level *qe_level, dd_quote_result *res)
{
	const dd_quote_qe_report *r = &q->qe_report;
	uint8_t mrsigner[32], misc[4], misc_mask[4], attr[16], attr_mask[16];
	const json_t *levels;
	uint16_t prodid;
	int found;
	dd_err_t rc;

	if (!get_hex(qe, "mrsigner", mrsigner, sizeof mrsigner) ||
	    !get_hex(qe, "miscselect", misc, sizeof misc) ||
	    !get_hex(qe, "miscselectMask", misc_mask, sizeof misc_mask) ||
	    !get_hex(qe, "attributes", attr, sizeof attr) ||
	    !get_hex(qe, "attributesMask", attr_mask, sizeof attr_mask) ||
	    !get_u16(qe, "isvprodid", &prodid))
		return bad(res, "QE identity fields");
	levels = get_array(qe, "tcbLevels");
	if (levels == NULL)
		return bad(res, "QE identity tcbLevels");
	if (memcmp(mrsigner, r->mrsigner, sizeof mrsigner) != 0)
		return dd_qv_fail(res, DD_QV_QE_IDENTITY_MISMATCH,
				  "QE MRSIGNER is not the identity's");
	if (prodid != r->isvprodid)
		return dd_qv_fail(res, DD_QV_QE_IDENTITY_MISMATCH,
				  "QE ISVPRODID %u, identity wants %u",
				  r->isvprodid, prodid);
	for (size_t i = 0; i < sizeof misc; i++)
		if ((r->miscselect[i] & misc_mask[i]) != misc[i])
			return dd_qv_fail(res, DD_QV_QE_IDENTITY_MISMATCH,
					  "QE MISCSELECT does not match");
	for (size_t i = 0; i < sizeof attr; i++)
		if ((r->attributes[i] & attr_mask[i]) != attr[i])
			return dd_qv_fail(res, DD_QV_QE_IDENTITY_MISMATCH,
					  "QE ATTRIBUTES do not match");
	rc = pick_isv_level(levels, r->isvsvn, qe_level, &found, res);
	if (rc)
		return rc;
	if (!found)
		return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
				  "QE ISVSVN %u is below every QE TCB level",
				  r->isvsvn);
	res->qe_status = qe_level->status;
	res->checks |= DD_QV_CHECK_QE_IDENTITY;
	return DD_OK;
}

/* The tdxModuleIdentities entry "TDX_%02X" for a module version. */
static const json_t *find_module(const json_t *tcb_info, uint8_t version)
{
	const json_t *ids = get_array(tcb_info, "tdxModuleIdentities");
	char want[8];
	const char *id;

	if (ids == NULL)
		return NULL;
	snprintf(want, sizeof want, "TDX_%02X", version);
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const json_t *m = json_array_get(ids, i);

		if (dd_json_get_str(m, "id", &id) == DD_OK &&
		    strcasecmp(id, want) == 0)
			return m;
	}
	return NULL;
}

/*
 * MRSIGNERSEAM and SEAM attributes against the TDX module (or, for a
 * quote with a module version, that version's identity), and the
 * module's own TCB level from TEE_TCB_SVN[0].
 */
static dd_err_t check_module(const json_t *tcb_info, const dd_quote *q,
			     level *mod_level, dd_quote_result *res)
{
	const uint8_t *svn = q->body.tee_tcb_svn;
	const json_t *module = json_object_get(tcb_info, "tdxModule");
	const json_t *levels;
	uint8_t mrsigner[48], attr[8], mask[8];
	int found;
	dd_err_t rc;

	if (svn[1] > 0) {
		module = find_module(tcb_info, svn[1]);
		if (module == NULL)
			return dd_qv_fail(res, DD_QV_TDX_MODULE_MISMATCH,
					  "no TDX_%02X module identity",
					  svn[1]);
	}
	if (!json_is_object(module) ||
	    !get_hex(module, "mrsigner", mrsigner, sizeof mrsigner) ||
	    !get_hex(module, "attributes", attr, sizeof attr) ||
	    !get_hex(module, "attributesMask", mask, sizeof mask))
		return bad(res, "TDX module identity fields");
	if (memcmp(mrsigner, q->body.mrsignerseam, sizeof mrsigner) != 0)
		return dd_qv_fail(res, DD_QV_TDX_MODULE_MISMATCH,
				  "MRSIGNERSEAM is not the TDX module's");
	/* Intel's rule: SEAM attributes are all zero and equal the module's
	 * (the mask is not applied). */
	for (size_t i = 0; i < sizeof attr; i++)
		if (q->body.seam_attributes[i] != 0 ||
		    q->body.seam_attributes[i] != attr[i])
			return dd_qv_fail(res, DD_QV_TDX_MODULE_MISMATCH,
					  "SEAM attributes are not zero / "
					  "the module's");
	mod_level->obj = NULL;
	mod_level->status = DD_TCB_UP_TO_DATE;
	if (svn[1] == 0)
		return DD_OK; /* no separately versioned module */
	levels = get_array(module, "tcbLevels");
	if (levels == NULL)
		return bad(res, "TDX module tcbLevels");
	rc = pick_isv_level(levels, svn[0], mod_level, &found, res);
	if (rc)
		return rc;
	if (!found)
		return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
				  "TDX module SVN %u is below every module "
				  "level", svn[0]);
	return DD_OK;
}

/*
 * The SGX level: first whose 16 components and PCESVN the PCK
 * certificate meets. The TDX level: first of those whose TDX components
 * TEE_TCB_SVN meets (bytes 0-1 skipped when the module is versioned,
 * since the module identity judges them).
 */
static dd_err_t pick_platform_levels(const json_t *levels, const dd_quote *q,
				     const dd_pck_ext *ext, level *sgx,
				     level *tdx, dd_quote_result *res)
{
	const uint8_t *svn = q->body.tee_tcb_svn;
	size_t first = svn[1] > 0 ? 2 : 0;
	uint8_t sgx_svn[16], tdx_svn[16];
	dd_tcb_status st;
	uint16_t pcesvn;
	int ok;

	sgx->obj = tdx->obj = NULL;
	for (size_t i = 0; i < json_array_size(levels); i++) {
		const json_t *lvl = json_array_get(levels, i);
		const json_t *tcb = json_object_get(lvl, "tcb");

		if (!get_components(tcb, "sgxtcbcomponents", sgx_svn) ||
		    !get_components(tcb, "tdxtcbcomponents", tdx_svn) ||
		    !get_u16(tcb, "pcesvn", &pcesvn) ||
		    !get_status(lvl, 0, &st))
			return bad(res, "malformed TCB level");
		ok = ext->pcesvn >= pcesvn;
		for (size_t k = 0; ok && k < 16; k++)
			ok = ext->comp_svn[k] >= sgx_svn[k];
		if (!ok)
			continue;
		if (sgx->obj == NULL) {
			sgx->obj = lvl;
			sgx->status = st;
		}
		for (size_t k = first; ok && k < 16; k++)
			ok = svn[k] >= tdx_svn[k];
		if (ok) {
			tdx->obj = lvl;
			tdx->status = st;
			return DD_OK;
		}
	}
	if (sgx->obj == NULL)
		return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
				  "PCK SGX TCB is below every TCB level");
	return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
			  "TEE_TCB_SVN is below every TCB level");
}

static int needs_config(dd_tcb_status s)
{
	return s == DD_TCB_CONFIGURATION_NEEDED ||
	       s == DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       s == DD_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
	       s == DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/*
 * An out-of-date or revoked component (module or QE) drags the platform
 * status down; the configuration part of the platform status survives.
 */
static dd_tcb_status converge(dd_tcb_status platform, dd_tcb_status part)
{
	if (part == DD_TCB_REVOKED)
		return DD_TCB_REVOKED;
	if (part != DD_TCB_OUT_OF_DATE)
		return platform;
	if (platform == DD_TCB_UP_TO_DATE ||
	    platform == DD_TCB_SW_HARDENING_NEEDED)
		return DD_TCB_OUT_OF_DATE;
	if (platform == DD_TCB_CONFIGURATION_NEEDED ||
	    platform == DD_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	return platform;
}

/*
 * TD 1.5: when only the TDX module is out of date and TEE_TCB_SVN_2 (the
 * SVN the TD would get if relaunched now) reaches the newest levels, a
 * relaunch fixes it: TDRelaunchAdvised[ConfigurationNeeded].
 */
static dd_err_t relaunch(const json_t *tcb_info, const json_t *levels,
			 const dd_quote *q, dd_tcb_status sgx_status,
			 dd_tcb_status qe_status, dd_tcb_status mod_status,
			 dd_tcb_status *status, dd_quote_result *res)
{
	const uint8_t *svn2 = q->body.tee_tcb_svn2;
	uint8_t latest_tdx[16];
	const json_t *latest_tcb, *mod, *mod_levels;
	uint16_t latest_mod;
	int advised, config;

	if (qe_status != DD_TCB_UP_TO_DATE)
		return DD_OK;
	if (sgx_status != DD_TCB_UP_TO_DATE &&
	    sgx_status != DD_TCB_SW_HARDENING_NEEDED &&
	    sgx_status != DD_TCB_CONFIGURATION_NEEDED &&
	    sgx_status != DD_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return DD_OK;
	if (*status != DD_TCB_OUT_OF_DATE &&
	    *status != DD_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED)
		return DD_OK;
	if (mod_status != DD_TCB_OUT_OF_DATE)
		return DD_OK;
	if (json_array_size(levels) == 0)
		return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
				  "TCB info has no TCB levels");
	latest_tcb = json_object_get(json_array_get(levels, 0), "tcb");
	if (!get_components(latest_tcb, "tdxtcbcomponents", latest_tdx))
		return bad(res, "malformed TCB level");
	if (svn2[1] == 0) {
		advised = svn2[0] >= latest_tdx[0] && svn2[2] >= latest_tdx[2];
	} else {
		mod = find_module(tcb_info, svn2[1]);
		if (mod == NULL)
			return dd_qv_fail(res, DD_QV_TDX_MODULE_MISMATCH,
					  "no TDX_%02X module identity for "
					  "TEE_TCB_SVN_2", svn2[1]);
		mod_levels = get_array(mod, "tcbLevels");
		if (mod_levels == NULL || json_array_size(mod_levels) == 0)
			return dd_qv_fail(res, DD_QV_TCB_NOT_SUPPORTED,
					  "TDX module identity has no levels");
		if (!get_u16(json_object_get(json_array_get(mod_levels, 0),
					     "tcb"),
			     "isvsvn", &latest_mod))
			return bad(res, "malformed TDX module level");
		advised = svn2[0] >= latest_mod && svn2[2] >= latest_tdx[2];
	}
	if (!advised)
		return DD_OK;
	config = needs_config(sgx_status) || needs_config(*status);
	*status = config ? DD_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
			 : DD_TCB_TD_RELAUNCH_ADVISED;
	return DD_OK;
}

dd_err_t dd_tcb_evaluate(const json_t *tcb_info, const json_t *qe_identity,
			 const dd_quote *q, const dd_pck_ext *ext,
			 dd_quote_result *res)
{
	uint8_t fmspc[6], pceid[2];
	const json_t *levels;
	level qe_lvl = {NULL, DD_TCB_NOT_EVALUATED};
	level mod_lvl = qe_lvl, sgx_lvl = qe_lvl, tdx_lvl = qe_lvl;
	dd_tcb_status status;
	const char *date;
	dd_err_t rc;

	rc = check_qe_identity(qe_identity, q, &qe_lvl, res);
	if (rc)
		return rc;
	if (!get_hex(tcb_info, "fmspc", fmspc, sizeof fmspc) ||
	    !get_hex(tcb_info, "pceId", pceid, sizeof pceid))
		return bad(res, "TCB info fmspc/pceId");
	if (memcmp(fmspc, ext->fmspc, sizeof fmspc) != 0)
		return dd_qv_fail(res, DD_QV_TCB_INFO_MISMATCH,
				  "TCB info is for another FMSPC");
	if (memcmp(pceid, ext->pceid, sizeof pceid) != 0)
		return dd_qv_fail(res, DD_QV_TCB_INFO_MISMATCH,
				  "TCB info is for another PCE-ID");
	rc = check_module(tcb_info, q, &mod_lvl, res);
	if (rc)
		return rc;
	levels = get_array(tcb_info, "tcbLevels");
	if (levels == NULL)
		return bad(res, "TCB info tcbLevels");
	rc = pick_platform_levels(levels, q, ext, &sgx_lvl, &tdx_lvl, res);
	if (rc)
		return rc;

	res->platform_status = tdx_lvl.status;
	res->module_status = mod_lvl.status;
	status = converge(tdx_lvl.status, mod_lvl.status);
	if (status != DD_TCB_REVOKED && q->body.type == DD_QUOTE_BODY_TD15) {
		rc = relaunch(tcb_info, levels, q, sgx_lvl.status,
			      qe_lvl.status, mod_lvl.status, &status, res);
		if (rc)
			return rc;
	}
	status = converge(status, qe_lvl.status);
	res->tcb_status = status;
	if (dd_json_get_str(tdx_lvl.obj, "tcbDate", &date) == DD_OK)
		snprintf(res->tcb_date, sizeof res->tcb_date, "%s", date);
	rc = add_advisories(tdx_lvl.obj, res);
	if (rc == DD_OK && mod_lvl.obj != NULL)
		rc = add_advisories(mod_lvl.obj, res);
	if (rc == DD_OK)
		rc = add_advisories(qe_lvl.obj, res);
	if (rc)
		return rc;
	res->checks |= DD_QV_CHECK_TCB;
	if (status == DD_TCB_REVOKED)
		return dd_qv_fail(res, DD_QV_TCB_REVOKED,
				  "TCB status is Revoked");
	return DD_OK;
}
