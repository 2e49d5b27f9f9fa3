/*
 * test_runtime_proto.c: the runtime's side of the EasyEnclave protocol
 * without sockets: request lines, deploy specs, attest report data,
 * lossy UTF-8, reply lines, child environments; mutations of valid lines
 * and allocation-failure loops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/json.h"
#include "runtime/env.h"
#include "runtime/proto.h"
#include "runtime/text.h"

/* String literals as the char *const * that environ is. */
#define SV(a) ((char *const *)(uintptr_t)(a))

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static dd_err_t parse(const char *line, const char *token, json_t **obj,
		      dd_rt_method *m, char *why)
{
	return dd_rt_request_parse((const uint8_t *)line, strlen(line), 4096,
				   token, obj, m, why, DD_RT_WHY);
}

static void expect_error(const char *line, const char *token, dd_err_t want,
			 const char *why_prefix)
{
	json_t *obj = NULL;
	dd_rt_method m;
	char why[DD_RT_WHY];

	assert_int_equal(parse(line, token, &obj, &m, why), want);
	assert_null(obj);
	if (strncmp(why, why_prefix, strlen(why_prefix)) != 0)
		fail_msg("%s: got \"%s\", want \"%s...\"", line, why, why_prefix);
}

static void request_methods(void **state)
{
	static const char *const names[] = {"health", "list", "logs", "attest",
					    "deploy", "stop", "exec", "attach"};
	char line[128], why[DD_RT_WHY];
	json_t *obj = NULL;
	dd_rt_method m;

	(void)state;
	for (size_t i = 0; i < 8; i++) {
		snprintf(line, sizeof line, "{\"method\":\"%s\",\"x\":1}",
			 names[i]);
		assert_int_equal(parse(line, NULL, &obj, &m, why), DD_OK);
		assert_int_equal(m, (dd_rt_method)i);
		assert_string_equal(dd_rt_method_name(m), names[i]);
		json_decref(obj);
	}
	/* Trailing whitespace (a CRLF client) is still one object. */
	assert_int_equal(parse("{\"method\":\"list\"}\r", NULL, &obj, &m, why),
			 DD_OK);
	json_decref(obj);
}

static void request_errors(void **state)
{
	char big[600];

	(void)state;
	expect_error("garbage", NULL, DD_ERR_INVALID, "invalid json: line 1");
	expect_error("", NULL, DD_ERR_INVALID, "invalid json: ");
	expect_error("{\"method\":\"health\"", NULL, DD_ERR_INVALID,
		     "invalid json: ");
	expect_error("{\"method\":\"a\",\"method\":\"b\"}", NULL,
		     DD_ERR_INVALID, "invalid json: ");
	expect_error("{\"method\":\"\\u0000\"}", NULL, DD_ERR_INVALID,
		     "invalid json: ");
	expect_error("[1,2]", NULL, DD_ERR_INVALID,
		     "request must be a JSON object");
	/* jansson takes only objects and arrays at the top. */
	expect_error("\"health\"", NULL, DD_ERR_INVALID, "invalid json: ");
	expect_error("{}", NULL, DD_ERR_INVALID, "missing method");
	expect_error("{\"method\":null}", NULL, DD_ERR_INVALID,
		     "missing method");
	expect_error("{\"method\":[\"health\"]}", NULL, DD_ERR_INVALID,
		     "missing method");
	expect_error("{\"method\":\"Health\"}", NULL, DD_ERR_INVALID,
		     "unknown method: Health");
	/* Long names are cut on a character, never inside one. */
	memcpy(big, "{\"method\":\"", 11);
	memcpy(big + 11, "a", 1);
	for (size_t i = 0; i < 100; i++)
		memcpy(big + 12 + 2 * i, "\xc3\xa9", 2);
	memcpy(big + 212, "\"}", 3);
	{
		json_t *obj = NULL;
		dd_rt_method m;
		char why[DD_RT_WHY];
		json_t *t;

		assert_int_equal(parse(big, NULL, &obj, &m, why),
				 DD_ERR_INVALID);
		assert_non_null(strstr(why, "..."));
		t = json_string(why);
		assert_non_null(t); /* valid UTF-8 */
		json_decref(t);
		assert_true(strlen(why) < 100);
	}
	memset(big, ' ', sizeof big);
	big[sizeof big - 1] = '\0';
	{
		json_t *obj = NULL;
		dd_rt_method m;
		char why[DD_RT_WHY];

		assert_int_equal(dd_rt_request_parse((const uint8_t *)big,
						     sizeof big - 1, 100, NULL,
						     &obj, &m, why, sizeof why),
				 DD_ERR_TOO_LARGE);
		assert_string_equal(why, "request line longer than 100 bytes");
	}
}

