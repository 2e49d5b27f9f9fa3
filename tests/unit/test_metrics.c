/*
 * test_metrics.c: host metrics. The parsers on fixture files from
 * tests/data/proc/<case>/ and on inline edge cases; the sampler against
 * fixture roots with a fake statvfs, on a temporary root rewritten
 * between samples, on a real loop, on the real /proc, and under
 * allocation failure.
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
#include <uv.h>

#include "agent/metrics.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

/* ---- helpers ---- */

static void data_path(char *out, size_t cap, const char *rel)
{
	const char *dir = getenv("DD_TEST_DATA");

	snprintf(out, cap, "%s/proc/%s", dir != NULL ? dir : "tests/data",
		 rel);
}

/* Whole fixture file, NUL-terminated; caller frees with free(). */
static char *slurp(const char *rel, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf = malloc(1 << 20);

	assert_non_null(buf);
	data_path(path, sizeof path, rel);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *dir, const char *rel, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
}

static void make_root(char *dir, size_t cap)
{
	char path[1024];

	snprintf(dir, cap, "/tmp/dd-metrics-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/proc", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/proc/net", dir);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void remove_root(const char *dir)
{
	static const char *const files[] = {
		"proc/stat", "proc/meminfo", "proc/loadavg", "proc/uptime",
		"proc/net/dev", "proc/mounts", "proc/net", "proc",
	};
	char path[1024];

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		(void)remove(path);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* statvfs stand-in: a table keyed by the mount point under the root. */
struct fake_fs {
	const char *mount;
	uint64_t bsize, blocks, avail;
	int fail;
};

static const struct fake_fs fake_table[] = {
	{"/", 4096, 1000, 250, 0},
	{"/boot/efi", 512, 100, 40, 0},
	{"/data", 4096, 2000, 2000, 0},
	{"/var/lib/docker/overlay2/abc/merged", 4096, 1000, 500, 0},
	{"/mnt/my disk", 1024, 10, 5, 0},
	{"/run/media/usb", 4096, 10, 0, 0},
	{"/sysroot", 4096, 1, 1, 0},
	{"/proc-data", 4096, 1, 0, 0},
	{"/mnt/image", 4096, 5, 5, 0},
	{"/mnt/empty", 4096, 0, 0, 0},
	{"/mnt/gone", 4096, 9, 9, 1},
	{"/mnt/huge", 1ull << 32, 1ull << 40, 1, 0},
};

struct fake_ctx {
	const char *root; /* prefix the sampler puts before mount points */
	unsigned calls;
};

static dd_err_t fake_statvfs(void *ud, const char *path,
			     dd_metrics_fs_usage *out)
{
	struct fake_ctx *c = ud;
	size_t rl = strlen(c->root);
	const char *mount;

	c->calls++;
	assert_memory_equal(path, c->root, rl);
	mount = path + rl;
	for (size_t i = 0; i < sizeof fake_table / sizeof fake_table[0]; i++) {
		if (strcmp(fake_table[i].mount, mount) != 0)
			continue;
		if (fake_table[i].fail)
			return DD_ERR_IO;
		out->block_size = fake_table[i].bsize;
		out->blocks = fake_table[i].blocks;
		out->blocks_avail = fake_table[i].avail;
		return DD_OK;
	}
	return DD_ERR_NOT_FOUND;
}

static char *dump(const json_t *v)
{
	dd_buf b;
	char *s = NULL;
	size_t n;

	dd_buf_init(&b, 1 << 20);
	assert_int_equal(dd_json_append(&b, v), DD_OK);
	assert_int_equal(dd_buf_steal(&b, &s, &n), DD_OK);
	return s;
}

/* A sampler over tests/data/proc/<name> with the fake statvfs. */
static dd_metrics *fixture_sampler(uv_loop_t *loop, const char *name,
				   struct fake_ctx *fc, char *root,
				   size_t cap)
{
	dd_metrics_opts o = {0};
	dd_metrics *m = NULL;

	data_path(root, cap, name);
	fc->root = root;
	fc->calls = 0;
	o.root = root;
	o.statvfs_fn = fake_statvfs;
	o.statvfs_ctx = fc;
	assert_int_equal(dd_metrics_new(loop, &o, &m), DD_OK);
	return m;
}

static void close_free(uv_loop_t *loop, dd_metrics *m)
{
	dd_metrics_close(m);
	dd_metrics_close(m); /* idempotent */
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
	dd_metrics_free(m);
}

/* ---- /proc/stat ---- */

static dd_err_t stat_of(const char *text, dd_metrics_cpu_times *t)
{
	return dd_metrics_parse_stat(text, strlen(text), t);
}

static void stat_parse(void **state)
{
	dd_metrics_cpu_times t;
	size_t len;
	char *text;

	(void)state;
	text = slurp("basic/proc/stat", &len);
	assert_int_equal(dd_metrics_parse_stat(text, len, &t), DD_OK);
	assert_int_equal(t.total, 1000);
	assert_int_equal(t.idle, 850);
	/* The spec's worked example. */
	assert_int_equal(dd_metrics_cpu_lifetime(&t), 15);
	free(text);

	assert_int_equal(stat_of("cpu  10 20 30 40", &t), DD_OK);
	assert_int_equal(t.total, 100);
	assert_int_equal(dd_metrics_cpu_lifetime(&t), 60);
	assert_int_equal(stat_of("cpu\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\n",
				 &t), DD_OK);
	assert_int_equal(t.total, 66);
	assert_int_equal(t.idle, 4);
	assert_int_equal(stat_of("cpu  0 0 0 0\n", &t), DD_OK);
	assert_int_equal(dd_metrics_cpu_lifetime(&t), 0);
	assert_int_equal(stat_of("cpu  0 0 0 7\n", &t), DD_OK);
	assert_int_equal(dd_metrics_cpu_lifetime(&t), 0);

	assert_int_equal(stat_of("", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("\ncpu  1 2 3 4\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("cpu  1 2 3\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("cpu0 1 2 3 4\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("cpux 1 2 3 4\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("intr 1 2 3 4\ncpu 1 2 3 4\n", &t),
			 DD_ERR_INVALID);
	assert_int_equal(stat_of("cpu  1 2 x 4\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("cpu  1 -2 3 4\n", &t), DD_ERR_INVALID);
	assert_int_equal(stat_of("cpu  1 2 3 4 0x5\n", &t), DD_ERR_INVALID);
	assert_int_equal(t.total, 0); /* zeroed on failure */
	/* One field past 64 bits, and a sum past 64 bits. */
	assert_int_equal(stat_of("cpu  1 2 3 18446744073709551616\n", &t),
			 DD_ERR_RANGE);
	assert_int_equal(stat_of("cpu  1 2 3 4 99999999999999999999999\n",
				 &t), DD_ERR_RANGE);
	assert_int_equal(stat_of("cpu  18446744073709551615 0 0 1\n", &t),
			 DD_ERR_RANGE);
	assert_int_equal(stat_of("cpu  0 0 0 18446744073709551615\n", &t),
			 DD_OK);
	assert_int_equal(dd_metrics_cpu_lifetime(&t), 0);
}

static void cpu_interval(void **state)
{
	dd_metrics_cpu_times a = {1000, 850}, b = {1200, 900};
	dd_metrics_cpu_times big0 = {UINT64_MAX - 1000, UINT64_MAX - 2000};
	dd_metrics_cpu_times big1 = {UINT64_MAX - 800, UINT64_MAX - 1950};
	dd_metrics_cpu_times huge = {UINT64_MAX - 1, UINT64_MAX / 2};
	dd_metrics_cpu_times odd = {UINT64_MAX, UINT64_MAX / 2};
	dd_metrics_cpu_times zero = {0, 0};
	unsigned pct = 99;

	(void)state;
	/* 200 jiffies, 50 idle: 75 % busy, against 15 % since boot. */
	assert_int_equal(dd_metrics_cpu_interval(&a, &b, &pct), DD_OK);
	assert_int_equal(pct, 75);
	/* Near the top of the counter range the deltas are still exact. */
	assert_int_equal(dd_metrics_cpu_interval(&big0, &big1, &pct), DD_OK);
	assert_int_equal(pct, 75);
	/* idle * 100 past 64 bits is still the exact integer division. */
	assert_int_equal(dd_metrics_cpu_interval(&zero, &huge, &pct), DD_OK);
	assert_int_equal(pct, 50);
	assert_int_equal(dd_metrics_cpu_lifetime(&huge), 50);
	/* 49.999...% idle truncates to 49, as the spec's formula does. */
	assert_int_equal(dd_metrics_cpu_lifetime(&odd), 51);

	/* No time passed, wrap/reset, idle or total going backwards. */
	pct = 7;
	assert_int_equal(dd_metrics_cpu_interval(&a, &a, &pct), DD_ERR_RANGE);
	assert_int_equal(dd_metrics_cpu_interval(&b, &a, &pct), DD_ERR_RANGE);
	assert_int_equal(dd_metrics_cpu_interval(
				 &(dd_metrics_cpu_times){1000, 850},
				 &(dd_metrics_cpu_times){1100, 800}, &pct),
			 DD_ERR_RANGE);
	/* Idle grew more than the total: another field went backwards. */
	assert_int_equal(dd_metrics_cpu_interval(
				 &(dd_metrics_cpu_times){1000, 850},
				 &(dd_metrics_cpu_times){1010, 900}, &pct),
			 DD_ERR_RANGE);
	assert_int_equal(dd_metrics_cpu_interval(&big1, &big0, &pct),
			 DD_ERR_RANGE);
	assert_int_equal(pct, 7);
	/* Entirely idle and entirely busy intervals. */
	assert_int_equal(dd_metrics_cpu_interval(
				 &a, &(dd_metrics_cpu_times){1100, 950}, &pct),
			 DD_OK);
	assert_int_equal(pct, 0);
	assert_int_equal(dd_metrics_cpu_interval(
				 &a, &(dd_metrics_cpu_times){1100, 850}, &pct),
			 DD_OK);
	assert_int_equal(pct, 100);
}

/* ---- /proc/meminfo ---- */

static dd_err_t mem_of(const char *text, dd_metrics_mem *m)
{
	return dd_metrics_parse_meminfo(text, strlen(text), m);
}

static void meminfo_parse(void **state)
{
	dd_metrics_mem m;
	size_t len;
	char *text;

	(void)state;
	text = slurp("basic/proc/meminfo", &len);
	assert_int_equal(dd_metrics_parse_meminfo(text, len, &m), DD_OK);
	/* The spec example: 16387724 kB total, 831488 kB in use. */
	assert_int_equal(m.total_mb, 16003);
	assert_int_equal(m.used_mb, 812);
	assert_int_equal(m.swap_total_mb, 2047);
	assert_int_equal(m.swap_used_mb, 1024);
	free(text);

	/* No MemAvailable: free + buffers + cached + sreclaimable - shmem. */
	text = slurp("legacy/proc/meminfo", &len);
	assert_int_equal(dd_metrics_parse_meminfo(text, len, &m), DD_OK);
	assert_int_equal(m.total_mb, 1000);
	assert_int_equal(m.used_mb, 550);
	assert_int_equal(m.swap_total_mb, 0);
	assert_int_equal(m.swap_used_mb, 0);
	free(text);

	/* Subtraction happens in kB, truncation once at the end. */
	assert_int_equal(mem_of("MemTotal: 2047 kB\nMemAvailable: 1 kB\n",
				&m), DD_OK);
	assert_int_equal(m.total_mb, 1);
	assert_int_equal(m.used_mb, 1);
	/* More available than total (or free than swap): 0, not negative. */
	assert_int_equal(mem_of("MemTotal: 1024 kB\nMemAvailable: 4096 kB\n"
				"SwapTotal: 1024 kB\nSwapFree: 9999 kB\n", &m),
			 DD_OK);
	assert_int_equal(m.used_mb, 0);
	assert_int_equal(m.swap_used_mb, 0);
	/* Shmem larger than the rest: available saturates at 0. */
	assert_int_equal(mem_of("MemTotal: 4096 kB\nMemFree: 1 kB\n"
				"Shmem: 99999 kB\n", &m), DD_OK);
	assert_int_equal(m.used_mb, 4);
	/* The first line for a key wins; later repeats are ignored. */
	assert_int_equal(mem_of("MemTotal: 2048 kB\nMemTotal: 9999999 kB\n"
				"MemAvailable: 1024 kB\n", &m), DD_OK);
	assert_int_equal(m.total_mb, 2);
	assert_int_equal(m.used_mb, 1);
	/* A key must match whole; no unit is accepted, MB is not. */
	assert_int_equal(mem_of("MemTotalX: 2048 kB\nMemTotal: 3072\n"
				"MemAvailable: 2048 MB\n", &m), DD_OK);
	assert_int_equal(m.total_mb, 3);
	assert_int_equal(m.used_mb, 3);
	/* Values overflowing 64 bits are skipped, sums saturate. */
	assert_int_equal(mem_of("MemTotal: 99999999999999999999 kB\n"
				"MemTotal: 18446744073709551615 kB\n"
				"MemFree: 18446744073709551615 kB\n"
				"Cached: 5 kB\n", &m), DD_OK);
	assert_int_equal(m.total_mb, UINT64_MAX / 1024);
	assert_int_equal(m.used_mb, 0);

	/* Without MemTotal, swap is still reported. */
	text = slurp("malformed/proc/meminfo", &len);
	assert_int_equal(dd_metrics_parse_meminfo(text, len, &m),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(m.total_mb, 0);
	assert_int_equal(m.used_mb, 0);
	free(text);
	assert_int_equal(mem_of("SwapTotal: 2048 kB\nSwapFree: 1024 kB\n",
				&m), DD_ERR_NOT_FOUND);
	assert_int_equal(m.swap_total_mb, 2);
	assert_int_equal(m.swap_used_mb, 1);
	assert_int_equal(mem_of("", &m), DD_ERR_NOT_FOUND);
	assert_int_equal(mem_of(":::\n\n\n kB\nMemTotal:: 5 kB\n", &m),
			 DD_ERR_NOT_FOUND);
	assert_int_equal(mem_of("MemTotal: 5 kB extra\n", &m),
			 DD_ERR_NOT_FOUND);
}

/* ---- /proc/loadavg and /proc/uptime ---- */

static dd_err_t load_of(const char *text, double l[3])
{
	return dd_metrics_parse_loadavg(text, strlen(text), l);
}

static void loadavg_uptime_parse(void **state)
{
	double l[3];
	uint64_t up;
	size_t len;
	char *text;

	(void)state;
	text = slurp("basic/proc/loadavg", &len);
	assert_int_equal(dd_metrics_parse_loadavg(text, len, l), DD_OK);
	/* Exactly the doubles the decimal text denotes. */
	assert_true(l[0] == 0.12 && l[1] == 0.08 && l[2] == 0.02);
	free(text);
	assert_int_equal(load_of("1.12 12.34 999999.999999999 1/1 1", l),
			 DD_OK);
	assert_true(l[0] == 1.12 && l[1] == 12.34 && l[2] == 999999.999999999);
	assert_int_equal(load_of("3 0.5 0.1234567891234", l), DD_OK);
	assert_true(l[0] == 3.0 && l[1] == 0.5 && l[2] == 0.123456789);

	assert_int_equal(load_of("0.12 0.08", l), DD_ERR_INVALID);
	assert_true(l[0] == 0.0 && l[1] == 0.0 && l[2] == 0.0);
	assert_int_equal(load_of("", l), DD_ERR_INVALID);
	assert_int_equal(load_of("nan inf -1", l), DD_ERR_INVALID);
	assert_int_equal(load_of(".5 1 2", l), DD_ERR_INVALID);
	assert_int_equal(load_of("1. 1 2", l), DD_ERR_INVALID);
	assert_int_equal(load_of("1.2.3 1 2", l), DD_ERR_INVALID);
	assert_int_equal(load_of("1e3 1 2", l), DD_ERR_INVALID);
	assert_int_equal(load_of("1000001 1 2", l), DD_ERR_RANGE);
	assert_int_equal(load_of("1 1 99999999999999999999999.5", l),
			 DD_ERR_RANGE);
	assert_true(l[0] == 0.0);

	text = slurp("basic/proc/uptime", &len);
	assert_int_equal(dd_metrics_parse_uptime(text, len, &up), DD_OK);
	assert_int_equal(up, 5231);
	free(text);
	assert_int_equal(dd_metrics_parse_uptime("77", 2, &up), DD_OK);
	assert_int_equal(up, 77);
	assert_int_equal(dd_metrics_parse_uptime("up 5", 4, &up),
			 DD_ERR_INVALID);
	assert_int_equal(up, 0);
	assert_int_equal(dd_metrics_parse_uptime("", 0, &up), DD_ERR_INVALID);
	assert_int_equal(dd_metrics_parse_uptime("-5.0 1", 6, &up),
			 DD_ERR_INVALID);
	assert_int_equal(dd_metrics_parse_uptime("5.x 1", 5, &up),
			 DD_ERR_INVALID);
	assert_int_equal(dd_metrics_parse_uptime("99999999999999999999.5",
						 22, &up), DD_ERR_RANGE);
}

/* ---- /proc/net/dev ---- */

static void net_dev_parse(void **state)
{
	dd_metrics_net *n = NULL;
	size_t count, len;
	char *text, big[16384];
	int off = 0;

	(void)state;
	text = slurp("basic/proc/net/dev", &len);
	assert_int_equal(dd_metrics_parse_net_dev(text, len, &n, &count),
			 DD_OK);
	assert_int_equal(count, 3); /* lo left out */
	assert_string_equal(n[0].iface, "eth0");
	assert_int_equal(n[0].rx_bytes, 123456);
	assert_int_equal(n[0].tx_bytes, 654321);
	assert_string_equal(n[1].iface, "docker0");
	assert_string_equal(n[2].iface, "wg0");
	assert_true(n[2].rx_bytes == UINT64_MAX);
	assert_true(n[2].tx_bytes == 1ull << 63);
	dd_free(n);
	free(text);

	/* Old kernels: no space after the colon. */
	text = slurp("legacy/proc/net/dev", &len);
	assert_int_equal(dd_metrics_parse_net_dev(text, len, &n, &count),
			 DD_OK);
	assert_int_equal(count, 1);
	assert_string_equal(n[0].iface, "eth0");
	assert_int_equal(n[0].rx_bytes, 987654321);
	assert_int_equal(n[0].tx_bytes, 123456789);
	dd_free(n);
	free(text);

	/* No colon, too few fields, name too long, not a number, no name. */
	text = slurp("malformed/proc/net/dev", &len);
	assert_int_equal(dd_metrics_parse_net_dev(text, len, &n, &count),
			 DD_OK);
	assert_int_equal(count, 0);
	assert_null(n);
	free(text);

	static const char bad[] =
		"e0: 1 0 0 0 0 0 0 0 99999999999999999999999\n"
		"e\xff: 1 0 0 0 0 0 0 0 2\n"
		"e\0x: 1 0 0 0 0 0 0 0 2\n"
		"e 1: 1 0 0 0 0 0 0 0 2\n"
		"abcdefghijklmno: 5 0 0 0 0 0 0 0 6\n"
		"abcdefghijklmnop: 5 0 0 0 0 0 0 0 6\n"
		"lo0: 7 0 0 0 0 0 0 0 8";
	assert_int_equal(dd_metrics_parse_net_dev(bad, sizeof bad - 1, &n,
						  &count), DD_OK);
	assert_int_equal(count, 2);
	assert_string_equal(n[0].iface, "abcdefghijklmno");
	assert_string_equal(n[1].iface, "lo0"); /* only "lo" itself goes */
	assert_int_equal(n[1].tx_bytes, 8);
	dd_free(n);

	/* The list is capped. */
	for (int i = 0; i < 100; i++)
		off += snprintf(big + off, sizeof big - (size_t)off,
				"eth%d: %d 0 0 0 0 0 0 0 %d\n", i, i, i);
	assert_int_equal(dd_metrics_parse_net_dev(big, (size_t)off, &n,
						  &count), DD_OK);
	assert_int_equal(count, DD_METRICS_MAX_NETS);
	assert_string_equal(n[63].iface, "eth63");
	dd_free(n);
}

/* ---- /proc/mounts ---- */

static void mounts_parse(void **state)
{
	static const char *const want[][2] = {
		{"/", "ext4"},
		{"/boot/efi", "vfat"},
		{"/data", "ext4"},
		{"/data", "xfs"},
		{"/var/lib/docker/overlay2/abc/merged", "overlay"},
		{"/mnt/my disk", "ext4"},
		{"/run/media/usb", "vfat"},
		{"/sysroot", "ext4"},
		{"/proc-data", "ext4"},
		{"/mnt/image", "ext4"},
		{"/mnt/empty", "ext4"},
		{"/mnt/gone", "ext4"},
		{"/mnt/huge", "ext4"},
	};
	dd_metrics_disk *d = NULL;
	size_t count, len;
	char *text, *big;
	size_t off = 0;

	(void)state;
	text = slurp("basic/proc/mounts", &len);
	assert_int_equal(dd_metrics_parse_mounts(text, len, &d, &count),
			 DD_OK);
	assert_int_equal(count, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < count; i++) {
		assert_string_equal(d[i].mount, want[i][0]);
		assert_string_equal(d[i].fstype, want[i][1]);
		assert_int_equal(d[i].total_bytes, 0);
	}
	dd_metrics_disks_free(d, count);
	free(text);

	text = slurp("malformed/proc/mounts", &len);
	assert_int_equal(dd_metrics_parse_mounts(text, len, &d, &count),
			 DD_OK);
	assert_int_equal(count, 0);
	assert_null(d);
	free(text);

	/* Escapes: \134 is a backslash; a lone one is kept; \400 is not. */
	static const char esc[] =
		"a /x\\134y ext4 rw 0 0\n"
		"a /t\\011ab ext4 rw 0 0\n"
		"a /lone\\ ext4 rw 0 0\n"
		"a /short\\04 ext4 rw 0 0\n"
		"a /big\\400 ext4 rw 0 0\n"
		"a /sys\\057x ext4 rw 0 0\n"
		"a /f e\\170t4 rw 0 0\n"
		"a /g tmp\\146s rw";
	assert_int_equal(dd_metrics_parse_mounts(esc, sizeof esc - 1, &d,
						 &count), DD_OK);
	assert_int_equal(count, 5);
	assert_string_equal(d[0].mount, "/x\\y");
	assert_string_equal(d[1].mount, "/t\tab");
	assert_string_equal(d[2].mount, "/lone\\");
	assert_string_equal(d[3].mount, "/short\\04");
	/* Filters apply to the decoded text: /sys/x and tmpfs are gone. */
	assert_string_equal(d[4].mount, "/f");
	assert_string_equal(d[4].fstype, "ext4");
	dd_metrics_disks_free(d, count);

	/* The list is capped. */
	big = malloc(64 * 1024);
	assert_non_null(big);
	for (int i = 0; i < 300; i++)
		off += (size_t)snprintf(big + off, 64 * 1024 - off,
					"/dev/x /m%d ext4 rw 0 0\n", i);
	assert_int_equal(dd_metrics_parse_mounts(big, off, &d, &count), DD_OK);
	assert_int_equal(count, DD_METRICS_MAX_MOUNTS);
	assert_string_equal(d[255].mount, "/m255");
	dd_metrics_disks_free(d, count);
	free(big);
	dd_metrics_disks_free(NULL, 3);
}

/* ---- the sampler on fixture roots ---- */

static const char basic_json[] =
	"{\"cpu_percent\":15,\"memory_used_mb\":812,"
	"\"memory_total_mb\":16003,\"swap_used_mb\":1024,"
	"\"swap_total_mb\":2047,\"load_1m\":0.12,\"load_5m\":0.08,"
	"\"load_15m\":0.02,\"system_uptime_secs\":5231,"
	"\"nets\":[{\"iface\":\"eth0\",\"rx_bytes\":123456,"
	"\"tx_bytes\":654321},"
	"{\"iface\":\"docker0\",\"rx_bytes\":0,\"tx_bytes\":0},"
	"{\"iface\":\"wg0\",\"rx_bytes\":9223372036854775807,"
	"\"tx_bytes\":9223372036854775807}],"
	"\"disks\":["
	"{\"mount\":\"/\",\"fstype\":\"ext4\",\"used_bytes\":3072000,"
	"\"total_bytes\":4096000},"
	"{\"mount\":\"/boot/efi\",\"fstype\":\"vfat\",\"used_bytes\":30720,"
	"\"total_bytes\":51200},"
	"{\"mount\":\"/data\",\"fstype\":\"ext4\",\"used_bytes\":0,"
	"\"total_bytes\":8192000},"
	"{\"mount\":\"/var/lib/docker/overlay2/abc/merged\","
	"\"fstype\":\"overlay\",\"used_bytes\":2048000,"
	"\"total_bytes\":4096000},"
	"{\"mount\":\"/mnt/my disk\",\"fstype\":\"ext4\",\"used_bytes\":5120,"
	"\"total_bytes\":10240},"
	"{\"mount\":\"/run/media/usb\",\"fstype\":\"vfat\","
	"\"used_bytes\":40960,\"total_bytes\":40960},"
	"{\"mount\":\"/sysroot\",\"fstype\":\"ext4\",\"used_bytes\":0,"
	"\"total_bytes\":4096},"
	"{\"mount\":\"/proc-data\",\"fstype\":\"ext4\",\"used_bytes\":4096,"
	"\"total_bytes\":4096},"
	"{\"mount\":\"/mnt/image\",\"fstype\":\"ext4\",\"used_bytes\":0,"
	"\"total_bytes\":20480},"
	"{\"mount\":\"/mnt/huge\",\"fstype\":\"ext4\","
	"\"used_bytes\":9223372036854775807,"
	"\"total_bytes\":9223372036854775807}]}";

static void sampler_basic(void **state)
{
	uv_loop_t loop;
	struct fake_ctx fc;
	char root[1024], *s;
	dd_metrics *m;
	const dd_metrics_snapshot *snap;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	m = fixture_sampler(&loop, "basic", &fc, root, sizeof root);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->seq, 0);
	assert_int_equal(dd_metrics_status(m), DD_OK);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->seq, 1);
	assert_int_equal(snap->sources, 0x3f);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_SINCE_BOOT);
	/* The repeated /data is not asked about again. */
	assert_int_equal(fc.calls, 12);
	assert_int_equal(dd_metrics_json(m, &j), DD_OK);
	s = dump(j);
	assert_string_equal(s, basic_json);
	dd_free(s);
	json_decref(j);

	/* Same counters again: no time passed, so since boot it stays. */
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->seq, 2);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_SINCE_BOOT);
	assert_int_equal(snap->cpu_percent, 15);
	close_free(&loop, m);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Every key of the spec, with its JSON type, in the spec's order. */
static void json_shape(void **state)
{
	static const struct {
		const char *key;
		json_type type;
	} keys[] = {
		{"cpu_percent", JSON_INTEGER},
		{"memory_used_mb", JSON_INTEGER},
		{"memory_total_mb", JSON_INTEGER},
		{"swap_used_mb", JSON_INTEGER},
		{"swap_total_mb", JSON_INTEGER},
		{"load_1m", JSON_REAL},
		{"load_5m", JSON_REAL},
		{"load_15m", JSON_REAL},
		{"system_uptime_secs", JSON_INTEGER},
		{"nets", JSON_ARRAY},
		{"disks", JSON_ARRAY},
	};
	static const char *const net_keys[] = {"iface", "rx_bytes",
					       "tx_bytes"};
	static const char *const disk_keys[] = {"mount", "fstype", "used_bytes",
						"total_bytes"};
	static const char *const cases[] = {"basic", "legacy", "malformed",
					    "truncated", "no-such-case"};
	uv_loop_t loop;
	struct fake_ctx fc;
	char root[1024];
	dd_metrics *m;
	json_t *j, *v, *item;
	const char *k;
	size_t i, idx;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		m = fixture_sampler(&loop, cases[c], &fc, root, sizeof root);
		assert_int_equal(dd_metrics_sample(m), DD_OK);
		assert_int_equal(dd_metrics_json(m, &j), DD_OK);
		assert_int_equal(json_object_size(j),
				 sizeof keys / sizeof keys[0]);
		i = 0;
		json_object_foreach(j, k, v) {
			assert_string_equal(k, keys[i].key);
			assert_int_equal(json_typeof(v), keys[i].type);
			i++;
		}
		json_array_foreach(json_object_get(j, "nets"), idx, item) {
			assert_int_equal(json_object_size(item), 3);
			for (i = 0; i < 3; i++)
				assert_non_null(json_object_get(item,
								net_keys[i]));
			assert_true(json_is_string(json_object_get(item,
								   "iface")));
			assert_true(json_is_integer(json_object_get(item,
								    "rx_bytes")));
		}
		json_array_foreach(json_object_get(j, "disks"), idx, item) {
			assert_int_equal(json_object_size(item), 4);
			for (i = 0; i < 4; i++)
				assert_non_null(json_object_get(item,
								disk_keys[i]));
			assert_true(json_is_string(json_object_get(item,
								   "fstype")));
			assert_true(json_is_integer(json_object_get(
				item, "total_bytes")));
		}
		json_decref(j);
		close_free(&loop, m);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void json_of(dd_metrics *m, const char *want)
{
	json_t *j = NULL;
	char *s;

	assert_int_equal(dd_metrics_json(m, &j), DD_OK);
	s = dump(j);
	assert_string_equal(s, want);
	dd_free(s);
	json_decref(j);
}

static void sampler_degraded(void **state)
{
	uv_loop_t loop;
	struct fake_ctx fc;
	char root[1024];
	dd_metrics *m;
	const dd_metrics_snapshot *snap;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);

	/* Missing root: every field zero or empty, nothing fails. */
	m = fixture_sampler(&loop, "no-such-case", &fc, root, sizeof root);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->sources, 0);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_NONE);
	json_of(m, "{\"cpu_percent\":0,\"memory_used_mb\":0,"
		   "\"memory_total_mb\":0,\"swap_used_mb\":0,"
		   "\"swap_total_mb\":0,\"load_1m\":0.0,\"load_5m\":0.0,"
		   "\"load_15m\":0.0,\"system_uptime_secs\":0,\"nets\":[],"
		   "\"disks\":[]}");
	close_free(&loop, m);

	/* Old kernel: 4 cpu fields, no MemAvailable, no /proc/uptime. */
	m = fixture_sampler(&loop, "legacy", &fc, root, sizeof root);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->sources, DD_METRICS_SRC_STAT |
						DD_METRICS_SRC_MEMINFO |
						DD_METRICS_SRC_LOADAVG |
						DD_METRICS_SRC_NET_DEV |
						DD_METRICS_SRC_MOUNTS);
	json_of(m, "{\"cpu_percent\":60,\"memory_used_mb\":550,"
		   "\"memory_total_mb\":1000,\"swap_used_mb\":0,"
		   "\"swap_total_mb\":0,\"load_1m\":3.0,\"load_5m\":2.5,"
		   "\"load_15m\":1.75,\"system_uptime_secs\":0,"
		   "\"nets\":[{\"iface\":\"eth0\",\"rx_bytes\":987654321,"
		   "\"tx_bytes\":123456789}],"
		   "\"disks\":[{\"mount\":\"/\",\"fstype\":\"ext3\","
		   "\"used_bytes\":3072000,\"total_bytes\":4096000}]}");
	close_free(&loop, m);

	/* Garbage everywhere: read, parsed as far as sensible, zero. */
	m = fixture_sampler(&loop, "malformed", &fc, root, sizeof root);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->sources, DD_METRICS_SRC_NET_DEV |
						DD_METRICS_SRC_MOUNTS);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_NONE);
	assert_int_equal(snap->mem.swap_total_mb, 0);
	assert_int_equal(fc.calls, 0);
	close_free(&loop, m);

	/*
	 * Files cut mid-line: the partial last line is dropped rather than
	 * read as a smaller number ("MemAvailable: 1555", "eth1: 1 2 3 4").
	 */
	m = fixture_sampler(&loop, "truncated", &fc, root, sizeof root);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->sources, DD_METRICS_SRC_MEMINFO |
						DD_METRICS_SRC_NET_DEV |
						DD_METRICS_SRC_MOUNTS);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_NONE);
	/* MemTotal alone: the spec's fallback counts it all as used. */
	assert_int_equal(snap->mem.total_mb, 16003);
	assert_int_equal(snap->mem.used_mb, 16003);
	assert_int_equal(snap->n_nets, 1);
	assert_string_equal(snap->nets[0].iface, "eth0");
	assert_int_equal(snap->nets[0].tx_bytes, 9);
	assert_int_equal(snap->n_disks, 1);
	assert_string_equal(snap->disks[0].mount, "/");
	close_free(&loop, m);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the sampler on a temporary root ---- */

