/*
 * fleet_html.c: the fleet page, its live fragment and /api/fleet's JSON
 * (fleet_html.h). The agent's own page is in fleet_html_agent.c.
 */
#include "cp/fleet_html.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp/fleet_html_int.h"
#include "cp/fleet_view.h"

/* Workload names shown per row before "+N more". */
#define ROW_NAMES 3
/* MRTD characters shown in the table (the detail page has all 96). */
#define MRTD_SHORT 16

const char *dd_fleet_status_class(const char *s)
{
	static const char *const ok[] = {"healthy", "running"};
	static const char *const warn[] = {"deploying", "registering",
					   "unknown", "stale"};
	static const char *const bad[] = {"failed", "exited", "error", "dead"};

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(s, ok[i]) == 0)
			return "running";
	for (size_t i = 0; i < sizeof warn / sizeof warn[0]; i++)
		if (strcmp(s, warn[i]) == 0)
			return "deploying";
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (strcmp(s, bad[i]) == 0)
			return "failed";
	return "idle";
}

const char *dd_fleet_tcb_class(const char *t)
{
	if (strcmp(t, "UpToDate") == 0 || strcmp(t, "OK") == 0)
		return "running";
	if (strcmp(t, "OutOfDate") == 0 ||
	    strcmp(t, "SWHardeningNeeded") == 0 ||
	    strcmp(t, "ConfigurationNeeded") == 0)
		return "deploying";
	if (strcmp(t, "Revoked") == 0 || strcmp(t, "Invalid") == 0)
		return "failed";
	return "idle";
}

bool dd_fleet_agent_simulated(const dd_store_agent *a)
{
	/* The local ITA marks what it appraised from a simulated quote. */
	return json_is_true(json_object_get(a->ita.claims, "dd_simulated"));
}

bool dd_fleet_any_simulated(const dd_fleet_ctx *c,
			    const dd_store_agent *const *v, size_t n)
{
	if (c->simulated)
		return true;
	for (size_t i = 0; i < n; i++)
		if (dd_fleet_agent_simulated(v[i]))
			return true;
	return false;
}

/* --- shared pieces (fleet_html_int.h) -------------------------------- */

const char *dd_fh_str(const json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : def;
}

json_int_t dd_fh_hint(const dd_store_agent *a, const char *key)
{
	json_t *v = json_object_get(a->health, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
	       ? json_integer_value(v) : 0;
}

json_t *dd_fh_harr(const dd_store_agent *a, const char *key)
{
	json_t *v = json_object_get(a->health, key);

	return json_is_array(v) ? v : NULL;
}

void dd_fh_ago(int64_t now_ms, int64_t ms, char *buf, size_t n)
{
	int64_t s = (now_ms - ms) / 1000;

	if (ms <= 0) {
		snprintf(buf, n, "never");
		return;
	}
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, n, "%" PRId64 "s ago", s);
	else if (s < 2 * 3600)
		snprintf(buf, n, "%" PRId64 "m ago", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, n, "%" PRId64 "h ago", s / 3600);
	else
		snprintf(buf, n, "%" PRId64 "d ago", s / 86400);
}

void dd_fh_mem(const dd_store_agent *a, char *buf, size_t n)
{
	json_int_t total = dd_fh_hint(a, "memory_total_mb");

	if (total == 0)
		snprintf(buf, n, "—");
	else
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
			 " MB", dd_fh_hint(a, "memory_used_mb"), total);
}

