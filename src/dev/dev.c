#include "dev/dev.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "auth/dev_signin.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/strutil.h"

#define N_AGENTS 2
/* ITA, CP, and per agent its runtime and its sessiond */
#define MAX_CHILDREN (2 + 3 * N_AGENTS)
#define READY_TIMEOUT_MS 20000
#define STOP_GRACE_MS 15000

extern char **environ;

struct child {
	struct fleet *fleet;
	const char *role;     /* "ita", "cp", "runtime", "sessiond", "agent" */
	char name[16];        /* label in messages; an agent's VM name */
	unsigned index;       /* runtime, sessiond, agent: 1..N_AGENTS */
	uv_process_t proc;
	uv_pipe_t ready;      /* fd 3 in the child */
	dd_buf ready_line;
	bool running;
	bool is_ready;
	json_t *ports;        /* from the readiness line */
	int64_t exit_status;
	int term_signal;
};

struct fleet {
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t timer;     /* readiness deadline, then the stop grace */
	struct child kids[MAX_CHILDREN];
	size_t nkids;
	size_t started;       /* next child to start */
	bool stopping;
	int exit_code;
	const char *bind;
	uint64_t port_base;
	char state[80];       /* everything the fleet keeps on disk */
	/* Runtime i's and sessiond i's sockets, at i - 1 (sun_path: 108). */
	char ee_socket[N_AGENTS][100];
	char sd_socket[N_AGENTS][100];
	char recipes[100];    /* the sessionds' recipe file */
	char self[4096];
	char cp_url[128];
	char ita_url[128];
	char ita_key[64];     /* per run: the local ITA demands it */
	char cookie_secret[96]; /* per run: the CP's session key */
	char oidc_token[64];  /* per run: what the local OIDC issuer demands */
	/* per run: dev sign-in's code, only in the banner's sign-in URL */
	char signin_code[DD_DEV_SIGNIN_CODE_LEN + 1];
};

static void start_next(struct fleet *f);
static void stop_all(struct fleet *f, int code);

void dd_dev_usage(FILE *out)
{
	fputs("\nflags:\n"
	      "  --port-base N   CP on N, agent i on N+10i (main) and N+10i+1\n"
	      "                  (API), local ITA on N+30;\n"
	      "                  0 picks free ports [default: 8080]\n"
	      "  --bind ADDR     loopback address to listen on [default: 127.0.0.1]\n"
	      "  --state-dir DIR where the fleet keeps its files (sockets,\n"
	      "                  release assets) [default: /tmp/devopsdefender-dev-UID]\n",
	      out);
}

static uint16_t port_of(const struct child *c, const char *label)
{
	json_t *p = c->ports ? json_object_get(c->ports, label) : NULL;

	return json_is_integer(p) ? (uint16_t)json_integer_value(p) : 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void maybe_finish(struct fleet *f)
{
	for (size_t i = 0; i < f->started; i++) {
		if (f->kids[i].running)
			return;
	}
	if (!uv_is_closing((uv_handle_t *)&f->timer))
		uv_close((uv_handle_t *)&f->timer, on_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&f->sigint)) {
		uv_close((uv_handle_t *)&f->sigint, on_handle_closed);
		uv_close((uv_handle_t *)&f->sigterm, on_handle_closed);
	}
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct child *c = p->data;
	struct fleet *f = c->fleet;

	c->running = false;
	c->exit_status = status;
	c->term_signal = sig;
	uv_close((uv_handle_t *)p, on_handle_closed);
	if (!f->stopping) {
		fprintf(stderr, "dev: %s exited unexpectedly (status %lld, signal %d);"
				" stopping the fleet\n", c->name, (long long)status, sig);
		stop_all(f, 1);
	}
	maybe_finish(f);
}

/* The child of role and index; add_children made every one we ask for. */
static const struct child *find_child(const struct fleet *f,
				      const char *role, unsigned index)
{
	for (size_t i = 0; i < f->nkids; i++) {
		if (strcmp(f->kids[i].role, role) == 0 &&
		    f->kids[i].index == index)
			return &f->kids[i];
	}
	abort(); /* an invariant, not input */
}

