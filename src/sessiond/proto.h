/*
 * proto.h: sessiond's request lines, without sockets (docs/sessions.md).
 *
 * One JSON object per line with a string "method"; other fields sit at
 * the top level, as in the Noise RPC of spec/noise-sessions.md section 4,
 * so the agent can forward a client's shell.* request as it is. Every
 * field is checked here, before anything runs: ids must be canonical
 * lowercase UUIDs, sizes 1..65535, and "command" (a free-form program
 * in the reference) is refused: sessions run configured recipes only.
 * Replies are one JSON object per line: {"ok":true,...} or
 * {"ok":false,"error":<code>,"detail":<text>}.
 */
#ifndef DD_SESSIOND_PROTO_H
#define DD_SESSIOND_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "sessiond/recipients.h"

#define DD_SD_WHY 256
#define DD_SD_MAX_NAME 128
#define DD_SD_MAX_CWD 4096
#define DD_SD_DEFAULT_REPLAY (4u << 20)
#define DD_SD_MAX_REPLAY (16u << 20)
#define DD_SD_MIN_REPLAY 1024u

typedef enum {
	DD_SD_LIST_RECIPES = 0,
	DD_SD_LIST_SESSIONS,
	DD_SD_LIST_HISTORY,
	DD_SD_CREATE,
	DD_SD_ATTACH,
	DD_SD_REPLAY,
	DD_SD_RESIZE,
	DD_SD_CLOSE,
	DD_SD_SET_RECIPIENTS,
	DD_SD_STATUS,
} dd_sd_method;

/* A validated request; strings are borrowed from obj. */
typedef struct dd_sd_req {
	json_t *obj;            /* owned: dd_sd_req_free */
	dd_sd_method method;
	const char *id;         /* attach, replay, resize, close */
	const char *recipe;     /* create; NULL: default */
	const char *name;       /* create; NULL: default */
	const char *cwd;        /* create; NULL: the recipe's */
	uint16_t cols, rows;    /* create (0: default), resize (80 x 24) */
	int tail;               /* attach, default 1 */
	int input;              /* attach: wants the input role, default 1 */
	uint64_t cursor;        /* replay, default 0 */
	uint64_t max_bytes;     /* replay, default DD_SD_DEFAULT_REPLAY */
	dd_sd_rcpts rcpts;      /* set_recipients */
} dd_sd_req;

/*
 * Parses one line (no newline) of at most max bytes. On DD_OK *out is
 * filled (dd_sd_req_free it). Otherwise *code is the reply's error code
 * ("too_large", "bad_request", "unknown_method", "not_allowed") and why
 * its detail.
 */
dd_err_t dd_sd_req_parse(const uint8_t *line, size_t len, size_t max,
			 dd_sd_req *out, const char **code, char *why,
			 size_t why_len);
void dd_sd_req_free(dd_sd_req *r);

const char *dd_sd_method_name(dd_sd_method m);

/*
 * {"ok":false,"error":code,"detail":detail} and "\n", appended to out;
 * detail is made valid UTF-8. A fixed line replaces it if that fails.
 */
dd_err_t dd_sd_reply_error(dd_buf *out, const char *code,
			   const char *detail);

/* The compact serialisation of reply and "\n", appended to out. */
dd_err_t dd_sd_reply_line(dd_buf *out, const json_t *reply);

#endif
