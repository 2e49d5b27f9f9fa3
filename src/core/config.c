#include "core/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/strutil.h"

enum var_type {
	T_STR,      /* any value; presence is what counts */
	T_NONBLANK, /* must contain non-whitespace; trimmed */
	T_LABEL,    /* DD_ENV grammar */
	T_U16,
	T_U64,
	T_FLAG,     /* 1/true/yes/on or 0/false/no/off */
	T_CHOICE,   /* index into choices, stored as int */
	T_URL,      /* http:// or https://, no whitespace; trailing / dropped */
	T_PATH,     /* absolute path */
	T_HOSTADDR, /* an IPv4/IPv6 literal to bind to */
};

#define ALL_SERVERS (DD_MODE_CP | DD_MODE_AGENT)
/* Every mode that runs an HTTP listener. */
#define LISTENERS (ALL_SERVERS | DD_MODE_ITA)
#define EVERY (LISTENERS | DD_MODE_SESSIOND | DD_MODE_RUNTIME | DD_MODE_DEV | \
	       DD_MODE_CLIENT)

struct var {
	const char *name;
	enum var_type type;
	const char *def;     /* NULL = no default */
	uint64_t min, max;   /* numeric bounds */
	unsigned modes;      /* modes that read it */
	unsigned required;   /* modes that refuse to start without it */
	bool secret;
	size_t offset;
	const char *const *choices;
	const char *help;
};

static const char *const owner_kinds[] = {"user", "org", "repo", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};
static const char *const ita_modes[] = {"intel", "local", NULL};
static const char *const providers[] = {"ee", "tsm", "sim", NULL};
static const char *const poweroffs[] = {"recorded", "real", NULL};

#define OFF(f) offsetof(dd_config, f)
#define MS_DAY (24ull * 3600 * 1000)

