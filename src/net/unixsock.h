/*
 * unixsock.h: what every daemon behind a unix socket does before it
 * listens (the local runtime, sessiond): make the socket's directory and
 * take over a socket file left by a process that died.
 */
#ifndef DD_NET_UNIXSOCK_H
#define DD_NET_UNIXSOCK_H

#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "core/err.h"

/*
 * Prepares path for bind: CONFIG when it is longer than a socket path
 * may be (libuv would cut it and listen elsewhere); the missing parent
 * directories are made 0700; a socket file nobody answers on is removed.
 * EXISTS when another process listens there or the file is not a socket,
 * IO otherwise; why says which (name is the setting's name, for it).
 */
dd_err_t dd_unixsock_prepare(const char *path, const char *name, char *why,
			     size_t why_len);

/* Which file a listener made, so that only that file is ever removed. */
typedef struct dd_unixsock_id {
	dev_t dev;
	ino_t ino;
	int made;
} dd_unixsock_id;

/*
 * Binds l (initialised, not yet bound) to path and listens: the file is
 * created mode 0600, with no moment in which it is wider. IO with why
 * on failure.
 */
dd_err_t dd_unixsock_listen(uv_pipe_t *l, const char *path, int backlog,
			    uv_connection_cb cb, dd_unixsock_id *id, char *why,
			    size_t why_len);

/* Removes path if it is still the file id names (another may own it). */
void dd_unixsock_unlink(const char *path, const dd_unixsock_id *id);

/* The uid of the process at the other end of a connected pipe. */
dd_err_t dd_unixsock_peer_uid(uv_pipe_t *pipe, uid_t *uid);

#endif
