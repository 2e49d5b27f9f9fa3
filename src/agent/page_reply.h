/*
 * page_reply.h: the one way an agent HTML page is answered (issue 7).
 * Every page carries per-user data and a CSRF token, so each answer
 * also says: load nothing but our own stylesheet and data: images, run
 * no script, post forms only here, never be framed, send no Referer
 * to another site, never be cached. The server adds
 * X-Content-Type-Options: nosniff to every answer (net/http_resp.c).
 */
#ifndef DD_AGENT_PAGE_REPLY_H
#define DD_AGENT_PAGE_REPLY_H

#include "core/buf.h"
#include "core/err.h"
#include "net/http.h"

#define DD_AGENT_PAGE_CSP                                                  \
	"default-src 'none'; style-src 'self'; img-src 'self' data:; "     \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/*
 * Answers req with page as text/html (status) and the headers above,
 * or, when rc is an error (the page did not render), with rc's JSON
 * error, logged. page stays the caller's.
 */
void dd_agent_page_reply(dd_http_req *req, int status, const dd_buf *page,
			 dd_err_t rc);

#endif
