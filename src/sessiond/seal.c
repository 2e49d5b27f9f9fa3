#include "sessiond/seal.h"

#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/strutil.h"

#define WK_LEN (DD_SEAL_KEY_LEN + DD_SEAL_TAG_LEN)

struct stanza {
	uint8_t epk[DD_SEAL_KEY_LEN];
	uint8_t n[DD_SEAL_NONCE_LEN];
	uint8_t wk[WK_LEN];
};

struct sealed {
	size_t n;
	struct stanza st[DD_SEAL_MAX_RECIPIENTS];
	uint8_t bn[DD_SEAL_NONCE_LEN];
	dd_buf body;             /* ciphertext || tag */
};

/* ---- primitives (OpenSSL EVP) ------------------------------------------ */

static dd_err_t x25519(const uint8_t sk[DD_SEAL_KEY_LEN],
		       const uint8_t pk[DD_SEAL_KEY_LEN],
		       uint8_t out[DD_SEAL_KEY_LEN])
{
	EVP_PKEY *mine = NULL, *theirs = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = DD_SEAL_KEY_LEN;
	dd_err_t rc = DD_ERR_CRYPTO;

	mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
					    DD_SEAL_KEY_LEN);
	theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk,
					     DD_SEAL_KEY_LEN);
	if (mine == NULL || theirs == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new(mine, NULL);
	/* OpenSSL refuses an all-zero result: low-order keys fail here. */
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, theirs) != 1 ||
	    EVP_PKEY_derive(ctx, out, &len) != 1 || len != DD_SEAL_KEY_LEN)
		goto out;
	rc = DD_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
	return rc;
}

dd_err_t dd_seal_public(const uint8_t sk[DD_SEAL_KEY_LEN],
			uint8_t pk[DD_SEAL_KEY_LEN])
{
	EVP_PKEY *k;
	size_t len = DD_SEAL_KEY_LEN;
	int ok;

	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
					 DD_SEAL_KEY_LEN);
	if (k == NULL)
		return DD_ERR_CRYPTO;
	ok = EVP_PKEY_get_raw_public_key(k, pk, &len) == 1 &&
	     len == DD_SEAL_KEY_LEN;
	EVP_PKEY_free(k);
	return ok ? DD_OK : DD_ERR_CRYPTO;
}

dd_err_t dd_seal_key_ok(const uint8_t pk[DD_SEAL_KEY_LEN])
{
	uint8_t sk[DD_SEAL_KEY_LEN], shared[DD_SEAL_KEY_LEN];
	dd_err_t rc;

	rc = dd_random_bytes(sk, sizeof sk);
	if (rc == DD_OK)
		rc = x25519(sk, pk, shared);
	OPENSSL_cleanse(sk, sizeof sk);
	OPENSSL_cleanse(shared, sizeof shared);
	return rc;
}

static dd_err_t hkdf_wrap(const uint8_t shared[DD_SEAL_KEY_LEN],
			  const uint8_t epk[DD_SEAL_KEY_LEN],
			  const uint8_t rpk[DD_SEAL_KEY_LEN],
			  uint8_t out[DD_SEAL_KEY_LEN])
{
	static const uint8_t zeros[32];
	uint8_t info[sizeof DD_SEAL_INFO - 1 + 2 * DD_SEAL_KEY_LEN];
	EVP_PKEY_CTX *ctx;
	size_t len = DD_SEAL_KEY_LEN;
	int ok;

	memcpy(info, DD_SEAL_INFO, sizeof DD_SEAL_INFO - 1);
	memcpy(info + sizeof DD_SEAL_INFO - 1, epk, DD_SEAL_KEY_LEN);
	memcpy(info + sizeof DD_SEAL_INFO - 1 + DD_SEAL_KEY_LEN, rpk,
	       DD_SEAL_KEY_LEN);
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	/* No salt in HKDF is a salt of HashLen zero bytes (RFC 5869). */
	ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_CTX_set1_hkdf_salt(ctx, zeros, sizeof zeros) == 1 &&
	     EVP_PKEY_CTX_set1_hkdf_key(ctx, shared, DD_SEAL_KEY_LEN) == 1 &&
	     EVP_PKEY_CTX_add1_hkdf_info(ctx, info, sizeof info) == 1 &&
	     EVP_PKEY_derive(ctx, out, &len) == 1 && len == DD_SEAL_KEY_LEN;
	EVP_PKEY_CTX_free(ctx);
	return ok ? DD_OK : DD_ERR_CRYPTO;
}