/*
 * A shell on agent 1: the device pairs with that agent's own URL, so its
 * enrollment page is that agent's (the CP's would pick any healthy one).
 */
static void print_shell_steps(const struct fleet *f)
{
	unsigned a1 = port_of(find_child(f, "agent", 1), "main");

	printf("Open a shell in dev-agent-1 (attested Noise, through its "
	       "sessiond):\n"
	       "  %s client pair http://%s:%u\n"
	       "  then open the enroll_url it prints (http://%s:%u/admin/enroll"
	       "?pubkey=...)\n"
	       "  in the signed-in browser, check the key and confirm; then\n"
	       "  %s client shell --allow-simulated http://%s:%u\n"
	       "(Ctrl-] detaches; `client sessions` lists the sessions, "
	       "--session ID returns).\n"
	       "Shells run as you: dev sign-in admits whoever has this run's "
	       "sign-in URL\n(its code is new each run): keep it to "
	       "yourself.\n\n",
	       f->self, f->bind, a1, f->bind, a1, f->self, f->bind, a1);
}

/* Where to click, how to sign in, how to deploy: all a newcomer needs. */
static void print_banner(struct fleet *f)
{
	const struct child *cp = find_child(f, "cp", 0), *ag;
	unsigned cport = port_of(cp, "main");

	printf("\nDevOps Defender dev fleet is up (loopback only; SIMULATED "
	       "quotes: development only).\n\n"
	       "  Dashboard      http://%s:%u/\n"
	       "  Sign in        http://%s:%u/auth/dev?code=%s   <- open this "
	       "in a browser\n"
	       "                 (its code is new each run) any login; tick "
	       "\"fleet admin\" to see\n"
	       "                 every agent; it then takes you to the "
	       "dashboard\n"
	       "  control plane  http://%s:%u/health\n",
	       f->bind, cport, f->bind, cport, f->signin_code, f->bind, cport);
	for (unsigned i = 1; i <= N_AGENTS; i++) {
		ag = find_child(f, "agent", i);
		printf("  agent %u        %s  http://%s:%u/  API http://%s:%u/health"
		       "\n", i, ag->name, f->bind, port_of(ag, "main"), f->bind,
		       port_of(ag, "api"));
	}
	printf("  local ITA      %s (and the local OIDC issuer at %s/oidc)\n"
	       "  runtimes       %s/runtime-N.sock (run the agents' "
	       "workloads; not sealed)\n"
	       "  sessionds      %s/sessiond-N.sock (the agents' shells; "
	       "recipes.json)\n"
	       "  state          %s (--state-dir)\n\n"
	       "The agents register within seconds and appear on the "
	       "dashboard.\n"
	       "Deploy as CI would, with a token from the local OIDC issuer:\n"
	       "  ACTIONS_ID_TOKEN_REQUEST_URL='%s/oidc/token?api-version=2.0' \\\n"
	       "  ACTIONS_ID_TOKEN_REQUEST_TOKEN=%s \\\n"
	       "  %s client deploy --agent http://%s:%u "
	       "apps/hello-world/workload.json\n"
	       "(the second agent: --agent http://%s:%u). The workload then "
	       "shows on the dashboard,\nits logs on the agent's own "
	       "dashboard (\"dashboard\" link).\n\n",
	       f->ita_url, f->ita_url, f->state, f->state, f->state, f->ita_url,
	       f->oidc_token, f->self, f->bind,
	       port_of(find_child(f, "agent", 1), "main"), f->bind,
	       port_of(find_child(f, "agent", 2), "main"));
	print_shell_steps(f);
	printf("Press Ctrl-C to stop everything.\n\n");
	fflush(stdout);
}

static void on_ready_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char scratch[4096];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(scratch, sizeof scratch);
}

