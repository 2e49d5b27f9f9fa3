#include "agent/registrar.h"

#include <stdio.h>
#include <string.h>

#include "attest/binding.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"

#define NONCE_LEN 32

struct dd_registrar {
	uv_loop_t *loop;
	uv_timer_t timer;
	char *cp_url;
	char *vm_name;
	char *url;
	uint8_t pub[32];
	dd_attestor *att;
	dd_httpc *http;
	const dd_agent_state *st;
	uint64_t unit_ms;
	uint64_t check_ms;
	char agent_id[128];
	char *tunnel_token;         /* from the last registration; secret */
	int pushing;                /* this round replaces the ingress */
	int push_wanted;            /* extras changed since the last push */
	dd_registered_cb cb;
	void *ud;
	unsigned attempts;
	uint8_t nonce[NONCE_LEN];
	dd_httpc_req *call;         /* the HTTP call in flight */
	int minting;                /* a mint in flight (cannot be cancelled) */
	int closing, timer_closed;
};

static void attempt(dd_registrar *r);
static void on_check_timer(uv_timer_t *t);
static void keep_tunnel_token(dd_registrar *r, const json_t *reply);
static void retry(dd_registrar *r, const char *why);
static void on_pushed(dd_httpc_result *res, void *ud);
static void settle(dd_registrar *r);

static void maybe_free(dd_registrar *r)
{
	if (!r->closing || !r->timer_closed || r->minting)
		return;
	dd_free(r->cp_url);
	dd_free(r->vm_name);
	dd_free(r->url);
	if (r->tunnel_token != NULL)
		dd_freezero(r->tunnel_token, strlen(r->tunnel_token));
	dd_free(r);
}

static void on_timer(uv_timer_t *t)
{
	attempt(t->data);
}

static void on_check(dd_httpc_result *res, void *ud)
{
	dd_registrar *r = ud;

	r->call = NULL;
	if (res->err == DD_OK && res->status == 404) {
		dd_log_warn("the CP no longer knows %s: registering again",
			    r->agent_id);
		r->attempts = 0;
		attempt(r);
		return;
	}
	settle(r);
}

static void on_check_timer(uv_timer_t *t)
{
	dd_registrar *r = t->data;
	char url[2048];
	dd_httpc_request rq = {.url = url, .timeout_ms = 10000};

	snprintf(url, sizeof url, "%s/register/%s", r->cp_url, r->agent_id);
	if (dd_httpc_start(r->http, &rq, on_check, r, &r->call) != DD_OK)
		uv_timer_start(&r->timer, on_check_timer, r->check_ms, 0);
}

/*
 * Back off clamp(5n, 5, 60) units (seconds by default), or longer when
 * the CP said so (Retry-After, in seconds, capped at 10 minutes).
 */