static void request_token(void **state)
{
	json_t *obj = NULL;
	dd_rt_method m;
	char why[DD_RT_WHY];

	(void)state;
	expect_error("{\"method\":\"health\"}", TOKEN, DD_ERR_UNAUTHORIZED,
		     "unauthenticated");
	expect_error("{\"method\":\"health\",\"token\":\"0123\"}", TOKEN,
		     DD_ERR_UNAUTHORIZED, "unauthenticated");
	expect_error("{\"method\":\"health\",\"token\":5}", TOKEN,
		     DD_ERR_UNAUTHORIZED, "unauthenticated");
	expect_error("{\"method\":\"health\",\"token\":\"1123456789abcdef"
		     "0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		     TOKEN, DD_ERR_UNAUTHORIZED, "unauthenticated");
	/* Not JSON: refused as such before any token is looked at. */
	expect_error("nope", TOKEN, DD_ERR_INVALID, "invalid json: ");
	expect_error("[]", TOKEN, DD_ERR_UNAUTHORIZED, "unauthenticated");
	/* The token is checked before the method. */
	expect_error("{\"method\":\"x\"}", TOKEN, DD_ERR_UNAUTHORIZED,
		     "unauthenticated");
	assert_int_equal(parse("{\"method\":\"list\",\"token\":\"" TOKEN "\"}",
			       TOKEN, &obj, &m, why), DD_OK);
	assert_int_equal(m, DD_RT_LIST);
	/* Handlers never see it. */
	assert_null(json_object_get(obj, "token"));
	json_decref(obj);
	/* Without a configured token, one sent is ignored. */
	assert_int_equal(parse("{\"method\":\"list\",\"token\":\"x\"}", "", &obj,
			       &m, why), DD_OK);
	assert_null(json_object_get(obj, "token"));
	json_decref(obj);
}

/* Flip, cut and extend valid lines: every result is a clean answer. */
static void request_mutations(void **state)
{
	static const char *const valid[] = {
		"{\"method\":\"health\",\"token\":\"" TOKEN "\"}",
		"{\"method\":\"deploy\",\"app_name\":\"a\",\"cmd\":[\"sh\",\"-c\","
		"\"echo\"],\"env\":[\"A=b\"],\"github_release\":{\"repo\":\"o/r\","
		"\"asset\":\"x\",\"sha256\":\"" TOKEN "\"},\"token\":\"" TOKEN "\"}",
		"{\"method\":\"attest\",\"nonce\":\"00ff\",\"token\":\"" TOKEN "\"}",
	};
	uint8_t buf[512];
	char why[DD_RT_WHY];
	json_t *obj, *text;
	dd_rt_spec *spec;
	dd_rt_method m;
	uint8_t rd[64];
	size_t n, rdlen;
	dd_err_t rc;

	(void)state;
	for (size_t v = 0; v < 3; v++) {
		size_t len = strlen(valid[v]);

		for (size_t i = 0; i <= len + 2; i++) {
			for (int kind = 0; kind < 3; kind++) {
				memcpy(buf, valid[v], len);
				n = len;
				if (kind == 0 && i < len)
					buf[i] ^= (uint8_t)(1u << (i % 8));
				else if (kind == 1)
					n = i < len ? i : len;
				else
					buf[n++] = (uint8_t)(i * 37);
				obj = NULL;
				rc = dd_rt_request_parse(buf, n, 4096, TOKEN,
							 &obj, &m, why,
							 sizeof why);
				if (rc) {
					assert_null(obj);
					assert_true(why[0] != '\0');
					text = dd_rt_json_text(why, strlen(why));
					assert_non_null(text);
					json_decref(text);
					continue;
				}
				if (m == DD_RT_DEPLOY &&
				    dd_rt_parse_deploy(obj, &spec, why,
						       sizeof why) == DD_OK)
					dd_rt_spec_free(spec);
				if (m == DD_RT_ATTEST)
					(void)dd_rt_parse_report_data(
						obj, rd, &rdlen, why,
						sizeof why);
				json_decref(obj);
			}
		}
	}
}

static json_t *obj_of(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);

	assert_non_null(v);
	return v;
}

