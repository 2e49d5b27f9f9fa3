#include "auth/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/strutil.h"

#define MAC_LEN 32
#define MAC_TEXT 43          /* base64url of MAC_LEN bytes, unpadded */
#define ID_MAX ((uint64_t)INT64_MAX)   /* what a JSON integer can carry */

enum purpose { P_SESSION, P_STATE, P_CSRF, P__COUNT };

/* Changing a label (or its version) invalidates every token of its kind. */
static const char *const labels[P__COUNT] = {
	[P_SESSION] = "devopsdefender/session/v1",
	[P_STATE] = "devopsdefender/oauth-state/v1",
	[P_CSRF] = "devopsdefender/csrf/v1",
};

/*
 * principal.c owns the general kind names; these are the session's wire
 * format and must not change if that module's spelling ever does.
 */
static const char *const kind_names[] = {
	[DD_PRINCIPAL_USER] = "user",
	[DD_PRINCIPAL_ORG] = "org",
	[DD_PRINCIPAL_REPO] = "repo",
};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

struct dd_session_keys {
	uint8_t key[P__COUNT][MAC_LEN];
};

static dd_err_t refuse(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records why a token is refused; every refusal is UNAUTHORIZED. */
static dd_err_t refuse(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DD_ERR_UNAUTHORIZED;
}

static dd_err_t hmac(const uint8_t *key, size_t klen, const void *data,
		     size_t n, uint8_t out[MAC_LEN])
{
	size_t got = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen,
		      (const unsigned char *)data, n, out, MAC_LEN,
		      &got) == NULL || got != MAC_LEN)
		return DD_ERR_CRYPTO;
	return DD_OK;
}

/* The MAC as the token carries it: 43 base64url characters + NUL. */
static dd_err_t mac_text(const uint8_t key[MAC_LEN], const void *data,
			 size_t n, char out[MAC_TEXT + 1])
{
	uint8_t mac[MAC_LEN];
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, MAC_TEXT + 1);
	rc = hmac(key, MAC_LEN, data, n, mac);
	if (rc)
		goto out;
	rc = dd_b64_encode(DD_B64_URL, mac, sizeof mac, &b);
	if (rc)
		goto out;
	if (b.len != MAC_TEXT) {
		rc = DD_ERR_INTERNAL;
		goto out;
	}
	memcpy(out, dd_buf_str(&b), MAC_TEXT + 1);
out:
	OPENSSL_cleanse(mac, sizeof mac);
	dd_buf_freezero(&b);
	return rc;
}

dd_err_t dd_session_keys_new(const uint8_t *secret, size_t len,
			     dd_session_keys **out)
{
	dd_session_keys *k = NULL;
	dd_err_t rc = DD_OK;

	*out = NULL;
	if (secret == NULL || len < DD_SESSION_MIN_SECRET)
		return DD_ERR_CONFIG;
	k = dd_calloc(1, sizeof *k);
	if (k == NULL)
		return DD_ERR_NOMEM;
	for (size_t p = 0; p < P__COUNT; p++) {
		rc = hmac(secret, len, labels[p], strlen(labels[p]), k->key[p]);
		if (rc)
			goto out;
	}
	*out = k;
	k = NULL; /* transferred */
out:
	dd_session_keys_free(k);
	return rc;
}

void dd_session_keys_free(dd_session_keys *k)
{
	dd_freezero(k, sizeof *k);
}

/* --- shapes ------------------------------------------------------------- */

enum charset { CS_LOGIN, CS_ORG, CS_OWNER, CS_APP, CS_NONCE, CS_PATH };

static int char_ok(unsigned char ch, enum charset cs)
{
	int digit = ch >= '0' && ch <= '9', lower = ch >= 'a' && ch <= 'z';
	int upper = ch >= 'A' && ch <= 'Z';

	switch (cs) {
	case CS_LOGIN:
		return digit || lower || upper || ch == '-';
	case CS_ORG:
	case CS_APP:
		return digit || lower || ch == '-';
	case CS_OWNER:
		return digit || lower || upper || ch == '-' || ch == '.' ||
		       ch == '_' || ch == '/';
	case CS_NONCE:
		return digit || lower || upper || ch == '-' || ch == '_';
	case CS_PATH:
		return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
	}
	return 0;
}

/* 1..max characters, all from cs; s must be NUL-terminated. */
static int text_ok(const char *s, size_t max, enum charset cs)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!char_ok((unsigned char)s[i], cs))
			return 0;
	return 1;
}

