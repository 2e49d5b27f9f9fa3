/*
 * cp_discover's pure parts (spec integrations.md 3.3-3.5): which tunnels
 * of a Cloudflare listing are this env's agents, which of them a store
 * record claims, the targets the rest become (this shard's only), the
 * young-unknown rule, and the record an adopted agent gets. The
 * listing's schedule and the wiring to the store are covered end to end
 * by tests/e2e/test_discovery.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "cp/collector.h"
#include "cp/cp_discover.h"
#include "cp/cp_register.h"
#include "cp/shard.h"

#define DOMAIN "example.com"
#define A1 "dd-pr-9-agent-0123456789abcdef"
#define A2 "dd-pr-9-agent-00000000000000a2"
#define A3 "dd-pr-9-agent-00000000000000a3"
#define A4 "dd-pr-9-agent-00000000000000a4"
#define ID(n) "6f1c0a52-1f7e-4a6e-9b1c-2f0d3c4b5a6" #n

/* 2026-11-30T08:00:00.123456Z in Unix ms. */
#define T0_MS INT64_C(1796025600123)

static json_t *listing_json(void)
{
	json_error_t e;
	json_t *v = json_loads(
		"["
		/* Kept: ours, dated to the microsecond. */
		"{\"id\":\"" ID(1) "\",\"name\":\"" A1 "\","
		" \"created_at\":\"2026-11-30T08:00:00.123456Z\","
		" \"deleted_at\":null},"
		/* Kept: no created_at at all, no deleted_at member. */
		"{\"id\":\"" ID(2) "\",\"name\":\"" A2 "\"},"
		/* Kept: an unreadable created_at reads as undated. */
		"{\"id\":\"" ID(3) "\",\"name\":\"" A3 "\","
		" \"created_at\":\"yesterday\"},"
		/* Kept once: the same name listed twice. */
		"{\"id\":\"" ID(4) "\",\"name\":\"" A4 "\","
		" \"created_at\":\"2026-11-30T08:00:00Z\"},"
		"{\"id\":\"" ID(4) "\",\"name\":\"" A4 "\","
		" \"created_at\":\"2026-11-30T08:00:00Z\"},"
		/* Deleted. */
		"{\"id\":\"" ID(5) "\",\"name\":\"dd-pr-9-agent-0000000000000005\","
		" \"deleted_at\":\"2026-11-30T08:00:00Z\"},"
		/* Other roles, other envs, not ours at all. */
		"{\"id\":\"" ID(6) "\",\"name\":\"dd-pr-9-cp-0000000000000006\"},"
		"{\"id\":\"" ID(7) "\",\"name\":\"dd-pr-1-agent-0000000000000007\"},"
		"{\"id\":\"" ID(8) "\",\"name\":\"someone-else\"},"
		/* Named like ours but refused (counted): another env's marker
		 * in the tail, a path in the id, no id, an oversized name. */
		"{\"id\":\"" ID(9) "\",\"name\":\"dd-pr-9-agent-y-agent-00aa\"},"
		"{\"id\":\"../../x\",\"name\":\"dd-pr-9-agent-00000000000000b1\"},"
		"{\"name\":\"dd-pr-9-agent-00000000000000b2\"},"
		"{\"id\":\"" ID(9) "\",\"name\":\"dd-pr-9-agent-"
		"0123456789abcdef0123456789abcdef0123456789abcdef012\"},"
		/* Not objects, names not strings. */
		"7, null, {\"id\":\"" ID(9) "\",\"name\":12}"
		"]", 0, &e);

	assert_non_null(v);
	return v;
}

static void filter_keeps_our_agents_only(void **state)
{
	json_t *j = listing_json();
	dd_cp_discover_listing l;
	size_t dropped = 99;

	(void)state;
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l,
						     &dropped), DD_OK);
	assert_int_equal(l.n, 4);
	assert_int_equal(dropped, 4);
	/* Sorted by name. */
	assert_string_equal(l.v[0].name, A2);
	assert_string_equal(l.v[1].name, A3);
	assert_string_equal(l.v[2].name, A4);
	assert_string_equal(l.v[3].name, A1);
	assert_string_equal(l.v[3].id, ID(1));
	assert_true(l.v[3].created_ms == T0_MS);
	assert_true(l.v[0].created_ms == 0);
	assert_true(l.v[1].created_ms == 0);
	assert_true(l.v[2].created_ms == T0_MS - 123);
	for (size_t i = 0; i < l.n; i++)
		assert_false(l.v[i].known);
	dd_cp_discover_listing_clear(&l);
	assert_null(l.v);

	/* Another env sees none of them; garbage is an empty listing. */
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-1", DOMAIN, &l,
						     NULL), DD_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, ID(7));
	dd_cp_discover_listing_clear(&l);
	json_decref(j);
	j = json_object();
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l,
						     &dropped), DD_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(dropped, 0);
	dd_cp_discover_listing_clear(&l);
	json_decref(j);
}

