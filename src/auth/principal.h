/*
 * principal.h: who a GitHub identity is, by kind, name and numeric id.
 *
 * The fleet owner (DD_OWNER, DD_OWNER_ID, DD_OWNER_KIND) and an agent's
 * runtime tenant are principals. Matching always needs the numeric id as
 * well as the name: a deleted and re-registered login gets a new id, so
 * a name alone would let a squatter in. Names compare case-sensitively
 * for OIDC claims (GitHub's spelling), ids exactly; id 0 never matches.
 */
#ifndef DD_AUTH_PRINCIPAL_H
#define DD_AUTH_PRINCIPAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_PRINCIPAL_MAX_NAME 140   /* "owner/repo": 39 + 1 + 100 */

typedef enum {
	DD_PRINCIPAL_USER = 0,
	DD_PRINCIPAL_ORG,
	DD_PRINCIPAL_REPO,
} dd_principal_kind;

typedef struct dd_principal {
	dd_principal_kind kind;
	char name[DD_PRINCIPAL_MAX_NAME + 1];
	uint64_t id;
} dd_principal;

/*
 * Builds a principal. INVALID with why when the name is empty, too long,
 * has characters GitHub never allows, or its shape does not fit the kind
 * (repo needs exactly one '/', user and org none), or id is 0.
 */
dd_err_t dd_principal_make(dd_principal_kind kind, const char *name,
			   uint64_t id, dd_principal *out, char *why,
			   size_t why_len);

/* "user", "org", "repo"; parse is exact (INVALID otherwise). */
const char *dd_principal_kind_name(dd_principal_kind k);
dd_err_t dd_principal_kind_parse(const char *s, dd_principal_kind *out);

#endif
