/*
 * oidc_fuzz.c: the parts of the GitHub OIDC verifier that read what a
 * caller sends after the signature has been checked (auth/oidc.h), and
 * the principal names an operator configures (auth/principal.h).
 *
 * The whole input is tried three ways: as an Authorization header value
 * (dd_oidc_bearer), as a claims object (dd_oidc_claims_parse, then
 * dd_oidc_match against an org, a repo and a user principal), and as a
 * principal name of each kind. The JWT layer has its own target
 * (jwt_fuzz.c); here the point is that the claims mapping never lets a
 * token speak for a principal whose name and non-zero id it does not
 * carry exactly.
 *
 * Seeds (fuzz/seeds/oidc/): payloads of tests/data/oidc/vectors.json and
 * a few header values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/oidc.h"
#include "auth/principal.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dd_principal acc[3];
static int ready;

static void setup(void)
{
	if (dd_principal_make(DD_PRINCIPAL_ORG, "octo-org", 65, &acc[0], NULL,
			      0) != DD_OK ||
	    dd_principal_make(DD_PRINCIPAL_REPO, "octo-org/octo-repo", 74,
			      &acc[1], NULL, 0) != DD_OK ||
	    dd_principal_make(DD_PRINCIPAL_USER, "octocat", 583231, &acc[2],
			      NULL, 0) != DD_OK)
		__builtin_trap();
	ready = 1;
}

static void check_bearer(const char *s, size_t size)
{
	const char *tok;
	size_t len;
	char why[128];

	if (dd_oidc_bearer(s, &tok, &len, why, sizeof why) != DD_OK) {
		if (why[0] == '\0' || tok != NULL)
			__builtin_trap();
		return;
	}
	/* A non-empty slice of the input, trimmed. */
	if (len == 0 || tok < s || tok + len > s + size || tok[0] == ' ' ||
	    tok[0] == '\t')
		__builtin_trap();
}

static void check_claims(const uint8_t *data, size_t size)
{
	const dd_principal *p;
	const json_t *name;
	dd_oidc_claims c;
	dd_jwt_result res;
	json_t *j = NULL;
	char why[192];
	uint64_t id;
	int i;

	if (dd_json_parse(data, size, 64 * 1024, &j, NULL, 0) != DD_OK)
		return;
	if (dd_oidc_claims_parse(j, &c, &res) != DD_OK) {
		if (res.reason == DD_JWT_OK)
			__builtin_trap();
		json_decref(j);
		return;
	}
	if (c.jti[0] == '\0' || c.matched != -1)
		__builtin_trap();
	i = dd_oidc_match(&c, acc, 3, why, sizeof why);
	if (i < -1 || i > 2 || (i == -1 && why[0] == '\0'))
		__builtin_trap();
	if (i >= 0) {
		/* The match must rest on exactly what the token says. */
		p = &acc[i];
		if (p->kind == DD_PRINCIPAL_REPO) {
			name = json_object_get(j, "repository");
			id = c.repository_id;
		} else {
			name = json_object_get(j, "repository_owner");
			id = c.repository_owner_id;
		}
		if (!json_is_string(name) ||
		    strcmp(json_string_value(name), p->name) != 0 ||
		    id != p->id || id == 0)
			__builtin_trap();
	}
	json_decref(j);
}

static void check_principal(const char *s)
{
	dd_principal p;
	char why[128];

	for (int k = DD_PRINCIPAL_USER; k <= DD_PRINCIPAL_REPO; k++) {
		if (dd_principal_make((dd_principal_kind)k, s, 1, &p, why,
				      sizeof why) != DD_OK) {
			if (why[0] == '\0' || p.name[0] != '\0')
				__builtin_trap();
			continue;
		}
		if (strcmp(p.name, s) != 0 || p.id != 1 ||
		    strlen(p.name) > DD_PRINCIPAL_MAX_NAME ||
		    (k == DD_PRINCIPAL_REPO) != (strchr(s, '/') != NULL))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (!ready)
		setup();
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_bearer(s, strlen(s));
	check_claims(data, size);
	check_principal(s);
	free(s);
	return 0;
}
