/*
 * sessiond_record_fuzz.c: transcript lines as a device reads them from a
 * replay (anything the store or a tamperer left there): the sealed-line
 * parser, opening with a fixed device key, the record inside, and the
 * same bytes as a record plaintext. Nothing may crash, and whatever
 * opens must be a record the parser accepts or refuses cleanly.
 *
 * Seeds (fuzz/seeds/sessiond_record): the spec 8.5 vector line (which
 * opens with the key below), a two-recipient line, a legacy base64 line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "sessiond/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The device key of the spec 8.5 vector. */
static const uint8_t device_sk[32] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	dd_buf plain, bytes;
	dd_rec_kind kind;
	uint64_t ts;
	size_t n;
	dd_err_t rc;

	if (!ready) {
		dd_json_setup();
		ready = 1;
	}
	rc = dd_seal_check(data, size, &n);
	if (rc == DD_OK && (n == 0 || n > DD_SEAL_MAX_RECIPIENTS))
		__builtin_trap();
	dd_buf_init(&plain, 1 << 20);
	dd_buf_init(&bytes, 1 << 20);
	rc = dd_seal_open(device_sk, data, size, &plain);
	if (rc != DD_OK && plain.len != 0)
		__builtin_trap();
	if (rc == DD_OK)
		(void)dd_rec_parse(plain.data, plain.len, &ts, &kind, &bytes);
	dd_buf_reset(&bytes);
	(void)dd_rec_parse(data, size, &ts, &kind, &bytes);
	dd_buf_freezero(&plain);
	dd_buf_free(&bytes);
	return 0;
}
