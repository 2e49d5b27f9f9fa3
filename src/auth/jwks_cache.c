#include "auth/jwks_cache.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

struct dd_jwks_wait {
	dd_jwks_cache *c;
	dd_jwks_wait *prev, *next;
	dd_jwks_wait **head;    /* the list it is on */
	const char *kid;        /* kid_own, or borrowed from jwt */
	size_t kid_len;
	char *kid_own;          /* get only */
	dd_jwt *jwt;            /* verify only */
	const dd_jwt_policy *pol;
	int64_t now;
	dd_jwks_cache_cb cb;
	dd_jwks_verify_cb vcb;
	void *ud;
};

struct dd_jwks_cache {
	uv_loop_t *loop;
	dd_httpc *http;
	char *url;
	uint64_t refresh_ms;
	uint64_t retry_ms;
	uint64_t max_age_ms;
	uint64_t timeout_ms;
	size_t max_bytes;
	unsigned max_waiters;
	dd_jwks *set;           /* NULL until the first good fetch */
	uint64_t set_at;        /* loop time the set was installed */
	dd_httpc_req *req;      /* the fetch in flight */
	uint64_t last_start;    /* loop time the last fetch started */
	dd_err_t last_err;      /* of the last completed fetch */
	uint64_t fetches;
	uint64_t failures;
	dd_jwks_wait *waiters;  /* waiting for the fetch in flight */
	dd_jwks_wait *answering; /* taken off waiters, being answered */
	unsigned n_wait;
	unsigned busy;          /* callbacks running */
	int dead;               /* free requested */
};

static void wait_link(dd_jwks_wait **head, dd_jwks_wait *w)
{
	w->head = head;
	w->prev = NULL;
	w->next = *head;
	if (*head != NULL)
		(*head)->prev = w;
	*head = w;
}

static void wait_unlink(dd_jwks_wait *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		*w->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->head = NULL;
}

static void wait_free(dd_jwks_wait *w)
{
	if (w == NULL)
		return;
	dd_free(w->kid_own);
	dd_jwt_free(w->jwt);
	dd_free(w);
}

/* ---- answering ---- */

static void verdict(dd_jwt_result *res, dd_jwt_reason r, const char *why)
{
	res->reason = r;
	snprintf(res->why, sizeof res->why, "%s", why);
}

/* Runs w's callback for a lookup outcome and frees w. */
static void finish(dd_jwks_cache *c, dd_jwks_wait *w, dd_err_t err,
		   const dd_jwk *key)
{
	dd_jwt_result res = {.reason = DD_JWT_OK};
	json_t *claims = NULL;
	dd_err_t rc = err;

	c->busy++;
	if (w->vcb == NULL) {
		w->cb(err, key, w->ud);
		goto out;
	}
	if (err == DD_OK) {
		rc = dd_jwt_verify_signature(w->jwt, key, &res);
		if (rc == DD_OK)
			rc = dd_jwt_check_claims(w->jwt, w->pol, w->now, &res);
		if (rc == DD_OK)
			rc = dd_jwt_claims(w->jwt, &claims);
	} else if (err == DD_ERR_NOT_FOUND) {
		verdict(&res, DD_JWT_UNKNOWN_KID, "kid not in the issuer's "
			"JWKS");
	} else if (err == DD_ERR_CANCELLED) {
		verdict(&res, DD_JWT_INTERNAL, "verification cancelled");
	} else {
		verdict(&res, DD_JWT_KEYS_UNAVAILABLE, "the issuer's JWKS "
			"could not be fetched");
		rc = DD_ERR_UPSTREAM;
	}
	w->vcb(rc, claims, &res, w->ud);
	json_decref(claims);
out:
	c->busy--;
	wait_free(w);
}

/* What a lookup for an absent kid says when no fetch can help now. */
static dd_err_t miss_err(const dd_jwks_cache *c)
{
	return c->last_err != DD_OK ? c->last_err : DD_ERR_NOT_FOUND;
}

/*
 * Answers every waiter that no fetch will help any more: all of them
 * once the fetch completed, or when the cache is being freed. Callbacks
 * may start lookups (they wait for a new fetch), cancel waiters or free
 * the cache.
 */
