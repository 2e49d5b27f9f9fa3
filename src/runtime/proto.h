/*
 * proto.h: the server side of EasyEnclave's socket protocol
 * (spec/integrations.md section 6), without sockets: a request line in,
 * a validated request out, and the helpers that build reply lines.
 *
 * Everything here is pure and takes hostile bytes: lines from the socket
 * go through dd_rt_request_parse, whose order of checks is EasyEnclave's
 * (JSON first, then the token, then the method). Every text that may echo
 * input (JSON error details, method names) is made valid UTF-8 before it
 * goes into a reply, so replies are always well-formed JSON.
 */
#ifndef DD_RUNTIME_PROTO_H
#define DD_RUNTIME_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define DD_RT_MAX_ARGS 1024     /* cmd elements */
#define DD_RT_MAX_ENV 1024      /* env entries */
#define DD_RT_MAX_APP_NAME 100
#define DD_RT_MAX_TAIL 100000u
#define DD_RT_DEFAULT_TAIL 100u
#define DD_RT_DEFAULT_EXEC_TIMEOUT 30u
#define DD_RT_MAX_EXEC_TIMEOUT 86400u
#define DD_RT_ID_LEN 36         /* a UUID in text */
#define DD_RT_WHY 256           /* room for a reply's error text */

typedef enum {
	DD_RT_HEALTH = 0,
	DD_RT_LIST,
	DD_RT_LOGS,
	DD_RT_ATTEST,
	DD_RT_DEPLOY,
	DD_RT_STOP,
	DD_RT_EXEC,
	DD_RT_ATTACH,
} dd_rt_method;

/* What happens when a workload's process exits (a DD extension field). */
typedef enum {
	DD_RT_RESTART_ON_FAILURE = 0, /* the default: non-zero exit or signal */
	DD_RT_RESTART_NO,
	DD_RT_RESTART_ALWAYS,
} dd_rt_restart;

/* github_release: names validated so none can leave its directory. */
typedef struct dd_rt_release {
	char *owner;
	char *repo;
	char *tag;            /* NULL: the "latest" directory */
	char *asset;
	char *rename;         /* NULL: none */
	int has_sha256;       /* a DD extension: verify before running */
	uint8_t sha256[32];
} dd_rt_release;

/* A validated DeployRequest (spec section 6.5); every string is owned. */
typedef struct dd_rt_spec {
	char *app_name;
	char **argv;          /* NULL-terminated; argc may be 0 */
	size_t argc;
	char **env;           /* NULL-terminated "KEY=VALUE" entries */
	size_t envc;
	int tty;
	dd_rt_restart restart;
	dd_rt_release *release; /* NULL: none */
} dd_rt_spec;

/*
 * Parses one request line (no newline). On DD_OK *obj is the request
 * object (caller json_decref()s it) and *method its method. Otherwise
 * why holds the reply's error text and:
 *   TOO_LARGE     the line is longer than max
 *   INVALID       not JSON ("invalid json: ..."), not an object, no
 *                 method ("missing method"), or an unknown method
 *   UNAUTHORIZED  token is set and the request does not carry it
 *                 ("unauthenticated"); checked in constant time
 *   NOMEM
 * token (may be NULL or "": no check) is the EE_TOKEN the runtime
 * demands. The request's own copy of the token is wiped before return.
 */
dd_err_t dd_rt_request_parse(const uint8_t *line, size_t len, size_t max,
			     const char *token, json_t **obj,
			     dd_rt_method *method, char *why, size_t why_len);

/*
 * Validates a deploy request. On DD_OK *out is owned by the caller
 * (dd_rt_spec_free). INVALID with "invalid deploy request: ..." in why.
 */
dd_err_t dd_rt_parse_deploy(const json_t *req, dd_rt_spec **out, char *why,
			    size_t why_len);
void dd_rt_spec_free(dd_rt_spec *spec);

/*
 * "cmd": an array of 1..DD_RT_MAX_ARGS strings. When absent, def (may be
 * NULL) is used, else "missing cmd array". *argv is NULL-terminated and
 * owned by the caller (dd_rt_argv_free).
 */
dd_err_t dd_rt_parse_cmd(const json_t *req, const char *def, char ***argv,
			 size_t *argc, char *why, size_t why_len);
void dd_rt_argv_free(char **argv);

/* exec: cmd (required) and timeout_secs (default 30, 1..86400). */
dd_err_t dd_rt_parse_exec(const json_t *req, char ***argv, size_t *argc,
			  uint64_t *timeout_secs, char *why, size_t why_len);

/* logs: id (required, "missing id") and tail (default 100). */
dd_err_t dd_rt_parse_logs(const json_t *req, const char **id,
			  uint64_t *tail, char *why, size_t why_len);

/* stop: id (required). *id is borrowed from req. */
dd_err_t dd_rt_parse_id(const json_t *req, const char **id, char *why,
			size_t why_len);

/*
 * attest: report_data_b64, else nonce (hex when it looks like hex, else
 * base64), else none (spec section 6.3). rd gets the bytes zero-padded
 * to 64, *len the unpadded length.
 */
dd_err_t dd_rt_parse_report_data(const json_t *req, uint8_t rd[64],
				 size_t *len, char *why, size_t why_len);

/* A random (version 4) UUID in text; out holds DD_RT_ID_LEN + 1. */
dd_err_t dd_rt_uuid(char out[DD_RT_ID_LEN + 1]);

/* RFC 3339 UTC ("2026-01-02T03:04:05Z") of a Unix time; out >= 21. */
void dd_rt_rfc3339(int64_t t, char *out, size_t out_len);

const char *dd_rt_method_name(dd_rt_method m);

#endif
