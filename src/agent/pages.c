#include "agent/pages.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/html.h"

/* Appends text; the whole page fails at the first error. */
#define PUT(s) do { if (rc == DD_OK) rc = dd_buf_append_str(out, (s)); } while (0)
#define ESC(s) do { if (rc == DD_OK) rc = dd_html_escape(out, (s)); } while (0)

static const char *str(const json_t *o, const char *k, const char *def)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : def;
}

static dd_err_t head(dd_buf *out, const char *title, const dd_page_who *who)
{
	dd_err_t rc = DD_OK;

	PUT("<!doctype html><html lang=en><head><meta charset=utf-8>"
	    "<meta name=viewport content='width=device-width'><title>DD — ");
	ESC(title);
	/* An inline empty icon: browsers would otherwise ask for a
	 * /favicon.ico that does not exist. */
	PUT("</title><link rel=icon href='data:,'>"
	    "<link rel=stylesheet href=/static/dd.css></head><body>");
	/* Simulated evidence and dev sessions must never pass unnoticed. */
	if (who->dev)
		PUT("<div class=banner-simulated>DEVELOPMENT: SIMULATED quotes, "
		    "local issuers, dev sign-in</div>");
	PUT("<header><b>DevOps Defender</b><nav><a href=/>Dashboard</a></nav>"
	    "<span class=who>");
	ESC(who->login);
	PUT(who->admin ? " (fleet admin)" : " (this VM's tenant)");
	PUT("</span><form method=post action=/auth/logout><input type=hidden "
	    "name=csrf value=\"");
	ESC(who->csrf);
	PUT("\"><button>Sign out</button></form></header><main>");
	return rc;
}

static dd_err_t card(dd_buf *out, const char *label, const char *value)
{
	dd_err_t rc = DD_OK;

	PUT("<div class=card><div class=label>");
	ESC(label);
	PUT("</div><div class=value>");
	ESC(value);
	PUT("</div></div>");
	return rc;
}

static void human_uptime(long long s, char *buf, size_t n)
{
	if (s >= 86400)
		snprintf(buf, n, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, n, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, n, "%lldm", s / 60);
	else
		snprintf(buf, n, "%llds", s);
}

static dd_err_t cards(dd_buf *out, const json_t *h)
{
	char cpu[32], mem[64], load[32];
	json_t *c = json_object_get(h, "cpu_percent");
	json_t *used = json_object_get(h, "memory_used_mb");
	json_t *total = json_object_get(h, "memory_total_mb");
	json_t *l1 = json_object_get(h, "load_1m");
	dd_err_t rc = DD_OK;

	if (json_is_number(c))
		snprintf(cpu, sizeof cpu, "%.0f%%", json_number_value(c));
	else
		snprintf(cpu, sizeof cpu, "-");
	if (json_is_integer(used) && json_is_integer(total))
		snprintf(mem, sizeof mem, "%lldM / %lldM",
			 (long long)json_integer_value(used),
			 (long long)json_integer_value(total));
	else
		snprintf(mem, sizeof mem, "-");
	if (json_is_number(l1))
		snprintf(load, sizeof load, "%.2f", json_number_value(l1));
	else
		snprintf(load, sizeof load, "-");
	PUT("<section class=cards>");
	if (rc == DD_OK)
		rc = card(out, "CPU", cpu);
	if (rc == DD_OK)
		rc = card(out, "Memory", mem);
	if (rc == DD_OK)
		rc = card(out, "Load 1m", load);
	if (rc == DD_OK)
		rc = card(out, "Integrity", str(h, "integrity_state", "unknown"));
	PUT("</section>");
	return rc;
}

