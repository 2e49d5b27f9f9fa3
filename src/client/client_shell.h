/*
 * client_shell.h: `devopsdefender client pair|shell|sessions|replay`,
 * the device side of attested shells (docs/client.md "Shells", spec
 * noise-sessions 1.2, 2.6, 3.1, 4).
 *
 * Every command but pair first checks the agent (client_attest.h) and
 * refuses to connect when a check fails, saying which; then it runs the
 * Noise handshake with the device key (client_noise.h).
 */
#ifndef DD_CLIENT_CLIENT_SHELL_H
#define DD_CLIENT_CLIENT_SHELL_H

#include "client/client.h"

/* Runs one shell-client command (argv[0] is the command). Exit codes as
 * client_reply.h. */
int dd_client_shell_run(const dd_client_env *env, int argc, char **argv);

#endif