static void child_ready(struct child *c)
{
	struct fleet *f = c->fleet;
	json_t *v = NULL;
	char why[160];

	if (dd_json_parse(c->ready_line.data, c->ready_line.len, 4096, &v, why,
			  sizeof why) != DD_OK ||
	    !json_is_object(json_object_get(v, "ports"))) {
		fprintf(stderr, "dev: %s sent a bad readiness line: %s\n", c->name, why);
		json_decref(v);
		stop_all(f, 1);
		return;
	}
	c->ports = json_incref(json_object_get(v, "ports"));
	json_decref(v);
	c->is_ready = true;
	uv_timer_stop(&f->timer);
	if (strcmp(c->role, "ita") == 0)
		snprintf(f->ita_url, sizeof f->ita_url, "http://%s:%u", f->bind,
			 port_of(c, "main"));
	if (strcmp(c->role, "cp") == 0)
		snprintf(f->cp_url, sizeof f->cp_url, "http://%s:%u", f->bind,
			 port_of(c, "main"));
	if (f->started < f->nkids)
		start_next(f);
	else
		print_banner(f);
}

static void on_ready_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct child *c = s->data;
	const char *nl;

	if (n < 0) {
		uv_close((uv_handle_t *)s, on_handle_closed);
		if (!c->is_ready && !c->fleet->stopping) {
			fprintf(stderr, "dev: %s closed its readiness pipe\n", c->name);
			stop_all(c->fleet, 1);
		}
		return;
	}
	if (c->is_ready || n == 0)
		return;
	if (dd_buf_append(&c->ready_line, buf->base, (size_t)n)) {
		stop_all(c->fleet, 1);
		return;
	}
	nl = memchr(c->ready_line.data, '\n', c->ready_line.len);
	if (nl != NULL) {
		c->ready_line.len = (size_t)(nl - (const char *)c->ready_line.data);
		child_ready(c);
	}
}

/* The parent's environment with the child's settings laid over it. */
static char **child_env(const char *const *over, size_t nover)
{
	size_t n = 0, w = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = dd_calloc(n + nover + 1, sizeof *env);
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool replaced = false;

		for (size_t j = 0; j < nover; j++) {
			if (strncmp(over[j], environ[i], klen) == 0 &&
			    over[j][klen] == '=')
				replaced = true;
		}
		/* A stray DD_MODE would override the role we ask for. */
		if (!replaced && strncmp(environ[i], "DD_MODE=", 8) != 0)
			env[w++] = environ[i];
	}
	for (size_t j = 0; j < nover; j++)
		env[w++] = (char *)(uintptr_t)over[j];
	return env;
}

/*
 * The CP and agents use the fleet's local ITA exactly as they would use
 * Intel's: over HTTP, verified through its JWKS.
 */
static size_t ita_env(const struct fleet *f, char vars[6][192],
		      const char **over, size_t n)
{
	snprintf(vars[0], sizeof vars[0], "DD_ITA_BASE_URL=%s", f->ita_url);
	snprintf(vars[1], sizeof vars[1], "DD_ITA_JWKS_URL=%s/certs", f->ita_url);
	snprintf(vars[2], sizeof vars[2], "DD_ITA_ISSUER=%s", f->ita_url);
	/* CI tokens come from the local issuer too: dev agents trust it. */
	snprintf(vars[3], sizeof vars[3], "DD_OIDC_ISSUER=%s/oidc", f->ita_url);
	snprintf(vars[4], sizeof vars[4],
		 "DD_OIDC_JWKS_URL=%s/oidc/.well-known/jwks", f->ita_url);
	for (int i = 0; i < 5; i++)
		over[n++] = vars[i];
	over[n++] = "DD_ITA_MODE=local";
	over[n++] = "DD_QUOTE_PROVIDER=sim";
	return n;
}

/*
 * Sessiond i: its socket and transcripts under the state directory, the
 * fleet's recipe file, and only our own uid (the agent's) may connect.
 */
