/*
 * ndjson.h: client for the EasyEnclave unix socket (one JSON object per
 * line, spec/integrations.md section 6).
 *
 * A call is one exchange per connection: connect, write the compact
 * request plus "\n", shut down our write half, read exactly one reply
 * line, parse it. The reply line is capped (TOO_LARGE as soon as the cap
 * is passed) and the whole exchange has a deadline (the reference client
 * had neither). If a token is configured it is added as "token" to a
 * copy of every request; the caller's JSON is never modified, and the
 * serialised request is wiped after it is written.
 *
 * Attach is the same up to the reply, which is the ack line
 * ({"ok":true,...}, at most 4096 bytes): the write half stays open and
 * the connection is handed to the caller as a raw byte stream, together
 * with any bytes that arrived after the ack's newline, so no PTY output
 * is lost.
 *
 * Errors, distinct so callers can say what went wrong:
 *   NOT_FOUND    no socket at the path
 *   UPSTREAM     the path exists but nothing listens (connection refused),
 *                or an attach ack said ok:false
 *   UNAUTHORIZED an attach ack said "unauthenticated" (token mismatch)
 *   FORBIDDEN    no permission to connect
 *   BUSY         the listener's backlog is full
 *   CLOSED       the peer closed (or reset) before sending any byte
 *   TRUNCATED    the peer closed in the middle of the reply line
 *   TOO_LARGE    the reply line passed the cap
 *   INVALID      the reply is not a JSON object
 *   TIMEOUT      the deadline passed
 *   CANCELLED    the client was closed while the call was running
 *   IO           any other socket error
 * A reply with "ok": false is still DD_OK for a call: it is a complete
 * answer; dd_ndjson_reply_check() turns it into an error.
 *
 * Everything runs on the loop thread. The process must ignore SIGPIPE:
 * a write to a peer that has gone away would otherwise kill it.
 */
#ifndef DD_NET_NDJSON_H
#define DD_NET_NDJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"

#define DD_NDJSON_DEFAULT_TIMEOUT_MS 30000u
#define DD_NDJSON_DEFAULT_MAX_REPLY (4u << 20)
#define DD_NDJSON_DEFAULT_MAX_REQUEST (1u << 20)
#define DD_NDJSON_DEFAULT_MAX_INFLIGHT 64u
#define DD_NDJSON_MAX_ACK 4096u
#define DD_NDJSON_MAX_TOKEN 256u

typedef struct dd_ndjson dd_ndjson;
typedef struct dd_ndjson_req dd_ndjson_req;

/* Zero or NULL selects the default. Strings are copied. */
typedef struct dd_ndjson_opts {
	const char *path;        /* required; shorter than sun_path */
	/*
	 * Secret: NULL or "" sends no token. At most DD_NDJSON_MAX_TOKEN
	 * characters from [A-Za-z0-9._~+/=-] (EasyEnclave's is hex).
	 */
	const char *token;
	uint64_t timeout_ms;     /* whole exchange, or up to the attach ack */
	size_t max_reply;        /* reply line cap, newline excluded */
	size_t max_request;      /* serialised request cap */
	unsigned max_inflight;   /* more concurrent calls: BUSY */
} dd_ndjson_opts;

/*
 * Result of a call. reply is a JSON object, borrowed: valid until the
 * callback returns (json_incref() it to keep it); NULL unless err is
 * DD_OK. why is a human-readable reason, "" on success; it never holds
 * the token.
 */
typedef void (*dd_ndjson_cb)(dd_err_t err, json_t *reply, const char *why,
			     void *ud);

/*
 * Result of an attach. On DD_OK the caller owns pipe: reading is
 * stopped, pipe->data is NULL and free for the caller, and it must
 * eventually be released with dd_ndjson_pipe_close(). extra holds the
 * extra_len bytes received after the ack's newline (valid only during
 * the callback); they come before anything read from pipe later. ack is
 * the parsed ack line (borrowed, like reply above). On error pipe and
 * ack are NULL.
 */
typedef void (*dd_ndjson_attach_cb)(dd_err_t err, uv_pipe_t *pipe,
				    const uint8_t *extra, size_t extra_len,
				    json_t *ack, const char *why, void *ud);

typedef void (*dd_ndjson_close_cb)(dd_ndjson *c, void *ud);

/*
 * Creates a client for one socket path. CONFIG for a missing or too long
 * path or a malformed token. Caller releases it with dd_ndjson_close()
 * and then dd_ndjson_free().
 */
