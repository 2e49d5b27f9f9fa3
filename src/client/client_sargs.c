#include "client/client_sargs.h"

#include <stdio.h>
#include <string.h>

#include "client/client_http.h"
#include "client/client_opt.h"
#include "core/strutil.h"

static const char usage_text[] =
	"usage: devopsdefender client pair CP_URL [--label L] [--key PATH]\n"
	"       devopsdefender client shell AGENT_URL [--recipe R | --session "
	"ID] [CHECKS]\n"
	"       devopsdefender client sessions AGENT_URL [CHECKS]\n"
	"       devopsdefender client replay AGENT_URL SESSION_ID [CHECKS]\n"
	"\n"
	"CHECKS: --expect-mrtd HEX  the agent's TD measurement (96 hex)\n"
	"        --allow-simulated  accept a simulated quote (dev fleet)\n"
	"        --key PATH         the device key (default\n"
	"                           $XDG_CONFIG_HOME/devopsdefender/device.key)\n"
	"        --ca-file FILE     extra CAs for https/wss (or DD_CA_FILE)\n"
	"        --timeout S        bound on each step, seconds (default 30)\n"
	"In a shell, Ctrl-] detaches (the session keeps running).\n";

const char *dd_sargs_usage(void)
{
	return usage_text;
}

static const struct {
	const char *word;
	dd_sc_cmd cmd;
	int n_pos;
} cmds[] = {
	{"pair", DD_SC_PAIR, 1}, {"shell", DD_SC_SHELL, 1},
	{"sessions", DD_SC_SESSIONS, 1}, {"replay", DD_SC_REPLAY, 2},
};

int dd_sargs_is_cmd(const char *word)
{
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(word, cmds[i].word) == 0)
			return 1;
	}
	return 0;
}

int dd_sargs_label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DD_SARGS_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

static int recipe_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= DD_SARGS_RECIPE_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") == n;
}

/* The URL with https:// added to a bare host, checked. */
static dd_err_t take_url(dd_sargs *a, const char *v, char *why,
			 size_t why_len)
{
	char uwhy[160];
	int w;

	w = snprintf(a->url, sizeof a->url, "%s%s",
		     strstr(v, "://") != NULL ? "" : "https://", v);
	if (w < 0 || (size_t)w >= sizeof a->url)
		return dd_opt_bad(why, why_len, "URL too long");
	if (dd_client_url_check(a->url, 0, uwhy, sizeof uwhy) != DD_OK)
		return dd_opt_bad(why, why_len, "%s: %s", a->url, uwhy);
	return DD_OK;
}

enum opt_id { O_LABEL, O_KEY, O_RECIPE, O_SESSION, O_MRTD, O_SIM, O_CA,
	      O_TIMEOUT, O_HELP };

static const dd_opt opts[] = {
	{"--label", O_LABEL, 1}, {"--key", O_KEY, 1},
	{"--recipe", O_RECIPE, 1}, {"--session", O_SESSION, 1},
	{"--expect-mrtd", O_MRTD, 1}, {"--allow-simulated", O_SIM, 0},
	{"--ca-file", O_CA, 1}, {"--timeout", O_TIMEOUT, 1},
	{"--help", O_HELP, 0}, {"-h", O_HELP, 0},
};

