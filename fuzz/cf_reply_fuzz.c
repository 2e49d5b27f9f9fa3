/*
 * cf_reply_fuzz.c: Cloudflare API replies without sockets.
 *
 * The input is what a hostile or broken Cloudflare (or something in
 * between) could answer. The first two bytes pick the HTTP status; the
 * rest is the body, which goes through the v4 envelope parser, the list
 * page reader and, when it is a list, the snapshot and map builders (as
 * each of the three listings, so every matching and attribution path
 * sees hostile items), and the Access app matchers.
 *
 * Seeds: fuzz/seeds/cf_reply/ (a good page, success:false with codes,
 * result missing or of the wrong type, garbage).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cloudflare/cf.h"
#include "cloudflare/cf_access.h"
#include "cloudflare/cf_snapshot.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const dd_cf_scope scope = {
	.env = "pr-7", .cp_hostname = "pr-7.example.com",
	.account_id = "a", .zone_id = "z", .fetched_at = "t",
};

static void views(const json_t *items)
{
	dd_cf_listing l = {0};
	json_t *agents = json_pack("[{s:s, s:s, s:s, s:[[s, i]]}]", "agent_id",
				   "dd-pr-7-agent-a", "hostname",
				   "dd-pr-7-agent-a.example.com", "tunnel_id",
				   "t1", "extras", "web", 9000);
	json_t *targets = json_pack("[s, s]", "dd-pr-7-agent-a.example.com",
				    "pr-7.example.com/health");
	json_t *out = NULL;
	size_t i;
	json_t *app;

	l.errors = json_array();
	for (int which = 0; which < 3 && agents && targets; which++) {
		l.tunnels = which == 0 ? json_incref((json_t *)(uintptr_t)items)
				       : json_array();
		l.dns = which == 1 ? json_incref((json_t *)(uintptr_t)items)
				   : json_array();
		l.apps = which == 2 ? json_incref((json_t *)(uintptr_t)items)
				    : json_array();
		if (dd_cf_snapshot_build(&scope, agents, &l, &out) == DD_OK &&
		    !json_is_object(out))
			__builtin_trap();
		json_decref(out);
		out = NULL;
		if (dd_cf_map_build(&scope, agents, &l, &out) == DD_OK &&
		    !json_is_object(out))
			__builtin_trap();
		json_decref(out);
		out = NULL;
		json_decref(l.tunnels);
		json_decref(l.dns);
		json_decref(l.apps);
	}
	json_array_foreach(items, i, app) {
		(void)dd_cf_app_match(app, targets);
		(void)dd_cf_app_match_lenient(app, "dd-pr-7-agent-a.example.com");
	}
	json_decref(l.errors);
	json_decref(agents);
	json_decref(targets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *env = NULL;
	const json_t *items;
	uint64_t pages;
	long status, code = 0;
	dd_buf msg;
	dd_err_t rc;

	if (size < 2)
		return 0;
	status = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 500);
	dd_buf_init(&msg, DD_CF_MSG_MAX);
	rc = dd_cf_envelope_parse(status, data + 2, size - 2, 1u << 20, &env,
				  &code, &msg);
	if ((rc == DD_OK) != (env != NULL) || msg.len > DD_CF_MSG_MAX)
		__builtin_trap();
	if (rc == DD_OK && (status < 200 || status > 299))
		__builtin_trap();
	if (rc == DD_OK && dd_cf_page_parse(env, &items, &pages, &msg) == DD_OK)
		views(items);
	json_decref(env);
	dd_buf_free(&msg);
	return 0;
}
