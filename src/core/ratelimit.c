#include "core/ratelimit.h"

#include <stddef.h>

void dd_ratelimit_init(dd_ratelimit *rl, uint64_t burst, uint64_t period_ms,
		       uint64_t now_ms)
{
	rl->burst = burst ? burst : 1;
	rl->period_ms = period_ms ? period_ms : 1;
	rl->tokens = rl->burst;
	rl->last_ms = now_ms;
}

int dd_ratelimit_take(dd_ratelimit *rl, uint64_t now_ms, uint64_t *retry_ms)
{
	uint64_t earned;

	/* A clock that went backwards earns nothing instead of wrapping. */
	if (now_ms > rl->last_ms) {
		earned = (now_ms - rl->last_ms) / rl->period_ms;
		if (earned >= rl->burst - rl->tokens) {
			rl->tokens = rl->burst;
			rl->last_ms = now_ms;
		} else {
			rl->tokens += earned;
			rl->last_ms += earned * rl->period_ms;
		}
	}
	if (rl->tokens > 0) {
		rl->tokens--;
		return 1;
	}
	if (retry_ms != NULL)
		*retry_ms = rl->period_ms - (now_ms > rl->last_ms
					     ? now_ms - rl->last_ms : 0);
	return 0;
}
