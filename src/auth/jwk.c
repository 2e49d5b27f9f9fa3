#include "auth/jwk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/json.h"

struct dd_jwk {
	char *kid;
	size_t kid_len;
	char *use;              /* NULL or "sig" */
	dd_jwa alg;             /* 0 when the JWK names none */
	dd_jwk_type type;
	int bits;
	EVP_PKEY *pkey;
};

struct dd_jwks {
	unsigned refs;
	size_t n;
	dd_jwk keys[];          /* room for every member of "keys" */
};

/* ---- algorithms ---- */

static const struct {
	dd_jwa alg;
	const char *name;
} jwa_table[] = {
	{DD_JWA_RS256, "RS256"}, {DD_JWA_RS384, "RS384"},
	{DD_JWA_RS512, "RS512"}, {DD_JWA_PS256, "PS256"},
	{DD_JWA_PS384, "PS384"}, {DD_JWA_PS512, "PS512"},
	{DD_JWA_ES256, "ES256"}, {DD_JWA_ES384, "ES384"},
};

dd_jwa dd_jwa_parse(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof jwa_table / sizeof jwa_table[0]; i++) {
		if (n == 5 && memcmp(s, jwa_table[i].name, 5) == 0)
			return jwa_table[i].alg;
	}
	return 0;
}

const char *dd_jwa_name(dd_jwa alg)
{
	for (size_t i = 0; i < sizeof jwa_table / sizeof jwa_table[0]; i++) {
		if (jwa_table[i].alg == alg)
			return jwa_table[i].name;
	}
	return "?";
}

int dd_jwa_fits(dd_jwa alg, dd_jwk_type type)
{
	switch (type) {
	case DD_JWK_RSA:
		return alg != 0 && (alg & ~(unsigned)DD_JWA_ALL_RSA) == 0 &&
		       (alg & (alg - 1)) == 0;
	case DD_JWK_EC_P256:
		return alg == DD_JWA_ES256;
	case DD_JWK_EC_P384:
		return alg == DD_JWA_ES384;
	}
	return 0;
}

/* ---- helpers ---- */

