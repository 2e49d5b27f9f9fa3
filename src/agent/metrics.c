/*
 * metrics.c: the sampler half of metrics.h (timer, file reads, statvfs,
 * snapshot, JSON); the parsers are in metrics_parse.c.
 */
#include "agent/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/alloc.h"

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	uint64_t r;

	return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}


struct dd_metrics {
	uv_loop_t *loop;
	uv_timer_t timer;
	char *root; /* without a trailing '/'; "" for "/" */
	uint64_t interval_ms;
	size_t file_cap;
	int cpu_lifetime;
	dd_metrics_statvfs_fn statvfs_fn;
	void *statvfs_ctx;
	char *file; /* file_cap + 1 bytes, reused by every read */
	dd_metrics_cpu_times prev;
	int have_prev;
	dd_metrics_snapshot snap;
	dd_err_t status;
	int closing, closed;
};

static dd_err_t real_statvfs(void *ctx, const char *path,
			     dd_metrics_fs_usage *out)
{
	struct statvfs st;
	int r;

	(void)ctx;
	do {
		r = statvfs(path, &st);
	} while (r != 0 && errno == EINTR);
	if (r != 0)
		return DD_ERR_IO;
	out->block_size = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
	out->blocks = st.f_blocks;
	out->blocks_avail = st.f_bavail;
	return DD_OK;
}

static void snapshot_clear(dd_metrics_snapshot *s)
{
	dd_free(s->nets);
	dd_metrics_disks_free(s->disks, s->n_disks);
	memset(s, 0, sizeof *s);
}

dd_err_t dd_metrics_new(uv_loop_t *loop, const dd_metrics_opts *opts,
			dd_metrics **out)
{
	dd_metrics *m = NULL;
	const char *root = opts->root != NULL ? opts->root : "/";
	size_t rlen = strlen(root);
	dd_err_t rc = DD_ERR_INVALID;

	*out = NULL;
	if (rlen == 0)
		goto out;
	rc = DD_ERR_NOMEM;
	m = dd_calloc(1, sizeof *m);
	if (m == NULL)
		goto out;
	while (rlen > 0 && root[rlen - 1] == '/')
		rlen--;
	m->root = dd_strndup(root, rlen);
	m->file_cap = opts->file_cap != 0 ? opts->file_cap
					  : DD_METRICS_DEFAULT_FILE_CAP;
	m->file = dd_malloc(m->file_cap + 1);
	if (m->root == NULL || m->file == NULL)
		goto out;
	m->loop = loop;
	m->interval_ms = opts->interval_ms != 0
				 ? opts->interval_ms
				 : DD_METRICS_DEFAULT_INTERVAL_MS;
	m->cpu_lifetime = opts->cpu_lifetime;
	m->statvfs_fn = opts->statvfs_fn != NULL ? opts->statvfs_fn
						 : real_statvfs;
	m->statvfs_ctx = opts->statvfs_ctx;
	/* uv_timer_init only fills in the struct; it cannot fail. */
	(void)uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	*out = m;
	m = NULL; /* transferred */
	rc = DD_OK;
out:
	if (m != NULL) {
		dd_free(m->root);
		dd_free(m->file);
		dd_free(m);
	}
	return rc;
}

/*
 * Reads root/rel into m->file, at most file_cap bytes, and hands on only
 * complete lines: the kernel ends every line with '\n', so anything after
 * the last one is a file cut short (or past the cap) and could read as a
 * smaller number. Any failure means "source unavailable", never fatal.
 */