/* NULL when s fits the shape rules of session.h, else what is wrong. */
static const char *session_shape(const dd_session *s)
{
	if (!text_ok(s->login, sizeof s->login - 1, CS_LOGIN))
		return "login";
	if (s->user_id > ID_MAX || (s->user_id == 0 && !s->dev))
		return "user_id";
	if ((unsigned)s->owner.kind >= N_KINDS)
		return "owner_kind";
	if (!text_ok(s->owner.name, DD_PRINCIPAL_MAX_NAME, CS_OWNER))
		return "owner_name";
	if (s->owner.id == 0 || s->owner.id > ID_MAX)
		return "owner_id";
	if (s->n_orgs > DD_SESSION_MAX_ORGS)
		return "orgs";
	for (size_t i = 0; i < s->n_orgs; i++)
		if (!text_ok(s->orgs[i], sizeof s->orgs[i] - 1, CS_ORG))
			return "orgs";
	return NULL;
}

static const char *state_shape(const dd_oauth_state *st)
{
	const char *r = st->return_to;

	/* "//host" would be an off-site redirect posing as a local path. */
	if (!text_ok(r, sizeof st->return_to - 1, CS_PATH) ||
	    !((r[0] == '/' && r[1] != '/') || strncmp(r, "https://", 8) == 0 ||
	      strncmp(r, "http://", 7) == 0))
		return "return_to";
	if (strnlen(st->nonce, sizeof st->nonce) != DD_OAUTH_NONCE_LEN ||
	    !text_ok(st->nonce, DD_OAUTH_NONCE_LEN, CS_NONCE))
		return "nonce";
	if (!text_ok(st->app, sizeof st->app - 1, CS_APP))
		return "app";
	return NULL;
}

/* --- tokens ------------------------------------------------------------- */

static dd_err_t sign_json(const uint8_t key[MAC_LEN], const json_t *v,
			  dd_buf *out)
{
	char mac[MAC_TEXT + 1];
	dd_buf json, tok;
	dd_err_t rc;

	dd_buf_init(&json, DD_SESSION_MAX_TOKEN);
	dd_buf_init(&tok, DD_SESSION_MAX_TOKEN);
	/* Sized once, so growth leaves no stray copy of the token behind. */
	rc = dd_buf_reserve(&tok, DD_SESSION_MAX_TOKEN);
	if (rc)
		goto out;
	rc = dd_json_append(&json, v);
	if (rc)
		goto out;
	rc = dd_b64_encode(DD_B64_URL, json.data, json.len, &tok);
	if (rc)
		goto out;
	rc = mac_text(key, tok.data, tok.len, mac);
	if (rc)
		goto out;
	rc = dd_buf_append_byte(&tok, '.');
	if (rc)
		goto out;
	rc = dd_buf_append(&tok, mac, MAC_TEXT);
	if (rc)
		goto out;
	rc = dd_buf_append(out, tok.data, tok.len);
out:
	OPENSSL_cleanse(mac, sizeof mac);
	dd_buf_freezero(&json);
	dd_buf_freezero(&tok);
	return rc;
}

/*
 * Checks the MAC of token under key, then decodes its payload into a
 * JSON object. Nothing of the token is decoded before the MAC matched.
 */
static dd_err_t open_token(const uint8_t key[MAC_LEN], const char *token,
			   size_t len, json_t **out, char *why,
			   size_t why_len)
{
	char want[MAC_TEXT + 1];
	const uint8_t *payload, *mac, *dot;
	size_t plen;
	dd_buf raw;
	dd_cursor c;
	json_t *v = NULL;
	dd_err_t rc;

	*out = NULL;
	dd_buf_init(&raw, DD_SESSION_MAX_TOKEN);
	if (token == NULL || len == 0) {
		rc = refuse(why, why_len, "no token");
		goto out;
	}
	if (len > DD_SESSION_MAX_TOKEN) {
		rc = refuse(why, why_len, "token longer than %d bytes",
			    DD_SESSION_MAX_TOKEN);
		goto out;
	}
	dd_cur_init(&c, token, len);
	dot = memchr(dd_cur_ptr(&c), '.', dd_cur_remaining(&c));
	if (dot == NULL) {
		rc = refuse(why, why_len, "token has no signature part");
		goto out;
	}
	plen = (size_t)(dot - dd_cur_ptr(&c));
	(void)dd_cur_get_span(&c, plen, &payload);
	(void)dd_cur_skip(&c, 1);
	if (plen == 0) {
		rc = refuse(why, why_len, "token has an empty payload");
		goto out;
	}
	/* A length mismatch is a bad signature, not a reason to compare. */
	if (dd_cur_get_span(&c, MAC_TEXT, &mac) != DD_OK ||
	    dd_cur_remaining(&c) != 0) {
		rc = refuse(why, why_len, "bad signature");
		goto out;
	}
	rc = mac_text(key, payload, plen, want);
	if (rc)
		goto out;
	if (CRYPTO_memcmp(want, mac, MAC_TEXT) != 0) {
		rc = refuse(why, why_len, "bad signature");
		goto out;
	}
	rc = dd_b64_decode(DD_B64_URL, (const char *)payload, plen, &raw);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc) {
		rc = refuse(why, why_len, "payload is not base64url");
		goto out;
	}
	/* The parser's own message would quote payload bytes: not used. */
	rc = dd_json_parse(raw.data, raw.len, DD_SESSION_MAX_TOKEN, &v, NULL,
			   0);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc || !json_is_object(v)) {
		rc = refuse(why, why_len, "payload is not a JSON object");
		goto out;
	}
	*out = v;
	v = NULL; /* transferred */
