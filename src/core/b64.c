#include "core/b64.h"

static const char std_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value(dd_b64_alphabet a, char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (a == DD_B64_URL ? '-' : '+'))
		return 62;
	if (c == (a == DD_B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

size_t dd_b64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

/* Strips the padding the alphabet requires (std) or forbids (url). */
static dd_err_t data_length(dd_b64_alphabet a, const char *s, size_t n,
			    size_t *out)
{
	size_t pad = 0;

	if (a == DD_B64_STD) {
		if (n % 4 != 0)
			return DD_ERR_INVALID;
		while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
			pad++;
		n -= pad;
	}
	/* One leftover character can never encode a whole byte. */
	if (n % 4 == 1)
		return DD_ERR_INVALID;
	*out = n;
	return DD_OK;
}

dd_err_t dd_b64_decode(dd_b64_alphabet a, const char *s, size_t n, dd_buf *out)
{
	size_t len, want, before = out->len;
	uint8_t *w;
	uint32_t acc = 0;
	int bits = 0;
	dd_err_t rc;

	rc = data_length(a, s, n, &len);
	if (rc)
		return rc;
	/* Exactly the decoded size: a buffer capped at it must suffice. */
	want = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	rc = dd_buf_reserve(out, want);
	if (rc)
		return rc;
	/*
	 * Tokens and quotes are decoded on every request: write straight
	 * into the reserved space and set the length once.
	 */
	w = out->data + before;
	for (size_t i = 0; i < len; i++) {
		int v = value(a, s[i]);
		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*w++ = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero for a canonical encoding. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		goto bad;
	out->len = before + want;
	out->data[out->len] = '\0';
	return DD_OK;
bad:
	if (out->data != NULL)
		out->data[before] = '\0';
	return DD_ERR_INVALID;
}

dd_err_t dd_b64_encode(dd_b64_alphabet a, const void *data, size_t n, dd_buf *out)
{
	const char *chars = a == DD_B64_URL ? url_chars : std_chars;
	const uint8_t *p = data;
	size_t before = out->len;
	char q[4];
	dd_err_t rc;

	rc = dd_buf_reserve(out, (n + 2) / 3 * 4);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i, k = left >= 3 ? 4 : left + 1;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		q[0] = chars[v >> 18 & 63];
		q[1] = chars[v >> 12 & 63];
		q[2] = chars[v >> 6 & 63];
		q[3] = chars[v & 63];
		if (a == DD_B64_STD) {
			for (size_t j = k; j < 4; j++)
				q[j] = '=';
			k = 4;
		}
		rc = dd_buf_append(out, q, k);
		if (rc) {
			out->len = before;
			if (out->data != NULL)
				out->data[before] = '\0';
			return rc;
		}
	}
	return DD_OK;
}
