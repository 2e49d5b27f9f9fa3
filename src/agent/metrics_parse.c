/*
 * metrics_parse.c: the pure half of metrics.h. Each function takes the
 * bytes of one /proc file and fills plain structs; nothing here touches
 * the file system or the loop, so tests and fuzz/metrics_fuzz.c drive it
 * directly. metrics.c is the sampler.
 */
#include "agent/metrics.h"

#include <string.h>

#include "core/alloc.h"
#include "core/cursor.h"
#include "core/strutil.h"
#include "net/ws.h"

/* ---- line and field splitting over the cursor ---- */

static int is_blank(uint8_t b)
{
	return b == ' ' || b == '\t';
}

/* Splits off the next line without its '\n'; the last may lack one. */
static int next_line(dd_cursor *c, dd_cursor *line)
{
	const uint8_t *p = dd_cur_ptr(c);
	size_t rem = dd_cur_remaining(c), n = 0;

	if (rem == 0)
		return 0;
	while (n < rem && p[n] != '\n')
		n++;
	(void)dd_cur_sub(c, n, line);
	if (n < rem)
		(void)dd_cur_skip(c, 1);
	return 1;
}

static void skip_blanks(dd_cursor *c)
{
	while (dd_cur_remaining(c) > 0 && is_blank(dd_cur_ptr(c)[0]))
		(void)dd_cur_skip(c, 1);
}

/* The next run of non-blank bytes; 0 at the end of the line. */
static int next_field(dd_cursor *line, const char **s, size_t *n)
{
	const uint8_t *p, *span;
	size_t rem, k = 0;

	skip_blanks(line);
	rem = dd_cur_remaining(line);
	if (rem == 0)
		return 0;
	p = dd_cur_ptr(line);
	while (k < rem && !is_blank(p[k]))
		k++;
	(void)dd_cur_get_span(line, k, &span);
	*s = (const char *)span;
	*n = k;
	return 1;
}