static void answer_waiters(dd_jwks_cache *c)
{
	dd_jwks *set = c->set != NULL ? dd_jwks_ref(c->set) : NULL;
	const dd_jwk *key;
	dd_jwks_wait *w;
	dd_err_t err;

	c->busy++;
	for (;;) {
		if (c->answering == NULL && (c->req == NULL || c->dead)) {
			while (c->waiters != NULL) {
				w = c->waiters;
				wait_unlink(w);
				wait_link(&c->answering, w);
			}
		}
		w = c->answering;
		if (w == NULL)
			break;
		wait_unlink(w);
		c->n_wait--;
		key = NULL;
		err = DD_ERR_CANCELLED;
		if (!c->dead) {
			key = set != NULL ? dd_jwks_find(set, w->kid,
							 w->kid_len) : NULL;
			err = key != NULL ? DD_OK : miss_err(c);
		}
		finish(c, w, err, key);
	}
	c->busy--;
	dd_jwks_free(set);
}

static void destroy(dd_jwks_cache *c)
{
	dd_jwks_free(c->set);
	dd_free(c->url);
	dd_free(c);
}

/* Completes a free requested while callbacks were running. */
static void settle(dd_jwks_cache *c)
{
	if (!c->dead || c->busy > 0)
		return;
	answer_waiters(c);
	if (c->busy == 0)
		destroy(c);
}

/* ---- fetching ---- */

static void on_fetch(dd_httpc_result *r, void *ud)
{
	dd_jwks_cache *c = ud;
	dd_jwks *set = NULL;
	char why[256];
	dd_err_t rc = r->err;

	c->req = NULL;
	snprintf(why, sizeof why, "%s", r->message);
	if (rc == DD_OK && r->status != 200) {
		snprintf(why, sizeof why, "HTTP status %ld", r->status);
		rc = DD_ERR_UPSTREAM;
	}
	if (rc == DD_OK)
		rc = dd_jwks_parse(dd_buf_str(&r->body), r->body.len,
				   c->max_bytes, &set, why, sizeof why);
	c->last_err = rc;
	if (rc == DD_OK) {
		dd_jwks_free(c->set);
		c->set = set;
		c->set_at = uv_now(c->loop);
		dd_log_info("jwks %s: %zu usable keys", c->url,
			    dd_jwks_count(set));
	} else {
		c->failures++;
		if (rc != DD_ERR_CANCELLED)
			dd_log_warn("jwks %s: fetch failed (%s: %s); keeping "
				    "%zu keys", c->url, dd_errname(rc), why,
				    c->set != NULL ? dd_jwks_count(c->set) : 0);
	}
	answer_waiters(c);
	settle(c);
}

static int may_fetch(const dd_jwks_cache *c, uint64_t now)
{
	uint64_t gap;

	if (c->req != NULL)
		return 0;
	if (c->fetches == 0)
		return 1;
	gap = c->last_err == DD_OK ? c->refresh_ms : c->retry_ms;
	return now - c->last_start >= gap;
}

static dd_err_t start_fetch(dd_jwks_cache *c, uint64_t now)
{
	const char *hdrs[] = {"Accept: application/jwk-set+json, "
			      "application/json"};
	dd_httpc_request rq = {.url = c->url, .headers = hdrs,
			       .n_headers = 1, .timeout_ms = c->timeout_ms,
			       .max_response = c->max_bytes};
	dd_err_t rc;

	rc = dd_httpc_start(c->http, &rq, on_fetch, c, &c->req);
	if (rc)
		return rc;
	c->last_start = now;
	c->fetches++;
	return DD_OK;
}

/*
 * Answers w now or parks it behind a fetch. On error w is untouched and
 * still the caller's; otherwise w is consumed.
 */
static dd_err_t lookup(dd_jwks_cache *c, dd_jwks_wait *w, dd_jwks_wait **out)
{
	uint64_t now = uv_now(c->loop);
	const dd_jwk *key = NULL;
	dd_err_t rc;

	if (c->set != NULL)
		key = dd_jwks_find(c->set, w->kid, w->kid_len);
	if (key != NULL) {
		/* Stale but usable: answer now, refresh behind it. */
		if (now - c->set_at >= c->max_age_ms && may_fetch(c, now) &&
		    start_fetch(c, now) != DD_OK)
			dd_log_warn("jwks %s: could not start a refresh",
				    c->url);
		finish(c, w, DD_OK, key);
		return DD_OK;
	}
	if (c->req == NULL && !may_fetch(c, now)) {
		finish(c, w, miss_err(c), NULL);
		return DD_OK;
	}
	if (c->n_wait >= c->max_waiters)
		return DD_ERR_BUSY;
	if (c->req == NULL) {
		rc = start_fetch(c, now);
		if (rc)
			return rc;
	}
	w->c = c;
	wait_link(&c->waiters, w);
	c->n_wait++;
	if (out != NULL)
		*out = w;
	return DD_OK;
}

/* ---- public ---- */

