#include "agent/sessiond_link.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/strutil.h"

#define BOOT_ID_MAX 64

struct dd_sd_link {
	dd_ndjson *sd;
	dd_devices *devs;
	uv_timer_t timer;
	dd_ndjson_req *req;        /* the status or push in flight */
	int dirty;                 /* the set changed since the last push */
	int up;
	int closing;
	char seen[BOOT_ID_MAX];    /* boot id from the last status */
	char pushed[BOOT_ID_MAX];  /* boot id the set was last pushed to */
};

static void poll_status(dd_sd_link *l);

/* The trust set as sessiond's request (new reference, NULL on NOMEM). */
static json_t *recipients_request(const dd_devices *d)
{
	json_t *keys = json_array(), *rq;
	char hex[2 * DD_DEVICE_KEY_LEN + 1];

	for (size_t i = 0; keys != NULL && i < dd_devices_count(d); i++) {
		const dd_device *dev = dd_devices_at(d, i);

		if (dev->revoked_at_ms != 0)
			continue;
		dd_hex_encode(dev->key, DD_DEVICE_KEY_LEN, hex);
		if (json_array_append_new(keys, json_string(hex)) != 0)
			keys = (json_decref(keys), NULL);
	}
	if (keys == NULL)
		return NULL;
	rq = json_pack("{s:s, s:o}", "method", "recipients.set", "pubkeys", keys);
	return rq;
}

static void on_pushed(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	dd_sd_link *l = ud;
	const char *e = why;

	l->req = NULL;
	if (err == DD_OK && dd_ndjson_reply_check(reply, &e) == DD_OK) {
		memcpy(l->pushed, l->seen, sizeof l->pushed);
		dd_log_info("sessiond: history recipients pushed (%lld)",
			    (long long)json_integer_value(
				    json_object_get(reply, "recipients")));
	} else {
		l->dirty = 1; /* the next poll tries again */
		if (err != DD_ERR_CANCELLED)
			dd_log_warn("sessiond: pushing the recipients: %s", e);
		return;
	}
	if (l->dirty)
		poll_status(l);
}

static void push(dd_sd_link *l)
{
	json_t *rq = recipients_request(l->devs);
	dd_err_t rc;

	l->dirty = 0;
	if (rq == NULL) {
		l->dirty = 1;
		return;
	}
	rc = dd_ndjson_call(l->sd, rq, on_pushed, l, &l->req);
	json_decref(rq);
	if (rc) {
		l->req = NULL;
		l->dirty = 1;
	}
}

static void on_status(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	dd_sd_link *l = ud;
	const char *boot;

	l->req = NULL;
	boot = err ? NULL
		   : json_string_value(json_object_get(reply, "boot_id"));
	if (boot == NULL || dd_ndjson_reply_check(reply, NULL) != DD_OK ||
	    strlen(boot) >= sizeof l->seen) {
		if (l->up && err != DD_ERR_CANCELLED)
			dd_log_warn("sessiond: not answering: %s",
				    err ? why : "a malformed status");
		l->up = 0;
		return;
	}
	if (!l->up)
		dd_log_info("sessiond: up (boot %s)", boot);
	l->up = 1;
	memcpy(l->seen, boot, strlen(boot) + 1);
	if (l->dirty || strcmp(l->seen, l->pushed) != 0)
		push(l);
}

static void poll_status(dd_sd_link *l)
{
	json_t *rq;

	if (l->req != NULL || l->closing)
		return;
	rq = json_pack("{s:s}", "method", "status");
	if (rq == NULL)
		return;
	if (dd_ndjson_call(l->sd, rq, on_status, l, &l->req) != DD_OK) {
		l->req = NULL;
		l->up = 0;
	}
	json_decref(rq);
}

static void on_tick(uv_timer_t *t)
{
	poll_status(t->data);
}

dd_err_t dd_sd_link_new(uv_loop_t *loop, dd_ndjson *sd, dd_devices *devs,
			uint64_t poll_ms, dd_sd_link **out)
{
	dd_sd_link *l = dd_calloc(1, sizeof *l);

	*out = l;
	if (l == NULL)
		return DD_ERR_NOMEM;
	l->sd = sd;
	l->devs = devs;
	l->dirty = 1;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, on_tick, 0, poll_ms ? poll_ms
						      : DD_SD_LINK_POLL_MS);
	return DD_OK;
}

void dd_sd_link_changed(dd_sd_link *l)
{
	l->dirty = 1;
	poll_status(l);
}

int dd_sd_link_up(const dd_sd_link *l)
{
	return l->up;
}

static void on_closed(uv_handle_t *h)
{
	dd_free(h->data);
}

void dd_sd_link_free(dd_sd_link *l)
{
	if (l == NULL)
		return;
	l->closing = 1;
	if (l->req != NULL)
		dd_ndjson_cancel(l->req);
	l->req = NULL;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, on_closed);
}
