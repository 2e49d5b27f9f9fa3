/*
 * err.h: the one project-wide status type.
 *
 * Every fallible function returns dd_err_t; results come back through out
 * parameters. DD_OK is zero so `if (rc) goto out;` reads naturally. Callers
 * decide whether to log, map to an HTTP status (http_status_for_err) or
 * close a session; nothing below the decision point prints.
 */
#ifndef DD_CORE_ERR_H
#define DD_CORE_ERR_H

#include <stddef.h>

typedef enum {
	DD_OK = 0,
	DD_ERR_NOMEM,        /* allocation failed */
	DD_ERR_INVALID,      /* input from outside is malformed */
	DD_ERR_TOO_LARGE,    /* a capped buffer or limit was exceeded */
	DD_ERR_TRUNCATED,    /* input ended before a complete item */
	DD_ERR_RANGE,        /* a number is outside its allowed bounds */
	DD_ERR_IO,           /* a system call failed */
	DD_ERR_TIMEOUT,      /* a deadline passed */
	DD_ERR_NOT_FOUND,    /* the named thing does not exist */
	DD_ERR_EXISTS,       /* the named thing already exists */
	DD_ERR_UNAUTHORIZED, /* no or bad credentials */
	DD_ERR_FORBIDDEN,    /* credentials fine, not allowed */
	DD_ERR_UPSTREAM,     /* an outside service failed or answered badly */
	DD_ERR_UNSUPPORTED,  /* a version or feature we do not handle */
	DD_ERR_BUSY,         /* a queue or concurrency limit is full; retry */
	DD_ERR_CLOSED,       /* the peer or object is closed */
	DD_ERR_CANCELLED,    /* the operation was cancelled */
	DD_ERR_CONFIG,       /* configuration is missing or invalid */
	DD_ERR_CRYPTO,       /* a cryptographic check or primitive failed */
	DD_ERR_INTERNAL,     /* an invariant we could not keep */
	DD_ERR__COUNT
} dd_err_t;

/* Static, never NULL, for any value (unknown values give "unknown error"). */
const char *dd_strerror(dd_err_t err);

/* Short stable token ("too_large") for logs and JSON `code` fields. */
const char *dd_errname(dd_err_t err);

/*
 * The house way to fail with a reason: formats it into why (when why is
 * not NULL and why_len > 0) and returns rc, so a check reads
 * `return dd_why(why, why_len, DD_ERR_INVALID, "...", ...);`.
 */
dd_err_t dd_why(char *why, size_t why_len, dd_err_t rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
