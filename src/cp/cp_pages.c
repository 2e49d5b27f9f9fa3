/*
 * cp_pages.c: the dashboard routes (cp_pages.h): who is asking, which
 * records they may see (fleet_view.h), and the answer in the format they
 * asked for. Rendering is fleet_html.c's.
 */
#include "cp/cp_pages.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "cp/fleet_html.h"
#include "cp/fleet_view.h"

/* About 900 bytes a row: room for DD_STORE_MAX_AGENTS rows. */
#define PAGE_CAP (64u * 1024 * 1024)
/*
 * A list may take at most 1/LIST_SHARE of the loop: the next one waits
 * LIST_SHARE times as long as the last one took (0.3 ms per agent:
 * about every 3 s at 512 agents, every 100 s at 16,384).
 */
#define LIST_SHARE 20

struct dd_cp_pages {
	uv_loop_t *loop;
	dd_cp_pages_opts o;
	/* The store's list as last read, and when (loop time). */
	dd_store_agent *list;
	size_t n;
	uint64_t listed_at;
	uint64_t list_cost_ms;  /* how long the last list took */
	int listed;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

dd_err_t dd_cp_pages_new(uv_loop_t *loop, const dd_cp_pages_opts *opts,
			 dd_cp_pages **out)
{
	dd_cp_pages *p;

	*out = NULL;
	if (opts->cfg == NULL || opts->store == NULL)
		return DD_ERR_INVALID;
	p = dd_calloc(1, sizeof *p);
	if (p == NULL)
		return DD_ERR_NOMEM;
	p->loop = loop;
	p->o = *opts;
	if (p->o.now_ms == NULL)
		p->o.now_ms = wall_ms;
	*out = p;
	return DD_OK;
}

void dd_cp_pages_free(dd_cp_pages *p)
{
	if (p == NULL)
		return;
	dd_store_agents_free(p->list, p->n);
	dd_free(p);
}

/*
 * The store's list, read again when the last read is a second old, or
 * LIST_SHARE times as old as that read took, whichever is longer.
 */
static dd_err_t fleet(dd_cp_pages *p)
{
	uint64_t now = uv_now(p->loop), t0, wait = DD_CP_PAGES_LIST_MS;
	dd_store_agent *v = NULL;
	size_t n = 0, skipped = 0;
	dd_err_t rc;

	if (p->list_cost_ms * LIST_SHARE > wait)
		wait = p->list_cost_ms * LIST_SHARE;
	if (p->listed && now - p->listed_at < wait)
		return DD_OK;
	t0 = uv_hrtime();
	rc = dd_store_list(p->o.store, &v, &n, &skipped);
	if (rc)
		return rc;
	p->list_cost_ms = (uv_hrtime() - t0) / 1000000;
	if (skipped)
		dd_log_warn("dashboard: %zu damaged store record(s) left out",
			    skipped);
	dd_store_agents_free(p->list, p->n);
	p->list = v;
	p->n = n;
	p->listed_at = now;
	p->listed = 1;
	return DD_OK;
}

/*
 * The records who may see, in store order (by agent_id). Caller frees
 * *out with dd_free(); the pointers borrow p's list, valid until the
 * next fleet() call.
 */
static dd_err_t visible(dd_cp_pages *p, const dd_caller *who,
			const dd_store_agent ***out, size_t *n)
{
	const dd_store_agent **v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	v = dd_calloc(p->n ? p->n : 1, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < p->n; i++) {
		if (dd_fleet_page_view(who, &p->list[i]) == DD_FLEET_FULL)
			v[k++] = &p->list[i];
	}
	*out = v;
	*n = k;
	return DD_OK;
}

static void context(const dd_cp_pages *p, const dd_caller *who,
		    char csrf[DD_CSRF_LEN + 1], dd_fleet_ctx *c)
{
	const dd_config *cfg = p->o.cfg;

	csrf[0] = '\0';
	/* Only a cookie session needs the token to sign out. */
	if (who->via_cookie && p->o.keys != NULL &&
	    dd_csrf_token(p->o.keys, who->session_token,
			  who->session_token_len, csrf) != DD_OK)
		csrf[0] = '\0';
	*c = (dd_fleet_ctx){
		.env = cfg->env,
		.hostname = cfg->hostname ? cfg->hostname : cfg->vm_name,
		.simulated = cfg->quote_provider == DD_PROVIDER_SIM,
		.now_ms = p->o.now_ms(),
		.login = who->session.login,
		.admin = who->kind == DD_CALLER_ADMIN ||
			 who->session.is_fleet_admin,
		.dev_session = who->session.dev,
		.csrf = csrf,
	};
}

/*
 * Every dashboard answer: private (scoped to the session), never cached,
 * and the browser may load nothing but our own origin.
 */
static void page_headers(dd_http_req *req)
{
	dd_http_set_header(req, "Cache-Control", "no-store");
	dd_http_set_header(req, "Referrer-Policy", "same-origin");
	dd_http_set_header(req, "Content-Security-Policy",
			   "default-src 'self'; base-uri 'none'; "
			   "frame-ancestors 'none'; form-action 'self'");
}

static void respond_html(dd_http_req *req, int status, dd_buf *b,
			 dd_err_t rc)
{
	if (rc) {
		dd_log_err(rc, "rendering %s", dd_http_req_path(req));
		dd_http_respond_err(req, rc, NULL);
		return;
	}
	page_headers(req);
	dd_http_respond(req, status, "text/html; charset=utf-8", b->data,
			b->len);
}

typedef dd_err_t (*render_fn)(dd_buf *out, const dd_fleet_ctx *c,
			      const dd_store_agent *const *v, size_t n);

/* The scoped fleet through render: the page or the fragment. */
static void fleet_html(dd_cp_pages *p, dd_http_req *req,
		       const dd_caller *who, render_fn render)
{
	char csrf[DD_CSRF_LEN + 1];
	const dd_store_agent **v = NULL;
	dd_fleet_ctx c;
	size_t n = 0;
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, PAGE_CAP);
	rc = fleet(p);
	if (rc == DD_OK)
		rc = visible(p, who, &v, &n);
	if (rc == DD_OK) {
		context(p, who, csrf, &c);
		rc = render(&b, &c, v, n);
	}
	respond_html(req, 200, &b, rc);
	dd_buf_free(&b);
	dd_free(v);
}

