/*
 * client_health_fuzz.c: the shell client's check of an agent's /health
 * `noise` bundle (client/client_attest.h). Whoever answers at the agent's
 * URL controls these bytes; the check runs before anything is trusted.
 *
 * Each input is tried twice: as the whole /health JSON, and as the raw
 * quote of an otherwise well-formed bundle. Invariants checked with
 * __builtin_trap(): a refusal always says which step failed ("bundle:",
 * "quote:", "binding:", "mrtd:"); an acceptance returns exactly the
 * bundle's key and, with a pinned MRTD, only that MRTD.
 *
 * Seeds (fuzz/seeds/client_health/): a /health with a simulated quote.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client/client_attest.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pub_hex[] =
	"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
static const uint8_t pinned[DD_CLIENT_MRTD_LEN] = {1};

static void check(json_t *h, const uint8_t *want_pub)
{
	dd_client_attest_opts o = {.now = 1767225600, .allow_simulated = 1};
	dd_client_attest_result res;
	static const char *const steps[] = {"bundle:", "quote:", "binding:",
					    "mrtd:"};
	int named = 0;

	for (int pin = 0; pin < 2; pin++) {
		o.expect_mrtd = pin ? pinned : NULL;
		if (dd_client_attest_check(h, &o, &res) == DD_OK) {
			if (want_pub != NULL &&
			    memcmp(res.pubkey, want_pub, 32) != 0)
				__builtin_trap();
			if (pin && memcmp(res.mrtd, pinned, sizeof pinned) != 0)
				__builtin_trap();
			continue;
		}
		named = 0;
		for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
			named |= strncmp(res.why, steps[i], strlen(steps[i])) == 0;
		if (!named && strstr(res.why, "out of memory") == NULL)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pub[32];
	json_t *h = NULL;
	dd_buf b64;

	dd_json_setup();
	if (dd_json_parse(data, size, 1 << 20, &h, NULL, 0) == DD_OK) {
		check(h, NULL);
		json_decref(h);
	}
	dd_buf_init(&b64, 1 << 20);
	if (dd_b64_encode(DD_B64_STD, data, size, &b64) == DD_OK) {
		h = json_pack("{s:{s:s, s:s, s:s, s:s}}", "noise", "pubkey_hex",
			      pub_hex, "nonce_hex", pub_hex, "binding",
			      "devopsdefender/noise/v1", "quote_b64",
			      b64.len > 0 ? dd_buf_str(&b64) : "");
		if (h != NULL && dd_hex_decode(pub_hex, 64, pub, 32) == DD_OK)
			check(h, pub);
		json_decref(h);
	}
	dd_buf_free(&b64);
	return 0;
}