static size_t sessiond_env(const struct fleet *f, const struct child *c,
			   char vars[4][192], const char **over, size_t n)
{
	snprintf(vars[0], sizeof vars[0], "DD_SESSIOND_SOCKET=%s",
		 f->sd_socket[c->index - 1]);
	snprintf(vars[1], sizeof vars[1], "DD_SESSIOND_DIR=%s/sessiond-%u",
		 f->state, c->index);
	snprintf(vars[2], sizeof vars[2], "DD_SESSIOND_RECIPES=%s",
		 f->recipes);
	snprintf(vars[3], sizeof vars[3], "DD_SESSIOND_PEER_UID=%u",
		 (unsigned)getuid());
	for (int i = 0; i < 4; i++)
		over[n++] = vars[i];
	return n;
}

static size_t role_env(const struct fleet *f, const struct child *c,
		       char vars[12][192], const char **over, size_t n)
{
	uint64_t base = f->port_base;

	if (strcmp(c->role, "ita") == 0) {
		snprintf(vars[0], sizeof vars[0], "DD_PORT=%llu",
			 (unsigned long long)(base ? base + 30 : 0));
		snprintf(vars[1], sizeof vars[1], "DD_OIDC_REQUEST_TOKEN=%s",
			 f->oidc_token);
		over[n++] = vars[0];
		over[n++] = vars[1];
		return n;
	}
	if (strcmp(c->role, "runtime") == 0) {
		snprintf(vars[0], sizeof vars[0], "EE_SOCKET_PATH=%s",
			 f->ee_socket[c->index - 1]);
		snprintf(vars[1], sizeof vars[1],
			 "DD_RUNTIME_RELEASES_DIR=%s/releases-%u", f->state,
			 c->index);
		over[n++] = vars[0];
		over[n++] = vars[1];
		over[n++] = "DD_QUOTE_PROVIDER=sim";
		return n;
	}
	if (strcmp(c->role, "sessiond") == 0)
		return sessiond_env(f, c, vars, over, n);
	n = ita_env(f, vars + 6, over, n);
	if (strcmp(c->role, "cp") == 0) {
		snprintf(vars[0], sizeof vars[0], "DD_PORT=%llu",
			 (unsigned long long)base);
		snprintf(vars[1], sizeof vars[1], "DD_AUTH_COOKIE_SECRET=%s",
			 f->cookie_secret);
		snprintf(vars[2], sizeof vars[2], "DD_STORE_PATH=%s/cp.db",
			 f->state);
		snprintf(vars[3], sizeof vars[3], "DD_DEV_SIGNIN_CODE=%s",
			 f->signin_code);
		for (int i = 0; i < 4; i++)
			over[n++] = vars[i];
		/* A dev fleet answers quickly; production scrapes every 5 s. */
		if (getenv("DD_SCRAPE_INTERVAL") == NULL)
			over[n++] = "DD_SCRAPE_INTERVAL=2";
		return n;
	}
	/* Agent i on base + 10i (main) and base + 10i + 1 (API). */
	snprintf(vars[0], sizeof vars[0], "DD_PORT=%llu",
		 (unsigned long long)(base ? base + 10 * c->index : 0));
	snprintf(vars[1], sizeof vars[1], "DD_API_PORT=%llu",
		 (unsigned long long)(base ? base + 10 * c->index + 1 : 0));
	snprintf(vars[2], sizeof vars[2], "DD_CP_URL=%s", f->cp_url);
	for (int i = 0; i < 3; i++)
		over[n++] = vars[i];
	snprintf(vars[3], sizeof vars[3], "EE_SOCKET_PATH=%s",
		 f->ee_socket[c->index - 1]);
	snprintf(vars[4], sizeof vars[4], "DD_SESSIOND_SOCKET=%s",
		 f->sd_socket[c->index - 1]);
	/* Paired devices outlive a restart of the fleet; nothing secret. */
	snprintf(vars[5], sizeof vars[5], "DD_AGENT_DEVICES_PATH=%s/devices-%u"
		 ".json", f->state, c->index);
	for (int i = 3; i < 6; i++)
		over[n++] = vars[i];
	return n;
}

