/*
 * fleet_html_agent.c: one agent's page on the CP (spec 7.2) and the 404
 * that stands in for it (fleet_html.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp/fleet_html.h"
#include "cp/fleet_html_int.h"
#include "cp/fleet_view.h"

static dd_err_t kv_open(dd_buf *out, const char *label)
{
	dd_err_t rc = DD_OK;

	PUT("<div class=card><div class=label>");
	ESC(label);
	PUT("</div><div class=value>");
	return rc;
}

static dd_err_t kv(dd_buf *out, const char *label, const char *value)
{
	dd_err_t rc = kv_open(out, label);

	ESC(value);
	PUT("</div></div>");
	return rc;
}

static dd_err_t status_cards(dd_buf *out, const dd_fleet_ctx *c,
			     const dd_store_agent *a)
{
	const char *st = dd_agent_status_name(a->status);
	char ago[32], seen[40], reg[40], cpu[32], mem[64], owner[200];
	dd_err_t rc;

	dd_fh_ago(c->now_ms, a->last_seen_ms, ago, sizeof ago);
	dd_store_time_format(a->last_seen_ms, seen, sizeof seen);
	dd_store_time_format(a->registered_at_ms, reg, sizeof reg);
	snprintf(cpu, sizeof cpu, "%" JSON_INTEGER_FORMAT "%%",
		 dd_fh_hint(a, "cpu_percent"));
	dd_fh_mem(a, mem, sizeof mem);
	snprintf(owner, sizeof owner, "%s%s%s", a->has_owner ? a->owner.name
							     : "none",
		 a->has_owner ? " · " : "",
		 a->has_owner ? dd_principal_kind_name(a->owner.kind) : "");
	rc = dd_buf_append_str(out, "<section class=cards>");
	if (rc == DD_OK)
		rc = kv_open(out, "Status");
	if (rc == DD_OK)
		rc = dd_fh_pill(out, dd_fleet_status_class(st), st);
	PUT("</div></div>");
	if (rc == DD_OK)
		rc = kv(out, "Mode", a->read_only ? "read_only" : "read_write");
	if (rc == DD_OK)
		rc = kv(out, "Integrity", a->clean ? "clean" : "controlled");
	if (rc == DD_OK)
		rc = kv(out, "Attestation", a->attestation_type);
	if (rc == DD_OK)
		rc = kv_open(out, "Last seen");
	PUT("<time datetime=\"");
	ESC(seen);
	PUT("\" title=\"");
	ESC(seen);
	PUT("\">");
	ESC(ago);
	PUT("</time></div></div>");
	if (rc == DD_OK)
		rc = kv(out, "Registered", reg);
	if (rc == DD_OK)
		rc = kv(out, "CPU", cpu);
	if (rc == DD_OK)
		rc = kv(out, "Memory", mem);
	if (rc == DD_OK)
		rc = kv(out, "Tenant", owner);
	PUT("</section>");
	return rc;
}

static dd_err_t failure_note(dd_buf *out, const dd_fleet_ctx *c,
			     const dd_store_agent *a)
{
	char ago[32];
	dd_err_t rc = DD_OK;

	if (a->failures == 0)
		return DD_OK;
	dd_fh_ago(c->now_ms, a->last_failure_ms, ago, sizeof ago);
	PUTF("<p class=error>%" PRIu32 " failed scrape%s in a row, the last "
	     "%s: ", a->failures, a->failures == 1 ? "" : "s", ago);
	ESC(a->last_error[0] ? a->last_error : "no reason recorded");
	PUT("</p>");
	return rc;
}

static void expires(const dd_fleet_ctx *c, int64_t exp_s, char *buf, size_t n)
{
	int64_t left = exp_s * 1000 - c->now_ms;

	if (exp_s <= 0)
		snprintf(buf, n, "?");
	else if (left <= 0)
		snprintf(buf, n, "expired");
	else
		snprintf(buf, n, "in %" PRId64 "m", (left + 59999) / 60000);
}

static dd_err_t ita_table(dd_buf *out, const dd_fleet_ctx *c,
			  const dd_store_agent *a)
{
	const dd_store_ita *t = &a->ita;
	char exp[32], iat[40];
	dd_err_t rc = DD_OK;

	expires(c, t->exp, exp, sizeof exp);
	dd_store_time_format(t->iat > 0 ? t->iat * 1000 : 0, iat, sizeof iat);
	PUT("<h2>Intel Trust Authority</h2><table class=kv><tr><th>TCB status"
	    "</th><td>");
	if (rc == DD_OK)
		rc = dd_fh_pill(out, dd_fleet_tcb_class(t->tcb_status),
				t->tcb_status[0] ? t->tcb_status : "?");
	if (dd_fleet_agent_simulated(a))
		PUT(" <span class=\"pill sim\">SIMULATED quote</span>");
	PUT("</td></tr><tr><th>MRTD</th><td><code class=mrtd>");
	ESC(t->mrtd[0] ? t->mrtd : "—");
	PUT("</code></td></tr><tr><th>MRSIGNER</th><td><code>");
	ESC(t->mrsigner[0] ? t->mrsigner : "—");
	PUT("</code></td></tr><tr><th>Attester</th><td>");
	ESC(t->attester_type[0] ? t->attester_type : "—");
	PUT("</td></tr><tr><th>Issued</th><td>");
	ESC(t->iat > 0 ? iat : "—");
	PUT("</td></tr><tr><th>Expires</th><td>");
	ESC(exp);
	PUT("</td></tr></table>");
	return rc;
}

static dd_err_t units(dd_buf *out, const json_t *list)
{
	json_t *u, *cap;
	size_t i, j;
	dd_err_t rc = DD_OK;

	PUT("<table class=units><thead><tr><th>unit</th><th>kind</th>"
	    "<th>status</th><th>logs</th><th>capabilities</th></tr></thead>"
	    "<tbody>");
	json_array_foreach(list, i, u) {
		const char *app = dd_fh_str(u, "app_name", dd_fh_str(u, "id", "?"));
		const char *st = dd_fh_str(u, "status", "unknown");

		PUT("<tr><td>");
		ESC(dd_fh_str(u, "title", app));
		PUT(" <span class=dim>");
		ESC(app);
		PUT("</span></td><td>");
		ESC(dd_fh_str(u, "kind", "workload"));
		PUT("</td><td>");
		if (rc == DD_OK)
			rc = dd_fh_pill(out, dd_fleet_status_class(st), st);
		PUTF("</td><td>%" JSON_INTEGER_FORMAT "</td><td>",
		     json_integer_value(json_object_get(u, "log_line_count")));
		json_array_foreach(json_object_get(u, "capabilities"), j, cap) {
			if (json_is_string(cap) && rc == DD_OK)
				rc = dd_fh_pill(out, "idle", json_string_value(cap));
			PUT(" ");
		}
		PUT("</td></tr>");
	}
	PUT("</tbody></table>");
	return rc;
}

static dd_err_t workloads(dd_buf *out, const dd_store_agent *a)
{
	json_t *u = dd_fh_harr(a, "units"), *names = dd_fh_harr(a,
							       "deployment_names");
	json_t *nm;
	size_t i;
	dd_err_t rc = DD_OK;

	PUT("<h2>Workloads</h2>");
	if (json_array_size(u) > 0)
		return rc == DD_OK ? units(out, u) : rc;
	if (json_array_size(names) == 0) {
		PUT("<p class=\"empty dim\">No workloads reported</p>");
		return rc;
	}
	PUT("<table class=workloads><thead><tr><th>deployment</th></tr>"
	    "</thead><tbody>");
	json_array_foreach(names, i, nm) {
		if (!json_is_string(nm))
			continue;
		PUT("<tr><td class=wl-name>");
		ESC(json_string_value(nm));
		PUT("</td></tr>");
	}
	PUT("</tbody></table>");
	return rc;
}

/* 1536 -> "1.5K"; binary units, one decimal; plain bytes below 1 KiB. */
static void human_bytes(json_int_t v, char *buf, size_t n)
{
	static const char units_[] = "KMGTP";
	double x = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT "B", v < 0 ? 0 : v);
		return;
	}
	x /= 1024.0;
	while (x >= 1024.0 && u + 1 < sizeof units_ - 1) {
		x /= 1024.0;
		u++;
	}
	snprintf(buf, n, "%.1f%c", x, units_[u]);
}

