#include "cp/cp_stonith.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cloudflare/cf_api.h"
#include "cloudflare/cf_names.h"
#include "cloudflare/cloudflared.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/poweroff.h"
#include "core/strutil.h"

struct dd_cp_stonith {
	uv_loop_t *loop;
	const dd_config *cfg;
	dd_cf *cf;               /* our own client */
	char *self_exe;
	uint16_t port;           /* our listener, behind DD_HOSTNAME */
	dd_cf_extra extras[DD_CF_MAX_EXTRAS];
	size_t n_extras;
	void (*drain)(void *ud);
	void *ud;
	dd_poweroff poweroff;
	char own_id[DD_STONITH_ID_MAX + 1];
	char own_name[DD_STONITH_NAME_MAX + 1];
	dd_cloudflared *cfd;
	dd_stonith *st;
	unsigned pending;        /* Cloudflare calls not answered yet */
	uv_timer_t retry;        /* the next attempt at our tunnel */
	bool retry_open;         /* retry not closed yet */
	unsigned attempts;       /* at creating our tunnel */
	bool shutting_down;      /* the service is stopping */
	bool closing;
	bool survivor;           /* our eviction pass saw no newer CP */
};

/* Our tunnel: attempts before giving up, first wait (then doubled). */
#define CREATE_ATTEMPTS 5u
#define CREATE_RETRY_MS 1000u

enum op_kind { OP_GET, OP_LIST, OP_DEL };

/* One STONITH op in flight against the client. */
struct op {
	dd_cp_stonith *cs;
	enum op_kind kind;
	char id[DD_STONITH_ID_MAX + 1];
	char prefix[DD_STONITH_NAME_MAX + 1];
	dd_stonith_get_cb get_cb;
	dd_stonith_list_cb list_cb;
	dd_stonith_del_cb del_cb;
	void *ctx;
};

/* --- pure parts --------------------------------------------------------- */

static bool num(const char *s, size_t at, size_t n, uint64_t lo, uint64_t hi,
		uint64_t *out)
{
	return dd_parse_u64n(s + at, n, lo, hi, out) == DD_OK;
}

dd_err_t dd_cp_stonith_parse_time(const char *s, int64_t *out_us)
{
	uint64_t y, mo, d, h, mi, sec, oh = 0, om = 0, us = 0;
	size_t n = strlen(s), i = 19;
	struct tm tm = {0};
	int64_t t, sign = 0;

	if (n < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' ||
	    !num(s, 0, 4, 1970, 9999, &y) || !num(s, 5, 2, 1, 12, &mo) ||
	    !num(s, 8, 2, 1, 31, &d) || !num(s, 11, 2, 0, 23, &h) ||
	    !num(s, 14, 2, 0, 59, &mi) || !num(s, 17, 2, 0, 60, &sec))
		return DD_ERR_INVALID;
	if (s[i] == '.') {
		size_t digits = 0;

		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			if (digits < 6)
				us = us * 10 + (uint64_t)(s[i] - '0');
		}
		if (digits == 0)
			return DD_ERR_INVALID;
		for (; digits < 6; digits++)
			us *= 10;
	}
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
		sign = 0;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') &&
		   s[i + 3] == ':' && num(s, i + 1, 2, 0, 23, &oh) &&
		   num(s, i + 4, 2, 0, 59, &om)) {
		sign = s[i] == '+' ? 1 : -1;
	} else {
		return DD_ERR_INVALID;
	}
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)d;
	tm.tm_hour = (int)h;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)sec;
	t = (int64_t)timegm(&tm);
	if (t < 0)
		return DD_ERR_INVALID;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*out_us = t * 1000000 + (int64_t)us;
	return DD_OK;
}

dd_cf_answer dd_cp_stonith_answer(dd_err_t err, long status)
{
	if (err == DD_OK && status >= 200 && status < 300)
		return DD_CF_ANS_OK;
	if (status == 404)
		return DD_CF_ANS_NOT_FOUND;
	/* No answer, or one that says nothing about the tunnel itself. */
	if (status == 0 || status == 401 || status == 403 || status == 408 ||
	    status == 429 || status >= 500 || status < 400 || err == DD_OK)
		return DD_CF_ANS_AMBIGUOUS;
	return DD_CF_ANS_REFUSED;
}