static void say(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/*
 * An optional string member: DD_OK with *out set, DD_OK with *out NULL
 * when absent, INVALID when present but not a clean string.
 */
static dd_err_t opt_str(const json_t *o, const char *key, const char **out)
{
	dd_err_t rc;

	*out = NULL;
	rc = dd_json_get_str(o, key, out);
	if (rc == DD_ERR_NOT_FOUND) {
		*out = NULL;
		return DD_OK;
	}
	return rc;
}

/*
 * Decodes a required base64url member into b, which this (re)initialises;
 * the caller frees it on every path. INVALID (with a reason) when absent,
 * mistyped, badly encoded or longer than max bytes.
 */
static dd_err_t get_b64(const json_t *o, const char *key, size_t idx,
			dd_buf *b, size_t max, char *why, size_t why_len)
{
	const char *s = NULL;
	dd_err_t rc;

	rc = dd_json_get_str(o, key, &s);
	if (rc) {
		say(why, why_len, "keys[%zu]: \"%s\" is missing or not a "
		    "string", idx, key);
		return DD_ERR_INVALID;
	}
	/* The codec reserves a little beyond the exact size: slack of 2. */
	dd_buf_init(b, max + 2);
	rc = dd_b64_decode(DD_B64_URL, s, strlen(s), b);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc == DD_ERR_TOO_LARGE || (rc == DD_OK && b->len > max)) {
		say(why, why_len, "keys[%zu]: \"%s\" is too long", idx, key);
		return DD_ERR_INVALID;
	}
	if (rc) {
		say(why, why_len, "keys[%zu]: \"%s\" is not canonical "
		    "unpadded base64url", idx, key);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

/* Imports public parameters into a new EVP_PKEY of the named type. */
static dd_err_t from_params(const char *type, OSSL_PARAM_BLD *bld,
			    EVP_PKEY **out)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	params = OSSL_PARAM_BLD_to_param(bld);
	if (params == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (ctx == NULL)
		goto out;
	rc = DD_ERR_INVALID;
	if (EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	rc = DD_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

/* ---- RSA ---- */

static dd_err_t rsa_import(const json_t *o, size_t idx, dd_jwk *k,
			   char *why, size_t why_len)
{
	dd_buf nb, eb;
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	dd_err_t rc;

	dd_buf_init(&nb, 1);
	dd_buf_init(&eb, 1);
	/* One spare byte: some issuers keep a leading zero on n. */
	rc = get_b64(o, "n", idx, &nb, DD_JWK_MAX_RSA_BITS / 8 + 1, why,
		     why_len);
	if (rc)
		goto out;
	rc = get_b64(o, "e", idx, &eb, 8, why, why_len);
	if (rc)
		goto out;
	rc = DD_ERR_NOMEM;
	n = BN_bin2bn(nb.data, (int)nb.len, NULL);
	e = BN_bin2bn(eb.data, (int)eb.len, NULL);
	if (n == NULL || e == NULL)
		goto out;
	rc = DD_ERR_INVALID;
	k->bits = BN_num_bits(n);
	if (k->bits < DD_JWK_MIN_RSA_BITS || k->bits > DD_JWK_MAX_RSA_BITS) {
		say(why, why_len, "keys[%zu]: RSA modulus of %d bits is "
		    "outside %d..%d", idx, k->bits, DD_JWK_MIN_RSA_BITS,
		    DD_JWK_MAX_RSA_BITS);
		goto out;
	}
	/* An even modulus or exponent cannot be a working RSA key. */
	if (!BN_is_odd(n) || !BN_is_odd(e) || BN_num_bits(e) < 2) {
		say(why, why_len, "keys[%zu]: RSA modulus or exponent is not "
		    "a valid RSA value", idx);
		goto out;
	}
	rc = DD_ERR_NOMEM;
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL)
		goto out;
	if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
		goto out;
	rc = from_params("RSA", bld, &k->pkey);
	if (rc == DD_ERR_INVALID)
		say(why, why_len, "keys[%zu]: OpenSSL refused the RSA key",
		    idx);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	dd_buf_free(&nb);
	dd_buf_free(&eb);
	return rc;
}

/* ---- EC ---- */

static dd_err_t ec_check(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = NULL;
	dd_err_t rc = DD_ERR_NOMEM;

	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (ctx == NULL)
		goto out;
	/*
	 * Import already refuses points off the curve; this adds the
	 * point-at-infinity and group-order checks of SP 800-56A.
	 */
	rc = EVP_PKEY_public_check(ctx) == 1 ? DD_OK : DD_ERR_INVALID;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static dd_err_t ec_import(const json_t *o, size_t idx, dd_jwk *k,
			  char *why, size_t why_len)
{
	const char *group = k->type == DD_JWK_EC_P256 ? "P-256" : "P-384";
	size_t fb = k->type == DD_JWK_EC_P256 ? 32 : 48;
	uint8_t pt[1 + 2 * 48];
	OSSL_PARAM_BLD *bld = NULL;
	dd_buf xb, yb;
	dd_err_t rc;

	dd_buf_init(&xb, 1);
	dd_buf_init(&yb, 1);
	rc = get_b64(o, "x", idx, &xb, fb, why, why_len);
	if (rc)
		goto out;
	rc = get_b64(o, "y", idx, &yb, fb, why, why_len);
	if (rc)
		goto out;
	/* RFC 7518 6.2.1.2: coordinates are always the full field size. */
	if (xb.len != fb || yb.len != fb) {
		say(why, why_len, "keys[%zu]: EC coordinates must be %zu "
		    "bytes each", idx, fb);
		rc = DD_ERR_INVALID;
		goto out;
	}
	pt[0] = 0x04; /* uncompressed point: 0x04 || x || y */
	memcpy(pt + 1, xb.data, fb);
	memcpy(pt + 1 + fb, yb.data, fb);
	k->bits = (int)fb * 8;
	rc = DD_ERR_NOMEM;
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL)
		goto out;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
					     1 + 2 * fb) != 1)
		goto out;
	rc = from_params("EC", bld, &k->pkey);
	if (rc == DD_OK)
		rc = ec_check(k->pkey);
	if (rc == DD_ERR_INVALID)
		say(why, why_len, "keys[%zu]: EC point is not on %s", idx,
		    group);
out:
	OSSL_PARAM_BLD_free(bld);
	dd_buf_free(&xb);
	dd_buf_free(&yb);
	return rc;
}

/* ---- one member of "keys" ---- */

static void jwk_clear(dd_jwk *k)
{
	dd_free(k->kid);
	dd_free(k->use);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof *k);
}

