/*
 * pinning.h: which measurements the fleet accepts.
 *
 * A policy is an allowlist of MRTDs (any of), optionally exact RTMR
 * values, and a minimum TCB status. TCB statuses are ranked (UpToDate is
 * best, Revoked worst; unknown strings rank below everything), so a floor
 * of SWHardeningNeeded also admits UpToDate. An empty allowlist means
 * "not pinned": everything passes, which /health reports. Enforcement
 * (refuse vs. warn) is the caller's decision, carried here so one place
 * holds the whole policy.
 */
#ifndef DD_ATTEST_PINNING_H
#define DD_ATTEST_PINNING_H

#include <stddef.h>

#include "attest/claims.h"
#include "core/err.h"

#define DD_PIN_MAX_MRTD 32
#define DD_PIN_MAX_NAME 32

typedef struct dd_pin_policy {
	char mrtd[DD_PIN_MAX_MRTD][DD_MEAS_HEX + 1];
	char name[DD_PIN_MAX_MRTD][DD_PIN_MAX_NAME + 1]; /* "" if unnamed */
	size_t n_mrtd;
	char rtmr[4][DD_MEAS_HEX + 1];  /* "" = any value */
	int min_tcb_rank;
	char min_tcb[48];
	int enforce;
} dd_pin_policy;

typedef enum {
	DD_PIN_PASS = 0,
	DD_PIN_UNPINNED,    /* no allowlist configured */
	DD_PIN_BAD_MRTD,
	DD_PIN_BAD_RTMR,
	DD_PIN_LOW_TCB,
} dd_pin_verdict;

/*
 * Builds a policy. mrtds: MRTDs separated by commas or whitespace, each
 * hex or name=hex so logs and /health can say which image a VM runs
 * (names: up to 32 of [A-Za-z0-9._-]; NULL or blank: unpinned). min_tcb: a status name (NULL or blank:
 * "UpToDate"). rtmrs: NULL, or four entries, each hex or "" for any.
 * INVALID with why on any malformed entry.
 */
dd_err_t dd_pin_policy_parse(const char *mrtds, const char *min_tcb,
			     const char *const rtmrs[4], int enforce,
			     dd_pin_policy *out, char *why, size_t why_len);

/* "pass", "unpinned", "mrtd", "rtmr" or "tcb": for /health and logs. */
const char *dd_pin_verdict_name(dd_pin_verdict v);

/* Judges claims against the policy; why explains a refusal. */
dd_pin_verdict dd_pin_check(const dd_pin_policy *p, const dd_att_claims *c,
			    char *why, size_t why_len);

/* The allowlist name of an MRTD (lower-case hex): "" if unnamed, NULL if absent. */
const char *dd_pin_name_of(const dd_pin_policy *p, const char *mrtd);

/* Rank of a TCB status name (higher is better), -1 when unknown. */
int dd_tcb_rank(const char *status);

#endif
