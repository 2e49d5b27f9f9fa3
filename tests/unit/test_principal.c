/*
 * test_principal.c: GitHub principals (src/auth/principal.c): the login
 * and repository name rules at their edges, the shape each kind needs,
 * id 0, and the kind names. Every refusal must say why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/principal.h"

static void ok(dd_principal_kind k, const char *name, uint64_t id)
{
	dd_principal p;
	char why[128] = "untouched";

	if (dd_principal_make(k, name, id, &p, why, sizeof why) != DD_OK)
		fail_msg("%s %s refused: %s", dd_principal_kind_name(k), name,
			 why);
	assert_int_equal(p.kind, k);
	assert_string_equal(p.name, name);
	assert_true(p.id == id);
	assert_string_equal(why, "");
}

static void bad(dd_principal_kind k, const char *name, uint64_t id,
		const char *why_part)
{
	dd_principal p;
	char why[128] = "";

	memset(&p, 0x5a, sizeof p);
	if (dd_principal_make(k, name, id, &p, why, sizeof why) !=
	    DD_ERR_INVALID)
		fail_msg("%s '%s' accepted", dd_principal_kind_name(k),
			 name ? name : "(null)");
	if (strstr(why, why_part) == NULL)
		fail_msg("'%s': why \"%s\" lacks \"%s\"", name ? name : "",
			 why, why_part);
	/* Nothing half-made is left behind. */
	assert_string_equal(p.name, "");
	assert_true(p.id == 0);
}

static char *rep(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void test_logins(void **state)
{
	char b[256];

	(void)state;
	ok(DD_PRINCIPAL_USER, "octocat", 583231);
	ok(DD_PRINCIPAL_ORG, "octo-org", 65);
	ok(DD_PRINCIPAL_USER, "a", 1);
	ok(DD_PRINCIPAL_USER, "A-b-9", UINT64_MAX);
	ok(DD_PRINCIPAL_ORG, rep(b, 'x', 39), 7);
	bad(DD_PRINCIPAL_ORG, rep(b, 'x', 40), 7, "longer than 39");
	bad(DD_PRINCIPAL_USER, "", 1, "empty");
	bad(DD_PRINCIPAL_USER, NULL, 1, "empty");
	bad(DD_PRINCIPAL_USER, "-octo", 1, "start or end with '-'");
	bad(DD_PRINCIPAL_USER, "octo-", 1, "start or end with '-'");
	bad(DD_PRINCIPAL_USER, "-", 1, "start or end");
	bad(DD_PRINCIPAL_USER, "octo_cat", 1, "letters, digits and '-'");
	bad(DD_PRINCIPAL_USER, "octo.cat", 1, "letters, digits and '-'");
	bad(DD_PRINCIPAL_USER, "octo cat", 1, "letters, digits and '-'");
	bad(DD_PRINCIPAL_USER, "oct\xc3\xb6", 1, "letters, digits and '-'");
	bad(DD_PRINCIPAL_ORG, "octo-org/octo-repo", 1, "no '/'");
	bad(DD_PRINCIPAL_USER, "octocat", 0, "id is 0");
	bad((dd_principal_kind)7, "octocat", 1, "unknown principal kind");
}

static void test_repos(void **state)
{
	char b[512], o[64], r[128];

	(void)state;
	ok(DD_PRINCIPAL_REPO, "octo-org/octo-repo", 74);
	ok(DD_PRINCIPAL_REPO, "o/.github", 1);
	ok(DD_PRINCIPAL_REPO, "o/a_b.c-d", 1);
	ok(DD_PRINCIPAL_REPO, "o/...", 1);
	/* The longest: a 39-character owner and a 100-character name. */
	snprintf(b, sizeof b, "%s/%s", rep(o, 'o', 39), rep(r, 'r', 100));
	assert_int_equal(strlen(b), DD_PRINCIPAL_MAX_NAME);
	ok(DD_PRINCIPAL_REPO, b, 1);
	snprintf(b, sizeof b, "o/%s", rep(r, 'r', 101));
	bad(DD_PRINCIPAL_REPO, b, 1, "longer than 100");
	snprintf(b, sizeof b, "%s/%s", rep(o, 'o', 40), "r");
	bad(DD_PRINCIPAL_REPO, b, 1, "longer than 39");
	snprintf(b, sizeof b, "%s/%s", rep(o, 'o', 40), rep(r, 'r', 101));
	bad(DD_PRINCIPAL_REPO, b, 1, "longer than 140");
	bad(DD_PRINCIPAL_REPO, "octo-repo", 1, "owner/name");
	bad(DD_PRINCIPAL_REPO, "a/b/c", 1, "exactly one '/'");
	bad(DD_PRINCIPAL_REPO, "/repo", 1, "owner is empty");
	bad(DD_PRINCIPAL_REPO, "owner/", 1, "repository name is empty");
	bad(DD_PRINCIPAL_REPO, "-owner/repo", 1, "start or end with '-'");
	bad(DD_PRINCIPAL_REPO, "own_er/repo", 1, "letters, digits and '-'");
	bad(DD_PRINCIPAL_REPO, "owner/re po", 1, "'.', '_' and '-'");
	bad(DD_PRINCIPAL_REPO, "owner/re:po", 1, "'.', '_' and '-'");
	bad(DD_PRINCIPAL_REPO, "owner/.", 1, "'.' or '..'");
	bad(DD_PRINCIPAL_REPO, "owner/..", 1, "'.' or '..'");
	bad(DD_PRINCIPAL_REPO, "octo-org/octo-repo", 0, "id is 0");
}

static void test_why_optional(void **state)
{
	dd_principal p;

	(void)state;
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_USER, "", 1, &p, NULL,
					   0), DD_ERR_INVALID);
	assert_int_equal(dd_principal_make(DD_PRINCIPAL_USER, "x", 1, &p, NULL,
					   0), DD_OK);
}

static void test_kind_names(void **state)
{
	static const char *const bad_names[] = {
		"", "User", "ORG", "users", "repo ", " org", "repository",
	};
	dd_principal_kind k = DD_PRINCIPAL_REPO;

	(void)state;
	assert_string_equal(dd_principal_kind_name(DD_PRINCIPAL_USER), "user");
	assert_string_equal(dd_principal_kind_name(DD_PRINCIPAL_ORG), "org");
	assert_string_equal(dd_principal_kind_name(DD_PRINCIPAL_REPO), "repo");
	assert_string_equal(dd_principal_kind_name((dd_principal_kind)9),
			    "unknown");
	for (int i = 0; i <= DD_PRINCIPAL_REPO; i++) {
		assert_int_equal(dd_principal_kind_parse(
			dd_principal_kind_name(i), &k), DD_OK);
		assert_int_equal(k, i);
	}
	k = DD_PRINCIPAL_ORG;
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
		assert_int_equal(dd_principal_kind_parse(bad_names[i], &k),
				 DD_ERR_INVALID);
	assert_int_equal(dd_principal_kind_parse(NULL, &k), DD_ERR_INVALID);
	assert_int_equal(k, DD_PRINCIPAL_ORG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logins),
		cmocka_unit_test(test_repos),
		cmocka_unit_test(test_why_optional),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
