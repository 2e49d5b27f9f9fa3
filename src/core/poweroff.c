#include "core/poweroff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

dd_poweroff dd_poweroff_from_config(const dd_config *cfg)
{
	dd_poweroff p = {.kind = DD_POWEROFF_RECORDED,
			 .marker_path = cfg->poweroff_marker};

	if (cfg->poweroff_real && !cfg->dev)
		p.kind = DD_POWEROFF_REAL;
	return p;
}

const char *dd_poweroff_kind_name(dd_poweroff_kind kind)
{
	return kind == DD_POWEROFF_REAL ? "real" : "recorded";
}

/* Best effort: the exit code tells the story even if this fails. */
static void write_marker(const char *path, const char *reason)
{
	char line[512];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		dd_log_error("cannot write the power-off marker %s: %s", path,
			     strerror(errno));
		return;
	}
	n = snprintf(line, sizeof line, "poweroff pid=%ld time=%lld reason=%s\n",
		     (long)getpid(), (long long)time(NULL), reason);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	if (n > 0 && write(fd, line, (size_t)n) != n)
		dd_log_error("short write to the power-off marker %s", path);
	(void)fsync(fd);
	close(fd);
}

_Noreturn void dd_poweroff_now(const dd_poweroff *p, const char *reason)
{
	if (p->kind != DD_POWEROFF_REAL) {
		dd_log_warn("power-off (recorded, not real): %s", reason);
		if (p->marker_path != NULL)
			write_marker(p->marker_path, reason);
		fflush(NULL);
		/*
		 * _exit, not exit: the loop and its handles are live; exit
		 * handlers (and leak checkers) would run over a process in
		 * mid-flight, which is not what a power cut looks like.
		 */
		_exit(DD_POWEROFF_EXIT_CODE);
	}
	dd_log_error("powering off: %s", reason);
	fflush(NULL);
	sync();
	reboot(RB_POWER_OFF);
	/* Still here: no CAP_SYS_BOOT, or not Linux. Never keep serving. */
	dd_log_error("reboot(RB_POWER_OFF) failed: %s; aborting",
		     strerror(errno));
	abort();
}
