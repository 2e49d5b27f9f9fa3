/*
 * test_sessiond_history.c: the transcript store on a temporary directory:
 * appends, file modes, segment rotation, the per-session and total caps,
 * a restart re-reading what is on disk, replay with paging, malformed
 * ids and names, and allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "sessiond/history.h"

#define A "11111111-2222-4333-8444-555555555555"
#define B "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

typedef struct fx {
	char dir[64];
	dd_hist_opts o;
	dd_hist *h;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/dd-hist-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->o.dir = f->dir;
	f->o.segment_bytes = 1000;
	f->o.session_bytes = 4000;
	f->o.max_bytes = 10000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[128];

	dd_hist_free(f->h);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void reopen(fx *f)
{
	char why[256];

	dd_hist_free(f->h);
	f->h = NULL;
	assert_int_equal(dd_hist_open(&f->o, &f->h, why, sizeof why), DD_OK);
}

/* A line of exactly n bytes (newline excluded) carrying tag. */
static void put(fx *f, const char *id, int tag, size_t n)
{
	char line[2048];

	assert_true(n < sizeof line && n >= 8);
	memset(line, 'x', n);
	snprintf(line, 8, "%06d", tag);
	line[6] = 'x';
	assert_int_equal(dd_hist_append(f->h, id, line, n), DD_OK);
}

/* Replays everything, page by page; returns the tags in order. */
static size_t replay_all(fx *f, const char *id, size_t page, int *tags,
			 size_t max, int *truncated)
{
	uint64_t cursor = 0, next;
	size_t n = 0;
	json_t *recs;

	do {
		recs = json_array();
		assert_int_equal(dd_hist_replay(f->h, id, cursor, page, recs,
						&next, truncated),
				 DD_OK);
		for (size_t i = 0; i < json_array_size(recs); i++) {
			const char *s =
				json_string_value(json_array_get(recs, i));

			assert_true(n < max);
			tags[n++] = (int)strtol(s, NULL, 10);
		}
		json_decref(recs);
		cursor = next;
	} while (next != 0);
	return n;
}

static void test_append_replay(void **state)
{
	fx *f = *state;
	int tags[64], trunc;
	char path[256];
	struct stat st;
	size_t n;

	reopen(f);
	for (int i = 0; i < 5; i++)
		put(f, A, i, 100);
	n = replay_all(f, A, 1 << 20, tags, 64, &trunc);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tags[i], i);
	assert_false(trunc);
	/* Small pages: the same records, in order, each exactly once. */
	n = replay_all(f, A, 150, tags, 64, &trunc);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tags[i], i);
	snprintf(path, sizeof path, "%s/%s.0.log.enc", f->dir, A);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 5 * 101);
	assert_int_equal(dd_hist_bytes(f->h), 5 * 101);
	{
		json_t *recs = json_array();
		uint64_t next;

		assert_int_equal(dd_hist_replay(f->h, B, 0, 1 << 20, recs,
						&next, &trunc),
				 DD_ERR_NOT_FOUND);
		assert_int_equal(dd_hist_replay(f->h, A, 77ull << 32, 1 << 20,
						recs, &next, &trunc),
				 DD_ERR_INVALID);
		json_decref(recs);
	}
}

static void test_rotation(void **state)
{
	fx *f = *state;
	int tags[64], trunc;
	char path[256];
	size_t n;

	reopen(f);
	/* 9 lines of 300 + 1 bytes: three per 1000-byte segment. */
	for (int i = 0; i < 9; i++)
		put(f, A, i, 300);
	for (int s = 0; s < 3; s++) {
		snprintf(path, sizeof path, "%s/%s.%d.log.enc", f->dir, A, s);
		assert_int_equal(access(path, F_OK), 0);
	}
	/* Past 4000 bytes for one session: the oldest segment goes. */
	for (int i = 9; i < 15; i++)
		put(f, A, i, 300);
	snprintf(path, sizeof path, "%s/%s.0.log.enc", f->dir, A);
	assert_int_equal(access(path, F_OK), -1);
	assert_true(dd_hist_bytes(f->h) <= f->o.session_bytes);
	n = replay_all(f, A, 1 << 20, tags, 64, &trunc);
	assert_true(trunc);
	assert_int_equal(tags[n - 1], 14);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(tags[i], tags[i - 1] + 1);
}

