/*
 * server_int.h: what server.c (connections, framing, writing) shares
 * with methods.c (the handlers). Not an interface for anything else.
 */
#ifndef DD_SESSIOND_SERVER_INT_H
#define DD_SESSIOND_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "net/usrv.h"
#include "sessiond/proto.h"
#include "sessiond/server.h"
#include "sessiond/session.h"

#define DD_SD_INPUT_HIGH (256u << 10) /* PTY input queued: stop reading */

struct dd_sd_conn {
	dd_usrv_conn u;          /* first: the socket, its buffers, its life */
	dd_sd_server *s;         /* set once the connection is let in */
	int read_eof;
	int blocked;             /* too many replies queued */
	int attached;            /* a raw stream now */
	int input_full;          /* attach: the PTY's input is backed up */
	dd_sd_watch w;
};

struct dd_sd_server {
	dd_sd_server_opts o;
	char *rcpts_path;
	dd_usrv *srv;            /* the socket, the connections */
	uint64_t started;        /* unix seconds */
	char boot_id[37];        /* new at every start: the agent re-pushes */
};

void dd_sd_conn_close(struct dd_sd_conn *c);
void dd_sd_conn_end(struct dd_sd_conn *c);
void dd_sd_conn_reading(struct dd_sd_conn *c);
/* Queues data, which the connection then owns (dd_free after writing). */
void dd_sd_conn_send(struct dd_sd_conn *c, char *data, size_t len);
/* One reply line, from r (NULL: out of memory); r is released. */
void dd_sd_conn_reply_new(struct dd_sd_conn *c, json_t *r);
void dd_sd_conn_error(struct dd_sd_conn *c, const char *code,
		      const char *detail);
/* Bytes from an attached client, for its session's PTY. */
void dd_sd_conn_input(struct dd_sd_conn *c, const uint8_t *data, size_t len);

/* methods.c: runs one parsed request. */
void dd_sd_dispatch(struct dd_sd_conn *c, dd_sd_req *req);

#endif
