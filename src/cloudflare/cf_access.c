#include "cloudflare/cf_access.h"

#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_api.h"
#include "cloudflare/cf_names.h"
#include "core/alloc.h"

static const char *const cp_paths[] = {
	"/health", "/api/agents", "/api/v1/admin/export", "/register",
	"/ingress/replace", "/attest",
};
static const char *const agent_paths[] = {
	"/health", "/deploy", "/exec", "/owner", "/logs", "/noise/ws",
};

#define NPATHS(a) (sizeof a / sizeof a[0])

static dd_err_t push(json_t *arr, const char *a, const char *b)
{
	char buf[DD_CF_HOST_MAX + 64];
	int n = snprintf(buf, sizeof buf, "%s%s", a, b);

	if (n < 0 || (size_t)n >= sizeof buf)
		return DD_ERR_INVALID;
	return json_array_append_new(arr, json_string(buf)) ? DD_ERR_NOMEM
							    : DD_OK;
}

static dd_err_t domains(const char *host, const char *const *labels,
			size_t n_labels, int agent, json_t **out)
{
	char h[DD_CF_HOST_MAX + 1];
	json_t *arr = json_array();
	const char *const *paths = agent ? agent_paths : cp_paths;
	size_t np = agent ? NPATHS(agent_paths) : NPATHS(cp_paths);
	dd_err_t rc;

	*out = NULL;
	if (arr == NULL)
		return DD_ERR_NOMEM;
	rc = dd_cf_check_hostname(host, NULL, 0);
	if (rc == DD_OK)
		rc = push(arr, host, "");
	if (rc == DD_OK && agent)
		rc = dd_cf_agent_api_hostname(host, h, sizeof h, NULL, 0);
	if (rc == DD_OK && agent)
		rc = push(arr, h, "");
	for (size_t i = 0; rc == DD_OK && i < np; i++)
		rc = push(arr, host, paths[i]);
	for (size_t i = 0; rc == DD_OK && i < n_labels; i++) {
		rc = agent ? dd_cf_extra_hostname(host, labels[i], h, sizeof h,
						  NULL, 0)
			   : dd_cf_label_hostname(host, labels[i], h, sizeof h,
						  NULL, 0);
		if (rc == DD_OK)
			rc = push(arr, h, "");
	}
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DD_OK;
}

dd_err_t dd_cf_access_cp_domains(const char *host, const char *const *labels,
				 size_t n_labels, json_t **out)
{
	return domains(host, labels, n_labels, 0, out);
}

dd_err_t dd_cf_access_agent_domains(const char *host,
				    const char *const *labels,
				    size_t n_labels, json_t **out)
{
	return domains(host, labels, n_labels, 1, out);
}

dd_cf_match dd_cf_domain_match(const char *d, const char *t)
{
	size_t dh, th, sl;
	const char *suffix;

	if (d == NULL || t == NULL || d[0] == '\0')
		return DD_CF_MATCH_NONE;
	if (strcmp(d, t) == 0)
		return DD_CF_MATCH_EXACT;
	dh = dd_cf_host_len(d);
	th = dd_cf_host_len(t);
	if (dh == th && memcmp(d, t, dh) == 0)
		return DD_CF_MATCH_EXACT;
	if (dh < 3 || d[0] != '*' || d[1] != '.')
		return DD_CF_MATCH_NONE;
	suffix = d + 2;
	sl = dh - 2;
	/* The target host ends in ".{suffix}" and is not the suffix. */
	if (th > sl + 1 && t[th - sl - 1] == '.' &&
	    memcmp(t + th - sl, suffix, sl) == 0)
		return DD_CF_MATCH_WILDCARD;
	return DD_CF_MATCH_NONE;
}

static dd_cf_match best_of(const char *d, const json_t *targets)
{
	dd_cf_match best = DD_CF_MATCH_NONE, m;
	size_t i;
	json_t *t;

	json_array_foreach(targets, i, t) {
		m = dd_cf_domain_match(d, json_string_value(t));
		if (m > best)
			best = m;
	}
	return best;
}