static dd_err_t disks_nets(dd_buf *out, const dd_store_agent *a)
{
	json_t *d, *list = dd_fh_harr(a, "disks");
	char x[32], y[32];
	size_t i;
	dd_err_t rc = DD_OK;

	if (json_array_size(list) > 0)
		PUT("<h2>Disks</h2><table><thead><tr><th>mount</th><th>fs</th>"
		    "<th>used / total</th></tr></thead><tbody>");
	json_array_foreach(list, i, d) {
		human_bytes(json_integer_value(json_object_get(d, "used_bytes")),
			    x, sizeof x);
		human_bytes(json_integer_value(json_object_get(d, "total_bytes")),
			    y, sizeof y);
		PUT("<tr><td>");
		ESC(dd_fh_str(d, "mount", "?"));
		PUT("</td><td>");
		ESC(dd_fh_str(d, "fstype", "?"));
		PUTF("</td><td>%s / %s</td></tr>", x, y);
	}
	if (json_array_size(list) > 0)
		PUT("</tbody></table>");
	list = dd_fh_harr(a, "nets");
	if (json_array_size(list) > 0)
		PUT("<h2>Network</h2><table><thead><tr><th>iface</th><th>rx</th>"
		    "<th>tx</th></tr></thead><tbody>");
	json_array_foreach(list, i, d) {
		human_bytes(json_integer_value(json_object_get(d, "rx_bytes")),
			    x, sizeof x);
		human_bytes(json_integer_value(json_object_get(d, "tx_bytes")),
			    y, sizeof y);
		PUT("<tr><td>");
		ESC(dd_fh_str(d, "iface", "?"));
		PUTF("</td><td>%s</td><td>%s</td></tr>", x, y);
	}
	if (json_array_size(list) > 0)
		PUT("</tbody></table>");
	return rc;
}

