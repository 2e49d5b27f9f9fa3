#include "client/client_shell.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client_attest.h"
#include "core/alloc.h"
#include "client/client_http.h"
#include "client/client_reply.h"
#include "client/client_shell_int.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/strutil.h"
#include "sessiond/seal.h"

#define KEY_DIR "devopsdefender"
#define KEY_FILE "device.key"
#define PATH_CAP 4096
/* The most transcript text a replay prints. */
#define REPLAY_MAX (64u * 1024 * 1024)
#define REPLAY_MAX_RECORDS 1000000u

void shell_say(const shell_ctx *s, const char *fmt, ...)
{
	va_list ap;

	fputs("devopsdefender client: ", s->env->err);
	va_start(ap, fmt);
	vfprintf(s->env->err, fmt, ap);
	va_end(ap);
	fputc('\n', s->env->err);
	fflush(s->env->err);
}

/* --- the device key ------------------------------------------------------- */

/*
 * The default key path, $XDG_CONFIG_HOME/devopsdefender/device.key or
 * $HOME/.config/devopsdefender/device.key; with mkdirs, its directories
 * are created 0700 when missing.
 */
static int key_path(shell_ctx *s, char *out, size_t cap, int mkdirs)
{
	const char *xdg = s->env->get(s->env->get_ud, "XDG_CONFIG_HOME");
	const char *home = s->env->get(s->env->get_ud, "HOME");
	char base[PATH_CAP];
	int w;

	if (s->a.key_path != NULL) {
		w = snprintf(out, cap, "%s", s->a.key_path);
		return w < 0 || (size_t)w >= cap ? DD_CLIENT_EXIT_USAGE : 0;
	}
	if (xdg != NULL && xdg[0] == '/')
		w = snprintf(base, sizeof base, "%s", xdg);
	else if (home != NULL && home[0] == '/')
		w = snprintf(base, sizeof base, "%s/.config", home);
	else
		w = -1;
	if (w < 0 || (size_t)w >= sizeof base) {
		shell_say(s, "no HOME or XDG_CONFIG_HOME: give --key PATH");
		return DD_CLIENT_EXIT_USAGE;
	}
	if (mkdirs && mkdir(base, 0700) != 0 && errno != EEXIST) {
		shell_say(s, "creating %s: %s", base, dd_strerrno(errno));
		return DD_CLIENT_EXIT_FAILED;
	}
	w = snprintf(out, cap, "%s/" KEY_DIR, base);
	if (w < 0 || (size_t)w >= cap)
		return DD_CLIENT_EXIT_USAGE;
	if (mkdirs && mkdir(out, 0700) != 0 && errno != EEXIST) {
		shell_say(s, "creating %s: %s", out, dd_strerrno(errno));
		return DD_CLIENT_EXIT_FAILED;
	}
	w = snprintf(out, cap, "%s/" KEY_DIR "/" KEY_FILE, base);
	return w < 0 || (size_t)w >= cap ? DD_CLIENT_EXIT_USAGE : 0;
}

/* Loads the key; create: pair may make one, the others must find one. */
static int load_key(shell_ctx *s, int create, char *path, size_t cap)
{
	char why[256];
	struct stat st;
	dd_err_t rc;
	int code = key_path(s, path, cap, create);

	if (code)
		return code;
	if (!create && stat(path, &st) != 0) {
		shell_say(s, "no device key at %s: run `devopsdefender client "
			  "pair CP_URL` first", path);
		return DD_CLIENT_EXIT_USAGE;
	}
	rc = dd_static_key_load(path, &s->key, why, sizeof why);
	if (rc) {
		shell_say(s, "device key %s: %s", path, why[0] ? why :
			  dd_strerror(rc));
		return DD_CLIENT_EXIT_FAILED;
	}
	return 0;
}

/* --- pair ----------------------------------------------------------------- */