dd_err_t dd_jwks_cache_new(uv_loop_t *loop, dd_httpc *http,
			   const dd_jwks_cache_opts *o, dd_jwks_cache **out)
{
	dd_jwks_cache *c = NULL;

	*out = NULL;
	if (o == NULL || o->url == NULL || dd_httpc_check_url(o->url) != DD_OK)
		return DD_ERR_CONFIG;
	c = dd_calloc(1, sizeof *c);
	if (c == NULL)
		return DD_ERR_NOMEM;
	c->url = dd_strdup(o->url);
	if (c->url == NULL) {
		dd_free(c);
		return DD_ERR_NOMEM;
	}
	c->loop = loop;
	c->http = http;
	c->refresh_ms = o->refresh_interval_ms ? o->refresh_interval_ms :
						 DD_JWKS_DEFAULT_REFRESH_MS;
	c->retry_ms = o->retry_interval_ms ? o->retry_interval_ms :
					     DD_JWKS_DEFAULT_RETRY_MS;
	c->max_age_ms = o->max_age_ms ? o->max_age_ms :
					DD_JWKS_DEFAULT_MAX_AGE_MS;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms :
					DD_JWKS_DEFAULT_TIMEOUT_MS;
	c->max_bytes = o->max_bytes && o->max_bytes < DD_JWKS_MAX_BYTES ?
			       o->max_bytes : DD_JWKS_MAX_BYTES;
	c->max_waiters = o->max_waiters ? o->max_waiters :
					  DD_JWKS_DEFAULT_MAX_WAITERS;
	*out = c;
	return DD_OK;
}

dd_err_t dd_jwks_cache_get(dd_jwks_cache *c, const char *kid, size_t kid_len,
			   dd_jwks_cache_cb cb, void *ud, dd_jwks_wait **out)
{
	dd_jwks_wait *w = NULL;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (c->dead)
		return DD_ERR_CLOSED;
	if (kid_len == 0 || kid_len > DD_JWK_MAX_KID)
		return DD_ERR_INVALID;
	w = dd_calloc(1, sizeof *w);
	if (w == NULL)
		return DD_ERR_NOMEM;
	w->kid_own = dd_strndup(kid, kid_len);
	if (w->kid_own == NULL) {
		wait_free(w);
		return DD_ERR_NOMEM;
	}
	w->kid = w->kid_own;
	w->kid_len = kid_len;
	w->cb = cb;
	w->ud = ud;
	rc = lookup(c, w, out);
	if (rc) {
		wait_free(w);
		return rc;
	}
	settle(c);
	return DD_OK;
}

dd_err_t dd_jwks_cache_verify(dd_jwks_cache *c, const char *token,
			      size_t len, const dd_jwt_policy *pol,
			      int64_t now, dd_jwks_verify_cb cb, void *ud,
			      dd_jwks_wait **out)
{
	dd_jwks_wait *w = NULL;
	dd_jwt_result res;
	dd_err_t rc;

	if (out != NULL)
		*out = NULL;
	if (c->dead)
		return DD_ERR_CLOSED;
	w = dd_calloc(1, sizeof *w);
	if (w == NULL)
		return DD_ERR_NOMEM;
	rc = dd_jwt_decode(token, len, pol, &w->jwt, &res);
	if (rc == DD_ERR_NOMEM)
		goto out;
	if (rc) {
		/* A refusal is a verdict like any other. */
		c->busy++;
		cb(rc, NULL, &res, ud);
		c->busy--;
		rc = DD_OK;
		goto out;
	}
	w->kid = dd_jwt_kid(w->jwt, &w->kid_len);
	w->pol = pol;
	w->now = now;
	w->vcb = cb;
	w->ud = ud;
	rc = lookup(c, w, out);
	if (rc == DD_OK)
		w = NULL; /* consumed */
out:
	wait_free(w);
	if (rc == DD_OK)
		settle(c);
	return rc;
}

void dd_jwks_cache_cancel(dd_jwks_wait *w)
{
	if (w == NULL)
		return;
	wait_unlink(w);
	w->c->n_wait--;
	wait_free(w);
}

dd_jwks *dd_jwks_cache_keys(const dd_jwks_cache *c)
{
	return c->set;
}

void dd_jwks_cache_stats_get(const dd_jwks_cache *c, dd_jwks_cache_stats *st)
{
	st->fetches = c->fetches;
	st->failures = c->failures;
	st->keys = c->set != NULL ? dd_jwks_count(c->set) : 0;
	st->waiting = c->n_wait;
	st->last_err = c->last_err;
}

void dd_jwks_cache_free(dd_jwks_cache *c)
{
	if (c == NULL || c->dead)
		return;
	c->dead = 1;
	if (c->req != NULL) {
		dd_httpc_cancel(c->req);
		c->req = NULL;
	}
	settle(c);
}
