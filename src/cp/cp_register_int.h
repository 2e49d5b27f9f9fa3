/*
 * cp_register_int.h: private to registration (cp_register.c: nonces,
 * evidence, the verdict; cp_register_store.c: what follows an accepted
 * verdict: the Cloudflare tunnel, the store, the answer). No other module
 * includes this.
 */
#ifndef DD_CP_CP_REGISTER_INT_H
#define DD_CP_CP_REGISTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cp/cp_ingress.h"
#include "cp/cp_register.h"
#include "net/http.h"

#define MAX_BODY (32u * 1024)
#define MAX_EXTRAS 16

struct nonce {
	uint8_t v[DD_REG_NONCE_LEN];
	uint64_t expires_ms;      /* 0: free slot */
};

struct pending {
	dd_cp_register *r;
	dd_http_req *req;         /* NULL once the client went away */
	uint8_t nonce[DD_REG_NONCE_LEN];
	uint8_t pubkey[32];
	char agent_id[DD_STORE_ID_MAX + 1];
	int replace;              /* POST /ingress/replace, not /register */
	json_t *body;
	/*
	 * With Cloudflare: the record waiting for its tunnel (registration),
	 * what the tunnel operation gave back, and the connector token (a
	 * secret, wiped on free).
	 */
	dd_store_agent *agent;
	char tunnel_id[DD_CF_ID_MAX + 1];
	char host[DD_CF_HOST_MAX + 1];
	json_t *cf_hosts;         /* {extra_hostnames, removed_hostnames} */
	char *token;
	struct pending *prev, *next;
};

struct dd_cp_register {
	uv_loop_t *loop;
	char *env;
	dd_attestor *att;
	dd_store *store;
	int64_t (*now)(void);
	int dev;
	dd_cf *cf;                /* NULL: direct ingress */
	char *cf_domain;
	dd_cp_ingress_cfg cf_cfg;
	struct nonce nonces[DD_REG_MAX_NONCES];
	struct pending *pending;
};

/* Takes p off its registration's pending list. */
void reg_unlink_pending(struct pending *p);
/* Frees p and wipes its secrets (nonce, connector token). */
void reg_pending_free(struct pending *p);

/* The store's answer to a registration: the agent hears it (ud: p). */
void reg_on_stored(const dd_store_result *res, void *ud);
/*
 * /ingress/replace after the verdict: the attested caller must be the
 * agent it names. 1: an asynchronous step will answer and free p; 0:
 * answered here (the caller frees p).
 */
int reg_replace_extras(struct pending *p);
/*
 * With Cloudflare: keeps a copy of the checked record a (claims
 * referenced) and starts the agent's tunnel; its answer stores the
 * record and answers. On an error nothing was started.
 */
dd_err_t reg_start_tunnel(struct pending *p, const dd_store_agent *a,
			  char *why, size_t why_len);

#endif
