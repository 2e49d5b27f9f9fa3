/*
 * shard.h: FNV-1a-64 and the rendezvous shard of a key, against the
 * vectors of spec/integrations.md 3.3, and the configuration that picks
 * a CP's shard (DD_SCRAPER_SHARD_TOTAL, DD_SCRAPER_SHARD_INDEX,
 * DD_DISCOVERY_INTERVAL; http-surface.md 2.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "cp/shard.h"

static void fnv_vectors(void **state)
{
	(void)state;
	assert_true(dd_fnv1a64("", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(dd_fnv1a64("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(dd_fnv1a64("foobar", 6) == UINT64_C(0x85944171f73967e8));
	/* Continuing a hash is hashing the concatenation. */
	assert_true(dd_fnv1a64_update(dd_fnv1a64("foo", 3), "bar", 3) ==
		    dd_fnv1a64("foobar", 6));
}

static void rendezvous_vectors(void **state)
{
	static const struct {
		const char *key;
		uint64_t want[3]; /* totals 2, 3, 4 */
	} v[] = {
		{"agent-a", {1, 2, 2}},
		{"agent-b", {0, 2, 2}},
		{"agent-c", {0, 0, 0}},
		{"agent-d", {0, 0, 0}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		for (uint64_t t = 2; t <= 4; t++)
			assert_true(dd_shard_of(v[i].key, t) == v[i].want[t - 2]);
		/* One shard or none: everything is shard 0. */
		assert_true(dd_shard_of(v[i].key, 1) == 0);
		assert_true(dd_shard_of(v[i].key, 0) == 0);
	}
}

/*
 * Every key is kept by exactly one index, and by every CP when there
 * is no more than one shard.
 */
static void each_key_has_one_owner(void **state)
{
	char key[64];
	size_t per[5] = {0};

	(void)state;
	for (int i = 0; i < 1000; i++) {
		unsigned owners = 0;

		snprintf(key, sizeof key, "dd-pr-9-agent-%016x", i * 7919);
		assert_true(dd_shard_keep(key, 0, 3));
		assert_true(dd_shard_keep(key, 1, 0));
		for (uint64_t s = 0; s < 5; s++) {
			if (dd_shard_keep(key, 5, s)) {
				owners++;
				per[s]++;
			}
		}
		assert_int_equal(owners, 1);
		assert_false(dd_shard_keep(key, 5, 5));
	}
	/*
	 * Every shard gets a share, not an even one: the spec's FNV-1a
	 * scores differ only in their last bytes, which biases the top
	 * index (measured: 31% for shard 4 of 5 here; docs/collector.md).
	 */
	for (size_t s = 0; s < 5; s++)
		assert_true(per[s] > 100 && per[s] < 350);
}

/* ---- configuration ---- */

static const char *fake_get(void *ud, const char *name)
{
	const char *const *env = ud;
	size_t n = strlen(name);

	for (; *env != NULL; env++) {
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	}
	return NULL;
}

#define BASE "DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=42", \
	"DD_OWNER_KIND=org", "DD_ITA_BASE_URL=https://ita.example", \
	"DD_ITA_JWKS_URL=https://ita.example/certs", \
	"DD_ITA_ISSUER=https://ita.example", "DD_ITA_API_KEY=sekrit", \
	"DD_AUTH_COOKIE_SECRET=0123456789abcdef0123456789abcdef", \
	"DD_VM_NAME=vm1"

/* Loads a CP config; on failure *errs holds the text ("" on success). */
static dd_err_t load(const char *const *env, dd_config **cfg, char *errs,
		     size_t cap)
{
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, 8192);
	*cfg = NULL;
	rc = dd_config_load(DD_MODE_CP, fake_get, (void *)(uintptr_t)env, cfg,
			    &b);
	snprintf(errs, cap, "%s", dd_buf_str(&b));
	dd_buf_free(&b);
	return rc;
}

static void config_defaults_and_bounds(void **state)
{
	const char *none[] = {BASE, NULL};
	const char *two[] = {BASE, "DD_SCRAPER_SHARD_TOTAL=2",
			     "DD_SCRAPER_SHARD_INDEX=1",
			     "DD_DISCOVERY_INTERVAL=7", NULL};
	dd_config *cfg;
	char errs[1024];

	(void)state;
	assert_int_equal(load(none, &cfg, errs, sizeof errs), DD_OK);
	assert_true(cfg->scraper_shard_total == 1);
	assert_true(cfg->scraper_shard_index == 0);
	assert_true(cfg->discovery_interval_secs == 30);
	dd_config_free(cfg);
	assert_int_equal(load(two, &cfg, errs, sizeof errs), DD_OK);
	assert_true(cfg->scraper_shard_total == 2);
	assert_true(cfg->scraper_shard_index == 1);
	assert_true(cfg->discovery_interval_secs == 7);
	dd_config_free(cfg);
}

static void config_refuses_bad_shards(void **state)
{
	static const struct {
		const char *env[3];
		const char *want;
	} v[] = {
		/* The spec's fatal case: the index must name a shard. */
		{{"DD_SCRAPER_SHARD_TOTAL=2", "DD_SCRAPER_SHARD_INDEX=2"},
		 "DD_SCRAPER_SHARD_INDEX: must be less than "
		 "DD_SCRAPER_SHARD_TOTAL (2), got 2"},
		{{"DD_SCRAPER_SHARD_INDEX=1"},
		 "DD_SCRAPER_SHARD_INDEX: must be less than "
		 "DD_SCRAPER_SHARD_TOTAL (1), got 1"},
		{{"DD_SCRAPER_SHARD_TOTAL=0"}, "DD_SCRAPER_SHARD_TOTAL"},
		{{"DD_SCRAPER_SHARD_TOTAL=257"}, "DD_SCRAPER_SHARD_TOTAL"},
		/* Stricter than the spec's "unparseable -> 0": refused. */
		{{"DD_SCRAPER_SHARD_INDEX=one"}, "DD_SCRAPER_SHARD_INDEX"},
		{{"DD_DISCOVERY_INTERVAL=0"}, "DD_DISCOVERY_INTERVAL"},
	};
	dd_config *cfg;
	char errs[1024];

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		const char *env[] = {BASE, v[i].env[0], v[i].env[1], NULL};

		assert_int_equal(load(env, &cfg, errs, sizeof errs),
				 DD_ERR_CONFIG);
		assert_null(cfg);
		if (strstr(errs, v[i].want) == NULL)
			fail_msg("case %zu: want \"%s\" in \"%s\"", i,
				 v[i].want, errs);
	}
}

/* The agent does not read the CP's shard settings at all. */
static void config_agent_ignores_shards(void **state)
{
	const char *env[] = {BASE, "DD_CP_URL=http://cp",
			     "DD_SCRAPER_SHARD_TOTAL=2",
			     "DD_SCRAPER_SHARD_INDEX=5", NULL};
	dd_config *cfg = NULL;
	dd_buf b;
	dd_err_t rc;

	(void)state;
	dd_buf_init(&b, 8192);
	rc = dd_config_load(DD_MODE_AGENT, fake_get, (void *)(uintptr_t)env,
			    &cfg, &b);
	if (rc != DD_OK)
		fail_msg("%s", dd_buf_str(&b));
	dd_config_free(cfg);
	dd_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fnv_vectors),
		cmocka_unit_test(rendezvous_vectors),
		cmocka_unit_test(each_key_has_one_owner),
		cmocka_unit_test(config_defaults_and_bounds),
		cmocka_unit_test(config_refuses_bad_shards),
		cmocka_unit_test(config_agent_ignores_shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