static int field_is(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t r;

	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* ---- /proc/stat ---- */

dd_err_t dd_metrics_parse_stat(const char *s, size_t n,
			       dd_metrics_cpu_times *out)
{
	dd_cursor c, line;
	const char *f;
	size_t fn, count = 0;
	uint64_t v, total = 0, idle = 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	dd_cur_init(&c, s, n);
	if (!next_line(&c, &line) || !next_field(&line, &f, &fn) ||
	    !field_is(f, fn, "cpu"))
		return DD_ERR_INVALID;
	while (next_field(&line, &f, &fn)) {
		rc = dd_parse_u64n(f, fn, 0, UINT64_MAX, &v);
		if (rc)
			return rc;
		if (__builtin_add_overflow(total, v, &total))
			return DD_ERR_RANGE;
		count++;
		if (count == 4)
			idle = v;
	}
	if (count < 4)
		return DD_ERR_INVALID;
	out->total = total;
	out->idle = idle;
	return DD_OK;
}

/* idle * 100 needs up to 71 bits; the spec's division stays exact. */
__extension__ typedef unsigned __int128 u128;

static unsigned busy_pct(uint64_t idle, uint64_t total)
{
	if (total == 0)
		return 0;
	if (idle > total)
		idle = total;
	return 100u - (unsigned)((u128)idle * 100 / total);
}

unsigned dd_metrics_cpu_lifetime(const dd_metrics_cpu_times *t)
{
	return busy_pct(t->idle, t->total);
}

dd_err_t dd_metrics_cpu_interval(const dd_metrics_cpu_times *prev,
				 const dd_metrics_cpu_times *cur,
				 unsigned *pct)
{
	uint64_t dt, di;

	if (cur->total <= prev->total || cur->idle < prev->idle)
		return DD_ERR_RANGE;
	dt = cur->total - prev->total;
	di = cur->idle - prev->idle;
	/* Idle outgrowing the total means another field went backwards. */
	if (di > dt)
		return DD_ERR_RANGE;
	*pct = busy_pct(di, dt);
	return DD_OK;
}

/* ---- /proc/meminfo ---- */

enum {
	MI_TOTAL,
	MI_FREE,
	MI_AVAILABLE,
	MI_BUFFERS,
	MI_CACHED,
	MI_SRECLAIMABLE,
	MI_SHMEM,
	MI_SWAP_TOTAL,
	MI_SWAP_FREE,
	MI__COUNT
};

static const char *const mi_keys[MI__COUNT] = {
	"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached",
	"SReclaimable", "Shmem", "SwapTotal", "SwapFree",
};

/* "Key:   123 kB": the key and the value in kB. 0 for a malformed line. */
static int meminfo_line(dd_cursor *line, const char **key, size_t *klen,
			uint64_t *kb)
{
	const uint8_t *p = dd_cur_ptr(line), *span;
	size_t rem = dd_cur_remaining(line), k = 0, fn;
	const char *f;

	while (k < rem && p[k] != ':')
		k++;
	if (k == 0 || k == rem)
		return 0;
	(void)dd_cur_get_span(line, k, &span);
	(void)dd_cur_skip(line, 1);
	*key = (const char *)span;
	*klen = k;
	if (!next_field(line, &f, &fn) ||
	    dd_parse_u64n(f, fn, 0, UINT64_MAX, kb) != DD_OK)
		return 0;
	if (next_field(line, &f, &fn) && !field_is(f, fn, "kB"))
		return 0;
	return !next_field(line, &f, &fn);
}

dd_err_t dd_metrics_parse_meminfo(const char *s, size_t n,
				  dd_metrics_mem *out)
{
	uint64_t v[MI__COUNT] = {0}, kb, avail;
	unsigned seen = 0;
	dd_cursor c, line;
	const char *key;
	size_t klen;

	memset(out, 0, sizeof *out);
	dd_cur_init(&c, s, n);
	while (next_line(&c, &line)) {
		if (!meminfo_line(&line, &key, &klen, &kb))
			continue;
		for (unsigned i = 0; i < MI__COUNT; i++) {
			if ((seen & (1u << i)) || !field_is(key, klen,
							    mi_keys[i]))
				continue;
			v[i] = kb;
			seen |= 1u << i;
		}
	}
	/* kB * 1024 / 2^20 is kB / 1024; subtract in kB to truncate once. */
	out->swap_total_mb = v[MI_SWAP_TOTAL] / 1024;
	out->swap_used_mb = sat_sub(v[MI_SWAP_TOTAL], v[MI_SWAP_FREE]) / 1024;
	if (!(seen & (1u << MI_TOTAL)))
		return DD_ERR_NOT_FOUND;
	if (seen & (1u << MI_AVAILABLE)) {
		avail = v[MI_AVAILABLE];
	} else {
		avail = sat_add(sat_add(v[MI_FREE], v[MI_BUFFERS]),
				sat_add(v[MI_CACHED], v[MI_SRECLAIMABLE]));
		avail = sat_sub(avail, v[MI_SHMEM]);
	}
	out->total_mb = v[MI_TOTAL] / 1024;
	out->used_mb = sat_sub(v[MI_TOTAL], avail) / 1024;
	return DD_OK;
}

/* ---- /proc/loadavg and /proc/uptime ---- */

#define LOAD_INT_MAX 1000000u
#define LOAD_FRAC_DIGITS 9u

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Splits "123.45" at the dot; both parts digits, the integer non-empty. */
static dd_err_t split_decimal(const char *s, size_t n, size_t *int_len,
			      const char **frac, size_t *frac_len)
{
	size_t k = 0;

	while (k < n && s[k] != '.')
		k++;
	*int_len = k;
	*frac = k < n ? s + k + 1 : s + n;
	*frac_len = k < n ? n - k - 1 : 0;
	if (k == 0 || !all_digits(s, k) || !all_digits(*frac, *frac_len) ||
	    (k < n && *frac_len == 0))
		return DD_ERR_INVALID;
	return DD_OK;
}

/*
 * One division of two exact integers below 2^53, so the double is the
 * nearest to the decimal text, as strtod would give.
 */
static dd_err_t parse_decimal(const char *s, size_t n, double *out)
{
	const char *frac;
	size_t ilen, flen;
	uint64_t ip, fp = 0, scale = 1;
	dd_err_t rc;

	rc = split_decimal(s, n, &ilen, &frac, &flen);
	if (rc)
		return rc;
	rc = dd_parse_u64n(s, ilen, 0, LOAD_INT_MAX, &ip);
	if (rc)
		return rc;
	if (flen > LOAD_FRAC_DIGITS)
		flen = LOAD_FRAC_DIGITS;
	for (size_t i = 0; i < flen; i++) {
		fp = fp * 10 + (uint64_t)(frac[i] - '0');
		scale *= 10;
	}
	*out = (double)(ip * scale + fp) / (double)scale;
	return DD_OK;
}

dd_err_t dd_metrics_parse_loadavg(const char *s, size_t n, double out[3])
{
	dd_cursor c, line;
	const char *f;
	size_t fn;
	dd_err_t rc = DD_ERR_INVALID;

	dd_cur_init(&c, s, n);
	if (!next_line(&c, &line))
		goto out;
	for (int i = 0; i < 3; i++) {
		rc = DD_ERR_INVALID;
		if (!next_field(&line, &f, &fn))
			goto out;
		rc = parse_decimal(f, fn, &out[i]);
		if (rc)
			goto out;
	}
out:
	if (rc)
		out[0] = out[1] = out[2] = 0.0;
	return rc;
}

dd_err_t dd_metrics_parse_uptime(const char *s, size_t n, uint64_t *secs)
{
	dd_cursor c, line;
	const char *f, *frac;
	size_t fn, ilen, flen;
	dd_err_t rc;

	*secs = 0;
	dd_cur_init(&c, s, n);
	if (!next_line(&c, &line) || !next_field(&line, &f, &fn))
		return DD_ERR_INVALID;
	rc = split_decimal(f, fn, &ilen, &frac, &flen);
	if (rc)
		return rc;
	return dd_parse_u64n(f, ilen, 0, UINT64_MAX, secs);
}

/* ---- /proc/net/dev ---- */

/* rx_bytes is the 1st counter after the colon, tx_bytes the 9th. */
#define NET_TX_FIELD 9u

static int net_line(dd_cursor *line, dd_metrics_net *e)
{
	const uint8_t *p, *span;
	size_t rem, k = 0, fn, count = 0;
	const char *f;
	uint64_t v;

	skip_blanks(line);
	p = dd_cur_ptr(line);
	rem = dd_cur_remaining(line);
	while (k < rem && p[k] != ':' && !is_blank(p[k]))
		k++;
	/* Header lines have no colon right after the name. */
	if (k == 0 || k == rem || p[k] != ':' || k > DD_METRICS_IFNAME_MAX ||
	    !dd_ws_utf8_valid(p, k))
		return 0;
	(void)dd_cur_get_span(line, k, &span);
	(void)dd_cur_skip(line, 1);
	memcpy(e->iface, span, k);
	e->iface[k] = '\0';
	/* A NUL inside the name would cut it short. */
	if (strlen(e->iface) != k)
		return 0;
	while (next_field(line, &f, &fn)) {
		if (dd_parse_u64n(f, fn, 0, UINT64_MAX, &v) != DD_OK)
			return 0;
		count++;
		if (count == 1)
			e->rx_bytes = v;
		else if (count == NET_TX_FIELD)
			e->tx_bytes = v;
	}
	return count >= NET_TX_FIELD;
}

dd_err_t dd_metrics_parse_net_dev(const char *s, size_t n,
				  dd_metrics_net **out, size_t *count)
{
	dd_metrics_net *list = NULL, e;
	size_t len = 0;
	dd_cursor c, line;
	dd_err_t rc;

	*out = NULL;
	*count = 0;
	dd_cur_init(&c, s, n);
	while (len < DD_METRICS_MAX_NETS && next_line(&c, &line)) {
		memset(&e, 0, sizeof e);
		if (!net_line(&line, &e) || strcmp(e.iface, "lo") == 0)
			continue;
		if (list == NULL) {
			list = dd_calloc(DD_METRICS_MAX_NETS, sizeof *list);
			rc = DD_ERR_NOMEM;
			if (list == NULL)
				goto out;
		}
		list[len++] = e;
	}
	*out = list;
	list = NULL; /* transferred */
	*count = len;
	rc = DD_OK;
out:
	dd_free(list);
	return rc;
}

/* ---- /proc/mounts ---- */

static const char *const skipped_fstypes[] = {
	"rootfs", "sysfs", "proc", "devtmpfs", "cgroup", "cgroup2",
	"pstore", "squashfs", "rpc_pipefs", "iso9660", "devpts",
	"hugetlbfs", "mqueue", "tmpfs", "cifs", "nfs", "nfs4", "autofs",
};

static int path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

static int mount_wanted(const char *mount, const char *fstype)
{
	for (size_t i = 0; i < sizeof skipped_fstypes /
				       sizeof skipped_fstypes[0]; i++)
		if (strcmp(fstype, skipped_fstypes[i]) == 0)
			return 0;
	if (mount[0] != '/' || path_under(mount, "/sys") ||
	    path_under(mount, "/proc"))
		return 0;
	return !path_under(mount, "/run") || path_under(mount, "/run/media");
}

static int octal(char ch)
{
	return ch >= '0' && ch <= '7' ? ch - '0' : -1;
}

/*
 * A copy of s[0..n) with the kernel's \ooo escapes decoded; NULL with
 * *bad set when it would hold a NUL or is not UTF-8.
 */
static char *unescape(const char *s, size_t n, int *bad)
{
	char *d = dd_malloc(n + 1);
	size_t i = 0, j = 0;
	int v;

	*bad = 0;
	if (d == NULL)
		return NULL;
	while (i < n) {
		v = -1;
		if (s[i] == '\\' && n - i >= 4 && octal(s[i + 1]) >= 0 &&
		    octal(s[i + 2]) >= 0 && octal(s[i + 3]) >= 0)
			v = octal(s[i + 1]) * 64 + octal(s[i + 2]) * 8 +
			    octal(s[i + 3]);
		if (v < 0) {
			d[j++] = s[i++];
			continue;
		}
		if (v == 0 || v > 255)
			goto bad;
		d[j++] = (char)v;
		i += 4;
	}
	d[j] = '\0';
	if (strlen(d) != j || !dd_ws_utf8_valid((const uint8_t *)d, j))
		goto bad;
	return d;
bad:
	*bad = 1;
	dd_free(d);
	return NULL;
}

void dd_metrics_disks_free(dd_metrics_disk *d, size_t count)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		dd_free(d[i].mount);
		dd_free(d[i].fstype);
	}
	dd_free(d);
}

