/*
 * server.h: sessiond's unix socket (docs/sessions.md).
 *
 * The socket file is born mode 0600 and every peer must run as the one
 * uid allowed (the agent's; SO_PEERCRED), so no process of a session,
 * nor any other user, can create sessions, attach to them or change the
 * recipients. There is no TCP listener.
 *
 * A connection carries one request per line and gets one reply line per
 * request, in order. A line longer than max_request gets an error reply
 * and the connection is closed once it is out; anything else wrong with
 * a line gets an error reply and the connection stays usable. After the
 * acknowledgement of shell.attach_session the connection is a raw byte
 * stream: terminal output to the client, and (for the watcher holding
 * the input role) the client's bytes to the PTY, starting with any bytes
 * that followed the request's newline. The stream ends (EOF) when the
 * session's output does; a watcher more than DD_SD_WATCH_BACKLOG bytes
 * behind is disconnected rather than silently skipped.
 */
#ifndef DD_SESSIOND_SERVER_H
#define DD_SESSIOND_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "core/err.h"
#include "sessiond/history.h"
#include "sessiond/recipes.h"
#include "sessiond/recipients.h"
#include "sessiond/session.h"

#define DD_SD_WATCH_BACKLOG (4u << 20)

typedef struct dd_sd_server dd_sd_server;

typedef struct dd_sd_server_opts {
	const char *path;           /* socket path; must not exist */
	uid_t peer_uid;             /* the only uid allowed to connect */
	size_t max_request;         /* line cap, bytes */
	size_t max_connections;
	dd_sd_sessions *sessions;   /* borrowed */
	dd_hist *hist;              /* borrowed */
	const dd_recipes *recipes;  /* borrowed */
	dd_sd_rcpts *rcpts;         /* borrowed; replaced by recipients.set */
	const char *rcpts_path;     /* where the set is kept */
} dd_sd_server_opts;

/* Strings are copied. */
dd_err_t dd_sd_server_new(uv_loop_t *loop, const dd_sd_server_opts *o,
			  dd_sd_server **out);

/* Binds (file born 0600) and listens. IO with why on failure. */
dd_err_t dd_sd_server_listen(dd_sd_server *s, char *why, size_t why_len);

/*
 * Stops listening (removing the socket file) and closes every
 * connection; done(ud) runs from the loop once all are gone.
 */
void dd_sd_server_close(dd_sd_server *s, void (*done)(void *ud), void *ud);
void dd_sd_server_free(dd_sd_server *s);

#endif