static void test_total_cap(void **state)
{
	fx *f = *state;
	json_t *list;
	int tags[64], trunc;
	char path[256];

	f->o.max_bytes = 6000;
	reopen(f);
	/* A is written first and then left: it is what goes. */
	for (int i = 0; i < 12; i++)
		put(f, A, i, 300);
	dd_hist_done(f->h, A);
	sleep(1); /* updated_at has a one-second grain */
	for (int i = 0; i < 30; i++)
		put(f, B, 100 + i, 300);
	assert_true(dd_hist_bytes(f->h) <= f->o.max_bytes);
	snprintf(path, sizeof path, "%s/%s.0.log.enc", f->dir, A);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s/%s.9.log.enc", f->dir, B);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(dd_hist_list(f->h, &list), DD_OK);
	/* B is newest, so listed first; it still has all it may keep. */
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(list, 0), "id")),
			    B);
	json_decref(list);
	assert_int_equal(replay_all(f, B, 1 << 20, tags, 64, &trunc) > 0, 1);
}

static void test_restart(void **state)
{
	fx *f = *state;
	json_t *list;
	int tags[64], trunc;
	char path[256];
	FILE *junk;

	reopen(f);
	for (int i = 0; i < 7; i++)
		put(f, A, i, 300);
	put(f, B, 50, 100);
	/* Names that are not transcripts are left alone. */
	snprintf(path, sizeof path, "%s/notes.txt", f->dir);
	junk = fopen(path, "w");
	assert_non_null(junk);
	fclose(junk);
	snprintf(path, sizeof path, "%s/%s.x.log.enc", f->dir, A);
	junk = fopen(path, "w");
	assert_non_null(junk);
	fclose(junk);
	reopen(f);
	assert_int_equal(dd_hist_list(f->h, &list), DD_OK);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	assert_int_equal(replay_all(f, A, 1 << 20, tags, 64, &trunc), 7);
	assert_int_equal(tags[6], 6);
	/* Appending after a restart goes on in the last segment. */
	put(f, A, 7, 300);
	assert_int_equal(replay_all(f, A, 1 << 20, tags, 64, &trunc), 8);
	assert_int_equal(tags[7], 7);
	snprintf(path, sizeof path, "%s/notes.txt", f->dir);
	assert_int_equal(access(path, F_OK), 0);
}

static void test_refusals(void **state)
{
	fx *f = *state;
	dd_hist_opts bad = f->o;
	dd_hist *h = NULL;
	char why[256];

	reopen(f);
	assert_int_equal(dd_hist_append(f->h, "../../etc/passwd", "x", 1),
			 DD_ERR_INVALID);
	assert_int_equal(dd_hist_append(f->h, A "0", "x", 1), DD_ERR_INVALID);
	assert_int_equal(dd_hist_append(f->h, "11111111-2222-4333-8444-"
					"55555555555G", "x", 1),
			 DD_ERR_INVALID);
	assert_int_equal(dd_hist_append(f->h, A, "a\nb", 3), DD_ERR_INVALID);
	assert_int_equal(dd_hist_append(f->h, A, "", 0), DD_ERR_INVALID);
	assert_true(dd_hist_id_ok(A, strlen(A)));
	assert_false(dd_hist_id_ok("11111111-2222-4333-8444-55555555555A",
				   36));
	bad.segment_bytes = 3000; /* more than half the session cap */
	assert_int_equal(dd_hist_open(&bad, &h, why, sizeof why),
			 DD_ERR_CONFIG);
	assert_null(h);
}

static void test_alloc_failures(void **state)
{
	fx *f = *state;
	unsigned long n, used;
	char why[256];
	json_t *list;
	dd_err_t rc;

	reopen(f);
	for (int i = 0; i < 4; i++)
		put(f, A, i, 300);
	dd_hist_free(f->h);
	f->h = NULL;
	for (n = 1;; n++) {
		dd_hist *h = NULL;

		list = NULL;
		dd_alloc_fail_at(n);
		rc = dd_hist_open(&f->o, &h, why, sizeof why);
		if (rc == DD_OK)
			rc = dd_hist_append(h, B, "line", 4);
		if (rc == DD_OK)
			rc = dd_hist_list(h, &list);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		json_decref(list);
		dd_hist_free(h);
		if (used < n)
			break;
	}
	assert_int_equal(rc, DD_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_total_cap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failures, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
