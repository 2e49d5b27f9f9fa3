/*
 * metrics.h: host metrics for the agent's /health (integrations spec
 * section 7), read from /proc on a libuv timer so that requests only copy
 * the latest snapshot.
 *
 * Two layers. The parse functions take the bytes of one /proc file and
 * fill plain structs; they allocate only where they say so and are what
 * the unit tests and fuzz/metrics_fuzz.c exercise. The sampler (dd_metrics)
 * reads the files under a configurable root on every tick, calls statvfs
 * through a replaceable hook, and keeps the last complete snapshot.
 *
 * cpu_percent deviates from the spec's lifetime average on purpose: once
 * two samples exist it is the busy share between them (same formula on
 * the differences). Until then, and whenever the counters went backwards,
 * it is the spec's since-boot figure; the snapshot's cpu_source says which
 * (opts.cpu_lifetime keeps the spec's figure throughout).
 */
#ifndef DD_AGENT_METRICS_H
#define DD_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/err.h"

#define DD_METRICS_DEFAULT_INTERVAL_MS 5000u
/* Bytes read from each /proc file; anything after is ignored. */
#define DD_METRICS_DEFAULT_FILE_CAP (64u * 1024u)
/* Entries kept per list, to bound the /health body. */
#define DD_METRICS_MAX_NETS 64u
#define DD_METRICS_MAX_MOUNTS 256u
#define DD_METRICS_MAX_DISKS 64u
/* Linux interface names are at most IFNAMSIZ - 1 = 15 bytes. */
#define DD_METRICS_IFNAME_MAX 15u

/* ---- parse layer ---- */

/* The aggregate "cpu" line of /proc/stat, reduced to what the formula uses. */
typedef struct dd_metrics_cpu_times {
	uint64_t total; /* sum of every numeric field */
	uint64_t idle;  /* the 4th field */
} dd_metrics_cpu_times;

/*
 * The first line of /proc/stat must be "cpu" and at least 4 numbers.
 * INVALID otherwise (including a non-numeric field), RANGE when a field
 * is longer than 20 digits or it or the sum does not fit 64 bits. *out
 * is zeroed on failure.
 */
dd_err_t dd_metrics_parse_stat(const char *s, size_t n,
			       dd_metrics_cpu_times *out);

/* 100 - idle*100/total (integer), 0 when total is 0: the spec's figure. */
unsigned dd_metrics_cpu_lifetime(const dd_metrics_cpu_times *t);

/*
 * The same formula over cur - prev. RANGE (and *pct untouched) when no
 * time passed or a counter went backwards (wrap, reset, CPU unplugged):
 * a rate is never negative or invented.
 */
dd_err_t dd_metrics_cpu_interval(const dd_metrics_cpu_times *prev,
				 const dd_metrics_cpu_times *cur,
				 unsigned *pct);

/* Memory and swap in MiB (bytes / 2^20, truncated). */
typedef struct dd_metrics_mem {
	uint64_t total_mb, used_mb;
	uint64_t swap_total_mb, swap_used_mb;
} dd_metrics_mem;

/*
 * /proc/meminfo. Always fills *out, with zero for what is missing: used =
 * MemTotal - MemAvailable, or MemTotal - (MemFree + Buffers + Cached +
 * SReclaimable - Shmem) on kernels without MemAvailable; swap used =
 * SwapTotal - SwapFree; never negative. Malformed or overflowing lines
 * are skipped and the first line for a key wins. NOT_FOUND when no
 * usable MemTotal line was seen.
 */
dd_err_t dd_metrics_parse_meminfo(const char *s, size_t n,
				  dd_metrics_mem *out);

/* /proc/loadavg: the first three decimals. INVALID/RANGE, zeroed, else. */
dd_err_t dd_metrics_parse_loadavg(const char *s, size_t n, double out[3]);

/* /proc/uptime: integer part of the first field. INVALID/RANGE else. */
dd_err_t dd_metrics_parse_uptime(const char *s, size_t n, uint64_t *secs);

typedef struct dd_metrics_net {
	char iface[DD_METRICS_IFNAME_MAX + 1];
	uint64_t rx_bytes, tx_bytes; /* cumulative since the device appeared */
} dd_metrics_net;

/*
 * /proc/net/dev (the same counters as /sys/class/net/<if>/statistics, in
 * one read). Every interface but "lo", in file order, at most
 * DD_METRICS_MAX_NETS; lines that are malformed, overflow, or name an
 * interface that is too long or not UTF-8 are skipped. *out is a new
 * array (NULL when *count is 0): caller frees it with dd_free(). NOMEM
 * is the only error.
 */
dd_err_t dd_metrics_parse_net_dev(const char *s, size_t n,
				  dd_metrics_net **out, size_t *count);

typedef struct dd_metrics_disk {
	char *mount;  /* owned; octal escapes (\040) decoded */
	char *fstype; /* owned; the /proc/mounts type string */
	uint64_t used_bytes, total_bytes;
} dd_metrics_disk;

/*
 * /proc/mounts, filtered as the spec says: pseudo and network filesystem
 * types are dropped, and so are mount points under /sys, /proc and /run
 * (but not /run/media), relative ones and any that are not UTF-8 or
 * decode to a NUL. Not de-duplicated (the sampler does that after
 * statvfs); at most DD_METRICS_MAX_MOUNTS; sizes are left zero. *out is
 * a new array: caller frees it with dd_metrics_disks_free(). NOMEM is the
 * only error.
 */
dd_err_t dd_metrics_parse_mounts(const char *s, size_t n,
				 dd_metrics_disk **out, size_t *count);
/* Frees the strings and the array. NULL is a no-op. */
void dd_metrics_disks_free(dd_metrics_disk *d, size_t count);

