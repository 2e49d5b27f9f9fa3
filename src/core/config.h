/*
 * config.h: the process configuration, read once from the environment.
 *
 * One table in config.c (R10) lists every variable: name, type, default,
 * bounds, the modes that read it, the modes that require it, and whether it
 * is secret. dd_config_load() walks the table for a mode, validates every
 * value, and reports *every* problem by name at once. The result is
 * immutable for the life of the process; it is the only process-wide state
 * besides the log settings. Secrets are never printed (dd_config_describe
 * shows "(set)").
 */
#ifndef DD_CORE_CONFIG_H
#define DD_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum {
	DD_MODE_CP = 1u << 0,
	DD_MODE_AGENT = 1u << 1,
	DD_MODE_SESSIOND = 1u << 2,
	DD_MODE_RUNTIME = 1u << 3,
	DD_MODE_DEV = 1u << 4,
	DD_MODE_CLIENT = 1u << 5,
	DD_MODE_ITA = 1u << 6,     /* the local ITA stand-in (dev only) */
} dd_mode;

/* Which Intel Trust Authority the fleet trusts (DD_ITA_MODE). */
typedef enum {
	DD_ITA_INTEL = 0,   /* Intel's service, or a faithful stand-in */
	DD_ITA_LOCAL,       /* `devopsdefender ita`: dev fleets only */
} dd_ita_mode;

/* Where this process's own quotes come from (DD_QUOTE_PROVIDER). */
typedef enum {
	DD_PROVIDER_EE = 0, /* EasyEnclave's attest method */
	DD_PROVIDER_TSM,    /* the kernel's configfs-tsm */
	DD_PROVIDER_SIM,    /* simulated quotes: DD_DEV only */
} dd_provider_kind;

typedef enum {
	DD_OWNER_USER = 0,
	DD_OWNER_ORG,
	DD_OWNER_REPO,
} dd_owner_kind;

/* HTTP server limits; shared by every listener of the process. */
typedef struct dd_http_limits {
	uint64_t max_head_bytes;    /* request line + headers -> 431 */
	uint64_t max_headers;       /* header count -> 431 */
	uint64_t max_body;          /* default body cap after auth -> 413 */
	uint64_t max_body_unauth;   /* body cap before auth -> 413 */
	uint64_t head_timeout_ms;   /* first byte to end of headers -> 408 */
	uint64_t body_timeout_ms;   /* end of headers to end of body -> 408 */
	uint64_t idle_timeout_ms;   /* keep-alive wait between requests */
	uint64_t write_timeout_ms;  /* a response that cannot drain */
	uint64_t max_connections;   /* accepted beyond this are closed */
	uint64_t drain_timeout_ms;  /* shutdown grace for in-flight work */
	uint64_t ws_max_message;    /* WebSocket message cap -> 1009 */
} dd_http_limits;

/* The local runtime's settings (DD_RUNTIME_*, `devopsdefender runtime`). */
typedef struct dd_runtime_settings {
	char *releases_dir;     /* local release assets, may be NULL (none) */
	uint64_t max_request;   /* request line cap, bytes */
	uint64_t max_connections; /* open socket connections */
	uint64_t log_bytes;     /* log ring per deployment, bytes */
	uint64_t exec_max_output; /* exec stdout/stderr cap, each */
	uint64_t stop_grace_ms; /* SIGTERM -> SIGKILL */
	uint64_t restart_backoff_ms; /* first restart delay, then doubled */
	uint64_t restart_max;   /* quick failures in a row before giving up */
} dd_runtime_settings;

/* sessiond's settings (DD_SESSIOND_*, `devopsdefender sessiond`). */
typedef struct dd_sessiond_settings {
	char *socket;           /* unix socket (the agent reads it too) */
	char *dir;              /* sealed transcripts and the recipient set */
	char *recipes;          /* recipe file, may be NULL (built-in shell) */
	char *peer_uid;         /* the uid allowed to connect, may be NULL */
	uint64_t max_sessions;
	uint64_t scrollback;    /* ring bytes per session */
	uint64_t history_max_bytes;
	uint64_t history_session_bytes;
	uint64_t history_segment_bytes;
	uint64_t max_request;
	uint64_t max_connections;
} dd_sessiond_settings;

