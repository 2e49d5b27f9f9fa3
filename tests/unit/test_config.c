#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/config.h"

/* A fake environment: NULL-terminated "NAME=value" strings. */
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

static dd_err_t load(dd_mode mode, const char *const *env, dd_config **cfg,
		     dd_buf *errs)
{
	dd_buf_init(errs, 8192);
	return dd_config_load(mode, fake_get, (void *)(uintptr_t)env, cfg, errs);
}

#define ITA "DD_ITA_BASE_URL=https://ita.example", \
	"DD_ITA_JWKS_URL=https://ita.example/certs", \
	"DD_ITA_ISSUER=https://ita.example", "DD_ITA_API_KEY=sekrit", \
	"DD_AUTH_COOKIE_SECRET=0123456789abcdef0123456789abcdef"
#define NO_SECRET "DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=42", \
	"DD_OWNER_KIND=org", "DD_ITA_BASE_URL=https://ita.example", \
	"DD_ITA_JWKS_URL=https://ita.example/certs", \
	"DD_ITA_ISSUER=https://ita.example", "DD_ITA_API_KEY=sekrit"
#define BASE "DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=42", \
	"DD_OWNER_KIND=org", ITA

static void minimal_cp_config_loads_with_defaults(void **state)
{
	const char *env[] = {BASE, "DD_VM_NAME=vm1", NULL};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, env, &cfg, &errs), DD_OK);
	assert_non_null(cfg);
	assert_string_equal(cfg->env, "dev");
	assert_string_equal(cfg->owner, "acme");
	assert_true(cfg->owner_id == 42);
	assert_int_equal(cfg->owner_kind, DD_OWNER_ORG);
	assert_int_equal(cfg->port, 8080);
	assert_string_equal(cfg->bind_addr, "0.0.0.0");
	assert_string_equal(cfg->vm_name, "vm1");
	assert_int_equal(cfg->dev, 0);
	assert_true(cfg->http.max_body_unauth <= cfg->http.max_body);
	assert_null(cfg->cp_url); /* agent-only */
	assert_int_equal(cfg->ita_mode, DD_ITA_INTEL);
	assert_int_equal(cfg->quote_provider, DD_PROVIDER_EE);
	assert_true(cfg->ita_refresh_secs == 180);
	assert_string_equal(cfg->tsm_root, "/sys/kernel/config/tsm/report");
	assert_null(cfg->expected_mrtd);
	assert_int_equal(cfg->measurement_enforce, 1);
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void every_problem_is_reported_at_once(void **state)
{
	const char *env[] = {"DD_ENV=Bad_Label", "DD_OWNER_ID=zero",
			     "DD_OWNER_KIND=team", "DD_PORT=99999",
			     "DD_HTTP_MAX_HEADERS=3", "DD_DEV=maybe", NULL};
	dd_config *cfg = (dd_config *)1;
	dd_buf errs;
	const char *e;

	(void)state;
	assert_int_equal(load(DD_MODE_AGENT, env, &cfg, &errs), DD_ERR_CONFIG);
	assert_null(cfg);
	e = dd_buf_str(&errs);
	assert_non_null(strstr(e, "DD_ENV: must be 1-40 characters"));
	assert_non_null(strstr(e, "DD_OWNER: required but not set"));
	assert_non_null(strstr(e, "DD_OWNER_ID: must be an integer in [1, "));
	assert_non_null(strstr(e, "DD_OWNER_KIND: must be one of user org repo"));
	assert_non_null(strstr(e, "DD_PORT: must be an integer in [0, 65535]"));
	assert_non_null(strstr(e, "DD_HTTP_MAX_HEADERS: must be an integer in [8, 1000]"));
	assert_non_null(strstr(e, "DD_DEV: must be one of"));
	assert_non_null(strstr(e, "DD_CP_URL: required but not set"));
	dd_buf_free(&errs);
}