static bool copy_field(const json_t *obj, const char *key, char *dst,
		       size_t cap)
{
	const char *v = json_string_value(json_object_get(obj, key));
	size_t n = v != NULL ? strlen(v) : 0;

	if (n == 0 || n >= cap)
		return false;
	memcpy(dst, v, n + 1);
	return true;
}

dd_err_t dd_cp_stonith_tunnel_from_json(const json_t *obj, dd_cf_tunnel *t)
{
	const json_t *del, *conns;
	const char *created;

	memset(t, 0, sizeof *t);
	if (!json_is_object(obj) || !copy_field(obj, "id", t->id, sizeof t->id) ||
	    !copy_field(obj, "name", t->name, sizeof t->name))
		return DD_ERR_INVALID;
	created = json_string_value(json_object_get(obj, "created_at"));
	/* Unknown age: treated as the newest, so it is never evicted. */
	if (created == NULL ||
	    dd_cp_stonith_parse_time(created, &t->created_us) != DD_OK)
		t->created_us = INT64_MAX;
	del = json_object_get(obj, "deleted_at");
	t->deleted = del != NULL && !json_is_null(del);
	conns = json_object_get(obj, "connections");
	t->connections = json_is_array(conns) ? (unsigned)json_array_size(conns)
					      : 0;
	return DD_OK;
}

/* --- the ops STONITH calls ---------------------------------------------- */

static void maybe_free(dd_cp_stonith *cs);
static void on_retry_closed(uv_handle_t *h);

/* Ends an op: false when the instance is closing (answer dropped). */
static bool op_end(struct op *o)
{
	dd_cp_stonith *cs = o->cs;

	cs->pending--;
	return !cs->closing;
}

static struct op *op_new(dd_cp_stonith *cs, enum op_kind kind, void *ctx)
{
	struct op *o = dd_calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->cs = cs;
	o->kind = kind;
	o->ctx = ctx;
	cs->pending++;
	return o;
}

/* STONITH wants its answer from the loop: a failed start answers later. */
static void on_failed_start(uv_timer_t *t);

struct late {
	uv_timer_t timer;
	struct op *op;
};

static void answer_later(struct op *o)
{
	struct late *l = dd_calloc(1, sizeof *l);

	if (l == NULL) {
		/* No memory even for this: keep STONITH's count honest now. */
		if (o->kind == OP_GET)
			o->get_cb(o->ctx, DD_CF_ANS_AMBIGUOUS, NULL);
		else if (o->kind == OP_LIST)
			o->list_cb(o->ctx, DD_CF_ANS_AMBIGUOUS, NULL, 0);
		else
			o->del_cb(o->ctx, DD_CF_ANS_AMBIGUOUS);
		o->cs->pending--;
		maybe_free(o->cs);
		dd_free(o);
		return;
	}
	l->op = o;
	uv_timer_init(o->cs->loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, on_failed_start, 0, 0);
}

static void on_late_closed(uv_handle_t *h)
{
	dd_free(h->data);
}

static void on_failed_start(uv_timer_t *t)
{
	struct late *l = t->data;
	struct op *o = l->op;
	dd_cp_stonith *cs = o->cs;

	uv_close((uv_handle_t *)&l->timer, on_late_closed);
	op_end(o);
	if (o->kind == OP_GET)
		o->get_cb(o->ctx, DD_CF_ANS_AMBIGUOUS, NULL);
	else if (o->kind == OP_LIST)
		o->list_cb(o->ctx, DD_CF_ANS_AMBIGUOUS, NULL, 0);
	else
		o->del_cb(o->ctx, DD_CF_ANS_AMBIGUOUS);
	dd_free(o);
	maybe_free(cs);
}