/* ---- sampler ---- */

typedef enum {
	DD_METRICS_CPU_NONE = 0,   /* /proc/stat unusable: cpu_percent is 0 */
	DD_METRICS_CPU_SINCE_BOOT, /* one sample only: average since boot */
	DD_METRICS_CPU_INTERVAL,   /* busy share since the previous sample */
} dd_metrics_cpu_source;

/* Which files were read and parsed for a snapshot (bit per file). */
enum {
	DD_METRICS_SRC_STAT = 1u << 0,
	DD_METRICS_SRC_MEMINFO = 1u << 1,
	DD_METRICS_SRC_LOADAVG = 1u << 2,
	DD_METRICS_SRC_UPTIME = 1u << 3,
	DD_METRICS_SRC_NET_DEV = 1u << 4,
	DD_METRICS_SRC_MOUNTS = 1u << 5,
};

/*
 * One sample. Public so that callers (the /health handler, the CP's own
 * fleet entry) can read numbers without going through JSON. A source
 * that could not be read leaves its fields zero or empty.
 */
typedef struct dd_metrics_snapshot {
	uint64_t seq;      /* 1 for the first sample; 0 before any */
	uint64_t taken_ms; /* uv_now() of the loop when it was taken */
	unsigned sources;  /* DD_METRICS_SRC_* */
	dd_metrics_cpu_source cpu_source;
	unsigned cpu_percent;
	dd_metrics_mem mem;
	double load[3]; /* 1, 5, 15 minutes */
	uint64_t system_uptime_secs;
	dd_metrics_net *nets;
	size_t n_nets;
	dd_metrics_disk *disks; /* one per mount point, first entry wins */
	size_t n_disks;
} dd_metrics_snapshot;

/* What the sampler needs from statvfs(3). */
typedef struct dd_metrics_fs_usage {
	uint64_t block_size;   /* f_frsize (f_bsize when that is 0) */
	uint64_t blocks;       /* f_blocks */
	uint64_t blocks_avail; /* f_bavail */
} dd_metrics_fs_usage;

/*
 * Any error skips the mount point for this sample. The call runs on the
 * loop thread; the spec's filter already drops the network filesystems
 * (nfs, cifs, autofs) whose statvfs can block for long.
 */
typedef dd_err_t (*dd_metrics_statvfs_fn)(void *ctx, const char *path,
					  dd_metrics_fs_usage *out);

typedef struct dd_metrics_opts {
	/*
	 * Directory that holds proc/ ("/" when NULL); tests point it at
	 * tests/data/proc/<case>. Mount points are joined onto it for
	 * statvfs. Copied.
	 */
	const char *root;
	uint64_t interval_ms; /* 0: DD_METRICS_DEFAULT_INTERVAL_MS */
	size_t file_cap;      /* 0: DD_METRICS_DEFAULT_FILE_CAP */
	int cpu_lifetime;     /* 1: always the spec's since-boot figure */
	dd_metrics_statvfs_fn statvfs_fn; /* NULL: statvfs(3) */
	void *statvfs_ctx;
} dd_metrics_opts;

typedef struct dd_metrics dd_metrics;

/*
 * Creates a sampler on loop (borrowed; must outlive it). No file is read
 * until dd_metrics_start() or dd_metrics_sample(). On success the caller
 * ends it with dd_metrics_close(), lets the loop run the close, then
 * dd_metrics_free(). INVALID for an empty root; NOMEM.
 */
dd_err_t dd_metrics_new(uv_loop_t *loop, const dd_metrics_opts *opts,
			dd_metrics **out);

/*
 * Takes the first sample now, then one every interval. The timer is
 * unreferenced: the sampler alone does not keep the loop running. NOMEM
 * (timer not started) when the first sample fails; CLOSED after close.
 */
dd_err_t dd_metrics_start(dd_metrics *m);

/*
 * Takes one sample now; the timer calls this. Unreadable files are not
 * errors (their fields stay zero). On NOMEM the previous snapshot is
 * kept whole. The result is also kept for dd_metrics_status().
 */
dd_err_t dd_metrics_sample(dd_metrics *m);

/* Result of the most recent sample (DD_OK before the first). */
dd_err_t dd_metrics_status(const dd_metrics *m);

/*
 * The latest snapshot, borrowed: valid until the next sample or free
 * (seq 0 and all fields zero before the first sample).
 */
const dd_metrics_snapshot *dd_metrics_latest(const dd_metrics *m);

/*
 * The snapshot as the spec's /health fields: cpu_percent, memory_used_mb,
 * memory_total_mb, swap_used_mb, swap_total_mb (integers), load_1m,
 * load_5m, load_15m (reals), system_uptime_secs (integer), nets
 * [{iface, rx_bytes, tx_bytes}], disks [{mount, fstype, used_bytes,
 * total_bytes}], every key always present. Counters past INT64_MAX are
 * clamped to it. *out is a new object (caller json_decref()s it; merge
 * into /health with json_object_update()). NOMEM.
 */
dd_err_t dd_metrics_snapshot_json(const dd_metrics_snapshot *s,
				  json_t **out);
/* dd_metrics_snapshot_json() of dd_metrics_latest(). */
dd_err_t dd_metrics_json(const dd_metrics *m, json_t **out);

/*
 * Stops the timer and closes its handle; the close completes on the
 * loop's next turn. Idempotent. The snapshot stays readable.
 */
void dd_metrics_close(dd_metrics *m);

/*
 * Frees a sampler whose close has completed (or that was never started
 * and has been closed). NULL is a no-op; a live handle aborts (caller
 * bug that would corrupt the loop).
 */
void dd_metrics_free(dd_metrics *m);

#endif