dd_err_t dd_ndjson_new(uv_loop_t *loop, const dd_ndjson_opts *opts,
		       dd_ndjson **out);

/*
 * Sends request (a JSON object; not modified, not kept) and calls cb
 * once with the reply, unless the call is cancelled first. On error the
 * callback is never called: INVALID when request is not an object,
 * TOO_LARGE over max_request, BUSY, CLOSED after dd_ndjson_close(),
 * NOMEM. *out (if out is not NULL) is valid until the callback starts.
 */
dd_err_t dd_ndjson_call(dd_ndjson *c, const json_t *request, dd_ndjson_cb cb,
			void *ud, dd_ndjson_req **out);

/*
 * Like dd_ndjson_call for an "attach" request (the caller builds it:
 * method, cmd): reads the ack, requires "ok": true, then hands over the
 * stream. The ack line is capped at DD_NDJSON_MAX_ACK bytes.
 */
dd_err_t dd_ndjson_attach(dd_ndjson *c, const json_t *request,
			  dd_ndjson_attach_cb cb, void *ud,
			  dd_ndjson_req **out);

/*
 * Abandons a call or attach whose callback has not started: the
 * callback is NOT called and the handle must not be used again. The
 * connection is closed and memory is released from the loop.
 */
void dd_ndjson_cancel(dd_ndjson_req *r);

/*
 * Shuts the client down: outstanding calls complete with
 * DD_ERR_CANCELLED (callbacks run before this returns), their sockets
 * are closed, and done(c, ud) runs from the loop once nothing of the
 * client is left open; then dd_ndjson_free() may be called (also from
 * done). Pipes already handed over by attach belong to their callers and
 * are not touched. Call at most once.
 */
void dd_ndjson_close(dd_ndjson *c, dd_ndjson_close_cb done, void *ud);

/* Frees a client whose close has completed (wipes the token). */
void dd_ndjson_free(dd_ndjson *c);

/* Closes and frees a pipe handed over by dd_ndjson_attach. */
void dd_ndjson_pipe_close(uv_pipe_t *pipe);

/*
 * Maps an EasyEnclave reply object to a status: DD_OK when "ok" is
 * true; UNAUTHORIZED for "unauthenticated"; UPSTREAM for any other
 * "ok": false; INVALID when "ok" is missing or not a boolean. *error
 * (may be NULL) points at the reply's "error" text or a fixed reason,
 * borrowed from reply.
 */
dd_err_t dd_ndjson_reply_check(const json_t *reply, const char **error);

/*
 * The framing and parsing of reply lines, without sockets (used by the
 * client and by fuzz/ndjson_reply_fuzz.c).
 *
 * A reader collects one line of at most max bytes (newline excluded).
 * Feed it bytes as they arrive: DD_OK once the newline was seen, with
 * *used set to the bytes of this chunk consumed (newline included; the
 * rest belongs to whatever follows the line); TRUNCATED when more bytes
 * are needed (all were consumed); TOO_LARGE once the line cannot fit.
 * After DD_OK or TOO_LARGE the reader is finished and further feeds
 * return the same status without consuming anything.
 */
typedef struct dd_ndjson_reader {
	dd_buf line;
	dd_err_t state;  /* TRUNCATED while collecting */
} dd_ndjson_reader;

void dd_ndjson_reader_init(dd_ndjson_reader *rd, size_t max);
void dd_ndjson_reader_free(dd_ndjson_reader *rd);
dd_err_t dd_ndjson_reader_feed(dd_ndjson_reader *rd, const uint8_t *data,
			       size_t len, size_t *used);

/*
 * Parses one reply line (no newline) of at most max bytes into a JSON
 * object. *out is a new reference: the caller json_decref()s it.
 * INVALID (with the reason in why) for anything but a JSON object.
 */
dd_err_t dd_ndjson_parse_line(const void *line, size_t len, size_t max,
			      json_t **out, char *why, size_t why_len);

/*
 * Appends the request line: the compact serialisation of request, with
 * "token" set to token when token is not NULL (replacing any "token" the
 * request had), and "\n". TOO_LARGE at b's cap, INVALID when request is
 * not an object. Wipe b after use: it holds the token.
 */
dd_err_t dd_ndjson_encode(dd_buf *b, const json_t *request,
			  const char *token);

#endif