static dd_err_t workloads(dd_buf *out, const json_t *h)
{
	json_t *deps = json_object_get(h, "workloads"), *d;
	size_t i;
	dd_err_t rc = DD_OK;

	PUT("<h2>Workloads</h2>");
	if (json_array_size(deps) == 0) {
		PUT("<p class=muted>No workloads running</p>");
		return rc;
	}
	PUT("<table><tr><th>app</th><th>status</th><th>source</th><th></th></tr>");
	json_array_foreach(deps, i, d) {
		const char *id = str(d, "id", ""), *status = str(d, "status", "?");

		PUT("<tr><td><a href=\"/workload/");
		ESC(id);
		PUT("\">");
		ESC(str(d, "app_name", id));
		PUT("</a></td><td><span class=\"pill status-");
		ESC(status);
		PUT("\">");
		ESC(status);
		PUT("</span></td><td class=mono>");
		ESC(str(d, "source", ""));
		PUT("</td><td><a href=\"/workload/");
		ESC(id);
		PUT("\">logs</a></td></tr>");
	}
	PUT("</table>");
	return rc;
}

dd_err_t dd_page_dashboard(dd_buf *out, const json_t *h,
			   const dd_page_who *who)
{
	const char *vm = str(h, "vm_name", "?");
	json_t *up = json_object_get(h, "uptime_secs");
	char uptime[32], meta[160];
	dd_err_t rc;

	rc = head(out, vm, who);
	human_uptime(json_integer_value(up), uptime, sizeof uptime);
	snprintf(meta, sizeof meta, "uptime %s · %zu workload(s) · %s",
		 uptime, json_array_size(json_object_get(h, "workloads")),
		 json_is_true(json_object_get(h, "confidential_mode"))
		 ? "confidential" : "read-write");
	PUT("<h1>");
	ESC(str(h, "hostname", vm));
	PUT("</h1><p class=sub>");
	ESC(vm);
	PUT(" · ");
	ESC(str(h, "attestation_type", "unknown"));
	PUT(" · agent ");
	ESC(str(h, "agent_id", "(registering)"));
	PUT("</p><p class=muted>");
	ESC(meta);
	PUT("</p>");
	if (rc == DD_OK)
		rc = cards(out, h);
	if (rc == DD_OK)
		rc = workloads(out, h);
	PUT("</main></body></html>");
	return rc;
}

dd_err_t dd_page_workload(dd_buf *out, const json_t *dep, const json_t *logs,
			  const dd_page_who *who)
{
	const char *app = str(dep, "app_name", str(dep, "id", "?"));
	const char *err = str(dep, "error_message", NULL);
	json_t *lines = json_object_get(logs, "lines"), *l;
	size_t i;
	dd_err_t rc;

	rc = head(out, app, who);
	PUT("<p><a href=/>← dashboard</a></p><h1>");
	ESC(app);
	PUT("</h1><p class=\"sub mono\">");
	ESC(str(dep, "id", ""));
	PUT("</p><section class=cards>");
	if (rc == DD_OK)
		rc = card(out, "Status", str(dep, "status", "?"));
	if (rc == DD_OK)
		rc = card(out, "Source", str(dep, "source", ""));
	if (rc == DD_OK)
		rc = card(out, "Started", str(dep, "started_at", ""));
	PUT("</section>");
	if (err != NULL) {
		PUT("<p class=status-dead>");
		ESC(err);
		PUT("</p>");
	}
	PUT("<h2>Logs</h2>");
	if (logs == NULL)
		PUT("<p class=status-dead>The workload runtime did not answer.</p>");
	else if (json_array_size(lines) == 0)
		PUT("<p class=muted>No logs</p>");
	else
		PUT("<pre class=logs>");
	json_array_foreach(lines, i, l) {
		if (json_is_string(l)) {
			ESC(json_string_value(l));
			PUT("\n");
		}
	}
	if (logs != NULL && json_array_size(lines) > 0)
		PUT("</pre>");
	PUT("</main></body></html>");
	return rc;
}

/* 64 hex digits as 16 groups of 4: easy to compare with the device's. */
static dd_err_t fingerprint(dd_buf *out, const char *hex)
{
	dd_err_t rc = DD_OK;
	char group[5];
	size_t n = strlen(hex);

	PUT("<code class=fingerprint>");
	for (size_t i = 0; rc == DD_OK && i < n; i += 4) {
		snprintf(group, sizeof group, "%.4s", hex + i);
		if (i > 0)
			PUT(i % 32 == 0 ? "<br>" : " ");
		ESC(group);
	}
	PUT("</code>");
	return rc;
}

