#include "client/client_args.h"

#include <stdio.h>
#include <string.h>

#include "client/client_http.h"
#include "client/client_opt.h"
#include "client/client_token.h"
#include "client/workload.h"
#include "core/strutil.h"

#define VM_NAME_MAX 128u

static const char usage_text[] =
	"usage: devopsdefender client deploy TARGET WORKLOAD.json [TOKEN] "
	"[--timeout S]\n"
	"                 [--wait|--no-wait] [--wait-timeout S]\n"
	"       devopsdefender client logs TARGET APP [TOKEN]\n"
	"       devopsdefender client list TARGET [TOKEN]\n"
	"\n"
	"TARGET:  --agent URL          the agent's API base URL\n"
	"         --cp URL --vm NAME   find the agent of VM NAME through the\n"
	"                              control plane (list: --vm optional,\n"
	"                              without it the fleet's agents)\n"
	"TOKEN:   --token-file FILE    a bearer token from FILE ('-': stdin)\n"
	"         --token TOKEN        the same, on the command line (avoid)\n"
	"         --audience AUD       OIDC audience (default dd-agent)\n"
	"         without them, a fresh GitHub Actions OIDC token for every\n"
	"         request (needs `permissions: id-token: write`)\n"
	"--timeout S   deadline for the whole command, seconds (default 120)\n"
	"--no-wait     return once the agent accepted the deploy\n"
	"--wait-timeout S  bound the wait for the workload alone (within\n"
	"              --timeout)\n"
	"\n"
	"Exit status: 0 ok, 1 refused or failed (ok:false included), 2 usage\n"
	"or workload file, 3 no token or authentication refused, 4 no answer\n"
	"or deadline passed. Progress goes to stderr, results to stdout.\n"
	"Settings: DD_CA_FILE (extra CAs; verification is always on),\n"
	"DD_HTTP_CLIENT_TIMEOUT_MS (one request),\n"
	"DD_HTTP_CLIENT_MAX_RESPONSE.\n";

const char *dd_client_usage(void)
{
	return usage_text;
}

enum opt_id { O_AGENT, O_CP, O_VM, O_TOKEN, O_TOKEN_FILE, O_AUDIENCE,
	      O_TIMEOUT, O_WAIT, O_NO_WAIT, O_WAIT_TIMEOUT, O_HELP };

static const dd_opt opts[] = {
	{"--agent", O_AGENT, 1}, {"--cp", O_CP, 1}, {"--vm", O_VM, 1},
	{"--token", O_TOKEN, 1}, {"--token-file", O_TOKEN_FILE, 1},
	{"--audience", O_AUDIENCE, 1}, {"--timeout", O_TIMEOUT, 1},
	{"--wait", O_WAIT, 0}, {"--no-wait", O_NO_WAIT, 0},
	{"--wait-timeout", O_WAIT_TIMEOUT, 1},
	{"--help", O_HELP, 0}, {"-h", O_HELP, 0},
};

static dd_err_t take(dd_client_args *a, const dd_opt *o, char *v,
		     int *wait_set, char *why, size_t why_len)
{
	char uwhy[160];

	switch (o->id) {
	case O_AGENT:
	case O_CP:
		if (dd_client_url_check(v, 0, uwhy, sizeof uwhy) != DD_OK)
			return dd_opt_bad(why, why_len, "%s: %s", o->name, uwhy);
		return dd_opt_once(o->id == O_AGENT ? &a->agent_url : &a->cp_url,
				v, o->name, why, why_len);
	case O_VM:
		if (v[0] == '\0' || strlen(v) > VM_NAME_MAX)
			return dd_opt_bad(why, why_len, "--vm: 1-%u characters",
				   VM_NAME_MAX);
		return dd_opt_once(&a->vm_name, v, o->name, why, why_len);
	case O_TOKEN:
		if (a->token != NULL)
			return dd_opt_bad(why, why_len, "--token given twice");
		a->token = v;
		return DD_OK;
	case O_TOKEN_FILE:
		return dd_opt_once(&a->token_file, v, o->name, why, why_len);
	case O_AUDIENCE:
		return dd_opt_once(&a->audience, v, o->name, why, why_len);
	case O_TIMEOUT:
	case O_WAIT_TIMEOUT:
		if (dd_parse_u64(v, 1, DD_CLIENT_MAX_TIMEOUT_S,
				 o->id == O_TIMEOUT ? &a->timeout_s :
				 &a->wait_timeout_s) != DD_OK)
			return dd_opt_bad(why, why_len, "%s: whole seconds, 1-%u",
				   o->name, DD_CLIENT_MAX_TIMEOUT_S);
		return DD_OK;
	case O_WAIT:
	case O_NO_WAIT:
		if (*wait_set)
			return dd_opt_bad(why, why_len,
				   "--wait/--no-wait given twice");
		*wait_set = 1;
		a->wait = o->id == O_WAIT;
		return DD_OK;
	case O_HELP:
		break;
	}
	return DD_OK;
}

