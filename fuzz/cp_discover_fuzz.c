/*
 * cp_discover_fuzz.c: the collector's discovery (cp/cp_discover.h) over
 * hostile input, without sockets. The input is JSON: an object
 * {"tunnels": [...], "health": {...}} or one value used as both. The
 * tunnels are filtered into a listing, a fixed store record claims what
 * it names, the rest become targets (two shards), and each target is
 * adopted with the health body. Checked: every target is an unclaimed
 * agent tunnel of our env with an -api- URL, each shard's targets are
 * its own and the two shards together are the unclaimed ones, and every
 * adopted record is keyed by its tunnel (the store's checks then run on
 * it, as the CP runs them).
 *
 * Seeds: fuzz/seeds/cp_discover/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "cp/cp_discover.h"
#include "cp/cp_reap.h"
#include "cp/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENV "pr-7"
#define DOMAIN "example.com"
#define CLAIMED "dd-pr-7-agent-0123456789abcdef"

static const json_t *part(const json_t *v, const char *key)
{
	return json_is_object(v) && json_object_get(v, key) != NULL
		       ? json_object_get(v, key)
		       : v;
}

static void adopt(const dd_collect_target *t, const json_t *health)
{
	dd_store_agent a;

	/* A body the store refuses is logged by the CP, not a crash. */
	if (dd_cp_discover_adopt(t, health, ENV, DOMAIN, 1, &a) == DD_OK) {
		if (strcmp(a.agent_id, t->agent_id) != 0 ||
		    strcmp(a.tunnel_id, t->tunnel_id) != 0)
			abort();
		(void)dd_store_agent_check(&a, NULL, 0);
	}
	dd_store_agent_clear(&a);
}

static void check(const dd_collect_target *v, size_t n, uint64_t shard,
		  const json_t *health)
{
	for (size_t i = 0; i < n; i++) {
		if (!v[i].unknown || !v[i].via_edge ||
		    strcmp(v[i].agent_id, CLAIMED) == 0 ||
		    !dd_cp_reap_env_tunnel(v[i].agent_id, ENV, "agent") ||
		    strncmp(v[i].url, "https://dd-pr-7-api-", 20) != 0 ||
		    dd_shard_of(v[i].agent_id, 2) != shard)
			abort();
		adopt(&v[i], health);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *in = json_loadb((const char *)data, size, 0, NULL);
	dd_cp_discover_listing l;
	size_t unclaimed = 0, total = 0;

	if (in == NULL)
		return 0;
	if (dd_cp_discover_listing_make(part(in, "tunnels"), ENV, DOMAIN, &l,
					NULL) != DD_OK) {
		json_decref(in);
		return 0;
	}
	dd_cp_discover_mark(&l, DOMAIN, CLAIMED, "vm-1." DOMAIN, "tid-1");
	for (size_t i = 0; i < l.n; i++)
		unclaimed += !l.v[i].known;
	for (uint64_t s = 0; s < 2; s++) {
		dd_collect_target *v = NULL;
		size_t n = 0, cap = 0;

		if (dd_cp_discover_append(&l, DOMAIN, 2, s, &v, &n, &cap,
					  NULL) == DD_OK)
			check(v, n, s, part(in, "health"));
		total += n;
		dd_free(v);
	}
	if (total != unclaimed)
		abort();
	dd_cp_discover_listing_clear(&l);
	json_decref(in);
	return 0;
}
