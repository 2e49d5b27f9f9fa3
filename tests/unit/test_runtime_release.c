/*
 * test_runtime_release.c: github_release served from a local directory
 * (tests/data/releases): digests, symlinks that stay inside or leave,
 * the wrong kind of file, caps, cancellation, the thread-pool form, and
 * cleanup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/strutil.h"
#include "runtime/release.h"

#define HELLO_SHA \
	"2e1baaa83a9ab980c7a73d4c65f61343466df4cb93e94d0294822a4038e7d79b"

typedef struct fx {
	char releases[4096];
	char tmp[256];
	char dest[512];
	int n;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	const char *data = getenv("DD_TEST_DATA");

	assert_non_null(f);
	assert_non_null(data);
	snprintf(f->releases, sizeof f->releases, "%s/releases", data);
	snprintf(f->tmp, sizeof f->tmp, "/tmp/dd-release-test-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->tmp);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A fresh destination directory name for each install. */
static const char *dest(fx *f)
{
	snprintf(f->dest, sizeof f->dest, "%s/d%d", f->tmp, f->n++);
	return f->dest;
}

static dd_rt_release rel(const char *tag, const char *asset,
			 const char *rename, const char *sha)
{
	dd_rt_release r;

	memset(&r, 0, sizeof r);
	r.owner = (char *)(uintptr_t)"acme";
	r.repo = (char *)(uintptr_t)"hello";
	r.tag = (char *)(uintptr_t)tag;
	r.asset = (char *)(uintptr_t)asset;
	r.rename = (char *)(uintptr_t)rename;
	if (sha != NULL) {
		assert_int_equal(dd_hex_decode(sha, 64, r.sha256, 32), DD_OK);
		r.has_sha256 = 1;
	}
	return r;
}

static dd_err_t install(fx *f, const char *dir, const dd_rt_release *r,
			uint64_t max, char *path, char *why)
{
	return dd_rt_release_install(dir, dest(f), r, max, NULL, path, 4096,
				     why, 512);
}

static void installs_a_verified_copy(void **state)
{
	fx *f = *state;
	dd_rt_release r = rel("v1", "hello", NULL, HELLO_SHA);
	char path[4096], why[512], want[4200];
	struct stat st;

	assert_int_equal(install(f, f->releases, &r, 1 << 20, path, why),
			 DD_OK);
	snprintf(want, sizeof want, "%s/hello", f->dest);
	assert_string_equal(path, want);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(f->dest, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* No digest given: installed all the same. Tagless is "latest". */
	r = rel(NULL, "hello", "hi", NULL);
	assert_int_equal(install(f, f->releases, &r, 1 << 20, path, why),
			 DD_OK);
	snprintf(want, sizeof want, "%s/hi", f->dest);
	assert_string_equal(path, want);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(access(path, X_OK), 0);
	/* Cleanup takes the copy, the link and the directory. */
	dd_rt_remove_dir(f->dest);
	assert_int_equal(access(f->dest, F_OK), -1);
	dd_rt_remove_dir(f->dest); /* gone already: no harm */
}

static void refusals(void **state)
{
	fx *f = *state;
	dd_rt_release r;
	char path[4096], why[512], dir[9000], link[9200];

	r = rel("v1", "hello", NULL,
		"00000000000000000000000000000000"
		"00000000000000000000000000000000");
	assert_int_equal(install(f, f->releases, &r, 1 << 20, path, why),
			 DD_ERR_CRYPTO);
	assert_non_null(strstr(why, "sha256 mismatch"));
	assert_non_null(strstr(why, HELLO_SHA));
	assert_string_equal(path, "");
	/* Nothing of a refused install is left. */
	assert_int_equal(access(f->dest, F_OK), -1);

	r = rel("v2", "hello", NULL, NULL);
	assert_int_equal(install(f, f->releases, &r, 1 << 20, path, why),
			 DD_ERR_NOT_FOUND);
	assert_non_null(strstr(why, "not in the local releases"));

	r = rel("v1", "hello", NULL, NULL);
	assert_int_equal(install(f, f->releases, &r, 10, path, why),
			 DD_ERR_TOO_LARGE);

	assert_int_equal(install(f, "/nonexistent-dir", &r, 1 << 20, path,
				 why), DD_ERR_IO);

	/* A directory where the asset should be. */
	snprintf(dir, sizeof dir, "%s/rels/acme/hello/v1/tool", f->tmp);
	snprintf(link, sizeof link, "mkdir -p '%s'", dir);
	assert_int_equal(system(link), 0);
	snprintf(dir, sizeof dir, "%s/rels", f->tmp);
	r = rel("v1", "tool", NULL, NULL);
	assert_int_equal(install(f, dir, &r, 1 << 20, path, why),
			 DD_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "not a regular file"));

	/* Symlinks may not leave the releases directory. */
	snprintf(link, sizeof link, "%s/rels/acme/hello/v1/escape", f->tmp);
	assert_int_equal(symlink("/etc/hostname", link), 0);
	r = rel("v1", "escape", NULL, NULL);
	assert_int_equal(install(f, dir, &r, 1 << 20, path, why),
			 DD_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "outside the releases directory"));
	/* A directory outside that does hold the asset. */
	snprintf(dir, sizeof dir, "mkdir -p '%s/outside' && cp '%s/acme/hello"
		 "/v1/hello' '%s/outside/'", f->tmp, f->releases, f->tmp);
	assert_int_equal(system(dir), 0);
	snprintf(dir, sizeof dir, "%s/outside", f->tmp);
	snprintf(link, sizeof link, "%s/rels/acme/hello/v2", f->tmp);
	assert_int_equal(symlink(dir, link), 0);
	snprintf(dir, sizeof dir, "%s/rels", f->tmp);
	r = rel("v2", "hello", NULL, NULL);
	assert_int_equal(install(f, dir, &r, 1 << 20, path, why),
			 DD_ERR_FORBIDDEN);

	/* The destination must be new. */
	r = rel("v1", "hello", NULL, NULL);
	assert_int_equal(dd_rt_release_install(f->releases, f->tmp, &r,
					       1 << 20, NULL, path, 4096, why,
					       512), DD_ERR_IO);
}

