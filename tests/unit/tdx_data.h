/*
 * tdx_data.h: loading the real quotes of tests/data/tdx for the quote
 * tests (found through DD_TEST_DATA, set by tests/meson.build).
 */
#ifndef DD_TEST_TDX_DATA_H
#define DD_TEST_TDX_DATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strutil.h"

/* 2025-06-25T00:00:00Z: inside every PCK chain and the collateral. */
#define TDX_NOW 1750809600

typedef struct tdx_sample {
	const char *file;
	const char *mrtd;       /* hex */
	const char *rd_prefix;  /* hex prefix of REPORTDATA */
	size_t len;             /* file bytes (after hex decoding) */
	size_t padding;         /* trailing zero bytes */
	const char *fmspc;
} tdx_sample;

static const tdx_sample tdx_samples[] = {
	{"dcap-qvl-tdx_quote.bin",
	 "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
	 "de03ae6dc5f87f27428b2538873118b7",
	 "9a9d48e7f6799642d3d1b34e1e5e1742", 5006, 70, "b0c06f000000"},
	{"edgeless-tdx-v4.bin",
	 "b65ea009e424e6f761fdd3d7c8962439453b37ecdf62da04f7bc5d327686bb8b"
	 "afc8a5d24a9c31cee60e4aba87c2f71b",
	 "48656c6c6f2066726f6d20456467656c", 4936, 0, "00806f050000"},
	{"tappd-tdx-v4.hex",
	 "c68518a0ebb42136c12b2275164f8c72f25fa9a34392228687ed6e9caeb9c0f1"
	 "dbd895e9cf475121c029dc47e70e91fd",
	 "7668c6b4eafb62301c72714ecc7d90ce9a0e04b5", 5006, 70,
	 "b0c06f000000"},
};
#define TDX_NSAMPLES (sizeof tdx_samples / sizeof tdx_samples[0])

/* Reads tests/data/tdx/<name>; *.hex files are decoded. free() it. */
static inline uint8_t *tdx_load(const char *name, size_t *len)
{
	const char *dir = getenv("DD_TEST_DATA");
	char path[1024];
	uint8_t *data, *bin;
	size_t n = 0, cap = 1 << 20;
	FILE *f;

	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/tdx/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	data = malloc(cap);
	assert_non_null(data);
	n = fread(data, 1, cap, f);
	fclose(f);
	assert_true(n > 0 && n < cap);
	if (strstr(name, ".hex") == NULL) {
		*len = n;
		return data;
	}
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r' ||
			 data[n - 1] == ' '))
		n--;
	assert_true(n % 2 == 0);
	bin = malloc(n / 2);
	assert_non_null(bin);
	assert_int_equal(dd_hex_decode((const char *)data, n, bin, n / 2),
			 DD_OK);
	free(data);
	*len = n / 2;
	return bin;
}

static inline void tdx_unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(dd_hex_decode(hex, strlen(hex), out, n), DD_OK);
}

/* A small deterministic PRNG (xorshift64*) for the mutation loops. */
static inline uint64_t tdx_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

#endif