bool dd_fh_http_url(const char *u)
{
	return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

void dd_fh_dashboard_url(const dd_store_agent *a, char *buf, size_t n)
{
	buf[0] = '\0';
	if (a->ingress == DD_INGRESS_DIRECT && dd_fh_http_url(a->ingress_url))
		snprintf(buf, n, "%s%s", a->ingress_url,
			 a->ingress_url[strlen(a->ingress_url) - 1] == '/' ? ""
									   : "/");
	else if (a->ingress == DD_INGRESS_TUNNEL && a->hostname[0])
		snprintf(buf, n, "https://%s/", a->hostname);
}

dd_err_t dd_fh_pill(dd_buf *out, const char *cls, const char *text)
{
	dd_err_t rc = DD_OK;

	PUT("<span class=\"pill status-");
	ESC(cls);
	PUT("\">");
	ESC(text);
	PUT("</span>");
	return rc;
}

dd_err_t dd_fh_banner(dd_buf *out)
{
	return dd_buf_append_str(out,
		"<div class=banner-simulated role=alert>SIMULATED: this fleet "
		"runs on simulated TDX quotes and local issuers (development "
		"only). Nothing shown here is attested by hardware.</div>");
}

dd_err_t dd_fh_head(dd_buf *out, const dd_fleet_ctx *c, const char *title,
		    bool banner)
{
	dd_err_t rc = DD_OK;

	PUT("<!doctype html><html lang=en><head><meta charset=utf-8>"
	    "<meta name=viewport content='width=device-width, "
	    "initial-scale=1'><title>");
	ESC(title);
	PUT("</title><link rel=icon href=/static/favicon.svg>"
	    "<link rel=stylesheet href=/static/dd.css>"
	    "<link rel=stylesheet href=/static/fleet.css></head><body>");
	if (banner && rc == DD_OK)
		rc = dd_fh_banner(out);
	PUT("<header><b>DD</b><nav><a href=/ class=active>Fleet</a></nav>"
	    "<span class=who>");
	ESC(c->login);
	PUT(c->admin ? " (fleet admin)" : " (signed in)");
	if (c->dev_session)
		PUT(" · dev sign-in");
	PUT("</span><form method=post action=/auth/logout>"
	    "<input type=hidden name=csrf value=\"");
	ESC(c->csrf);
	PUT("\"><button>Sign out</button></form></header><main>");
	return rc;
}

dd_err_t dd_fh_foot(dd_buf *out, const char *script)
{
	dd_err_t rc = DD_OK;

	PUT("</main>");
	if (script != NULL) {
		PUT("<script src=\"");
		PUT(script);
		PUT("\"></script>");
	}
	PUT("</body></html>");
	return rc;
}

/* --- the fragment ---------------------------------------------------- */

typedef struct totals {
	size_t healthy, unwell, rw, ro;
	json_int_t units, oracles, workloads;
} totals;

static void count(const dd_store_agent *const *v, size_t n, totals *t)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < n; i++) {
		t->healthy += v[i]->status == DD_AGENT_HEALTHY;
		t->unwell += v[i]->status == DD_AGENT_STALE ||
			     v[i]->status == DD_AGENT_DEAD;
		t->ro += v[i]->read_only;
		t->rw += !v[i]->read_only;
		t->units += (json_int_t)json_array_size(dd_fh_harr(v[i], "units"));
		t->oracles += (json_int_t)json_array_size(
			dd_fh_harr(v[i], "oracles"));
		t->workloads += dd_fh_hint(v[i], "deployment_count");
	}
}

static dd_err_t card(dd_buf *out, const char *label, const char *value,
		     const char *cls)
{
	dd_err_t rc = DD_OK;

	PUT("<div class=\"card");
	if (cls != NULL) {
		PUT(" ");
		PUT(cls);
	}
	PUT("\"><div class=label>");
	ESC(label);
	PUT("</div><div class=value>");
	ESC(value);
	PUT("</div></div>");
	return rc;
}

static dd_err_t cards(dd_buf *out, size_t n, const totals *t)
{
	char v[6][48];
	dd_err_t rc;

	snprintf(v[0], sizeof v[0], "%zu/%zu", t->healthy, n);
	snprintf(v[1], sizeof v[1], "%zu", t->unwell);
	snprintf(v[2], sizeof v[2], "%zu", t->rw);
	snprintf(v[3], sizeof v[3], "%zu", t->ro);
	snprintf(v[4], sizeof v[4], "%" JSON_INTEGER_FORMAT, t->workloads);
	snprintf(v[5], sizeof v[5], "%" JSON_INTEGER_FORMAT " · %"
		 JSON_INTEGER_FORMAT, t->units, t->oracles);
	rc = dd_buf_append_str(out, "<section class=cards>");
	if (rc == DD_OK)
		rc = card(out, "Healthy", v[0],
			  t->healthy == n ? "ok" : "warn");
	if (rc == DD_OK)
		rc = card(out, "Stale or dead", v[1], t->unwell ? "bad" : NULL);
	if (rc == DD_OK)
		rc = card(out, "Read/write", v[2], NULL);
	if (rc == DD_OK)
		rc = card(out, "Read-only", v[3], NULL);
	if (rc == DD_OK)
		rc = card(out, "Workloads", v[4], NULL);
	if (rc == DD_OK)
		rc = card(out, "Units · oracles", v[5], NULL);
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "</section>");
	return rc;
}