static dd_err_t history(dd_buf *out, const dd_store_event *h, size_t nh)
{
	char at[40];
	dd_err_t rc = DD_OK;

	PUT("<h2>Status history</h2>");
	if (nh == 0) {
		PUT("<p class=\"empty dim\">No status changes recorded</p>");
		return rc;
	}
	PUT("<table class=history><thead><tr><th>when</th><th>from</th>"
	    "<th>to</th><th>reason</th></tr></thead><tbody>");
	for (size_t i = 0; rc == DD_OK && i < nh; i++) {
		dd_store_time_format(h[i].at_ms, at, sizeof at);
		PUT("<tr><td>");
		ESC(at);
		PUT("</td><td>");
		PUT(h[i].has_from ? dd_agent_status_name(h[i].from) : "—");
		PUT("</td><td>");
		if (rc == DD_OK)
			rc = dd_fh_pill(out, dd_fleet_status_class(
					dd_agent_status_name(h[i].to)),
					dd_agent_status_name(h[i].to));
		PUT("</td><td>");
		ESC(h[i].reason);
		PUT("</td></tr>");
	}
	PUT("</tbody></table>");
	return rc;
}

static dd_err_t links(dd_buf *out, const dd_store_agent *a)
{
	char dash[DD_STORE_URL_MAX + 16];
	dd_err_t rc = DD_OK;

	PUT("<p class=links>");
	if (strcmp(a->agent_id, DD_FLEET_CP_ID) == 0) {
		PUT("<a href=/health>/health</a> · "
		    "<a href=\"/health?verbose=1\">/health?verbose=1</a>");
	} else {
		dd_fh_dashboard_url(a, dash, sizeof dash);
		if (dash[0]) {
			PUT("<a href=\"");
			ESC(dash);
			PUT("\" target=_blank rel=noopener>open agent dashboard"
			    "</a> <span class=dim>(");
			ESC(dash);
			PUT(")</span>");
		}
	}
	PUT("</p>");
	return rc;
}

dd_err_t dd_fleet_html_agent(dd_buf *out, const dd_fleet_ctx *c,
			     const dd_store_agent *a,
			     const dd_store_event *hist, size_t nh)
{
	char title[DD_STORE_NAME_MAX + 16];
	dd_err_t rc;

	snprintf(title, sizeof title, "DD — %s", a->vm_name);
	rc = dd_fh_head(out, c, title,
			c->simulated || dd_fleet_agent_simulated(a));
	PUT("<p><a href=/>← fleet</a></p><h1>");
	ESC(a->vm_name);
	PUT("</h1><p class=sub><code>");
	ESC(a->agent_id);
	PUT("</code> · ");
	ESC(a->hostname);
	PUT("</p>");
	if (rc == DD_OK)
		rc = status_cards(out, c, a);
	if (rc == DD_OK)
		rc = failure_note(out, c, a);
	if (rc == DD_OK)
		rc = ita_table(out, c, a);
	if (rc == DD_OK)
		rc = workloads(out, a);
	if (rc == DD_OK)
		rc = disks_nets(out, a);
	if (rc == DD_OK)
		rc = history(out, hist, nh);
	if (rc == DD_OK)
		rc = links(out, a);
	if (rc == DD_OK)
		rc = dd_fh_foot(out, NULL);
	return rc;
}

dd_err_t dd_fleet_html_not_found(dd_buf *out, const dd_fleet_ctx *c)
{
	dd_err_t rc;

	rc = dd_fh_head(out, c, "Not found", c->simulated);
	PUT("<h1>Not found</h1><p class=dim>There is no such agent, or it is "
	    "not yours to see.</p><p><a href=/>← fleet</a></p>");
	if (rc == DD_OK)
		rc = dd_fh_foot(out, NULL);
	return rc;
}