static void consider(const json_t *v, const json_t *targets, dd_cf_match *b)
{
	dd_cf_match m;

	if (!json_is_string(v))
		return;
	m = best_of(json_string_value(v), targets);
	if (m > *b)
		*b = m;
}

dd_cf_match dd_cf_app_match(const json_t *app, const json_t *targets)
{
	dd_cf_match best = DD_CF_MATCH_NONE;
	size_t i;
	json_t *e;

	if (!json_is_object(app))
		return best;
	consider(json_object_get(app, "domain"), targets, &best);
	json_array_foreach(json_object_get(app, "destinations"), i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		if (type != NULL && strcmp(type, "public") == 0)
			consider(json_object_get(e, "uri"), targets, &best);
	}
	json_array_foreach(json_object_get(app, "self_hosted_domains"), i, e) {
		consider(e, targets, &best);
		consider(json_object_get(e, "domain"), targets, &best);
		consider(json_object_get(e, "uri"), targets, &best);
	}
	return best;
}

int dd_cf_app_match_lenient(const json_t *app, const char *host)
{
	const char *d = json_string_value(json_object_get(app, "domain"));
	char api[DD_CF_HOST_MAX + 1];
	const char *dot = strchr(host, '.');
	size_t hl = strlen(host), dl, bl, tl;

	if (d == NULL || dot == NULL)
		return 0;
	dl = strlen(d);
	if (strcmp(d, host) == 0 ||
	    (dl > hl && strncmp(d, host, hl) == 0 && d[hl] == '/'))
		return 1;
	if (dd_cf_agent_api_hostname(host, api, sizeof api, NULL, 0) == DD_OK &&
	    strcmp(d, api) == 0)
		return 1;
	/* "{base}-....{tld}": the agent's flattened workload hosts. */
	bl = (size_t)(dot - host);
	tl = strlen(dot); /* ".{tld}" */
	return dl > bl + 1 + tl && strncmp(d, host, bl) == 0 && d[bl] == '-' &&
	       strcmp(d + dl - tl, dot) == 0;
}

/* --- the cleanup run ---------------------------------------------------- */

struct run {
	dd_cf *cf;
	int strict;
	json_t *targets;     /* strict */
	char *host;          /* lenient */
	json_t *doomed;      /* apps to delete, in order */
	size_t next;
	json_t *report;
	dd_cf_access_cb cb;
	void *ud;
};

static void run_free(struct run *r)
{
	if (r == NULL)
		return;
	json_decref(r->targets);
	json_decref(r->doomed);
	json_decref(r->report);
	dd_free(r->host);
	dd_free(r);
}

static void finish(struct run *r, dd_err_t err, const char *msg)
{
	r->cb(r->strict ? err : DD_OK, r->strict ? msg : "", r->report, r->ud);
	run_free(r);
}

static json_t *brief(const json_t *app)
{
	return json_pack("{s:O?, s:O?, s:O?}",
			 "id", json_object_get(app, "id"),
			 "name", json_object_get(app, "name"),
			 "domain", json_object_get(app, "domain"));
}

static void on_deleted(const dd_cf_reply *rep, void *ud);

/* Deletes the next app; finishes after the last. */
static void next_delete(struct run *r)
{
	const json_t *app;
	const char *id;
	dd_err_t rc;

	if (r->next >= json_array_size(r->doomed)) {
		finish(r, DD_OK, "");
		return;
	}
	app = json_array_get(r->doomed, r->next);
	id = json_string_value(json_object_get(app, "id"));
	rc = dd_cf_access_delete(r->cf, id, on_deleted, r);
	if (rc) {
		char msg[128];
		snprintf(msg, sizeof msg, "deleting Access app: %s",
			 dd_strerror(rc));
		finish(r, rc, msg);
	}
}

static void on_deleted(const dd_cf_reply *rep, void *ud)
{
	struct run *r = ud;
	json_t *app = json_array_get(r->doomed, r->next);
	json_t *list;

	r->next++;
	if (rep->err) {
		list = json_object_get(r->report, "failed");
		(void)json_array_append_new(list, json_pack("{s:O?, s:s}",
			"id", json_object_get(app, "id"), "error", rep->message));
		if (r->strict) {
			finish(r, rep->err, rep->message);
			return;
		}
	} else {
		list = json_object_get(r->report, "deleted");
		(void)json_array_append_new(list, brief(app));
	}
	next_delete(r);
}