static dd_cp_discover_tunnel *find(dd_cp_discover_listing *l, const char *n)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, n) == 0)
			return &l->v[i];
	}
	fail_msg("%s not listed", n);
	/* Not reached; a pointer, so -O3's null-dereference check is quiet. */
	return &l->v[0];
}

/*
 * A record claims a tunnel by its id (the tunnel's name), its hostname
 * ({name}.{domain}: the spec's rule) or its tunnel id; nothing else does.
 */
static void records_claim_tunnels(void **state)
{
	json_t *j = listing_json();
	dd_cp_discover_listing l;

	(void)state;
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l,
						     NULL), DD_OK);
	/* Near misses first: none of these claims anything. */
	dd_cp_discover_mark(&l, DOMAIN, "dd-pr-9-agent-0123456789abcde",
			    A1 ".other.com", ID(0));
	dd_cp_discover_mark(&l, DOMAIN, "", A2 "." DOMAIN ".evil", "");
	dd_cp_discover_mark(&l, DOMAIN, NULL, A2, NULL);
	dd_cp_discover_mark(&l, DOMAIN, "control-plane", "pr-9." DOMAIN, "");
	for (size_t i = 0; i < l.n; i++)
		assert_false(l.v[i].known);
	dd_cp_discover_mark(&l, DOMAIN, A1, "", "");
	assert_true(find(&l, A1)->known);
	dd_cp_discover_mark(&l, DOMAIN, "vm-7", A2 "." DOMAIN, "");
	assert_true(find(&l, A2)->known);
	dd_cp_discover_mark(&l, DOMAIN, "vm-8", "vm-8." DOMAIN, ID(3));
	assert_true(find(&l, A3)->known);
	assert_false(find(&l, A4)->known);
	dd_cp_discover_listing_clear(&l);
	json_decref(j);
}

static void unknown_tunnels_become_targets(void **state)
{
	json_t *j = listing_json();
	dd_cp_discover_listing l;
	dd_collect_target *v = NULL;
	size_t n = 1, cap = 1, added = 0;

	(void)state;
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l,
						     NULL), DD_OK);
	dd_cp_discover_mark(&l, DOMAIN, A2, NULL, NULL);
	/* One target already there (the store's) is kept as it is. */
	v = dd_calloc(1, sizeof *v);
	assert_non_null(v);
	snprintf(v[0].agent_id, sizeof v[0].agent_id, "direct-1");
	assert_int_equal(dd_cp_discover_append(&l, DOMAIN, 1, 0, &v, &n, &cap,
					       &added), DD_OK);
	assert_int_equal(added, 3);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].agent_id, "direct-1");
	assert_false(v[0].unknown);
	assert_string_equal(v[1].agent_id, A3);
	assert_string_equal(v[2].agent_id, A4);
	assert_string_equal(v[3].agent_id, A1);
	assert_string_equal(v[3].url,
			    "https://dd-pr-9-api-0123456789abcdef." DOMAIN);
	assert_string_equal(v[3].tunnel_id, ID(1));
	assert_true(v[3].created_ms == T0_MS);
	for (size_t i = 1; i < n; i++) {
		assert_true(v[i].unknown);
		assert_true(v[i].via_edge);
		assert_int_equal(v[i].status, DD_COLLECT_REGISTERING);
		assert_true(v[i].last_seen_ms == 0);
		assert_true(v[i].registered_at_ms == 0);
	}
	dd_free(v);
	dd_cp_discover_listing_clear(&l);
	json_decref(j);
}