/* The 404 cross-check: does this account still list our tunnel live? */
static void on_find(const dd_cf_reply *r, void *ud)
{
	struct op *o = ud;
	dd_cp_stonith *cs = o->cs;
	dd_cf_answer ans = DD_CF_ANS_AMBIGUOUS;
	size_t i;
	const json_t *item;

	if (op_end(o)) {
		if (r->err == DD_OK && json_is_array(r->result)) {
			ans = DD_CF_ANS_NOT_FOUND;
			json_array_foreach(r->result, i, item) {
				const char *id = json_string_value(
					json_object_get(item, "id"));
				if (id != NULL && strcmp(id, o->id) == 0)
					ans = DD_CF_ANS_AMBIGUOUS;
			}
		}
		if (ans == DD_CF_ANS_AMBIGUOUS)
			dd_log_warn("stonith: 404 for our tunnel not confirmed by "
				    "a listing of the account; ambiguous");
		o->get_cb(o->ctx, ans, NULL);
	}
	dd_free(o);
	maybe_free(cs);
}

static void on_get(const dd_cf_reply *r, void *ud)
{
	struct op *o = ud;
	dd_cp_stonith *cs = o->cs;
	dd_cf_answer ans = dd_cp_stonith_answer(r->err, r->status);
	dd_cf_tunnel t;

	if (!op_end(o))
		goto done;
	if (ans == DD_CF_ANS_NOT_FOUND) {
		cs->pending++;
		if (dd_cf_tunnels_find(cs->cf, cs->own_name, on_find, o) == DD_OK)
			return;
		cs->pending--;
		ans = DD_CF_ANS_AMBIGUOUS;
	}
	if (ans == DD_CF_ANS_OK &&
	    dd_cp_stonith_tunnel_from_json(r->result, &t) != DD_OK)
		ans = DD_CF_ANS_AMBIGUOUS;
	o->get_cb(o->ctx, ans, ans == DD_CF_ANS_OK ? &t : NULL);
done:
	dd_free(o);
	maybe_free(cs);
}

static void op_get(void *ud, const char *id, dd_stonith_get_cb cb, void *ctx)
{
	dd_cp_stonith *cs = ud;
	struct op *o = op_new(cs, OP_GET, ctx);

	if (o == NULL) {
		cb(ctx, DD_CF_ANS_AMBIGUOUS, NULL); /* out of memory: rare */
		return;
	}
	o->get_cb = cb;
	snprintf(o->id, sizeof o->id, "%s", id);
	if (dd_cf_tunnel_get(cs->cf, id, on_get, o) != DD_OK)
		answer_later(o);
}

static void on_list(const dd_cf_reply *r, void *ud)
{
	struct op *o = ud;
	dd_cp_stonith *cs = o->cs;
	dd_cf_answer ans = dd_cp_stonith_answer(r->err, r->status);
	dd_cf_tunnel *t = NULL;
	size_t n = 0, i, plen = strlen(o->prefix);
	const json_t *item;

	if (!op_end(o))
		goto done;
	if (ans == DD_CF_ANS_OK && !json_is_array(r->result))
		ans = DD_CF_ANS_AMBIGUOUS;
	if (ans == DD_CF_ANS_OK && json_array_size(r->result) > 0) {
		t = dd_calloc(json_array_size(r->result), sizeof *t);
		if (t == NULL)
			ans = DD_CF_ANS_AMBIGUOUS;
	}
	if (ans == DD_CF_ANS_OK) {
		json_array_foreach(r->result, i, item) {
			if (dd_cp_stonith_tunnel_from_json(item, &t[n]) != DD_OK ||
			    strncmp(t[n].name, o->prefix, plen) != 0)
				continue;
			/* Our own age must be known to break ties. */
			if (strcmp(t[n].id, cs->own_id) == 0 &&
			    t[n].created_us == INT64_MAX)
				ans = DD_CF_ANS_AMBIGUOUS;
			n++;
		}
	}
	o->list_cb(o->ctx, ans, ans == DD_CF_ANS_OK ? t : NULL,
		   ans == DD_CF_ANS_OK ? n : 0);
	dd_free(t);
done:
	dd_free(o);
	maybe_free(cs);
}

static void op_list(void *ud, const char *prefix, dd_stonith_list_cb cb,
		    void *ctx)
{
	dd_cp_stonith *cs = ud;
	struct op *o = op_new(cs, OP_LIST, ctx);

	if (o == NULL) {
		cb(ctx, DD_CF_ANS_AMBIGUOUS, NULL, 0);
		return;
	}
	o->list_cb = cb;
	snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
	if (dd_cf_tunnels_list(cs->cf, on_list, o) != DD_OK)
		answer_later(o);
}

