/*
 * replay.h: a bounded set of token ids (jti) already used, each kept
 * until its token expires, so a captured CI token cannot be replayed
 * while it is still valid.
 *
 * Time is passed in (tests are deterministic). When the set is full of
 * unexpired entries a new id is refused with BUSY rather than evicting
 * one, because an evicted id could be replayed: failing closed costs a
 * retry, failing open costs the guarantee. Entries are hashed with a
 * per-set random key so ids chosen by an attacker cannot degrade lookups.
 */
#ifndef DD_AUTH_REPLAY_H
#define DD_AUTH_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DD_REPLAY_MAX_ID 256   /* longer ids are refused (INVALID) */

typedef struct dd_replay dd_replay;

/*
 * capacity: most ids held at once, 1 to 2^26 (INVALID otherwise); memory
 * grows with the ids held, not with the capacity. IO when the system
 * cannot supply the hash key; NOMEM. Free with dd_replay_free.
 */
dd_err_t dd_replay_new(size_t capacity, dd_replay **out);
void dd_replay_free(dd_replay *r);

/*
 * Records id[0..len) (any bytes) as used until expires_at (Unix seconds:
 * the first second it is forgotten, so it is held while now <
 * expires_at). DD_OK the first time; EXISTS when it was seen and has not
 * expired (a replay); BUSY when full; INVALID for an empty or over-long
 * id; NOMEM (nothing recorded). An id that has already expired
 * (expires_at <= now) is answered DD_OK and not kept. Expired entries are
 * dropped first, as a side effect, so they never cause BUSY.
 */
dd_err_t dd_replay_use(dd_replay *r, const char *id, size_t len,
		       int64_t expires_at, int64_t now);

/*
 * Ids currently held (for /health and tests), counting expired ones that
 * the next dd_replay_use() will drop.
 */
size_t dd_replay_count(const dd_replay *r);

#endif
