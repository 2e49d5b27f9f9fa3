/*
 * client_int.h: what client.c and client_deploy.c share. Not an
 * interface for anything else.
 */
#ifndef DD_CLIENT_CLIENT_INT_H
#define DD_CLIENT_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "client/client.h"
#include "client/client_args.h"
#include "client/client_http.h"
#include "client/client_reply.h"
#include "client/client_token.h"
#include "core/config.h"

#define CLIENT_URL_MAX 2048u
#define CLIENT_HOST_MAX 256u

typedef struct client_ctx {
	const dd_client_env *env;
	dd_client_args args;
	dd_config *cfg;
	dd_client_http *http;
	dd_client_token_src *tokens;   /* NULL until a command needs one */
	uint64_t deadline_ms;          /* the command's, dd_now_ms() clock */
	char agent[CLIENT_URL_MAX];    /* base URL, no trailing '/' */
	char agent_host[CLIENT_HOST_MAX]; /* discovered hostname, or "" */
	int gha;                       /* running inside GitHub Actions */
} client_ctx;

/* One line on the progress stream, prefixed "devopsdefender client: ". */
void client_say(const client_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* base + path with base's trailing slashes dropped. TOO_LARGE past cap. */
dd_err_t client_url(char *out, size_t cap, const char *base,
		    const char *path);

/*
 * Sets up the token source on first use. Returns 0 or the exit code,
 * having said why.
 */
int client_need_tokens(client_ctx *c);

/*
 * One request with a freshly obtained token, retried (each time with a
 * new token) on transport errors and 429/502/503/504 while the deadline
 * allows. Returns 0 with *r holding the answer (any status), or the exit
 * code having said why (token trouble, no answer). The caller frees *r
 * either way.
 */
int client_authed(client_ctx *c, const char *method, const char *url,
		  const void *body, size_t body_len, dd_client_resp *r,
		  const char *what);

/*
 * GET {agent}/health, parsed. DD_OK with *out (caller decrefs) for a 200
 * JSON object; otherwise the error and, for a status, *status.
 */
dd_err_t client_health(client_ctx *c, json_t **out, long *status,
		       char *why, size_t why_len);

/* Fetches /logs/{app} and prints it on the progress stream; never fails. */
void client_show_logs(client_ctx *c, const char *app);

/*
 * Finds the agent (--agent, or discovery through --cp/--vm), filling
 * c->agent and c->agent_host. Returns 0 or the exit code.
 */
int client_resolve_agent(client_ctx *c);

int client_cmd_deploy(client_ctx *c);

#endif
