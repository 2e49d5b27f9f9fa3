#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "attest/binding.h"
#include "core/strutil.h"

/* Computed independently: Python's hashlib.sha512 over the same bytes. */
static const char expected_hex[] =
	"165bfbfa9c6213e38c6c8ae3d2cfab1493d7e76db55ecf487eb4872807923cc0"
	"23c0196a58ded3f5439ca78a51e3e7a4d0002bc918b8a0ad3c697c33290aff0f";

static void fixtures(uint8_t nonce[32], uint8_t pk[32])
{
	for (int i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)i;
		pk[i] = 0xab;
	}
}

static void known_answer(void **state)
{
	uint8_t nonce[32], pk[32], rd[64], want[64];

	(void)state;
	fixtures(nonce, pk);
	assert_int_equal(dd_hex_decode(expected_hex, 128, want, 64), DD_OK);
	assert_int_equal(dd_binding_register(nonce, 32, pk, rd), DD_OK);
	assert_memory_equal(rd, want, 64);
	assert_int_equal(dd_binding_check(rd, nonce, 32, pk), DD_OK);
}

/* hashlib.sha512(b"devopsdefender/cp-attest/v1" + bytes(range(16))) */
static const char cp_hex[] =
	"588ee9fc2cff3f5ee81c435e5f215eab3b6905391e022ed10d2141a0fe6585fe"
	"4a1db8f9e9690f1051118502cdfe0fc29f90eaebf2ef1100715f0d20c56aaa4f";

static void cp_attest_known_answer(void **state)
{
	uint8_t nonce[32], pk[32], rd[64], want[64], reg[64];

	(void)state;
	fixtures(nonce, pk);
	assert_int_equal(dd_hex_decode(cp_hex, 128, want, 64), DD_OK);
	assert_int_equal(dd_binding_cp_attest(nonce, 16, rd), DD_OK);
	assert_memory_equal(rd, want, 64);
	/* The labels keep a CP quote from ever passing as a registration. */
	assert_int_equal(dd_binding_register(nonce, 16, pk, reg), DD_OK);
	assert_memory_not_equal(rd, reg, 64);
	assert_int_equal(dd_binding_cp_attest(nonce, 0, rd), DD_ERR_INVALID);
	assert_int_equal(dd_binding_cp_attest(nonce, DD_BINDING_MAX_NONCE + 1, rd),
			 DD_ERR_INVALID);
}

/* hashlib.sha512(b"devopsdefender/noise/v1" + bytes(range(32)) + b"\xab" * 32) */
static const char noise_hex[] =
	"2fedb62279b00a96ffe35a66b630309da55b746df1649fdd330c7ef68fbacea5"
	"8c7817789690db91f9bc28563b2e9470f58c9e865dc35a6d17e3467c806a1c36";

static void noise_known_answer(void **state)
{
	uint8_t nonce[32], pk[32], rd[64], want[64], reg[64];

	(void)state;
	fixtures(nonce, pk);
	assert_int_equal(dd_hex_decode(noise_hex, 128, want, 64), DD_OK);
	assert_int_equal(dd_binding_noise(nonce, 32, pk, rd), DD_OK);
	assert_memory_equal(rd, want, 64);
	/* The public /health quote never passes as registration evidence. */
	assert_int_equal(dd_binding_register(nonce, 32, pk, reg), DD_OK);
	assert_memory_not_equal(rd, reg, 64);
	assert_int_equal(dd_binding_check(rd, nonce, 32, pk), DD_ERR_CRYPTO);
	assert_int_equal(dd_binding_noise(nonce, 0, pk, rd), DD_ERR_INVALID);
}

static void hex_form_of_the_check(void **state)
{
	uint8_t nonce[32], pk[32], rd[64];
	char hex[129];

	(void)state;
	fixtures(nonce, pk);
	assert_int_equal(dd_binding_register(nonce, 32, pk, rd), DD_OK);
	dd_hex_encode(rd, 64, hex);
	assert_int_equal(dd_binding_check_hex(hex, nonce, 32, pk), DD_OK);
	hex[5] = hex[5] == '0' ? '1' : '0';
	assert_int_equal(dd_binding_check_hex(hex, nonce, 32, pk), DD_ERR_CRYPTO);
	assert_int_equal(dd_binding_check_hex("abcd", nonce, 32, pk),
			 DD_ERR_CRYPTO);
	assert_int_equal(dd_binding_check_hex(NULL, nonce, 32, pk),
			 DD_ERR_CRYPTO);
}

static void any_change_breaks_the_binding(void **state)
{
	uint8_t nonce[32], pk[32], rd[64];

	(void)state;
	fixtures(nonce, pk);
	assert_int_equal(dd_binding_register(nonce, 32, pk, rd), DD_OK);
	for (int i = 0; i < 64 * 8; i++) {
		rd[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(dd_binding_check(rd, nonce, 32, pk), DD_ERR_CRYPTO);
		rd[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	nonce[31] ^= 1;
	assert_int_equal(dd_binding_check(rd, nonce, 32, pk), DD_ERR_CRYPTO);
	nonce[31] ^= 1;
	pk[0] ^= 1;
	assert_int_equal(dd_binding_check(rd, nonce, 32, pk), DD_ERR_CRYPTO);
	pk[0] ^= 1;
	/* A shorter nonce is a different binding, not a prefix match. */
	assert_int_equal(dd_binding_check(rd, nonce, 31, pk), DD_ERR_CRYPTO);
}

static void nonce_length_bounds(void **state)
{
	uint8_t nonce[65] = {0}, pk[32] = {0}, rd[64];

	(void)state;
	assert_int_equal(dd_binding_register(nonce, 0, pk, rd), DD_ERR_INVALID);
	assert_int_equal(dd_binding_register(nonce, 65, pk, rd), DD_ERR_INVALID);
	assert_int_equal(dd_binding_register(nonce, 64, pk, rd), DD_OK);
	assert_int_equal(dd_binding_check(rd, nonce, 0, pk), DD_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_answer),
		cmocka_unit_test(cp_attest_known_answer),
		cmocka_unit_test(noise_known_answer),
		cmocka_unit_test(hex_form_of_the_check),
		cmocka_unit_test(any_change_breaks_the_binding),
		cmocka_unit_test(nonce_length_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
