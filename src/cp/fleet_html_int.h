/*
 * fleet_html_int.h: pieces shared by fleet_html.c (the fleet page) and
 * fleet_html_agent.c (one agent's page). Not an interface: include only
 * from those two files.
 */
#ifndef DD_CP_FLEET_HTML_INT_H
#define DD_CP_FLEET_HTML_INT_H

#include <jansson.h>

#include "core/html.h"
#include "cp/fleet_html.h"

/* Appends text; the whole page fails at the first error (rc in scope). */
#define PUT(s) do { if (rc == DD_OK) rc = dd_buf_append_str(out, (s)); } while (0)
#define ESC(s) do { if (rc == DD_OK) rc = dd_html_escape(out, (s)); } while (0)
#define PUTF(...) do { if (rc == DD_OK) rc = dd_buf_appendf(out, __VA_ARGS__); } while (0)

/*
 * Document start up to <main>: title, our stylesheets, the banner when
 * banner is true, the header with the viewer and the sign-out form.
 */
dd_err_t dd_fh_head(dd_buf *out, const dd_fleet_ctx *c, const char *title,
			bool banner);
dd_err_t dd_fh_foot(dd_buf *out, const char *script);
dd_err_t dd_fh_banner(dd_buf *out);

/* <span class="pill status-CLASS">text</span>; text escaped. */
dd_err_t dd_fh_pill(dd_buf *out, const char *cls, const char *text);

/* "12s ago", "3m ago", "2h ago", "4d ago", "never" (ms 0). */
void dd_fh_ago(int64_t now_ms, int64_t ms, char *buf, size_t n);

/* A member of the health snapshot. */
json_int_t dd_fh_hint(const dd_store_agent *a, const char *key);
json_t *dd_fh_harr(const dd_store_agent *a, const char *key);
const char *dd_fh_str(const json_t *o, const char *key, const char *def);

/* "used/total MB", or "—" without a total. */
void dd_fh_mem(const dd_store_agent *a, char *buf, size_t n);

/*
 * The agent's own dashboard: its direct ingress URL, or https://host/
 * behind a tunnel; "" when there is none (the CP entry).
 */
void dd_fh_dashboard_url(const dd_store_agent *a, char *buf, size_t n);

/* An href for a URL from outside: only http(s) URLs pass; "" else. */
bool dd_fh_http_url(const char *u);

#endif
