/*
 * dd-cftool: drives the real Cloudflare client (src/cloudflare) from the
 * command line for tests/e2e/test_cloudflare.py. Never shipped.
 *
 * Settings come from the environment: DD_CF_API_URL, DD_CF_API_TOKEN,
 * DD_CF_ACCOUNT_ID, DD_CF_ZONE_ID, DD_CF_TIMEOUT_MS, DD_CF_ATTEMPTS,
 * DD_CF_MAX_WAIT_MS, DD_CF_MAX_ITEMS. One JSON line goes to stdout:
 * {"ok":true,"result":...} or {"ok":false,"code","error","status",
 * "cf_code"}; the exit status is 0 or 1 (2 for usage errors).
 * `serve` (cftool_serve.c) serves the CP's views over HTTP instead.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_access.h"
#include "cloudflare/cf_api.h"
#include "cloudflare/cf_ops.h"
#include "cloudflare/cf_snapshot.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/httpc.h"

/* cftool_serve.c: the CP's Cloudflare views over HTTP. */
int dd_cftool_serve(int argc, char **argv);

struct run {
	int done;
	int ok;
	json_t *out;
	const char *env, *cp_host;
	json_t *agents;
};

static void set_out(struct run *r, dd_err_t err, const char *msg,
		    long status, long code, const json_t *result)
{
	r->done = 1;
	r->ok = err == DD_OK;
	if (err == DD_OK)
		r->out = json_pack("{s:b, s:O?}", "ok", 1, "result", result);
	else
		r->out = json_pack("{s:b, s:s, s:s, s:i, s:i}", "ok", 0, "code",
				   dd_errname(err), "error", msg, "status",
				   (json_int_t)status, "cf_code",
				   (json_int_t)code);
}

static void on_reply(const dd_cf_reply *rep, void *ud)
{
	set_out(ud, rep->err, rep->message, rep->status, rep->cf_code,
		rep->result);
}

static void on_op(dd_err_t err, const char *msg, const json_t *res, void *ud)
{
	set_out(ud, err, msg, 0, 0, res);
}

static void on_access(dd_err_t err, const char *msg, const json_t *report,
		      void *ud)
{
	struct run *r = ud;

	set_out(r, err, msg, 0, 0, report);
	if (err)
		(void)json_object_set_new(r->out, "report",
					  json_deep_copy(report));
}

static void on_listing(dd_cf_listing *l, void *ud)
{
	struct run *r = ud;
	const char *acct = getenv("DD_CF_ACCOUNT_ID");
	const char *zone = getenv("DD_CF_ZONE_ID");
	const char *labels[] = {"shell"};
	dd_cf_scope s = {
		.env = r->env, .cp_hostname = r->cp_host,
		.account_id = acct ? acct : "", .zone_id = zone ? zone : "",
		.fetched_at = "2026-01-01T00:00:00+00:00",
		.cp_labels = labels, .n_cp_labels = 1,
	};
	json_t *v = NULL;
	dd_err_t rc = r->out != NULL
		? dd_cf_map_build(&s, r->agents, l, &v)
		: dd_cf_snapshot_build(&s, r->agents, l, &v);

	json_decref(r->out);
	r->out = NULL;
	set_out(r, rc, "build failed", 0, 0, v);
	json_decref(v);
}

static uint64_t env_u64(const char *name)
{
	const char *s = getenv(name);
	uint64_t v = 0;

	if (s != NULL && dd_parse_u64(s, 0, UINT64_MAX, &v) != DD_OK)
		v = 0;
	return v;
}

static int spec_from(char **argv, dd_cf_extra *ex, dd_cf_ingress_spec *s,
		     char *why, size_t why_len)
{
	uint64_t p1, p2;
	size_t n;

	if (dd_parse_u64(argv[1], 1, 65535, &p1) ||
	    dd_parse_u64(argv[2], 0, 65535, &p2) ||
	    dd_cf_extras_parse(argv[3], ex, DD_CF_MAX_EXTRAS, &n, why,
			       why_len))
		return -1;
	*s = (dd_cf_ingress_spec){
		.primary = argv[0], .primary_port = (uint16_t)p1,
		.api_port = (uint16_t)p2, .extras = ex, .n_extras = n,
	};
	return 0;
}

static json_t *split_labels(const char *csv)
{
	json_t *a = json_array();
	const char *p = csv;

	while (p != NULL && *p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		json_array_append_new(a, json_stringn(p, n));
		p = e ? e + 1 : NULL;
	}
	return a;
}

static dd_err_t access_strict(dd_cf *cf, int argc, char **argv,
			      struct run *r)
{
	json_t *labels = split_labels(argc > 4 ? argv[4] : "");
	const char *l[DD_CF_MAX_EXTRAS];
	size_t n = json_array_size(labels);
	json_t *d = NULL;
	dd_err_t rc;

	for (size_t i = 0; i < n && i < DD_CF_MAX_EXTRAS; i++)
		l[i] = json_string_value(json_array_get(labels, i));
	rc = strcmp(argv[2], "cp") == 0
		? dd_cf_access_cp_domains(argv[3], l, n, &d)
		: dd_cf_access_agent_domains(argv[3], l, n, &d);
	if (rc == DD_OK)
		rc = dd_cf_access_cleanup_strict(cf, d, on_access, r);
	json_decref(d);
	json_decref(labels);
	return rc;
}

