/*
 * client_args.h: the command line of `devopsdefender client`.
 *
 *   client deploy (--agent URL | --cp URL --vm NAME) WORKLOAD.json
 *                 [--token-file F | --token T] [--audience A]
 *                 [--timeout S] [--wait | --no-wait] [--wait-timeout S]
 *   client logs   (--agent URL | --cp URL --vm NAME) APP [token options]
 *   client list   (--agent URL | --cp URL --vm NAME) [token options]
 *
 * Options take their value as the next argument or after '='; "--" ends
 * the options. URLs must pass dd_client_url_check(). Parsing is pure: no
 * file is opened and nothing is printed.
 */
#ifndef DD_CLIENT_CLIENT_ARGS_H
#define DD_CLIENT_CLIENT_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_CLIENT_DEFAULT_TIMEOUT_S 120u
#define DD_CLIENT_MAX_TIMEOUT_S 86400u

typedef enum {
	DD_CLIENT_CMD_HELP = 0,  /* no command, or --help */
	DD_CLIENT_CMD_DEPLOY,
	DD_CLIENT_CMD_LOGS,
	DD_CLIENT_CMD_LIST,
} dd_client_cmd;

/* Strings point into argv (borrowed) unless said otherwise. */
typedef struct dd_client_args {
	dd_client_cmd cmd;
	const char *agent_url;  /* --agent, or NULL with --cp/--vm */
	const char *cp_url;     /* --cp */
	const char *vm_name;    /* --vm */
	const char *workload;   /* deploy: the file */
	const char *app;        /* logs: the app name */
	/*
	 * --token's value, inside argv itself so that the caller can wipe
	 * it from the process's command line once copied.
	 */
	char *token;
	const char *token_file; /* --token-file ("-": stdin) */
	const char *audience;   /* --audience, default "dd-agent" */
	uint64_t timeout_s;     /* --timeout, default 120 */
	int wait;               /* --wait (default) / --no-wait */
	uint64_t wait_timeout_s; /* --wait-timeout: bounds the wait alone; 0 */
} dd_client_args;

/*
 * Parses argv[0..argc) (the arguments after "client"). INVALID with a
 * one-line reason in why for anything wrong; DD_OK with cmd HELP when
 * help was asked for (or nothing was given, which the caller treats as a
 * usage error).
 */
dd_err_t dd_client_args_parse(int argc, char **argv,
			      dd_client_args *out, char *why, size_t why_len);

/* The usage text. */
const char *dd_client_usage(void);

#endif
