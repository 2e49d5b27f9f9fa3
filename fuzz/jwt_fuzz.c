/*
 * jwt_fuzz.c: the JWKS parser and the JWS/JWT verifier on hostile input.
 *
 * The input is "JWKS \n token", split at the last newline (tokens hold
 * none). The JWKS part is parsed on its own; when it yields no set, a
 * built-in set is used instead, so that mutated tokens still reach the
 * RSA, PS and ES signature paths with real keys (the python3-jwt keys
 * of tests/data/jwt/vectors.json). Every token is then verified in full
 * and, separately, decoded and run through the claim checks alone, which
 * a signature would otherwise keep out of reach. The whole input also
 * goes through the JWKS parser once.
 *
 * Seeds (fuzz/seeds/jwt/): the vectors of tests/data/jwt/vectors.json,
 * with and without their JWKS in front.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "auth/jwk.h"
#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Public keys only: py-rsa, py-p256 (ES256), py-p384. */
static const char builtin_jwks[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"key_ops\":[\"verify\"],\"n\":\"mvuSoj2"
	"ILcWzTzP2LdDT2QoKULeTYQTOzFCRepbEbotIRcGDV4BMZcz07duZqefHgfVuTNXT2Od"
	"9-MzCCiMd4n-3-zaybBLTyFS29gdJMXd9lYNKXqUdaCrSPEYjWEBksX5JlfFPXoix2Zl"
	"rzhu71fHgw4Kb6gFiFuIRzGwZnAXeLyMDuNiw0mdkqsrq30cpmOsP32h6BQ3KbnTepC8"
	"ZwLS7UtpKEMbYB35kYVyd3EGMSwRFYrNrOfMma1KqQCFvZ-NqYThvI-MuD8QHe_5OOF3"
	"rbw4wSyNoSwrA8qKfGt3geGV4Z5om-MPytng4GWN_1kDueIDPlMBZH8by2tzO9Q\",\""
	"e\":\"AQAB\",\"kid\":\"py-rsa\",\"use\":\"sig\"},{\"kty\":\"EC\",\"c"
	"rv\":\"P-256\",\"x\":\"8OiAEZazqjAczr-pqe0ub-zLwHlzPfld3KFO_n1RbD0\""
	",\"y\":\"oU1HGWJFtMjmH1yg3QQLGbZt0F3ajw3t3LAHT6G12kI\",\"kid\":\"py-"
	"p256\",\"use\":\"sig\",\"alg\":\"ES256\"},{\"kty\":\"EC\",\"crv\":\""
	"P-384\",\"x\":\"4hsqEVKnDc1XtuASSPt5eXnpTp4KwfNFuc2xwqViJZOPuQwqnKOE"
	"R-NhFdxodbbK\",\"y\":\"53SKbz0D6VMomyqwmYbM75IQD6v0Qa3EpNnWLjzPRvrvh"
	"-5ti_N_KYfDb5ZKCIQl\",\"kid\":\"py-p384\",\"use\":\"sig\"}]}";

static dd_jwks *builtin;

static const dd_jwt_policy pol = {
	.algs = DD_JWA_ALL,
	.issuer = "https://token.actions.githubusercontent.com",
	.audience = "dd-agent",
	.leeway_s = 60,
	.max_age_s = 900,
};

#define NOW 1750000000

static void check_tokens(const char *tok, size_t len, const dd_jwks *set)
{
	dd_jwt_result res;
	json_t *claims = NULL;
	dd_jwt *t = NULL;
	dd_err_t rc;

	rc = dd_jwt_verify(tok, len, &pol, set, NOW, &claims, &res);
	/* The verdict and the claims must agree. */
	if ((rc == DD_OK) != (claims != NULL) ||
	    (rc == DD_OK) != (res.reason == DD_JWT_OK) ||
	    (rc != DD_OK && rc != DD_ERR_NOMEM &&
	     rc != dd_jwt_reason_err(res.reason)))
		__builtin_trap();
	if (rc == DD_OK && !json_is_object(claims))
		__builtin_trap();
	json_decref(claims);
	if (dd_jwt_decode(tok, len, &pol, &t, &res) != DD_OK)
		return;
	(void)dd_jwt_check_claims(t, &pol, NOW, &res);
	/* Claims are never handed out for an unverified token. */
	if (dd_jwt_claims(t, &claims) != DD_ERR_INVALID || claims != NULL)
		__builtin_trap();
	dd_jwt_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	dd_jwks *set = NULL;
	size_t split = size;

	if (builtin == NULL &&
	    dd_jwks_parse(builtin_jwks, sizeof builtin_jwks - 1, 0, &builtin,
			  NULL, 0) != DD_OK)
		__builtin_trap();
	if (dd_jwks_parse(in, size, 0, &set, NULL, 0) == DD_OK)
		dd_jwks_free(set);
	set = NULL;
	while (split > 0 && in[split - 1] != '\n')
		split--;
	if (split == 0) {
		check_tokens(in, size, builtin);
		return 0;
	}
	if (dd_jwks_parse(in, split - 1, 0, &set, NULL, 0) != DD_OK)
		set = NULL;
	check_tokens(in + split, size - split, set != NULL ? set : builtin);
	dd_jwks_free(set);
	return 0;
}
