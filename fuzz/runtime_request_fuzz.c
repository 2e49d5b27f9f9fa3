/*
 * runtime_request_fuzz.c: what a client of `devopsdefender runtime` can
 * send, without sockets: a request line through the parser (with and
 * without a token), then the method's own validation, and the error
 * reply that would go back, which must always be one line of JSON. The
 * same bytes also go through the lossy UTF-8 conversion and, as
 * workload output, through a log ring fed in chunks.
 *
 * Seeds (fuzz/seeds/runtime_request): health, a full deploy with a
 * release and digest, attest by nonce and by report_data_b64, exec,
 * logs, attach with a token, a path-traversal release, garbage bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/json.h"
#include "runtime/logring.h"
#include "runtime/proto.h"
#include "runtime/text.h"

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const char *why)
{
	json_t *v;
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_rt_reply_error(&b, why) == DD_OK) {
		if (b.len == 0 || b.data[b.len - 1] != '\n' ||
		    memchr(b.data, '\n', b.len - 1) != NULL)
			__builtin_trap();
		v = json_loadb((const char *)b.data, b.len - 1, 0, NULL);
		if (v == NULL)
			__builtin_trap();
		json_decref(v);
	}
	dd_buf_free(&b);
}

static void method(const json_t *req, dd_rt_method m)
{
	char why[DD_RT_WHY], **argv = NULL;
	const char *id = NULL;
	dd_rt_spec *spec = NULL;
	uint8_t rd[64];
	size_t n;
	uint64_t u;

	why[0] = '\0';
	switch (m) {
	case DD_RT_DEPLOY:
		if (dd_rt_parse_deploy(req, &spec, why, sizeof why) == DD_OK) {
			if (spec->argv == NULL || spec->argv[spec->argc] != NULL)
				__builtin_trap();
			dd_rt_spec_free(spec);
		} else {
			check_reply(why);
		}
		break;
	case DD_RT_EXEC:
		if (dd_rt_parse_exec(req, &argv, &n, &u, why, sizeof why) ==
		    DD_OK && (n == 0 || argv[n] != NULL))
			__builtin_trap();
		dd_rt_argv_free(argv);
		break;
	case DD_RT_ATTACH:
		(void)dd_rt_parse_cmd(req, "/bin/sh", &argv, &n, why,
				      sizeof why);
		dd_rt_argv_free(argv);
		break;
	case DD_RT_LOGS:
		(void)dd_rt_parse_logs(req, &id, &u, why, sizeof why);
		break;
	case DD_RT_STOP:
		(void)dd_rt_parse_id(req, &id, why, sizeof why);
		break;
	case DD_RT_ATTEST:
		if (dd_rt_parse_report_data(req, rd, &n, why, sizeof why) ==
		    DD_OK && n > 64)
			__builtin_trap();
		break;
	default:
		break;
	}
}

static void as_output(const uint8_t *data, size_t size)
{
	dd_rt_log *l = NULL;
	size_t off = 0, k;
	json_t *t;

	t = dd_rt_json_text(data, size);
	if (t != NULL) {
		char *dump = json_dumps(t, JSON_ENCODE_ANY | JSON_COMPACT);

		if (dump != NULL && strlen(dump) + 1 > dd_rt_json_cost(data,
								       size))
			__builtin_trap();
		free(dump);
		json_decref(t);
	}
	if (dd_rt_log_new(4096, 64, &l) != DD_OK)
		return;
	while (off < size) {
		k = 1 + data[off] % 32;
		if (k > size - off)
			k = size - off;
		(void)dd_rt_log_write(l, 1 + (int)(off & 1), data + off, k);
		off += k;
	}
	(void)dd_rt_log_flush(l, 1);
	for (size_t i = 0; i < dd_rt_log_count(l); i++) {
		const uint8_t *d;
		size_t len;

		dd_rt_log_get(l, i, &d, &len, NULL);
		if (len > 64)
			__builtin_trap();
	}
	dd_rt_log_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *tokens[] = {NULL, TOKEN};
	char why[DD_RT_WHY];
	dd_rt_method m;
	json_t *req;

	if (!ready) {
		dd_json_setup();
		ready = 1;
	}
	for (int i = 0; i < 2; i++) {
		req = NULL;
		if (dd_rt_request_parse(data, size, 1 << 16, tokens[i], &req, &m,
					why, sizeof why) != DD_OK) {
			if (req != NULL || why[0] == '\0')
				__builtin_trap();
			check_reply(why);
			continue;
		}
		if (json_object_get(req, "token") != NULL)
			__builtin_trap();
		method(req, m);
		json_decref(req);
	}
	as_output(data, size);
	return 0;
}
