/*
 * test_dev_signin.c: dev sign-in's per-run code (src/auth/dev_signin.c):
 * made codes, configured codes, the comparison both ways, the URL. The
 * routes themselves run in tests/e2e/test_dev_signin.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/dev_signin.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"

#define CODE "e2e-dev-sign-in-code_0123456789"

static int url_safe(const char *s)
{
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == strlen(s);
}

static void made_codes_are_128_random_bits(void **state)
{
	char a[DD_DEV_SIGNIN_CODE_LEN + 1], b[DD_DEV_SIGNIN_CODE_LEN + 1];
	dd_buf raw;

	(void)state;
	assert_int_equal(dd_dev_signin_make_code(a), DD_OK);
	assert_int_equal(dd_dev_signin_make_code(b), DD_OK);
	assert_int_equal(strlen(a), DD_DEV_SIGNIN_CODE_LEN);
	assert_true(url_safe(a) && url_safe(b));
	assert_string_not_equal(a, b);
	/* Unpadded base64url of exactly 16 bytes. */
	dd_buf_init(&raw, 64);
	assert_int_equal(dd_b64_decode(DD_B64_URL, a, strlen(a), &raw), DD_OK);
	assert_int_equal(raw.len, 16);
	dd_buf_free(&raw);
}

static void a_made_code_is_its_own(void **state)
{
	dd_dev_signin *d = NULL, *e = NULL;
	char url[200], other[200];

	(void)state;
	assert_int_equal(dd_dev_signin_new(NULL, NULL, &d), DD_OK);
	assert_int_equal(dd_dev_signin_new(NULL, NULL, &e), DD_OK);
	assert_true(dd_dev_signin_made_code(d));
	assert_int_equal(dd_dev_signin_url(d, "http://127.0.0.1:8080", url,
					   sizeof url), DD_OK);
	assert_int_equal(strncmp(url, "http://127.0.0.1:8080/auth/dev?code=", 36),
			 0);
	assert_int_equal(strlen(url + 36), DD_DEV_SIGNIN_CODE_LEN);
	assert_true(dd_dev_signin_code_ok(d, url + 36));
	/* Another instance made another code: this one's does not fit it. */
	assert_int_equal(dd_dev_signin_url(e, "http://127.0.0.1:8080", other,
					   sizeof other), DD_OK);
	assert_string_not_equal(url + 36, other + 36);
	assert_false(dd_dev_signin_code_ok(e, url + 36));
	/* A URL that does not fit is refused, not cut short. */
	assert_int_equal(dd_dev_signin_url(d, "http://127.0.0.1:8080", url, 40),
			 DD_ERR_TOO_LARGE);
	dd_dev_signin_free(d);
	dd_dev_signin_free(e);
}

static void only_the_code_itself_fits(void **state)
{
	dd_dev_signin *d = NULL;
	char s[300];

	(void)state;
	assert_int_equal(dd_dev_signin_new(NULL, CODE, &d), DD_OK);
	assert_false(dd_dev_signin_made_code(d));
	assert_true(dd_dev_signin_code_ok(d, CODE));
	assert_false(dd_dev_signin_code_ok(d, ""));
	assert_false(dd_dev_signin_code_ok(d, "e2e-dev-sign-in-code_012345678"));
	assert_false(dd_dev_signin_code_ok(d, CODE "9"));
	assert_false(dd_dev_signin_code_ok(d, "E2E-DEV-SIGN-IN-CODE_0123456789"));
	/* Each character matters, the first and the last included. */
	for (size_t i = 0; i < strlen(CODE); i++) {
		memcpy(s, CODE, sizeof CODE);
		s[i] = s[i] == 'x' ? 'y' : 'x';
		assert_false(dd_dev_signin_code_ok(d, s));
	}
	memset(s, 'A', sizeof s - 1);
	s[sizeof s - 1] = '\0';
	assert_false(dd_dev_signin_code_ok(d, s));
	dd_dev_signin_free(d);
}

static void configured_codes_have_a_shape(void **state)
{
	dd_dev_signin *d = NULL;
	char longest[DD_DEV_SIGNIN_CODE_MAX + 2];

	(void)state;
	/* Too short to be unguessable, not URL-safe, too long. */
	assert_int_equal(dd_dev_signin_new(NULL, "short", &d), DD_ERR_INVALID);
	assert_null(d);
	assert_int_equal(dd_dev_signin_new(NULL, "", &d), DD_ERR_INVALID);
	assert_int_equal(dd_dev_signin_new(NULL, "e2e dev sign-in code 0123456789",
					   &d), DD_ERR_INVALID);
	assert_int_equal(dd_dev_signin_new(NULL, "e2e-dev-sign-in-code+0123456789",
					   &d), DD_ERR_INVALID);
	memset(longest, 'a', sizeof longest - 1);
	longest[sizeof longest - 1] = '\0';
	assert_int_equal(dd_dev_signin_new(NULL, longest, &d), DD_ERR_INVALID);
	longest[DD_DEV_SIGNIN_CODE_MAX] = '\0';
	assert_int_equal(dd_dev_signin_new(NULL, longest, &d), DD_OK);
	assert_true(dd_dev_signin_code_ok(d, longest));
	dd_dev_signin_free(d);
	dd_dev_signin_free(NULL);
}

static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	for (unsigned long n = 1; n < 20; n++) {
		dd_dev_signin *d = NULL;
		dd_err_t rc;

		dd_alloc_fail_at(n);
		rc = dd_dev_signin_new(NULL, NULL, &d);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_true((rc == DD_OK) == (d != NULL));
		dd_dev_signin_free(d);
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(made_codes_are_128_random_bits),
		cmocka_unit_test(a_made_code_is_its_own),
		cmocka_unit_test(only_the_code_itself_fits),
		cmocka_unit_test(configured_codes_have_a_shape),
		cmocka_unit_test(allocation_failures_are_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