static void handle_page(dd_http_req *req, const dd_caller *who, void *ud)
{
	fleet_html(ud, req, who, dd_fleet_html_page);
}

static void fleet_json(dd_cp_pages *p, dd_http_req *req,
		       const dd_caller *who)
{
	char csrf[DD_CSRF_LEN + 1];
	const dd_store_agent **v = NULL;
	json_t *body = NULL;
	dd_fleet_ctx c;
	size_t n = 0;
	dd_err_t rc;

	rc = fleet(p);
	if (rc == DD_OK)
		rc = visible(p, who, &v, &n);
	if (rc == DD_OK) {
		context(p, who, csrf, &c);
		rc = dd_fleet_json(&c, v, n, &body);
	}
	if (rc) {
		dd_http_respond_err(req, rc, "listing the fleet");
	} else {
		dd_http_set_header(req, "Cache-Control", "no-store");
		dd_http_respond_json(req, 200, body);
	}
	json_decref(body);
	dd_free(v);
}

/* GET /api/fleet: JSON when asked for it, else the page's fragment. */
static void handle_api(dd_http_req *req, const dd_caller *who, void *ud)
{
	const char *acc = dd_http_req_header(req, "Accept");

	dd_http_set_header(req, "Vary", "Accept");
	if (acc != NULL && strstr(acc, "application/json") != NULL)
		fleet_json(ud, req, who);
	else
		fleet_html(ud, req, who, dd_fleet_html_fragment);
}

static dd_err_t agent_page(dd_cp_pages *p, const dd_caller *who,
			   const char *id, dd_buf *b, int *status)
{
	char csrf[DD_CSRF_LEN + 1];
	dd_store_event *hist = NULL;
	dd_store_agent a;
	dd_fleet_ctx c;
	size_t nh = 0;
	dd_err_t rc;

	context(p, who, csrf, &c);
	rc = dd_store_get(p->o.store, id ? id : "", &a);
	/*
	 * Missing, unreadable, or not this viewer's: one answer, so that
	 * nobody learns which agents exist by asking.
	 */
	if (rc == DD_ERR_NOT_FOUND || rc == DD_ERR_INVALID ||
	    (rc == DD_OK && dd_fleet_page_view(who, &a) != DD_FLEET_FULL)) {
		dd_store_agent_clear(&a);
		*status = 404;
		return dd_fleet_html_not_found(b, &c);
	}
	if (rc == DD_OK)
		rc = dd_store_history(p->o.store, a.agent_id, &hist, &nh);
	if (rc == DD_OK)
		rc = dd_fleet_html_agent(b, &c, &a, hist, nh);
	*status = 200;
	dd_free(hist);
	dd_store_agent_clear(&a);
	return rc;
}

static void handle_agent(dd_http_req *req, const dd_caller *who, void *ud)
{
	int status = 500;
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, PAGE_CAP);
	rc = agent_page(ud, who, dd_http_req_param(req, "id"), &b, &status);
	respond_html(req, status, &b, rc);
	dd_buf_free(&b);
}

size_t dd_cp_pages_routes(dd_cp_pages *p, dd_authz_route *routes)
{
	routes[0] = (dd_authz_route){DD_M_GET, "/", handle_page, p, 0, 0};
	routes[1] = (dd_authz_route){DD_M_GET, "/api/fleet", handle_api, p,
				     0, 0};
	routes[2] = (dd_authz_route){DD_M_GET, "/agent/{id}", handle_agent, p,
				     0, 0};
	return DD_CP_PAGES_ROUTES;
}
