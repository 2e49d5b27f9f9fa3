/*
 * client_shell_int.h: what client_shell.c and client_live.c share. Not
 * an interface for anything else.
 */
#ifndef DD_CLIENT_CLIENT_SHELL_INT_H
#define DD_CLIENT_CLIENT_SHELL_INT_H

#include <stdint.h>

#include "client/client.h"
#include "client/client_noise.h"
#include "client/client_sargs.h"
#include "noise/static_key.h"

typedef struct shell_ctx {
	const dd_client_env *env;
	dd_sargs a;
	dd_static_key key;           /* wiped at the end */
	char ws_url[DD_SARGS_URL_MAX + 16];
	uint8_t agent_pub[32];
	const char *ca_file;         /* --ca-file or DD_CA_FILE */
	uint64_t timeout_ms;
} shell_ctx;

void shell_say(const shell_ctx *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A new Noise connection to the checked agent. 0 or the exit code. */
int shell_open(shell_ctx *s, dd_cn **out);

/*
 * One call; an {"error"} reply is said and is the exit code 1. 0 with
 * *reply (caller decrefs) or the exit code.
 */
int shell_call(shell_ctx *s, dd_cn *c, json_t *req, json_t **reply,
	       const char *what);

/* The interactive part of `client shell` (client_live.c). */
int shell_live(shell_ctx *s, dd_cn *ctl);

#endif