static void on_deleted(const dd_cf_reply *r, void *ud)
{
	struct op *o = ud;
	dd_cp_stonith *cs = o->cs;

	if (op_end(o))
		o->del_cb(o->ctx, dd_cp_stonith_answer(r->err, r->status));
	dd_free(o);
	maybe_free(cs);
}

/* Connections first: Cloudflare refuses to delete a connected tunnel. */
static void on_dropped(const dd_cf_reply *r, void *ud)
{
	struct op *o = ud;
	dd_cp_stonith *cs = o->cs;

	if (!op_end(o))
		goto done;
	if (r->status == 404) {
		o->del_cb(o->ctx, DD_CF_ANS_NOT_FOUND);
		goto done;
	}
	cs->pending++;
	if (dd_cf_tunnel_delete(cs->cf, o->id, on_deleted, o) == DD_OK)
		return;
	answer_later(o);
	return;
done:
	dd_free(o);
	maybe_free(cs);
}

static void op_del(void *ud, const char *id, const char *name,
		   dd_stonith_del_cb cb, void *ctx)
{
	dd_cp_stonith *cs = ud;
	struct op *o = op_new(cs, OP_DEL, ctx);

	(void)name;
	if (o == NULL) {
		cb(ctx, DD_CF_ANS_AMBIGUOUS);
		return;
	}
	o->del_cb = cb;
	snprintf(o->id, sizeof o->id, "%s", id);
	if (dd_cf_tunnel_drop_connections(cs->cf, id, on_dropped, o) != DD_OK)
		answer_later(o);
}

static void op_drain(void *ud)
{
	dd_cp_stonith *cs = ud;

	/* Our tunnel is gone: its connector has nothing left to carry. */
	dd_cloudflared_stop(cs->cfd);
	cs->drain(cs->ud);
}

static void op_poweroff(void *ud, const char *why)
{
	dd_cp_stonith *cs = ud;
	char reason[160];

	snprintf(reason, sizeof reason, "stonith: evicted (%s)", why);
	dd_poweroff_now(&cs->poweroff, reason);
}

static void on_claimed(dd_err_t err, const char *msg, const json_t *result,
		       void *ud)
{
	dd_cp_stonith *cs = ud;

	(void)result;
	cs->pending--;
	if (!cs->closing && err != DD_OK)
		dd_log_warn("stonith: pointing %s at our tunnel failed: %s",
			    cs->cfg->hostname, msg);
	maybe_free(cs);
}

/* The last word on DD_HOSTNAME is the survivor's. */
static void op_eviction_done(void *ud, unsigned deleted)
{
	dd_cp_stonith *cs = ud;

	(void)deleted;
	cs->survivor = true;
	cs->pending++;
	if (dd_cf_op_upsert_cname(cs->cf, cs->cfg->hostname, cs->own_id,
				  on_claimed, cs) != DD_OK) {
		cs->pending--;
		dd_log_warn("stonith: cannot re-point %s at our tunnel",
			    cs->cfg->hostname);
	}
}

static const dd_stonith_ops stonith_ops = {
	.list = op_list, .get = op_get, .del = op_del, .drain = op_drain,
	.poweroff = op_poweroff, .eviction_done = op_eviction_done,
};

/* --- boot: our tunnel, cloudflared, STONITH ------------------------------ */

static void on_cfd_exit(void *ud, int64_t status, int sig)
{
	dd_cp_stonith *cs = ud;

	(void)status;
	(void)sig;
	if (!cs->shutting_down)
		dd_stonith_cloudflared_exited(cs->st);
}

static dd_err_t start_rest(dd_cp_stonith *cs, const char *token)
{
	const dd_config *cfg = cs->cfg;
	dd_cloudflared_opts co = {.path = cfg->cloudflared_path, .token = token,
				  .self_exe = cs->self_exe,
				  .backoff_ms = cfg->cloudflared_backoff_ms,
				  .exited = on_cfd_exit, .ud = cs};
	dd_stonith_opts so = {.env = cfg->env, .own_id = cs->own_id,
			      .own_name = cs->own_name,
			      /* our create was answered by this very account */
			      .account_verified = true,
			      .evict_delay_ms = cfg->stonith_evict_delay_ms,
			      .poll_ms = cfg->stonith_poll_ms,
			      .drain_ms = cfg->stonith_drain_ms};
	dd_err_t rc;

	rc = dd_stonith_new(cs->loop, &so, &stonith_ops, cs, &cs->st);
	if (rc == DD_OK)
		rc = dd_cloudflared_new(cs->loop, &co, &cs->cfd);
	if (rc)
		return rc;
	dd_cloudflared_start(cs->cfd);
	dd_stonith_start(cs->st);
	return DD_OK;
}