/*
 * ChaCha20-Poly1305 with empty AD. Sealing writes len + 16 bytes; opening
 * takes ciphertext || tag (len >= 16) and writes len - 16 bytes.
 */
static dd_err_t aead(int seal, const uint8_t key[DD_SEAL_KEY_LEN],
		     const uint8_t nonce[DD_SEAL_NONCE_LEN], const uint8_t *in,
		     size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t tag[DD_SEAL_TAG_LEN];
	size_t body = seal ? len : len - DD_SEAL_TAG_LEN;
	int n = 0, fin = 0;
	dd_err_t rc = DD_ERR_CRYPTO;

	if ((!seal && len < DD_SEAL_TAG_LEN) || body > INT32_MAX)
		return DD_ERR_CRYPTO;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, nonce,
			      seal) != 1)
		goto out;
	if (!seal)
		memcpy(tag, in + body, sizeof tag);
	if (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
					 DD_SEAL_TAG_LEN, tag) != 1)
		goto out;
	if (body > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)body) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1)
		goto out;
	if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
					DD_SEAL_TAG_LEN, out + body) != 1)
		goto out;
	rc = DD_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (rc && !seal && body > 0)
		OPENSSL_cleanse(out, body);
	return rc;
}

/* ---- sealing ------------------------------------------------------------ */

static dd_err_t os_random(void *ud, void *out, size_t n)
{
	(void)ud;
	return dd_random_bytes(out, n);
}

static dd_err_t append_hex(dd_buf *b, const uint8_t *p, size_t n)
{
	char hex[2 * DD_SEAL_KEY_LEN + 1];

	dd_hex_encode(p, n, hex);
	return dd_buf_append(b, hex, 2 * n);
}

/* One stanza: a fresh ephemeral key wraps cek for rpk. */
static dd_err_t add_stanza(dd_buf *b, const uint8_t rpk[DD_SEAL_KEY_LEN],
			   const uint8_t cek[DD_SEAL_KEY_LEN],
			   dd_seal_rand_fn rnd, void *ud)
{
	uint8_t esk[DD_SEAL_KEY_LEN], epk[DD_SEAL_KEY_LEN];
	uint8_t shared[DD_SEAL_KEY_LEN], wrap[DD_SEAL_KEY_LEN];
	uint8_t n[DD_SEAL_NONCE_LEN], wk[WK_LEN];
	dd_err_t rc;

	rc = rnd(ud, esk, sizeof esk);
	if (rc == DD_OK)
		rc = rnd(ud, n, sizeof n);
	if (rc == DD_OK)
		rc = dd_seal_public(esk, epk);
	if (rc == DD_OK)
		rc = x25519(esk, rpk, shared);
	if (rc == DD_OK)
		rc = hkdf_wrap(shared, epk, rpk, wrap);
	if (rc == DD_OK)
		rc = aead(1, wrap, n, cek, DD_SEAL_KEY_LEN, wk);
	if (rc == DD_OK)
		rc = dd_buf_append_str(b, "{\"epk\":\"");
	if (rc == DD_OK)
		rc = append_hex(b, epk, sizeof epk);
	if (rc == DD_OK)
		rc = dd_buf_append_str(b, "\",\"n\":\"");
	if (rc == DD_OK)
		rc = append_hex(b, n, sizeof n);
	if (rc == DD_OK)
		rc = dd_buf_append_str(b, "\",\"wk\":\"");
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_STD, wk, sizeof wk, b);
	if (rc == DD_OK)
		rc = dd_buf_append_str(b, "\"}");
	OPENSSL_cleanse(esk, sizeof esk);
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(wrap, sizeof wrap);
	return rc;
}