static int cmd_pair(shell_ctx *s)
{
	char path[PATH_CAP], hex[65], host[256] = "";
	const char *label = s->a.label;
	dd_buf url;
	size_t n = strlen(s->a.url);
	int code;

	code = load_key(s, 1, path, sizeof path);
	if (code)
		return code;
	if (label == NULL) {
		if (gethostname(host, sizeof host - 1) != 0 ||
		    !dd_sargs_label_ok(host))
			snprintf(host, sizeof host, "device");
		label = host;
	}
	dd_hex_encode(s->key.pub, sizeof s->key.pub, hex);
	hex[64] = '\0';
	while (n > 0 && s->a.url[n - 1] == '/')
		n--;
	dd_buf_init(&url, DD_SARGS_URL_MAX + 1024);
	if (dd_buf_appendf(&url, "%.*s/admin/enroll?pubkey=%s&label=",
			   (int)n, s->a.url, hex) ||
	    dd_pct_encode(label, strlen(label), &url)) {
		dd_buf_free(&url);
		shell_say(s, "enrollment URL too long");
		return DD_CLIENT_EXIT_USAGE;
	}
	fprintf(s->env->out, "pubkey=%s\nkey_file=%s\nenroll_url=%s\n", hex,
		path, dd_buf_str(&url));
	fflush(s->env->out);
	shell_say(s, "open enroll_url in a browser signed in to the control "
		  "plane and confirm the key there (all %d digits); then "
		  "`devopsdefender client shell AGENT_URL`", 64);
	dd_buf_free(&url);
	return 0;
}

/* --- the agent's check and the connection --------------------------------- */

static int fetch_health(shell_ctx *s, dd_client_http *http, json_t **out)
{
	char url[DD_SARGS_URL_MAX + 16], why[320];
	dd_httpc_request rq = {.url = url};
	dd_client_resp r = {0};
	dd_err_t rc;
	int code = 0;
	size_t n = strlen(s->a.url);
	int w;

	*out = NULL;
	while (n > 0 && s->a.url[n - 1] == '/')
		n--;
	w = snprintf(url, sizeof url, "%.*s/health", (int)n, s->a.url);
	if (w < 0 || (size_t)w >= sizeof url)
		return DD_CLIENT_EXIT_USAGE;
	rc = dd_client_http_call(http, &rq, &r);
	if (rc) {
		shell_say(s, "GET %s: %s", url, r.message[0] ? r.message :
			  dd_strerror(rc));
		code = DD_CLIENT_EXIT_TRANSPORT;
	} else if (r.status != 200 ||
		   dd_json_parse(r.body, r.body_len, r.body_len + 1, out, why,
				 sizeof why) != DD_OK) {
		shell_say(s, "GET %s: HTTP %ld, not the agent's /health", url,
			  r.status);
		code = DD_CLIENT_EXIT_FAILED;
	}
	dd_client_resp_free(&r);
	return code;
}

/* The attestation checks; fills s->agent_pub. 0 or the exit code. */
static int check_agent(shell_ctx *s, dd_client_http *http)
{
	dd_client_attest_opts o = {.now = (int64_t)time(NULL),
				   .allow_simulated = s->a.allow_simulated,
				   .expect_mrtd = s->a.has_mrtd ? s->a.mrtd :
						  NULL};
	dd_client_attest_result res;
	char mrtd[2 * DD_CLIENT_MRTD_LEN + 1];
	json_t *health = NULL;
	dd_err_t rc;
	int code = fetch_health(s, http, &health);

	if (code)
		return code;
	rc = dd_client_attest_check(health, &o, &res);
	json_decref(health);
	if (rc) {
		shell_say(s, "refusing to connect to %s: %s", s->a.url, res.why);
		return DD_CLIENT_EXIT_FAILED;
	}
	memcpy(s->agent_pub, res.pubkey, sizeof s->agent_pub);
	if (res.simulated)
		shell_say(s, "WARNING: %s has a SIMULATED quote (a dev fleet, "
			  "no TDX): nothing proves which machine holds its "
			  "key (accepted because of --allow-simulated)",
			  s->a.url);
	if (!s->a.has_mrtd && !res.simulated) {
		dd_hex_encode(res.mrtd, DD_CLIENT_MRTD_LEN, mrtd);
		mrtd[2 * DD_CLIENT_MRTD_LEN] = '\0';
		shell_say(s, "warning: measurement not pinned; any genuine TDX "
			  "guest passes. This one is --expect-mrtd %s", mrtd);
	}
	return 0;
}

int shell_open(shell_ctx *s, dd_cn **out)
{
	dd_cn_opts o = {.loop = s->env->loop, .url = s->ws_url,
			.key = &s->key, .agent_pub = s->agent_pub,
			.ca_file = s->ca_file, .timeout_ms = s->timeout_ms};
	char why[320];
	dd_err_t rc = dd_cn_open(&o, out, why, sizeof why);

	if (rc == DD_OK)
		return 0;
	shell_say(s, "%s: %s", s->ws_url, why);
	return rc == DD_ERR_FORBIDDEN || rc == DD_ERR_CRYPTO ?
	       DD_CLIENT_EXIT_AUTH : rc == DD_ERR_INVALID ?
	       DD_CLIENT_EXIT_USAGE : DD_CLIENT_EXIT_TRANSPORT;
}

