/*
 * noise_test_hook.h: TESTS AND BENCHMARKS ONLY. Production code must never
 * include this header: a fixed ephemeral key destroys forward secrecy and,
 * reused, the confidentiality of every message.
 *
 * The public vectors (spec 8.1) fix both ephemeral keys, so the tests need
 * a way to inject them; this is it.
 */
#ifndef DD_NOISE_TEST_HOOK_H
#define DD_NOISE_TEST_HOOK_H

#include <stdint.h>

#include "core/err.h"
#include "noise/noise.h"

/* Makes hs use priv as its ephemeral key instead of a random one. Only
 * before hs has written its first message; DD_ERR_INVALID after. */
dd_err_t dd_noise_hs_fix_ephemeral(dd_noise_hs *hs,
				   const uint8_t priv[DD_X25519_LEN]);

#endif