static dd_metrics *tmp_sampler(uv_loop_t *loop, const char *dir,
			       size_t cap, int lifetime, uint64_t interval)
{
	dd_metrics_opts o = {.root = dir, .file_cap = cap,
			     .cpu_lifetime = lifetime,
			     .interval_ms = interval};
	dd_metrics *m = NULL;

	assert_int_equal(dd_metrics_new(loop, &o, &m), DD_OK);
	return m;
}

static void cpu_across_samples(void **state)
{
	uv_loop_t loop;
	char dir[64];
	dd_metrics *m, *life;
	const dd_metrics_snapshot *snap;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	make_root(dir, sizeof dir);
	write_file(dir, "proc/stat", "cpu  100 0 50 850 0 0 0 0 0 0\n");
	m = tmp_sampler(&loop, dir, 0, 0, 0);
	life = tmp_sampler(&loop, dir, 0, 1, 0);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	assert_int_equal(dd_metrics_sample(life), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_SINCE_BOOT);
	assert_int_equal(snap->cpu_percent, 15);

	/* 200 more jiffies, 50 of them idle. */
	write_file(dir, "proc/stat", "cpu  200 0 100 900 0 0 0 0 0 0\n");
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	assert_int_equal(dd_metrics_sample(life), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_INTERVAL);
	assert_int_equal(snap->cpu_percent, 75);
	snap = dd_metrics_latest(life);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_SINCE_BOOT);
	assert_int_equal(snap->cpu_percent, 25);

	/* Counters reset (wrap, or a VM restored): no negative rate. */
	write_file(dir, "proc/stat", "cpu  10 0 5 85 0 0 0 0 0 0\n");
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_SINCE_BOOT);
	assert_int_equal(snap->cpu_percent, 15);
	/* ... and the next interval is measured from the reset values. */
	write_file(dir, "proc/stat", "cpu  20 0 5 95 0 0 0 0 0 0\n");
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_INTERVAL);
	assert_int_equal(snap->cpu_percent, 50);

	/* Unreadable for a sample: 0 and NONE, then back to intervals. */
	write_file(dir, "proc/stat", "garbage\n");
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_NONE);
	assert_int_equal(snap->cpu_percent, 0);
	write_file(dir, "proc/stat", "cpu  30 0 5 105 0 0 0 0 0 0\n");
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->cpu_source, DD_METRICS_CPU_INTERVAL);
	assert_int_equal(snap->cpu_percent, 50);

	close_free(&loop, m);
	close_free(&loop, life);
	remove_root(dir);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Files past the cap are cut at the last full line. */
