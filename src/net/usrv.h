/*
 * usrv.h: the life of a server on a unix socket, as both local daemons
 * (the runtime, sessiond) live it: listen on a path (mode 0600, only our
 * own file removed at close), accept, let in only the expected peer uid
 * and so many connections, keep the live connections, write replies,
 * end (after the queued writes) or close a connection, close everything
 * and say when the last handle has closed. The protocol on top (lines,
 * requests, attached streams) stays with each server.
 *
 * Everything runs on the loop thread.
 */
#ifndef DD_NET_USRV_H
#define DD_NET_USRV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "core/buf.h"
#include "core/err.h"

#define DD_USRV_CHUNK 16384

typedef struct dd_usrv dd_usrv;

/*
 * One connection. Not opaque: each server embeds it as the FIRST member
 * of its own connection struct (ops.conn_size bytes, zeroed, are
 * allocated here), so a dd_usrv_conn * converts to the server's type
 * and its protocol state lives beside the socket. The server reads
 * these fields and changes none of them except through the functions
 * below; in is its to consume.
 */
typedef struct dd_usrv_conn {
	dd_usrv *srv;
	struct dd_usrv_conn *prev, *next;
	uv_pipe_t pipe;
	uv_shutdown_t sreq;
	dd_buf in;               /* bytes read, not yet handled; wiped */
	uint8_t chunk[DD_USRV_CHUNK];
	int closing;             /* uv_close called */
	int closed;              /* close callback ran */
	int ending;              /* shutting down after the queued writes */
	unsigned holds;          /* callbacks still owed to the connection */
} dd_usrv_conn;

/* What the server does at each step of a connection's life. */
typedef struct dd_usrv_ops {
	size_t conn_size;        /* >= sizeof(dd_usrv_conn) */
	/* Accepted and let in: set up and start reading. */
	void (*start)(dd_usrv_conn *c);
	/*
	 * Not let in: FORBIDDEN (uid is the peer's, (uid_t)-1 when it
	 * could not be known) or BUSY. The server may send one error line;
	 * the connection then ends.
	 */
	void (*refused)(dd_usrv_conn *c, dd_err_t why, uid_t uid);
	/*
	 * Bytes read into c->chunk (data, nread > 0), or the end of input
	 * (nread < 0: UV_EOF or libuv's error). Not called once closing.
	 */
	void (*read)(dd_usrv_conn *c, uint8_t *data, ssize_t nread);
	/* A write completed (not called once closing); may be NULL. */
	void (*wrote)(dd_usrv_conn *c);
	/* Close begins: stop what the connection runs; may be NULL. */
	void (*closing)(dd_usrv_conn *c);
} dd_usrv_ops;

typedef struct dd_usrv_opts {
	const char *path;        /* copied; shorter than sun_path */
	int backlog;
	size_t max_line;         /* c->in holds this plus one chunk */
	size_t max_connections;  /* more at once are refused BUSY */
	uid_t peer_uid;          /* the one peer let in ... */
	int root_too;            /* ... and root as well, when set */
	void *ud;                /* the server's, see dd_usrv_ud() */
} dd_usrv_opts;

/*
 * A server for o->path, not yet listening; ops is borrowed and must
 * outlive it. CONFIG when the path is too long for a unix socket.
 * Caller releases it with dd_usrv_close() and, once done ran,
 * dd_usrv_free() (or frees it after the loop itself has closed every
 * handle, as a daemon that failed to start does).
 */
dd_err_t dd_usrv_new(uv_loop_t *loop, const dd_usrv_opts *o,
		     const dd_usrv_ops *ops, dd_usrv **out);

/* Binds (mode 0600, see dd_unixsock_listen) and listens. IO with why. */
dd_err_t dd_usrv_listen(dd_usrv *s, char *why, size_t why_len);

void *dd_usrv_ud(const dd_usrv *s);
const char *dd_usrv_path(const dd_usrv *s);
size_t dd_usrv_nconns(const dd_usrv *s);

/*
 * Removes our socket file, closes every connection and the listener;
 * done(ud) runs from the loop once all of them are closed and freed.
 * Calls after the first do nothing.
 */
void dd_usrv_close(dd_usrv *s, void (*done)(void *ud), void *ud);

/* Frees a server whose handles are closed (see dd_usrv_new). */
void dd_usrv_free(dd_usrv *s);

/* Reads, or stops reading (want 0); nothing once ending or closing. */
void dd_usrv_conn_reading(dd_usrv_conn *c, int want);

/*
 * Queues data (len bytes, dd_malloc'd), which the connection then owns
 * and dd_frees after writing; dropped once ending or closing. A failed
 * write closes the connection.
 */
void dd_usrv_conn_send(dd_usrv_conn *c, char *data, size_t len);

/* Sends b's bytes (taken from b, which is left empty). */
void dd_usrv_conn_send_buf(dd_usrv_conn *c, dd_buf *b);

/* Bytes queued for writing. */
size_t dd_usrv_conn_queued(const dd_usrv_conn *c);

/* Stops reading and closes once every queued write is done. */
void dd_usrv_conn_end(dd_usrv_conn *c);

/* Closes at once (ops.closing runs first). */
void dd_usrv_conn_close(dd_usrv_conn *c);

/*
 * A callback is owed to c (a quote, say): its memory stays until as
 * many dd_usrv_conn_unhold() calls, even once closed. unhold may free c:
 * the caller must not touch c after it when c->closing was set.
 */
void dd_usrv_conn_hold(dd_usrv_conn *c);
void dd_usrv_conn_unhold(dd_usrv_conn *c);

/* What the first line in c->in is. */
typedef enum dd_usrv_line {
	DD_USRV_LINE_WAIT,       /* no whole line yet */
	DD_USRV_LINE_OK,         /* a line: *len bytes, then *used consumed */
	DD_USRV_LINE_EOF,        /* input ended and nothing is left */
	DD_USRV_LINE_TOO_LONG,   /* longer than max, whole or not */
} dd_usrv_line;

/*
 * Finds the first line of c->in: its newline, or the end of input (eof
 * set) after a last line without one. *len excludes the newline, *used
 * includes it.
 */
dd_usrv_line dd_usrv_conn_line(const dd_usrv_conn *c, size_t max, int eof,
			       size_t *len, size_t *used);

#endif