dd_err_t dd_seal_with(const uint8_t (*rcpts)[DD_SEAL_KEY_LEN], size_t n,
		      const void *plain, size_t len, dd_seal_rand_fn rnd,
		      void *ud, dd_buf *out)
{
	uint8_t cek[DD_SEAL_KEY_LEN], bn[DD_SEAL_NONCE_LEN];
	uint8_t *body = NULL;
	dd_buf line;
	dd_err_t rc;

	if (n == 0 || n > DD_SEAL_MAX_RECIPIENTS || len > DD_SEAL_MAX_LINE)
		return DD_ERR_INVALID;
	dd_buf_init(&line, out->cap);
	body = dd_malloc(len + DD_SEAL_TAG_LEN);
	if (body == NULL)
		return DD_ERR_NOMEM;
	rc = rnd(ud, cek, sizeof cek);
	if (rc == DD_OK)
		rc = rnd(ud, bn, sizeof bn);
	if (rc == DD_OK)
		rc = aead(1, cek, bn, plain, len, body);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&line, "{\"v\":2,\"rcpts\":[");
	for (size_t i = 0; rc == DD_OK && i < n; i++) {
		if (i > 0)
			rc = dd_buf_append_byte(&line, ',');
		if (rc == DD_OK)
			rc = add_stanza(&line, rcpts[i], cek, rnd, ud);
	}
	if (rc == DD_OK)
		rc = dd_buf_append_str(&line, "],\"bn\":\"");
	if (rc == DD_OK)
		rc = append_hex(&line, bn, sizeof bn);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&line, "\",\"body\":\"");
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_STD, body, len + DD_SEAL_TAG_LEN,
				   &line);
	if (rc == DD_OK)
		rc = dd_buf_append_str(&line, "\"}");
	if (rc == DD_OK)
		rc = dd_buf_append(out, line.data, line.len);
	OPENSSL_cleanse(cek, sizeof cek);
	dd_free(body);
	dd_buf_free(&line);
	return rc;
}

dd_err_t dd_seal(const uint8_t (*rcpts)[DD_SEAL_KEY_LEN], size_t n,
		 const void *plain, size_t len, dd_buf *out)
{
	return dd_seal_with(rcpts, n, plain, len, os_random, NULL, out);
}

/* ---- parsing and opening ----------------------------------------------- */

static dd_err_t get_hex(const json_t *o, const char *key, uint8_t *out,
			size_t n)
{
	const char *s;

	if (dd_json_get_str(o, key, &s) != DD_OK || strlen(s) != 2 * n)
		return DD_ERR_INVALID;
	return dd_hex_decode(s, 2 * n, out, n) == DD_OK ? DD_OK
							: DD_ERR_INVALID;
}

static dd_err_t get_b64(const json_t *o, const char *key, dd_buf *out)
{
	const char *s;
	dd_err_t rc;

	if (dd_json_get_str(o, key, &s) != DD_OK)
		return DD_ERR_INVALID;
	rc = dd_b64_decode(DD_B64_STD, s, strlen(s), out);
	return rc == DD_OK || rc == DD_ERR_NOMEM ? rc : DD_ERR_INVALID;
}

static dd_err_t parse_stanza(const json_t *o, struct stanza *st)
{
	dd_buf wk;
	dd_err_t rc;

	if (!json_is_object(o))
		return DD_ERR_INVALID;
	dd_buf_init(&wk, WK_LEN + 3);
	rc = get_hex(o, "epk", st->epk, sizeof st->epk);
	if (rc == DD_OK)
		rc = get_hex(o, "n", st->n, sizeof st->n);
	if (rc == DD_OK)
		rc = get_b64(o, "wk", &wk);
	if (rc == DD_OK && wk.len != WK_LEN)
		rc = DD_ERR_INVALID;
	if (rc == DD_OK)
		memcpy(st->wk, wk.data, WK_LEN);
	dd_buf_free(&wk);
	return rc;
}