static const struct var vars[] = {
	{"DD_ENV", T_LABEL, NULL, 0, 0, LISTENERS, LISTENERS, false,
	 OFF(env), NULL, "environment label: production, staging, dev, pr-N, ..."},
	{"DD_OWNER", T_NONBLANK, NULL, 0, 0, LISTENERS, ALL_SERVERS, false,
	 OFF(owner), NULL, "fleet owner: GitHub user, org, or owner/repo"},
	{"DD_OWNER_ID", T_U64, NULL, 1, UINT64_MAX, LISTENERS, ALL_SERVERS,
	 false, OFF(owner_id), NULL, "numeric GitHub id of the owner"},
	{"DD_OWNER_KIND", T_CHOICE, NULL, 0, 0, LISTENERS, ALL_SERVERS, false,
	 OFF(owner_kind), owner_kinds, "user, org or repo"},
	{"DD_VM_NAME", T_NONBLANK, NULL, 0, 0, ALL_SERVERS, 0, false,
	 OFF(vm_name), NULL, "name of this VM (default: /etc/hostname)"},
	{"DD_DEV", T_FLAG, "0", 0, 0, EVERY, 0, false, OFF(dev), NULL,
	 "explicit development mode: accepts simulated quotes, dev sign-in"},
	{"DD_BIND_ADDR", T_HOSTADDR, "0.0.0.0", 0, 0, LISTENERS, 0, false,
	 OFF(bind_addr), NULL, "address the HTTP listeners bind to"},
	{"DD_PORT", T_U16, "8080", 0, 65535, LISTENERS, 0, false, OFF(port),
	 NULL, "main HTTP port (0: any free port)"},
	{"DD_API_PORT", T_U16, "8081", 0, 65535, DD_MODE_AGENT, 0, false,
	 OFF(api_port), NULL, "agent API listener port (0: any free port)"},
	{"DD_HOSTNAME", T_NONBLANK, NULL, 0, 0, ALL_SERVERS, 0, false,
	 OFF(hostname), NULL, "public hostname of this process"},
	{"DD_CF_DOMAIN", T_NONBLANK, NULL, 0, 0, ALL_SERVERS, 0, false,
	 OFF(cf_domain), NULL, "apex domain of the fleet"},
	{"DD_CF_API_URL", T_URL, "https://api.cloudflare.com/client/v4", 0, 0,
	 DD_MODE_CP, 0, false, OFF(cf.api_url), NULL,
	 "Cloudflare API base URL (tests: a fake on loopback)"},
	{"DD_CF_API_TOKEN", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, true,
	 OFF(cf.api_token), NULL,
	 "Cloudflare API token (unset: no tunnels, direct ingress)"},
	{"DD_CF_ACCOUNT_ID", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(cf.account_id), NULL, "Cloudflare account of the tunnels"},
	{"DD_CF_ZONE_ID", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(cf.zone_id), NULL, "Cloudflare zone of DD_CF_DOMAIN"},
	{"DD_CF_TIMEOUT_MS", T_U64, "20000", 100, MS_DAY, DD_MODE_CP, 0, false,
	 OFF(cf.timeout_ms), NULL, "one Cloudflare API attempt"},
	{"DD_CF_ATTEMPTS", T_U64, "4", 1, 20, DD_MODE_CP, 0, false,
	 OFF(cf.attempts), NULL,
	 "tries per Cloudflare call (429, 5xx; Retry-After honoured)"},
	{"DD_CF_MAX_WAIT_MS", T_U64, "30000", 10, 3600000, DD_MODE_CP, 0, false,
	 OFF(cf.max_wait_ms), NULL, "longest wait between two tries"},
	{"DD_CF_AGENT_PORT", T_U16, "8080", 1, 65535, DD_MODE_CP, 0, false,
	 OFF(cf.agent_port), NULL, "agents' main port behind their hostname"},
	{"DD_CF_AGENT_API_PORT", T_U16, "8081", 1, 65535, DD_MODE_CP, 0, false,
	 OFF(cf.agent_api_port), NULL,
	 "agents' API port behind their -api- hostname"},
	{"DD_CF_CP_EXTRAS", T_STR, "shell:7682", 0, 0, DD_MODE_CP, 0, false,
	 OFF(cf.cp_extras), NULL,
	 "label:port list routed by the CP's own tunnel"},
	{"DD_CF_REAP_GRACE_SECS", T_U64, "900", 60, 30 * 86400, DD_MODE_CP, 0,
	 false, OFF(cf.reap_grace_secs), NULL,
	 "an agent tunnel nobody claims is reaped only once this old"},
	{"DD_CF_REAP_INTERVAL_SECS", T_U64, "30", 1, 86400, DD_MODE_CP, 0,
	 false, OFF(cf.reap_interval_secs), NULL,
	 "seconds between two reaping passes (sooner for dead agents)"},
	{"DD_CF_REAP_MAX", T_U64, "20", 1, 500, DD_MODE_CP, 0, false,
	 OFF(cf.reap_max), NULL, "tunnels reaped per pass at most"},
	{"DD_CP_URL", T_URL, NULL, 0, 0, DD_MODE_AGENT, DD_MODE_AGENT, false,
	 OFF(cp_url), NULL, "control plane base URL"},
	{"EE_SOCKET_PATH", T_PATH, "/var/lib/easyenclave/agent.sock", 0, 0,
	 DD_MODE_CP | DD_MODE_AGENT | DD_MODE_RUNTIME, 0, false,
	 OFF(ee_socket), NULL, "EasyEnclave unix socket"},
	{"EE_TOKEN", T_STR, NULL, 0, 0,
	 DD_MODE_CP | DD_MODE_AGENT | DD_MODE_RUNTIME, 0, true, OFF(ee_token),
	 NULL, "EasyEnclave seal token sent with every socket request"},
	{"DD_RUNTIME_RELEASES_DIR", T_PATH, NULL, 0, 0, DD_MODE_RUNTIME, 0,
	 false, OFF(runtime.releases_dir), NULL,
	 "local release assets: DIR/owner/repo/tag/asset (unset: none)"},
	{"DD_RUNTIME_MAX_REQUEST", T_U64, "1048576", 1024, 64ull << 20,
	 DD_MODE_RUNTIME, 0, false, OFF(runtime.max_request), NULL,
	 "longest request line, bytes"},
	{"DD_RUNTIME_MAX_CONNECTIONS", T_U64, "64", 1, 10000, DD_MODE_RUNTIME,
	 0, false, OFF(runtime.max_connections), NULL,
	 "open socket connections (attach sessions included)"},
	{"DD_RUNTIME_LOG_BYTES", T_U64, "1048576", 4096, 256ull << 20,
	 DD_MODE_RUNTIME, 0, false, OFF(runtime.log_bytes), NULL,
	 "log lines kept per deployment, bytes"},
	{"DD_RUNTIME_EXEC_MAX_OUTPUT", T_U64, "262144", 1024, 1ull << 20,
	 DD_MODE_RUNTIME, 0, false, OFF(runtime.exec_max_output), NULL,
	 "exec stdout and stderr kept, bytes each"},
	{"DD_RUNTIME_STOP_GRACE_MS", T_U64, "2000", 0, 600000, DD_MODE_RUNTIME,
	 0, false, OFF(runtime.stop_grace_ms), NULL,
	 "SIGTERM to SIGKILL when stopping a workload"},
	{"DD_RUNTIME_RESTART_BACKOFF_MS", T_U64, "1000", 10, 3600000,
	 DD_MODE_RUNTIME, 0, false, OFF(runtime.restart_backoff_ms), NULL,
	 "first restart delay, doubled per quick failure (cap 30 s)"},
	{"DD_RUNTIME_RESTART_MAX", T_U64, "5", 0, 1000, DD_MODE_RUNTIME, 0,
	 false, OFF(runtime.restart_max), NULL,
	 "quick failures in a row before a workload is left failed"},
	{"DD_SESSIOND_SOCKET", T_PATH, "/run/devopsdefender/sessiond.sock", 0,
	 0, DD_MODE_SESSIOND | DD_MODE_AGENT, 0, false, OFF(sessiond.socket),
	 NULL, "sessiond's unix socket (mode 0600; never TCP)"},
	{"DD_SESSIOND_DIR", T_PATH, "/var/lib/devopsdefender/sessiond", 0, 0,
	 DD_MODE_SESSIOND, 0, false, OFF(sessiond.dir), NULL,
	 "sealed transcripts and the recipient set (made 0700)"},
	{"DD_SESSIOND_RECIPES", T_PATH, NULL, 0, 0, DD_MODE_SESSIOND, 0, false,
	 OFF(sessiond.recipes), NULL,
	 "recipe file, JSON (unset: one recipe, shell = /bin/sh)"},
	{"DD_SESSIOND_PEER_UID", T_NONBLANK, NULL, 0, 0, DD_MODE_SESSIOND, 0,
	 false, OFF(sessiond.peer_uid), NULL,
	 "the only uid that may connect: the agent's (unset: our own)"},
	{"DD_SESSIOND_MAX_SESSIONS", T_U64, "32", 1, 4096, DD_MODE_SESSIOND, 0,
	 false, OFF(sessiond.max_sessions), NULL,
	 "sessions at a time, exited and closing ones included"},
	{"DD_SESSIOND_SCROLLBACK", T_U64, "262144", 4096, 64ull << 20,
	 DD_MODE_SESSIOND, 0, false, OFF(sessiond.scrollback), NULL,
	 "scrollback kept in memory per session, bytes"},
	{"DD_SESSIOND_HISTORY_MAX_BYTES", T_U64, "1073741824", 1ull << 16,
	 1ull << 40, DD_MODE_SESSIOND, 0, false,
	 OFF(sessiond.history_max_bytes), NULL,
	 "sealed transcripts on disk, all sessions, bytes"},
	{"DD_SESSIOND_HISTORY_SESSION_BYTES", T_U64, "134217728", 1ull << 15,
	 1ull << 40, DD_MODE_SESSIOND, 0, false,
	 OFF(sessiond.history_session_bytes), NULL,
	 "sealed transcript of one session, bytes (oldest segments go)"},
	{"DD_SESSIOND_HISTORY_SEGMENT_BYTES", T_U64, "4194304", 1ull << 14,
	 1ull << 30, DD_MODE_SESSIOND, 0, false,
	 OFF(sessiond.history_segment_bytes), NULL,
	 "transcript file size before rotation, bytes"},
	{"DD_SESSIOND_MAX_REQUEST", T_U64, "65536", 1024, 1ull << 20,
	 DD_MODE_SESSIOND, 0, false, OFF(sessiond.max_request), NULL,
	 "longest request line, bytes"},
	{"DD_SESSIOND_MAX_CONNECTIONS", T_U64, "64", 1, 10000,
	 DD_MODE_SESSIOND, 0, false, OFF(sessiond.max_connections), NULL,
	 "open socket connections (attached ones included)"},
	{"DD_ITA_MODE", T_CHOICE, "intel", 0, 0, ALL_SERVERS, 0, false,
	 OFF(ita_mode), ita_modes,
	 "intel, or local (the dev issuer; refused outside DD_DEV)"},
	{"DD_ITA_BASE_URL", T_URL, NULL, 0, 0, ALL_SERVERS, ALL_SERVERS, false,
	 OFF(ita_base_url), NULL, "Intel Trust Authority API base URL"},
	{"DD_ITA_API_KEY", T_NONBLANK, NULL, 0, 0, ALL_SERVERS | DD_MODE_ITA,
	 ALL_SERVERS | DD_MODE_ITA, true, OFF(ita_api_key), NULL,
	 "Intel Trust Authority API key (ita mode: the key it demands)"},
	{"DD_ITA_JWKS_URL", T_URL, NULL, 0, 0, ALL_SERVERS, ALL_SERVERS, false,
	 OFF(ita_jwks_url), NULL, "where the token signing keys are published"},
	{"DD_ITA_ISSUER", T_NONBLANK, NULL, 0, 0, ALL_SERVERS | DD_MODE_ITA,
	 ALL_SERVERS, false, OFF(ita_issuer), NULL,
	 "exact iss of tokens (ita mode: default its own URL)"},
	{"DD_ITA_REFRESH_SECS", T_U64, "180", 1, 86400, ALL_SERVERS, 0, false,
	 OFF(ita_refresh_secs), NULL, "how often the own token is re-minted"},
	{"DD_ITA_JWKS_REFRESH_SECS", T_U64, "10", 1, 3600, ALL_SERVERS, 0,
	 false, OFF(ita_jwks_refresh_secs), NULL,
	 "least time between key refetches for an unknown kid"},
	{"DD_QUOTE_PROVIDER", T_CHOICE, "ee", 0, 0,
	 ALL_SERVERS | DD_MODE_RUNTIME, 0, false,
	 OFF(quote_provider), providers,
	 "where own quotes come from: ee, tsm, or sim (DD_DEV only)"},
	{"DD_SIM_MRTD", T_NONBLANK, NULL, 0, 0, ALL_SERVERS, 0, false,
	 OFF(sim_mrtd), NULL,
	 "MRTD of simulated quotes, 96 hex (dev: to exercise pinning)"},
	{"DD_TSM_ROOT", T_PATH, "/sys/kernel/config/tsm/report", 0, 0,
	 ALL_SERVERS | DD_MODE_RUNTIME, 0, false, OFF(tsm_root), NULL,
	 "configfs-tsm report directory"},
	{"DD_EXPECTED_MRTD", T_STR, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_mrtd), NULL,
	 "allowlist of MRTDs, [name=]hex separated by commas (empty: unpinned)"},
	{"DD_EXPECTED_TCB", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_tcb), NULL, "lowest TCB status accepted (default UpToDate)"},
	{"DD_EXPECTED_RTMR0", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_rtmr[0]), NULL, "exact RTMR0 (unset: any)"},
	{"DD_EXPECTED_RTMR1", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_rtmr[1]), NULL, "exact RTMR1 (unset: any)"},
	{"DD_EXPECTED_RTMR2", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_rtmr[2]), NULL, "exact RTMR2 (unset: any)"},
	{"DD_EXPECTED_RTMR3", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(expected_rtmr[3]), NULL, "exact RTMR3 (unset: any)"},
	{"DD_MEASUREMENT_ENFORCE", T_FLAG, "1", 0, 0, DD_MODE_CP, 0, false,
	 OFF(measurement_enforce), NULL,
	 "refuse what pinning rejects (0: only warn)"},
	{"DD_STORE_PATH", T_NONBLANK, "/var/lib/devopsdefender/cp.db", 0, 0,
	 DD_MODE_CP, 0, false, OFF(store_path), NULL,
	 "the fleet store (SQLite; an absolute path, or :memory: for tests)"},
	{"DD_SCRAPE_INTERVAL", T_U64, "5", 1, 3600, DD_MODE_CP, 0, false,
	 OFF(scrape_interval_secs), NULL,
	 "seconds between two collector ticks (every agent's /health)"},
	{"DD_SCRAPE_GRACE", T_U64, "120", 0, 86400, DD_MODE_CP, 0, false,
	 OFF(scrape_grace_secs), NULL,
	 "seconds a registering agent may fail scrapes and stay registering"},
	{"DD_SCRAPE_DEAD_AFTER", T_U64, "900", 1, 30 * 86400, DD_MODE_CP, 0,
	 false, OFF(scrape_dead_secs), NULL,
	 "seconds of silence after which a failed scrape means dead"},
	{"DD_COLLECT_CONNECT_TO", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(collect_connect_to), NULL,
	 "host:port every tunnel agent's scrape connects to instead of "
	 "resolving its name, TLS name unchanged (DD_DEV only: a fake edge)"},
	{"DD_PREDECESSOR_URL", T_URL, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(predecessor_url), NULL,
	 "a CP to hydrate the store from at boot (its attested export)"},
	{"DD_PUBLIC_URL", T_URL, NULL, 0, 0, ALL_SERVERS, 0, false,
	 OFF(public_url), NULL,
	 "public origin of this process (default https://DD_HOSTNAME)"},
	{"DD_AUTH_COOKIE_SECRET", T_STR, NULL, 0, 0, DD_MODE_CP, DD_MODE_CP,
	 true, OFF(cookie_secret), NULL,
	 "session signing key: 32+ bytes, or base64:<32+ bytes encoded>"},
	{"DD_DEV_SIGNIN_CODE", T_STR, NULL, 0, 0, DD_MODE_CP, 0, true,
	 OFF(dev_signin_code), NULL,
	 "dev sign-in's code: 22-128 of [A-Za-z0-9_-] (DD_DEV only; unset: "
	 "the CP makes one and logs its sign-in URL)"},
	{"DD_AUTH_COOKIE_DOMAIN", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(cookie_domain), NULL,
	 "Domain of the session cookie (default: host only)"},
	{"DD_AUTH_BROKER_URL", T_URL, NULL, 0, 0, DD_MODE_AGENT, 0, false,
	 OFF(broker_url), NULL, "where people sign in (default DD_CP_URL)"},
	{"DD_GITHUB_OAUTH_URL", T_URL, "https://github.com", 0, 0, DD_MODE_CP, 0,
	 false, OFF(github_oauth_url), NULL, "GitHub OAuth base URL"},
	{"DD_GITHUB_API_URL", T_URL, "https://api.github.com", 0, 0, DD_MODE_CP,
	 0, false, OFF(github_api_url), NULL, "GitHub API base URL"},
	{"DD_GITHUB_CLIENT_ID", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(github_client_id[0]), NULL, "GitHub App OAuth client id"},
	{"DD_GITHUB_CLIENT_SECRET", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0, true,
	 OFF(github_client_secret[0]), NULL, "GitHub App OAuth client secret"},
	{"DD_PRODUCTION_GITHUB_CLIENT_ID", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0,
	 false, OFF(github_client_id[1]), NULL,
	 "client id for app.* / app-* return hosts"},
	{"DD_PRODUCTION_GITHUB_CLIENT_SECRET", T_NONBLANK, NULL, 0, 0,
	 DD_MODE_CP, 0, true, OFF(github_client_secret[1]), NULL,
	 "its client secret"},
	{"DD_STAGING_GITHUB_CLIENT_ID", T_NONBLANK, NULL, 0, 0, DD_MODE_CP, 0,
	 false, OFF(github_client_id[2]), NULL,
	 "client id for every other return host"},
	{"DD_STAGING_GITHUB_CLIENT_SECRET", T_NONBLANK, NULL, 0, 0, DD_MODE_CP,
	 0, true, OFF(github_client_secret[2]), NULL, "its client secret"},
	{"DD_GITHUB_CALLBACK_URL", T_URL, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(github_callback_url), NULL,
	 "OAuth redirect_uri (default <public url>/auth/github/callback)"},
	{"DD_OIDC_ISSUER", T_NONBLANK,
	 "https://token.actions.githubusercontent.com", 0, 0, ALL_SERVERS, 0,
	 false, OFF(oidc_issuer), NULL, "GitHub Actions OIDC issuer"},
	{"DD_OIDC_JWKS_URL", T_URL,
	 "https://token.actions.githubusercontent.com/.well-known/jwks", 0, 0,
	 ALL_SERVERS, 0, false, OFF(oidc_jwks_url), NULL,
	 "GitHub Actions OIDC signing keys"},
	{"DD_OIDC_AUDIENCE", T_NONBLANK, "dd-agent", 0, 0, ALL_SERVERS, 0, false,
	 OFF(oidc_audience), NULL, "audience CI tokens must name"},
	{"DD_OIDC_REQUEST_TOKEN", T_NONBLANK, NULL, 0, 0, DD_MODE_ITA, 0, true,
	 OFF(oidc_request_token), NULL,
	 "ita mode: serve a local GitHub Actions OIDC issuer for the owner, "
	 "to callers presenting this"},
	{"DD_OIDC_MAX_AGE_SECS", T_U64, "900", 30, 86400, ALL_SERVERS, 0, false,
	 OFF(oidc_max_age_secs), NULL, "oldest CI token accepted, from its iat"},
	{"DD_CONFIDENTIAL", T_FLAG, "0", 0, 0, DD_MODE_AGENT, 0, false,
	 OFF(confidential), NULL,
	 "no deploy, exec, owner change or shells: a sealed appliance"},
	{"DD_EE_WAIT_SECS", T_U64, "90", 0, 3600, DD_MODE_AGENT, 0, false,
	 OFF(ee_wait_secs), NULL,
	 "how long boot waits for EasyEnclave (0: serve without waiting)"},
	{"DD_NOISE_KEY_PATH", T_PATH, NULL, 0, 0, DD_MODE_AGENT, 0, false,
	 OFF(noise_key_path), NULL,
	 "the Noise static key on tmpfs, 0600 (unset: memory only)"},
	{"DD_AGENT_DEVICES_PATH", T_PATH, NULL, 0, 0, DD_MODE_AGENT, 0, false,
	 OFF(devices_path), NULL,
	 "paired devices, JSON, 0600, on the persistent volume (unset: memory "
	 "only)"},
	{"DD_AGENT_MAX_DEVICES", T_U64, "64", 1, 4096, DD_MODE_AGENT, 0, false,
	 OFF(max_devices), NULL, "paired devices kept, revoked ones included"},
	{"DD_NOISE_HANDSHAKE_MS", T_U64, "10000", 100, 60000, DD_MODE_AGENT, 0,
	 false, OFF(noise_handshake_ms), NULL,
	 "how long /noise/ws waits for a device's first message"},
	{"DD_REGISTER_BACKOFF_MS", T_U64, "5000", 10, 60000, DD_MODE_AGENT, 0,
	 false, OFF(register_backoff_ms), NULL,
	 "registration back-off unit: retries wait clamp(5n, 5, 60) of a fifth"},
	{"DD_REGISTER_CHECK_SECS", T_U64, "60", 1, 86400, DD_MODE_AGENT, 0,
	 false, OFF(register_check_secs), NULL,
	 "how often a registered agent checks that the CP still knows it"},
	{"DD_POWEROFF", T_CHOICE, "recorded", 0, 0, DD_MODE_CP, 0, false,
	 OFF(poweroff_real), poweroffs,
	 "recorded (log, marker, exit 86) or real (sync + reboot; never "
	 "with DD_DEV)"},
	{"DD_POWEROFF_MARKER", T_PATH, NULL, 0, 0, DD_MODE_CP, 0, false,
	 OFF(poweroff_marker), NULL,
	 "recorded power-offs append a line to this file (tests)"},
	{"DD_CLOUDFLARED_PATH", T_PATH, "/var/lib/easyenclave/bin/cloudflared",
	 0, 0, ALL_SERVERS, 0, false, OFF(cloudflared_path), NULL,
	 "the cloudflared binary"},
	{"DD_CLOUDFLARED_BACKOFF_MS", T_U64, "1000", 10, 3600000, ALL_SERVERS,
	 0, false, OFF(cloudflared_backoff_ms), NULL,
	 "first cloudflared restart delay, doubled per quick exit (cap 60 s)"},
	{"DD_STONITH_EVICT_DELAY_MS", T_U64, "5000", 1, MS_DAY, DD_MODE_CP, 0,
	 false, OFF(stonith_evict_delay_ms), NULL,
	 "cloudflared start -> first look at our tunnel's connections"},
	{"DD_STONITH_POLL_MS", T_U64, "10000", 1, MS_DAY, DD_MODE_CP, 0, false,
	 OFF(stonith_poll_ms), NULL,
	 "self-watchdog period (+-20 %; first read after 1-2.5 periods)"},
	{"DD_STONITH_DRAIN_MS", T_U64, "30000", 1, MS_DAY, DD_MODE_CP, 0, false,
	 OFF(stonith_drain_ms), NULL,
	 "an evicted CP drains at most this long, then powers off"},
	{"DD_CA_FILE", T_PATH, NULL, 0, 0, EVERY, 0, false, OFF(ca_file), NULL,
	 "extra CA bundle for outbound TLS (tests); verification stays on"},
	{"DD_LOG_LEVEL", T_CHOICE, "info", 0, 0, EVERY, 0, false,
	 OFF(log_level), log_levels, "debug, info, warn or error"},
	{"DD_LOG_FORMAT", T_CHOICE, "logfmt", 0, 0, EVERY, 0, false,
	 OFF(log_format), log_formats, "logfmt or json"},
	{"DD_HTTP_CLIENT_TIMEOUT_MS", T_U64, "10000", 100, MS_DAY, EVERY, 0,
	 false, OFF(outbound_timeout_ms), NULL, "total time for one outbound call"},
	{"DD_HTTP_CLIENT_MAX_RESPONSE", T_U64, "8388608", 1024, 1ull << 30,
	 EVERY, 0, false, OFF(outbound_max_response), NULL,
	 "largest outbound response body accepted, bytes"},
	{"DD_HTTP_MAX_HEAD_BYTES", T_U64, "16384", 1024, 1 << 20, LISTENERS, 0,
	 false, OFF(http.max_head_bytes), NULL, "request line + headers -> 431"},
	{"DD_HTTP_MAX_HEADERS", T_U64, "64", 8, 1000, LISTENERS, 0, false,
	 OFF(http.max_headers), NULL, "header count -> 431"},
	{"DD_HTTP_MAX_BODY", T_U64, "1048576", 1024, 1ull << 30, LISTENERS, 0,
	 false, OFF(http.max_body), NULL, "request body cap once authenticated"},
	{"DD_HTTP_MAX_BODY_UNAUTH", T_U64, "65536", 256, 1ull << 30, LISTENERS,
	 0, false, OFF(http.max_body_unauth), NULL,
	 "request body cap before authentication"},
	{"DD_HTTP_HEAD_TIMEOUT_MS", T_U64, "10000", 100, MS_DAY, LISTENERS, 0,
	 false, OFF(http.head_timeout_ms), NULL, "time to send headers -> 408"},
	{"DD_HTTP_BODY_TIMEOUT_MS", T_U64, "30000", 100, MS_DAY, LISTENERS, 0,
	 false, OFF(http.body_timeout_ms), NULL, "time to send the body -> 408"},
	{"DD_HTTP_IDLE_TIMEOUT_MS", T_U64, "60000", 100, MS_DAY, LISTENERS, 0,
	 false, OFF(http.idle_timeout_ms), NULL, "keep-alive idle time"},
	{"DD_HTTP_WRITE_TIMEOUT_MS", T_U64, "30000", 100, MS_DAY, LISTENERS, 0,
	 false, OFF(http.write_timeout_ms), NULL,
	 "a response that makes no progress for this long is dropped"},
	{"DD_HTTP_MAX_CONNECTIONS", T_U64, "10000", 1, 1000000, LISTENERS, 0,
	 false, OFF(http.max_connections), NULL, "open connections per listener"},
	{"DD_DRAIN_TIMEOUT_MS", T_U64, "10000", 0, MS_DAY, LISTENERS, 0, false,
	 OFF(http.drain_timeout_ms), NULL, "shutdown grace for in-flight requests"},
	{"DD_WS_MAX_MESSAGE", T_U64, "1048576", 125, 1ull << 30, LISTENERS, 0,
	 false, OFF(http.ws_max_message), NULL, "largest WebSocket message"},
};

