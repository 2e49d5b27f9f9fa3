/*
 * server.h: the runtime's unix socket, speaking EasyEnclave's protocol
 * (spec/integrations.md section 6) to any number of connections.
 *
 * A connection carries one request per line and gets one reply line per
 * request, in order; requests are handled one at a time (a slow exec or
 * attest holds back the lines after it, not other connections). A line
 * longer than max_request gets an error reply and the connection is
 * closed once the reply is out; anything else that is wrong with a line
 * gets an error reply and the connection stays usable. A client that
 * stops reading its replies is no longer read from (4 MiB of replies at
 * most wait for it). After the acknowledgement of `attach`, the
 * connection is a raw byte pipe to a PTY until the command ends or the
 * client closes its side.
 *
 * Peers must run as our user or as root (SO_PEERCRED), on top of the
 * socket file's mode 0600.
 */
#ifndef DD_RUNTIME_SERVER_H
#define DD_RUNTIME_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "attest/provider.h"
#include "core/err.h"
#include "runtime/apps.h"
#include "runtime/proc.h"

typedef struct dd_rt_server dd_rt_server;

typedef struct dd_rt_server_opts {
	const char *path;           /* socket path; must not exist */
	const char *token;          /* EE_TOKEN demanded; NULL or "": none */
	size_t max_request;         /* line cap, bytes */
	size_t max_connections;
	size_t exec_max_output;     /* per stream */
	uint64_t grace_ms;
	char *const *base_env;      /* borrowed */
	dd_rt_procs *procs;         /* borrowed */
	dd_rt_apps *apps;           /* borrowed */
	dd_quote_provider *quotes;  /* borrowed */
	const char *attestation_type; /* "tdx", or "simulated" */
} dd_rt_server_opts;

/* Strings are copied (the token wiped on free). */
dd_err_t dd_rt_server_new(uv_loop_t *loop, const dd_rt_server_opts *o,
			  dd_rt_server **out);

/*
 * Binds and listens: the file is created mode 0600 (no window in which
 * it is wider). IO with why on failure.
 */
dd_err_t dd_rt_server_listen(dd_rt_server *s, char *why, size_t why_len);

/*
 * Stops listening (removing the socket file), closes every connection
 * and stops their commands; done(ud) runs from the loop once all are
 * gone. Quote requests still pending keep their connection's memory
 * until the provider answers them (close it right after this).
 */
void dd_rt_server_close(dd_rt_server *s, void (*done)(void *ud), void *ud);
void dd_rt_server_free(dd_rt_server *s);

#endif