/* The CP's Cloudflare settings (DD_CF_*); token NULL = no Cloudflare. */
typedef struct dd_cf_settings {
	char *api_url;
	char *api_token;        /* secret */
	char *account_id;
	char *zone_id;
	uint64_t timeout_ms;
	uint64_t attempts;
	uint64_t max_wait_ms;
	uint16_t agent_port;
	uint16_t agent_api_port;
	char *cp_extras;        /* "label:port,..." */
	uint64_t reap_grace_secs;    /* DD_CF_REAP_GRACE_SECS */
	uint64_t reap_interval_secs; /* DD_CF_REAP_INTERVAL_SECS */
	uint64_t reap_max;           /* DD_CF_REAP_MAX */
} dd_cf_settings;

typedef struct dd_config {
	dd_mode mode;
	int dev;                /* explicit development mode (DD_DEV) */
	char *env;              /* DD_ENV label */
	char *vm_name;          /* DD_VM_NAME or /etc/hostname or "unknown" */
	char *owner;            /* DD_OWNER */
	uint64_t owner_id;      /* DD_OWNER_ID, non-zero */
	int owner_kind;         /* a dd_owner_kind value */
	char *ee_token;         /* EE_TOKEN, secret, may be NULL */
	char *ee_socket;        /* EE_SOCKET_PATH */
	dd_runtime_settings runtime; /* DD_RUNTIME_* (runtime mode) */
	dd_sessiond_settings sessiond; /* DD_SESSIOND_* */
	char *bind_addr;        /* DD_BIND_ADDR */
	uint16_t port;          /* DD_PORT */
	uint16_t api_port;      /* DD_API_PORT (agent API listener) */
	char *hostname;         /* DD_HOSTNAME, may be NULL */
	char *cf_domain;        /* DD_CF_DOMAIN, may be NULL */
	dd_cf_settings cf;      /* DD_CF_* (cp) */
	char *cp_url;           /* DD_CP_URL (agent) */
	char *ca_file;          /* DD_CA_FILE: extra trust anchors, may be NULL */
	int log_level;          /* DD_LOG_LEVEL, a dd_log_level value */
	int log_format;         /* DD_LOG_FORMAT, a dd_log_format value */
	uint64_t outbound_timeout_ms; /* DD_HTTP_CLIENT_TIMEOUT_MS */
	uint64_t outbound_max_response; /* DD_HTTP_CLIENT_MAX_RESPONSE */
	int ita_mode;           /* DD_ITA_MODE, a dd_ita_mode value */
	char *ita_base_url;     /* DD_ITA_BASE_URL */
	char *ita_api_key;      /* DD_ITA_API_KEY, secret */
	char *ita_jwks_url;     /* DD_ITA_JWKS_URL */
	char *ita_issuer;       /* DD_ITA_ISSUER, may be NULL in ita mode */
	uint64_t ita_refresh_secs; /* DD_ITA_REFRESH_SECS */
	uint64_t ita_jwks_refresh_secs; /* DD_ITA_JWKS_REFRESH_SECS */
	int quote_provider;     /* DD_QUOTE_PROVIDER, a dd_provider_kind */
	char *tsm_root;         /* DD_TSM_ROOT */
	char *sim_mrtd;         /* DD_SIM_MRTD (hex), may be NULL */
	char *expected_mrtd;    /* DD_EXPECTED_MRTD, may be NULL (unpinned) */
	char *expected_tcb;     /* DD_EXPECTED_TCB, may be NULL */
	char *expected_rtmr[4]; /* DD_EXPECTED_RTMR0..3, may be NULL */
	int measurement_enforce; /* DD_MEASUREMENT_ENFORCE */
	char *public_url;       /* DD_PUBLIC_URL, may be NULL (derived) */
	char *store_path;       /* DD_STORE_PATH (cp): a file or ":memory:" */
	uint64_t scrape_interval_secs; /* DD_SCRAPE_INTERVAL (cp) */
	uint64_t scrape_grace_secs;    /* DD_SCRAPE_GRACE (cp) */
	uint64_t scrape_dead_secs;     /* DD_SCRAPE_DEAD_AFTER (cp) */
	uint64_t discovery_interval_secs; /* DD_DISCOVERY_INTERVAL (cp) */
	uint64_t scraper_shard_total;  /* DD_SCRAPER_SHARD_TOTAL (cp), >= 1 */
	uint64_t scraper_shard_index;  /* DD_SCRAPER_SHARD_INDEX (cp), < total */
	char *collect_connect_to; /* DD_COLLECT_CONNECT_TO (cp, dev), may be
				     NULL: tunnel scrapes' "host:port" */
	char *scrape_dns;       /* DD_SCRAPE_DNS (cp): servers, or "system" */
	uint64_t collect_edge_port; /* DD_COLLECT_EDGE_PORT (cp, dev), 0 */
	char *predecessor_url;  /* DD_PREDECESSOR_URL (cp), may be NULL */
	char *cookie_secret;    /* DD_AUTH_COOKIE_SECRET, secret (cp) */
	char *cookie_domain;    /* DD_AUTH_COOKIE_DOMAIN, may be NULL */
	char *dev_signin_code;  /* DD_DEV_SIGNIN_CODE (cp, dev), secret, may
				   be NULL (the CP makes one) */
	char *broker_url;       /* DD_AUTH_BROKER_URL (agent), may be NULL */
	char *github_oauth_url; /* DD_GITHUB_OAUTH_URL */
	char *github_api_url;   /* DD_GITHUB_API_URL */
	char *github_client_id[3];     /* generic, production, staging */
	char *github_client_secret[3]; /* secrets */
	char *github_callback_url; /* DD_GITHUB_CALLBACK_URL, may be NULL */
	char *oidc_issuer;      /* DD_OIDC_ISSUER */
	char *oidc_jwks_url;    /* DD_OIDC_JWKS_URL */
	char *oidc_audience;    /* DD_OIDC_AUDIENCE */
	uint64_t oidc_max_age_secs; /* DD_OIDC_MAX_AGE_SECS */
	char *oidc_request_token; /* DD_OIDC_REQUEST_TOKEN (ita mode), secret */
	int confidential;       /* DD_CONFIDENTIAL (agent) */
	uint64_t ee_wait_secs;  /* DD_EE_WAIT_SECS (agent) */
	char *noise_key_path;   /* DD_NOISE_KEY_PATH (agent), may be NULL */
	char *devices_path;     /* DD_AGENT_DEVICES_PATH (agent), may be NULL */
	uint64_t max_devices;   /* DD_AGENT_MAX_DEVICES (agent) */
	uint64_t noise_handshake_ms; /* DD_NOISE_HANDSHAKE_MS (agent) */
	uint64_t register_backoff_ms; /* DD_REGISTER_BACKOFF_MS (agent) */
	uint64_t register_check_secs; /* DD_REGISTER_CHECK_SECS (agent) */
	int poweroff_real;      /* DD_POWEROFF is "real" (ignored under DD_DEV) */
	char *poweroff_marker;  /* DD_POWEROFF_MARKER, may be NULL */
	char *cloudflared_path; /* DD_CLOUDFLARED_PATH */
	uint64_t cloudflared_backoff_ms; /* DD_CLOUDFLARED_BACKOFF_MS */
	uint64_t stonith_evict_delay_ms; /* DD_STONITH_EVICT_DELAY_MS */
	uint64_t stonith_poll_ms;        /* DD_STONITH_POLL_MS */
	uint64_t stonith_drain_ms;       /* DD_STONITH_DRAIN_MS */
	dd_http_limits http;
} dd_config;