#define NVARS (sizeof vars / sizeof vars[0])

const char *dd_config_getenv(void *ud, const char *name)
{
	(void)ud;
	return getenv(name);
}

int dd_config_label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && c == '-');
		if (!ok)
			return 0;
	}
	return 1;
}

static int flag_value(const char *s, size_t n)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (dd_str_ieq(s, n, yes[i]))
			return 1;
		if (dd_str_ieq(s, n, no[i]))
			return 0;
	}
	return -1;
}

static int has_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			return 1;
	}
	return 0;
}

static int is_ip_literal(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 45)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

static dd_err_t store_str(dd_config *cfg, const struct var *v, const char *s,
			  size_t n)
{
	char **slot = (char **)((char *)cfg + v->offset);
	char *copy = dd_strndup(s, n);

	if (copy == NULL)
		return DD_ERR_NOMEM;
	*slot = copy;
	return DD_OK;
}

/* Reports one bad value; the whole load fails after every var is seen. */
static void complain(dd_buf *errors, const struct var *v, const char *why)
{
	if (errors != NULL)
		dd_buf_appendf(errors, "%s: %s\n", v->name, why);
}

static dd_err_t set_number(dd_config *cfg, const struct var *v, const char *s,
			   size_t n, dd_buf *errors)
{
	uint64_t x;
	char why[96];

	if (dd_parse_u64n(s, n, v->min, v->max, &x) != DD_OK) {
		snprintf(why, sizeof why, "must be an integer in [%llu, %llu]",
			 (unsigned long long)v->min, (unsigned long long)v->max);
		complain(errors, v, why);
		return DD_ERR_CONFIG;
	}
	if (v->type == T_U16)
		*(uint16_t *)((char *)cfg + v->offset) = (uint16_t)x;
	else
		*(uint64_t *)((char *)cfg + v->offset) = x;
	return DD_OK;
}

