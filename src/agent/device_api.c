#include "agent/device_api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/page_reply.h"
#include "agent/pages.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"

#define PAGE_MAX (1024u * 1024)

struct dd_device_api {
	dd_devices *devices;
	const dd_session_keys *keys;
	char *hostname;
	int dev;
	int64_t (*now_ms)(void);
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- pages ----------------------------------------------------------- */

static void page_who(const dd_device_api *api, const dd_caller *who,
		     char csrf[DD_CSRF_LEN + 1], dd_page_who *out)
{
	if (dd_csrf_token(api->keys, who->session_token, who->session_token_len,
			  csrf) != DD_OK)
		csrf[0] = '\0';
	*out = (dd_page_who){.login = who->session.login,
			     .admin = who->kind == DD_CALLER_ADMIN,
			     .dev = api->dev || who->session.dev, .csrf = csrf};
}

static void notice(dd_device_api *api, dd_http_req *req, const dd_caller *who,
		   int status, const char *title, const char *detail)
{
	char csrf[DD_CSRF_LEN + 1];
	dd_page_who pw;
	dd_buf page;

	page_who(api, who, csrf, &pw);
	dd_buf_init(&page, PAGE_MAX);
	dd_agent_page_reply(req, status, &page,
			    dd_page_notice(&page, title, detail, &pw));
	dd_buf_free(&page);
}

/* GET /admin/enroll?pubkey=&label=: the confirmation page (spec 4.9). */
static void handle_enroll(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_device_api *api = ud;
	const char *pub = dd_http_req_query(req, "pubkey");
	const char *label = dd_http_req_query(req, "label");
	char hex[2 * DD_DEVICE_KEY_LEN + 1], clean[DD_DEVICE_LABEL_MAX + 1];
	char why[160], csrf[DD_CSRF_LEN + 1];
	uint8_t key[DD_DEVICE_KEY_LEN];
	dd_page_who pw;
	dd_buf page;
	dd_err_t rc;

	/* Refusals are pages too (200, as the reference): a person reads them. */
	if (dd_device_key_parse(pub, key, why, sizeof why) != DD_OK) {
		notice(api, req, who, 200, "Invalid pubkey", why);
		return;
	}
	if (dd_device_label_parse(label, clean, why, sizeof why) != DD_OK) {
		notice(api, req, who, 200, "Invalid label", why);
		return;
	}
	dd_hex_encode(key, sizeof key, hex);
	page_who(api, who, csrf, &pw);
	dd_buf_init(&page, PAGE_MAX);
	rc = dd_page_enroll(&page, hex, clean, api->hostname,
			    dd_devices_is_trusted(api->devices, key), &pw);
	dd_agent_page_reply(req, 200, &page, rc);
	dd_buf_free(&page);
}

static json_t *list_json(const dd_device_api *api)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < dd_devices_count(api->devices); i++) {
		if (json_array_append_new(arr, dd_device_json(
				dd_devices_at(api->devices, i))) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* A browser navigating here wants the page; API clients send JSON Accept. */
static int wants_page(dd_http_req *req)
{
	const char *acc = dd_http_req_header(req, "Accept");

	return acc != NULL && strstr(acc, "text/html") != NULL;
}

/* GET /api/v1/devices. */
static void handle_list(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_device_api *api = ud;
	json_t *arr = list_json(api), *body = NULL;
	char csrf[DD_CSRF_LEN + 1];
	dd_page_who pw;
	dd_buf page;

	if (arr == NULL) {
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
		return;
	}
	if (wants_page(req)) {
		page_who(api, who, csrf, &pw);
		dd_buf_init(&page, 8 * PAGE_MAX);
		dd_agent_page_reply(req, 200, &page,
				    dd_page_devices(&page, arr, &pw));
		dd_buf_free(&page);
		json_decref(arr);
		return;
	}
	body = json_pack("{s:o}", "devices", arr);
	if (body == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, body);
	json_decref(body);
}

/* --- pairing --------------------------------------------------------- */

static int is_form(dd_http_req *req)
{
	const char *ct = dd_http_req_header(req, "Content-Type");

	return ct != NULL &&
	       strncmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

/*
 * pubkey and label from the page's form or a JSON body; INVALID with
 * why (a message for the client) otherwise.
 */
static dd_err_t read_pairing(dd_http_req *req, uint8_t key[DD_DEVICE_KEY_LEN],
			     char label[DD_DEVICE_LABEL_MAX + 1], char *why,
			     size_t why_len)
{
	size_t len = 0;
	const uint8_t *body = dd_http_req_body(req, &len);
	char hex[2 * DD_DEVICE_KEY_LEN + 2], raw[4 * DD_DEVICE_LABEL_MAX];
	const char *pub = NULL, *lab = NULL;
	json_t *v = NULL;
	dd_err_t rc;

	if (is_form(req)) {
		rc = dd_form_field((const char *)body, len, "pubkey", hex,
				   sizeof hex);
		if (rc == DD_OK)
			rc = dd_form_field((const char *)body, len, "label", raw,
					   sizeof raw);
		pub = hex;
		lab = raw;
	} else {
		rc = dd_json_parse(body, len, DD_DEVICE_MAX_BODY, &v, why, why_len);
		if (rc == DD_OK && dd_json_get_str(v, "pubkey", &pub) != DD_OK)
			rc = DD_ERR_INVALID;
		if (rc == DD_OK && dd_json_get_str(v, "label", &lab) != DD_OK)
			rc = DD_ERR_INVALID;
	}
	if (rc) {
		snprintf(why, why_len, "the body must carry pubkey and label "
			 "(JSON or a form)");
		json_decref(v);
		return DD_ERR_INVALID;
	}
	rc = dd_device_key_parse(pub, key, why, why_len);
	if (rc == DD_OK)
		rc = dd_device_label_parse(lab, label, why, why_len);
	json_decref(v);
	return rc;
}

/* POST /api/v1/devices (spec 3.3, 4.7). */
static void handle_pair(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_device_api *api = ud;
	uint8_t key[DD_DEVICE_KEY_LEN];
	char label[DD_DEVICE_LABEL_MAX + 1], why[160];
	dd_device rec;
	json_t *body;
	dd_err_t rc;

	memset(&rec, 0, sizeof rec);
	rc = read_pairing(req, key, label, why, sizeof why);
	if (rc) {
		if (is_form(req))
			notice(api, req, who, 400, "Not paired", why);
		else
			dd_http_respond_error(req, 400, "bad_request", "%s", why);
		return;
	}
	rc = dd_devices_pair(api->devices, key, label, who->session.login,
			     who->session.user_id, api->now_ms(), &rec);
	if (rc) {
		dd_log_err(rc, "pairing a device");
		if (rc == DD_ERR_BUSY)
			dd_http_respond_error(req, 409, "too_many_devices",
					      "the device registry is full "
					      "(DD_AGENT_MAX_DEVICES)");
		else
			dd_http_respond_err(req, rc, "saving the device registry");
		return;
	}
	dd_log_info("device paired: %s by %s (%llu)", rec.pubkey, rec.paired_by,
		    (unsigned long long)rec.paired_by_id);
	if (is_form(req)) {
		if (dd_http_set_header(req, "Location", "/api/v1/devices") != DD_OK)
			dd_http_respond_err(req, DD_ERR_INTERNAL, NULL);
		else
			dd_http_respond(req, 303, "text/plain", "paired\n", 7);
		return;
	}
	body = dd_device_json(&rec);
	if (body == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 201, body);
	json_decref(body);
}

/*
 * Revokes the device named in the path: DD_OK with *rec, or the request
 * has been answered (a page for the form, JSON otherwise).
 */
static dd_err_t revoke_named(dd_device_api *api, dd_http_req *req,
			     const dd_caller *who, int form, dd_device *rec)
{
	uint8_t key[DD_DEVICE_KEY_LEN];
	char why[160] = "";
	dd_err_t rc;

	rc = dd_device_key_parse(dd_http_req_param(req, "pubkey"), key, why,
				 sizeof why);
	if (rc == DD_OK)
		rc = dd_devices_revoke(api->devices, key, api->now_ms(), rec);
	if (rc == DD_ERR_INVALID && form)
		notice(api, req, who, 400, "Not revoked", why);
	else if (rc == DD_ERR_INVALID)
		dd_http_respond_error(req, 400, "bad_request", "%s", why);
	else if (rc == DD_ERR_NOT_FOUND && form)
		notice(api, req, who, 404, "Not revoked",
		       "No paired, unrevoked device has that key.");
	else if (rc == DD_ERR_NOT_FOUND)
		dd_http_respond_error(req, 404, "not_found",
				      "no paired, unrevoked device with that key");
	else if (rc)
		dd_http_respond_err(req, rc, "saving the device registry");
	if (rc && rc != DD_ERR_INVALID && rc != DD_ERR_NOT_FOUND)
		dd_log_err(rc, "revoking a device");
	if (rc == DD_OK)
		dd_log_info("device revoked: %s by %s (%llu)", rec->pubkey,
			    who->session.login,
			    (unsigned long long)who->session.user_id);
	return rc;
}

/* POST /api/v1/devices/{pubkey}/revoke: the list page's button. */
static void handle_revoke_form(dd_http_req *req, const dd_caller *who,
			       void *ud)
{
	dd_device rec;

	if (revoke_named(ud, req, who, 1, &rec) != DD_OK)
		return;
	if (dd_http_set_header(req, "Location", "/api/v1/devices") != DD_OK)
		dd_http_respond_err(req, DD_ERR_INTERNAL, NULL);
	else
		dd_http_respond(req, 303, "text/plain", "revoked\n", 8);
}

/* DELETE /api/v1/devices/{pubkey} (spec 3.3, 4.8). */
static void handle_revoke(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_device rec;
	json_t *body;

	if (revoke_named(ud, req, who, 0, &rec) != DD_OK)
		return;
	body = json_pack("{s:s, s:I}", "revoked", rec.pubkey, "at_ms",
			 (json_int_t)rec.revoked_at_ms);
	if (body == NULL)
		dd_http_respond_err(req, DD_ERR_NOMEM, NULL);
	else
		dd_http_respond_json(req, 200, body);
	json_decref(body);
}

/* --- lifecycle ------------------------------------------------------- */

dd_err_t dd_device_api_new(const dd_device_api_opts *o, dd_device_api **out)
{
	dd_device_api *api = dd_calloc(1, sizeof *api);

	*out = NULL;
	if (api == NULL)
		return DD_ERR_NOMEM;
	api->devices = o->devices;
	api->keys = o->keys;
	api->dev = o->dev;
	api->now_ms = o->now_ms ? o->now_ms : wall_ms;
	api->hostname = dd_strdup(o->hostname ? o->hostname : "this agent");
	if (api->hostname == NULL) {
		dd_free(api);
		return DD_ERR_NOMEM;
	}
	*out = api;
	return DD_OK;
}

void dd_device_api_free(dd_device_api *api)
{
	if (api == NULL)
		return;
	dd_free(api->hostname);
	dd_free(api);
}

size_t dd_device_api_routes(dd_device_api *api, dd_authz_route *r)
{
	r[0] = (dd_authz_route){DD_M_GET, "/admin/enroll", handle_enroll, api,
				0, 0};
	r[1] = (dd_authz_route){DD_M_GET, "/api/v1/devices", handle_list, api,
				0, 0};
	r[2] = (dd_authz_route){DD_M_POST, "/api/v1/devices", handle_pair, api,
				DD_DEVICE_MAX_BODY, 0};
	r[3] = (dd_authz_route){DD_M_DELETE, "/api/v1/devices/{pubkey}",
				handle_revoke, api, 0, 0};
	r[4] = (dd_authz_route){DD_M_POST, "/api/v1/devices/{pubkey}/revoke",
				handle_revoke_form, api, 1024, 0};
	return DD_DEVICE_ROUTES;
}
