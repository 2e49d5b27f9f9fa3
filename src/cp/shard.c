#include "cp/shard.h"

#include <string.h>

uint64_t dd_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= DD_FNV1A64_PRIME; /* unsigned: wraps, as the spec wants */
	}
	return h;
}

uint64_t dd_fnv1a64(const void *p, size_t n)
{
	return dd_fnv1a64_update(DD_FNV1A64_OFFSET, p, n);
}

uint64_t dd_shard_of(const char *key, uint64_t total)
{
	uint64_t base = dd_fnv1a64(key, strlen(key));
	uint64_t best = 0, best_score = 0;

	for (uint64_t s = 0; s < total; s++) {
		unsigned char le[8];
		uint64_t score;

		/* Byte order fixed by the spec, whatever the host's. */
		for (int i = 0; i < 8; i++)
			le[i] = (unsigned char)(s >> (8 * i));
		score = dd_fnv1a64_update(base, le, sizeof le);
		if (s == 0 || score > best_score) {
			best = s;
			best_score = score;
		}
	}
	return best;
}

bool dd_shard_keep(const char *key, uint64_t total, uint64_t index)
{
	return total <= 1 || dd_shard_of(key, total) == index;
}