static dd_err_t spawn_child(struct fleet *f, struct child *c)
{
	char pid[32], vm[64], bind[64], key[96], vars[12][192];
	const char *over[32];
	size_t n = 0;
	char *args[3] = {f->self, (char *)(uintptr_t)c->role, NULL};
	uv_stdio_container_t stdio[4];
	uv_process_options_t opt;
	char **env;
	int r;

	snprintf(pid, sizeof pid, "DD_SUPERVISOR_PID=%d", (int)getpid());
	snprintf(vm, sizeof vm, "DD_VM_NAME=%s", c->name);
	snprintf(bind, sizeof bind, "DD_BIND_ADDR=%s", f->bind);
	snprintf(key, sizeof key, "DD_ITA_API_KEY=%s", f->ita_key);
	over[n++] = "DD_READY_FD=3";
	over[n++] = "DD_DEV=1";
	over[n++] = "DD_ENV=dev";
	over[n++] = pid;
	over[n++] = vm;
	over[n++] = bind;
	over[n++] = key;
	if (getenv("DD_OWNER") == NULL) {
		over[n++] = "DD_OWNER=dev-owner";
		over[n++] = "DD_OWNER_ID=1";
		over[n++] = "DD_OWNER_KIND=user";
	}
	n = role_env(f, c, vars, over, n);
	env = child_env(over, n);
	if (env == NULL)
		return DD_ERR_NOMEM;
	uv_pipe_init(f->loop, &c->ready, 0);
	c->ready.data = c;
	stdio[0].flags = UV_INHERIT_FD;
	stdio[0].data.fd = 0;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 1;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[3].data.stream = (uv_stream_t *)&c->ready;
	memset(&opt, 0, sizeof opt);
	opt.file = f->self;
	opt.args = args;
	opt.env = env;
	opt.exit_cb = on_child_exit;
	opt.stdio = stdio;
	opt.stdio_count = 4;
	c->proc.data = c;
	r = uv_spawn(f->loop, &c->proc, &opt);
	dd_free(env);
	if (r) {
		uv_close((uv_handle_t *)&c->ready, on_handle_closed);
		fprintf(stderr, "dev: cannot start %s: %s\n", c->name, uv_strerror(r));
		return DD_ERR_IO;
	}
	c->running = true;
	uv_read_start((uv_stream_t *)&c->ready, on_ready_alloc, on_ready_read);
	return DD_OK;
}

static void on_ready_timeout(uv_timer_t *t)
{
	struct fleet *f = t->data;

	fprintf(stderr, "dev: %s did not become ready within %d s\n",
		f->kids[f->started - 1].name, READY_TIMEOUT_MS / 1000);
	stop_all(f, 1);
}

static void start_next(struct fleet *f)
{
	struct child *c = &f->kids[f->started++];

	if (spawn_child(f, c) != DD_OK) {
		stop_all(f, 1);
		return;
	}
	uv_timer_start(&f->timer, on_ready_timeout, READY_TIMEOUT_MS, 0);
}

static void on_stop_grace(uv_timer_t *t)
{
	struct fleet *f = t->data;

	for (size_t i = 0; i < f->started; i++) {
		if (f->kids[i].running) {
			fprintf(stderr, "dev: %s ignored SIGTERM; killing it\n",
				f->kids[i].name);
			uv_process_kill(&f->kids[i].proc, SIGKILL);
		}
	}
}

static void stop_all(struct fleet *f, int code)
{
	if (f->stopping)
		return;
	f->stopping = true;
	f->exit_code = code;
	for (size_t i = 0; i < f->started; i++) {
		if (f->kids[i].running)
			uv_process_kill(&f->kids[i].proc, SIGTERM);
	}
	uv_timer_start(&f->timer, on_stop_grace, STOP_GRACE_MS, 0);
	maybe_finish(f);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct fleet *f = s->data;

	(void)signum;
	fprintf(stderr, "\ndev: stopping the fleet...\n");
	stop_all(f, 0);
}

