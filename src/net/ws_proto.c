/*
 * ws_proto.c: the pure parts of RFC 6455: the accept key, the checks of an
 * upgrade request, UTF-8 validation and close codes. No sockets here, so
 * every branch is unit-testable.
 */
#include "net/ws.h"

#include <string.h>

#include <openssl/evp.h>

#include "core/strutil.h"
#include "net/router.h"
#include "net/ws_int.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

dd_err_t dd_ws_accept_key(const char *key, size_t key_len,
			  char out[DD_WS_ACCEPT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *mdctx = NULL;
	dd_err_t rc = DD_ERR_CRYPTO;

	mdctx = EVP_MD_CTX_new();
	if (mdctx == NULL)
		goto out;
	if (EVP_DigestInit_ex(mdctx, EVP_sha1(), NULL) != 1)
		goto out;
	if (EVP_DigestUpdate(mdctx, key, key_len) != 1)
		goto out;
	if (EVP_DigestUpdate(mdctx, ws_guid, sizeof ws_guid - 1) != 1)
		goto out;
	if (EVP_DigestFinal_ex(mdctx, md, &md_len) != 1 || md_len != 20)
		goto out;
	/* 20 bytes encode to exactly 28 characters plus the NUL. */
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) != DD_WS_ACCEPT_LEN)
		goto out;
	rc = DD_OK;
out:
	EVP_MD_CTX_free(mdctx);
	return rc;
}

static int b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * 16 bytes are 22 base64 characters and "==". Decoders ignore the low bits
 * of the last character, and so do we: clients only promise the length.
 */
static int key_ok(const char *k, size_t n)
{
	if (n != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (size_t i = 0; i < 22; i++) {
		if (!b64_char(k[i]))
			return 0;
	}
	return 1;
}

/* Does the comma-separated header value list token (any case)? */
int ws_has_token(const char *v, const char *token)
{
	const char *p = v, *comma;
	size_t n;

	while (p != NULL && *p != '\0') {
		const char *s = p;

		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		dd_str_trim(&s, &n);
		if (dd_str_ieq(s, n, token))
			return 1;
		p = comma != NULL ? comma + 1 : NULL;
	}
	return 0;
}

dd_err_t dd_ws_check_upgrade(unsigned method_bit, int http_minor,
			     const char *upgrade, const char *connection,
			     const char *version, const char *key,
			     char accept_out[DD_WS_ACCEPT_LEN + 1],
			     int *status, const char **why)
{
	const char *s;
	size_t n;
	dd_err_t rc;

	*status = 400;
	if (method_bit != DD_M_GET) {
		*why = "a WebSocket upgrade must use GET";
		return DD_ERR_INVALID;
	}
	if (http_minor < 1) {
		*why = "a WebSocket upgrade needs HTTP/1.1";
		return DD_ERR_INVALID;
	}
	if (upgrade == NULL || !ws_has_token(upgrade, "websocket")) {
		*why = "missing 'Upgrade: websocket'";
		return DD_ERR_INVALID;
	}
	if (connection == NULL || !ws_has_token(connection, "upgrade")) {
		*why = "missing 'Connection: Upgrade'";
		return DD_ERR_INVALID;
	}
	s = version != NULL ? version : "";
	n = strlen(s);
	dd_str_trim(&s, &n);
	if (n != 2 || memcmp(s, "13", 2) != 0) {
		*status = 426;
		*why = "unsupported Sec-WebSocket-Version (13 is supported)";
		return DD_ERR_UNSUPPORTED;
	}
	s = key != NULL ? key : "";
	n = strlen(s);
	dd_str_trim(&s, &n);
	if (!key_ok(s, n)) {
		*why = "Sec-WebSocket-Key must be 16 bytes in base64";
		return DD_ERR_INVALID;
	}
	rc = dd_ws_accept_key(s, n, accept_out);
	if (rc) {
		*status = 500;
		*why = "cannot compute Sec-WebSocket-Accept";
		return rc;
	}
	*status = 101;
	*why = "";
	return DD_OK;
}

/*
 * RFC 3629 table 2, written out: each lead byte fixes the length and the
 * range of the first continuation byte, which rules out overlongs,
 * surrogates and code points above U+10FFFF.
 */
int dd_ws_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i], lo = 0x80, hi = 0xbf;
		size_t need;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return 0;
		}
		if (need > n - i - 1)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= need; k++) {
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return 0;
		}
		i += need + 1;
	}
	return 1;
}

int dd_ws_close_code_sendable(uint16_t code)
{
	if (code >= 1000 && code <= 1003)
		return 1;
	if (code >= 1007 && code <= 1011)
		return 1;
	return code >= 3000 && code <= 4999;
}
