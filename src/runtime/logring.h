/*
 * logring.h: the bounded log of one deployment.
 *
 * stdout and stderr arrive as chunks; each stream is split into lines on
 * '\n' (a '\r' before it is dropped, EasyEnclave strips terminators) and
 * the lines of both streams are kept in arrival order. Output is bytes:
 * nothing here cares about encoding (replies make it valid UTF-8).
 *
 * Memory is bounded by max_bytes: a kept line costs its length plus
 * DD_RT_LOG_LINE_COST, and the oldest lines go first. A line longer than
 * max_line is cut into several. When an allocation fails the line is
 * dropped and counted; the log itself stays consistent.
 */
#ifndef DD_RUNTIME_LOGRING_H
#define DD_RUNTIME_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_RT_LOG_LINE_COST 32
#define DD_RT_STDOUT 1
#define DD_RT_STDERR 2

typedef struct dd_rt_log dd_rt_log;

/*
 * max_bytes >= 2 * DD_RT_LOG_LINE_COST; max_line >= 1 (lowered to what
 * max_bytes can hold). Caller frees with dd_rt_log_free().
 */
dd_err_t dd_rt_log_new(size_t max_bytes, size_t max_line, dd_rt_log **out);
void dd_rt_log_free(dd_rt_log *l);

/*
 * Appends output of stream DD_RT_STDOUT or DD_RT_STDERR. NOMEM when a
 * line had to be dropped (the rest of data is still taken).
 */
dd_err_t dd_rt_log_write(dd_rt_log *l, int stream, const uint8_t *data,
			 size_t len);

/* Ends a stream's unterminated last line (at EOF). */
dd_err_t dd_rt_log_flush(dd_rt_log *l, int stream);

size_t dd_rt_log_count(const dd_rt_log *l);

/*
 * The i-th kept line, 0 being the oldest (i < count). *data is valid
 * until the next write or flush.
 */
void dd_rt_log_get(const dd_rt_log *l, size_t i, const uint8_t **data,
		   size_t *len, int *stream);

/* Lines dropped because memory ran out (not those aged out). */
uint64_t dd_rt_log_dropped(const dd_rt_log *l);

#endif
