/*
 * local_ita.h: an Intel Trust Authority stand-in for development.
 *
 * It speaks the same HTTP API as ITA (POST /appraisal/v1/attest with
 * {"quote": b64} and x-api-key, GET /certs for the JWKS), so the real
 * mint client and the real verifier run unchanged against it. Before
 * signing, it verifies the quote offline like the CP would (simulated
 * quotes only because it exists only in dev mode) and derives the claims
 * from the quote itself: tdx_mrtd, the RTMRs, tdx_report_data, ... Tokens
 * are ES256 from a key generated at start (auth/signer.h).
 *
 * Refused for the production and staging environments: a local issuer
 * there would let anyone mint acceptable tokens.
 */
#ifndef DD_ATTEST_LOCAL_ITA_H
#define DD_ATTEST_LOCAL_ITA_H

#include <stdint.h>

#include "core/err.h"
#include "net/http.h"

typedef struct dd_local_ita dd_local_ita;

typedef struct dd_local_ita_opts {
	const char *env;        /* DD_ENV: production/staging are refused */
	const char *issuer;     /* the "iss" it signs, e.g. its base URL */
	const char *api_key;    /* the x-api-key it requires (secret) */
	uint64_t lifetime_s;    /* token lifetime; 0: 300 s */
	int64_t (*now)(void);   /* NULL: time(NULL); tests pin the clock */
} dd_local_ita_opts;

/* FORBIDDEN for production/staging, CONFIG for missing options. */
dd_err_t dd_local_ita_new(const dd_local_ita_opts *opts, dd_local_ita **out);
void dd_local_ita_free(dd_local_ita *l);

/* Adds POST /appraisal/v1/attest and GET /certs to srv. */
dd_err_t dd_local_ita_mount(dd_local_ita *l, dd_http_server *srv);

#endif
