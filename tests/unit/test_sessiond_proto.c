/*
 * test_sessiond_proto.c: sessiond's request lines (every method, its
 * defaults and its refusals), the recipient set, and the recipe file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"
#include "sessiond/proto.h"
#include "sessiond/recipes.h"
#include "sessiond/recipients.h"

#define ID "11111111-2222-4333-8444-555555555555"
#define PK "605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c"

static dd_err_t parse(const char *line, dd_sd_req *r, const char **code)
{
	char why[DD_SD_WHY];

	return dd_sd_req_parse((const uint8_t *)line, strlen(line), 4096, r,
			       code, why, sizeof why);
}

static void ok(const char *line, dd_sd_req *r)
{
	const char *code = NULL;

	if (parse(line, r, &code) != DD_OK)
		fail_msg("%s refused (%s)", line, code);
}

static void refused(const char *line, const char *want)
{
	dd_sd_req r;
	const char *code = NULL;

	if (parse(line, &r, &code) == DD_OK)
		fail_msg("%s accepted", line);
	assert_null(r.obj);
	assert_string_equal(code, want);
}

static void test_methods(void **state)
{
	dd_sd_req r;

	(void)state;
	ok("{\"method\":\"shell.list_recipes\",\"x\":1}", &r);
	assert_int_equal(r.method, DD_SD_LIST_RECIPES);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.create_session\"}", &r);
	assert_int_equal(r.method, DD_SD_CREATE);
	assert_null(r.recipe);
	assert_int_equal(r.cols, 0);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.create_session\",\"recipe_id\":\"shell\","
	   "\"name\":\"n\",\"cwd\":\"/tmp\",\"cols\":120,\"rows\":40}", &r);
	assert_string_equal(r.recipe, "shell");
	assert_string_equal(r.cwd, "/tmp");
	assert_int_equal(r.cols, 120);
	assert_int_equal(r.rows, 40);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.attach_session\",\"id\":\"" ID "\"}", &r);
	assert_true(r.tail && r.input);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.attach_session\",\"id\":\"" ID "\","
	   "\"tail\":false,\"input\":false}", &r);
	assert_false(r.tail || r.input);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.resize_session\",\"id\":\"" ID "\"}", &r);
	assert_int_equal(r.cols, 80);
	assert_int_equal(r.rows, 24);
	dd_sd_req_free(&r);
	ok("{\"method\":\"shell.replay_session\",\"id\":\"" ID "\"}", &r);
	assert_int_equal(r.max_bytes, DD_SD_DEFAULT_REPLAY);
	assert_int_equal(r.cursor, 0);
	dd_sd_req_free(&r);
	ok("{\"method\":\"recipients.set\",\"pubkeys\":[\"" PK "\",\"" PK
	   "\"]}", &r);
	assert_int_equal(r.rcpts.n, 1); /* repeats dropped */
	dd_sd_req_free(&r);
	ok("{\"method\":\"recipients.set\",\"pubkeys\":[]}", &r);
	assert_int_equal(r.rcpts.n, 0);
	dd_sd_req_free(&r);
	ok("{\"method\":\"status\"}", &r);
	dd_sd_req_free(&r);
}