static dd_err_t dispatch(dd_cf *cf, int argc, char **argv, struct run *r,
			 char *why, size_t why_len)
{
	const char *cmd = argv[1];
	dd_cf_extra ex[DD_CF_MAX_EXTRAS];
	dd_cf_ingress_spec s;

#define NEED(n) do { if (argc < (n)) return DD_ERR_INVALID; } while (0)
	if (strcmp(cmd, "raw") == 0) {
		json_t *body = NULL;
		dd_err_t rc;
		NEED(4);
		if (argc > 4)
			body = json_loads(argv[4], 0, NULL);
		rc = dd_cf_call(cf, argv[2], argv[3], body, on_reply, r);
		json_decref(body);
		return rc;
	}
	if (strcmp(cmd, "list") == 0) {
		NEED(4);
		return dd_cf_list(cf, argv[2], (unsigned)strtoul(argv[3], NULL,
								 10),
				  on_reply, r);
	}
	if (strcmp(cmd, "tunnels") == 0)
		return dd_cf_tunnels_list(cf, on_reply, r);
	if (strcmp(cmd, "cnames") == 0)
		return dd_cf_dns_list_cnames(cf, on_reply, r);
	if (strcmp(cmd, "apps") == 0)
		return dd_cf_access_list(cf, on_reply, r);
	NEED(3);
	if (strcmp(cmd, "find-tunnel") == 0)
		return dd_cf_tunnels_find(cf, argv[2], on_reply, r);
	if (strcmp(cmd, "get-tunnel") == 0)
		return dd_cf_tunnel_get(cf, argv[2], on_reply, r);
	if (strcmp(cmd, "token") == 0)
		return dd_cf_tunnel_token(cf, argv[2], on_reply, r);
	if (strcmp(cmd, "delete-tunnel") == 0)
		return dd_cf_op_delete_tunnel(cf, argv[2], on_op, r);
	if (strcmp(cmd, "access-lenient") == 0)
		return dd_cf_access_cleanup_lenient(cf, argv[2], on_access, r);
	if (strcmp(cmd, "delete-cname") == 0)
		return dd_cf_op_delete_cname(cf, argv[2],
					     argc > 3 ? argv[3] : NULL, on_op, r);
	NEED(4);
	if (strcmp(cmd, "upsert-cname") == 0)
		return dd_cf_op_upsert_cname(cf, argv[2], argv[3], on_op, r);
	if (strcmp(cmd, "access-strict") == 0)
		return access_strict(cf, argc, argv, r);
	if (strcmp(cmd, "snapshot") == 0 || strcmp(cmd, "map") == 0) {
		NEED(5);
		r->env = argv[2];
		r->cp_host = argv[3];
		r->agents = json_load_file(argv[4], 0, NULL);
		if (!json_is_array(r->agents))
			return DD_ERR_INVALID;
		/* A non-NULL out before the listing marks "map". */
		if (strcmp(cmd, "map") == 0)
			r->out = json_object();
		return dd_cf_fetch_all(cf, on_listing, r);
	}
	NEED(7);
	if (strcmp(cmd, "create-tunnel") == 0) {
		if (spec_from(argv + 3, ex, &s, why, why_len))
			return DD_ERR_INVALID;
		return dd_cf_op_create_tunnel(cf, argv[2], &s, on_op, r, why,
					      why_len);
	}
	if (strcmp(cmd, "apply-ingress") == 0) {
		if (spec_from(argv + 3, ex, &s, why, why_len))
			return DD_ERR_INVALID;
		return dd_cf_op_apply_ingress(cf, argv[2], &s, on_op, r, why,
					      why_len);
	}
#undef NEED
	return DD_ERR_INVALID;
}

static void closed(dd_httpc *c, void *ud)
{
	(void)ud;
	dd_httpc_free(c);
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	dd_httpc_opts ho = {.ca_file = getenv("DD_CA_FILE")};
	dd_cf_opts o = {
		.base_url = getenv("DD_CF_API_URL"),
		.api_token = getenv("DD_CF_API_TOKEN"),
		.account_id = getenv("DD_CF_ACCOUNT_ID"),
		.zone_id = getenv("DD_CF_ZONE_ID"),
		.timeout_ms = env_u64("DD_CF_TIMEOUT_MS"),
		.max_attempts = (unsigned)env_u64("DD_CF_ATTEMPTS"),
		.base_backoff_ms = env_u64("DD_CF_BACKOFF_MS"),
		.max_wait_ms = env_u64("DD_CF_MAX_WAIT_MS"),
		.max_items = (size_t)env_u64("DD_CF_MAX_ITEMS"),
	};
	struct run r = {0};
	dd_httpc *http = NULL;
	dd_cf *cf = NULL;
	char why[256] = "";
	dd_err_t rc;
	int status = 1;

	signal(SIGPIPE, SIG_IGN);
	dd_json_setup();
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return dd_cftool_serve(argc, argv);
	if (argc < 2) {
		fprintf(stderr, "usage: dd-cftool COMMAND [ARGS...]\n");
		return 2;
	}
	rc = dd_httpc_new(loop, &ho, &http);
	if (rc == DD_OK)
		rc = dd_cf_new(http, &o, &cf, why, sizeof why);
	if (rc == DD_OK)
		rc = dispatch(cf, argc, argv, &r, why, sizeof why);
	if (rc) {
		fprintf(stdout, "{\"ok\":false,\"code\":\"%s\",\"start\":true,"
			"\"error\":\"%s\"}\n", dd_errname(rc), why);
		status = rc == DD_ERR_INVALID ? 2 : 1;
		goto out;
	}
	while (!r.done && uv_run(loop, UV_RUN_ONCE) != 0)
		;
	if (r.out != NULL) {
		char *s = json_dumps(r.out, JSON_COMPACT);
		fprintf(stdout, "%s\n", s ? s : "{}");
		free(s);
	}
	status = r.ok ? 0 : 1;
out:
	dd_cf_free(cf);
	if (http != NULL) {
		dd_httpc_close(http, closed, NULL);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	json_decref(r.out);
	json_decref(r.agents);
	uv_loop_close(loop);
	return status;
}
