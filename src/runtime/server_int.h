/*
 * server_int.h: what server.c (connections, framing, writing) shares
 * with methods.c (the handlers). Not an interface for anything else.
 */
#ifndef DD_RUNTIME_SERVER_INT_H
#define DD_RUNTIME_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "net/usrv.h"
#include "runtime/exec.h"
#include "runtime/proc.h"
#include "runtime/proto.h"
#include "runtime/server.h"

#define DD_RT_PTY_HIGH (256u << 10)  /* attach: bytes queued either way */
#define DD_RT_PTY_LOW (64u << 10)

struct dd_rt_conn {
	dd_usrv_conn u;          /* first: the socket, its buffers, its life */
	dd_rt_server *s;         /* set once the connection is let in */
	int read_eof;
	int busy;                /* an exec or attest is answering */
	int blocked;             /* too many replies queued */
	size_t rd_len;           /* attest: unpadded report data */
	uint8_t rd[64];
	dd_rt_exec *exec;
	dd_rt_proc *pty;         /* attach */
	int attached;
	int client_paused;       /* attach: PTY input is backed up */
};

struct dd_rt_server {
	uv_loop_t *loop;
	dd_rt_server_opts o;
	char *token;
	dd_usrv *srv;            /* the socket, the connections */
	size_t execs;
	uint64_t started_ms;
};

/* Closes at once; pending commands are stopped. */
void dd_rt_conn_close(struct dd_rt_conn *c);
/* Closes once every queued reply is written. */
void dd_rt_conn_end(struct dd_rt_conn *c);
/* Reads, or not, as the connection's state asks. */
void dd_rt_conn_reading(struct dd_rt_conn *c);
/* Handles every complete line while the connection may take one. */
void dd_rt_conn_pump(struct dd_rt_conn *c);
/* Queues data, which the connection then owns (dd_free after writing). */
void dd_rt_conn_send(struct dd_rt_conn *c, char *data, size_t len);
/* One reply line: r (NULL means out of memory), or an error. */
void dd_rt_conn_reply(struct dd_rt_conn *c, const json_t *r);
void dd_rt_conn_reply_new(struct dd_rt_conn *c, json_t *r);
void dd_rt_conn_error(struct dd_rt_conn *c, const char *msg);
size_t dd_rt_conn_queued(const struct dd_rt_conn *c);

/* methods.c: runs one parsed request. */
void dd_rt_dispatch(struct dd_rt_conn *c, const json_t *req, dd_rt_method m);
/* methods.c: bytes from an attached client, for its PTY. */
void dd_rt_attach_input(struct dd_rt_conn *c, const uint8_t *data, size_t len);

#endif