static void test_refusals(void **state)
{
	char big[5000];

	(void)state;
	refused("", "bad_request");
	refused("nonsense", "bad_request");
	refused("[1,2]", "bad_request");
	refused("{}", "bad_request");
	refused("{\"method\":7}", "bad_request");
	refused("{\"method\":\"deploy\"}", "unknown_method");
	refused("{\"method\":\"shell.create_session\",\"command\":\"/bin/sh\"}",
		"not_allowed");
	refused("{\"method\":\"shell.create_session\",\"cwd\":\"tmp\"}",
		"bad_request");
	refused("{\"method\":\"shell.create_session\",\"name\":\"a\\u0007\"}",
		"bad_request");
	refused("{\"method\":\"shell.create_session\",\"recipe_id\":5}",
		"bad_request");
	refused("{\"method\":\"shell.attach_session\"}", "bad_request");
	refused("{\"method\":\"shell.attach_session\",\"id\":\"../x\"}",
		"bad_request");
	refused("{\"method\":\"shell.attach_session\",\"id\":\"" ID "\","
		"\"tail\":1}", "bad_request");
	refused("{\"method\":\"shell.close_session\",\"id\":\"11111111-2222-"
		"4333-8444-55555555555A\"}", "bad_request");
	refused("{\"method\":\"shell.resize_session\",\"id\":\"" ID "\","
		"\"cols\":0}", "bad_request");
	refused("{\"method\":\"shell.resize_session\",\"id\":\"" ID "\","
		"\"rows\":65536}", "bad_request");
	refused("{\"method\":\"shell.resize_session\",\"id\":\"" ID "\","
		"\"rows\":2.5}", "bad_request");
	refused("{\"method\":\"shell.replay_session\",\"id\":\"" ID "\","
		"\"max_bytes\":1}", "bad_request");
	refused("{\"method\":\"recipients.set\"}", "bad_request");
	refused("{\"method\":\"recipients.set\",\"pubkeys\":[\"zz\"]}",
		"bad_request");
	/* The all-zero key: every shared secret would be zero. */
	refused("{\"method\":\"recipients.set\",\"pubkeys\":[\"0000000000000000"
		"000000000000000000000000000000000000000000000000\"]}",
		"bad_request");
	refused("{\"method\":\"status\",\"method\":\"status\"}", "bad_request");
	memset(big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	refused(big, "too_large");
}

static void test_replies(void **state)
{
	dd_buf b;
	json_t *j;

	(void)state;
	dd_buf_init(&b, 4096);
	assert_int_equal(dd_sd_reply_error(&b, "not_found", "bad \xff byte"),
			 DD_OK);
	assert_int_equal(b.data[b.len - 1], '\n');
	j = json_loadb((const char *)b.data, b.len - 1, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "not_found");
	json_decref(j);
	dd_buf_free(&b);
}

static void test_recipes(void **state)
{
	static const char good[] =
		"{\"recipes\":[{\"id\":\"shell\",\"argv\":[\"/bin/sh\",\"-l\"],"
		"\"env\":{\"LANG\":\"C.UTF-8\"}},{\"id\":\"top\",\"title\":\"Top\","
		"\"argv\":[\"/usr/bin/top\"],\"cwd\":\"/tmp\"}]}";
	static const char *const bad[] = {
		"{}", "{\"recipes\":[]}", "{\"recipes\":[1]}",
		"{\"recipes\":[{\"id\":\"Shell\",\"argv\":[\"/bin/sh\"]}]}",
		"{\"recipes\":[{\"id\":\"a\",\"argv\":[\"sh\"]}]}",
		"{\"recipes\":[{\"id\":\"a\",\"argv\":[]}]}",
		"{\"recipes\":[{\"id\":\"a\",\"argv\":[\"/a\"],\"cwd\":\"x\"}]}",
		"{\"recipes\":[{\"id\":\"a\",\"argv\":[\"/a\"],"
		"\"env\":{\"A=B\":\"c\"}}]}",
		"{\"recipes\":[{\"id\":\"a\",\"argv\":[\"/a\"]},"
		"{\"id\":\"a\",\"argv\":[\"/b\"]}]}",
	};
	dd_recipes *r = NULL;
	const dd_recipe *x;
	char why[256];
	json_t *j;

	(void)state;
	assert_int_equal(dd_recipes_parse(good, sizeof good - 1, &r, why,
					  sizeof why),
			 DD_OK);
	x = dd_recipes_find(r, "shell");
	assert_non_null(x);
	assert_string_equal(x->argv[1], "-l");
	assert_string_equal(x->env[0], "LANG=C.UTF-8");
	assert_string_equal(x->cwd, "/");
	assert_string_equal(x->title, "shell");
	assert_null(dd_recipes_find(r, "nope"));
	j = dd_recipes_json(r);
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(j, 1), "command")),
			    "/usr/bin/top");
	json_decref(j);
	dd_recipes_free(r);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = NULL;
		assert_int_equal(dd_recipes_parse(bad[i], strlen(bad[i]), &r,
						  why, sizeof why),
				 DD_ERR_INVALID);
		assert_null(r);
	}
	assert_int_equal(dd_recipes_load(NULL, &r, why, sizeof why), DD_OK);
	assert_non_null(dd_recipes_find(r, "shell"));
	dd_recipes_free(r);
}

static void test_recipients_file(void **state)
{
	char dir[] = "/tmp/dd-rcpts-XXXXXX", path[128], why[256];
	dd_sd_rcpts a, b;
	dd_sd_req r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/recipients.json", dir);
	assert_int_equal(dd_sd_rcpts_load(path, &a, why, sizeof why), DD_OK);
	assert_int_equal(a.n, 0);
	ok("{\"method\":\"recipients.set\",\"pubkeys\":[\"" PK "\"]}", &r);
	assert_int_equal(dd_sd_rcpts_save(path, &r.rcpts), DD_OK);
	assert_int_equal(dd_sd_rcpts_load(path, &b, why, sizeof why), DD_OK);
	assert_int_equal(b.n, 1);
	assert_memory_equal(b.keys[0], r.rcpts.keys[0], 32);
	dd_sd_req_free(&r);
	unlink(path);
	rmdir(dir);
}

static void test_alloc_failures(void **state)
{
	static const char line[] =
		"{\"method\":\"shell.create_session\",\"recipe_id\":\"shell\"}";
	unsigned long n, used;
	dd_recipes *rec;
	const char *code;
	char why[256];
	dd_sd_req r;
	dd_err_t rc;

	(void)state;
	for (n = 1;; n++) {
		rec = NULL;
		dd_alloc_fail_at(n);
		rc = dd_sd_req_parse((const uint8_t *)line, sizeof line - 1,
				     4096, &r, &code, why, sizeof why);
		if (rc == DD_OK)
			dd_sd_req_free(&r);
		if (rc == DD_OK)
			rc = dd_recipes_load(NULL, &rec, why, sizeof why);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		/* jansson reports some failed allocations as bad syntax. */
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM ||
			    rc == DD_ERR_INVALID);
		dd_recipes_free(rec);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_recipes),
		cmocka_unit_test(test_recipients_file),
		cmocka_unit_test(test_alloc_failures),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