int shell_call(shell_ctx *s, dd_cn *c, json_t *req, json_t **reply,
	       const char *what)
{
	const char *code = NULL, *detail = "";
	char why[320];
	dd_buf clean;

	if (dd_cn_call(c, req, reply, why, sizeof why) != DD_OK) {
		shell_say(s, "%s: %s", what, why);
		return DD_CLIENT_EXIT_TRANSPORT;
	}
	if (dd_json_get_str(*reply, "error", &code) != DD_OK)
		return 0;
	(void)dd_json_get_str(*reply, "detail", &detail);
	dd_buf_init(&clean, 1024);
	(void)dd_client_sanitize(detail, strlen(detail), &clean);
	shell_say(s, "%s refused: %.64s: %s", what, code, dd_buf_str(&clean));
	dd_buf_free(&clean);
	json_decref(*reply);
	*reply = NULL;
	return DD_CLIENT_EXIT_FAILED;
}

/* --- sessions and replay -------------------------------------------------- */

static void print_field(FILE *f, const json_t *o, const char *key, int width)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	char num[32];
	dd_buf clean;

	if (s == NULL && json_is_integer(v)) {
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		s = num;
	}
	dd_buf_init(&clean, 512);
	(void)dd_client_sanitize(s != NULL ? s : "-", strlen(s != NULL ? s : "-"),
				 &clean);
	fprintf(f, "%-*s", width, dd_buf_str(&clean));
	dd_buf_free(&clean);
}

static int cmd_sessions(shell_ctx *s, dd_cn *c)
{
	json_t *req = json_pack("{s:s}", "method", "shell.list_sessions");
	json_t *list = NULL, *e;
	size_t i;
	int code;

	if (req == NULL)
		return DD_CLIENT_EXIT_FAILED;
	code = shell_call(s, c, req, &list, "shell.list_sessions");
	json_decref(req);
	if (code)
		return code;
	if (!json_is_array(list)) {
		json_decref(list);
		shell_say(s, "shell.list_sessions: not a list");
		return DD_CLIENT_EXIT_FAILED;
	}
	fprintf(s->env->out, "%-37s %-9s %-14s %s\n", "ID", "STATUS",
		"RECIPE", "NAME");
	json_array_foreach(list, i, e) {
		print_field(s->env->out, e, "id", 38);
		print_field(s->env->out, e, "status", 10);
		print_field(s->env->out, e, "recipe_id", 15);
		print_field(s->env->out, e, "name", 0);
		fputc('\n', s->env->out);
	}
	fflush(s->env->out);
	json_decref(list);
	return 0;
}

/* Appends one part's records to all (strings only). */
static int add_records(shell_ctx *s, json_t *all, json_t *part)
{
	json_t *recs = json_object_get(part, "records"), *r;
	size_t i;

	if (!json_is_array(recs)) {
		shell_say(s, "shell.replay_session: no records");
		return DD_CLIENT_EXIT_FAILED;
	}
	json_array_foreach(recs, i, r) {
		if (json_array_size(all) >= REPLAY_MAX_RECORDS) {
			shell_say(s, "shell.replay_session: over %u records",
				  REPLAY_MAX_RECORDS);
			return DD_CLIENT_EXIT_FAILED;
		}
		if (json_is_string(r) &&
		    json_array_append(all, r) != 0)
			return DD_CLIENT_EXIT_FAILED;
	}
	return 0;
}

/* Every part of the replay until "more" is false. */
static int fetch_replay(shell_ctx *s, dd_cn *c, json_t *all)
{
	json_t *req, *part = NULL;
	char why[320];
	int code, more;

	req = json_pack("{s:s, s:s}", "method", "shell.replay_session", "id",
			s->a.session);
	if (req == NULL)
		return DD_CLIENT_EXIT_FAILED;
	code = shell_call(s, c, req, &part, "shell.replay_session");
	json_decref(req);
	while (code == 0) {
		code = add_records(s, all, part);
		more = json_is_true(json_object_get(part, "more"));
		json_decref(part);
		part = NULL;
		if (code || !more)
			break;
		if (dd_cn_next(c, &part, why, sizeof why) != DD_OK) {
			shell_say(s, "shell.replay_session: %s", why);
			code = DD_CLIENT_EXIT_TRANSPORT;
		} else if (json_object_get(part, "error") != NULL) {
			shell_say(s, "shell.replay_session: an error part");
			json_decref(part);
			code = DD_CLIENT_EXIT_FAILED;
		}
	}
	return code;
}

