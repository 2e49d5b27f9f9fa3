/*
 * poweroff.h: the one way this process turns its VM off.
 *
 * Two variants behind one call, chosen once from configuration:
 *   - real: sync() then reboot(RB_POWER_OFF); needs CAP_SYS_BOOT (the
 *     CP runs as root inside its VM). If the kernel refuses, the process
 *     aborts: a CP that decided to die must not keep serving.
 *   - recorded (the default, tests, `make dev`): one line appended to a
 *     marker file (when one is configured) and to the log, then the
 *     process exits with DD_POWEROFF_EXIT_CODE so a supervisor or a test
 *     can tell a "power-off" from any other exit.
 * The real variant is used only when DD_POWEROFF=real and DD_DEV is off;
 * the dev fleet never powers anything off (dd_poweroff_from_config).
 */
#ifndef DD_CORE_POWEROFF_H
#define DD_CORE_POWEROFF_H

#include "core/config.h"

/* Distinct from 0, 1 (fatal), 2 (usage) and signals (128+n). */
#define DD_POWEROFF_EXIT_CODE 86

typedef enum {
	DD_POWEROFF_RECORDED = 0,
	DD_POWEROFF_REAL,
} dd_poweroff_kind;

typedef struct dd_poweroff {
	dd_poweroff_kind kind;
	const char *marker_path; /* recorded: file to append to; may be NULL */
} dd_poweroff;

/* real only for DD_POWEROFF=real without DD_DEV; borrows cfg's strings. */
dd_poweroff dd_poweroff_from_config(const dd_config *cfg);

/* "real" or "recorded". */
const char *dd_poweroff_kind_name(dd_poweroff_kind kind);

/*
 * Turns the VM off (or records that it would have), giving reason in
 * the log and the marker. Never returns.
 */
_Noreturn void dd_poweroff_now(const dd_poweroff *p, const char *reason);

#endif