static dd_err_t set_choice(dd_config *cfg, const struct var *v, const char *s,
			   size_t n, dd_buf *errors)
{
	for (int i = 0; v->choices[i] != NULL; i++) {
		if (strlen(v->choices[i]) == n && memcmp(v->choices[i], s, n) == 0) {
			*(int *)((char *)cfg + v->offset) = i;
			return DD_OK;
		}
	}
	if (errors != NULL) {
		dd_buf_appendf(errors, "%s: must be one of", v->name);
		for (int i = 0; v->choices[i] != NULL; i++)
			dd_buf_appendf(errors, " %s", v->choices[i]);
		dd_buf_append_str(errors, "\n");
	}
	return DD_ERR_CONFIG;
}

static dd_err_t set_text(dd_config *cfg, const struct var *v, const char *s,
			 size_t n, dd_buf *errors)
{
	char tmp[64];

	switch (v->type) {
	case T_LABEL:
		if (n >= sizeof tmp)
			goto bad_label;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (!dd_config_label_ok(tmp))
			goto bad_label;
		break;
	case T_URL:
		if ((n < 8 || memcmp(s, "https://", 8) != 0) &&
		    (n < 7 || memcmp(s, "http://", 7) != 0)) {
			complain(errors, v, "must be an http:// or https:// URL");
			return DD_ERR_CONFIG;
		}
		if (has_space(s, n)) {
			complain(errors, v, "must not contain whitespace");
			return DD_ERR_CONFIG;
		}
		while (n > 0 && s[n - 1] == '/')
			n--;
		break;
	case T_PATH:
		if (s[0] != '/' || memchr(s, '\0', n) != NULL) {
			complain(errors, v, "must be an absolute path");
			return DD_ERR_CONFIG;
		}
		break;
	case T_HOSTADDR:
		if (n >= sizeof tmp)
			goto bad_addr;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (!is_ip_literal(tmp))
			goto bad_addr;
		break;
	default:
		break;
	}
	return store_str(cfg, v, s, n);
bad_label:
	complain(errors, v, "must be 1-40 characters of [a-z0-9-], "
			    "starting with a letter or digit");
	return DD_ERR_CONFIG;
bad_addr:
	complain(errors, v, "must be an IPv4 or IPv6 address literal");
	return DD_ERR_CONFIG;
}