dd_err_t dd_page_enroll(dd_buf *out, const char *pubkey_hex,
			const char *label, const char *hostname, int already,
			const dd_page_who *who)
{
	dd_err_t rc;

	rc = head(out, "Pair a device", who);
	PUT("<h1>Pair this device?</h1><p>Pairing lets the device below open "
	    "shells on <b>");
	ESC(hostname);
	PUT("</b> over an attested Noise channel, until someone revokes it. "
	    "Compare the <b>whole</b> key with the one your device printed "
	    "(<code>devopsdefender client pair</code>): a link can carry "
	    "someone else's key.</p><section class=cards><div class=card>"
	    "<div class=label>Label</div><div class=value>");
	ESC(label);
	PUT("</div></div><div class=card><div class=label>Device key</div>"
	    "<div class=value>");
	if (rc == DD_OK)
		rc = fingerprint(out, pubkey_hex);
	PUT("</div></div><div class=card><div class=label>Paired by</div>"
	    "<div class=value>");
	ESC(who->login);
	PUT("</div></div></section>");
	if (already)
		PUT("<p class=muted>This key is paired already: confirming "
		    "replaces its label.</p>");
	PUT("<form method=post action=/api/v1/devices><input type=hidden "
	    "name=csrf value=\"");
	ESC(who->csrf);
	PUT("\"><input type=hidden name=pubkey value=\"");
	ESC(pubkey_hex);
	PUT("\"><input type=hidden name=label value=\"");
	ESC(label);
	PUT("\"><button id=confirm>Pair this device</button> "
	    "<a href=/>Cancel</a></form></main></body></html>");
	return rc;
}

dd_err_t dd_page_notice(dd_buf *out, const char *title, const char *detail,
			const dd_page_who *who)
{
	dd_err_t rc;

	rc = head(out, title, who);
	PUT("<h1>");
	ESC(title);
	PUT("</h1><p class=status-dead>");
	ESC(detail);
	PUT("</p><p><a href=/>Back to the dashboard</a></p></main></body>"
	    "</html>");
	return rc;
}

static void ms_text(const json_t *v, char *buf, size_t n)
{
	long long ms = json_integer_value(v);
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (!json_is_integer(v) || gmtime_r(&s, &tm) == NULL ||
	    strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, n, "-");
}

dd_err_t dd_page_devices(dd_buf *out, const json_t *devices,
			 const dd_page_who *who)
{
	json_t *d;
	size_t i;
	char when[40];
	dd_err_t rc;

	rc = head(out, "Paired devices", who);
	PUT("<h1>Paired devices</h1>");
	if (json_array_size(devices) == 0) {
		PUT("<p class=muted>No devices paired</p></main></body></html>");
		return rc;
	}
	PUT("<table><tr><th>label</th><th>key</th><th>paired</th><th>by</th>"
	    "<th>state</th><th></th></tr>");
	json_array_foreach(devices, i, d) {
		int revoked = json_is_integer(json_object_get(d, "revoked_at_ms"));

		PUT("<tr><td>");
		ESC(str(d, "label", ""));
		PUT("</td><td class=mono>");
		ESC(str(d, "pubkey", ""));
		PUT("</td><td>");
		ms_text(json_object_get(d, "created_at_ms"), when, sizeof when);
		ESC(when);
		PUT("</td><td>");
		ESC(str(d, "paired_by", "-"));
		PUT(revoked ? "</td><td class=status-dead>revoked "
			    : "</td><td class=status-healthy>trusted");
		if (revoked) {
			ms_text(json_object_get(d, "revoked_at_ms"), when,
				sizeof when);
			ESC(when);
			PUT("</td><td>");
		} else {
			/* A form: no script, and the CSRF token travels with it. */
			PUT("</td><td><form method=post action=\"/api/v1/devices/");
			ESC(str(d, "pubkey", ""));
			PUT("/revoke\"><input type=hidden name=csrf value=\"");
			ESC(who->csrf);
			PUT("\"><button>Revoke</button></form>");
		}
		PUT("</td></tr>");
	}
	PUT("</table></main></body></html>");
	return rc;
}