static void owner_id_zero_and_shapes_are_refused(void **state)
{
	const char *zero[] = {"DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=0",
			      "DD_OWNER_KIND=user", NULL};
	const char *repo[] = {"DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=7",
			      "DD_OWNER_KIND=repo", ITA, NULL};
	const char *user[] = {"DD_ENV=dev", "DD_OWNER=acme/app", "DD_OWNER_ID=7",
			      "DD_OWNER_KIND=user", ITA, NULL};
	const char *ok[] = {"DD_ENV=dev", "DD_OWNER=acme/app", "DD_OWNER_ID=7",
			    "DD_OWNER_KIND=repo", ITA, NULL};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, zero, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_OWNER_ID"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, repo, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "kind repo needs owner/repo"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, user, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "without '/'"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, ok, &cfg, &errs), DD_OK);
	assert_int_equal(cfg->owner_kind, DD_OWNER_REPO);
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void values_are_trimmed_and_typed(void **state)
{
	const char *env[] = {BASE, "DD_PORT= 9000 ", "DD_API_PORT=9001",
			     "DD_CP_URL=https://cp.example.com//", "DD_DEV= YES",
			     "DD_LOG_LEVEL=debug", "DD_BIND_ADDR=::1",
			     "EE_TOKEN= secret with spaces ", NULL};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_AGENT, env, &cfg, &errs), DD_OK);
	assert_int_equal(cfg->port, 9000);
	assert_int_equal(cfg->api_port, 9001);
	assert_string_equal(cfg->cp_url, "https://cp.example.com");
	assert_int_equal(cfg->dev, 1);
	assert_int_equal(cfg->log_level, 0);
	assert_string_equal(cfg->bind_addr, "::1");
	/* Secrets are taken verbatim: whitespace may be part of them. */
	assert_string_equal(cfg->ee_token, " secret with spaces ");
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void bad_urls_paths_and_cross_rules(void **state)
{
	const char *env[] = {BASE, "DD_CP_URL=ftp://x", "EE_SOCKET_PATH=rel/path",
			     "DD_PORT=9000", "DD_API_PORT=9000",
			     "DD_BIND_ADDR=localhost", NULL};
	const char *env2[] = {BASE, "DD_CP_URL=http://cp", "DD_PORT=9000",
			      "DD_API_PORT=9000", NULL};
	const char *env3[] = {BASE, "DD_HTTP_MAX_BODY=2048",
			      "DD_HTTP_MAX_BODY_UNAUTH=4096", NULL};
	dd_config *cfg = NULL;
	dd_buf errs;
	const char *e;

	(void)state;
	assert_int_equal(load(DD_MODE_AGENT, env, &cfg, &errs), DD_ERR_CONFIG);
	e = dd_buf_str(&errs);
	assert_non_null(strstr(e, "DD_CP_URL: must be an http:// or https:// URL"));
	assert_non_null(strstr(e, "EE_SOCKET_PATH: must be an absolute path"));
	assert_non_null(strstr(e, "DD_BIND_ADDR: must be an IPv4 or IPv6"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_AGENT, env2, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_API_PORT: must differ"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, env3, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "must not exceed"));
	dd_buf_free(&errs);
}

static void blank_required_value_counts_as_missing(void **state)
{
	const char *env[] = {"DD_ENV=", "DD_OWNER=  ", "DD_OWNER_ID=1",
			     "DD_OWNER_KIND=user", NULL};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, env, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_ENV: required but not set"));
	assert_non_null(strstr(dd_buf_str(&errs), "DD_OWNER: must not be blank"));
	dd_buf_free(&errs);
}

static void describe_hides_secrets(void **state)
{
	const char *env[] = {BASE, "DD_CP_URL=http://cp", "EE_TOKEN=hunter2", NULL};
	dd_config *cfg = NULL;
	dd_buf errs;
	char out[16384];
	FILE *f;
	size_t n;

	(void)state;
	assert_int_equal(load(DD_MODE_AGENT, env, &cfg, &errs), DD_OK);
	f = fmemopen(out, sizeof out - 1, "w");
	assert_non_null(f);
	dd_config_describe(DD_MODE_AGENT, cfg, f);
	n = (size_t)ftell(f);
	fclose(f);
	out[n] = '\0';
	assert_null(strstr(out, "hunter2"));
	assert_non_null(strstr(out, "EE_TOKEN"));
	assert_non_null(strstr(out, "(set)"));
	assert_non_null(strstr(out, "DD_CP_URL"));
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void dev_stand_ins_need_dev_mode(void **state)
{
	const char *local[] = {BASE, "DD_ITA_MODE=local", NULL};
	const char *sim[] = {BASE, "DD_QUOTE_PROVIDER=sim", "DD_CP_URL=http://cp",
			     NULL};
	const char *prod[] = {"DD_ENV=production", "DD_OWNER=acme",
			      "DD_OWNER_ID=42", "DD_OWNER_KIND=org", ITA,
			      "DD_DEV=1", "DD_ITA_MODE=local",
			      "DD_QUOTE_PROVIDER=sim", NULL};
	const char *dev[] = {BASE, "DD_DEV=1", "DD_ITA_MODE=local",
			     "DD_QUOTE_PROVIDER=sim", NULL};
	const char *ita[] = {"DD_ENV=dev", "DD_ITA_API_KEY=k", NULL};
	const char *ita_dev[] = {"DD_ENV=dev", "DD_ITA_API_KEY=k", "DD_DEV=1",
				 NULL};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, local, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_ITA_MODE: local is for "
				"development only"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_AGENT, sim, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_QUOTE_PROVIDER: sim"));
	dd_buf_free(&errs);
	/* DD_DEV does not unlock them for production. */
	assert_int_equal(load(DD_MODE_CP, prod, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_ITA_MODE"));
	assert_non_null(strstr(dd_buf_str(&errs), "DD_QUOTE_PROVIDER"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, dev, &cfg, &errs), DD_OK);
	assert_int_equal(cfg->ita_mode, DD_ITA_LOCAL);
	assert_int_equal(cfg->quote_provider, DD_PROVIDER_SIM);
	dd_config_free(cfg);
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_ITA, ita, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "the local ITA is for "
				"development only"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_ITA, ita_dev, &cfg, &errs), DD_OK);
	assert_null(cfg->ita_issuer);
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void ita_settings_are_required_and_pinning_read(void **state)
{
	const char *none[] = {"DD_ENV=dev", "DD_OWNER=acme", "DD_OWNER_ID=42",
			      "DD_OWNER_KIND=org", NULL};
	const char *pins[] = {BASE, "DD_EXPECTED_MRTD=a=00, b=11",
			      "DD_EXPECTED_TCB=OutOfDate",
			      "DD_MEASUREMENT_ENFORCE=no",
			      "DD_ITA_REFRESH_SECS=0", NULL};
	const char *names[] = {"DD_ITA_BASE_URL", "DD_ITA_API_KEY",
			       "DD_ITA_JWKS_URL", "DD_ITA_ISSUER"};
	dd_config *cfg = NULL;
	dd_buf errs;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, none, &cfg, &errs), DD_ERR_CONFIG);
	for (int i = 0; i < 4; i++) {
		char want[64];

		snprintf(want, sizeof want, "%s: required but not set", names[i]);
		assert_non_null(strstr(dd_buf_str(&errs), want));
	}
	dd_buf_free(&errs);
	/* The refresh period has a floor; everything else here is fine. */
	assert_int_equal(load(DD_MODE_CP, pins, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_ITA_REFRESH_SECS"));
	dd_buf_free(&errs);
	pins[sizeof pins / sizeof pins[0] - 2] = "DD_ITA_REFRESH_SECS=5";
	assert_int_equal(load(DD_MODE_CP, pins, &cfg, &errs), DD_OK);
	assert_string_equal(cfg->expected_mrtd, "a=00, b=11");
	assert_string_equal(cfg->expected_tcb, "OutOfDate");
	assert_int_equal(cfg->measurement_enforce, 0);
	assert_true(cfg->ita_refresh_secs == 5);
	dd_config_free(cfg);
	dd_buf_free(&errs);
}

static void cookie_secret_is_long_enough(void **state)
{
	const char *shrt[] = {NO_SECRET, "DD_AUTH_COOKIE_SECRET=short", NULL};
	const char *b64_short[] = {NO_SECRET, "DD_AUTH_COOKIE_SECRET=base64:"
				   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk",
				   NULL};
	const char *b64_bad[] = {NO_SECRET, "DD_AUTH_COOKIE_SECRET=base64:!!!!",
				 NULL};
	const char *b64_ok[] = {NO_SECRET, "DD_AUTH_COOKIE_SECRET=base64:"
				"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
				NULL};
	const char *missing[] = {NO_SECRET, NULL};
	const char *const *bad[] = {shrt, b64_short, b64_bad};
	const char *want[] = {"at least 32 bytes", "at least 32 bytes",
			      "not valid padded base64"};
	dd_config *cfg = NULL;
	dd_buf errs, key;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(load(DD_MODE_CP, bad[i], &cfg, &errs),
				 DD_ERR_CONFIG);
		assert_non_null(strstr(dd_buf_str(&errs), want[i]));
		/* The value itself never reaches the error text. */
		assert_null(strstr(dd_buf_str(&errs), "short"));
		dd_buf_free(&errs);
	}
	assert_int_equal(load(DD_MODE_CP, b64_ok, &cfg, &errs), DD_OK);
	dd_buf_init(&key, 64);
	assert_int_equal(dd_config_secret_bytes(cfg->cookie_secret, &key), DD_OK);
	assert_int_equal(key.len, 32);
	assert_memory_equal(key.data, "0123456789abcdef0123456789abcdef", 32);
	dd_buf_free(&key);
	dd_config_free(cfg);
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, missing, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs),
			       "DD_AUTH_COOKIE_SECRET: required but not set"));
	dd_buf_free(&errs);
}

