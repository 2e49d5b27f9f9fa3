/*
 * http_int.h: private to http.c and http_resp.c (the HTTP server split by
 * concern: connection lifecycle and parsing vs. response writing). No other
 * module includes this.
 */
#ifndef DD_NET_HTTP_INT_H
#define DD_NET_HTTP_INT_H

#include <stdbool.h>

#include <llhttp.h>

#include "core/buf.h"
#include "net/http.h"

#define HTTP_RID_LEN 32
/* Stream writes report BUSY above this and drain below the low mark. */
#define HTTP_WRITE_HIGH (256u * 1024)
#define HTTP_WRITE_LOW (64u * 1024)
/* A lingering close reads and discards for at most this long. */
#define HTTP_LINGER_MS 2000

enum conn_state {
	C_IDLE,    /* waiting for the first byte of a request */
	C_HEAD,    /* request line and headers arriving */
	C_BODY,    /* body arriving */
	C_HANDLER, /* handler owns the request */
	C_LINGER,  /* response sent, discarding input before close */
	C_CLOSED,
};

struct hdr {
	size_t name_off, name_len, val_off, val_len;
};

struct conn;

struct dd_http_req {
	struct conn *conn;       /* NULL once the connection is gone */
	dd_http_server *srv;
	const dd_http_route *route;
	dd_route_match match;
	unsigned method_bit;
	const char *method_name; /* static, from llhttp */
	int http_minor;
	dd_buf head;             /* url\0 name\0 value\0 ... (capped) */
	size_t path_len;         /* url bytes before '?' */
	size_t query_off;        /* offset of the query text in head */
	struct hdr *hdrs;
	size_t nhdrs, hdrs_alloc;
	bool in_field;           /* llhttp is delivering a header name */
	size_t cur_name_off, cur_name_len, cur_val_off;
	int reject_status;       /* a limit tripped inside a parser callback */
	dd_buf body;
	char **decoded;          /* decoded query values handed out */
	size_t ndecoded;
	char rid[HTTP_RID_LEN + 1];
	bool authenticated;
	bool head_only;
	bool finished;
	bool streaming;
	bool chunked;
	bool expect_continue;
	dd_buf resp_hdrs;        /* extra response header lines */
	int status;
	uint64_t start_us;
	uint64_t bytes_out;
	void (*abort_cb)(void *ud);
	void *abort_ud;
	void (*drain_cb)(void *ud);
	void *drain_ud;
};

struct conn {
	dd_http_server *srv;
	uv_stream_t *stream;     /* separate so an upgrade can hand it over */
	bool is_tcp;             /* else a unix socket or an adopted fd */
	uv_timer_t timer;
	llhttp_t parser;
	enum conn_state state;
	dd_http_req *req;
	dd_buf in;               /* received, not yet parsed */
	uint64_t deadline_ms;    /* phase deadline; 0 = none */
	uint64_t write_deadline_ms; /* progress deadline while writing */
	size_t write_queued;     /* bytes handed to uv_write, not done */
	size_t handles_open;
	uint64_t head_seen;      /* raw bytes of the current head */
	bool reading;
	bool peer_eof;
	bool keep_alive;         /* for the request in hand */
	bool close_after_write;
	bool in_process;         /* conn_process is on the stack */
	bool close_pending;      /* close asked for while in_process */
	bool close_reset;        /* ... and whether as a reset */
	bool upgraded;
	bool shut_down;          /* uv_shutdown issued (no reset then) */
	bool body_unread;        /* answered before the body was read */
	bool expecting_body;     /* headers done, body not yet complete */
	uint64_t chunk_left;     /* bytes left in the current chunk */
	unsigned crlf_left;      /* chunk-ending CRLF bytes still to check */
	const char *exec_start;  /* the bytes given to llhttp ... */
	const char *exec_end;    /* ... and their end */
	bool value_cut;          /* last header value piece hit exec_end */
	struct conn *prev, *next;
	char peer[48];
};

struct dd_http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;        /* TCP only; unix streams come by adopt */
	bool listening;
	bool shutting_down;
	dd_http_limits lim;
	char name[32];
	dd_router *router;
	dd_http_route **routes;
	size_t nroutes;
	llhttp_settings_t settings;
	struct conn *conns;
	size_t nconns;
	size_t live;             /* conn structs not yet freed */
	uint16_t port;
	uv_timer_t drain_timer;
	bool drain_timer_open;
	void (*done)(dd_http_server *srv, void *ud);
	void *done_ud;
	union http_stream *spare; /* accepts-and-drops when allocation fails */
	uint64_t rid_seed;
	uint64_t rid_counter;
	char date[64];
	uint64_t date_sec;
	char rbuf[65536];        /* shared: parsed or copied before return */
};

/*
 * uv_buf_t wants a mutable pointer even for writes, which only read it;
 * this keeps const data const everywhere else.
 */
static inline uv_buf_t http_cbuf(const void *p, size_t n)
{
	union {
		const void *c;
		char *m;
	} u = {p};

	return uv_buf_init(u.m, (unsigned)n);
}

/* Storage for any stream type a connection may use. */
union http_stream {
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

static inline uint64_t http_now(const struct conn *c)
{
	return uv_now(c->srv->loop);
}

/* http_conn.c: connection lifecycle. */
dd_http_req *http_req_new(struct conn *c);
void http_conn_request_done(struct conn *c);
void http_conn_close(struct conn *c);
void http_conn_close_ex(struct conn *c, bool reset);
void http_conn_unlink(struct conn *c);
void http_conn_resume_reading(struct conn *c);
void http_conn_pause_reading(struct conn *c);
void http_conn_arm_timer(struct conn *c);
size_t http_conn_in_cap(const struct conn *c);
dd_err_t http_conn_write(struct conn *c, const uv_buf_t *bufs,
			 unsigned nbufs);
void http_req_free(dd_http_req *req);
/* Hands the TCP stream over (protocol switch); see http.c. */
uv_stream_t *http_conn_detach(struct conn *c);

void http_access_log(const dd_http_req *req);

/* http.c */
void http_server_check_done(dd_http_server *srv);

/* http_parse.c */
void http_parse_settings(llhttp_settings_t *s);
int http_check_crlf(struct conn *c, const char *q, size_t avail);

/* http_resp.c: the server's own error replies. */
void http_reply_error(struct conn *c, int status, const char *code,
		      const char *message);
const char *http_status_text(int status);

#endif
