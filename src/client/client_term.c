#include "client/client_term.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

dd_err_t dd_term_raw(dd_term *t, int fd)
{
	struct termios raw;

	memset(t, 0, sizeof *t);
	t->fd = fd;
	if (!isatty(fd) || tcgetattr(fd, &t->saved) != 0)
		return DD_ERR_UNSUPPORTED;
	raw = t->saved;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSAFLUSH, &raw) != 0)
		return DD_ERR_IO;
	t->raw = 1;
	return DD_OK;
}

void dd_term_restore(dd_term *t)
{
	if (!t->raw)
		return;
	(void)tcsetattr(t->fd, TCSAFLUSH, &t->saved);
	t->raw = 0;
}

void dd_term_size(int fd, uint16_t *cols, uint16_t *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
	}
}