static void cancelled(void **state)
{
	fx *f = *state;
	dd_rt_release r = rel("v1", "hello", NULL, NULL);
	char path[4096], why[512];
	atomic_int stop;

	atomic_init(&stop, 1);
	assert_int_equal(dd_rt_release_install(f->releases, dest(f), &r,
					       1 << 20, &stop, path, 4096,
					       why, 512), DD_ERR_CANCELLED);
	assert_int_equal(access(f->dest, F_OK), -1);
}

typedef struct res {
	int called;
	dd_err_t err;
	char path[4096];
} res;

static void on_fetched(dd_err_t err, const char *path, const char *why,
		       void *ud)
{
	res *r = ud;

	(void)why;
	r->called++;
	r->err = err;
	snprintf(r->path, sizeof r->path, "%s", path ? path : "");
}

static void on_thread_pool(void **state)
{
	fx *f = *state;
	dd_rt_release r = rel("v1", "hello", NULL, HELLO_SHA);
	uv_loop_t loop;
	dd_rt_fetch *job = NULL, *gone = NULL;
	res a = {0}, b = {0};
	char second[600];

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dd_rt_fetch_start(&loop, f->releases, dest(f), &r,
					   1 << 20, on_fetched, &a, &job),
			 DD_OK);
	snprintf(second, sizeof second, "%s", dest(f));
	assert_int_equal(dd_rt_fetch_start(&loop, f->releases, second, &r,
					   1 << 20, on_fetched, &b, &gone),
			 DD_OK);
	dd_rt_fetch_cancel(gone);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.called, 1);
	assert_int_equal(a.err, DD_OK);
	assert_int_equal(access(a.path, X_OK), 0);
	assert_int_equal(b.called, 0);
	/* A cancelled job cleans up after itself. */
	assert_int_equal(access(second, F_OK), -1);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* R17: the loop-thread part (the job) fails cleanly at every allocation. */
static void torture(void **state)
{
	fx *f = *state;
	dd_rt_release r = rel("v1", "hello", "alias", HELLO_SHA);
	unsigned long n, used;
	dd_rt_fetch *job;
	uv_loop_t loop;
	dd_err_t rc;
	res a;

	assert_int_equal(uv_loop_init(&loop), 0);
	for (n = 1;; n++) {
		memset(&a, 0, sizeof a);
		job = NULL;
		dd_alloc_fail_at(n);
		rc = dd_rt_fetch_start(&loop, f->releases, dest(f), &r, 1 << 20,
				       on_fetched, &a, &job);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(a.called, rc == DD_OK ? 1 : 0);
		if (used < n)
			break;
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(installs_a_verified_copy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(on_thread_pool, setup,
						teardown),
		cmocka_unit_test_setup_teardown(torture, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
