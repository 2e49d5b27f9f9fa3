/*
 * shard.h: which control plane of a sharded set scrapes which agent
 * (spec integrations.md 3.3, http-surface.md 6.3): rendezvous hashing
 * over FNV-1a-64, so every CP decides alone, from the agent's key and
 * the shard count, and adding a shard moves only the agents it wins.
 *
 * The key is the agent's store key, its agent_id: for a tunnel agent
 * that is its tunnel name (the spec's key), for a direct-ingress agent
 * the id registration gave it (docs/collector.md "Sharding").
 */
#ifndef DD_CP_SHARD_H
#define DD_CP_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DD_FNV1A64_OFFSET UINT64_C(0xcbf29ce484222325)
#define DD_FNV1A64_PRIME UINT64_C(0x100000001b3)
/* DD_SCRAPER_SHARD_TOTAL's upper bound: a target costs total hashes. */
#define DD_SHARD_TOTAL_MAX 256u

/* FNV-1a-64 of p[0..n) continued from h (start at DD_FNV1A64_OFFSET). */
uint64_t dd_fnv1a64_update(uint64_t h, const void *p, size_t n);

/* FNV-1a-64 of p[0..n). */
uint64_t dd_fnv1a64(const void *p, size_t n);

/*
 * The shard in 0..total-1 that owns key: the s whose FNV-1a-64 over the
 * key's bytes followed by s as 8 little-endian bytes scores highest,
 * ties keeping the lower s. 0 when total <= 1.
 */
uint64_t dd_shard_of(const char *key, uint64_t total);

/* Does the CP with index (of total) keep key? Always when total <= 1. */
bool dd_shard_keep(const char *key, uint64_t total, uint64_t index);

#endif
