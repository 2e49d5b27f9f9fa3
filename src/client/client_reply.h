/*
 * client_reply.h: what the client makes of the answers it gets.
 *
 * Pure functions over bodies the agent and control plane send (spec
 * http-surface 4.2, 4.11, 4.12, 3.5 and 8.1): no I/O, so every rule is
 * unit tested exactly. Everything that ends up on a terminal or in a CI
 * log goes through dd_client_sanitize(), because agents relay text from
 * workloads and the runtime.
 */
#ifndef DD_CLIENT_CLIENT_REPLY_H
#define DD_CLIENT_CLIENT_REPLY_H

#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

/* Exit codes of `devopsdefender client`. */
enum {
	DD_CLIENT_EXIT_OK = 0,
	DD_CLIENT_EXIT_FAILED = 1,    /* refused, ok:false, workload failed */
	DD_CLIENT_EXIT_USAGE = 2,     /* arguments or the workload file */
	DD_CLIENT_EXIT_AUTH = 3,      /* no token, token refused, 401/403 */
	DD_CLIENT_EXIT_TRANSPORT = 4, /* no answer, or the deadline passed */
};

/*
 * The exit code for a call that did not succeed: no HTTP answer at all
 * (err != DD_OK) is TRANSPORT; 401 and 403 are AUTH; any other status
 * is FAILED.
 */
int dd_client_exit_for(dd_err_t err, long status);

/*
 * Appends s[0..n) to out with everything a terminal or a CI log runner
 * could act on made inert: C0 and C1 controls (except tab), DEL and
 * invalid UTF-8 become '?'. TOO_LARGE at out's cap.
 */
dd_err_t dd_client_sanitize(const char *s, size_t n, dd_buf *out);

/*
 * One line about a refused call: the agent's {"code","message"} body
 * when it has one ("UNAUTHORIZED: unauthorized"), else the start of the
 * body, sanitized; "HTTP <status>" first. Always NUL-terminates out.
 */
void dd_client_error_text(long status, const char *body, size_t len,
			  char *out, size_t out_len);

/* The runtime's answer to a deploy, relayed by the agent with 200. */
typedef struct dd_client_deploy_reply {
	int ok;
	char id[80];       /* deployment id, "" if absent or odd */
	char status[32];   /* e.g. "deploying", "" if absent or odd */
	char error[512];   /* the runtime's error text when !ok, sanitized */
} dd_client_deploy_reply;

/*
 * INVALID unless body is a JSON object with a boolean "ok"; an ok:false
 * reply is DD_OK with out->ok == 0 (the caller fails the deploy: DESIGN
 * section 5 item 15).
 */
dd_err_t dd_client_deploy_reply_parse(const char *body, size_t len,
				      dd_client_deploy_reply *out);

/* Where a workload stands, as far as the agent's /health shows. */
typedef enum {
	DD_WL_ABSENT = 0,  /* not listed (yet) */
	DD_WL_LISTED,      /* listed by name only: the spec's shape */
	DD_WL_DEPLOYING,
	DD_WL_RUNNING,
	DD_WL_COMPLETED,   /* a fetch-only release workload finished */
	DD_WL_FAILED,
	DD_WL_STOPPED,
	DD_WL_OTHER,       /* a status we do not know: keep waiting */
} dd_client_wl_state;

typedef struct dd_client_wl {
	dd_client_wl_state state;
	char status[32];   /* the agent's word, sanitized; "" if none */
	char error[512];   /* error_message of a failed entry, sanitized */
} dd_client_wl;

/*
 * Finds app in an agent's /health: in "workloads", the runtime's own
 * entries {"id","app_name","status","error_message"?,...}, when the
 * agent has that field; else in "deployments", the app names of the
 * spec's shape (a listed name is all the answer there is). With entries
 * and a non-empty id, the entry with that id is ours and other entries
 * of the same app are the deployment being replaced. INVALID when health
 * is not an object with either array.
 */
dd_err_t dd_client_health_find(const json_t *health, const char *app,
			       const char *id, dd_client_wl *out);

/* Finished waiting: 1 success, -1 failure, 0 keep waiting. */
int dd_client_wl_verdict(dd_client_wl_state s);
const char *dd_client_wl_name(dd_client_wl_state s);

/*
 * The "lines" array of a logs reply (borrowed from reply). INVALID when
 * there is none or an entry is not a string; an {"ok":false,"error"}
 * reply is UPSTREAM with the error in why.
 */
dd_err_t dd_client_logs_lines(const json_t *reply, const json_t **lines,
			      char *why, size_t why_len);

/*
 * Agent discovery (spec integrations 8.2 steps 2-3). pick: from the
 * control plane's /api/agents array, the entry for vm whose status is
 * healthy, registering or stale, latest last_seen first; its hostname in
 * host. NOT_FOUND when none qualifies, with one line per entry of that
 * vm appended to seen (which may be NULL); INVALID for a non-array.
 */
dd_err_t dd_client_pick_agent(const json_t *agents, const char *vm,
			      char *host, size_t host_len, dd_buf *seen);

/*
 * The agent's API host for its primary hostname: the first label's
 * first "-agent-" becomes "-api-", or "-agent-api" is appended, and the
 * domain is kept. INVALID for something that is not a DNS name.
 */
dd_err_t dd_client_api_host(const char *hostname, char *out,
			    size_t out_len);

#endif
