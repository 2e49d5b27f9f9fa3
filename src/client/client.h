/*
 * client.h: `devopsdefender client deploy|logs|list`, the command-line
 * counterpart of the dd-deploy GitHub Action (spec integrations 8).
 *
 * deploy validates a workload file locally, posts it to an agent's
 * /deploy with a bearer token, fails when the runtime answers ok:false,
 * then waits (bounded, with back-off) for the workload to show in the
 * agent's /health, printing progress to stderr and the app's logs on
 * failure. logs prints an app's log lines; list prints what an agent
 * runs (or, with --cp alone, the fleet's agents). client_args.h has the
 * command line, client_reply.h the exit codes, docs/client.md the rest.
 *
 * Tokens never reach the output. Machine-readable results go to stdout
 * ("key=value" lines for deploy), everything for people to stderr.
 */
#ifndef DD_CLIENT_CLIENT_H
#define DD_CLIENT_CLIENT_H

#include <stdio.h>

#include <uv.h>

#include "core/config.h"

/* Where a run takes its loop, environment and output from. */
typedef struct dd_client_env {
	uv_loop_t *loop;       /* borrowed; the run leaves no handle on it */
	dd_config_get_fn get;  /* the environment (DD_*, ACTIONS_*, ...) */
	void *get_ud;
	FILE *out;             /* results */
	FILE *err;             /* progress and errors */
} dd_client_env;

/*
 * Runs one command; argv holds the arguments after "client" and may be
 * modified (a --token value is wiped from it once copied). Returns the
 * exit code (client_reply.h).
 */
int dd_client_run(const dd_client_env *env, int argc, char **argv);

/* The process entry point: a private loop, the real environment. */
int dd_client_main(int argc, char **argv);

#endif