/* Two CPs with two shards split the unknown tunnels between them. */
static void unknown_targets_are_sharded(void **state)
{
	char buf[64 * 64 + 2];
	size_t off = 0, seen = 0;
	json_t *j;
	dd_cp_discover_listing l;

	(void)state;
	off += (size_t)snprintf(buf + off, sizeof buf - off, "[");
	for (int i = 0; i < 40; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off,
					"%s{\"id\":\"id-%d\",\"name\":"
					"\"dd-pr-9-agent-%016x\"}",
					i ? "," : "", i, i * 104729);
	snprintf(buf + off, sizeof buf - off, "]");
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	assert_int_equal(dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l,
						     NULL), DD_OK);
	assert_int_equal(l.n, 40);
	for (uint64_t s = 0; s < 2; s++) {
		dd_collect_target *v = NULL;
		size_t n = 0, cap = 0, added = 0;

		assert_int_equal(dd_cp_discover_append(&l, DOMAIN, 2, s, &v,
						       &n, &cap, &added),
				 DD_OK);
		assert_int_equal(added, n);
		assert_true(n > 5 && n < 35);
		for (size_t i = 0; i < n; i++)
			assert_true(dd_shard_of(v[i].agent_id, 2) == s);
		seen += n;
		dd_free(v);
	}
	assert_int_equal(seen, 40);
	dd_cp_discover_listing_clear(&l);
	json_decref(j);
}

/* Spec 3.4: younger than 120 s (the grace) -> not contacted. */
static void young_unknown_rule(void **state)
{
	dd_collect_target t;
	const int64_t now = T0_MS + 1000000;

	(void)state;
	memset(&t, 0, sizeof t);
	t.created_ms = now - 1000;
	assert_false(dd_collect_pending(&t, now, 120000)); /* known */
	t.unknown = true;
	assert_true(dd_collect_pending(&t, now, 120000));
	t.created_ms = now - 119999;
	assert_true(dd_collect_pending(&t, now, 120000));
	t.created_ms = now - 120000;
	assert_false(dd_collect_pending(&t, now, 120000));
	t.created_ms = now + 5000; /* a clock ahead of ours: still young */
	assert_true(dd_collect_pending(&t, now, 120000));
	t.created_ms = 0; /* undated: contacted */
	assert_false(dd_collect_pending(&t, now, 120000));
	t.created_ms = now - 1;
	assert_false(dd_collect_pending(&t, now, 0));
}

static void adopted_record(void **state)
{
	dd_collect_target t;
	dd_store_agent a;
	json_error_t e;
	json_t *h = json_loads(
		"{\"agent_id\":\"made-up-by-the-agent\",\"vm_name\":\"vm-3\","
		" \"extra_ingress\":["
		"  {\"hostname_label\":\"oracle\",\"port\":8082},"
		"  {\"hostname_label\":\"oracle\",\"port\":8083},"
		"  {\"hostname_label\":\"agent-api\",\"port\":8081},"
		"  {\"hostname_label\":\"Bad_Label\",\"port\":1},"
		"  {\"hostname_label\":\"big\",\"port\":65536},"
		"  {\"hostname_label\":\"frac\",\"port\":1.5},"
		"  {\"hostname_label\":\"\",\"port\":9},"
		"  {\"hostname_label\":\"web\",\"port\":443}]}", 0, &e);
	char why[200];

	(void)state;
	assert_non_null(h);
	memset(&t, 0, sizeof t);
	snprintf(t.agent_id, sizeof t.agent_id, "%s", A1);
	snprintf(t.tunnel_id, sizeof t.tunnel_id, "%s", ID(1));
	t.unknown = true;
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN, T0_MS,
					      &a), DD_OK);
	/* Keyed by the tunnel, whatever the agent calls itself. */
	assert_string_equal(a.agent_id, A1);
	assert_string_equal(a.hostname, A1 "." DOMAIN);
	assert_string_equal(a.vm_name, "vm-3");
	assert_string_equal(a.attestation_type, "unknown");
	assert_string_equal(a.env, "pr-9");
	assert_int_equal(a.status, DD_AGENT_HEALTHY);
	assert_int_equal(a.ingress, DD_INGRESS_TUNNEL);
	assert_string_equal(a.tunnel_id, ID(1));
	assert_string_equal(a.noise_pubkey, "");
	assert_string_equal(json_string_value(json_object_get(
				    a.ingress_detail, "tunnel_name")), A1);
	assert_true(a.registered_at_ms == T0_MS && a.last_seen_ms == T0_MS);
	assert_int_equal(a.n_extras, 2);
	assert_string_equal(a.extras[0].label, "oracle");
	assert_int_equal(a.extras[0].port, 8082);
	assert_string_equal(a.extras[1].label, "web");
	assert_int_equal(a.extras[1].port, 443);
	assert_int_equal(dd_store_agent_check(&a, why, sizeof why), DD_OK);
	dd_store_agent_clear(&a);

	/* Nothing usable in the body: the spec's defaults. */
	json_decref(h);
	h = json_pack("{s:i, s:s}", "vm_name", 7, "attestation_type", "");
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN, T0_MS,
					      &a), DD_OK);
	assert_string_equal(a.vm_name, "unknown");
	assert_string_equal(a.attestation_type, "unknown");
	assert_int_equal(a.n_extras, 0);
	assert_int_equal(dd_store_agent_check(&a, why, sizeof why), DD_OK);
	dd_store_agent_clear(&a);
	json_decref(h);
}

