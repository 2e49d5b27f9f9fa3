/*
 * client_term.h: the local terminal during `client shell`: raw mode and
 * its restoration, and the window size.
 *
 * Restoration happens on every way out the shell has: the detach key,
 * the session's end, a dropped connection, and SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT (caught on the loop, client_shell.c); dd_term_restore is
 * idempotent so every path may call it.
 */
#ifndef DD_CLIENT_CLIENT_TERM_H
#define DD_CLIENT_CLIENT_TERM_H

#include <stdint.h>
#include <termios.h>

#include "core/err.h"

typedef struct dd_term {
	int fd;
	int raw;                   /* 1 while the saved state must come back */
	struct termios saved;
} dd_term;

/* Saves fd's settings and makes it raw (no echo, no line editing, no
 * signals from keys, 8-bit). UNSUPPORTED when fd is not a terminal. */
dd_err_t dd_term_raw(dd_term *t, int fd);

/* Puts the saved settings back (TCSAFLUSH); a no-op unless raw. */
void dd_term_restore(dd_term *t);

/* fd's window size; 80x24 when it has none. */
void dd_term_size(int fd, uint16_t *cols, uint16_t *rows);

#endif