static dd_err_t cell_tcb(dd_buf *out, const dd_store_agent *a)
{
	const char *tcb = a->ita.tcb_status[0] ? a->ita.tcb_status : "?";
	dd_err_t rc;

	rc = dd_buf_append_str(out, "<td>");
	if (rc == DD_OK)
		rc = dd_fh_pill(out, dd_fleet_tcb_class(a->ita.tcb_status), tcb);
	if (rc == DD_OK && dd_fleet_agent_simulated(a))
		rc = dd_buf_append_str(out, " <span class=\"pill sim\" title="
					    "\"simulated quote\">SIM</span>");
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "</td>");
	return rc;
}

static dd_err_t cell_mrtd(dd_buf *out, const dd_store_agent *a)
{
	char short_[MRTD_SHORT + 1];
	dd_err_t rc = DD_OK;

	if (a->ita.mrtd[0] == '\0')
		return dd_buf_append_str(out, "<td class=dim>—</td>");
	memcpy(short_, a->ita.mrtd, strnlen(a->ita.mrtd, MRTD_SHORT));
	short_[strnlen(a->ita.mrtd, MRTD_SHORT)] = '\0';
	PUT("<td><code class=mrtd title=\"");
	ESC(a->ita.mrtd);
	PUT("\">");
	ESC(short_);
	if (strlen(a->ita.mrtd) > MRTD_SHORT)
		PUT("…");
	PUT("</code></td>");
	return rc;
}

static dd_err_t cell_workloads(dd_buf *out, const dd_store_agent *a)
{
	json_t *names = dd_fh_harr(a, "deployment_names"), *nm;
	json_int_t total = dd_fh_hint(a, "deployment_count");
	size_t i, shown = 0;
	dd_err_t rc = DD_OK;

	PUT("<td class=wl>");
	json_array_foreach(names, i, nm) {
		if (!json_is_string(nm) || shown == ROW_NAMES)
			continue;
		PUT(shown ? ", " : "");
		PUT("<span class=wl-name>");
		ESC(json_string_value(nm));
		PUT("</span>");
		shown++;
	}
	if ((json_int_t)shown < total)
		PUTF("%s%s%" JSON_INTEGER_FORMAT "%s", shown ? " " : "",
		     shown ? "<span class=dim>+" : "",
		     total - (json_int_t)shown, shown ? " more</span>" : "");
	if (shown == 0 && total == 0)
		PUT("<span class=dim>none</span>");
	PUT("</td>");
	return rc;
}

static dd_err_t cell_actions(dd_buf *out, const dd_store_agent *a)
{
	char dash[DD_STORE_URL_MAX + 16];
	dd_err_t rc = DD_OK;

	PUT("<td class=actions><a href=\"/agent/");
	ESC(a->agent_id);
	PUT("\">details</a>");
	if (strcmp(a->agent_id, DD_FLEET_CP_ID) == 0) {
		PUT(" · <a href=/health target=_blank rel=noopener>health</a>");
	} else {
		dd_fh_dashboard_url(a, dash, sizeof dash);
		if (dash[0]) {
			PUT(" · <a href=\"");
			ESC(dash);
			PUT("\" target=_blank rel=noopener>dashboard</a>");
		}
	}
	PUT("</td>");
	return rc;
}

