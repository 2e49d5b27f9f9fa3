/*
 * text.h: the runtime's reply text. Replies are JSON, and JSON strings
 * must be valid UTF-8, while what they carry (workload output, error
 * details that quote hostile input) is arbitrary bytes: everything goes
 * through the lossy conversion here, as EasyEnclave's output does, so a
 * reply line is always well-formed.
 */
#ifndef DD_RUNTIME_TEXT_H
#define DD_RUNTIME_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

/*
 * Appends s[0..n) to out as valid UTF-8: every byte that does not start
 * a well-formed sequence becomes U+FFFD (EasyEnclave's lossy output).
 */
dd_err_t dd_rt_utf8_lossy(const uint8_t *s, size_t n, dd_buf *out);

/* A JSON string of s[0..n) made valid UTF-8 (NULL on NOMEM). */
json_t *dd_rt_json_text(const void *s, size_t n);

/* Bytes s[0..n) may take inside a JSON reply (an upper bound). */
size_t dd_rt_json_cost(const uint8_t *s, size_t n);

/*
 * {"ok":false,"error":<msg>} as one line with its newline, appended to
 * out. Never fails for want of a cap or memory on the static fallback:
 * when building fails, a fixed error line is appended instead.
 */
dd_err_t dd_rt_reply_error(dd_buf *out, const char *msg);

/* Appends the compact serialisation of reply and "\n". */
dd_err_t dd_rt_reply_line(dd_buf *out, const json_t *reply);

#endif