static void deploy_spec(void **state)
{
	json_t *req;
	dd_rt_spec *s = NULL;
	char why[DD_RT_WHY];

	(void)state;
	req = obj_of("{}");
	assert_int_equal(dd_rt_parse_deploy(req, &s, why, sizeof why), DD_OK);
	assert_string_equal(s->app_name, "unnamed");
	assert_int_equal(s->argc, 0);
	assert_null(s->argv[0]);
	assert_null(s->env);
	assert_int_equal(s->tty, 0);
	assert_int_equal(s->restart, DD_RT_RESTART_ON_FAILURE);
	assert_null(s->release);
	dd_rt_spec_free(s);
	json_decref(req);

	req = obj_of("{\"app_name\":\"web-1.x_y\",\"cmd\":[\"/bin/app\",\"\","
		     "\"--flag\"],\"env\":[\"A=1\",\"NOEQ\",\"=v\",\"B=x=y\"],"
		     "\"tty\":true,\"restart\":\"always\",\"expose\":{\"port\":1},"
		     "\"github_release\":{\"repo\":\"acme/hello\",\"asset\":"
		     "\"hello\",\"tag\":\"v1.0+b\",\"rename\":\"hi\",\"sha256\":"
		     "\"" TOKEN "\"}}");
	assert_int_equal(dd_rt_parse_deploy(req, &s, why, sizeof why), DD_OK);
	assert_string_equal(s->app_name, "web-1.x_y");
	assert_int_equal(s->argc, 3);
	assert_string_equal(s->argv[1], "");
	assert_null(s->argv[3]);
	assert_int_equal(s->envc, 2);
	assert_string_equal(s->env[0], "A=1");
	assert_string_equal(s->env[1], "B=x=y");
	assert_null(s->env[2]);
	assert_int_equal(s->tty, 1);
	assert_int_equal(s->restart, DD_RT_RESTART_ALWAYS);
	assert_string_equal(s->release->owner, "acme");
	assert_string_equal(s->release->repo, "hello");
	assert_string_equal(s->release->tag, "v1.0+b");
	assert_string_equal(s->release->rename, "hi");
	assert_int_equal(s->release->has_sha256, 1);
	assert_int_equal(s->release->sha256[0], 0x01);
	dd_rt_spec_free(s);
	json_decref(req);
}