static dd_err_t read_file(dd_metrics *m, const char *rel, size_t *len)
{
	char path[PATH_MAX];
	size_t got = 0;
	ssize_t r;
	int fd = -1, w;
	dd_err_t rc = DD_ERR_IO;

	*len = 0;
	w = snprintf(path, sizeof path, "%s/%s", m->root, rel);
	if (w < 0 || (size_t)w >= sizeof path)
		return DD_ERR_TOO_LARGE;
	/* O_NONBLOCK: a FIFO planted under root must not stall the loop. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO;
	while (got <= m->file_cap) {
		r = read(fd, m->file + got, m->file_cap + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > m->file_cap)
		got = m->file_cap;
	while (got > 0 && m->file[got - 1] != '\n')
		got--;
	*len = got;
	rc = DD_OK;
out:
	close(fd);
	return rc;
}

static int disk_seen(const dd_metrics_disk *d, size_t n, const char *mount)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].mount, mount) == 0)
			return 1;
	return 0;
}

/*
 * statvfs on each parsed mount, compacting the list in place. Failures
 * and zero-capacity filesystems are dropped before de-duplication, as
 * sysinfo drops them before DD keeps the first entry per mount point: a
 * zero-sized first entry does not hide a real one after it.
 */
static void size_disks(dd_metrics *m, dd_metrics_disk *d, size_t *n)
{
	char path[PATH_MAX];
	dd_metrics_fs_usage u;
	uint64_t total, avail;
	size_t w = 0;
	int len;

	for (size_t i = 0; i < *n; i++) {
		memset(&u, 0, sizeof u);
		len = snprintf(path, sizeof path, "%s%s", m->root, d[i].mount);
		total = avail = 0;
		if (w < DD_METRICS_MAX_DISKS && len > 0 &&
		    (size_t)len < sizeof path &&
		    !disk_seen(d, w, d[i].mount) &&
		    m->statvfs_fn(m->statvfs_ctx, path, &u) == DD_OK) {
			total = sat_mul(u.block_size, u.blocks);
			avail = sat_mul(u.block_size, u.blocks_avail);
		}
		if (total == 0) {
			dd_free(d[i].mount);
			dd_free(d[i].fstype);
			continue;
		}
		d[w] = d[i];
		d[w].total_bytes = total;
		d[w].used_bytes = total > avail ? total - avail : 0;
		w++;
	}
	*n = w;
}

static void sample_cpu(dd_metrics *m, const dd_metrics_cpu_times *cur,
		       dd_metrics_snapshot *s)
{
	s->cpu_source = DD_METRICS_CPU_SINCE_BOOT;
	s->cpu_percent = dd_metrics_cpu_lifetime(cur);
	if (m->cpu_lifetime || !m->have_prev)
		return;
	if (dd_metrics_cpu_interval(&m->prev, cur, &s->cpu_percent) == DD_OK)
		s->cpu_source = DD_METRICS_CPU_INTERVAL;
}

dd_err_t dd_metrics_sample(dd_metrics *m)
{
	dd_metrics_snapshot s = {0};
	dd_metrics_cpu_times cur = {0};
	size_t len;
	dd_err_t rc;

	if (read_file(m, "proc/stat", &len) == DD_OK &&
	    dd_metrics_parse_stat(m->file, len, &cur) == DD_OK) {
		s.sources |= DD_METRICS_SRC_STAT;
		sample_cpu(m, &cur, &s);
	}
	if (read_file(m, "proc/meminfo", &len) == DD_OK &&
	    dd_metrics_parse_meminfo(m->file, len, &s.mem) == DD_OK)
		s.sources |= DD_METRICS_SRC_MEMINFO;
	if (read_file(m, "proc/loadavg", &len) == DD_OK &&
	    dd_metrics_parse_loadavg(m->file, len, s.load) == DD_OK)
		s.sources |= DD_METRICS_SRC_LOADAVG;
	if (read_file(m, "proc/uptime", &len) == DD_OK &&
	    dd_metrics_parse_uptime(m->file, len,
				    &s.system_uptime_secs) == DD_OK)
		s.sources |= DD_METRICS_SRC_UPTIME;
	if (read_file(m, "proc/net/dev", &len) == DD_OK) {
		rc = dd_metrics_parse_net_dev(m->file, len, &s.nets,
					      &s.n_nets);
		if (rc)
			goto out;
		s.sources |= DD_METRICS_SRC_NET_DEV;
	}
	if (read_file(m, "proc/mounts", &len) == DD_OK) {
		rc = dd_metrics_parse_mounts(m->file, len, &s.disks,
					     &s.n_disks);
		if (rc)
			goto out;
		s.sources |= DD_METRICS_SRC_MOUNTS;
		size_disks(m, s.disks, &s.n_disks);
	}
	s.seq = m->snap.seq + 1;
	s.taken_ms = uv_now(m->loop);
	snapshot_clear(&m->snap);
	m->snap = s;
	memset(&s, 0, sizeof s); /* transferred */
	if (m->snap.sources & DD_METRICS_SRC_STAT) {
		m->prev = cur;
		m->have_prev = 1;
	}
	rc = DD_OK;
out:
	snapshot_clear(&s);
	m->status = rc;
	return rc;
}

static void on_tick(uv_timer_t *t)
{
	/* The outcome is kept for dd_metrics_status(); the next tick retries. */
	(void)dd_metrics_sample(t->data);
}

dd_err_t dd_metrics_start(dd_metrics *m)
{
	dd_err_t rc;

	if (m->closing)
		return DD_ERR_CLOSED;
	rc = dd_metrics_sample(m);
	if (rc)
		return rc;
	(void)uv_timer_start(&m->timer, on_tick, m->interval_ms,
			     m->interval_ms);
	uv_unref((uv_handle_t *)&m->timer);
	return DD_OK;
}

dd_err_t dd_metrics_status(const dd_metrics *m)
{
	return m->status;
}

const dd_metrics_snapshot *dd_metrics_latest(const dd_metrics *m)
{
	return &m->snap;
}

/* ---- JSON ---- */

static json_int_t jint(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (json_int_t)v;
}

/* Appends one item; json_array_append_new() releases it (or NULL). */
static dd_err_t append(json_t *a, json_t *v)
{
	return json_array_append_new(a, v) == 0 ? DD_OK : DD_ERR_NOMEM;
}

static dd_err_t lists_json(const dd_metrics_snapshot *s, json_t *nets,
			   json_t *disks)
{
	const dd_metrics_disk *d;
	dd_err_t rc = DD_OK;

	for (size_t i = 0; rc == DD_OK && i < s->n_nets; i++)
		rc = append(nets, json_pack("{s:s, s:I, s:I}",
					    "iface", s->nets[i].iface,
					    "rx_bytes", jint(s->nets[i].rx_bytes),
					    "tx_bytes",
					    jint(s->nets[i].tx_bytes)));
	for (size_t i = 0; rc == DD_OK && i < s->n_disks; i++) {
		d = &s->disks[i];
		rc = append(disks, json_pack("{s:s, s:s, s:I, s:I}",
					     "mount", d->mount,
					     "fstype", d->fstype,
					     "used_bytes", jint(d->used_bytes),
					     "total_bytes",
					     jint(d->total_bytes)));
	}
	return rc;
}

dd_err_t dd_metrics_snapshot_json(const dd_metrics_snapshot *s,
				  json_t **out)
{
	json_t *o, *nets = json_array(), *disks = json_array();
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	/* Lists are set afterwards: json_pack may leak an "o" on failure. */
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:I}",
		      "cpu_percent", jint(s->cpu_percent),
		      "memory_used_mb", jint(s->mem.used_mb),
		      "memory_total_mb", jint(s->mem.total_mb),
		      "swap_used_mb", jint(s->mem.swap_used_mb),
		      "swap_total_mb", jint(s->mem.swap_total_mb),
		      "load_1m", s->load[0], "load_5m", s->load[1],
		      "load_15m", s->load[2],
		      "system_uptime_secs", jint(s->system_uptime_secs));
	if (o != NULL && nets != NULL && disks != NULL)
		rc = lists_json(s, nets, disks);
	if (rc == DD_OK && json_object_set(o, "nets", nets) != 0)
		rc = DD_ERR_NOMEM;
	if (rc == DD_OK && json_object_set(o, "disks", disks) != 0)
		rc = DD_ERR_NOMEM;
	if (rc)
		goto out;
	*out = o;
	o = NULL; /* transferred */
out:
	json_decref(o);
	json_decref(nets);
	json_decref(disks);
	return rc;
}

dd_err_t dd_metrics_json(const dd_metrics *m, json_t **out)
{
	return dd_metrics_snapshot_json(&m->snap, out);
}

/* ---- teardown ---- */

static void on_closed(uv_handle_t *h)
{
	dd_metrics *m = h->data;

	m->closed = 1;
}

void dd_metrics_close(dd_metrics *m)
{
	if (m == NULL || m->closing)
		return;
	m->closing = 1;
	(void)uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, on_closed);
}

void dd_metrics_free(dd_metrics *m)
{
	if (m == NULL)
		return;
	/* Freeing a live handle would corrupt the loop: a caller bug. */
	if (!m->closed)
		abort();
	snapshot_clear(&m->snap);
	dd_free(m->root);
	dd_free(m->file);
	dd_free(m);
}