static dd_err_t row(dd_buf *out, const dd_fleet_ctx *c,
		    const dd_store_agent *a)
{
	const char *st = dd_agent_status_name(a->status);
	char ago[32], seen[40], cpu[32], mem[64];
	dd_err_t rc = DD_OK;

	dd_fh_ago(c->now_ms, a->last_seen_ms, ago, sizeof ago);
	dd_store_time_format(a->last_seen_ms, seen, sizeof seen);
	snprintf(cpu, sizeof cpu, "%" JSON_INTEGER_FORMAT "%%",
		 dd_fh_hint(a, "cpu_percent"));
	dd_fh_mem(a, mem, sizeof mem);
	PUT("<tr data-agent=\"");
	ESC(a->agent_id);
	PUT("\" data-status=\"");
	ESC(st);
	PUT("\"><td><a href=\"/agent/");
	ESC(a->agent_id);
	PUT("\">");
	ESC(a->vm_name);
	PUT("</a></td><td title=\"");
	ESC(a->failures ? a->last_error : "");
	PUT("\">");
	if (rc == DD_OK)
		rc = dd_fh_pill(out, dd_fleet_status_class(st), st);
	PUT("</td>");
	if (rc == DD_OK)
		rc = cell_tcb(out, a);
	if (rc == DD_OK)
		rc = cell_mrtd(out, a);
	PUT("<td>");
	PUT(a->read_only ? "read_only" : "read_write");
	PUT("</td><td>");
	PUT(a->clean ? "clean" : "controlled");
	PUT("</td><td>");
	ESC(cpu);
	PUT("</td><td>");
	ESC(mem);
	PUT("</td>");
	if (rc == DD_OK)
		rc = cell_workloads(out, a);
	PUT("<td><time datetime=\"");
	ESC(seen);
	PUT("\" title=\"");
	ESC(seen);
	PUT("\">");
	ESC(ago);
	PUT("</time></td>");
	if (rc == DD_OK)
		rc = cell_actions(out, a);
	PUT("<td class=dim>");
	ESC(a->hostname);
	PUT("</td></tr>");
	return rc;
}

static dd_err_t agent_table(dd_buf *out, const dd_fleet_ctx *c,
			    const dd_store_agent *const *v, size_t n)
{
	dd_err_t rc = DD_OK;

	PUT("<h2>Agents</h2>");
	if (n == 0) {
		PUT("<p class=\"empty dim\">No agents registered");
		PUT(c->admin ? "" : " that you may see");
		PUT("</p>");
		return rc;
	}
	PUT("<div class=scroll><table class=fleet><thead><tr><th>vm</th>"
	    "<th>status</th><th>tcb</th><th>mrtd</th><th>mode</th>"
	    "<th>integrity</th><th>cpu</th><th>mem</th><th>workloads</th>"
	    "<th>last seen</th><th>actions</th><th>host</th></tr></thead>"
	    "<tbody>");
	for (size_t i = 0; rc == DD_OK && i < n; i++)
		rc = row(out, c, v[i]);
	PUT("</tbody></table></div>");
	return rc;
}

static dd_err_t unit_row(dd_buf *out, const dd_store_agent *a,
			 const json_t *u)
{
	const char *app = dd_fh_str(u, "app_name", dd_fh_str(u, "id", "?"));
	const char *st = dd_fh_str(u, "status", "unknown");
	json_int_t lines = json_integer_value(json_object_get(u,
							      "log_line_count"));
	dd_err_t rc = DD_OK;

	PUT("<tr><td><a href=\"/agent/");
	ESC(a->agent_id);
	PUT("\">");
	ESC(a->vm_name);
	PUT("</a></td><td>");
	ESC(dd_fh_str(u, "title", app));
	PUT(" <span class=dim>");
	ESC(app);
	PUT("</span></td><td>");
	ESC(dd_fh_str(u, "kind", "workload"));
	PUT("</td><td>");
	if (rc == DD_OK)
		rc = dd_fh_pill(out, dd_fleet_status_class(st), st);
	if (lines > 0)
		PUTF("</td><td>%" JSON_INTEGER_FORMAT " line(s)</td></tr>", lines);
	else
		PUT("</td><td class=dim>No logs yet</td></tr>");
	return rc;
}

