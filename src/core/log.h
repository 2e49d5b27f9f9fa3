/*
 * log.h: one line per event, to stderr, as logfmt or JSON.
 *
 * A line carries time, level, the calling function, an optional request id
 * and a message; key=value pairs go in the message via dd_log_kv-style
 * formatting by the caller. Logging is configured once at start-up
 * (dd_log_setup) and is then read-only: the only process-wide state besides
 * the config. Never pass secrets here: tokens, keys, cookies and
 * Authorization values are not logged anywhere in the project.
 */
#ifndef DD_CORE_LOG_H
#define DD_CORE_LOG_H

#include <stdarg.h>

#include "core/err.h"

typedef enum {
	DD_LOG_DEBUG = 0,
	DD_LOG_INFO,
	DD_LOG_WARN,
	DD_LOG_ERROR,
} dd_log_level;

typedef enum {
	DD_LOG_LOGFMT = 0,
	DD_LOG_JSON,
} dd_log_format;

/* Call once from main before anything logs. name is the mode ("cp"). */
void dd_log_setup(dd_log_level level, dd_log_format format, const char *name);
int dd_log_enabled(dd_log_level level);

/* Parses "debug|info|warn|error"; DD_ERR_INVALID otherwise. */
dd_err_t dd_log_level_parse(const char *s, dd_log_level *out);

/* rid may be NULL. The message is escaped for the chosen format. */
void dd_log_at(dd_log_level level, const char *func, const char *rid,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void dd_log_vat(dd_log_level level, const char *func, const char *rid,
		const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/*
 * Structured line with explicit fields: keys and values are parallel
 * NULL-terminated arrays (values may be NULL = omitted). Used by the
 * access log so that each field is its own key.
 */
void dd_log_fields(dd_log_level level, const char *msg, const char *rid,
		   const char *const *keys, const char *const *values);

#define dd_log_debug(...) dd_log_at(DD_LOG_DEBUG, __func__, NULL, __VA_ARGS__)
#define dd_log_info(...) dd_log_at(DD_LOG_INFO, __func__, NULL, __VA_ARGS__)
#define dd_log_warn(...) dd_log_at(DD_LOG_WARN, __func__, NULL, __VA_ARGS__)
#define dd_log_error(...) dd_log_at(DD_LOG_ERROR, __func__, NULL, __VA_ARGS__)
/* Logs at the decision point with the error text appended (R13). */
void dd_log_err_at(dd_err_t rc, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define dd_log_err(rc, ...) dd_log_err_at(rc, __func__, __VA_ARGS__)

#endif
