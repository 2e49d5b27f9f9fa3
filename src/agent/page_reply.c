#include "agent/page_reply.h"

#include "core/log.h"

static dd_err_t page_headers(dd_http_req *req)
{
	dd_err_t rc;

	rc = dd_http_set_header(req, "Content-Security-Policy",
				DD_AGENT_PAGE_CSP);
	/*
	 * same-origin, not no-referrer: under no-referrer browsers send
	 * "Origin: null" with the pages' form POSTs, and the CSRF check
	 * (auth/authz.c) rightly refuses a foreign Origin.
	 */
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Referrer-Policy", "same-origin");
	if (rc == DD_OK)
		rc = dd_http_set_header(req, "Cache-Control", "no-store");
	return rc;
}

void dd_agent_page_reply(dd_http_req *req, int status, const dd_buf *page,
			 dd_err_t rc)
{
	/* A page without its policy is not sent at all. */
	if (rc == DD_OK)
		rc = page_headers(req);
	if (rc) {
		dd_log_err(rc, "rendering %s", dd_http_req_path(req));
		dd_http_respond_err(req, rc, NULL);
		return;
	}
	dd_http_respond(req, status, "text/html; charset=utf-8", page->data,
			page->len);
}