static dd_err_t check(dd_client_args *a, int n_pos, int wait_set, char *why,
		      size_t why_len)
{
	static const int want_pos[] = {
		[DD_CLIENT_CMD_DEPLOY] = 1, [DD_CLIENT_CMD_LOGS] = 1,
		[DD_CLIENT_CMD_LIST] = 0,
	};

	if (n_pos != want_pos[a->cmd])
		return dd_opt_bad(why, why_len, "%s", a->cmd == DD_CLIENT_CMD_DEPLOY ?
			   "deploy takes one WORKLOAD.json" :
			   a->cmd == DD_CLIENT_CMD_LOGS ? "logs takes one APP" :
			   "list takes no arguments");
	if (a->agent_url != NULL && (a->cp_url != NULL || a->vm_name != NULL))
		return dd_opt_bad(why, why_len, "give --agent, or --cp with --vm, "
			   "not both");
	if (a->agent_url == NULL && a->cp_url == NULL)
		return dd_opt_bad(why, why_len, "which agent? give --agent URL, or "
			   "--cp URL --vm NAME");
	if (a->cp_url != NULL && a->vm_name == NULL &&
	    a->cmd != DD_CLIENT_CMD_LIST)
		return dd_opt_bad(why, why_len, "--cp needs --vm NAME");
	if (a->vm_name != NULL && a->cp_url == NULL)
		return dd_opt_bad(why, why_len, "--vm needs --cp URL");
	if (a->token != NULL && a->token_file != NULL)
		return dd_opt_bad(why, why_len, "give --token or --token-file, not "
			   "both");
	if (a->token != NULL && !dd_client_token_ok(a->token,
						    strlen(a->token)))
		return dd_opt_bad(why, why_len, "--token: not a bearer token");
	if ((wait_set || a->wait_timeout_s != 0) &&
	    a->cmd != DD_CLIENT_CMD_DEPLOY)
		return dd_opt_bad(why, why_len, "--wait, --no-wait and --wait-timeout "
			   "apply to deploy only");
	if (a->wait_timeout_s != 0 && !a->wait)
		return dd_opt_bad(why, why_len, "--wait-timeout makes no sense with "
			   "--no-wait");
	if (a->cmd == DD_CLIENT_CMD_LOGS && !dd_workload_app_name_ok(a->app))
		return dd_opt_bad(why, why_len, "APP: 1-%u of A-Z a-z 0-9 . _ -, "
			   "starting with a letter or digit",
			   DD_WORKLOAD_APP_NAME_MAX);
	return DD_OK;
}

dd_err_t dd_client_args_parse(int argc, char **argv, dd_client_args *out,
			      char *why, size_t why_len)
{
	const dd_opt *o;
	char *v;
	int i = 0, n_pos = 0, wait_set = 0, opts_done = 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	out->timeout_s = DD_CLIENT_DEFAULT_TIMEOUT_S;
	out->wait = 1;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (argc < 1 || strcmp(argv[0], "help") == 0 ||
	    strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)
		return DD_OK;
	if (strcmp(argv[0], "deploy") == 0)
		out->cmd = DD_CLIENT_CMD_DEPLOY;
	else if (strcmp(argv[0], "logs") == 0)
		out->cmd = DD_CLIENT_CMD_LOGS;
	else if (strcmp(argv[0], "list") == 0)
		out->cmd = DD_CLIENT_CMD_LIST;
	else
		return dd_opt_bad(why, why_len, "unknown command '%.64s' (deploy, "
			   "logs, list)", argv[0]);
	for (i = 1; i < argc; i++) {
		if (opts_done || argv[i][0] != '-' ||
		    strcmp(argv[i], "-") == 0) {
			if (n_pos++ == 0) {
				out->workload = argv[i];
				out->app = argv[i];
			}
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			opts_done = 1;
			continue;
		}
		rc = dd_opt_read(opts, sizeof opts / sizeof opts[0],
					argc, argv, &i, &o, &v, why, why_len);
		if (rc)
			return rc;
		if (o->id == O_HELP) {
			out->cmd = DD_CLIENT_CMD_HELP;
			return DD_OK;
		}
		rc = take(out, o, v, &wait_set, why, why_len);
		if (rc)
			return rc;
	}
	return check(out, n_pos, wait_set, why, why_len);
}
