/*
 * The authorization table: every endpoint of the CP and the agent, and
 * who may call it. Changing who may do what means changing a line here
 * (and the expectations of tests/unit/test_authz.c, written separately
 * on purpose, and docs/auth.md).
 */
#include "auth/authz.h"

#include <string.h>

#define ANON DD_CALLER_ANON
#define USER DD_CALLER_USER
#define ADMIN DD_CALLER_ADMIN
#define OWNER DD_CALLER_OWNER
#define TENANT DD_CALLER_TENANT
#define AGENT DD_CALLER_AGENT
#define TUSER DD_CALLER_TENANT_USER
#define SIGNED_IN (USER | ADMIN)
/*
 * Public entries: sessions are recognised (free, and pages may show who
 * is signed in) but CI tokens are not even looked at, so a token sent
 * to /health is neither verified nor burnt.
 */
#define EVERYONE (ANON | USER | ADMIN | TUSER)
#define GET DD_M_GET
#define POST DD_M_POST
#define DELETE DD_M_DELETE
#define PAGE DD_AUTHZ_PAGE
#define DEV DD_AUTHZ_DEV_ONLY
#define SMALL DD_AUTHZ_SMALL_BODY

static const dd_authz_entry table[] = {
	/* --- control plane: public ------------------------------------ */
	{"cp", GET, "/health", EVERYONE, 0, "liveness and identity"},
	{"cp", GET, "/static/{path*}", EVERYONE, 0, "embedded assets"},
	{"cp", GET, "/cp/attest", EVERYONE, SMALL,
	 "a fresh quote of the CP over the caller's nonce"},
	{"cp", GET, "/auth/keys", EVERYONE, 0,
	 "the JWKS agents verify CP sign-in tickets with"},
	/* --- control plane: signing in ---------------------------------- */
	{"cp", GET, "/auth/github/start", EVERYONE, 0,
	 "begin GitHub sign-in (signed state, nonce cookie)"},
	{"cp", GET, "/auth/github/callback", EVERYONE, 0,
	 "finish GitHub sign-in: state, nonce, code exchange, session"},
	{"cp", POST, "/auth/device/start", EVERYONE, SMALL,
	 "begin the device flow for native clients"},
	{"cp", POST, "/auth/device/poll", EVERYONE, SMALL,
	 "finish the device flow: a bearer session"},
	{"cp", GET, "/auth/dev", EVERYONE, DEV, "dev sign-in page"},
	{"cp", POST, "/auth/dev", EVERYONE, DEV | SMALL,
	 "dev sign-in: a session for a named local user"},
	{"cp", POST, "/auth/logout", EVERYONE, SMALL, "end the session"},
	{"cp", GET, "/auth/me", SIGNED_IN, 0, "who the session says you are"},
	{"cp", GET, "/auth/agent", SIGNED_IN, PAGE,
	 "a short-lived ticket that signs you in to one agent"},
	/* --- control plane: agents -------------------------------------- */
	{"cp", GET, "/register/nonce", EVERYONE, SMALL,
	 "a single-use registration nonce"},
	{"cp", GET, "/register/{agent_id}", EVERYONE, SMALL,
	 "whether the CP knows an agent (agents re-register when not)"},
	{"cp", POST, "/register", AGENT, 0,
	 "register: ITA token binding a CP nonce and the Noise key"},
	{"cp", POST, "/ingress/replace", AGENT, 0,
	 "an attested agent replaces its own ingress"},
	/* --- control plane: fleet --------------------------------------- */
	/* An ITA bearer is verified, then served as anyone (tokens are public). */
	{"cp", GET, "/api/agents", EVERYONE | OWNER | AGENT, 0,
	 "agents: public fields, full records for the owner and admins"},
	{"cp", GET, "/", SIGNED_IN, PAGE, "fleet dashboard, scoped to you"},
	/* PAGE: a browser is sent to sign in; other clients get 401. */
	{"cp", GET, "/api/fleet", SIGNED_IN, PAGE, "dashboard fragment, scoped"},
	{"cp", GET, "/agent/{id}", SIGNED_IN, PAGE, "one agent, if yours"},
	{"cp", GET, "/agent/{id}/logs/{app}", SIGNED_IN, PAGE,
	 "a workload's logs, if the agent is yours"},
	{"cp", GET, "/admin/enroll", SIGNED_IN, PAGE,
	 "device pairing: to a healthy agent that is yours"},
	{"cp", GET, "/api/v1/admin/export", ADMIN | OWNER | AGENT, 0,
	 "the fleet store, for a successor CP"},
	{"cp", GET, "/admin/cf/snapshot", ADMIN | OWNER, 0,
	 "Cloudflare view of the fleet"},
	{"cp", GET, "/admin/cf/map", ADMIN | OWNER, 0,
	 "Cloudflare drift report"},

	/* --- agent: public ---------------------------------------------- */
	{"agent", GET, "/health", EVERYONE, 0, "liveness, metrics, attestation"},
	{"agent", GET, "/static/{path*}", EVERYONE, 0, "embedded assets"},
	{"agent", GET, "/noise/ws", EVERYONE, 0,
	 "Noise gateway: the handshake admits paired devices only"},
	{"agent", GET, "/auth/ticket", EVERYONE, 0,
	 "exchange a CP sign-in ticket for this agent's session"},
	{"agent", POST, "/auth/logout", EVERYONE, SMALL, "end the session"},
	/* --- agent: workloads (CI) -------------------------------------- */
	{"agent", POST, "/deploy", OWNER | TENANT, 0, "run a workload"},
	{"agent", POST, "/exec", OWNER | TENANT, 0, "run a command"},
	{"agent", GET, "/logs/{app}", OWNER | TENANT | ADMIN | TUSER, 0,
	 "a workload's logs"},
	{"agent", POST, "/owner", OWNER, 0, "set the runtime tenant"},
	/* --- agent: people ---------------------------------------------- */
	{"agent", GET, "/", ADMIN | TUSER, PAGE, "this VM's dashboard"},
	{"agent", GET, "/workload/{id}", ADMIN | TUSER, PAGE, "one workload"},
	{"agent", GET, "/admin/enroll", ADMIN | TUSER, PAGE,
	 "confirm pairing a device"},
	{"agent", GET, "/api/v1/devices", ADMIN | TUSER, 0, "paired devices"},
	{"agent", POST, "/api/v1/devices", ADMIN | TUSER, 0, "pair a device"},
	{"agent", DELETE, "/api/v1/devices/{pubkey}", ADMIN | TUSER, 0,
	 "revoke a device"},
	{"agent", POST, "/api/v1/devices/{pubkey}/revoke", ADMIN | TUSER, SMALL,
	 "revoke a device (the device list's form)"},
	{"agent", GET, "/api/sessions", ADMIN | TUSER, 0, "shell sessions"},
	{"agent", POST, "/api/sessions", ADMIN | TUSER, 0, "open a shell"},
	{"agent", GET, "/api/sessions/{id}/replay", ADMIN | TUSER, 0,
	 "a session's transcript"},
	{"agent", POST, "/api/sessions/{id}/resize", ADMIN | TUSER, SMALL,
	 "resize a session"},
	{"agent", POST, "/api/sessions/{id}/close", ADMIN | TUSER, SMALL,
	 "close a session"},
	{"agent", GET, "/api/sessions/{id}/attach", ADMIN | TUSER, 0,
	 "attach to a session (WebSocket)"},
};

const dd_authz_entry *dd_authz_table(size_t *n)
{
	*n = sizeof table / sizeof table[0];
	return table;
}

const dd_authz_entry *dd_authz_find(const char *service, unsigned methods,
				    const char *pattern)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		const dd_authz_entry *e = &table[i];

		if (strcmp(e->service, service) == 0 &&
		    strcmp(e->pattern, pattern) == 0 &&
		    (methods & ~(unsigned)DD_M_HEAD) == e->methods)
			return e;
	}
	return NULL;
}
