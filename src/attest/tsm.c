#include "attest/tsm.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/strutil.h"

#define PATH_CAP 512

/* strerror is not safe on the thread pool; these strings are static. */
static const char *errtext(int e)
{
	return dd_strerrno(e);
}

static void say(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || n == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

/*
 * configfs creates an entry's attributes inside mkdir; a stand-in
 * directory populated by a watcher does so a moment later, so a missing
 * attribute is waited for briefly (never on real hardware).
 */
static int open_attr(const char *dir, const char *attr, int flags)
{
	char path[PATH_CAP];
	struct timespec pause = {0, 10 * 1000 * 1000};
	int fd = -1;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, attr) >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int i = 0; i < 100; i++) {
		fd = open(path, flags | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		nanosleep(&pause, NULL);
	}
	return fd;
}

/* The generation counter, or -1 when the attribute does not exist. */
static long long read_generation(const char *dir)
{
	char text[32], path[PATH_CAP];
	ssize_t n;
	uint64_t v;
	int fd;

	if ((size_t)snprintf(path, sizeof path, "%s/generation", dir) >= sizeof path)
		return -1;
	/* Optional attribute (older kernels lack it): never waited for. */
	fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (dd_parse_u64n(text, (size_t)n, 0, INT64_MAX, &v) != DD_OK)
		return -1;
	return (long long)v;
}

static dd_err_t write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return DD_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return DD_OK;
}

static dd_err_t read_all(int fd, dd_buf *out)
{
	uint8_t chunk[8192];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		dd_err_t rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return DD_ERR_IO;
		if (n == 0)
			return DD_OK;
		rc = dd_buf_append(out, chunk, (size_t)n);
		if (rc)
			return rc;
	}
}

/* A stand-in's plain files must go before rmdir; configfs refuses this. */
static void remove_entry(const char *dir)
{
	static const char *const attrs[] = {"inblob", "outblob", "generation",
					    "provider", "auxblob"};
	char path[PATH_CAP];

	if (rmdir(dir) == 0 || errno != ENOTEMPTY)
		return;
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, attrs[i]) <
		    sizeof path)
			unlink(path);
	}
	rmdir(dir);
}

static dd_err_t generate(const char *dir, const uint8_t rd[64], dd_buf *out,
			 char *why, size_t why_len)
{
	long long g0, g1;
	dd_err_t rc;
	int fd;

	fd = open_attr(dir, "inblob", O_WRONLY);
	if (fd < 0) {
		say(why, why_len, "open %s/inblob: %s", dir, errtext(errno));
		return DD_ERR_IO;
	}
	g0 = read_generation(dir);
	rc = write_all(fd, rd, 64);
	close(fd);
	if (rc) {
		say(why, why_len, "write %s/inblob: %s", dir, errtext(errno));
		return rc;
	}
	fd = open_attr(dir, "outblob", O_RDONLY);
	if (fd < 0) {
		say(why, why_len, "open %s/outblob: %s", dir, errtext(errno));
		return DD_ERR_IO;
	}
	rc = read_all(fd, out);
	close(fd);
	if (rc) {
		if (rc == DD_ERR_TOO_LARGE)
			say(why, why_len, "%s/outblob is larger than the quote cap", dir);
		else
			say(why, why_len, "read %s/outblob: %s", dir, errtext(errno));
		return rc;
	}
	if (out->len == 0) {
		say(why, why_len, "%s/outblob is empty: no quote-generation service",
		    dir);
		return DD_ERR_UPSTREAM;
	}
	g1 = read_generation(dir);
	if (g0 >= 0 && g1 != g0 + 1) {
		say(why, why_len, "%s/generation moved by another writer", dir);
		return DD_ERR_BUSY;
	}
	return DD_OK;
}

dd_err_t dd_tsm_get_quote(const char *root, const uint8_t report_data[64],
			  dd_buf *out, char *why, size_t why_len)
{
	char dir[PATH_CAP], name[17];
	struct stat st;
	dd_err_t rc;

	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		say(why, why_len, "configfs-tsm not available at %s", root);
		return DD_ERR_UNSUPPORTED;
	}
	/* A fresh entry per quote: concurrent users never share inblob. */
	rc = dd_random_hex(name, 8);
	if (rc)
		return rc;
	if ((size_t)snprintf(dir, sizeof dir, "%s/dd-%s", root, name) >= sizeof dir)
		return DD_ERR_INVALID;
	if (mkdir(dir, 0700) != 0) {
		say(why, why_len, "mkdir %s: %s", dir, errtext(errno));
		return DD_ERR_IO;
	}
	dd_buf_reset(out);
	rc = generate(dir, report_data, out, why, why_len);
	remove_entry(dir);
	if (rc)
		dd_buf_reset(out);
	return rc;
}
