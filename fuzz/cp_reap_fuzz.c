/*
 * cp_reap_fuzz.c: the reaping decision (cp/cp_reap.h) over hostile
 * Cloudflare listings, without sockets. The input is JSON: an object
 * {"tunnels": [...], "dns": [...], "apps": [...]} or one array used as
 * all three. The plan is made against a small fixed store and dead
 * queue, then each victim's CNAMEs and Access apps are selected, the
 * way cp/cp_reap.c does. Checked: every victim is this env's agent
 * tunnel (or none), never a claimed one, never more than max.
 *
 * Seeds: fuzz/seeds/cp_reap/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cp/cp_reap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENV "pr-7"

static const json_t *part(const json_t *v, const char *key)
{
	return json_is_object(v) ? json_object_get(v, key) : v;
}

static void check(const dd_cp_reap_plan *p, const dd_cp_reap_known *k,
		  size_t max)
{
	if (p->verdict != DD_REAP_GO && p->n != 0)
		abort();
	if (p->n > max)
		abort();
	for (size_t i = 0; i < p->n; i++) {
		const dd_cp_reap_item *it = &p->items[i];

		if (!it->dead && !dd_cp_reap_env_tunnel(it->name, ENV, "agent"))
			abort();
		if (it->tunnel_id[0] != '\0' &&
		    strcmp(it->tunnel_id, k->tunnel_id) == 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const dd_cp_reap_known known = {
		.agent_id = "dd-pr-7-agent-0123456789abcdef",
		.host_label = "dd-pr-7-agent-0123456789abcdef",
		.tunnel_id = "11111111-2222-4333-8444-555555555555"};
	static const dd_cp_reap_gone dead[2] = {
		{.agent_id = "dd-pr-7-agent-fedcba9876543210",
		 .hostname = "dd-pr-7-agent-fedcba9876543210.example.com",
		 .tunnel_id = "66666666-7777-4888-8999-000000000000"},
		{.agent_id = "dd-pr-7-agent-aaaaaaaaaaaaaaaa"},
	};
	dd_cp_reap_plan p;
	json_t *v;

	v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		return 0;
	if (dd_cp_reap_plan_make(&(dd_cp_reap_input){
		    .env = ENV, .domain = "example.com",
		    .own_cp = "dd-pr-7-cp-00000000-0000-4000-8000-000000000000",
		    .tunnels = part(v, "tunnels"), .serving = true,
		    .store_complete = true, .known = &known, .n_known = 1,
		    .dead = dead, .n_dead = 2,
		    .now_ms = INT64_C(1796018400000), .grace_ms = 900000,
		    .max = 4}, &p) == DD_OK) {
		check(&p, &known, 4);
		for (size_t i = 0; i < p.n; i++) {
			json_decref(dd_cp_reap_cnames(part(v, "dns"),
						      p.items[i].cname_target,
						      DD_CP_REAP_MAX_CNAMES));
			json_decref(dd_cp_reap_apps(part(v, "apps"),
						    p.items[i].host,
						    DD_CP_REAP_MAX_APPS));
		}
		dd_cp_reap_plan_clear(&p);
	}
	json_decref(v);
	return 0;
}
