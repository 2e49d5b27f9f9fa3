#include "agent/ee_watch.h"

#include <string.h>

#include "core/alloc.h"

#define BOOT_POLL_MS 250

struct dd_ee_watch {
	uv_loop_t *loop;
	uv_timer_t timer;
	dd_ndjson *ee;
	uint64_t interval_ms;
	uint64_t deadline_ms;      /* boot budget; 0 once ready */
	dd_ee_ready_cb ready;
	void *ready_ud;
	int booting;
	dd_ndjson_req *health_req, *list_req;
	int list_again;            /* a refresh came while a list was out */
	json_t *health, *list;
};

static void poll_now(dd_ee_watch *w);

static void on_timer(uv_timer_t *t)
{
	poll_now(t->data);
}

static void keep(json_t **slot, dd_err_t err, json_t *reply)
{
	json_decref(*slot);
	*slot = err == DD_OK && dd_ndjson_reply_check(reply, NULL) == DD_OK
		? json_incref(reply) : NULL;
}

static void on_list(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	dd_ee_watch *w = ud;

	(void)why;
	w->list_req = NULL;
	keep(&w->list, err, reply);
	/* That list may predate a deploy: ask once more. */
	if (w->list_again) {
		json_t *rq = json_pack("{s:s}", "method", "list");

		w->list_again = 0;
		if (rq != NULL)
			dd_ndjson_call(w->ee, rq, on_list, w, &w->list_req);
		json_decref(rq);
	}
}

static void on_health(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	dd_ee_watch *w = ud;
	json_t *rq;

	w->health_req = NULL;
	keep(&w->health, err, reply);
	if (w->booting) {
		if (w->health != NULL) {
			w->booting = 0;
			w->ready(DD_OK, "", w->ready_ud);
		} else if (uv_now(w->loop) >= w->deadline_ms) {
			/* Reported once; polling goes on for /health. */
			w->booting = 0;
			w->ready(DD_ERR_TIMEOUT, why, w->ready_ud);
		} else {
			uv_timer_start(&w->timer, on_timer, BOOT_POLL_MS, 0);
			return;
		}
	}
	rq = json_pack("{s:s}", "method", "list");
	if (rq != NULL && w->list_req == NULL)
		dd_ndjson_call(w->ee, rq, on_list, w, &w->list_req);
	json_decref(rq);
	uv_timer_start(&w->timer, on_timer, w->interval_ms, 0);
}

static void poll_now(dd_ee_watch *w)
{
	json_t *rq = json_pack("{s:s}", "method", "health");
	dd_err_t rc = rq ? dd_ndjson_call(w->ee, rq, on_health, w,
					   &w->health_req)
			 : DD_ERR_NOMEM;

	json_decref(rq);
	/* Could not even ask: try again later, as if EE had not answered. */
	if (rc)
		uv_timer_start(&w->timer, on_timer,
			       w->booting ? BOOT_POLL_MS : w->interval_ms, 0);
}

dd_err_t dd_ee_watch_new(uv_loop_t *loop, dd_ndjson *ee, uint64_t interval_ms,
			 dd_ee_watch **out)
{
	dd_ee_watch *w = dd_calloc(1, sizeof *w);

	*out = w;
	if (w == NULL)
		return DD_ERR_NOMEM;
	w->loop = loop;
	w->ee = ee;
	w->interval_ms = interval_ms ? interval_ms : 5000;
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	return DD_OK;
}

dd_err_t dd_ee_watch_start(dd_ee_watch *w, uint64_t budget_ms,
			   dd_ee_ready_cb cb, void *ud)
{
	w->ready = cb;
	w->ready_ud = ud;
	w->booting = 1;
	w->deadline_ms = uv_now(w->loop) + budget_ms;
	uv_timer_start(&w->timer, on_timer, 0, 0);
	return DD_OK;
}

json_t *dd_ee_watch_health(const dd_ee_watch *w)
{
	return w->health;
}

json_t *dd_ee_watch_list(const dd_ee_watch *w)
{
	return w->list;
}

void dd_ee_watch_refresh(dd_ee_watch *w)
{
	if (w->list_req != NULL)
		w->list_again = 1;
	if (w->booting || w->health_req != NULL)
		return;
	uv_timer_start(&w->timer, on_timer, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
	dd_free(h->data);
}

void dd_ee_watch_free(dd_ee_watch *w)
{
	if (w == NULL)
		return;
	if (w->health_req != NULL)
		dd_ndjson_cancel(w->health_req);
	if (w->list_req != NULL)
		dd_ndjson_cancel(w->list_req);
	json_decref(w->health);
	json_decref(w->list);
	uv_close((uv_handle_t *)&w->timer, on_closed);
}