static void deploy_refusals(void **state)
{
	static const char *const bad[] = {
		"{\"app_name\":\"\"}", "{\"app_name\":\"../x\"}",
		"{\"app_name\":\"a/b\"}", "{\"app_name\":\".hidden\"}",
		"{\"app_name\":5}", "{\"app_name\":\"a\\u00e9\"}",
		"{\"cmd\":\"sh\"}", "{\"cmd\":[1]}", "{\"cmd\":[\"a\",null]}",
		"{\"env\":{\"A\":\"b\"}}", "{\"env\":[1]}", "{\"tty\":1}",
		"{\"restart\":\"never\"}", "{\"restart\":true}",
		"{\"github_release\":[]}", "{\"github_release\":{}}",
		"{\"github_release\":{\"repo\":\"acme/x\"}}",
		"{\"github_release\":{\"repo\":\"acme\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"../acme/x\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"../x\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"./x\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"a/..\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"a/b/c\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"/b\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"a/\",\"asset\":\"a\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"..\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\".\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"x/y\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"x y\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"a\",\"tag\":"
		"\"..\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"a\",\"tag\":"
		"\"v1/../..\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"a\",\"rename\":"
		"\"../a\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"a\",\"sha256\":"
		"\"abc\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"a\",\"sha256\":"
		"1}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"x.tar.gz\"}}",
		"{\"github_release\":{\"repo\":\"a/b\",\"asset\":\"x.tgz\"}}",
	};
	dd_rt_spec *s;
	char why[DD_RT_WHY];
	json_t *req;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		req = obj_of(bad[i]);
		s = (dd_rt_spec *)(uintptr_t)1;
		if (dd_rt_parse_deploy(req, &s, why, sizeof why) !=
		    DD_ERR_INVALID)
			fail_msg("accepted %s", bad[i]);
		assert_null(s);
		if (strncmp(why, "invalid deploy request: ", 24) != 0)
			fail_msg("%s: %s", bad[i], why);
		json_decref(req);
	}
}

static void cmd_exec_logs_id(void **state)
{
	char **argv = NULL, why[DD_RT_WHY];
	size_t argc = 0;
	uint64_t n = 0;
	const char *id = NULL;
	json_t *req;

	(void)state;
	req = obj_of("{}");
	assert_int_equal(dd_rt_parse_cmd(req, "/bin/sh", &argv, &argc, why,
					 sizeof why), DD_OK);
	assert_int_equal(argc, 1);
	assert_string_equal(argv[0], "/bin/sh");
	assert_null(argv[1]);
	dd_rt_argv_free(argv);
	assert_int_equal(dd_rt_parse_exec(req, &argv, &argc, &n, why,
					  sizeof why), DD_ERR_INVALID);
	assert_string_equal(why, "missing cmd array");
	assert_int_equal(dd_rt_parse_logs(req, &id, &n, why, sizeof why),
			 DD_ERR_INVALID);
	assert_string_equal(why, "missing id");
	json_decref(req);

	req = obj_of("{\"cmd\":[],\"id\":\"x\"}");
	assert_int_equal(dd_rt_parse_exec(req, &argv, &argc, &n, why,
					  sizeof why), DD_ERR_INVALID);
	assert_string_equal(why, "cmd array is empty");
	assert_int_equal(dd_rt_parse_logs(req, &id, &n, why, sizeof why),
			 DD_OK);
	assert_string_equal(id, "x");
	assert_int_equal(n, DD_RT_DEFAULT_TAIL);
	json_decref(req);

	req = obj_of("{\"cmd\":[\"ls\",\"-l\"],\"timeout_secs\":5,\"tail\":0,"
		     "\"id\":\"y\"}");
	assert_int_equal(dd_rt_parse_exec(req, &argv, &argc, &n, why,
					  sizeof why), DD_OK);
	assert_int_equal(n, 5);
	assert_int_equal(argc, 2);
	dd_rt_argv_free(argv);
	assert_int_equal(dd_rt_parse_logs(req, &id, &n, why, sizeof why),
			 DD_OK);
	assert_int_equal(n, 0);
	json_decref(req);

	req = obj_of("{\"cmd\":[\"ls\"],\"timeout_secs\":0,\"tail\":-1,"
		     "\"id\":7}");
	assert_int_equal(dd_rt_parse_exec(req, &argv, &argc, &n, why,
					  sizeof why), DD_ERR_INVALID);
	assert_non_null(strstr(why, "timeout_secs"));
	assert_int_equal(dd_rt_parse_id(req, &id, why, sizeof why),
			 DD_ERR_INVALID);
	json_decref(req);

	req = obj_of("{\"cmd\":[\"ls\"],\"timeout_secs\":86401,\"tail\":"
		     "100001,\"id\":\"z\"}");
	assert_int_equal(dd_rt_parse_exec(req, &argv, &argc, &n, why,
					  sizeof why), DD_ERR_INVALID);
	assert_int_equal(dd_rt_parse_logs(req, &id, &n, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "tail"));
	json_decref(req);
}