/* Dev sign-in's code: secret, URL-safe, long enough, and dev only. */
static void dev_signin_code_is_secret_and_dev_only(void **state)
{
	const char *ok[] = {BASE, "DD_DEV=1",
			    "DD_DEV_SIGNIN_CODE=s3cret-dev-sign-in-code_0123", NULL};
	const char *prod[] = {BASE,
			      "DD_DEV_SIGNIN_CODE=s3cret-dev-sign-in-code_0123",
			      NULL};
	const char *bad[] = {BASE, "DD_DEV=1", "DD_DEV_SIGNIN_CODE=short", NULL};
	const char *odd[] = {BASE, "DD_DEV=1",
			     "DD_DEV_SIGNIN_CODE=s3cret dev sign-in code 0123",
			     NULL};
	dd_config *cfg = NULL;
	dd_buf errs;
	char out[32768];
	FILE *f;
	size_t n;

	(void)state;
	assert_int_equal(load(DD_MODE_CP, ok, &cfg, &errs), DD_OK);
	assert_string_equal(cfg->dev_signin_code, "s3cret-dev-sign-in-code_0123");
	f = fmemopen(out, sizeof out - 1, "w");
	assert_non_null(f);
	dd_config_describe(DD_MODE_CP, cfg, f);
	n = (size_t)ftell(f);
	fclose(f);
	out[n] = '\0';
	assert_non_null(strstr(out, "DD_DEV_SIGNIN_CODE"));
	assert_null(strstr(out, "s3cret-dev-sign-in-code"));
	dd_config_free(cfg);
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, prod, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs), "DD_DEV_SIGNIN_CODE: is for "
						  "development only"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, bad, &cfg, &errs), DD_ERR_CONFIG);
	assert_non_null(strstr(dd_buf_str(&errs),
			       "DD_DEV_SIGNIN_CODE: must be 22-128"));
	dd_buf_free(&errs);
	assert_int_equal(load(DD_MODE_CP, odd, &cfg, &errs), DD_ERR_CONFIG);
	assert_null(strstr(dd_buf_str(&errs), "s3cret"));
	dd_buf_free(&errs);
}