static int cmd_replay(shell_ctx *s, dd_cn *c)
{
	json_t *all = json_array();
	const char **lines = NULL;
	size_t n, opened = 0, skipped = 0;
	dd_buf out;
	dd_err_t rc;
	int code;

	if (all == NULL)
		return DD_CLIENT_EXIT_FAILED;
	code = fetch_replay(s, c, all);
	n = json_array_size(all);
	if (!code && n > 0) {
		lines = dd_calloc(n, sizeof *lines);
		if (lines == NULL)
			code = DD_CLIENT_EXIT_FAILED;
	}
	for (size_t i = 0; !code && i < n; i++)
		lines[i] = json_string_value(json_array_get(all, i));
	dd_buf_init(&out, REPLAY_MAX);
	if (!code) {
		rc = dd_seal_replay(s->key.priv, lines, n, &out, &opened,
				    &skipped);
		if (rc) {
			shell_say(s, "replay: %s", dd_strerror(rc));
			code = DD_CLIENT_EXIT_FAILED;
		}
	}
	if (!code) {
		if (out.len > 0)
			fwrite(out.data, 1, out.len, s->env->out);
		fflush(s->env->out);
		shell_say(s, "%zu records opened with this device's key, %zu "
			  "not (sealed to other devices, or not sealed)",
			  opened, skipped);
		if (n > 0 && opened == 0)
			code = DD_CLIENT_EXIT_FAILED;
	}
	dd_buf_freezero(&out);
	dd_free(lines);
	json_decref(all);
	return code;
}

/* --- shell ---------------------------------------------------------------- */

static int cmd_shell(shell_ctx *s, dd_cn *ctl)
{
	return shell_live(s, ctl);
}

/* --- the run -------------------------------------------------------------- */

static int connect_agent(shell_ctx *s, dd_cn **ctl)
{
	dd_httpc_opts ho = {0};
	dd_client_http *http = NULL;
	char path[PATH_CAP];
	int code;

	code = load_key(s, 0, path, sizeof path);
	if (code)
		return code;
	if (dd_cn_ws_url(s->a.url, s->ws_url, sizeof s->ws_url) != DD_OK) {
		shell_say(s, "%s: cannot derive the /noise/ws URL", s->a.url);
		return DD_CLIENT_EXIT_USAGE;
	}
	ho.ca_file = s->ca_file;
	ho.timeout_ms = s->timeout_ms;
	if (dd_client_http_new(s->env->loop, &ho, &http) != DD_OK) {
		shell_say(s, "HTTP client (is the CA file readable?)");
		return DD_CLIENT_EXIT_USAGE;
	}
	dd_client_http_deadline(http, dd_now_ms() + s->timeout_ms);
	code = check_agent(s, http);
	dd_client_http_free(http);
	return code ? code : shell_open(s, ctl);
}

static int run(shell_ctx *s)
{
	dd_cn *ctl = NULL;
	int code;

	if (s->a.cmd == DD_SC_PAIR)
		return cmd_pair(s);
	code = connect_agent(s, &ctl);
	if (code)
		return code;
	switch (s->a.cmd) {
	case DD_SC_SESSIONS:
		code = cmd_sessions(s, ctl);
		break;
	case DD_SC_REPLAY:
		code = cmd_replay(s, ctl);
		break;
	default:
		code = cmd_shell(s, ctl);
		break;
	}
	dd_cn_close(ctl);
	return code;
}

int dd_client_shell_run(const dd_client_env *env, int argc, char **argv)
{
	shell_ctx s;
	dd_config *cfg = NULL;
	dd_buf errors;
	char why[320];
	int code;

	memset(&s, 0, sizeof s);
	s.env = env;
	if (dd_sargs_parse(argc, argv, &s.a, why, sizeof why) != DD_OK) {
		shell_say(&s, "%s", why);
		fputs(dd_sargs_usage(), env->err);
		return DD_CLIENT_EXIT_USAGE;
	}
	if (s.a.cmd == DD_SC_NONE) {
		fputs(dd_sargs_usage(), env->out);
		return 0;
	}
	dd_buf_init(&errors, 16384);
	if (dd_config_load(DD_MODE_CLIENT, env->get, env->get_ud, &cfg,
			   &errors) != DD_OK) {
		fputs(dd_buf_str(&errors), env->err);
		dd_buf_free(&errors);
		return DD_CLIENT_EXIT_USAGE;
	}
	dd_buf_free(&errors);
	s.ca_file = s.a.ca_file != NULL ? s.a.ca_file : cfg->ca_file;
	s.timeout_ms = s.a.timeout_s * 1000u;
	code = run(&s);
	dd_static_key_wipe(&s.key);
	dd_config_free(cfg);
	return code;
}