static void file_cap(void **state)
{
	uv_loop_t loop;
	char dir[64], *big;
	dd_metrics *m;
	const dd_metrics_snapshot *snap;
	size_t off = 0, cap = 256 * 1024;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	make_root(dir, sizeof dir);
	/* The cut (at 64 bytes) falls inside the MemAvailable line. */
	write_file(dir, "proc/meminfo", "MemTotal:       16387724 kB\n"
					"MemFree:          1024 kB\n"
					"MemAvailable:   15556236 kB\n");
	/* A first line longer than the cap is no line at all. */
	write_file(dir, "proc/stat", "cpu  100 0 50 850 0 0 0 0 0 0 1 2 3 4 5"
				     " 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
				     "20 21 22 23 24 25\n");
	m = tmp_sampler(&loop, dir, 64, 0, 0);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_int_equal(snap->sources, DD_METRICS_SRC_MEMINFO);
	assert_int_equal(snap->mem.total_mb, 16003);
	assert_int_equal(snap->mem.used_mb, 16002); /* MemFree fallback */
	close_free(&loop, m);

	/* A 200 KiB /proc/mounts: only the first 64 KiB count. */
	big = malloc(cap);
	assert_non_null(big);
	while (off < 200 * 1024)
		off += (size_t)snprintf(big + off, cap - off,
					"tmpfs /run/user/%zu tmpfs rw 0 0\n",
					off);
	snprintf(big + off, cap - off, "/dev/vda1 / ext4 rw 0 0\n");
	write_file(dir, "proc/mounts", big);
	free(big);
	m = tmp_sampler(&loop, dir, 0, 0, 0);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	snap = dd_metrics_latest(m);
	assert_true(snap->sources & DD_METRICS_SRC_MOUNTS);
	assert_int_equal(snap->n_disks, 0);
	close_free(&loop, m);
	remove_root(dir);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- on a real loop ---- */

struct watch {
	dd_metrics *m;
	uv_timer_t t;
	uint64_t seen;
	unsigned cpu, source;
	int ticks;
};

static void on_watch(uv_timer_t *t)
{
	struct watch *w = t->data;
	const dd_metrics_snapshot *s = dd_metrics_latest(w->m);

	if (++w->ticks > 2000)
		fail_msg("sampler never ticked");
	if (s->seq == w->seen)
		return;
	w->seen = s->seq;
	if (s->seq < 2)
		return;
	w->cpu = s->cpu_percent;
	w->source = s->cpu_source;
	uv_close((uv_handle_t *)t, NULL);
	dd_metrics_close(w->m);
}

static void sampler_on_loop(void **state)
{
	uv_loop_t loop;
	char dir[64];
	struct watch w = {0};

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	make_root(dir, sizeof dir);
	write_file(dir, "proc/stat", "cpu  100 0 50 850 0 0 0 0 0 0\n");
	write_file(dir, "proc/uptime", "12.5 3.0\n");
	w.m = tmp_sampler(&loop, dir, 0, 0, 10);
	assert_int_equal(dd_metrics_start(w.m), DD_OK);
	assert_int_equal(dd_metrics_latest(w.m)->seq, 1);
	assert_int_equal(dd_metrics_latest(w.m)->system_uptime_secs, 12);
	/* Before the first tick the host gets busy. */
	write_file(dir, "proc/stat", "cpu  200 0 100 900 0 0 0 0 0 0\n");
	/* The sampler's timer alone does not keep the loop alive. */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(dd_metrics_latest(w.m)->seq, 1);

	w.seen = 0;
	assert_int_equal(uv_timer_init(&loop, &w.t), 0);
	w.t.data = &w;
	assert_int_equal(uv_timer_start(&w.t, on_watch, 1, 1), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(w.source, DD_METRICS_CPU_INTERVAL);
	assert_int_equal(w.cpu, 75);
	assert_int_equal(dd_metrics_start(w.m), DD_ERR_CLOSED);
	/* The last snapshot stays readable after close. */
	assert_int_equal(dd_metrics_latest(w.m)->seq, 2);
	dd_metrics_free(w.m);
	dd_metrics_free(NULL);
	remove_root(dir);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The real /proc and statvfs(3) of this machine. */
static void real_host(void **state)
{
	uv_loop_t loop;
	dd_metrics_opts o = {0};
	dd_metrics *m = NULL;
	const dd_metrics_snapshot *s;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dd_metrics_new(&loop, &o, &m), DD_OK);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	s = dd_metrics_latest(m);
	assert_int_equal(s->sources & (DD_METRICS_SRC_STAT |
				       DD_METRICS_SRC_MEMINFO |
				       DD_METRICS_SRC_LOADAVG |
				       DD_METRICS_SRC_UPTIME),
			 DD_METRICS_SRC_STAT | DD_METRICS_SRC_MEMINFO |
				 DD_METRICS_SRC_LOADAVG |
				 DD_METRICS_SRC_UPTIME);
	assert_true(s->mem.total_mb > 0);
	assert_true(s->mem.used_mb <= s->mem.total_mb);
	assert_true(s->system_uptime_secs > 0);
	assert_true(s->cpu_percent <= 100);
	for (size_t i = 0; i < s->n_disks; i++)
		assert_true(s->disks[i].used_bytes <= s->disks[i].total_bytes);
	assert_int_equal(dd_metrics_sample(m), DD_OK);
	assert_int_equal(dd_metrics_json(m, &j), DD_OK);
	json_decref(j);
	close_free(&loop, m);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void bad_opts(void **state)
{
	uv_loop_t loop;
	static char sentinel;
	dd_metrics_opts o = {.root = ""};
	dd_metrics *m = (dd_metrics *)(void *)&sentinel;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(dd_metrics_new(&loop, &o, &m), DD_ERR_INVALID);
	assert_null(m);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- allocation failure ---- */

static void torture_parsers(void **state)
{
	dd_metrics_net *n;
	dd_metrics_disk *d;
	size_t nlen, mlen, count;
	char *net = slurp("basic/proc/net/dev", &nlen);
	char *mounts = slurp("basic/proc/mounts", &mlen);
	dd_err_t rc;
	unsigned long used;

	(void)state;
	for (unsigned long k = 1;; k++) {
		dd_alloc_fail_at(k);
		rc = dd_metrics_parse_net_dev(net, nlen, &n, &count);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_ERR_NOMEM) {
			assert_null(n);
			assert_int_equal(count, 0);
		}
		dd_free(n);
		if (used < k)
			break;
	}
	assert_int_equal(rc, DD_OK);
	for (unsigned long k = 1;; k++) {
		dd_alloc_fail_at(k);
		rc = dd_metrics_parse_mounts(mounts, mlen, &d, &count);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_ERR_NOMEM) {
			assert_null(d);
			assert_int_equal(count, 0);
		}
		dd_metrics_disks_free(d, count);
		if (used < k)
			break;
	}
	assert_int_equal(rc, DD_OK);
	free(net);
	free(mounts);
}

static void torture_sampler(void **state)
{
	uv_loop_t loop;
	struct fake_ctx fc;
	char root[1024], *s;
	dd_metrics_opts o = {0};
	dd_metrics *m;
	json_t *j;
	dd_err_t rc;
	unsigned long used;
	int done = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	data_path(root, sizeof root, "basic");
	fc.root = root;
	o.root = root;
	o.statvfs_fn = fake_statvfs;
	o.statvfs_ctx = &fc;
	for (unsigned long k = 1; !done; k++) {
		m = NULL;
		j = NULL;
		dd_alloc_fail_at(k);
		rc = dd_metrics_new(&loop, &o, &m);
		if (rc == DD_OK)
			rc = dd_metrics_start(m);
		/* A second sample that fails must keep the first whole. */
		if (rc == DD_OK && dd_metrics_sample(m) != DD_OK) {
			assert_int_equal(dd_metrics_status(m), DD_ERR_NOMEM);
			assert_int_equal(dd_metrics_latest(m)->seq, 1);
			assert_int_equal(dd_metrics_latest(m)->n_disks, 10);
		}
		if (rc == DD_OK)
			rc = dd_metrics_json(m, &j);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		if (rc == DD_OK) {
			s = dump(j);
			assert_string_equal(s, basic_json);
			dd_free(s);
		}
		json_decref(j);
		if (m == NULL) {
			assert_int_equal(rc, DD_ERR_NOMEM);
		} else {
			close_free(&loop, m);
		}
		done = used < k;
	}
	assert_int_equal(rc, DD_OK);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stat_parse),
		cmocka_unit_test(cpu_interval),
		cmocka_unit_test(meminfo_parse),
		cmocka_unit_test(loadavg_uptime_parse),
		cmocka_unit_test(net_dev_parse),
		cmocka_unit_test(mounts_parse),
		cmocka_unit_test(sampler_basic),
		cmocka_unit_test(json_shape),
		cmocka_unit_test(sampler_degraded),
		cmocka_unit_test(cpu_across_samples),
		cmocka_unit_test(file_cap),
		cmocka_unit_test(sampler_on_loop),
		cmocka_unit_test(real_host),
		cmocka_unit_test(bad_opts),
		cmocka_unit_test(torture_parsers),
		cmocka_unit_test(torture_sampler),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