out:
	OPENSSL_cleanse(want, sizeof want);
	json_decref(v);
	dd_buf_freezero(&raw);
	return rc;
}

/* Every member of o must be one of names (the name is token bytes). */
static dd_err_t only_known(json_t *o, const char *const *names, size_t n,
			   char *why, size_t why_len)
{
	const char *key;
	json_t *val;

	json_object_foreach(o, key, val) {
		size_t i = 0;

		while (i < n && strcmp(key, names[i]) != 0)
			i++;
		if (i == n)
			return refuse(why, why_len,
				      "payload has an unknown field");
	}
	return DD_OK;
}

/*
 * Typed member getters. An absent optional member leaves *out alone;
 * absent required members and wrong types (null included) are refused.
 */
static dd_err_t get_member(json_t *o, const char *key, int required,
			   int (*is_type)(const json_t *), json_t **v,
			   char *why, size_t why_len)
{
	*v = json_object_get(o, key);
	if (*v == NULL)
		return required ? refuse(why, why_len, "missing field %s", key)
				: DD_OK;
	if (!is_type(*v))
		return refuse(why, why_len, "field %s has the wrong type", key);
	return DD_OK;
}

static int is_string(const json_t *v) { return json_is_string(v); }
static int is_integer(const json_t *v) { return json_is_integer(v); }
static int is_boolean(const json_t *v) { return json_is_boolean(v); }
static int is_array(const json_t *v) { return json_is_array(v); }

static dd_err_t copy_text(const json_t *v, const char *key, char *dst,
			  size_t size, char *why, size_t why_len)
{
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);

	if (n >= size || memchr(s, '\0', n) != NULL)
		return refuse(why, why_len, "field %s is malformed", key);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return DD_OK;
}

static dd_err_t get_str(json_t *o, const char *key, char *dst, size_t size,
			char *why, size_t why_len)
{
	json_t *v;
	dd_err_t rc;

	rc = get_member(o, key, 1, is_string, &v, why, why_len);
	if (rc)
		return rc;
	return copy_text(v, key, dst, size, why, why_len);
}

static dd_err_t get_int(json_t *o, const char *key, int64_t *out, char *why,
			size_t why_len)
{
	json_t *v;
	dd_err_t rc;

	rc = get_member(o, key, 1, is_integer, &v, why, why_len);
	if (rc == DD_OK)
		*out = json_integer_value(v);
	return rc;
}

static dd_err_t get_id(json_t *o, const char *key, uint64_t *out, char *why,
		       size_t why_len)
{
	int64_t i = 0;
	dd_err_t rc;

	rc = get_int(o, key, &i, why, why_len);
	if (rc)
		return rc;
	if (i < 0)
		return refuse(why, why_len, "field %s is malformed", key);
	*out = (uint64_t)i;
	return DD_OK;
}

static dd_err_t get_bool(json_t *o, const char *key, int *out, char *why,
			 size_t why_len)
{
	json_t *v;
	dd_err_t rc;

	rc = get_member(o, key, 0, is_boolean, &v, why, why_len);
	if (rc == DD_OK && v != NULL)
		*out = json_is_true(v);
	return rc;
}

static dd_err_t get_orgs(json_t *o, dd_session *s, char *why, size_t why_len)
{
	json_t *arr, *v;
	size_t i;
	dd_err_t rc;

	rc = get_member(o, "orgs", 0, is_array, &arr, why, why_len);
	if (rc || arr == NULL)
		return rc;
	if (json_array_size(arr) > DD_SESSION_MAX_ORGS)
		return refuse(why, why_len, "field orgs has too many entries");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return refuse(why, why_len,
				      "field orgs has the wrong type");
		rc = copy_text(v, "orgs", s->orgs[i], sizeof s->orgs[i], why,
			       why_len);
		if (rc)
			return rc;
	}
	s->n_orgs = json_array_size(arr);
	return DD_OK;
}

