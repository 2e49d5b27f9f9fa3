/*
 * collect_rules.c: the collector's pure rules (spec integrations.md
 * 3.4 and 3.6): what counts toward dead, which errors are DNS failures,
 * how long an agent has been silent, and the status that follows.
 * Declared in collector.h; no state, so tested without a loop.
 */
#include "cp/collector.h"

#include <string.h> /* strcasestr (_GNU_SOURCE) */

bool dd_collect_dead_signal(dd_collect_fail_kind kind, long http_status)
{
	if (kind == DD_COLLECT_FAIL_BODY || kind == DD_COLLECT_FAIL_PENDING)
		return false;
	if (kind != DD_COLLECT_FAIL_STATUS)
		return true;
	/* An auth gate or a redirect proves something answers there. */
	switch (http_status) {
	case 301:
	case 302:
	case 303:
	case 307:
	case 308:
	case 401:
	case 403:
		return false;
	default:
		return true;
	}
}

bool dd_collect_pending(const dd_collect_target *t, int64_t now_ms,
			uint64_t grace_ms)
{
	if (!t->unknown || t->created_ms <= 0)
		return false;
	return now_ms < t->created_ms ||
	       (uint64_t)(now_ms - t->created_ms) < grace_ms;
}

bool dd_collect_is_dns_error(const char *msg)
{
	static const char *const texts[] = {
		"dns error", "failed to lookup address information",
		"failed to resolve", "name or service not known",
		"temporary failure in name resolution", "no record found",
		"could not resolve", /* curl's own wording */
	};

	for (size_t i = 0; msg != NULL && i < sizeof texts / sizeof texts[0];
	     i++) {
		if (strcasestr(msg, texts[i]) != NULL)
			return true;
	}
	return false;
}

int64_t dd_collect_age_ms(const dd_collect_target *t, int64_t now_ms)
{
	int64_t ref = t->last_seen_ms > t->registered_at_ms
			      ? t->last_seen_ms : t->registered_at_ms;

	/* Unknown is young: silence has to be proven before it kills. */
	if (ref <= 0 || now_ms <= ref)
		return 0;
	return now_ms - ref;
}

dd_collect_status dd_collect_next_status(dd_collect_status cur, int64_t age_ms,
					 bool dns, bool dead_signal,
					 uint64_t grace_ms,
					 uint64_t dead_after_ms)
{
	uint64_t age = age_ms > 0 ? (uint64_t)age_ms : 0;
	bool reg = cur == DD_COLLECT_REGISTERING;

	if (reg && dns && age <= dead_after_ms)
		return DD_COLLECT_REGISTERING;
	if (reg && age < grace_ms)
		return DD_COLLECT_REGISTERING;
	if (age > dead_after_ms && dead_signal)
		return DD_COLLECT_DEAD;
	return DD_COLLECT_STALE;
}

const char *dd_collect_status_name(dd_collect_status s)
{
	static const char *const names[] = {"registering", "healthy", "stale",
					    "dead"};

	if ((unsigned)s >= DD_COLLECT__COUNT)
		return "unknown";
	return names[s];
}
