/*
 * ratelimit.h: a token bucket for endpoints that cost real work (a
 * quote takes about a second of TDX hardware time). Time is passed in
 * by the caller (the loop's millisecond clock), so the bucket is pure.
 */
#ifndef DD_CORE_RATELIMIT_H
#define DD_CORE_RATELIMIT_H

#include <stdint.h>

typedef struct dd_ratelimit {
	uint64_t burst;        /* bucket size */
	uint64_t period_ms;    /* one token comes back every period */
	uint64_t tokens;
	uint64_t last_ms;      /* when tokens were last topped up */
} dd_ratelimit;

/* A full bucket of burst tokens (burst >= 1, period_ms >= 1). */
void dd_ratelimit_init(dd_ratelimit *rl, uint64_t burst, uint64_t period_ms,
		       uint64_t now_ms);

/*
 * Takes one token: 1 when allowed. When refused, *retry_ms (if not NULL)
 * is how long until the next token.
 */
int dd_ratelimit_take(dd_ratelimit *rl, uint64_t now_ms, uint64_t *retry_ms);

#endif
