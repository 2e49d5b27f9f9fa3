#include "client/workload.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/json.h"
#include "core/workload_spec.h"

static dd_err_t fail(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static dd_err_t fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DD_ERR_INVALID;
}

/* The shape itself lives in core/workload_spec.c, shared with the agent. */
int dd_workload_app_name_ok(const char *s)
{
	return dd_workload_spec_app_name_ok(s);
}

dd_err_t dd_workload_check(const void *data, size_t len, json_t **out,
			   char *why, size_t why_len)
{
	json_t *spec = NULL;
	char jwhy[160];
	dd_err_t rc;

	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (len > DD_WORKLOAD_MAX_BYTES) {
		fail(why, why_len, "larger than %u bytes",
		     DD_WORKLOAD_MAX_BYTES);
		return DD_ERR_TOO_LARGE;
	}
	rc = dd_json_parse(data, len, DD_WORKLOAD_MAX_BYTES, &spec, jwhy,
			   sizeof jwhy);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc) {
		rc = fail(why, why_len, "not JSON: %s", jwhy);
		goto out;
	}
	rc = dd_workload_spec_check(spec, why, why_len);
	if (rc)
		goto out;
	*out = spec;
	spec = NULL; /* transferred */
out:
	json_decref(spec);
	return rc;
}
