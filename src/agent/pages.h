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

#endif
