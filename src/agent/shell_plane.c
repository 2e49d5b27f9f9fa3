#include "agent/shell_plane.h"

#include "agent/noise_gw.h"
#include "agent/sessiond_link.h"
#include "core/alloc.h"
#include "core/log.h"

/* Replay pages and session lists come back whole: room for both. */
#define SD_MAX_REPLY (1u << 20)
#define SD_TIMEOUT_MS 10000

struct dd_shell_plane {
	dd_devices *devices;
	unsigned sub;
	int subscribed;
	dd_ndjson *sd;
	dd_sd_link *link;
	dd_noise_gw *gw;
};

static int trusted(const uint8_t pub[DD_X25519_LEN], void *ud)
{
	return dd_devices_is_trusted(ud, pub);
}

static void on_revoke(const uint8_t key[DD_DEVICE_KEY_LEN], void *ud)
{
	dd_shell_plane *p = ud;

	dd_noise_gw_revoke(p->gw, key);
}

static void on_change(void *ud)
{
	dd_shell_plane *p = ud;

	if (p->link != NULL)
		dd_sd_link_changed(p->link);
}

static dd_err_t connect_sessiond(dd_shell_plane *p, const dd_shell_plane_opts *o)
{
	dd_ndjson_opts so = {.path = o->sessiond_socket,
			     .timeout_ms = SD_TIMEOUT_MS,
			     .max_reply = SD_MAX_REPLY};
	dd_err_t rc;

	rc = dd_ndjson_new(o->loop, &so, &p->sd);
	if (rc == DD_OK)
		rc = dd_sd_link_new(o->loop, p->sd, o->devices, o->poll_ms,
				    &p->link);
	return rc;
}

dd_err_t dd_shell_plane_new(const dd_shell_plane_opts *o, dd_shell_plane **out)
{
	dd_shell_plane *p = dd_calloc(1, sizeof *p);
	dd_devices_hooks h = {.on_revoke = on_revoke, .on_change = on_change};
	dd_noise_gw_opts go = {.key = o->key, .trusted = trusted,
			       .trusted_ud = o->devices,
			       .handshake_ms = o->handshake_ms};
	dd_err_t rc = DD_OK;

	*out = p;
	if (p == NULL)
		return DD_ERR_NOMEM;
	p->devices = o->devices;
	if (o->sessiond_socket != NULL)
		rc = connect_sessiond(p, o);
	go.rpc = (dd_noise_rpc_opts){.sessiond = p->sd, .ee = o->ee,
				     .confidential = o->confidential};
	if (rc == DD_OK)
		rc = dd_noise_gw_new(&go, &p->gw);
	h.ud = p;
	if (rc == DD_OK)
		rc = dd_devices_subscribe(o->devices, &h, &p->sub);
	p->subscribed = rc == DD_OK;
	if (rc)
		dd_log_err(rc, "setting up the shell plane");
	return rc;
}

size_t dd_shell_plane_routes(dd_shell_plane *p, dd_authz_route *routes)
{
	routes[0] = dd_noise_gw_route(p->gw);
	return 1;
}

int dd_shell_plane_sessiond_up(const dd_shell_plane *p)
{
	return p->link != NULL && dd_sd_link_up(p->link);
}

static void on_sd_closed(dd_ndjson *c, void *ud)
{
	(void)ud;
	dd_ndjson_free(c);
}

void dd_shell_plane_free(dd_shell_plane *p)
{
	if (p == NULL)
		return;
	if (p->subscribed)
		dd_devices_unsubscribe(p->devices, p->sub);
	dd_noise_gw_free(p->gw);
	dd_sd_link_free(p->link);
	/* The client's memory goes once its handles are closed. */
	if (p->sd != NULL)
		dd_ndjson_close(p->sd, on_sd_closed, NULL);
	dd_free(p);
}