/* Caller frees *out with sealed_free(). */
static dd_err_t sealed_parse(const void *line, size_t len,
			     struct sealed **out)
{
	struct sealed *s = NULL;
	json_t *root = NULL, *rcpts, *v;
	dd_err_t rc = DD_ERR_INVALID;

	*out = NULL;
	if (len > DD_SEAL_MAX_LINE)
		return DD_ERR_INVALID;
	rc = dd_json_parse(line, len, DD_SEAL_MAX_LINE, &root, NULL, 0);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc || !json_is_object(root))
		goto bad;
	v = json_object_get(root, "v");
	rcpts = json_object_get(root, "rcpts");
	if (!json_is_integer(v) || json_integer_value(v) != 2 ||
	    !json_is_array(rcpts) || json_array_size(rcpts) == 0 ||
	    json_array_size(rcpts) > DD_SEAL_MAX_RECIPIENTS)
		goto bad;
	s = dd_calloc(1, sizeof *s);
	if (s == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	dd_buf_init(&s->body, len);
	s->n = json_array_size(rcpts);
	for (size_t i = 0; i < s->n; i++) {
		rc = parse_stanza(json_array_get(rcpts, i), &s->st[i]);
		if (rc == DD_ERR_NOMEM)
			goto out;
		if (rc)
			goto bad;
	}
	if (get_hex(root, "bn", s->bn, sizeof s->bn) != DD_OK)
		goto bad;
	rc = get_b64(root, "body", &s->body);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc || s->body.len < DD_SEAL_TAG_LEN)
		goto bad;
	*out = s;
	s = NULL;
	rc = DD_OK;
	goto out;
bad:
	rc = DD_ERR_INVALID;
out:
	if (s != NULL) {
		dd_buf_free(&s->body);
		dd_free(s);
	}
	json_decref(root);
	return rc;
}

static void sealed_free(struct sealed *s)
{
	if (s == NULL)
		return;
	dd_buf_free(&s->body);
	dd_free(s);
}

dd_err_t dd_seal_check(const void *line, size_t len, size_t *nrcpts)
{
	struct sealed *s = NULL;
	dd_err_t rc;

	*nrcpts = 0;
	rc = sealed_parse(line, len, &s);
	if (rc == DD_OK)
		*nrcpts = s->n;
	sealed_free(s);
	return rc;
}

/* The content key from the first stanza that opens with sk. */
static dd_err_t unwrap(const struct sealed *s,
		       const uint8_t sk[DD_SEAL_KEY_LEN],
		       uint8_t cek[DD_SEAL_KEY_LEN])
{
	uint8_t pk[DD_SEAL_KEY_LEN], shared[DD_SEAL_KEY_LEN];
	uint8_t wrap[DD_SEAL_KEY_LEN];
	dd_err_t rc;

	rc = dd_seal_public(sk, pk);
	if (rc)
		return rc;
	rc = DD_ERR_NOT_FOUND;
	for (size_t i = 0; i < s->n && rc == DD_ERR_NOT_FOUND; i++) {
		/* A low-order epk cannot be for us: try the next one. */
		if (x25519(sk, s->st[i].epk, shared) != DD_OK)
			continue;
		if (hkdf_wrap(shared, s->st[i].epk, pk, wrap) == DD_OK &&
		    aead(0, wrap, s->st[i].n, s->st[i].wk, WK_LEN, cek) ==
			    DD_OK)
			rc = DD_OK;
	}
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(wrap, sizeof wrap);
	return rc;
}