/* Applies one raw value; trimming rules depend on the type. */
static dd_err_t set_var(dd_config *cfg, const struct var *v, const char *raw,
			dd_buf *errors)
{
	const char *s = raw;
	size_t n = strlen(raw);
	int f;

	if (v->type != T_STR)
		dd_str_trim(&s, &n);
	if (n == 0 && v->type != T_STR) {
		complain(errors, v, "must not be blank");
		return DD_ERR_CONFIG;
	}
	switch (v->type) {
	case T_U16:
	case T_U64:
		return set_number(cfg, v, s, n, errors);
	case T_FLAG:
		f = flag_value(s, n);
		if (f < 0) {
			complain(errors, v, "must be one of 1 true yes on 0 false no off");
			return DD_ERR_CONFIG;
		}
		*(int *)((char *)cfg + v->offset) = f;
		return DD_OK;
	case T_CHOICE:
		return set_choice(cfg, v, s, n, errors);
	default:
		return set_text(cfg, v, s, n, errors);
	}
}

static dd_err_t default_vm_name(dd_config *cfg)
{
	char line[256] = "";
	FILE *f = fopen("/etc/hostname", "re");
	const char *s = line;
	size_t n;

	if (f != NULL) {
		if (fgets(line, sizeof line, f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	n = strlen(line);
	dd_str_trim(&s, &n);
	if (n == 0) {
		s = "unknown";
		n = strlen(s);
	}
	cfg->vm_name = dd_strndup(s, n);
	return cfg->vm_name ? DD_OK : DD_ERR_NOMEM;
}

static int env_is_protected(const char *env)
{
	return env != NULL &&
	       (strcmp(env, "production") == 0 || strcmp(env, "staging") == 0);
}

/*
 * Development stand-ins (simulated quotes, the local issuer) must never
 * be reachable by a misconfigured production process: they need DD_DEV,
 * and the protected environments refuse them even then.
 */
static void check_attestation(const dd_config *cfg, dd_buf *errors, int *bad)
{
	const char *what = NULL;

	if (cfg->mode == DD_MODE_ITA)
		what = "DD_MODE: the local ITA";
	else if ((cfg->mode & ALL_SERVERS) && cfg->ita_mode == DD_ITA_LOCAL)
		what = "DD_ITA_MODE: local";
	if (what != NULL && (!cfg->dev || env_is_protected(cfg->env))) {
		dd_buf_appendf(errors, "%s is for development only (needs DD_DEV=1 "
				       "and an environment other than production "
				       "or staging)\n", what);
		*bad = 1;
	}
	if ((cfg->mode & (ALL_SERVERS | DD_MODE_RUNTIME)) &&
	    cfg->quote_provider == DD_PROVIDER_SIM &&
	    (!cfg->dev || env_is_protected(cfg->env))) {
		dd_buf_append_str(errors, "DD_QUOTE_PROVIDER: sim needs DD_DEV=1 and "
					  "an environment other than production "
					  "or staging\n");
		*bad = 1;
	}
}

/*
 * Redirecting scrapes would let whoever listens there answer for every
 * tunnel agent: a test facility, refused outside dev mode. The host is
 * checked in full by the HTTP client (dd_httpc_check_connect_to).
 */
static void check_collect_connect_to(const dd_config *cfg, dd_buf *errors,
				     int *bad)
{
	const char *hp = cfg->collect_connect_to;
	const char *colon = hp != NULL ? strrchr(hp, ':') : NULL;
	uint64_t port;

	if (cfg->mode != DD_MODE_CP || hp == NULL)
		return;
	if (!cfg->dev) {
		dd_buf_append_str(errors, "DD_COLLECT_CONNECT_TO: is a test and "
					  "development facility (needs DD_DEV=1)\n");
		*bad = 1;
	} else if (colon == NULL || colon == hp ||
		   dd_parse_u64(colon + 1, 1, 65535, &port) != DD_OK) {
		dd_buf_append_str(errors, "DD_COLLECT_CONNECT_TO: must be "
					  "host:port\n");
		*bad = 1;
	}
}

dd_err_t dd_config_secret_bytes(const char *value, dd_buf *out)
{
	static const char prefix[] = "base64:";
	size_t n = strlen(value);

	if (n >= sizeof prefix - 1 && memcmp(value, prefix, sizeof prefix - 1) == 0)
		return dd_b64_decode(DD_B64_STD, value + sizeof prefix - 1,
				     n - (sizeof prefix - 1), out);
	return dd_buf_append(out, value, n);
}

/* Sessions signed with a guessable key would let anyone sign in. */
static void check_cookie_secret(const dd_config *cfg, dd_buf *errors, int *bad)
{
	dd_buf key;
	dd_err_t rc;

	if (cfg->mode != DD_MODE_CP || cfg->cookie_secret == NULL)
		return;
	dd_buf_init(&key, 4096);
	rc = dd_config_secret_bytes(cfg->cookie_secret, &key);
	if (rc == DD_ERR_NOMEM) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: out of memory\n");
		*bad = 1;
	} else if (rc) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: base64: value "
					  "is not valid padded base64\n");
		*bad = 1;
	} else if (key.len < 32) {
		dd_buf_append_str(errors, "DD_AUTH_COOKIE_SECRET: must be at "
					  "least 32 bytes\n");
		*bad = 1;
	}
	if (key.data != NULL)
		dd_freezero(key.data, key.alloc);
	key.data = NULL;
	dd_buf_free(&key);
}

