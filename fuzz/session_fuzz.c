/*
 * session_fuzz.c: session and OAuth state tokens, CSRF checks and Cookie
 * header parsing on hostile input.
 *
 * Every input is used four ways:
 *   1. as a token, verified as a session and as an OAuth state under a
 *      fixed secret (only the seeds' tokens pass the MAC);
 *   2. as a payload, signed here with the derived session key (the
 *      harness repeats the derivation of session.h) so that the shape
 *      checks behind the MAC are reached; a payload that verifies must
 *      sign again to a token that verifies to the same session;
 *   3. the same with the state key;
 *   4. as a Cookie header: any value found must lie inside the header,
 *      and a value dd_cookie_format accepts must read back unchanged.
 *
 * Seeds (fuzz/seeds/session/): valid session and state tokens and
 * payloads, edge-case payloads, and Cookie headers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/session.h"
#include "core/b64.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1750000000
static const uint8_t secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static const dd_principal owner = {DD_PRINCIPAL_ORG, "acme", 4242};

static dd_session_keys *keys;

static void mint(const char *label, const uint8_t *payload, size_t n,
		 dd_buf *out)
{
	uint8_t key[32], mac[32];
	size_t got = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret,
		      sizeof secret - 1, (const unsigned char *)label,
		      strlen(label), key, sizeof key, &got) == NULL ||
	    dd_b64_encode(DD_B64_URL, payload, n, out) != DD_OK ||
	    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof key,
		      out->data, out->len, mac, sizeof mac, &got) == NULL ||
	    dd_buf_append_byte(out, '.') != DD_OK ||
	    dd_b64_encode(DD_B64_URL, mac, sizeof mac, out) != DD_OK)
		dd_buf_reset(out);
}

static void session_round_trip(const uint8_t *payload, size_t n)
{
	dd_session s, again;
	dd_principal p;
	dd_buf tok, tok2;
	char why[256];

	dd_buf_init(&tok, 16384);
	dd_buf_init(&tok2, 16384);
	mint("devopsdefender/session/v1", payload, n, &tok);
	/* The earliest now: expiry never hides the checks after it. */
	if (dd_session_verify(keys, (const char *)tok.data, tok.len, &owner,
			      INT64_MIN, &s, why, sizeof why) != DD_OK) {
		dd_buf_free(&tok);
		return;
	}
	p = s.owner;
	if (dd_session_sign(keys, &s, &tok2) != DD_OK ||
	    dd_session_verify(keys, (const char *)tok2.data, tok2.len, &p,
			      s.exp, &again, why, sizeof why) != DD_OK ||
	    strcmp(again.login, s.login) != 0 || again.user_id != s.user_id ||
	    again.exp != s.exp || again.n_orgs != s.n_orgs ||
	    again.is_fleet_admin != s.is_fleet_admin || again.dev != s.dev ||
	    memcmp(again.orgs, s.orgs, sizeof s.orgs) != 0)
		__builtin_trap();
	dd_buf_free(&tok);
	dd_buf_free(&tok2);
}

static void state_round_trip(const uint8_t *payload, size_t n)
{
	dd_oauth_state st, again;
	dd_buf tok, tok2;
	char why[256];

	dd_buf_init(&tok, 16384);
	dd_buf_init(&tok2, 16384);
	mint("devopsdefender/oauth-state/v1", payload, n, &tok);
	if (dd_oauth_state_verify(keys, (const char *)tok.data, tok.len,
				  INT64_MIN, &st, why, sizeof why) == DD_OK &&
	    (dd_oauth_state_sign(keys, &st, &tok2) != DD_OK ||
	     dd_oauth_state_verify(keys, (const char *)tok2.data, tok2.len,
				   st.exp, &again, why, sizeof why) != DD_OK ||
	     strcmp(again.return_to, st.return_to) != 0 ||
	     strcmp(again.nonce, st.nonce) != 0 ||
	     strcmp(again.app, st.app) != 0))
		__builtin_trap();
	dd_buf_free(&tok);
	dd_buf_free(&tok2);
}

static void cookies(const char *hdr, size_t n)
{
	static const char *const names[] = {DD_SESSION_COOKIE, DD_NONCE_COOKIE,
					    "a"};
	const char *v;
	size_t len;
	dd_buf b;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (dd_cookie_get(hdr, names[i], &v, &len) == DD_OK &&
		    (v < hdr || v + len > hdr + n))
			__builtin_trap();
	dd_buf_init(&b, 16384);
	if (dd_cookie_format("n", hdr, NULL, 1, 1, &b) == DD_OK &&
	    (dd_cookie_get(dd_buf_str(&b), "n", &v, &len) != DD_OK ||
	     len != n || memcmp(v, hdr, n) != 0))
		__builtin_trap();
	dd_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, why[256], csrf[DD_CSRF_LEN + 1];
	dd_session s;
	dd_oauth_state st;

	if (keys == NULL) {
		dd_json_setup();
		if (dd_session_keys_new(secret, sizeof secret - 1, &keys) !=
		    DD_OK)
			__builtin_trap();
	}
	/* Only tokens signed under the fuzz secret (seeds) may pass. */
	if (dd_session_verify(keys, (const char *)data, size, &owner, NOW, &s,
			      why, sizeof why) == DD_OK &&
	    (s.owner.id != owner.id || s.exp < NOW))
		__builtin_trap();
	if (dd_oauth_state_verify(keys, (const char *)data, size, NOW, &st,
				  why, sizeof why) == DD_OK &&
	    st.exp < NOW)
		__builtin_trap();
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dd_csrf_check(keys, (const char *)data, size, text) ||
	    (size > 0 && size <= DD_SESSION_MAX_TOKEN &&
	     dd_csrf_token(keys, (const char *)data, size, csrf) != DD_OK))
		__builtin_trap();
	session_round_trip(data, size);
	state_round_trip(data, size);
	cookies(text, strlen(text));
	free(text);
	return 0;
}