/* The recipe file's text: allocated, dd_free; NULL when out of memory. */
static char *recipes_text(void)
{
	const char *home = getenv("HOME");
	const char *sh = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
	struct stat st;
	json_t *doc;
	char *text = NULL;

	if (home == NULL || home[0] != '/' || stat(home, &st) != 0 ||
	    !S_ISDIR(st.st_mode))
		home = "/";
	doc = json_pack("{s:[{s:s, s:s, s:s, s:[s, s], s:s}]}", "recipes",
			"id", "shell", "title", "Shell", "description",
			"a login shell of the user running the dev fleet",
			"argv", sh, "-l", "cwd", home);
	if (doc != NULL)
		text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	return text;
}

/*
 * The sessionds' one recipe, "shell": a login shell (bash, else sh) of
 * the user running the fleet, in their home directory; it runs as that
 * user, like any shell they open. Written only when missing, so a
 * developer may add recipes to it (docs/sessions.md "Recipes").
 */
static int write_recipes(struct fleet *f)
{
	char *text = NULL;
	size_t len, off = 0;
	ssize_t w = 1;
	int fd, rc = 1;

	snprintf(f->recipes, sizeof f->recipes, "%s/recipes.json", f->state);
	fd = open(f->recipes, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0)
		goto out;
	text = recipes_text();
	if (text == NULL)
		goto out;
	len = strlen(text);
	while (off < len && w > 0) {
		w = write(fd, text + off, len - off);
		off += w > 0 ? (size_t)w : 0;
	}
	rc = off == len ? 0 : 1;
out:
	if (rc)
		fprintf(stderr, "dev: cannot write %s: %s\n", f->recipes,
			text == NULL && fd >= 0 ? "out of memory" : strerror(errno));
	if (fd >= 0)
		close(fd);
	if (rc && fd >= 0)
		unlink(f->recipes); /* half a file would stop every sessiond */
	dd_free(text);
	return rc;
}

/*
 * Whether the existing state directory is ours alone to write: the
 * sessionds run the programs its recipes.json names, so a directory
 * another user made first (in /tmp, say) must not be used.
 */
static int state_is_ours(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		fprintf(stderr, "dev: %s: %s\n", dir, strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		fprintf(stderr, "dev: %s is not a directory that only this user "
				"can write; refusing to use it\n", dir);
		return 0;
	}
	return 1;
}

/* The state directory (0700) and the paths under it. */
static int prepare_state(struct fleet *f)
{
	char releases[100];

	if (f->state[0] == '\0')
		snprintf(f->state, sizeof f->state, "/tmp/devopsdefender-dev-%u",
			 (unsigned)getuid());
	if (mkdir(f->state, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "dev: cannot create %s: %s\n", f->state,
			strerror(errno));
		return 1;
	}
	if (!state_is_ours(f->state))
		return 1;
	/*
	 * Per agent a runtime (its socket and its release assets) and a
	 * sessiond (its socket; it makes its transcript directory itself).
	 */
	for (unsigned i = 1; i <= N_AGENTS; i++) {
		snprintf(f->ee_socket[i - 1], sizeof f->ee_socket[i - 1],
			 "%s/runtime-%u.sock", f->state, i);
		snprintf(f->sd_socket[i - 1], sizeof f->sd_socket[i - 1],
			 "%s/sessiond-%u.sock", f->state, i);
		snprintf(releases, sizeof releases, "%s/releases-%u", f->state,
			 i);
		if (mkdir(releases, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "dev: cannot create %s: %s\n",
				releases, strerror(errno));
			return 1;
		}
	}
	return write_recipes(f);
}