/*
 * Dev sign-in's code goes in a URL as it is and must not be guessable;
 * outside dev mode there is no dev sign-in for it to open.
 */
static void check_dev_signin_code(const dd_config *cfg, dd_buf *errors,
				  int *bad)
{
	const char *s = cfg->dev_signin_code;
	size_t n = s != NULL ? strlen(s) : 0;
	bool ok = n >= 22 && n <= 128;

	if (cfg->mode != DD_MODE_CP || s == NULL)
		return;
	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_';
	if (!cfg->dev) {
		dd_buf_append_str(errors, "DD_DEV_SIGNIN_CODE: is for development "
					  "only (needs DD_DEV=1)\n");
		*bad = 1;
	} else if (!ok) {
		dd_buf_append_str(errors, "DD_DEV_SIGNIN_CODE: must be 22-128 of "
					  "[A-Za-z0-9_-]\n");
		*bad = 1;
	}
}

/* Cloudflare ingress is all or nothing. */
static void check_cloudflare(const dd_config *cfg, dd_buf *errors, int *bad)
{
	int set = (cfg->cf.api_token != NULL) + (cfg->cf.account_id != NULL) +
		  (cfg->cf.zone_id != NULL);

	if (cfg->mode != DD_MODE_CP || set == 0)
		return;
	if (set < 3 || cfg->cf_domain == NULL) {
		dd_buf_append_str(errors, "DD_CF_API_TOKEN: Cloudflare needs "
					  "DD_CF_API_TOKEN, DD_CF_ACCOUNT_ID, "
					  "DD_CF_ZONE_ID and DD_CF_DOMAIN together\n");
		*bad = 1;
	}
}

