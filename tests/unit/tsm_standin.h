/*
 * tsm_standin.h: a thread that plays the kernel's configfs-tsm for tests.
 * When an entry directory appears under the stand-in root it creates
 * `generation`, `outblob` (a FIFO, so a read blocks like configfs does
 * until the quote exists) and `inblob`; when `inblob` has been written it
 * answers on `outblob` with a fixture quote carrying the report data at
 * offset 568, and advances `generation`. Knobs make it misbehave.
 * Include from one test file only (static functions).
 */
#ifndef DD_TESTS_TSM_STANDIN_H
#define DD_TESTS_TSM_STANDIN_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* gcc sizes rows of dirs[][] as the whole array; every path here is short. */
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define QUOTE_LEN 1024

struct standin {
	char root[256];
	int ino;
	int stop_pipe[2];
	pthread_t thread;
	int empty_outblob;  /* knob: answer with nothing */
	int gen_step;       /* knob: generation advance per quote (1 = honest) */
	size_t quote_len;
	int served;
};

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void serve_entry(struct standin *s, const char *dir)
{
	char path[1024], gen[16];
	uint8_t rd[64], *quote;
	int fd;

	snprintf(path, sizeof path, "%s/inblob", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, rd, 64), 64);
	close(fd);
	quote = calloc(1, s->quote_len);
	assert_non_null(quote);
	quote[0] = 4;
	if (s->quote_len >= 632)
		memcpy(quote + 568, rd, 64);
	snprintf(path, sizeof path, "%s/generation", dir);
	snprintf(gen, sizeof gen, "%d\n", s->gen_step);
	/* The counter moves before the reader can look at it again. */
	write_file(path, gen, strlen(gen));
	snprintf(path, sizeof path, "%s/outblob", dir);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	if (!s->empty_outblob) {
		size_t off = 0;
		while (off < s->quote_len) {
			ssize_t w = write(fd, quote + off, s->quote_len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	close(fd);
	free(quote);
	s->served++;
}

static void *standin_main(void *arg)
{
	struct standin *s = arg;
	char buf[4096] __attribute__((aligned(8)));
	char dirs[8][512];
	int wds[8], nwd = 0;

	for (;;) {
		struct pollfd p[2] = {{s->ino, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
		ssize_t n;

		poll(p, 2, -1);
		if (p[1].revents)
			return NULL;
		n = read(s->ino, buf, sizeof buf);
		for (char *q = buf; n > 0 && q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)(void *)q;
			char path[1024];

			if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR) && nwd < 8) {
				snprintf(dirs[nwd], sizeof dirs[0], "%s/%s", s->root, ev->name);
				snprintf(path, sizeof path, "%s/generation", dirs[nwd]);
				write_file(path, "0\n", 2);
				snprintf(path, sizeof path, "%s/outblob", dirs[nwd]);
				mkfifo(path, 0600);
				wds[nwd] = inotify_add_watch(s->ino, dirs[nwd], IN_CLOSE_WRITE);
				snprintf(path, sizeof path, "%s/inblob", dirs[nwd]);
				write_file(path, "", 0);
				nwd++;
			} else if ((ev->mask & IN_CLOSE_WRITE) &&
				   strcmp(ev->name, "inblob") == 0) {
				for (int i = 0; i < nwd; i++) {
					if (wds[i] == ev->wd) {
						snprintf(path, sizeof path, "%s/inblob", dirs[i]);
						struct stat st;
						if (stat(path, &st) == 0 && st.st_size == 64)
							serve_entry(s, dirs[i]);
					}
				}
			}
			q += sizeof *ev + ev->len;
		}
	}
}

static int standin_setup(void **state)
{
	struct standin *s = calloc(1, sizeof *s);

	snprintf(s->root, sizeof s->root, "/tmp/dd-tsm-XXXXXX");
	if (mkdtemp(s->root) == NULL)
		return -1;
	s->gen_step = 1;
	s->quote_len = QUOTE_LEN;
	s->ino = inotify_init1(IN_CLOEXEC);
	inotify_add_watch(s->ino, s->root, IN_CREATE);
	if (pipe(s->stop_pipe) != 0)
		return -1;
	pthread_create(&s->thread, NULL, standin_main, s);
	*state = s;
	return 0;
}

static int standin_teardown(void **state)
{
	struct standin *s = *state;

	(void)!write(s->stop_pipe[1], "x", 1);
	pthread_join(s->thread, NULL);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	close(s->ino);
	rmdir(s->root);
	free(s);
	return 0;
}


#endif