static void retry_after(dd_registrar *r, const char *why, uint64_t min_ms)
{
	uint64_t units = 5ull * r->attempts, ms;

	if (units < 5)
		units = 5;
	if (units > 60)
		units = 60;
	ms = units * r->unit_ms / 5;
	if (min_ms > ms)
		ms = min_ms;
	dd_log_warn("registration attempt %u failed (%s); retrying in %llu ms",
		    r->attempts, why, (unsigned long long)ms);
	uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void retry(dd_registrar *r, const char *why)
{
	retry_after(r, why, 0);
}

/* Retry-After as seconds (the HTTP-date form is treated as absent). */
static uint64_t retry_after_ms(const dd_httpc_result *res)
{
	const char *v = dd_httpc_result_header(res, "Retry-After");
	uint64_t s;

	if (v == NULL || dd_parse_u64(v, 0, 600, &s) != DD_OK)
		return 0;
	return s * 1000;
}

static void fatal(dd_registrar *r, dd_err_t err, const char *why)
{
	r->cb(err, NULL, NULL, why, r->ud);
}

/* Back to watching; one more push if extras changed meanwhile. */
static void settle(dd_registrar *r)
{
	r->pushing = 0;
	if (r->push_wanted) {
		r->push_wanted = 0;
		r->pushing = 1;
		attempt(r);
		return;
	}
	uv_timer_start(&r->timer, on_check_timer, r->check_ms, 0);
}

static void on_pushed(dd_httpc_result *res, void *ud)
{
	dd_registrar *r = ud;

	r->call = NULL;
	if (res->err == DD_OK && res->status == 404) {
		/* Forgotten: registering again carries the extras anyway. */
		r->pushing = 0;
		r->attempts = 0;
		attempt(r);
		return;
	}
	if (res->err || res->status >= 500 || res->status == 429) {
		r->push_wanted = 1;
		retry_after(r, "POST /ingress/replace failed", retry_after_ms(res));
		return;
	}
	if (res->status >= 400)
		dd_log_warn("the CP refused the new ingress (HTTP %ld): %.160s",
			    res->status, dd_buf_str(&res->body));
	else
		dd_log_info("ingress of %s replaced", r->agent_id);
	settle(r);
}

static void on_registered(dd_httpc_result *res, void *ud)
{
	dd_registrar *r = ud;
	json_t *v = NULL;
	const char *id = NULL, *host = NULL;
	char why[256];

	r->call = NULL;
	if (res->err || res->status >= 500 || res->status == 429) {
		snprintf(why, sizeof why, "POST /register: %s (HTTP %ld)",
			 res->err ? res->message : "refused", res->status);
		retry_after(r, why, retry_after_ms(res));
		return;
	}
	if (res->status >= 400) {
		snprintf(why, sizeof why, "the CP refused registration (HTTP %ld): "
			 "%.180s", res->status, dd_buf_str(&res->body));
		fatal(r, DD_ERR_UNAUTHORIZED, why);
		return;
	}
	if (dd_json_parse(res->body.data, res->body.len, 64 * 1024, &v, why,
			  sizeof why) != DD_OK ||
	    dd_json_get_str(v, "agent_id", &id) != DD_OK ||
	    dd_json_get_str(v, "hostname", &host) != DD_OK) {
		json_decref(v);
		retry(r, "the CP's reply is not {agent_id, hostname, ...}");
		return;
	}
	snprintf(r->agent_id, sizeof r->agent_id, "%s", id);
	keep_tunnel_token(r, v);
	/* Registration carried the extras: no push needed for them. */
	r->push_wanted = 0;
	uv_timer_start(&r->timer, on_check_timer, r->check_ms, 0);
	r->cb(DD_OK, id, host, "", r->ud);
	json_decref(v);
}

/* A Cloudflare CP hands out the connector's token (null for direct). */
static void keep_tunnel_token(dd_registrar *r, const json_t *reply)
{
	const char *t = json_string_value(json_object_get(reply,
							  "tunnel_token"));

	if (r->tunnel_token != NULL)
		dd_freezero(r->tunnel_token, strlen(r->tunnel_token));
	r->tunnel_token = t != NULL && t[0] != '\0' ? dd_strdup(t) : NULL;
	if (t != NULL && t[0] != '\0' && r->tunnel_token == NULL)
		dd_log_err(DD_ERR_NOMEM, "keeping the tunnel token");
}

const char *dd_registrar_tunnel_token(const dd_registrar *r)
{
	return r != NULL ? r->tunnel_token : NULL;
}

static json_t *extras_json(const dd_agent_state *st)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && st != NULL && i < st->n_extras; i++)
		json_array_append_new(a, json_pack("{s:s, s:i}", "hostname_label",
						   st->extras[i].label, "port",
						   (int)st->extras[i].port));
	return a;
}

static dd_err_t post_register(dd_registrar *r, const char *token)
{
	char nonce[2 * NONCE_LEN + 1], pub[65], url[2048];
	const char *hdrs[] = {"Content-Type: application/json"};
	dd_httpc_request rq = {.method = "POST", .url = url, .headers = hdrs,
			       .n_headers = 1, .timeout_ms = 60000};
	json_t *body;
	char *text;
	dd_err_t rc;

	dd_hex_encode(r->nonce, sizeof r->nonce, nonce);
	dd_hex_encode(r->pub, sizeof r->pub, pub);
	snprintf(url, sizeof url, "%s/%s", r->cp_url,
		 r->pushing ? "ingress/replace" : "register");
	if (r->pushing)
		body = json_pack("{s:s, s:s, s:s, s:s, s:o}", "agent_id",
				 r->agent_id, "ita_token", token, "nonce", nonce,
				 "noise_pubkey", pub, "extra_ingress",
				 extras_json(r->st));
	else
		body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "vm_name",
				 r->vm_name, "ita_token", token, "nonce", nonce,
				 "noise_pubkey", pub, "url", r->url,
				 "extra_ingress", extras_json(r->st));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL)
		return DD_ERR_NOMEM;
	rq.body = text;
	rq.body_len = strlen(text);
	rc = dd_httpc_start(r->http, &rq, r->pushing ? on_pushed : on_registered,
			    r, &r->call);
	dd_freezero(text, strlen(text));
	return rc;
}