/* Fills e from one line; 0 to skip it, -1 when out of memory. */
static int mount_line(dd_cursor *line, dd_metrics_disk *e)
{
	const char *f[3];
	size_t fn[3];
	int bad = 0;

	for (int i = 0; i < 3; i++)
		if (!next_field(line, &f[i], &fn[i]))
			return 0;
	e->mount = unescape(f[1], fn[1], &bad);
	if (e->mount == NULL)
		return bad ? 0 : -1;
	e->fstype = unescape(f[2], fn[2], &bad);
	if (e->fstype == NULL)
		return bad ? 0 : -1;
	return mount_wanted(e->mount, e->fstype);
}

dd_err_t dd_metrics_parse_mounts(const char *s, size_t n,
				 dd_metrics_disk **out, size_t *count)
{
	dd_metrics_disk *list = NULL, e;
	size_t len = 0;
	dd_cursor c, line;
	dd_err_t rc = DD_ERR_NOMEM;
	int ok;

	*out = NULL;
	*count = 0;
	dd_cur_init(&c, s, n);
	while (len < DD_METRICS_MAX_MOUNTS && next_line(&c, &line)) {
		memset(&e, 0, sizeof e);
		ok = mount_line(&line, &e);
		if (ok == 1 && list == NULL)
			list = dd_calloc(DD_METRICS_MAX_MOUNTS, sizeof *list);
		if (ok < 0 || (ok == 1 && list == NULL)) {
			dd_free(e.mount);
			dd_free(e.fstype);
			goto out;
		}
		if (ok == 0) {
			dd_free(e.mount);
			dd_free(e.fstype);
			continue;
		}
		list[len++] = e;
	}
	*out = list;
	list = NULL; /* transferred */
	*count = len;
	rc = DD_OK;
out:
	dd_metrics_disks_free(list, len);
	return rc;
}