static int parse_args(struct fleet *f, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--port-base") == 0 && i + 1 < argc) {
			if (dd_parse_u64(argv[++i], 0, 65505, &f->port_base) != DD_OK) {
				fprintf(stderr, "dev: --port-base takes 0..65505\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
			f->bind = argv[++i];
		} else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc) {
			/* Sockets live there: unix socket paths are short. */
			if (argv[++i][0] != '/' ||
			    snprintf(f->state, sizeof f->state, "%s", argv[i]) >=
				    (int)sizeof f->state) {
				fprintf(stderr, "dev: --state-dir takes an absolute "
						"path under 80 bytes\n");
				return 2;
			}
		} else {
			fprintf(stderr, "dev: unknown argument '%s'\n", argv[i]);
			dd_dev_usage(stderr);
			return 2;
		}
	}
	return 0;
}

/*
 * Started in this order, each once the one before is ready: the ITA
 * (the others attest against it), the CP, then each agent after its
 * runtime and its sessiond.
 */
static void add_children(struct fleet *f)
{
	f->kids[f->nkids++] = (struct child){.fleet = f, .role = "ita",
					     .name = "ita"};
	f->kids[f->nkids++] = (struct child){.fleet = f, .role = "cp",
					     .name = "cp"};
	for (unsigned i = 1; i <= N_AGENTS; i++) {
		struct child *rt = &f->kids[f->nkids++];
		struct child *sd = &f->kids[f->nkids++];
		struct child *ag = &f->kids[f->nkids++];

		*rt = (struct child){.fleet = f, .role = "runtime", .index = i};
		snprintf(rt->name, sizeof rt->name, "runtime-%u", i);
		*sd = (struct child){.fleet = f, .role = "sessiond", .index = i};
		snprintf(sd->name, sizeof sd->name, "sessiond-%u", i);
		*ag = (struct child){.fleet = f, .role = "agent", .index = i};
		snprintf(ag->name, sizeof ag->name, "dev-agent-%u", i);
	}
}

int dd_dev_main(int argc, char **argv)
{
	struct fleet f;
	uv_loop_t loop;
	ssize_t n;
	int rc;

	memset(&f, 0, sizeof f);
	f.bind = "127.0.0.1";
	f.port_base = 8080;
	rc = parse_args(&f, argc, argv);
	if (rc)
		return rc;
	n = readlink("/proc/self/exe", f.self, sizeof f.self - 1);
	if (n <= 0) {
		fprintf(stderr, "devopsdefender: fatal: cannot find own binary\n");
		return 1;
	}
	f.self[n] = '\0';
	signal(SIGPIPE, SIG_IGN);
	if (dd_random_hex(f.ita_key, 16) != DD_OK ||
	    dd_random_hex(f.cookie_secret, 32) != DD_OK ||
	    dd_random_hex(f.oidc_token, 16) != DD_OK ||
	    dd_dev_signin_make_code(f.signin_code) != DD_OK) {
		fprintf(stderr, "devopsdefender: fatal: no randomness\n");
		return 1;
	}
	if (prepare_state(&f) != 0)
		return 1;
	/* Only now: a loop left unclosed by an early return would leak. */
	uv_loop_init(&loop);
	f.loop = &loop;
	add_children(&f);
	for (size_t i = 0; i < f.nkids; i++)
		dd_buf_init(&f.kids[i].ready_line, 4096);
	uv_timer_init(&loop, &f.timer);
	f.timer.data = &f;
	uv_signal_init(&loop, &f.sigint);
	uv_signal_init(&loop, &f.sigterm);
	f.sigint.data = f.sigterm.data = &f;
	uv_signal_start(&f.sigint, on_signal, SIGINT);
	uv_signal_start(&f.sigterm, on_signal, SIGTERM);
	start_next(&f);
	uv_run(&loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < f.nkids; i++) {
		dd_buf_free(&f.kids[i].ready_line);
		json_decref(f.kids[i].ports);
	}
	uv_loop_close(&loop);
	OPENSSL_cleanse(f.signin_code, sizeof f.signin_code);
	fprintf(stderr, "dev: fleet stopped\n");
	return f.exit_code;
}
