/*
 * main.c: mode dispatch. The mode comes from DD_MODE or the first argument;
 * usage errors exit 2, fatal errors exit 1 with one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "attest/quote_cli.h"
#include "client/client.h"
#include "cloudflare/cloudflared.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "cp/cp.h"
#include "dev/dev.h"
#include "dev/ita_mode.h"
#include "net/service.h"
#include "runtime/runtime.h"
#include "sessiond/sessiond.h"

#define EXIT_USAGE 2

static const char *const mode_help[][2] = {
	{"cp", "control plane: fleet dashboard, registration, fleet API"},
	{"agent", "in-VM agent: dashboard, deploy/exec/logs, Noise gateway"},
	{"dev", "a whole local fleet on loopback (CP + two agents), for development"},
	{"ita", "local Intel Trust Authority stand-in (development only)"},
	{"runtime", "local EasyEnclave-compatible workload runtime (not sealed)"},
	{"sessiond", "PTY sessions from recipes, sealed history (unix socket)"},
	{"quote", "parse and verify a TDX quote (FILE or stdin; raw, hex, base64)"},
	{"client", "deploy a workload to an agent, show its logs, list workloads"},
};

static void usage(FILE *f)
{
	fputs("usage: devopsdefender MODE [--help] [--version]\n"
	      "       (or DD_MODE=MODE devopsdefender)\n\nmodes:\n", f);
	for (size_t i = 0; i < sizeof mode_help / sizeof mode_help[0]; i++)
		fprintf(f, "  %-8s %s\n", mode_help[i][0], mode_help[i][1]);
	fputs("\nRun `devopsdefender MODE --help` for a mode's settings.\n", f);
}

static void version(void)
{
	printf("devopsdefender %s (build %s)\n", DD_VERSION, DD_BUILD_SHA);
}

static void mode_usage(dd_mode mode)
{
	printf("usage: devopsdefender %s [--help] [--version]\n\n"
	       "Configured from the environment:\n", dd_mode_name(mode));
	dd_config_describe(mode, NULL, stdout);
	if (mode == DD_MODE_DEV)
		dd_dev_usage(stdout);
}

static int fatal(const char *what, dd_err_t rc)
{
	fprintf(stderr, "devopsdefender: fatal: %s: %s\n", what, dd_strerror(rc));
	return EXIT_FAILURE;
}

static int run_server_mode(dd_mode mode)
{
	dd_config *cfg = NULL;
	dd_buf errors;
	dd_err_t rc;

	dd_buf_init(&errors, 64 * 1024);
	rc = dd_config_load(mode, dd_config_getenv, NULL, &cfg, &errors);
	if (rc) {
		/* Every problem at once, each on its own line, then one verdict. */
		fputs(dd_buf_str(&errors), stderr);
		dd_buf_free(&errors);
		return fatal("configuration", rc);
	}
	dd_buf_free(&errors);
	dd_log_setup((dd_log_level)cfg->log_level, (dd_log_format)cfg->log_format,
		     dd_mode_name(mode));
	if (mode == DD_MODE_CP)
		rc = dd_cp_run(cfg);
	else if (mode == DD_MODE_ITA)
		rc = dd_ita_mode_run(cfg);
	else if (mode == DD_MODE_RUNTIME)
		rc = dd_runtime_run(cfg);
	else if (mode == DD_MODE_SESSIOND)
		rc = dd_sessiond_run(cfg);
	else
		rc = dd_agent_run(cfg);
	dd_config_free(cfg);
	if (rc)
		return fatal(dd_mode_name(mode), rc);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	const char *mode_text = getenv("DD_MODE");
	int argi = 1;
	dd_mode mode;

	/* cloudflared's launcher (cloudflare/cloudflared.h): nothing else. */
	if (argc > 1 && strcmp(argv[1], DD_CLOUDFLARED_EXEC_ARG) == 0)
		return dd_cloudflared_exec_main(argc, argv);
	dd_json_setup();
	if (mode_text == NULL || mode_text[0] == '\0') {
		if (argc > 1 && argv[1][0] != '-') {
			mode_text = argv[1];
			argi = 2;
		}
	}
	if (mode_text == NULL) {
		if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
				 strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return EXIT_SUCCESS;
		}
		if (argc > 1 && strcmp(argv[1], "--version") == 0) {
			version();
			return EXIT_SUCCESS;
		}
		usage(stderr);
		return EXIT_USAGE;
	}
	/* A tool, not a service: no configuration table of its own. */
	if (strcmp(mode_text, "quote") == 0) {
		if (argi < argc && strcmp(argv[argi], "--help") == 0) {
			printf("usage: devopsdefender quote [FILE|-] [--collateral FILE] "
			       "[--now TIME]\n");
			return EXIT_SUCCESS;
		}
		return dd_quote_cli_main(argc - argi, argv + argi);
	}
	if (strcmp(mode_text, "client") == 0)
		return dd_client_main(argc - argi, argv + argi);
	if (dd_mode_parse(mode_text, &mode) != DD_OK ||
	    !(mode & (DD_MODE_CP | DD_MODE_AGENT | DD_MODE_DEV | DD_MODE_ITA |
		      DD_MODE_RUNTIME | DD_MODE_SESSIOND))) {
		fprintf(stderr, "devopsdefender: unknown mode '%s'\n", mode_text);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argi < argc && (strcmp(argv[argi], "--help") == 0 ||
			    strcmp(argv[argi], "-h") == 0)) {
		mode_usage(mode);
		return EXIT_SUCCESS;
	}
	if (argi < argc && strcmp(argv[argi], "--version") == 0) {
		version();
		return EXIT_SUCCESS;
	}
	if (mode == DD_MODE_DEV)
		return dd_dev_main(argc - argi, argv + argi);
	if (argi < argc) {
		fprintf(stderr, "devopsdefender %s: unexpected argument '%s'\n",
			mode_text, argv[argi]);
		return EXIT_USAGE;
	}
	dd_service_bind_to_supervisor();
	return run_server_mode(mode);
}
