/*
 * shell_plane.h: everything behind an attested shell on the agent, wired
 * once: the sessiond client (its unix socket), the link that keeps
 * sessiond's history recipients equal to the trust set, and the
 * `/noise/ws` gateway, which also drops a device's connections the
 * moment it is revoked. docs/noise.md and docs/sessions.md.
 */
#ifndef DD_AGENT_SHELL_PLANE_H
#define DD_AGENT_SHELL_PLANE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "agent/devices.h"
#include "auth/authz.h"
#include "core/err.h"
#include "net/ndjson.h"
#include "noise/static_key.h"

#define DD_SHELL_PLANE_ROUTES 1

typedef struct dd_shell_plane dd_shell_plane;

typedef struct dd_shell_plane_opts {
	uv_loop_t *loop;
	const dd_static_key *key;    /* the agent's Noise key; borrowed */
	dd_devices *devices;         /* borrowed */
	dd_ndjson *ee;               /* EasyEnclave's client; may be NULL */
	const char *sessiond_socket; /* NULL: shells answer shell_failed */
	int confidential;
	uint64_t handshake_ms;       /* 0: the gateway's default */
	uint64_t poll_ms;            /* sessiond status; 0: the default */
} dd_shell_plane_opts;

/* Everything borrowed must outlive the plane. Free with dd_shell_plane_free. */
dd_err_t dd_shell_plane_new(const dd_shell_plane_opts *o, dd_shell_plane **out);

/* Fills routes (room for DD_SHELL_PLANE_ROUTES); returns n. */
size_t dd_shell_plane_routes(dd_shell_plane *p, dd_authz_route *routes);

/* 1 while sessiond answers. */
int dd_shell_plane_sessiond_up(const dd_shell_plane *p);

/*
 * Ends connections, stops the link and closes the sessiond client; the
 * loop releases the rest. Call while the loop still runs.
 */
void dd_shell_plane_free(dd_shell_plane *p);

#endif