/* The published Noise key is kept only when the tunnel's name commits to it. */
static void adopted_noise_key(void **state)
{
	uint8_t key[32];
	char id[96], hex[65], upper[65];
	dd_collect_target t;
	dd_store_agent a;
	json_t *h;

	(void)state;
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(7 * i + 1);
	dd_cp_agent_id("pr-9", key, id);
	dd_hex_encode(key, sizeof key, hex);
	memset(&t, 0, sizeof t);
	snprintf(t.agent_id, sizeof t.agent_id, "%s", id);
	snprintf(t.tunnel_id, sizeof t.tunnel_id, "%s", ID(1));
	t.unknown = true;
	h = json_pack("{s:{s:s}}", "noise", "pubkey_hex", hex);
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN, T0_MS,
					      &a), DD_OK);
	assert_string_equal(a.noise_pubkey, hex);
	dd_store_agent_clear(&a);
	json_decref(h);
	/* Upper case is the same key, stored in the store's lower case. */
	for (size_t i = 0; i <= 64; i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f'
				  ? hex[i] - 'a' + 'A' : hex[i]);
	h = json_pack("{s:{s:s}}", "noise", "pubkey_hex", upper);
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN, T0_MS,
					      &a), DD_OK);
	assert_string_equal(a.noise_pubkey, hex);
	dd_store_agent_clear(&a);
	json_decref(h);
	/* Another env's id, another key, bad shapes: no key at all. */
	static const char *const bad[] = {
		"", "00", "zz", NULL,
	};
	key[0] ^= 1;
	dd_hex_encode(key, sizeof key, upper);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *v = bad[i] != NULL ? bad[i] : upper;

		h = json_pack("{s:{s:s}}", "noise", "pubkey_hex", v);
		assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN,
						      T0_MS, &a), DD_OK);
		assert_string_equal(a.noise_pubkey, "");
		dd_store_agent_clear(&a);
		json_decref(h);
	}
	h = json_pack("{s:{s:s}}", "noise", "pubkey_hex", hex);
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-10", DOMAIN, T0_MS,
					      &a), DD_OK);
	assert_string_equal(a.noise_pubkey, "");
	dd_store_agent_clear(&a);
	json_decref(h);
	h = json_pack("{s:{s:i}}", "noise", "pubkey_hex", 7);
	assert_int_equal(dd_cp_discover_adopt(&t, h, "pr-9", DOMAIN, T0_MS,
					      &a), DD_OK);
	assert_string_equal(a.noise_pubkey, "");
	dd_store_agent_clear(&a);
	json_decref(h);
}

/* Every allocation of the listing and of an adoption may fail, cleanly. */
static void allocation_failures(void **state)
{
	json_t *j = listing_json();
	unsigned long n;

	(void)state;
	for (n = 1;; n++) {
		dd_cp_discover_listing l;
		dd_collect_target *v = NULL;
		size_t cnt = 0, cap = 0;
		dd_err_t rc;

		dd_alloc_fail_at(n);
		rc = dd_cp_discover_listing_make(j, "pr-9", DOMAIN, &l, NULL);
		if (rc == DD_OK)
			rc = dd_cp_discover_append(&l, DOMAIN, 1, 0, &v, &cnt,
						   &cap, NULL);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_OK)
			assert_int_equal(cnt, 4);
		dd_free(v);
		dd_cp_discover_listing_clear(&l);
		if (rc == DD_OK)
			break;
	}
	if (n > 1)
		printf("# cp_discover: failed each of %lu allocations in turn\n",
		       n - 1);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filter_keeps_our_agents_only),
		cmocka_unit_test(records_claim_tunnels),
		cmocka_unit_test(unknown_tunnels_become_targets),
		cmocka_unit_test(unknown_targets_are_sharded),
		cmocka_unit_test(young_unknown_rule),
		cmocka_unit_test(adopted_record),
		cmocka_unit_test(adopted_noise_key),
		cmocka_unit_test(allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