/* Looks a variable up; returns NULL when unset. */
typedef const char *(*dd_config_get_fn)(void *ud, const char *name);

/* The process environment as a getter (ud unused). */
const char *dd_config_getenv(void *ud, const char *name);

/*
 * Builds the configuration for one mode. On DD_ERR_CONFIG, errors holds
 * one line per problem ("DD_PORT: must be an integer in [1, 65535]");
 * *out is NULL. On DD_OK, *out is owned by the caller: dd_config_free().
 */
dd_err_t dd_config_load(dd_mode mode, dd_config_get_fn get, void *ud,
			dd_config **out, dd_buf *errors);
void dd_config_free(dd_config *cfg);

/* Parses a mode name ("cp", "management", "agent", ...). */
dd_err_t dd_mode_parse(const char *s, dd_mode *out);
const char *dd_mode_name(dd_mode mode);
const char *dd_owner_kind_name(dd_owner_kind kind);

/*
 * Writes the variables a mode reads: name, default, whether required,
 * and a description; with cfg, also the effective value (secrets shown
 * as "(set)"). Used by --help and the boot log.
 */
void dd_config_describe(dd_mode mode, const dd_config *cfg, FILE *out);

/*
 * The bytes of a secret setting: "base64:<padded base64>" decodes, any
 * other value is its own bytes. Appends to out; INVALID for bad base64.
 * The caller wipes out.
 */
dd_err_t dd_config_secret_bytes(const char *value, dd_buf *out);

/* Validates a DD_ENV-style label: 1-40 chars, [a-z0-9][a-z0-9-]*. */
int dd_config_label_ok(const char *s);

#endif
