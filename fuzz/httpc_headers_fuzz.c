/*
 * httpc_headers_fuzz.c: response header lines and Retry-After values,
 * the parts of an HTTP response that the outbound client interprets
 * itself (curl parses the rest).
 *
 * The input is split at '\n' into header lines fed to the header store
 * (capped small so TOO_LARGE paths run); every stored Retry-After is
 * then parsed, and the whole input is also tried as a Retry-After value
 * and as an HTTP-date.
 *
 * Seeds: "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n",
 *        "Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
 *        "Retry-After: Sunday, 06-Nov-94 08:49:37 GMT\r\n",
 *        "Retry-After: Sun Nov  6 08:49:37 1994\r\n",
 *        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n".
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "net/httpc.h"
#include "net/retry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nl, *ra;
	size_t left = size, n;
	uint64_t ms;
	int64_t t;
	dd_buf store;

	dd_buf_init(&store, 512);
	while (left > 0) {
		nl = memchr(p, '\n', left);
		n = nl != NULL ? (size_t)(nl - p) + 1 : left;
		(void)dd_httpc_hdr_add(&store, p, n);
		p += n;
		left -= n;
	}
	ra = dd_httpc_hdr_get(&store, "Retry-After");
	if (ra != NULL)
		(void)dd_retry_after_parse(ra, strlen(ra), 1700000000, &ms);
	(void)dd_retry_after_parse((const char *)data, size, 1700000000, &ms);
	(void)dd_http_date_parse((const char *)data, size, 1700000000, &t);
	dd_buf_free(&store);
	return 0;
}