static void report_data(void **state)
{
	static const struct {
		const char *req;
		dd_err_t rc;
		size_t len;
		const char *why;
	} cases[] = {
		{"{}", DD_OK, 0, NULL},
		{"{\"report_data_b64\":\"\"}", DD_OK, 0, NULL},
		{"{\"report_data_b64\":\"AAEC\"}", DD_OK, 3, NULL},
		/* report_data_b64 wins over nonce */
		{"{\"report_data_b64\":\"AAEC\",\"nonce\":\"ff\"}", DD_OK, 3, NULL},
		{"{\"nonce\":\"0001\"}", DD_OK, 2, NULL},
		/* not hex digits, so base64 */
		{"{\"nonce\":\"AAE=\"}", DD_OK, 2, NULL},
		{"{\"nonce\":\"AAEC\"}", DD_OK, 2, NULL},
		{"{\"nonce\":\"\"}", DD_OK, 0, NULL},
		{"{\"report_data_b64\":\"AAE\"}", DD_ERR_INVALID, 0,
		 "invalid report_data_b64 base64"},
		{"{\"nonce\":\"xyz!\"}", DD_ERR_INVALID, 0,
		 "invalid nonce base64"},
		{"{\"report_data_b64\":5}", DD_ERR_INVALID, 0,
		 "report_data_b64 must be a string"},
	};
	uint8_t rd[64];
	size_t len;
	char why[DD_RT_WHY];
	json_t *req;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		req = obj_of(cases[i].req);
		memset(rd, 0xaa, sizeof rd);
		len = 99;
		assert_int_equal(dd_rt_parse_report_data(req, rd, &len, why,
							 sizeof why),
				 cases[i].rc);
		if (cases[i].rc == DD_OK) {
			assert_int_equal(len, cases[i].len);
			for (size_t k = len; k < 64; k++)
				assert_int_equal(rd[k], 0);
		} else if (strncmp(why, cases[i].why,
				   strlen(cases[i].why)) != 0) {
			fail_msg("%s: %s", cases[i].req, why);
		}
		json_decref(req);
	}
	{
		char big[256];
		size_t o;

		o = (size_t)snprintf(big, sizeof big, "{\"nonce\":\"");
		for (size_t i = 0; i < 130; i++)
			big[o++] = 'f';
		memcpy(big + o, "\"}", 3);
		req = obj_of(big);
		assert_int_equal(dd_rt_parse_report_data(req, rd, &len, why,
							 sizeof why),
				 DD_ERR_INVALID);
		assert_string_equal(why, "TDX report data is 65 bytes; "
				    "maximum is 64");
		json_decref(req);
	}
}

static void lossy_n(const char *in, size_t n, const char *want,
		    size_t want_len)
{
	dd_buf b;
	int same;

	dd_buf_init(&b, 1024);
	assert_int_equal(dd_rt_utf8_lossy((const uint8_t *)in, n, &b), DD_OK);
	same = b.len == want_len &&
	       (want_len == 0 || memcmp(b.data, want, want_len) == 0);
	dd_buf_free(&b);
	if (!same)
		fail_msg("lossy of %zu bytes: unexpected output", n);
}

static void lossy(const char *in, size_t n, const char *want)
{
	lossy_n(in, n, want, strlen(want));
}

#define R "\xef\xbf\xbd"

