#include "auth/dev_signin.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/html.h"
#include "core/strutil.h"

struct dd_dev_signin {
	dd_broker *broker;
	char code[DD_DEV_SIGNIN_CODE_MAX + 1];
	size_t code_len;
	int made;
};

static const char page_head[] =
	"<!doctype html><html lang=en><head><meta charset=utf-8>"
	"<title>Dev sign-in</title><link rel=icon href=/static/favicon.svg>"
	"<link rel=stylesheet href=/static/dd.css>"
	"</head><body><div class=banner-simulated>DEVELOPMENT: simulated quotes, "
	"local issuers, no GitHub</div><main><h1>Dev sign-in</h1>"
	"<p>Sign in as a local user. This page exists only when the control "
	"plane runs with DD_DEV=1.</p>";

/* Opened without the code: where to find it, and a field to paste it. */
static const char page_no_code[] =
	"<p>Dev sign-in needs this run's sign-in code. Open the "
	"sign-in URL the dev fleet printed (<code>/auth/dev?code=...</code>, "
	"in the banner of <code>devopsdefender dev</code>, or in the control "
	"plane's log); the session then lasts. Or paste the code "
	"here.</p><form method=post action=/auth/dev>"
	"<label>Sign-in code <input type=password name=code required "
	"autocomplete=off></label>";

static const char page_tail[] =
	"<label>GitHub-style login <input name=login required "
	"pattern='[A-Za-z0-9][A-Za-z0-9\\-]{0,38}'></label>"
	"<label><input type=checkbox name=admin value=1> fleet admin</label>"
	"<button type=submit>Sign in</button></form></main></body></html>";

/* Up to max characters of the URL-safe base64 alphabet, at least min. */
static int code_shape_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

dd_err_t dd_dev_signin_make_code(char out[DD_DEV_SIGNIN_CODE_LEN + 1])
{
	unsigned char raw[16];
	dd_buf text;
	dd_err_t rc;

	out[0] = '\0';
	dd_buf_init(&text, 64);
	rc = dd_random_bytes(raw, sizeof raw);
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_URL, raw, sizeof raw, &text);
	if (rc == DD_OK && text.len != DD_DEV_SIGNIN_CODE_LEN)
		rc = DD_ERR_INTERNAL;
	if (rc == DD_OK)
		memcpy(out, text.data, DD_DEV_SIGNIN_CODE_LEN + 1);
	OPENSSL_cleanse(raw, sizeof raw);
	if (text.data != NULL)
		dd_freezero(text.data, text.alloc);
	text.data = NULL;
	dd_buf_free(&text);
	return rc;
}

dd_err_t dd_dev_signin_new(dd_broker *b, const char *code,
			   dd_dev_signin **out)
{
	dd_dev_signin *d;
	dd_err_t rc = DD_OK;

	*out = NULL;
	if (code != NULL &&
	    !code_shape_ok(code, DD_DEV_SIGNIN_CODE_LEN, DD_DEV_SIGNIN_CODE_MAX))
		return DD_ERR_INVALID;
	d = dd_calloc(1, sizeof *d);
	if (d == NULL)
		return DD_ERR_NOMEM;
	d->broker = b;
	if (code != NULL) {
		d->code_len = strlen(code); /* shape: at most the array */
		memcpy(d->code, code, d->code_len + 1);
	} else {
		rc = dd_dev_signin_make_code(d->code);
		d->code_len = DD_DEV_SIGNIN_CODE_LEN;
		d->made = 1;
	}
	if (rc) {
		dd_dev_signin_free(d);
		return rc;
	}
	*out = d;
	return DD_OK;
}

void dd_dev_signin_free(dd_dev_signin *d)
{
	if (d != NULL)
		dd_freezero(d, sizeof *d);
}

int dd_dev_signin_made_code(const dd_dev_signin *d)
{
	return d->made;
}

