/*
 * metrics_fuzz.c: every /proc parser of agent/metrics.h on the same
 * bytes, as if a hostile or broken kernel (or a planted root) served
 * them, then the snapshot they make through the JSON encoder.
 *
 * The input is also split at its first NUL into two /proc/stat samples
 * so the interval formula sees arbitrary counter pairs. Invariants that
 * would show a parser lying are checked with __builtin_trap(): percents
 * above 100, an interval where a counter went backwards, names that are
 * too long, "lo", relative or NUL-cut mount points, lists past their
 * caps, or JSON the encoder refuses.
 *
 * Seeds (fuzz/seeds/metrics/): real-looking stat, meminfo, loadavg,
 * uptime, net/dev and mounts files, and two stat samples joined by NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "agent/metrics.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cpu(const char *s, size_t n)
{
	const char *nul = memchr(s, '\0', n);
	dd_metrics_cpu_times a, b;
	size_t first = nul != NULL ? (size_t)(nul - s) : n;
	unsigned pct = 0;

	if (dd_metrics_parse_stat(s, first, &a) != DD_OK)
		return;
	if (a.idle > a.total || dd_metrics_cpu_lifetime(&a) > 100)
		__builtin_trap();
	if (nul == NULL || dd_metrics_parse_stat(nul + 1, n - first - 1,
						 &b) != DD_OK)
		return;
	if (dd_metrics_cpu_interval(&a, &b, &pct) != DD_OK)
		return;
	if (pct > 100 || b.total <= a.total || b.idle < a.idle)
		__builtin_trap();
}

static void check_lists(const dd_metrics_snapshot *s)
{
	for (size_t i = 0; i < s->n_nets; i++)
		if (strlen(s->nets[i].iface) == 0 ||
		    strlen(s->nets[i].iface) > DD_METRICS_IFNAME_MAX ||
		    strcmp(s->nets[i].iface, "lo") == 0)
			__builtin_trap();
	for (size_t i = 0; i < s->n_disks; i++)
		if (s->disks[i].mount[0] != '/' ||
		    s->disks[i].fstype[0] == '\0')
			__builtin_trap();
	if (s->n_nets > DD_METRICS_MAX_NETS ||
	    s->n_disks > DD_METRICS_MAX_MOUNTS)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	dd_metrics_snapshot snap;
	dd_metrics_cpu_times t;
	json_t *j = NULL;
	dd_buf b;

	memset(&snap, 0, sizeof snap);
	check_cpu(s, size);
	if (dd_metrics_parse_stat(s, size, &t) == DD_OK)
		snap.cpu_percent = dd_metrics_cpu_lifetime(&t);
	(void)dd_metrics_parse_meminfo(s, size, &snap.mem);
	if (snap.mem.used_mb > snap.mem.total_mb ||
	    snap.mem.swap_used_mb > snap.mem.swap_total_mb)
		__builtin_trap();
	(void)dd_metrics_parse_loadavg(s, size, snap.load);
	(void)dd_metrics_parse_uptime(s, size, &snap.system_uptime_secs);
	if (dd_metrics_parse_net_dev(s, size, &snap.nets, &snap.n_nets) ||
	    dd_metrics_parse_mounts(s, size, &snap.disks, &snap.n_disks))
		__builtin_trap(); /* only NOMEM, which libFuzzer never gives */
	check_lists(&snap);
	if (dd_metrics_snapshot_json(&snap, &j) != DD_OK)
		__builtin_trap();
	dd_buf_init(&b, 1u << 24);
	if (dd_json_append(&b, j) != DD_OK)
		__builtin_trap();
	dd_buf_free(&b);
	json_decref(j);
	dd_free(snap.nets);
	dd_metrics_disks_free(snap.disks, snap.n_disks);
	return 0;
}