static dd_err_t get_kind(json_t *o, dd_principal_kind *out, char *why,
			 size_t why_len)
{
	char name[8];
	dd_err_t rc;

	rc = get_str(o, "owner_kind", name, sizeof name, why, why_len);
	if (rc)
		return rc;
	for (size_t i = 0; i < N_KINDS; i++) {
		if (strcmp(name, kind_names[i]) == 0) {
			*out = (dd_principal_kind)i;
			return DD_OK;
		}
	}
	return refuse(why, why_len, "field owner_kind is malformed");
}

static dd_err_t read_session(json_t *v, dd_session *s, char *why,
			     size_t why_len)
{
	static const char *const fields[] = {
		"login", "user_id", "exp", "owner_name", "owner_id",
		"owner_kind", "orgs", "is_fleet_admin", "dev",
	};
	const char *bad;
	dd_err_t rc;

	rc = only_known(v, fields, sizeof fields / sizeof fields[0], why,
			why_len);
	if (rc == DD_OK)
		rc = get_str(v, "login", s->login, sizeof s->login, why,
			     why_len);
	if (rc == DD_OK)
		rc = get_id(v, "user_id", &s->user_id, why, why_len);
	if (rc == DD_OK)
		rc = get_int(v, "exp", &s->exp, why, why_len);
	if (rc == DD_OK)
		rc = get_str(v, "owner_name", s->owner.name,
			     sizeof s->owner.name, why, why_len);
	if (rc == DD_OK)
		rc = get_id(v, "owner_id", &s->owner.id, why, why_len);
	if (rc == DD_OK)
		rc = get_kind(v, &s->owner.kind, why, why_len);
	if (rc == DD_OK)
		rc = get_orgs(v, s, why, why_len);
	if (rc == DD_OK)
		rc = get_bool(v, "is_fleet_admin", &s->is_fleet_admin, why,
			      why_len);
	if (rc == DD_OK)
		rc = get_bool(v, "dev", &s->dev, why, why_len);
	if (rc)
		return rc;
	bad = session_shape(s);
	if (bad != NULL)
		return refuse(why, why_len, "field %s is malformed", bad);
	return DD_OK;
}

dd_err_t dd_session_sign(const dd_session_keys *k, const dd_session *s,
			 dd_buf *out)
{
	json_t *orgs = NULL, *v = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	if (session_shape(s) != NULL)
		return DD_ERR_INVALID;
	orgs = json_array();
	if (orgs == NULL)
		goto out;
	for (size_t i = 0; i < s->n_orgs; i++)
		if (json_array_append_new(orgs, json_string(s->orgs[i])) != 0)
			goto out;
	/* Fixed field order: the same session always signs the same. */
	v = json_pack("{s:s, s:I, s:I, s:s, s:I, s:s, s:O, s:b, s:b}",
		      "login", s->login, "user_id", (json_int_t)s->user_id,
		      "exp", (json_int_t)s->exp, "owner_name", s->owner.name,
		      "owner_id", (json_int_t)s->owner.id, "owner_kind",
		      kind_names[s->owner.kind], "orgs", orgs,
		      "is_fleet_admin", s->is_fleet_admin != 0, "dev",
		      s->dev != 0);
	if (v == NULL)
		goto out;
	rc = sign_json(k->key[P_SESSION], v, out);
out:
	json_decref(orgs);
	json_decref(v);
	return rc;
}

dd_err_t dd_session_verify(const dd_session_keys *k, const char *token,
			   size_t len, const dd_principal *expect_owner,
			   int64_t now, dd_session *out, char *why,
			   size_t why_len)
{
	dd_session s;
	json_t *v = NULL;
	dd_err_t rc;

	memset(&s, 0, sizeof s);
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	rc = open_token(k->key[P_SESSION], token, len, &v, why, why_len);
	if (rc)
		goto out;
	rc = read_session(v, &s, why, why_len);
	if (rc)
		goto out;
	if (s.exp < now) {
		rc = refuse(why, why_len, "session expired");
		goto out;
	}
	if (expect_owner == NULL || expect_owner->id == 0 ||
	    s.owner.kind != expect_owner->kind ||
	    s.owner.id != expect_owner->id ||
	    strcmp(s.owner.name, expect_owner->name) != 0) {
		rc = refuse(why, why_len, "session was minted for another "
			    "fleet owner");
		goto out;
	}
	*out = s;
out:
	json_decref(v);
	return rc;
}

