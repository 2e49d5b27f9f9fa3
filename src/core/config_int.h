#ifndef DD_CORE_CONFIG_INT_H
#define DD_CORE_CONFIG_INT_H

/*
 * The configuration table shared by config.c (loading, checking,
 * describing) and config_table.c (the table itself). Internal to
 * src/core: nothing outside config*.c includes it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

enum var_type {
	T_STR,      /* any value; presence is what counts */
	T_NONBLANK, /* must contain non-whitespace; trimmed */
	T_LABEL,    /* DD_ENV grammar */
	T_U16,
	T_U64,
	T_FLAG,     /* 1/true/yes/on or 0/false/no/off */
	T_CHOICE,   /* index into choices, stored as int */
	T_URL,      /* http:// or https://, no whitespace; trailing / dropped */
	T_PATH,     /* absolute path */
	T_HOSTADDR, /* an IPv4/IPv6 literal to bind to */
};

#define ALL_SERVERS (DD_MODE_CP | DD_MODE_AGENT)
/* Every mode that runs an HTTP listener. */
#define LISTENERS (ALL_SERVERS | DD_MODE_ITA)
#define EVERY (LISTENERS | DD_MODE_SESSIOND | DD_MODE_RUNTIME | DD_MODE_DEV | \
	       DD_MODE_CLIENT)

struct var {
	const char *name;
	enum var_type type;
	const char *def;     /* NULL = no default */
	uint64_t min, max;   /* numeric bounds */
	unsigned modes;      /* modes that read it */
	unsigned required;   /* modes that refuse to start without it */
	bool secret;
	size_t offset;
	const char *const *choices;
	const char *help;
};

/* Every variable, in the order --help lists them. */
extern const struct var dd_config_vars[];
extern const size_t dd_config_nvars;
/* DD_OWNER_KIND's names, indexed by dd_owner_kind. */
extern const char *const dd_config_owner_kinds[];

#endif