/* Whether an optional "key_ops" allows verification; INVALID if bad. */
static dd_err_t key_ops_verify(const json_t *o, int *ok)
{
	const json_t *ops = json_object_get(o, "key_ops"), *v;
	size_t i;

	*ok = 1;
	if (ops == NULL)
		return DD_OK;
	if (!json_is_array(ops))
		return DD_ERR_INVALID;
	*ok = 0;
	json_array_foreach(ops, i, v) {
		if (!json_is_string(v))
			return DD_ERR_INVALID;
		if (strcmp(json_string_value(v), "verify") == 0)
			*ok = 1;
	}
	return DD_OK;
}

/*
 * Parses member idx into k. DD_OK with *kept 0 means "not for us";
 * errors refuse the whole document. k is cleared on every path but the
 * kept one.
 */
static dd_err_t parse_key(const json_t *o, size_t idx, dd_jwk *k, int *kept,
			  char *why, size_t why_len)
{
	const char *kty = NULL, *kid = NULL, *use = NULL, *alg = NULL;
	const char *crv = NULL;
	int ops_ok = 1;
	dd_err_t rc;

	*kept = 0;
	memset(k, 0, sizeof *k);
	rc = DD_ERR_INVALID;
	if (!json_is_object(o)) {
		say(why, why_len, "keys[%zu] is not an object", idx);
		goto out;
	}
	if (dd_json_get_str(o, "kty", &kty) != DD_OK) {
		say(why, why_len, "keys[%zu]: \"kty\" is missing or not a "
		    "string", idx);
		goto out;
	}
	rc = DD_OK;
	if (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0)
		goto out;
	rc = opt_str(o, "kid", &kid);
	if (rc == DD_OK)
		rc = opt_str(o, "use", &use);
	if (rc == DD_OK)
		rc = opt_str(o, "alg", &alg);
	if (rc == DD_OK)
		rc = key_ops_verify(o, &ops_ok);
	if (rc) {
		say(why, why_len, "keys[%zu]: \"kid\", \"use\", \"alg\" or "
		    "\"key_ops\" has the wrong type", idx);
		goto out;
	}
	if (kid != NULL && (kid[0] == '\0' || strlen(kid) > DD_JWK_MAX_KID)) {
		say(why, why_len, "keys[%zu]: \"kid\" is empty or longer than "
		    "%u bytes", idx, DD_JWK_MAX_KID);
		rc = DD_ERR_INVALID;
		goto out;
	}
	if (alg != NULL) {
		k->alg = dd_jwa_parse(alg, strlen(alg));
		if (k->alg == 0)
			goto out;
	}
	if (kid == NULL || (use != NULL && strcmp(use, "sig") != 0) ||
	    !ops_ok)
		goto out;
	if (strcmp(kty, "RSA") == 0) {
		k->type = DD_JWK_RSA;
	} else {
		rc = dd_json_get_str(o, "crv", &crv);
		if (rc) {
			say(why, why_len, "keys[%zu]: \"crv\" is missing or "
			    "not a string", idx);
			rc = DD_ERR_INVALID;
			goto out;
		}
		if (strcmp(crv, "P-256") == 0)
			k->type = DD_JWK_EC_P256;
		else if (strcmp(crv, "P-384") == 0)
			k->type = DD_JWK_EC_P384;
		else
			goto out;
	}
	if (k->alg != 0 && !dd_jwa_fits(k->alg, k->type)) {
		say(why, why_len, "keys[%zu]: \"alg\" %s does not fit a %s key",
		    idx, dd_jwa_name(k->alg), k->type == DD_JWK_RSA ? "RSA" :
		    "EC");
		rc = DD_ERR_INVALID;
		goto out;
	}
	if (k->type == DD_JWK_RSA)
		rc = rsa_import(o, idx, k, why, why_len);
	else
		rc = ec_import(o, idx, k, why, why_len);
	if (rc)
		goto out;
	rc = DD_ERR_NOMEM;
	k->kid_len = strlen(kid);
	k->kid = dd_strndup(kid, k->kid_len);
	if (k->kid == NULL)
		goto out;
	if (use != NULL) {
		k->use = dd_strdup(use);
		if (k->use == NULL)
			goto out;
	}
	*kept = 1;
	rc = DD_OK;
out:
	if (!*kept)
		jwk_clear(k);
	return rc;
}

