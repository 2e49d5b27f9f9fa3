#include "auth/oidc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth/jwks_cache.h"
#include "core/alloc.h"
#include "core/cursor.h"
#include "core/strutil.h"

#define DEFAULT_MAX_AGE_S 900u
#define DEFAULT_LEEWAY_S 60u
#define DEFAULT_REPLAY_CAPACITY 65536u

struct dd_oidc {
	dd_jwks_cache *keys;
	dd_replay *seen;
	char *issuer;
	char *audience;
	dd_jwt_policy pol;      /* the cache borrows it while checks wait */
	int dying;              /* in dd_oidc_free: callbacks may call it too */
};

/* One check waiting for its key: everything the verdict needs. */
typedef struct pending {
	dd_oidc *o;
	dd_oidc_cb cb;
	void *ud;
	int64_t now;
	size_t n;
	dd_principal accepted[];
} pending;

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

static dd_err_t jwt_fail(dd_jwt_result *res, dd_jwt_reason r,
			 const char *text)
{
	res->reason = r;
	snprintf(res->why, sizeof res->why, "%s", text);
	return dd_jwt_reason_err(r);
}

static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t u_sat(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* ---- statuses ---- */

static const struct {
	const char *name;
	int http;
} statuses[] = {
	[DD_OIDC_OK] = {"ok", 200},
	[DD_OIDC_NO_TOKEN] = {"no_token", 401},
	[DD_OIDC_BAD_TOKEN] = {"bad_token", 401},
	[DD_OIDC_KEYS_UNAVAILABLE] = {"keys_unavailable", 502},
	[DD_OIDC_WRONG_OWNER] = {"wrong_owner", 403},
	[DD_OIDC_REPLAYED] = {"replayed", 401},
	[DD_OIDC_BUSY] = {"busy", 503},
	[DD_OIDC_INTERNAL] = {"internal", 500},
};

int dd_oidc_http_status(dd_oidc_status s)
{
	if ((unsigned)s > DD_OIDC_INTERNAL)
		return 500;
	return statuses[s].http;
}

const char *dd_oidc_status_name(dd_oidc_status s)
{
	if ((unsigned)s > DD_OIDC_INTERNAL)
		return "unknown";
	return statuses[s].name;
}

/* ---- bearer ---- */

static int is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

dd_err_t dd_oidc_bearer(const char *authorization, const char **tok,
			size_t *tok_len, char *why, size_t why_len)
{
	const char *s = authorization;
	const uint8_t *scheme;
	size_t n;
	dd_cursor c;
	uint8_t ch;

	*tok = NULL;
	*tok_len = 0;
	if (s == NULL) {
		say(why, why_len, "no Authorization header");
		return DD_ERR_INVALID;
	}
	n = strlen(s);
	dd_str_trim(&s, &n);
	dd_cur_init(&c, s, n);
	if (n == 0) {
		say(why, why_len, "the Authorization header is empty");
		return DD_ERR_INVALID;
	}
	if (dd_cur_get_span(&c, 6, &scheme) != DD_OK ||
	    (memcmp(scheme, "Bearer", 6) != 0 &&
	     memcmp(scheme, "bearer", 6) != 0)) {
		say(why, why_len, "Authorization is not a Bearer credential");
		return DD_ERR_INVALID;
	}
	if (dd_cur_get_u8(&c, &ch) != DD_OK) {
		say(why, why_len, "the bearer token is empty");
		return DD_ERR_INVALID;
	}
	if (!is_blank(ch)) {
		say(why, why_len, "Authorization is not a Bearer credential");
		return DD_ERR_INVALID;
	}
	while (dd_cur_remaining(&c) > 0 && is_blank(*dd_cur_ptr(&c)))
		(void)dd_cur_skip(&c, 1);
	/* Trimmed above, so whatever is left is the token. */
	*tok = (const char *)dd_cur_ptr(&c);
	*tok_len = dd_cur_remaining(&c);
	return DD_OK;
}

/* ---- claims ---- */

/* An identity claim is exact or absent: a cut name could match another. */
static void copy_ident(const json_t *claims, const char *key, char *dst,
		       size_t cap)
{
	const json_t *v = json_object_get(claims, key);
	const char *s;
	size_t len;

	dst[0] = '\0';
	if (!json_is_string(v))
		return;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len >= cap || strlen(s) != len)
		return;
	memcpy(dst, s, len + 1);
}

