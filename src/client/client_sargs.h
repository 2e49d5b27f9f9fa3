/*
 * client_sargs.h: the command line of the shell client (docs/client.md
 * "Shells"):
 *
 *   client pair CP_URL [--label L] [--key PATH]
 *   client shell AGENT_URL [--recipe R | --session ID] [CHECKS]
 *   client sessions AGENT_URL [CHECKS]
 *   client replay AGENT_URL SESSION_ID [CHECKS]
 *
 *   CHECKS: [--expect-mrtd HEX] [--allow-simulated] [--key PATH]
 *           [--ca-file FILE] [--timeout S]
 *
 * A URL without a scheme is https://. URLs pass dd_client_url_check
 * (plain http only to loopback). Pure: nothing is opened or printed.
 */
#ifndef DD_CLIENT_CLIENT_SARGS_H
#define DD_CLIENT_CLIENT_SARGS_H

#include <stddef.h>
#include <stdint.h>

#include "client/client_attest.h"
#include "core/err.h"

#define DD_SARGS_URL_MAX 2048u
#define DD_SARGS_LABEL_MAX 128u
#define DD_SARGS_RECIPE_MAX 64u
#define DD_SARGS_DEFAULT_TIMEOUT_S 30u

typedef enum {
	DD_SC_NONE = 0,
	DD_SC_PAIR,
	DD_SC_SHELL,
	DD_SC_SESSIONS,
	DD_SC_REPLAY,
} dd_sc_cmd;

/* Strings point into argv (borrowed) except url. */
typedef struct dd_sargs {
	dd_sc_cmd cmd;
	char url[DD_SARGS_URL_MAX];  /* CP (pair) or agent, with its scheme */
	const char *session;         /* --session, or replay's SESSION_ID */
	const char *label;           /* --label (pair) */
	const char *key_path;        /* --key */
	const char *recipe;          /* --recipe (shell; default "shell") */
	const char *ca_file;         /* --ca-file (else DD_CA_FILE) */
	uint8_t mrtd[DD_CLIENT_MRTD_LEN];
	int has_mrtd;                /* --expect-mrtd given */
	int allow_simulated;         /* --allow-simulated */
	uint64_t timeout_s;          /* --timeout: each step, default 30 */
} dd_sargs;

/* 1 when word names a shell-client command (pair, shell, ...). */
int dd_sargs_is_cmd(const char *word);

/*
 * Parses argv[0..argc) (argv[0] is the command). INVALID with a one-line
 * reason in why; help is cmd NONE with DD_OK.
 */
dd_err_t dd_sargs_parse(int argc, char **argv, dd_sargs *out, char *why,
			size_t why_len);


/* 1 for a pairing label: 1-128 bytes, no control characters. */
int dd_sargs_label_ok(const char *s);

const char *dd_sargs_usage(void);

#endif
