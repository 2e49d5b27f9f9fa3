#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *name;
	const char *text;
} err_table[DD_ERR__COUNT] = {
	[DD_OK] = {"ok", "success"},
	[DD_ERR_NOMEM] = {"nomem", "out of memory"},
	[DD_ERR_INVALID] = {"invalid", "invalid input"},
	[DD_ERR_TOO_LARGE] = {"too_large", "size limit exceeded"},
	[DD_ERR_TRUNCATED] = {"truncated", "input truncated"},
	[DD_ERR_RANGE] = {"range", "value out of range"},
	[DD_ERR_IO] = {"io", "input/output error"},
	[DD_ERR_TIMEOUT] = {"timeout", "timed out"},
	[DD_ERR_NOT_FOUND] = {"not_found", "not found"},
	[DD_ERR_EXISTS] = {"exists", "already exists"},
	[DD_ERR_UNAUTHORIZED] = {"unauthorized", "unauthorized"},
	[DD_ERR_FORBIDDEN] = {"forbidden", "forbidden"},
	[DD_ERR_UPSTREAM] = {"upstream", "upstream service failed"},
	[DD_ERR_UNSUPPORTED] = {"unsupported", "unsupported"},
	[DD_ERR_BUSY] = {"busy", "resource busy"},
	[DD_ERR_CLOSED] = {"closed", "closed"},
	[DD_ERR_CANCELLED] = {"cancelled", "cancelled"},
	[DD_ERR_CONFIG] = {"config", "invalid configuration"},
	[DD_ERR_CRYPTO] = {"crypto", "cryptographic failure"},
	[DD_ERR_INTERNAL] = {"internal", "internal error"},
};

const char *dd_strerror(dd_err_t err)
{
	if ((unsigned)err >= DD_ERR__COUNT)
		return "unknown error";
	return err_table[err].text;
}

const char *dd_errname(dd_err_t err)
{
	if ((unsigned)err >= DD_ERR__COUNT)
		return "unknown";
	return err_table[err].name;
}

dd_err_t dd_why(char *why, size_t why_len, dd_err_t rc, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}