static void on_minted(dd_err_t err, const char *token, const char *why,
		      void *ud)
{
	dd_registrar *r = ud;
	char line[256];
	dd_err_t rc;

	r->minting = 0;
	if (r->closing) {
		maybe_free(r);
		return;
	}
	if (err) {
		snprintf(line, sizeof line, "attesting: %s", why);
		retry(r, line);
		return;
	}
	rc = post_register(r, token);
	if (rc)
		retry(r, dd_strerror(rc));
}

static void on_nonce(dd_httpc_result *res, void *ud)
{
	dd_registrar *r = ud;
	json_t *v = NULL;
	const char *hex = NULL;
	uint8_t rd[DD_REPORT_DATA_LEN];
	char why[160];
	dd_err_t rc;

	r->call = NULL;
	if (res->err || res->status != 200 ||
	    dd_json_parse(res->body.data, res->body.len, 4096, &v, why,
			  sizeof why) != DD_OK ||
	    dd_json_get_str(v, "nonce", &hex) != DD_OK ||
	    strlen(hex) != 2 * NONCE_LEN ||
	    dd_hex_decode(hex, 2 * NONCE_LEN, r->nonce, NONCE_LEN) != DD_OK) {
		snprintf(why, sizeof why, "GET /register/nonce: %s (HTTP %ld)",
			 res->err ? res->message : "bad reply", res->status);
		json_decref(v);
		retry(r, why);
		return;
	}
	json_decref(v);
	rc = dd_binding_register(r->nonce, NONCE_LEN, r->pub, rd);
	if (rc == DD_OK)
		rc = dd_attestor_mint(r->att, rd, on_minted, r);
	if (rc) {
		retry(r, dd_strerror(rc));
		return;
	}
	r->minting = 1;
}

static void attempt(dd_registrar *r)
{
	char url[2048];
	dd_httpc_request rq = {.url = url, .timeout_ms = 10000};
	dd_err_t rc;

	r->attempts++;
	snprintf(url, sizeof url, "%s/register/nonce", r->cp_url);
	rc = dd_httpc_start(r->http, &rq, on_nonce, r, &r->call);
	if (rc)
		retry(r, dd_strerror(rc));
}

dd_err_t dd_registrar_start(uv_loop_t *loop, const dd_registrar_opts *o,
			    dd_registered_cb cb, void *ud, dd_registrar **out)
{
	dd_registrar *r = dd_calloc(1, sizeof *r);

	*out = NULL;
	if (r == NULL)
		return DD_ERR_NOMEM;
	r->cp_url = dd_strdup(o->cp_url);
	r->vm_name = dd_strdup(o->vm_name);
	r->url = dd_strdup(o->url);
	if (r->cp_url == NULL || r->vm_name == NULL || r->url == NULL) {
		dd_free(r->cp_url);
		dd_free(r->vm_name);
		dd_free(r->url);
		dd_free(r);
		return DD_ERR_NOMEM;
	}
	r->loop = loop;
	memcpy(r->pub, o->noise_pub, sizeof r->pub);
	r->att = o->att;
	r->http = o->http;
	r->st = o->st;
	r->unit_ms = o->backoff_ms ? o->backoff_ms : 5000;
	r->check_ms = o->check_ms ? o->check_ms : 60000;
	r->cb = cb;
	r->ud = ud;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_timer, 0, 0);
	*out = r;
	return DD_OK;
}

void dd_registrar_push(dd_registrar *r)
{
	/* Busy (registering, pushing, checking): pushed when it settles. */
	if (r->agent_id[0] == '\0' || r->call != NULL || r->minting ||
	    r->pushing) {
		r->push_wanted = 1;
		return;
	}
	uv_timer_stop(&r->timer);
	r->pushing = 1;
	attempt(r);
}

unsigned dd_registrar_attempts(const dd_registrar *r)
{
	return r->attempts;
}

static void on_timer_closed(uv_handle_t *h)
{
	dd_registrar *r = h->data;

	r->timer_closed = 1;
	maybe_free(r);
}

void dd_registrar_free(dd_registrar *r)
{
	if (r == NULL)
		return;
	r->closing = 1;
	if (r->call != NULL)
		dd_httpc_cancel(r->call);
	r->call = NULL;
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
