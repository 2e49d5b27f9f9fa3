/*
 * ndjson_reply_fuzz.c: the EasyEnclave reply path without sockets.
 *
 * The input is what a hostile or broken EE socket could send. The first
 * byte picks the read-chunk size, so line framing is exercised across
 * every split the socket could produce; the framed line then goes
 * through the same parse and ok/error check as a real reply, under both
 * the call cap and the 4096-byte attach-ack cap.
 *
 * Seeds: {"ok":true,"attestation_type":"tdx","workloads":2}\n
 *        {"ok":false,"error":"unauthenticated"}\n
 *        {"ok":true,"attached":true}\nPTY bytes after the ack
 *        {"ok":true,"deployments":[{"id":"a","pid":null}]}\n
 *        a line without newline, an empty line, "[1]\n", "{}\n",
 *        {"a":1,"a":2}\n (duplicate keys), invalid UTF-8 inside a string.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "net/ndjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size, size_t chunk, size_t max)
{
	dd_ndjson_reader rd;
	json_t *v = NULL;
	const char *err = NULL;
	char why[256];
	size_t off = 0, used = 0, n;
	dd_err_t rc = DD_ERR_TRUNCATED;

	dd_ndjson_reader_init(&rd, max);
	while (off < size && rc == DD_ERR_TRUNCATED) {
		n = size - off < chunk ? size - off : chunk;
		rc = dd_ndjson_reader_feed(&rd, data + off, n, &used);
		if (used > n)
			__builtin_trap();
		off += used;
	}
	if (rc == DD_OK) {
		if (rd.line.len > max || off > size)
			__builtin_trap();
		if (dd_ndjson_parse_line(rd.line.data, rd.line.len, max, &v,
					 why, sizeof why) == DD_OK) {
			if (!json_is_object(v))
				__builtin_trap();
			(void)dd_ndjson_reply_check(v, &err);
			if (err == NULL)
				__builtin_trap();
			json_decref(v);
		}
	}
	dd_ndjson_reader_free(&rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk;

	if (size == 0)
		return 0;
	chunk = (size_t)data[0] + 1;
	run(data + 1, size - 1, chunk, DD_NDJSON_DEFAULT_MAX_REPLY);
	run(data + 1, size - 1, chunk, DD_NDJSON_MAX_ACK);
	run(data + 1, size - 1, size, 64);
	return 0;
}