static dd_err_t unit_table(dd_buf *out, const dd_store_agent *const *v,
			   size_t n, json_int_t total)
{
	json_t *u;
	size_t j;
	dd_err_t rc = DD_OK;

	PUT("<h2>Managed units</h2>");
	if (total == 0) {
		PUT("<p class=\"empty dim\">No managed units reported yet</p>");
		return rc;
	}
	PUT("<div class=scroll><table class=units><thead><tr><th>agent</th>"
	    "<th>unit</th><th>kind</th><th>status</th><th>logs</th></tr>"
	    "</thead><tbody>");
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		json_array_foreach(dd_fh_harr(v[i], "units"), j, u) {
			if (rc == DD_OK && json_is_object(u))
				rc = unit_row(out, v[i], u);
		}
	}
	PUT("</tbody></table></div>");
	return rc;
}

dd_err_t dd_fleet_html_fragment(dd_buf *out, const dd_fleet_ctx *c,
				const dd_store_agent *const *v, size_t n)
{
	totals t;
	dd_err_t rc = DD_OK;

	count(v, n, &t);
	if (dd_fleet_any_simulated(c, v, n))
		rc = dd_fh_banner(out);
	PUT("<p class=sub>");
	ESC(c->hostname);
	PUT(" · env ");
	ESC(c->env);
	PUTF(" · %zu agent%s</p>", n, n == 1 ? "" : "s");
	if (rc == DD_OK)
		rc = cards(out, n, &t);
	if (rc == DD_OK)
		rc = agent_table(out, c, v, n);
	if (rc == DD_OK)
		rc = unit_table(out, v, n, t.units);
	return rc;
}

dd_err_t dd_fleet_html_page(dd_buf *out, const dd_fleet_ctx *c,
			    const dd_store_agent *const *v, size_t n)
{
	dd_err_t rc;

	/* The banner is part of the fragment, so it follows the fleet live. */
	rc = dd_fh_head(out, c, "DD Fleet", false);
	PUT("<div class=bar><h1>Fleet</h1><span id=fleet-status class=live "
	    "aria-live=polite>updated just now</span></div>");
	PUTF("<div id=fleet-body data-poll-ms=%d>", DD_FLEET_POLL_MS);
	if (rc == DD_OK)
		rc = dd_fleet_html_fragment(out, c, v, n);
	PUT("</div>");
	if (rc == DD_OK)
		rc = dd_fh_foot(out, "/static/fleet.js");
	return rc;
}

/* --- JSON ------------------------------------------------------------ */

static json_t *summary_json(const dd_store_agent *const *v, size_t n)
{
	totals t;

	count(v, n, &t);
	return json_pack("{s:I, s:I, s:I, s:I}", "agents", (json_int_t)n,
			 "healthy", (json_int_t)t.healthy, "units", t.units,
			 "oracles", t.oracles);
}

dd_err_t dd_fleet_json(const dd_fleet_ctx *c, const dd_store_agent *const *v,
		       size_t n, json_t **out)
{
	char at[40];
	json_t *o, *agents = json_array(), *rec;
	dd_err_t rc = DD_OK;

	*out = NULL;
	dd_fleet_time_offset(c->now_ms, at, sizeof at);
	o = json_pack("{s:s, s:s, s:s, s:b, s:o}", "generated_at", at,
		      "env", c->env, "hostname", c->hostname, "simulated",
		      dd_fleet_any_simulated(c, v, n), "summary",
		      summary_json(v, n));
	if (o == NULL || agents == NULL) {
		json_decref(o);
		json_decref(agents);
		return DD_ERR_NOMEM;
	}
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		rc = dd_fleet_agent_json(v[i], DD_FLEET_FULL, 0, &rec);
		if (rc == DD_OK && json_array_append_new(agents, rec) != 0)
			rc = DD_ERR_NOMEM;
	}
	/* set_new takes agents even when it fails. */
	if (rc == DD_OK && json_object_set_new(o, "agents", agents) != 0)
		rc = DD_ERR_NOMEM;
	else if (rc)
		json_decref(agents);
	if (rc) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return DD_OK;
}
