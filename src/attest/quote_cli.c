#include "attest/quote_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "attest/collateral.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/strutil.h"

#define QUOTE_TEXT_MAX (4u * DD_QUOTE_MAX_LEN) /* room for a hex encoding */

static int usage(void)
{
	fputs("usage: devopsdefender quote [FILE|-] [--collateral FILE] "
	      "[--now UNIX-SECONDS|YYYY-MM-DDTHH:MM:SSZ]\n", stderr);
	return 2;
}

static dd_err_t read_all(const char *path, size_t cap, dd_buf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
	uint8_t chunk[8192];
	size_t n;
	dd_err_t rc = DD_OK;

	if (f == NULL)
		return DD_ERR_NOT_FOUND;
	dd_buf_init(out, cap);
	for (;;) {
		n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		rc = dd_buf_append(out, chunk, n);
		if (rc)
			break;
	}
	if (rc == DD_OK && ferror(f))
		rc = DD_ERR_IO;
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Raw if it starts like a quote; else hex; else Base64. */
static dd_err_t decode_input(const dd_buf *in, dd_buf *quote)
{
	const char *s = dd_buf_str(in);
	size_t n = in->len;
	dd_err_t rc;

	dd_buf_init(quote, DD_QUOTE_MAX_LEN);
	if (n >= 2 && (in->data[0] == 4 || in->data[0] == 5) && in->data[1] == 0)
		return dd_buf_append(quote, in->data, n);
	dd_str_trim(&s, &n);
	if (n % 2 == 0 && n / 2 <= DD_QUOTE_MAX_LEN) {
		rc = dd_buf_reserve(quote, n / 2);
		if (rc == DD_OK &&
		    dd_hex_decode(s, n, quote->data, n / 2) == DD_OK) {
			quote->len = n / 2;
			return DD_OK;
		}
	}
	return dd_b64_decode(DD_B64_STD, s, n, quote);
}

static json_t *hex(const uint8_t *p, size_t n)
{
	char buf[2 * 128 + 1];

	if (n > 128)
		n = 128;
	dd_hex_encode(p, n, buf);
	return json_string(buf);
}

static json_t *describe(const dd_quote *q)
{
	const dd_quote_body *b = &q->body;
	json_t *rtmr = json_array();

	for (int i = 0; i < 4; i++)
		json_array_append_new(rtmr, hex(b->rtmr[i], 48));
	return json_pack(
		"{s:i, s:s, s:i, s:o, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
		" s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}",
		"version", q->header.version, "body", dd_quote_body_name(q),
		"tee_type", (int)q->header.tee_type,
		"qe_vendor_id", hex(q->header.qe_vendor_id, 16),
		"simulated", dd_quote_is_simulated(q),
		"td_debug", dd_quote_td_is_debug(q),
		"tee_tcb_svn", hex(b->tee_tcb_svn, 16), "mrseam", hex(b->mrseam, 48),
		"mrsignerseam", hex(b->mrsignerseam, 48),
		"seam_attributes", hex(b->seam_attributes, 8),
		"td_attributes", hex(b->td_attributes, 8), "xfam", hex(b->xfam, 8),
		"mrtd", hex(b->mrtd, 48), "mrconfigid", hex(b->mrconfigid, 48),
		"mrowner", hex(b->mrowner, 48),
		"mrownerconfig", hex(b->mrownerconfig, 48), "rtmr", rtmr,
		"report_data", hex(b->report_data, 64),
		"attestation_key", hex(q->attestation_key, 64),
		"pck_chain_bytes", (json_int_t)q->pck_chain_len,
		"padding_bytes", (json_int_t)q->padding_len);
}

static json_t *verdict(const dd_quote_result *r)
{
	json_t *v = json_pack("{s:b, s:s, s:s, s:b}", "ok", r->reason == DD_QV_OK,
			      "reason", dd_qv_reason_name(r->reason),
			      "detail", r->detail, "simulated", r->simulated);

	if (v != NULL && (r->checks & DD_QV_CHECK_PCK_EXT))
		json_object_set_new(v, "fmspc", hex(r->fmspc, 6));
	if (v != NULL && (r->checks & DD_QV_CHECK_TCB)) {
		json_t *ids = json_array();
		for (size_t i = 0; i < r->n_advisory_ids; i++)
			json_array_append_new(ids, json_string(r->advisory_ids[i]));
		json_object_set_new(v, "tcb_status",
				    json_string(dd_tcb_status_name(r->tcb_status)));
		json_object_set_new(v, "tcb_date", json_string(r->tcb_date));
		json_object_set_new(v, "advisory_ids", ids);
	}
	return v;
}

static int parse_now(const char *s, int64_t *out)
{
	uint64_t v;

	if (dd_parse_u64(s, 0, INT64_MAX, &v) == DD_OK) {
		*out = (int64_t)v;
		return 0;
	}
	return dd_collateral_parse_time(s, out) == DD_OK ? 0 : -1;
}

static int dev_mode(void)
{
	dd_config *cfg = NULL;
	dd_buf errs;
	int dev = 0;

	dd_buf_init(&errs, 4096);
	if (dd_config_load(DD_MODE_CLIENT, dd_config_getenv, NULL, &cfg, &errs) ==
	    DD_OK)
		dev = cfg->dev;
	dd_config_free(cfg);
	dd_buf_free(&errs);
	return dev;
}

static int report(json_t *out, int code)
{
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (text != NULL)
		puts(text);
	free(text);
	json_decref(out);
	return code;
}

int dd_quote_cli_main(int argc, char **argv)
{
	const char *path = "-", *coll_path = NULL;
	dd_quote_verify_opts opts = {.now = (int64_t)time(NULL)};
	dd_collateral *coll = NULL;
	dd_quote_result res;
	dd_buf in, quote;
	dd_quote q;
	char why[256] = "";
	json_t *out;
	dd_err_t rc;
	int code;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--collateral") == 0 && i + 1 < argc)
			coll_path = argv[++i];
		else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			if (parse_now(argv[++i], &opts.now))
				return usage();
		} else if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
			path = argv[i];
		else
			return usage();
	}
	opts.allow_simulated = dev_mode();
	if (coll_path != NULL) {
		rc = read_all(coll_path, 1u << 20, &in);
		if (rc == DD_OK)
			rc = dd_collateral_parse(in.data, in.len, &coll, why, sizeof why);
		dd_buf_free(&in);
		if (rc) {
			fprintf(stderr, "devopsdefender: collateral %s: %s %s\n",
				coll_path, dd_strerror(rc), why);
			return 2;
		}
		opts.collateral = coll;
	}
	rc = read_all(path, QUOTE_TEXT_MAX, &in);
	if (rc) {
		fprintf(stderr, "devopsdefender: reading %s: %s\n", path, dd_strerror(rc));
		dd_collateral_free(coll);
		return 2;
	}
	rc = decode_input(&in, &quote);
	if (rc == DD_OK)
		rc = dd_quote_parse(quote.data, quote.len, &q);
	if (rc) {
		out = json_pack("{s:{s:b, s:s, s:s}}", "verification", "ok", 0,
				"reason", "unparsable", "detail", dd_strerror(rc));
		code = report(out, 1);
		goto done;
	}
	memset(&res, 0, sizeof res);
	dd_quote_verify(&q, &opts, &res);
	out = json_pack("{s:o, s:o}", "quote", describe(&q), "verification",
			verdict(&res));
	code = report(out, res.reason == DD_QV_OK ? 0 : 1);
	dd_quote_result_free(&res);
done:
	dd_buf_free(&in);
	dd_buf_free(&quote);
	dd_collateral_free(coll);
	return code;
}