dd_err_t dd_dev_signin_url(const dd_dev_signin *d, const char *origin,
			   char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/auth/dev?code=%s", origin, d->code);

	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			OPENSSL_cleanse(out, cap);
		return DD_ERR_TOO_LARGE;
	}
	return DD_OK;
}

int dd_dev_signin_code_ok(const dd_dev_signin *d, const char *presented)
{
	/* The length is public (the shape says it); the bytes are not. */
	return strlen(presented) == d->code_len &&
	       CRYPTO_memcmp(presented, d->code, d->code_len) == 0;
}

/* The form's start: the code kept hidden, or asked for. */
static dd_err_t append_form(dd_buf *page, const char *code)
{
	dd_err_t rc;

	if (code == NULL)
		return dd_buf_append_str(page, page_no_code);
	rc = dd_buf_append_str(page, "<form method=post action=/auth/dev>"
				     "<input type=hidden name=code value=\"");
	if (rc == DD_OK)
		rc = dd_html_escape(page, code);
	if (rc == DD_OK)
		rc = dd_buf_append_str(page, "\">");
	return rc;
}

static void handle_page(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_dev_signin *d = ud;
	const char *rt = dd_http_req_query(req, "return_to");
	const char *code = dd_http_req_query(req, "code");
	char where[2048], why[160];
	dd_buf page;
	dd_err_t rc;

	(void)who;
	/* Kept as given (a wrong one is refused at POST, like any other). */
	if (code != NULL && !code_shape_ok(code, 1, DD_DEV_SIGNIN_CODE_MAX))
		code = NULL;
	if (rt == NULL ||
	    dd_broker_check_return(d->broker, rt, where, sizeof where, why,
				   sizeof why) != DD_OK)
		snprintf(where, sizeof where, "/");
	dd_buf_init(&page, 16384);
	rc = dd_buf_append_str(&page, page_head);
	if (rc == DD_OK)
		rc = append_form(&page, code);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page,
				       "<input type=hidden name=return_to value=\"");
	if (rc == DD_OK)
		rc = dd_html_escape(&page, where);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page, "\">");
	if (rc == DD_OK)
		rc = dd_buf_append_str(&page, page_tail);
	/* The URL holds the code: not cached, not sent to other origins. */
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Cache-Control", "no-store");
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Referrer-Policy", "same-origin");
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond(req, 200, "text/html; charset=utf-8", page.data,
				page.len);
	if (page.data != NULL)
		dd_freezero(page.data, page.alloc);
	page.data = NULL;
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

/*
 * The form's code against this run's. Missing, too long, undecodable or
 * wrong: one answer, so a refusal tells nothing about the code.
 */
static int form_code_ok(const dd_dev_signin *d, const uint8_t *body,
			size_t len)
{
	char code[DD_DEV_SIGNIN_CODE_MAX + 1];
	int ok;

	ok = body != NULL &&
	     dd_form_field((const char *)body, len, "code", code,
			   sizeof code) == DD_OK &&
	     dd_dev_signin_code_ok(d, code);
	OPENSSL_cleanse(code, sizeof code);
	return ok;
}

static void handle_post(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_dev_signin *d = ud;
	dd_broker *b = d->broker;
	const uint8_t *body;
	size_t len;
	char login[64], admin[8], rt[2048], where[2048], why[160];
	dd_session s;

	(void)who;
	body = dd_http_req_body(req, &len);
	if (!form_code_ok(d, body, len)) {
		dd_http_respond_error(req, 403, "bad_code",
				      "dev sign-in needs this run's code: open "
				      "the sign-in URL the dev fleet printed");
		return;
	}
	if (dd_form_field((const char *)body, len, "login", login,
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

size_t dd_dev_signin_routes(dd_dev_signin *d, dd_authz_route *r)
{
	r[0] = (dd_authz_route){DD_M_GET, "/auth/dev", handle_page, d, 0, 0};
	r[1] = (dd_authz_route){DD_M_POST, "/auth/dev", handle_post, d, 0, 0};
	return 2;
}
