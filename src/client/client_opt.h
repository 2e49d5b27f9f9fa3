#ifndef DD_CLIENT_OPT_H
#define DD_CLIENT_OPT_H

/*
 * client_opt.h: what the client's command lines share (client_args.c for
 * deploy/logs/list, client_sargs.c for pair/shell/sessions/replay): one
 * way to read "--name VALUE", "--name=VALUE" and flags, and one way to
 * say what was wrong.
 */
#include <stddef.h>

#include "core/err.h"

typedef struct dd_opt {
	const char *name;   /* "--name" */
	int id;             /* the caller's own enum */
	int has_value;
} dd_opt;

/*
 * Reads the option argv[*i] (it starts with '-' and is not "--") against
 * the n entries of table. On success *opt is its entry and *value its
 * value: after '=', or the next argument (then *i moves past it), NULL
 * for a flag. An unknown option, a missing value and a value given to a
 * flag are DD_ERR_INVALID with the reason in why.
 */
dd_err_t dd_opt_read(const dd_opt *table, size_t n, int argc,
			    char **argv, int *i, const dd_opt **opt,
			    char **value, char *why, size_t why_len);

/* *slot = v, or DD_ERR_INVALID ("NAME given twice") when already set. */
dd_err_t dd_opt_once(const char **slot, const char *v,
			    const char *name, char *why, size_t why_len);

/* Formats the reason into why (when given) and returns DD_ERR_INVALID. */
dd_err_t dd_opt_bad(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
