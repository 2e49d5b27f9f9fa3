/*
 * agent_state.h: what an agent knows about itself at run time, shared by
 * its handlers: the runtime tenant, the taint set behind /health's
 * integrity report, and the extra ingress its workloads asked for.
 * Plain data on the loop thread; each handler module changes only the
 * fields its endpoint owns (noted below).
 */
#ifndef DD_AGENT_AGENT_STATE_H
#define DD_AGENT_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/principal.h"
#include "core/err.h"

/* Taints, in the order /health lists them (spec: declaration order). */
enum {
	DD_TAINT_OWNER = 1u << 0,      /* customer_owner_enabled */
	DD_TAINT_WORKLOAD = 1u << 1,   /* customer_workload_deployed */
	DD_TAINT_EXEC = 1u << 2,       /* arbitrary_exec_enabled */
	DD_TAINT_SHELL = 1u << 3,      /* interactive_shell_enabled */
};

#define DD_AGENT_MAX_EXTRAS 16
#define DD_AGENT_MAX_LABEL 63

typedef struct dd_extra_ingress {
	char label[DD_AGENT_MAX_LABEL + 1];
	uint16_t port;
} dd_extra_ingress;

typedef struct dd_agent_state {
	char agent_id[96];            /* from registration ("" before) */
	dd_principal owner;           /* the fleet principal (fixed) */
	int has_tenant;               /* POST /owner */
	dd_principal tenant;          /* POST /owner */
	unsigned taints;              /* DD_TAINT_* (only ever grows) */
	int confidential;             /* no deploy, exec, owner, shells */
	dd_extra_ingress extras[DD_AGENT_MAX_EXTRAS]; /* POST /deploy */
	size_t n_extras;
} dd_agent_state;

/* The taint names in /health order, as a new JSON array. */
json_t *dd_agent_taints_json(unsigned taints);

/*
 * Adds or replaces (same label) an extra ingress. INVALID for a label
 * that is not a DNS label of [a-z0-9-] or a zero port; TOO_LARGE when
 * the list is full.
 */
dd_err_t dd_agent_extra_upsert(dd_agent_state *s, const char *label,
			       uint16_t port);

/* A principal as {"name","id","kind"}, or JSON null for NULL. */
json_t *dd_principal_json(const dd_principal *p);

#endif
