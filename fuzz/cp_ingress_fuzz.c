/*
 * cp_ingress_fuzz.c: what an agent's /register or /ingress/replace body
 * makes of an agent's tunnel, without sockets.
 *
 * The input is a JSON body as an attested (or hostile) agent sends it;
 * its "extra_ingress" and, standing in for a recorded hostname, its
 * "host" go through the plan (label and hostname checks), the rules in
 * Cloudflare's order, the store's detail and the /register answer.
 *
 * Seeds: fuzz/seeds/cp_ingress/ (extras in order, agent-api given, a bad
 * label, a port out of range, a recorded host).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloudflare/cf_ops.h"
#include "cp/cp_ingress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const dd_cp_ingress_cfg cfg = {.domain = "example.com",
				      .agent_port = 8080,
				      .api_port = 8081};

static void plan(const json_t *body, const char *host)
{
	dd_cp_ingress_plan p;
	json_t *rules = NULL, *hosts = NULL, *v;
	char why[256];

	if (dd_cp_ingress_plan_make(&cfg, "dd-pr-7-agent-0123456789abcdef",
				    host, json_object_get(body,
							  "extra_ingress"),
				    &p, why, sizeof why) != DD_OK)
		return;
	if (dd_cf_ingress_build(&p.spec, &rules, &hosts, why,
				sizeof why) == DD_OK) {
		v = dd_cp_ingress_reply("dd-pr-7-agent-0123456789abcdef",
					p.host, "t1", hosts, "token");
		json_decref(v);
	}
	v = dd_cp_ingress_detail(p.host, "dd-pr-7-agent-0123456789abcdef");
	json_decref(v);
	json_decref(rules);
	json_decref(hosts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size,
				  JSON_REJECT_DUPLICATES, NULL);

	if (body == NULL)
		return 0;
	plan(body, NULL);
	if (json_is_string(json_object_get(body, "host")))
		plan(body, json_string_value(json_object_get(body, "host")));
	json_decref(body);
	return 0;
}