dd_err_t dd_oauth_state_sign(const dd_session_keys *k,
			     const dd_oauth_state *st, dd_buf *out)
{
	json_t *v;
	dd_err_t rc;

	if (state_shape(st) != NULL)
		return DD_ERR_INVALID;
	v = json_pack("{s:s, s:s, s:s, s:I}", "return_to", st->return_to,
		      "nonce", st->nonce, "app", st->app, "exp",
		      (json_int_t)st->exp);
	if (v == NULL)
		return DD_ERR_NOMEM;
	rc = sign_json(k->key[P_STATE], v, out);
	json_decref(v);
	return rc;
}

dd_err_t dd_oauth_state_verify(const dd_session_keys *k, const char *token,
			       size_t len, int64_t now, dd_oauth_state *out,
			       char *why, size_t why_len)
{
	static const char *const fields[] = {
		"return_to", "nonce", "app", "exp",
	};
	dd_oauth_state st;
	const char *bad;
	json_t *v = NULL;
	dd_err_t rc;

	memset(&st, 0, sizeof st);
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	rc = open_token(k->key[P_STATE], token, len, &v, why, why_len);
	if (rc)
		goto out;
	rc = only_known(v, fields, sizeof fields / sizeof fields[0], why,
			why_len);
	if (rc == DD_OK)
		rc = get_str(v, "return_to", st.return_to,
			     sizeof st.return_to, why, why_len);
	if (rc == DD_OK)
		rc = get_str(v, "nonce", st.nonce, sizeof st.nonce, why,
			     why_len);
	if (rc == DD_OK)
		rc = get_str(v, "app", st.app, sizeof st.app, why, why_len);
	if (rc == DD_OK)
		rc = get_int(v, "exp", &st.exp, why, why_len);
	if (rc)
		goto out;
	bad = state_shape(&st);
	if (bad != NULL) {
		rc = refuse(why, why_len, "field %s is malformed", bad);
		goto out;
	}
	if (st.exp < now) {
		rc = refuse(why, why_len, "sign-in state expired");
		goto out;
	}
	*out = st;
out:
	json_decref(v);
	return rc;
}

dd_err_t dd_oauth_nonce_new(char out[DD_OAUTH_NONCE_LEN + 1])
{
	uint8_t raw[32];
	dd_buf b;
	dd_err_t rc;

	dd_buf_init(&b, DD_OAUTH_NONCE_LEN + 1);
	rc = dd_random_bytes(raw, sizeof raw);
	if (rc)
		goto out;
	rc = dd_b64_encode(DD_B64_URL, raw, sizeof raw, &b);
	if (rc)
		goto out;
	if (b.len != DD_OAUTH_NONCE_LEN) {
		rc = DD_ERR_INTERNAL;
		goto out;
	}
	memcpy(out, dd_buf_str(&b), DD_OAUTH_NONCE_LEN + 1);
out:
	OPENSSL_cleanse(raw, sizeof raw);
	dd_buf_freezero(&b);
	return rc;
}

int dd_oauth_nonce_check(const dd_oauth_state *st, const char *cookie,
			 size_t len)
{
	if (cookie == NULL || len != DD_OAUTH_NONCE_LEN ||
	    strnlen(st->nonce, sizeof st->nonce) != DD_OAUTH_NONCE_LEN)
		return 0;
	return CRYPTO_memcmp(st->nonce, cookie, DD_OAUTH_NONCE_LEN) == 0;
}

dd_err_t dd_csrf_token(const dd_session_keys *k, const char *session_token,
		       size_t len, char out[DD_CSRF_LEN + 1])
{
	if (session_token == NULL || len == 0 || len > DD_SESSION_MAX_TOKEN)
		return DD_ERR_INVALID;
	return mac_text(k->key[P_CSRF], session_token, len, out);
}

int dd_csrf_check(const dd_session_keys *k, const char *session_token,
		  size_t len, const char *presented)
{
	char want[DD_CSRF_LEN + 1];
	int ok;

	if (presented == NULL ||
	    strnlen(presented, DD_CSRF_LEN + 1) != DD_CSRF_LEN ||
	    dd_csrf_token(k, session_token, len, want) != DD_OK)
		return 0;
	ok = CRYPTO_memcmp(want, presented, DD_CSRF_LEN) == 0;
	OPENSSL_cleanse(want, sizeof want);
	return ok;
}