dd_err_t dd_seal_open(const uint8_t sk[DD_SEAL_KEY_LEN], const void *line,
		      size_t len, dd_buf *out)
{
	struct sealed *s = NULL;
	uint8_t cek[DD_SEAL_KEY_LEN];
	uint8_t *plain = NULL;
	size_t plen = 0;
	dd_err_t rc;

	rc = sealed_parse(line, len, &s);
	if (rc == DD_OK)
		rc = unwrap(s, sk, cek);
	if (rc)
		goto out;
	plen = s->body.len - DD_SEAL_TAG_LEN;
	plain = dd_malloc(plen + 1);
	if (plain == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	rc = aead(0, cek, s->bn, s->body.data, s->body.len, plain);
	if (rc == DD_OK)
		rc = dd_buf_append(out, plain, plen);
out:
	OPENSSL_cleanse(cek, sizeof cek);
	if (plain != NULL)
		dd_freezero(plain, plen + 1);
	sealed_free(s);
	return rc;
}

/* ---- records ----------------------------------------------------------- */

dd_err_t dd_rec_encode(uint64_t ts, dd_rec_kind kind, const void *data,
		       size_t len, dd_buf *out)
{
	dd_err_t rc;

	rc = dd_buf_appendf(out, "{\"ts\":%llu,\"kind\":\"%s\",\"data_b64\":\"",
			    (unsigned long long)ts,
			    kind == DD_REC_META ? "meta" : "pty");
	if (rc == DD_OK)
		rc = dd_b64_encode(DD_B64_STD, data, len, out);
	if (rc == DD_OK)
		rc = dd_buf_append_str(out, "\"}");
	return rc;
}

dd_err_t dd_rec_parse(const void *rec, size_t len, uint64_t *ts,
		      dd_rec_kind *kind, dd_buf *data)
{
	json_t *root = NULL;
	const char *k, *d;
	dd_err_t rc;

	rc = dd_json_parse(rec, len, DD_SEAL_MAX_LINE, &root, NULL, 0);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc || !json_is_object(root) ||
	    dd_json_get_u64(root, "ts", 0, UINT64_MAX, ts) != DD_OK ||
	    dd_json_get_str(root, "kind", &k) != DD_OK ||
	    dd_json_get_str(root, "data_b64", &d) != DD_OK) {
		rc = DD_ERR_INVALID;
		goto out;
	}
	if (strcmp(k, "meta") == 0)
		*kind = DD_REC_META;
	else if (strcmp(k, "pty") == 0 || strcmp(k, "stdout") == 0 ||
		 strcmp(k, "stderr") == 0)
		*kind = DD_REC_PTY;
	else {
		rc = DD_ERR_INVALID;
		goto out;
	}
	rc = dd_b64_decode(DD_B64_STD, d, strlen(d), data);
	if (rc != DD_OK && rc != DD_ERR_TOO_LARGE && rc != DD_ERR_NOMEM)
		rc = DD_ERR_INVALID;
out:
	json_decref(root);
	return rc;
}

dd_err_t dd_seal_replay(const uint8_t sk[DD_SEAL_KEY_LEN],
			const char *const *lines, size_t n, dd_buf *out,
			size_t *opened, size_t *skipped)
{
	dd_buf rec, data;
	dd_rec_kind kind;
	uint64_t ts;
	dd_err_t rc = DD_OK;

	*opened = *skipped = 0;
	dd_buf_init(&rec, DD_SEAL_MAX_LINE);
	dd_buf_init(&data, DD_SEAL_MAX_LINE);
	for (size_t i = 0; i < n && rc == DD_OK; i++) {
		dd_buf_reset(&rec);
		dd_buf_reset(&data);
		rc = dd_seal_open(sk, lines[i], strlen(lines[i]), &rec);
		if (rc == DD_OK)
			rc = dd_rec_parse(rec.data, rec.len, &ts, &kind, &data);
		if (rc == DD_ERR_NOMEM)
			break;
		if (rc) {
			(*skipped)++;
			rc = DD_OK;
			continue;
		}
		(*opened)++;
		if (kind == DD_REC_PTY)
			rc = dd_buf_append(out, data.data, data.len);
	}
	dd_buf_freezero(&rec);
	dd_buf_freezero(&data);
	return rc;
}
