#include "auth/dev_signin.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/html.h"
#include "core/strutil.h"

static const char page_head[] =
	"<!doctype html><html lang=en><head><meta charset=utf-8>"
	"<title>Dev sign-in</title><link rel=icon href=/static/favicon.svg>"
	"<link rel=stylesheet href=/static/dd.css>"
	"</head><body><div class=banner-simulated>DEVELOPMENT: simulated quotes, "
	"local issuers, no GitHub</div><main><h1>Dev sign-in</h1>"
	"<p>Sign in as a local user. This page exists only when the control "
	"plane runs with DD_DEV=1.</p><form method=post action=/auth/dev>";

static const char page_tail[] =
	"<label>GitHub-style login <input name=login required "
	"pattern='[A-Za-z0-9][A-Za-z0-9\\-]{0,38}'></label>"
	"<label><input type=checkbox name=admin value=1> fleet admin</label>"
	"<button type=submit>Sign in</button></form></main></body></html>";

static void handle_page(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	const char *rt = dd_http_req_query(req, "return_to");
	char where[2048], why[160];
	dd_buf page;
	dd_err_t rc;

	(void)who;
	if (rt == NULL || dd_broker_check_return(b, rt, where, sizeof where, why,
						 sizeof why) != DD_OK)
		snprintf(where, sizeof where, "/");
	dd_buf_init(&page, 16384);
	rc = dd_buf_append_str(&page, page_head);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page,
				       "<input type=hidden name=return_to value=\"");
	if (rc == DD_OK)
		rc = dd_html_escape(&page, where);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page, "\">");
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page, page_tail);
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond(req, 200, "text/html; charset=utf-8", page.data,
				page.len);
	dd_buf_free(&page);
}

static int login_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 39 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * A stable non-zero id for a local user. The fleet owner's own login
 * (kind user) gets the owner's id, so "sign in as the owner" works.
 */
static uint64_t dev_user_id(const dd_principal *owner, const char *login)
{
	uint64_t h = 1469598103934665603ull;

	if (owner->kind == DD_PRINCIPAL_USER && strcmp(owner->name, login) == 0)
		return owner->id;
	for (const char *p = login; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	/* Above GitHub's ids, below 2^53 so JSON numbers keep it exact. */
	return (1ull << 52) | (h & ((1ull << 52) - 1));
}

static void handle_post(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_broker *b = ud;
	const uint8_t *body;
	size_t len;
	char login[64], admin[8], rt[2048], where[2048], why[160];
	dd_session s;

	(void)who;
	body = dd_http_req_body(req, &len);
	if (body == NULL ||
	    dd_form_field((const char *)body, len, "login", login,
			  sizeof login) != DD_OK ||
	    !login_ok(login)) {
		dd_http_respond_error(req, 400, "bad_login",
				      "login must be 1-39 of [A-Za-z0-9-]");
		return;
	}
	if (dd_form_field((const char *)body, len, "return_to", rt,
			  sizeof rt) != DD_OK ||
	    dd_broker_check_return(b, rt, where, sizeof where, why,
				   sizeof why) != DD_OK)
		snprintf(where, sizeof where, "/");
	memset(&s, 0, sizeof s);
	memcpy(s.login, login, strlen(login) + 1); /* login_ok: under 40 */
	s.user_id = dev_user_id(dd_broker_owner(b), login);
	s.exp = dd_broker_now(b) + DD_SESSION_LIFETIME_S;
	s.owner = *dd_broker_owner(b);
	s.is_fleet_admin =
		dd_form_field((const char *)body, len, "admin", admin,
			      sizeof admin) == DD_OK && strcmp(admin, "1") == 0;
	s.dev = 1;
	dd_broker_issue(b, req, &s, where);
}

size_t dd_dev_signin_routes(dd_broker *b, dd_authz_route *r)
{
	r[0] = (dd_authz_route){DD_M_GET, "/auth/dev", handle_page, b, 0, 0};
	r[1] = (dd_authz_route){DD_M_POST, "/auth/dev", handle_post, b, 0, 0};
	return 2;
}