static void on_retry(uv_timer_t *t);

static void on_created(dd_err_t err, const char *msg, const json_t *result,
		       void *ud)
{
	dd_cp_stonith *cs = ud;
	const char *token = json_string_value(json_object_get(result, "token"));
	char why[256];
	dd_err_t rc = err;

	cs->pending--;
	if (cs->closing) {
		maybe_free(cs);
		return;
	}
	if (rc == DD_OK && (token == NULL ||
			    !copy_field(result, "id", cs->own_id,
					sizeof cs->own_id)))
		rc = DD_ERR_UPSTREAM;
	if (rc == DD_OK) {
		dd_log_info("stonith: our tunnel %s (%s) routes %s", cs->own_name,
			    cs->own_id, cs->cfg->hostname);
		rc = start_rest(cs, token);
		msg = "cannot start cloudflared or STONITH";
	}
	if (rc == DD_OK)
		return;
	snprintf(why, sizeof why, "own tunnel: %s: %s", dd_strerror(rc),
		 msg != NULL && msg[0] ? msg : "no id or token");
	/*
	 * Retried (by name, so the tunnel is reused): a CP booting at the
	 * same moment can win the race to create the CNAME, and the next
	 * upsert then updates that record.
	 */
	if (err != DD_OK && cs->attempts < CREATE_ATTEMPTS &&
	    !cs->shutting_down) {
		dd_log_warn("creating our tunnel %s failed (attempt %u of %u), "
			    "retrying: %s", cs->own_name, cs->attempts,
			    CREATE_ATTEMPTS, why);
		uv_timer_start(&cs->retry, on_retry,
			       CREATE_RETRY_MS << (cs->attempts - 1), 0);
		return;
	}
	/* Spec 1.2 stage 6: a CP without its tunnel must not linger. */
	dd_log_err(rc, "creating our tunnel %s", cs->own_name);
	dd_poweroff_now(&cs->poweroff, why);
}

static void create_own(dd_cp_stonith *cs)
{
	dd_cf_ingress_spec spec = {.primary = cs->cfg->hostname,
				   .primary_port = cs->port,
				   .extras = cs->extras,
				   .n_extras = cs->n_extras};
	char why[256] = "";
	dd_err_t rc = DD_OK;

	cs->attempts++;
	if (cs->own_name[0] == '\0')
		rc = dd_cf_tunnel_name(cs->cfg->env, "cp", cs->own_name,
				       sizeof cs->own_name, why, sizeof why);
	if (rc == DD_OK) {
		cs->pending++;
		rc = dd_cf_op_create_tunnel(cs->cf, cs->own_name, &spec,
					    on_created, cs, why, sizeof why);
		if (rc)
			cs->pending--;
	}
	if (rc) {
		dd_log_err(rc, "starting our tunnel: %s", why);
		dd_poweroff_now(&cs->poweroff, "own tunnel could not be started");
	}
}

static void on_retry(uv_timer_t *t)
{
	dd_cp_stonith *cs = t->data;

	if (!cs->shutting_down && !cs->closing)
		create_own(cs);
}

void dd_cp_stonith_start(dd_cp_stonith *cs, uint16_t port)
{
	cs->port = port;
	create_own(cs);
}

bool dd_cp_stonith_configured(const dd_config *cfg)
{
	return cfg->cf.api_token != NULL;
}

static dd_err_t make_client(dd_cp_stonith *cs, dd_httpc *http, char *why,
			    size_t why_len)
{
	const dd_cf_settings *c = &cs->cfg->cf;
	dd_cf_opts co = {.base_url = c->api_url, .api_token = c->api_token,
			 .account_id = c->account_id, .zone_id = c->zone_id,
			 .timeout_ms = c->timeout_ms,
			 .max_attempts = (unsigned)c->attempts,
			 .max_wait_ms = c->max_wait_ms};
	dd_err_t rc;

	rc = dd_cf_extras_parse(c->cp_extras != NULL ? c->cp_extras : "",
				cs->extras, DD_CF_MAX_EXTRAS, &cs->n_extras,
				why, why_len);
	if (rc)
		return DD_ERR_CONFIG;
	return dd_cf_new(http, &co, &cs->cf, why, why_len);
}