/* Rules that span several variables. */
static void check_cross(const dd_config *cfg, dd_buf *errors, int *bad)
{
	check_cloudflare(cfg, errors, bad);
	if (cfg->owner != NULL && (cfg->mode & ALL_SERVERS)) {
		int has_slash = strchr(cfg->owner, '/') != NULL;
		if (cfg->owner_kind == DD_OWNER_REPO && !has_slash) {
			dd_buf_append_str(errors, "DD_OWNER: kind repo needs owner/repo\n");
			*bad = 1;
		} else if (cfg->owner_kind != DD_OWNER_REPO && has_slash) {
			dd_buf_append_str(errors, "DD_OWNER: kinds user and org take a "
						  "name without '/'\n");
			*bad = 1;
		}
	}
	if (cfg->mode == DD_MODE_AGENT && cfg->port != 0 &&
	    cfg->port == cfg->api_port) {
		dd_buf_append_str(errors, "DD_API_PORT: must differ from DD_PORT\n");
		*bad = 1;
	}
	check_attestation(cfg, errors, bad);
	check_collect_connect_to(cfg, errors, bad);
	if (cfg->mode == DD_MODE_CP && cfg->store_path != NULL &&
	    cfg->store_path[0] != '/' && strcmp(cfg->store_path, ":memory:") != 0) {
		dd_buf_append_str(errors, "DD_STORE_PATH: must be an absolute path "
					  "or :memory:\n");
		*bad = 1;
	}
	check_cookie_secret(cfg, errors, bad);
	check_dev_signin_code(cfg, errors, bad);
	if (cfg->http.max_body_unauth > cfg->http.max_body) {
		dd_buf_append_str(errors, "DD_HTTP_MAX_BODY_UNAUTH: must not exceed "
					  "DD_HTTP_MAX_BODY\n");
		*bad = 1;
	}
}

