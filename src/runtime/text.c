#include "runtime/text.h"

#include <string.h>

#include "core/json.h"

/* Length of the well-formed UTF-8 sequence at s, or 0 (with *bad set). */
static size_t utf8_seq(const uint8_t *s, size_t n, size_t *bad)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	*bad = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;       /* overlong */
		else if (c == 0xed)
			hi = 0x9f;       /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;       /* overlong */
		else if (c == 0xf4)
			hi = 0x8f;       /* above U+10FFFF */
	} else {
		return 0;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return 0;
		/* The maximal invalid prefix is replaced as one character. */
		*bad = i + 1;
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

dd_err_t dd_rt_utf8_lossy(const uint8_t *s, size_t n, dd_buf *out)
{
	static const uint8_t repl[] = {0xef, 0xbf, 0xbd};
	size_t i = 0, run = 0, len, bad;
	dd_err_t rc;

	if (n == 0)
		return DD_OK;
	while (i < n) {
		len = utf8_seq(s + i, n - i, &bad);
		if (len > 0) {
			i += len;
			continue;
		}
		rc = dd_buf_append(out, s + run, i - run);
		if (rc == DD_OK)
			rc = dd_buf_append(out, repl, sizeof repl);
		if (rc)
			return rc;
		i += bad;
		run = i;
	}
	return run < n ? dd_buf_append(out, s + run, n - run) : DD_OK;
}

json_t *dd_rt_json_text(const void *s, size_t n)
{
	dd_buf b;
	json_t *v = NULL;

	if (n == 0)
		return json_string("");
	/* Every input byte becomes at most three output bytes. */
	dd_buf_init(&b, n * 3 + 1);
	if (dd_rt_utf8_lossy(s, n, &b) == DD_OK)
		v = json_stringn(dd_buf_str(&b), b.len);
	dd_buf_free(&b);
	return v;
}

size_t dd_rt_json_cost(const uint8_t *s, size_t n)
{
	size_t cost = 3; /* quotes and a comma */

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			cost += 2;
		else if (s[i] < 0x20)
			cost += 6;
		else if (s[i] >= 0x80)
			cost += 3;
		else
			cost += 1;
	}
	return cost;
}

dd_err_t dd_rt_reply_line(dd_buf *out, const json_t *reply)
{
	size_t before = out->len;
	dd_err_t rc;

	rc = dd_json_append(out, reply);
	if (rc == DD_OK)
		rc = dd_buf_append_byte(out, '\n');
	if (rc) {
		out->len = before;
		if (out->data != NULL)
			out->data[before] = '\0';
	}
	return rc;
}

dd_err_t dd_rt_reply_error(dd_buf *out, const char *msg)
{
	static const char fallback[] =
		"{\"ok\":false,\"error\":\"out of memory\"}\n";
	json_t *o = json_object();
	json_t *t = dd_rt_json_text(msg, strlen(msg));
	dd_err_t rc = DD_ERR_NOMEM;

	if (o != NULL && t != NULL &&
	    json_object_set_new(o, "ok", json_false()) == 0 &&
	    json_object_set(o, "error", t) == 0)
		rc = dd_rt_reply_line(out, o);
	json_decref(t);
	json_decref(o);
	if (rc)
		rc = dd_buf_append(out, fallback, sizeof fallback - 1);
	return rc;
}