static void utf8_lossy(void **state)
{
	(void)state;
	lossy("", 0, "");
	lossy("plain", 5, "plain");
	lossy("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
	      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	lossy("a\xffz", 3, "a" R "z");
	lossy("\xc0\xaf", 2, R R);               /* overlong */
	lossy("\xe0\x80\xaf", 3, R R R);         /* overlong */
	lossy("\xed\xa0\x80", 3, R R R);         /* surrogate */
	lossy("\xf4\x90\x80\x80", 4, R R R R);   /* above U+10FFFF */
	lossy("\xe2\x82", 2, R);                 /* cut: one replacement */
	lossy("\xe2\x82x", 3, R "x");
	lossy("\xf0\x9f\x98", 3, R);
	lossy("\x80\x80", 2, R R);
	lossy_n("a\0b", 3, "a\0b", 3);
}

/* dd_rt_json_cost never under-estimates what a line takes in a reply. */
static void json_cost_bounds(void **state)
{
	uint8_t data[300];
	json_t *v;
	char *dump;
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)round % sizeof data;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			data[i] = (uint8_t)(seed >> 16);
		}
		v = dd_rt_json_text(data, n);
		assert_non_null(v);
		dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		assert_non_null(dump);
		assert_true(strlen(dump) + 1 <= dd_rt_json_cost(data, n));
		free(dump);
		json_decref(v);
	}
}

static void reply_lines(void **state)
{
	dd_buf b;
	json_t *v;

	(void)state;
	dd_buf_init(&b, 4096);
	assert_int_equal(dd_rt_reply_error(&b, "bad \xff \"x\"\n"), DD_OK);
	assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
	assert_null(memchr(b.data, '\n', b.len - 1));
	v = json_loadb((const char *)b.data, b.len, 0, NULL);
	assert_non_null(v);
	assert_true(json_is_false(json_object_get(v, "ok")));
	assert_string_equal(json_string_value(json_object_get(v, "error")),
			    "bad " R " \"x\"\n");
	json_decref(v);
	dd_buf_free(&b);
	/* A cap that cannot hold the reply: the fixed line, if it fits. */
	dd_buf_init(&b, 40);
	assert_int_equal(dd_rt_reply_error(&b, "a long message that will not "
					   "fit into forty bytes"), DD_OK);
	assert_string_equal(dd_buf_str(&b),
			    "{\"ok\":false,\"error\":\"out of memory\"}\n");
	dd_buf_free(&b);
}

static void environments(void **state)
{
	const char *parent[] = {"PATH=/bin", "DD_MODE=runtime", "EE_TOKEN=secret",
			  "EE_SOCKET_PATH=/old", "HOME=/root", "DD_DEV=1",
			  "NOEQ", "LANG=C", NULL};
	const char *extra[] = {"LANG=fr", "X=1", "BAD", "=v", "X=2",
			       "DD_MODE=cp"};
	char **base = NULL, **env = NULL;

	(void)state;
	assert_int_equal(dd_rt_env_base(SV(parent), "/run/s.sock", &base),
			 DD_OK);
	assert_string_equal(base[0], "PATH=/bin");
	assert_string_equal(base[1], "HOME=/root");
	assert_string_equal(base[2], "LANG=C");
	assert_string_equal(base[3], "EE_SOCKET_PATH=/run/s.sock");
	assert_null(base[4]);
	assert_int_equal(dd_rt_env_compose(base, SV(extra), 6, &env), DD_OK);
	assert_string_equal(env[0], "PATH=/bin");
	assert_string_equal(env[2], "LANG=fr");
	assert_string_equal(env[4], "X=2");
	/* What the request asks for explicitly, it gets. */
	assert_string_equal(env[5], "DD_MODE=cp");
	assert_null(env[6]);
	dd_rt_argv_free(env);
	dd_rt_argv_free(base);
	assert_int_equal(dd_rt_env_base(NULL, NULL, &base), DD_OK);
	assert_null(base[0]);
	dd_rt_argv_free(base);
}

