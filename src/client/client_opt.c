#include "client/client_opt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

dd_err_t dd_opt_bad(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DD_ERR_INVALID;
}

static const dd_opt *find(const dd_opt *table, size_t n,
				 char *arg, char **value)
{
	char *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

	*value = NULL;
	for (size_t k = 0; k < n; k++) {
		if (strlen(table[k].name) == len &&
		    strncmp(table[k].name, arg, len) == 0) {
			if (eq != NULL)
				*value = eq + 1;
			return &table[k];
		}
	}
	return NULL;
}

dd_err_t dd_opt_read(const dd_opt *table, size_t n, int argc,
			    char **argv, int *i, const dd_opt **opt,
			    char **value, char *why, size_t why_len)
{
	const dd_opt *o = find(table, n, argv[*i], value);

	if (o == NULL)
		return dd_opt_bad(why, why_len,
					 "unknown option '%.64s'", argv[*i]);
	if (o->has_value && *value == NULL) {
		if (*i + 1 >= argc)
			return dd_opt_bad(why, why_len,
						 "%s needs a value", o->name);
		*value = argv[++*i];
	} else if (!o->has_value && *value != NULL) {
		return dd_opt_bad(why, why_len, "%s takes no value",
					 o->name);
	}
	*opt = o;
	return DD_OK;
}

dd_err_t dd_opt_once(const char **slot, const char *v,
			    const char *name, char *why, size_t why_len)
{
	if (*slot != NULL)
		return dd_opt_bad(why, why_len, "%s given twice", name);
	*slot = v;
	return DD_OK;
}