/* A descriptive claim is cut to fit, never inside a UTF-8 sequence. */
static void copy_text(const json_t *claims, const char *key, char *dst,
		      size_t cap)
{
	const json_t *v = json_object_get(claims, key);
	const char *s;
	size_t len;

	dst[0] = '\0';
	if (!json_is_string(v))
		return;
	s = json_string_value(v);
	len = strnlen(s, json_string_length(v));
	if (len >= cap) {
		len = cap - 1;
		/* s[len] is the first byte left out; drop its lead too. */
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* GitHub's numeric ids: a positive JSON integer or canonical decimal text. */
static uint64_t get_id(const json_t *claims, const char *key)
{
	const json_t *v = json_object_get(claims, key);
	json_int_t i;
	uint64_t id = 0;
	const char *s;
	size_t len;

	if (json_is_integer(v)) {
		i = json_integer_value(v);
		return i > 0 ? (uint64_t)i : 0;
	}
	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	len = json_string_length(v);
	/* "065" would be the same number, but GitHub never writes it. */
	if (len == 0 || s[0] == '0')
		return 0;
	if (dd_parse_u64n(s, len, 1, UINT64_MAX, &id) != DD_OK)
		return 0;
	return id;
}

/* A NumericDate, reals rounded up (only the replay record uses it). */
static int64_t get_time(const json_t *claims, const char *key)
{
	const json_t *v = json_object_get(claims, key);
	double d;
	int64_t t;

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (!json_is_real(v))
		return 0;
	d = json_real_value(v);
	if (!isfinite(d))
		return 0;
	if (d >= 9.2e18)
		return INT64_MAX;
	if (d <= -9.2e18)
		return INT64_MIN;
	t = (int64_t)d;
	if ((double)t < d)
		t++;
	return t;
}

dd_err_t dd_oidc_claims_parse(const json_t *claims, dd_oidc_claims *out,
			      dd_jwt_result *res)
{
	const json_t *jti = json_object_get(claims, "jti");
	size_t len;

	memset(out, 0, sizeof *out);
	out->matched = -1;
	res->reason = DD_JWT_OK;
	res->why[0] = '\0';
	if (jti == NULL)
		return jwt_fail(res, DD_JWT_MISSING_CLAIM, "\"jti\" is "
				"missing, so the token could be replayed");
	if (!json_is_string(jti))
		return jwt_fail(res, DD_JWT_MALFORMED, "\"jti\" is not a "
				"string");
	len = json_string_length(jti);
	if (len == 0)
		return jwt_fail(res, DD_JWT_MISSING_CLAIM, "\"jti\" is empty, "
				"so the token could be replayed");
	if (len > DD_REPLAY_MAX_ID || strlen(json_string_value(jti)) != len)
		return jwt_fail(res, DD_JWT_MALFORMED, "\"jti\" is longer "
				"than 256 bytes or holds a NUL");
	memcpy(out->jti, json_string_value(jti), len + 1);
	copy_ident(claims, "repository", out->repository,
		   sizeof out->repository);
	copy_ident(claims, "repository_owner", out->repository_owner,
		   sizeof out->repository_owner);
	out->repository_id = get_id(claims, "repository_id");
	out->repository_owner_id = get_id(claims, "repository_owner_id");
	copy_text(claims, "sub", out->sub, sizeof out->sub);
	copy_text(claims, "ref", out->ref, sizeof out->ref);
	copy_text(claims, "workflow", out->workflow, sizeof out->workflow);
	copy_text(claims, "actor", out->actor, sizeof out->actor);
	out->iat = get_time(claims, "iat");
	out->exp = get_time(claims, "exp");
	return DD_OK;
}

/* ---- principals ---- */

int dd_oidc_match(const dd_oidc_claims *c, const dd_principal *accepted,
		  size_t n, char *why, size_t why_len)
{
	const dd_principal *by_name = NULL, *by_id = NULL;
	const char *name;
	uint64_t id;
	int name_eq, id_eq;

	say(why, why_len, "%s", "");
	for (size_t i = 0; i < n; i++) {
		const dd_principal *p = &accepted[i];

		if (p->kind == DD_PRINCIPAL_REPO) {
			name = c->repository;
			id = c->repository_id;
		} else {
			name = c->repository_owner;
			id = c->repository_owner_id;
		}
		name_eq = p->name[0] != '\0' && strcmp(name, p->name) == 0;
		id_eq = p->id != 0 && id == p->id;
		if (name_eq && id_eq)
			return i <= (size_t)INT32_MAX ? (int)i : -1;
		if (name_eq && by_name == NULL)
			by_name = p;
		if (id_eq && by_id == NULL)
			by_id = p;
	}
	/* Say how close it came: a half match is a rename or a squatter. */
	if (by_name != NULL) {
		const char *what = by_name->kind == DD_PRINCIPAL_REPO ?
			"repository" : "repository_owner";

		id = by_name->kind == DD_PRINCIPAL_REPO ? c->repository_id :
			c->repository_owner_id;
		if (id == 0)
			say(why, why_len, "%s is %s but the token has no "
			    "usable %s_id", what, by_name->name, what);
		else
			say(why, why_len, "%s is %s but %s_id is %llu, not "
			    "%llu (deleted and re-registered?)", what,
			    by_name->name, what, (unsigned long long)id,
			    (unsigned long long)by_name->id);
	} else if (by_id != NULL) {
		const char *what = by_id->kind == DD_PRINCIPAL_REPO ?
			"repository" : "repository_owner";

		say(why, why_len, "%s_id is %llu but %s is not %s (renamed?)",
		    what, (unsigned long long)by_id->id, what, by_id->name);
	} else {
		say(why, why_len, "not an accepted principal (repository_owner"
		    "_id %llu, repository_id %llu)",
		    (unsigned long long)c->repository_owner_id,
		    (unsigned long long)c->repository_id);
	}
	return -1;
}

/* ---- verification ---- */

/*
 * When the replay record may go: the first second at which the token
 * fails dd_jwt_check_claims() whatever the clock skew, by expiry or age.
 */
static int64_t keep_until(const dd_oidc *o, const dd_oidc_claims *c)
{
	int64_t lw = u_sat(o->pol.leeway_s);
	int64_t by_exp = add_sat(c->exp, lw);
	int64_t by_age = add_sat(add_sat(add_sat(c->iat,
						 u_sat(o->pol.max_age_s)),
					 lw), 1);

	return by_exp < by_age ? by_exp : by_age;
}

/* Steps 3 and 4, on claims whose signature and times passed. */
static void decide(pending *p, const json_t *claims, dd_oidc_result *r)
{
	dd_oidc *o = p->o;
	dd_oidc_claims *c = &r->claims;
	int idx;
	dd_err_t rc;

	rc = dd_oidc_claims_parse(claims, c, &r->jwt);
	if (rc) {
		r->status = DD_OIDC_BAD_TOKEN;
		say(r->why, sizeof r->why, "token refused (%s): %s",
		    dd_jwt_reason_name(r->jwt.reason), r->jwt.why);
		return;
	}
	idx = dd_oidc_match(c, p->accepted, p->n, r->why, sizeof r->why);
	if (idx < 0) {
		r->status = DD_OIDC_WRONG_OWNER;
		return;
	}
	rc = dd_replay_use(o->seen, c->jti, strlen(c->jti), keep_until(o, c),
			   p->now);
	switch (rc) {
	case DD_OK:
		c->matched = idx;
		r->status = DD_OIDC_OK;
		break;
	case DD_ERR_EXISTS:
		r->status = DD_OIDC_REPLAYED;
		say(r->why, sizeof r->why, "this token (its \"jti\") was "
		    "already used");
		break;
	case DD_ERR_BUSY:
		r->status = DD_OIDC_BUSY;
		say(r->why, sizeof r->why, "too many recent tokens to guard "
		    "against replay; retry later");
		break;
	default:
		r->status = DD_OIDC_INTERNAL;
		say(r->why, sizeof r->why, "recording the token's \"jti\" "
		    "failed: %s", dd_strerror(rc));
		break;
	}
}

/* The JWT step refused, or the key lookup could not finish. */
static void refused(dd_err_t err, dd_oidc_result *r)
{
	if (err == DD_ERR_CANCELLED) {
		r->status = DD_OIDC_INTERNAL;
		say(r->why, sizeof r->why, "verification cancelled");
	} else if (err == DD_ERR_NOMEM) {
		r->status = DD_OIDC_INTERNAL;
		say(r->why, sizeof r->why, "out of memory");
	} else if (r->jwt.reason == DD_JWT_KEYS_UNAVAILABLE) {
		r->status = DD_OIDC_KEYS_UNAVAILABLE;
		say(r->why, sizeof r->why, "the issuer's signing keys "
		    "(JWKS) could not be fetched");
	} else if (r->jwt.reason == DD_JWT_INTERNAL ||
		   r->jwt.reason == DD_JWT_OK) {
		r->status = DD_OIDC_INTERNAL;
		say(r->why, sizeof r->why, "verification failed: %s",
		    dd_strerror(err));
	} else {
		r->status = DD_OIDC_BAD_TOKEN;
		say(r->why, sizeof r->why, "token refused (%s): %s",
		    dd_jwt_reason_name(r->jwt.reason), r->jwt.why);
	}
}

/*
 * The cache's verdict. On any error but DD_OK the dd_oidc may already be
 * gone (CANCELLED from dd_oidc_free), so only p is touched then.
 */
static void judge(dd_err_t err, json_t *claims, const dd_jwt_result *res,
		  void *ud)
{
	pending *p = ud;
	dd_oidc_result r;

	memset(&r, 0, sizeof r);
	r.claims.matched = -1;
	if (res != NULL)
		r.jwt = *res;
	if (err == DD_OK)
		decide(p, claims, &r);
	else
		refused(err, &r);
	/* cb may free the dd_oidc: nothing but p after this. */
	p->cb(&r, p->ud);
	dd_free(p);
}

dd_err_t dd_oidc_verify(dd_oidc *o, const char *authorization,
			const dd_principal *accepted, size_t n_accepted,
			int64_t now, dd_oidc_cb cb, void *ud)
{
	pending *p = NULL;
	dd_oidc_result r;
	const char *tok;
	size_t len;
	dd_err_t rc;

	if (accepted == NULL || n_accepted == 0 ||
	    n_accepted > DD_OIDC_MAX_ACCEPTED)
		return DD_ERR_INVALID;
	memset(&r, 0, sizeof r);
	r.claims.matched = -1;
	rc = dd_oidc_bearer(authorization, &tok, &len, r.why, sizeof r.why);
	if (rc) {
		r.status = DD_OIDC_NO_TOKEN;
		cb(&r, ud);
		return DD_OK;
	}
	p = dd_malloc(sizeof *p + n_accepted * sizeof p->accepted[0]);
	if (p == NULL)
		return DD_ERR_NOMEM;
	p->o = o;
	p->cb = cb;
	p->ud = ud;
	p->now = now;
	p->n = n_accepted;
	memcpy(p->accepted, accepted, n_accepted * sizeof p->accepted[0]);
	rc = dd_jwks_cache_verify(o->keys, tok, len, &o->pol, now, judge, p,
				  NULL);
	/* On DD_OK judge owns p, and o may be gone already. */
	if (rc)
		dd_free(p);
	return rc;
}

/* ---- lifetime ---- */

const char *dd_oidc_issuer(const dd_oidc *o)
{
	return o->issuer;
}

dd_err_t dd_oidc_new(uv_loop_t *loop, dd_httpc *http,
		     const dd_oidc_opts *opts, dd_oidc **out)
{
	static const dd_oidc_opts none = {0};
	const dd_oidc_opts *op = opts != NULL ? opts : &none;
	const char *iss = op->issuer ? op->issuer : DD_OIDC_DEFAULT_ISSUER;
	const char *aud = op->audience ? op->audience :
					 DD_OIDC_DEFAULT_AUDIENCE;
	dd_jwks_cache_opts ko = {
		.url = op->jwks_url ? op->jwks_url : DD_OIDC_DEFAULT_JWKS,
		.refresh_interval_ms = op->jwks_refresh_ms,
	};
	size_t cap = op->replay_capacity ? op->replay_capacity :
					   DEFAULT_REPLAY_CAPACITY;
	dd_oidc *o = NULL;
	dd_err_t rc;

	*out = NULL;
	if (iss[0] == '\0' || aud[0] == '\0')
		return DD_ERR_CONFIG;
	o = dd_calloc(1, sizeof *o);
	if (o == NULL)
		return DD_ERR_NOMEM;
	rc = DD_ERR_NOMEM;
	o->issuer = dd_strdup(iss);
	o->audience = dd_strdup(aud);
	if (o->issuer == NULL || o->audience == NULL)
		goto out;
	rc = dd_replay_new(cap, &o->seen);
	if (rc == DD_ERR_INVALID)
		rc = DD_ERR_CONFIG;
	if (rc)
		goto out;
	rc = dd_jwks_cache_new(loop, http, &ko, &o->keys);
	if (rc)
		goto out;
	/* GitHub signs with RS256 alone; anything else is not GitHub. */
	o->pol.algs = DD_JWA_RS256;
	o->pol.issuer = o->issuer;
	o->pol.audience = o->audience;
	o->pol.leeway_s = op->leeway_s ? op->leeway_s : DEFAULT_LEEWAY_S;
	o->pol.max_age_s = op->max_age_s ? op->max_age_s : DEFAULT_MAX_AGE_S;
	o->pol.max_len = DD_OIDC_MAX_TOKEN;
	*out = o;
	o = NULL; /* transferred */
out:
	dd_oidc_free(o);
	return rc;
}

void dd_oidc_free(dd_oidc *o)
{
	if (o == NULL || o->dying)
		return;
	o->dying = 1;
	/* Waiting checks hear CANCELLED here and never touch o again. */
	dd_jwks_cache_free(o->keys);
	dd_replay_free(o->seen);
	dd_free(o->issuer);
	dd_free(o->audience);
	dd_free(o);
}