static void ids_and_times(void **state)
{
	char id[DD_RT_ID_LEN + 1], other[DD_RT_ID_LEN + 1], when[32];

	(void)state;
	assert_int_equal(dd_rt_uuid(id), DD_OK);
	assert_int_equal(dd_rt_uuid(other), DD_OK);
	assert_int_equal(strlen(id), DD_RT_ID_LEN);
	assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' &&
		    id[23] == '-');
	assert_int_equal(id[14], '4');
	assert_non_null(strchr("89ab", id[19]));
	assert_string_not_equal(id, other);
	dd_rt_rfc3339(0, when, sizeof when);
	assert_string_equal(when, "1970-01-01T00:00:00Z");
	dd_rt_rfc3339(1767323045, when, sizeof when);
	assert_string_equal(when, "2026-01-02T03:04:05Z");
}

/*
 * R17: fail the nth allocation of every fallible path, for every n it
 * makes (in -Dtorture builds; elsewhere each runs once): a clean error
 * or success, never a leak (LeakSanitizer and valgrind check that).
 */
static void torture(void **state)
{
	static const char line[] =
		"{\"method\":\"deploy\",\"app_name\":\"a\",\"cmd\":[\"sh\","
		"\"-c\",\"x\"],\"env\":[\"A=b\",\"C=d\"],\"restart\":\"no\","
		"\"github_release\":{\"repo\":\"o/r\",\"asset\":\"x\",\"tag\":"
		"\"t\",\"rename\":\"y\",\"sha256\":\"" TOKEN "\"},\"token\":\""
		TOKEN "\"}";
	const char *parent[] = {"PATH=/bin", "HOME=/", "DD_X=1", NULL};
	const char *extra[] = {"A=1", "HOME=/h"};
	char why[DD_RT_WHY], **env;
	unsigned long n, used;
	dd_rt_spec *spec;
	dd_rt_method m;
	json_t *obj, *t;
	dd_buf b;
	dd_err_t rc;

	(void)state;
	for (n = 1;; n++) {
		obj = NULL;
		spec = NULL;
		dd_alloc_fail_at(n);
		rc = dd_rt_request_parse((const uint8_t *)line, strlen(line),
					 4096, TOKEN, &obj, &m, why,
					 sizeof why);
		if (rc == DD_OK)
			rc = dd_rt_parse_deploy(obj, &spec, why, sizeof why);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		/* jansson reports some failed allocations as bad syntax. */
		if (rc != DD_OK && rc != DD_ERR_NOMEM && rc != DD_ERR_INVALID)
			fail_msg("n=%lu: %s (%s)", n, dd_errname(rc), why);
		dd_rt_spec_free(spec);
		json_decref(obj);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
	for (n = 1;; n++) {
		env = NULL;
		dd_alloc_fail_at(n);
		rc = dd_rt_env_base(SV(parent), "/s", &env);
		if (rc == DD_OK) {
			char **base = env;

			rc = dd_rt_env_compose(base, SV(extra), 2, &env);
			dd_rt_argv_free(base);
			if (rc)
				env = NULL;
		}
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		dd_rt_argv_free(env);
		if (used < n)
			break;
	}
	for (n = 1;; n++) {
		dd_buf_init(&b, 4096);
		dd_alloc_fail_at(n);
		rc = dd_rt_reply_error(&b, "unknown method: \xff");
		t = dd_rt_json_text("a\xffz", 3);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		/* Either the real line or the fixed one: both are JSON. */
		if (rc == DD_OK) {
			json_t *v = json_loadb((const char *)b.data, b.len, 0,
					       NULL);
			assert_non_null(v);
			json_decref(v);
		}
		json_decref(t);
		dd_buf_free(&b);
		if (used < n)
			break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_methods),
		cmocka_unit_test(request_errors),
		cmocka_unit_test(request_token),
		cmocka_unit_test(request_mutations),
		cmocka_unit_test(deploy_spec),
		cmocka_unit_test(deploy_refusals),
		cmocka_unit_test(cmd_exec_logs_id),
		cmocka_unit_test(report_data),
		cmocka_unit_test(utf8_lossy),
		cmocka_unit_test(json_cost_bounds),
		cmocka_unit_test(reply_lines),
		cmocka_unit_test(environments),
		cmocka_unit_test(ids_and_times),
		cmocka_unit_test(torture),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