static void modes_and_labels(void **state)
{
	dd_mode m;

	(void)state;
	assert_int_equal(dd_mode_parse("management", &m), DD_OK);
	assert_int_equal(m, DD_MODE_CP);
	assert_int_equal(dd_mode_parse("agent", &m), DD_OK);
	assert_int_equal(dd_mode_parse("Agent", &m), DD_ERR_INVALID);
	assert_string_equal(dd_mode_name(DD_MODE_DEV), "dev");
	assert_true(dd_config_label_ok("pr-42"));
	assert_true(dd_config_label_ok("0abc"));
	assert_false(dd_config_label_ok("-abc"));
	assert_false(dd_config_label_ok(""));
	assert_false(dd_config_label_ok("ABC"));
	assert_false(dd_config_label_ok("a234567890123456789012345678901234567890x"));
}

static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	const char *env[] = {BASE, "DD_CP_URL=http://cp", "DD_VM_NAME=vm", NULL};
	for (unsigned long n = 1; n < 200; n++) {
		dd_config *cfg = NULL;
		dd_buf errs;
		dd_err_t rc;

		dd_buf_init(&errs, 8192);
		dd_alloc_fail_at(n);
		rc = dd_config_load(DD_MODE_AGENT, fake_get, (void *)(uintptr_t)env,
				    &cfg, &errs);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_true((rc == DD_OK) == (cfg != NULL));
		dd_config_free(cfg);
		dd_buf_free(&errs);
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_cp_config_loads_with_defaults),
		cmocka_unit_test(every_problem_is_reported_at_once),
		cmocka_unit_test(owner_id_zero_and_shapes_are_refused),
		cmocka_unit_test(values_are_trimmed_and_typed),
		cmocka_unit_test(bad_urls_paths_and_cross_rules),
		cmocka_unit_test(blank_required_value_counts_as_missing),
		cmocka_unit_test(describe_hides_secrets),
		cmocka_unit_test(modes_and_labels),
		cmocka_unit_test(dev_signin_code_is_secret_and_dev_only),
		cmocka_unit_test(cookie_secret_is_long_enough),
		cmocka_unit_test(dev_stand_ins_need_dev_mode),
		cmocka_unit_test(ita_settings_are_required_and_pinning_read),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