dd_err_t dd_cp_stonith_new(uv_loop_t *loop, const dd_cp_stonith_opts *o,
			   dd_cp_stonith **out, char *why, size_t why_len)
{
	dd_cp_stonith *cs;
	dd_err_t rc;

	*out = NULL;
	if (o->cfg->hostname == NULL || o->drain == NULL || o->http == NULL) {
		snprintf(why, why_len, "Cloudflare needs DD_HOSTNAME");
		return DD_ERR_CONFIG;
	}
	cs = dd_calloc(1, sizeof *cs);
	if (cs == NULL)
		return DD_ERR_NOMEM;
	cs->loop = loop;
	cs->cfg = o->cfg;
	cs->drain = o->drain;
	cs->ud = o->ud;
	cs->poweroff = dd_poweroff_from_config(o->cfg);
	uv_timer_init(loop, &cs->retry);
	cs->retry.data = cs;
	cs->retry_open = true;
	rc = make_client(cs, o->http, why, why_len);
	if (rc == DD_OK && o->self_exe != NULL) {
		cs->self_exe = dd_strdup(o->self_exe);
		if (cs->self_exe == NULL)
			rc = DD_ERR_NOMEM;
	}
	if (rc) {
		cs->closing = true;
		uv_close((uv_handle_t *)&cs->retry, on_retry_closed);
		return rc;
	}
	dd_log_info("stonith: enabled; power-off is %s",
		    dd_poweroff_kind_name(cs->poweroff.kind));
	*out = cs;
	return DD_OK;
}

const char *dd_cp_stonith_state(const dd_cp_stonith *cs)
{
	if (cs == NULL || cs->st == NULL)
		return dd_stonith_state_name(DD_STONITH_SERVING);
	return dd_stonith_state_name(dd_stonith_get_state(cs->st));
}

bool dd_cp_stonith_serving(const dd_cp_stonith *cs)
{
	return cs != NULL && cs->st != NULL && cs->survivor &&
	       !cs->shutting_down &&
	       dd_stonith_get_state(cs->st) == DD_STONITH_SERVING;
}

const char *dd_cp_stonith_tunnel(const dd_cp_stonith *cs)
{
	return cs != NULL && cs->own_id[0] ? cs->own_name : "";
}

void dd_cp_stonith_shutdown(dd_cp_stonith *cs)
{
	if (cs == NULL)
		return;
	cs->shutting_down = true;
	uv_timer_stop(&cs->retry);
	dd_cloudflared_stop(cs->cfd);
	/* A plain stop ends STONITH; an eviction in progress carries on. */
	if (cs->st != NULL &&
	    dd_stonith_get_state(cs->st) == DD_STONITH_SERVING) {
		dd_stonith_free(cs->st);
		cs->st = NULL;
	}
}

void dd_cp_stonith_drained(dd_cp_stonith *cs)
{
	if (cs != NULL && cs->st != NULL)
		dd_stonith_drained(cs->st);
}

static void on_retry_closed(uv_handle_t *h)
{
	dd_cp_stonith *cs = h->data;

	cs->retry_open = false;
	maybe_free(cs);
}

static void maybe_free(dd_cp_stonith *cs)
{
	if (!cs->closing || cs->pending > 0 || cs->retry_open)
		return;
	dd_cf_free(cs->cf);
	dd_free(cs->self_exe);
	dd_free(cs);
}

void dd_cp_stonith_free(dd_cp_stonith *cs)
{
	if (cs == NULL || cs->closing)
		return;
	cs->closing = true;
	uv_close((uv_handle_t *)&cs->retry, on_retry_closed);
	dd_cloudflared_free(cs->cfd);
	dd_stonith_free(cs->st);
	/* Calls in flight answer CANCELLED now; their answers are dropped. */
	dd_cf_shutdown(cs->cf);
	maybe_free(cs);
}