static dd_err_t take(dd_sargs *a, const dd_opt *o, const char *v,
		     char *why, size_t why_len)
{
	switch (o->id) {
	case O_LABEL:
		if (!dd_sargs_label_ok(v))
			return dd_opt_bad(why, why_len, "--label: 1-%u bytes, no "
				   "control characters", DD_SARGS_LABEL_MAX);
		return dd_opt_once(&a->label, v, o->name, why, why_len);
	case O_KEY:
		if (v[0] == '\0')
			return dd_opt_bad(why, why_len, "--key: empty path");
		return dd_opt_once(&a->key_path, v, o->name, why, why_len);
	case O_RECIPE:
		if (!recipe_ok(v))
			return dd_opt_bad(why, why_len, "--recipe: 1-%u of A-Z a-z 0-9 "
				   ". _ -", DD_SARGS_RECIPE_MAX);
		return dd_opt_once(&a->recipe, v, o->name, why, why_len);
	case O_SESSION:
		if (!dd_uuid_ok(v))
			return dd_opt_bad(why, why_len, "--session: a lower-case "
				   "UUID (see `client sessions`)");
		return dd_opt_once(&a->session, v, o->name, why, why_len);
	case O_MRTD:
		if (a->has_mrtd)
			return dd_opt_bad(why, why_len, "--expect-mrtd given twice");
		if (strlen(v) != 2 * DD_CLIENT_MRTD_LEN ||
		    dd_hex_decode(v, strlen(v), a->mrtd,
				  DD_CLIENT_MRTD_LEN) != DD_OK)
			return dd_opt_bad(why, why_len, "--expect-mrtd: %u hex digits",
				   2 * DD_CLIENT_MRTD_LEN);
		a->has_mrtd = 1;
		return DD_OK;
	case O_SIM:
		a->allow_simulated = 1;
		return DD_OK;
	case O_CA:
		return dd_opt_once(&a->ca_file, v, o->name, why, why_len);
	case O_TIMEOUT:
		if (dd_parse_u64(v, 1, 3600, &a->timeout_s) != DD_OK)
			return dd_opt_bad(why, why_len, "--timeout: whole seconds, "
				   "1-3600");
		return DD_OK;
	case O_HELP:
		break;
	}
	return DD_OK;
}

static dd_err_t check(dd_sargs *a, char *why, size_t why_len)
{
	int pair = a->cmd == DD_SC_PAIR;

	if (pair && (a->recipe || a->session || a->has_mrtd ||
		     a->allow_simulated || a->ca_file))
		return dd_opt_bad(why, why_len, "pair takes only --label and --key");
	if (!pair && a->label != NULL)
		return dd_opt_bad(why, why_len, "--label applies to pair only");
	if (a->cmd != DD_SC_SHELL && a->recipe != NULL)
		return dd_opt_bad(why, why_len, "--recipe applies to shell only");
	if (a->cmd == DD_SC_SHELL && a->recipe != NULL && a->session != NULL)
		return dd_opt_bad(why, why_len, "give --recipe (a new session) or "
			   "--session (an existing one), not both");
	if (a->cmd == DD_SC_SESSIONS && a->session != NULL)
		return dd_opt_bad(why, why_len, "--session applies to shell only");
	return DD_OK;
}

static dd_err_t positional(dd_sargs *a, int k, char *v, char *why,
			   size_t why_len)
{
	if (k == 0)
		return take_url(a, v, why, why_len);
	if (!dd_uuid_ok(v))
		return dd_opt_bad(why, why_len, "SESSION_ID: a lower-case UUID (see "
			   "`client sessions`)");
	a->session = v;
	return DD_OK;
}

dd_err_t dd_sargs_parse(int argc, char **argv, dd_sargs *out, char *why,
			size_t why_len)
{
	const dd_opt *o;
	char *v;
	int n_pos = 0, want = 0, opts_done = 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	out->timeout_s = DD_SARGS_DEFAULT_TIMEOUT_S;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	for (size_t i = 0; argc > 0 && i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[0], cmds[i].word) == 0) {
			out->cmd = cmds[i].cmd;
			want = cmds[i].n_pos;
		}
	}
	if (out->cmd == DD_SC_NONE)
		return dd_opt_bad(why, why_len, "unknown command");
	for (int i = 1; i < argc; i++) {
		if (opts_done || argv[i][0] != '-') {
			if (n_pos >= want)
				return dd_opt_bad(why, why_len, "%s takes %d "
					   "argument%s", argv[0], want,
					   want == 1 ? "" : "s");
			rc = positional(out, n_pos++, argv[i], why, why_len);
			if (rc)
				return rc;
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
			out->cmd = DD_SC_NONE;
			return DD_OK;
		}
		rc = take(out, o, v, why, why_len);
		if (rc)
			return rc;
	}
	if (n_pos < want)
		return dd_opt_bad(why, why_len, "%s", out->cmd == DD_SC_PAIR ?
			   "pair needs the control plane's URL" :
			   out->cmd == DD_SC_REPLAY ?
			   "replay needs AGENT_URL and SESSION_ID" :
			   "which agent? give its URL");
	return check(out, why, why_len);
}