/* ---- sets ---- */

dd_err_t dd_jwks_parse(const void *data, size_t len, size_t max,
		       dd_jwks **out, char *why, size_t why_len)
{
	json_t *doc = NULL;
	const json_t *keys;
	dd_jwks *set = NULL;
	size_t n;
	int kept;
	dd_err_t rc;

	*out = NULL;
	say(why, why_len, "%s", "");
	if (max == 0)
		max = DD_JWKS_MAX_BYTES;
	rc = dd_json_parse(data, len, max, &doc, why, why_len);
	if (rc)
		goto out;
	rc = DD_ERR_INVALID;
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		say(why, why_len, "JWKS has no \"keys\" array");
		goto out;
	}
	n = json_array_size(keys);
	if (n > DD_JWKS_MAX_KEYS) {
		say(why, why_len, "JWKS has more than %u keys",
		    DD_JWKS_MAX_KEYS);
		rc = DD_ERR_TOO_LARGE;
		goto out;
	}
	rc = DD_ERR_NOMEM;
	set = dd_calloc(1, sizeof *set + n * sizeof set->keys[0]);
	if (set == NULL)
		goto out;
	set->refs = 1;
	for (size_t i = 0; i < n; i++) {
		dd_jwk *k = &set->keys[set->n];

		rc = parse_key(json_array_get(keys, i), i, k, &kept, why,
			       why_len);
		if (rc)
			goto out;
		if (!kept)
			continue;
		if (dd_jwks_find(set, k->kid, k->kid_len) != NULL) {
			say(why, why_len, "keys[%zu]: duplicate \"kid\"", i);
			jwk_clear(k);
			rc = DD_ERR_INVALID;
			goto out;
		}
		set->n++;
	}
	*out = set;
	set = NULL; /* transferred */
	rc = DD_OK;
out:
	/* Failed imports leave errors that would confuse later TLS calls. */
	if (rc)
		ERR_clear_error();
	dd_jwks_free(set);
	json_decref(doc);
	return rc;
}

dd_jwks *dd_jwks_ref(dd_jwks *set)
{
	set->refs++;
	return set;
}

void dd_jwks_free(dd_jwks *set)
{
	if (set == NULL || --set->refs > 0)
		return;
	for (size_t i = 0; i < set->n; i++)
		jwk_clear(&set->keys[i]);
	dd_free(set);
}

size_t dd_jwks_count(const dd_jwks *set)
{
	return set->n;
}

const dd_jwk *dd_jwks_at(const dd_jwks *set, size_t i)
{
	return i < set->n ? &set->keys[i] : NULL;
}

const dd_jwk *dd_jwks_find(const dd_jwks *set, const char *kid,
			   size_t kid_len)
{
	for (size_t i = 0; i < set->n; i++) {
		const dd_jwk *k = &set->keys[i];

		if (k->kid_len == kid_len && memcmp(k->kid, kid, kid_len) == 0)
			return k;
	}
	return NULL;
}

const char *dd_jwk_kid(const dd_jwk *k)
{
	return k->kid;
}

dd_jwk_type dd_jwk_get_type(const dd_jwk *k)
{
	return k->type;
}

dd_jwa dd_jwk_alg(const dd_jwk *k)
{
	return k->alg;
}

const char *dd_jwk_use(const dd_jwk *k)
{
	return k->use;
}

int dd_jwk_bits(const dd_jwk *k)
{
	return k->bits;
}

EVP_PKEY *dd_jwk_pkey(const dd_jwk *k)
{
	return k->pkey;
}