dd_err_t dd_config_load(dd_mode mode, dd_config_get_fn get, void *ud,
			dd_config **out, dd_buf *errors)
{
	dd_config *cfg = NULL;
	dd_err_t rc = DD_OK;
	int bad = 0;

	*out = NULL;
	cfg = dd_calloc(1, sizeof *cfg);
	if (cfg == NULL)
		return DD_ERR_NOMEM;
	cfg->mode = mode;
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		const char *raw;

		if (!(v->modes & mode))
			continue;
		raw = get(ud, v->name);
		if (raw == NULL || (v->type != T_STR && raw[0] == '\0'))
			raw = NULL;
		if (raw == NULL && (v->required & mode)) {
			complain(errors, v, "required but not set");
			bad = 1;
			continue;
		}
		if (raw == NULL)
			raw = v->def;
		if (raw == NULL)
			continue;
		rc = set_var(cfg, v, raw, errors);
		if (rc == DD_ERR_NOMEM)
			goto out;
		if (rc)
			bad = 1;
		rc = DD_OK;
	}
	if ((mode & ALL_SERVERS) && cfg->vm_name == NULL) {
		rc = default_vm_name(cfg);
		if (rc)
			goto out;
	}
	if (!bad)
		check_cross(cfg, errors, &bad);
	if (bad) {
		rc = DD_ERR_CONFIG;
		goto out;
	}
	*out = cfg;
	cfg = NULL; /* transferred */
out:
	dd_config_free(cfg);
	return rc;
}

void dd_config_free(dd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		char **slot;

		if (v->type == T_U16 || v->type == T_U64 || v->type == T_FLAG ||
		    v->type == T_CHOICE)
			continue;
		slot = (char **)((char *)cfg + v->offset);
		if (*slot != NULL)
			dd_freezero(*slot, strlen(*slot));
	}
	dd_free(cfg);
}

static const struct {
	const char *name;
	dd_mode mode;
} mode_names[] = {
	{"cp", DD_MODE_CP},           {"management", DD_MODE_CP},
	{"agent", DD_MODE_AGENT},     {"sessiond", DD_MODE_SESSIOND},
	{"runtime", DD_MODE_RUNTIME}, {"dev", DD_MODE_DEV},
	{"client", DD_MODE_CLIENT},   {"ita", DD_MODE_ITA},
};

dd_err_t dd_mode_parse(const char *s, dd_mode *out)
{
	for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (strcmp(s, mode_names[i].name) == 0) {
			*out = mode_names[i].mode;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}

const char *dd_mode_name(dd_mode mode)
{
	for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (mode_names[i].mode == mode)
			return mode_names[i].name;
	}
	return "unknown";
}

const char *dd_owner_kind_name(dd_owner_kind kind)
{
	return (unsigned)kind < 3 ? owner_kinds[kind] : "unknown";
}

static void describe_value(const struct var *v, const dd_config *cfg, FILE *f)
{
	const char *p = (const char *)cfg + v->offset;

	switch (v->type) {
	case T_U16:
		fprintf(f, "%u", (unsigned)*(const uint16_t *)(const void *)p);
		break;
	case T_U64:
		fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)(const void *)p);
		break;
	case T_FLAG:
		fputs(*(const int *)(const void *)p ? "true" : "false", f);
		break;
	case T_CHOICE:
		fputs(v->choices[*(const int *)(const void *)p], f);
		break;
	default: {
		const char *s = *(char *const *)(const void *)p;
		fputs(s == NULL ? "(unset)" : v->secret ? "(set)" : s, f);
	}
	}
}

void dd_config_describe(dd_mode mode, const dd_config *cfg, FILE *f)
{
	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];

		if (!(v->modes & mode))
			continue;
		fprintf(f, "  %-28s %s", v->name, v->help);
		if (v->required & mode)
			fputs(" [required]", f);
		else if (v->def != NULL)
			fprintf(f, " [default: %s]", v->def);
		if (cfg != NULL) {
			fputs(" = ", f);
			describe_value(v, cfg, f);
		}
		fputc('\n', f);
	}
}
