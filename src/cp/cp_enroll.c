#include "cp/cp_enroll.h"

#include <stdio.h>
#include <string.h>

#include "agent/devices.h"
#include "core/buf.h"
#include "core/html.h"
#include "core/log.h"
#include "core/strutil.h"

#define PAGE_MAX (64u * 1024)

/* A small card page; the fleet pages proper live in cp_pages. */
static void card(dd_http_req *req, const dd_caller *who, const char *title,
		 const char *detail)
{
	dd_buf p;
	dd_err_t rc;

	dd_buf_init(&p, PAGE_MAX);
	rc = dd_buf_append_str(&p, "<!doctype html><html lang=en><head><meta "
			       "charset=utf-8><meta name=viewport content="
			       "'width=device-width'><title>DD — ");
	if (rc == DD_OK)
		rc = dd_html_escape(&p, title);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&p, "</title><link rel=stylesheet href="
				       "/static/dd.css></head><body>");
	if (rc == DD_OK && who->session.dev)
		rc = dd_buf_append_str(&p, "<div class=banner-simulated>"
				       "DEVELOPMENT: SIMULATED quotes, local "
				       "issuers, dev sign-in</div>");
	if (rc == DD_OK)
		rc = dd_buf_append_str(&p, "<header><b>DevOps Defender</b>"
				       "<nav><a href=/>Fleet</a></nav></header>"
				       "<main><h1>");
	if (rc == DD_OK)
		rc = dd_html_escape(&p, title);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&p, "</h1><p class=status-dead>");
	if (rc == DD_OK)
		rc = dd_html_escape(&p, detail);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&p, "</p></main></body></html>");
	if (rc)
		dd_http_respond_err(req, rc, NULL);
	else
		dd_http_respond(req, 200, "text/html; charset=utf-8", p.data,
				p.len);
	dd_buf_free(&p);
}

/* Whether a can take a pairing from this user. */
static int eligible(const dd_store_brief *a, const dd_caller *who)
{
	if (strcmp(a->agent_id, "control-plane") == 0 ||
	    a->status != DD_AGENT_HEALTHY || a->read_only ||
	    a->ingress == DD_INGRESS_NONE)
		return 0;
	if (who->kind == DD_CALLER_ADMIN)
		return 1;
	return a->has_owner && dd_authz_session_owns(&who->session, &a->owner);
}

/* Where the browser reaches the agent: its direct URL or its hostname. */
static dd_err_t agent_base(const dd_store_brief *a, dd_buf *out)
{
	if (a->ingress == DD_INGRESS_DIRECT && a->ingress_url[0] != '\0')
		return dd_buf_append_str(out, a->ingress_url);
	return dd_buf_appendf(out, "https://%s", a->hostname);
}

static dd_err_t location(const dd_store_brief *a, const char *pubkey,
			 const char *label, dd_buf *out)
{
	dd_err_t rc = agent_base(a, out);

	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "/admin/enroll?pubkey=");
	if (rc == DD_OK)
		rc = dd_pct_encode(pubkey, strlen(pubkey), out);
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "&label=");
	if (rc == DD_OK)
		rc = dd_pct_encode(label, strlen(label), out);
	return rc;
}

struct pick {
	const char *want;        /* an agent_id, or NULL: the first eligible */
	const dd_caller *who;
	dd_store_brief *out;
	int found;
};

/* DD_ERR_EXISTS stops the scan at the first match (not an error here). */
static dd_err_t pick_one(const dd_store_brief *b, void *ud)
{
	struct pick *p = ud;

	if ((p->want != NULL && strcmp(b->agent_id, p->want) != 0) ||
	    !eligible(b, p->who))
		return DD_OK;
	*p->out = *b;
	p->found = 1;
	return DD_ERR_EXISTS;
}

/*
 * The named agent, or the first eligible one; NOT_FOUND when none. A
 * scan reads only the plain columns: cheap even for a large fleet.
 */
static dd_err_t pick(dd_store *store, const char *want, const dd_caller *who,
		     dd_store_brief *out)
{
	struct pick p = {.want = want, .who = who, .out = out};
	dd_err_t rc = dd_store_scan(store, pick_one, &p, NULL);

	if (p.found)
		return DD_OK;
	return rc ? rc : DD_ERR_NOT_FOUND;
}

static void handle_enroll(dd_http_req *req, const dd_caller *who, void *ud)
{
	dd_store *store = ud;
	const char *pub = dd_http_req_query(req, "pubkey");
	const char *label = dd_http_req_query(req, "label");
	const char *want = dd_http_req_query(req, "agent");
	char why[160], hex[2 * DD_DEVICE_KEY_LEN + 1];
	char clean[DD_DEVICE_LABEL_MAX + 1];
	uint8_t key[DD_DEVICE_KEY_LEN];
	dd_store_brief a;
	dd_buf loc;
	dd_err_t rc;

	/* A native bearer is not a browser confirming anything (spec 3.7). */
	if (!who->via_cookie) {
		dd_http_respond_error(req, 401, "unauthenticated",
				      "device pairing needs a browser session");
		return;
	}
	if (dd_device_key_parse(pub, key, why, sizeof why) != DD_OK) {
		card(req, who, "Invalid pubkey", why);
		return;
	}
	if (dd_device_label_parse(label, clean, why, sizeof why) != DD_OK) {
		card(req, who, "Invalid label", why);
		return;
	}
	dd_hex_encode(key, sizeof key, hex);
	rc = store ? pick(store, want, who, &a) : DD_ERR_CLOSED;
	if (rc == DD_ERR_NOT_FOUND) {
		card(req, who, "No read-write agent available",
		     want ? "That agent is not one of yours that is healthy "
			    "and read-write."
			  : "None of your agents is healthy and read-write "
			    "right now.");
		return;
	}
	if (rc) {
		dd_http_respond_err(req, rc, "reading the fleet");
		return;
	}
	dd_buf_init(&loc, 4096);
	rc = location(&a, hex, clean, &loc);
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Location", dd_buf_str(&loc));
	if (rc)
		dd_http_respond_err(req, rc, "building the agent's URL");
	else
		dd_http_respond(req, 307, "text/plain", "to the agent\n", 13);
	dd_buf_free(&loc);
}

size_t dd_cp_enroll_routes(dd_store *store, dd_authz_route *routes)
{
	routes[0] = (dd_authz_route){DD_M_GET, "/admin/enroll", handle_enroll,
				     store, 0, 0};
	return DD_CP_ENROLL_ROUTES;
}