/* Sorts the listed apps into "delete" and "left alone". */
static dd_err_t triage(struct run *r, const json_t *apps)
{
	size_t i;
	json_t *app;

	json_array_foreach(apps, i, app) {
		dd_cf_match m;
		const char *id = json_string_value(json_object_get(app, "id"));

		if (r->strict)
			m = dd_cf_app_match(app, r->targets);
		else
			m = dd_cf_app_match_lenient(app, r->host)
				    ? DD_CF_MATCH_EXACT : DD_CF_MATCH_NONE;
		if (m == DD_CF_MATCH_NONE)
			continue;
		if (m == DD_CF_MATCH_WILDCARD || !dd_cf_id_ok(id)) {
			json_t *b = brief(app);
			if (b == NULL || json_object_set_new(b, "reason",
				json_string(m == DD_CF_MATCH_WILDCARD
					? "wildcard app covering more than DD's hosts"
					: "app without a usable id")) ||
			    json_array_append_new(json_object_get(r->report,
				"left_alone"), b))
				return DD_ERR_NOMEM;
			continue;
		}
		if (json_array_append(r->doomed, app))
			return DD_ERR_NOMEM;
	}
	return DD_OK;
}

static void on_listed(const dd_cf_reply *rep, void *ud)
{
	struct run *r = ud;
	dd_err_t rc;

	if (rep->err) {
		finish(r, rep->err, rep->message);
		return;
	}
	rc = triage(r, rep->result);
	if (rc) {
		finish(r, rc, "out of memory sorting Access apps");
		return;
	}
	next_delete(r);
}

static dd_err_t begin(dd_cf *cf, int strict, const json_t *targets,
		      const char *host, dd_cf_access_cb cb, void *ud)
{
	struct run *r = dd_calloc(1, sizeof *r);
	dd_err_t rc = DD_ERR_NOMEM;

	if (r == NULL)
		return DD_ERR_NOMEM;
	r->cf = cf;
	r->strict = strict;
	r->cb = cb;
	r->ud = ud;
	r->doomed = json_array();
	r->report = json_pack("{s:[], s:[], s:[]}", "deleted", "left_alone",
			      "failed");
	if (targets != NULL)
		r->targets = json_deep_copy(targets);
	if (host != NULL)
		r->host = dd_strdup(host);
	if (r->doomed == NULL || r->report == NULL ||
	    (targets != NULL && r->targets == NULL) ||
	    (host != NULL && r->host == NULL))
		goto out;
	rc = dd_cf_access_list(cf, on_listed, r);
	if (rc == DD_OK)
		r = NULL; /* owned by the call */
out:
	run_free(r);
	return rc;
}

dd_err_t dd_cf_access_cleanup_strict(dd_cf *cf, const json_t *domains_,
				     dd_cf_access_cb cb, void *ud)
{
	if (!json_is_array(domains_))
		return DD_ERR_INVALID;
	if (json_array_size(domains_) == 0) {
		json_t *empty = json_pack("{s:[], s:[], s:[]}", "deleted",
					  "left_alone", "failed");
		if (empty == NULL)
			return DD_ERR_NOMEM;
		/* Nothing to protect: no call at all, as in the spec. */
		cb(DD_OK, "", empty, ud);
		json_decref(empty);
		return DD_OK;
	}
	return begin(cf, 1, domains_, NULL, cb, ud);
}

dd_err_t dd_cf_access_cleanup_lenient(dd_cf *cf, const char *agent_host,
				      dd_cf_access_cb cb, void *ud)
{
	if (dd_cf_check_hostname(agent_host, NULL, 0) != DD_OK ||
	    strchr(agent_host, '.') == NULL)
		return DD_ERR_INVALID;
	return begin(cf, 0, NULL, agent_host, cb, ud);
}
