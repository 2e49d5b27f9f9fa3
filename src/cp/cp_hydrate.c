/*
 * cp_hydrate.c: the successor's side of the export (cp_hydrate.h).
 */
#include "cp/cp_hydrate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"
#include "cp/cp_api.h"

#define DEFAULT_TIMEOUT_MS 10000u
#define URL_MAX 1024

enum stage { NONCE, MINT, EXPORT, IMPORT, DONE };

struct dd_cp_hydrate {
	char url[URL_MAX];
	dd_httpc *http;
	dd_attestor *att;
	dd_store *store;
	uint64_t timeout_ms;
	int64_t (*now_ms)(void);
	dd_cp_hydrate_cb cb;
	void *ud;
	enum stage stage;
	dd_httpc_req *req;        /* the GET in flight */
	bool cancelled;
	char nonce_hex[2 * DD_REG_NONCE_LEN + 1];
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void finish(dd_cp_hydrate *h, dd_err_t err, size_t n, const char *why)
{
	h->stage = DONE;
	h->req = NULL;
	if (h->cancelled) {
		OPENSSL_cleanse(h->nonce_hex, sizeof h->nonce_hex);
		dd_free(h);
		return;
	}
	h->cb(err, n, why, h->ud);
}

static void on_imported(const dd_store_result *res, void *ud)
{
	dd_cp_hydrate *h = ud;
	char why[320];

	snprintf(why, sizeof why, "%s%s", res->rc ? "import refused: " : "",
		 res->why);
	finish(h, res->rc, res->written, why);
}

static void on_export(dd_httpc_result *res, void *ud)
{
	dd_cp_hydrate *h = ud;
	char why[320];
	dd_err_t rc;

	h->req = NULL;
	if (res->err || res->status != 200) {
		if (res->err)
			snprintf(why, sizeof why, "export: %s", res->message);
		else
			snprintf(why, sizeof why, "export: HTTP %ld: %.200s",
				 res->status, dd_buf_str(&res->body));
		finish(h, res->err ? res->err : DD_ERR_UPSTREAM, 0, why);
		return;
	}
	h->stage = IMPORT;
	rc = dd_store_import(h->store, res->body.data, res->body.len,
			     h->now_ms(), on_imported, h);
	if (rc) {
		snprintf(why, sizeof why, "import: %s", dd_strerror(rc));
		finish(h, rc, 0, why);
	}
}

static void on_minted(dd_err_t err, const char *token, const char *why_mint,
		      void *ud)
{
	dd_cp_hydrate *h = ud;
	char url[URL_MAX + 160], why[320];
	dd_buf auth;
	const char *hdr[1];
	dd_httpc_request rq = {.url = url, .headers = hdr, .n_headers = 1,
			       .timeout_ms = h->timeout_ms,
			       .max_response = DD_STORE_EXPORT_MAX};
	dd_err_t rc;

	if (h->cancelled || err) {
		snprintf(why, sizeof why, "minting our token: %s",
			 why_mint != NULL ? why_mint : dd_strerror(err));
		finish(h, err ? err : DD_ERR_CANCELLED, 0, why);
		return;
	}
	snprintf(url, sizeof url, "%s/api/v1/admin/export?nonce=%s", h->url,
		 h->nonce_hex);
	dd_buf_init(&auth, 32 * 1024);
	rc = dd_buf_appendf(&auth, "Authorization: Bearer %s", token);
	hdr[0] = dd_buf_str(&auth);
	h->stage = EXPORT;
	if (rc == DD_OK)
		rc = dd_httpc_start(h->http, &rq, on_export, h, &h->req);
	dd_buf_free(&auth);
	if (rc) {
		snprintf(why, sizeof why, "export request: %s", dd_strerror(rc));
		finish(h, rc, 0, why);
	}
}

/* {"nonce": 64 hex} into h->nonce_hex. */
static dd_err_t nonce_of(dd_cp_hydrate *h, const dd_httpc_result *res)
{
	json_t *o = NULL;
	const char *hex;
	uint8_t raw[DD_REG_NONCE_LEN];
	dd_err_t rc;

	rc = dd_json_parse(res->body.data, res->body.len, 4096, &o, NULL, 0);
	if (rc == DD_OK)
		rc = dd_json_get_str(o, "nonce", &hex);
	if (rc == DD_OK && (strlen(hex) != 2 * DD_REG_NONCE_LEN ||
			    dd_hex_decode(hex, strlen(hex), raw, sizeof raw)))
		rc = DD_ERR_INVALID;
	if (rc == DD_OK)
		memcpy(h->nonce_hex, hex, sizeof h->nonce_hex);
	json_decref(o);
	return rc;
}

static void on_nonce(dd_httpc_result *res, void *ud)
{
	dd_cp_hydrate *h = ud;
	uint8_t raw[DD_REG_NONCE_LEN], rd[64];
	char why[320];
	dd_err_t rc;

	h->req = NULL;
	rc = res->err ? res->err : res->status != 200 ? DD_ERR_UPSTREAM
						       : nonce_of(h, res);
	if (rc) {
		snprintf(why, sizeof why, "nonce: %s (HTTP %ld)",
			 res->err ? res->message : dd_strerror(rc), res->status);
		finish(h, rc, 0, why);
		return;
	}
	rc = dd_hex_decode(h->nonce_hex, strlen(h->nonce_hex), raw,
			   sizeof raw);
	if (rc == DD_OK)
		rc = dd_cp_export_binding(raw, rd);
	h->stage = MINT;
	if (rc == DD_OK)
		rc = dd_attestor_mint(h->att, rd, on_minted, h);
	if (rc) {
		snprintf(why, sizeof why, "minting our token: %s",
			 dd_strerror(rc));
		finish(h, rc, 0, why);
	}
}

dd_err_t dd_cp_hydrate_start(const dd_cp_hydrate_opts *o, dd_cp_hydrate_cb cb,
			     void *ud, dd_cp_hydrate **out)
{
	dd_cp_hydrate *h;
	char url[URL_MAX + 32];
	dd_httpc_request rq = {.url = url};
	dd_err_t rc;

	*out = NULL;
	if (o->url == NULL || strlen(o->url) >= URL_MAX)
		return DD_ERR_INVALID;
	h = dd_calloc(1, sizeof *h);
	if (h == NULL)
		return DD_ERR_NOMEM;
	snprintf(h->url, sizeof h->url, "%s", o->url);
	h->http = o->http;
	h->att = o->att;
	h->store = o->store;
	h->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	h->now_ms = o->now_ms ? o->now_ms : wall_ms;
	h->cb = cb;
	h->ud = ud;
	rq.timeout_ms = h->timeout_ms;
	snprintf(url, sizeof url, "%s/register/nonce", h->url);
	rc = dd_httpc_start(h->http, &rq, on_nonce, h, &h->req);
	if (rc) {
		dd_free(h);
		return rc;
	}
	*out = h;
	return DD_OK;
}

void dd_cp_hydrate_cancel(dd_cp_hydrate *h)
{
	if (h == NULL || h->cancelled)
		return;
	h->cancelled = true;
	/* A GET can be withdrawn; a mint or an import answers later. */
	if (h->req != NULL) {
		dd_httpc_cancel(h->req);
		h->req = NULL;
		h->stage = DONE;
	}
	if (h->stage == DONE || h->stage == NONCE || h->stage == EXPORT) {
		OPENSSL_cleanse(h->nonce_hex, sizeof h->nonce_hex);
		dd_free(h);
	}
}
