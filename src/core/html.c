#include "core/html.h"

#include <string.h>

dd_err_t dd_html_escape(dd_buf *out, const char *s)
{
	dd_err_t rc = DD_OK;

	while (rc == DD_OK && *s) {
		size_t plain = strcspn(s, "&<>\"'");

		rc = dd_buf_append(out, s, plain);
		s += plain;
		if (rc || *s == '\0')
			break;
		switch (*s++) {
		case '&':
			rc = dd_buf_append_str(out, "&amp;");
			break;
		case '<':
			rc = dd_buf_append_str(out, "&lt;");
			break;
		case '>':
			rc = dd_buf_append_str(out, "&gt;");
			break;
		case '"':
			rc = dd_buf_append_str(out, "&quot;");
			break;
		default:
			rc = dd_buf_append_str(out, "&#39;");
		}
	}
	return rc;
}
