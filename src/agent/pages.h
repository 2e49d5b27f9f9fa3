/*
 * pages.h: the agent's server-rendered pages (spec: http-surface 7.3,
 * 7.4): the VM dashboard and one workload's page. Rendering only: the
 * data comes in as the same JSON /health serves (and EE's logs reply),
 * every outside value is HTML-escaped, and pages load nothing but our
 * own /static/dd.css (no scripts, no outside requests).
 */
#ifndef DD_AGENT_PAGES_H
#define DD_AGENT_PAGES_H

#include <jansson.h>

#include "auth/authz.h"
#include "core/buf.h"
#include "core/err.h"

typedef struct dd_page_who {
	const char *login;
	int admin;
	int dev;                  /* the process or the session is dev */
	const char *csrf;         /* for the sign-out form */
} dd_page_who;

/* The dashboard from a /health object (borrowed). Appends to out. */
dd_err_t dd_page_dashboard(dd_buf *out, const json_t *health,
			   const dd_page_who *who);

/*
 * One workload: dep is its EE list entry, logs EE's logs reply (or NULL
 * when EE could not be asked; the page says so).
 */
dd_err_t dd_page_workload(dd_buf *out, const json_t *dep, const json_t *logs,
			  const dd_page_who *who);

/*
 * Device pairing (spec: noise-sessions 3.2, http-surface 4.9, with the
 * fix of 7.13): the whole key, grouped for reading aloud, its label,
 * who is pairing and where, and a form that POSTs pubkey, label and the
 * CSRF token to /api/v1/devices. already: the key is paired now.
 */
dd_err_t dd_page_enroll(dd_buf *out, const char *pubkey_hex,
			const char *label, const char *hostname, int already,
			const dd_page_who *who);

/* A refusal card ("Invalid pubkey" and why), still a 200 page (4.9). */
dd_err_t dd_page_notice(dd_buf *out, const char *title, const char *detail,
			const dd_page_who *who);

/*
 * The paired devices (devices is the GET /api/v1/devices array), each
 * unrevoked one with a Revoke button (a CSRF form).
 */
dd_err_t dd_page_devices(dd_buf *out, const json_t *devices,
			 const dd_page_who *who);

#endif
