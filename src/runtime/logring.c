#include "runtime/logring.h"

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

struct line {
	uint32_t len;
	uint8_t stream;
	uint8_t data[];
};

struct dd_rt_log {
	size_t max_bytes;
	size_t max_line;
	size_t max_lines;    /* what max_bytes can hold at the least cost */
	size_t bytes;        /* cost of the kept lines */
	struct line **v;     /* ring of cap slots */
	size_t cap, head, count;
	dd_buf partial[2];   /* stdout, stderr: the line being collected */
	uint64_t dropped;
};

dd_err_t dd_rt_log_new(size_t max_bytes, size_t max_line, dd_rt_log **out)
{
	dd_rt_log *l;

	*out = NULL;
	if (max_bytes < 2 * DD_RT_LOG_LINE_COST || max_line == 0)
		return DD_ERR_INVALID;
	l = dd_calloc(1, sizeof *l);
	if (l == NULL)
		return DD_ERR_NOMEM;
	if (max_line > max_bytes - DD_RT_LOG_LINE_COST)
		max_line = max_bytes - DD_RT_LOG_LINE_COST;
	if (max_line > UINT32_MAX)
		max_line = UINT32_MAX;
	l->max_bytes = max_bytes;
	l->max_line = max_line;
	l->max_lines = max_bytes / DD_RT_LOG_LINE_COST;
	dd_buf_init(&l->partial[0], max_line);
	dd_buf_init(&l->partial[1], max_line);
	*out = l;
	return DD_OK;
}

void dd_rt_log_free(dd_rt_log *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		dd_free(l->v[(l->head + i) % l->cap]);
	dd_free(l->v);
	dd_buf_free(&l->partial[0]);
	dd_buf_free(&l->partial[1]);
	dd_free(l);
}

static void drop_oldest(dd_rt_log *l)
{
	struct line *old = l->v[l->head];

	l->bytes -= old->len + DD_RT_LOG_LINE_COST;
	dd_free(old);
	l->v[l->head] = NULL;
	l->head = (l->head + 1) % l->cap;
	l->count--;
}

/* Makes the ring hold one more line: grow it, or age out the oldest. */
static void make_slot(dd_rt_log *l)
{
	size_t ncap;
	struct line **nv;

	if (l->count < l->cap)
		return;
	ncap = l->cap == 0 ? 16 : l->cap * 2;
	if (ncap > l->max_lines)
		ncap = l->max_lines;
	nv = ncap > l->cap ? dd_calloc(ncap, sizeof *nv) : NULL;
	if (nv == NULL) {
		/* Full (or no memory to grow): the oldest line goes. */
		if (l->count > 0)
			drop_oldest(l);
		return;
	}
	for (size_t i = 0; i < l->count; i++)
		nv[i] = l->v[(l->head + i) % l->cap];
	dd_free(l->v);
	l->v = nv;
	l->cap = ncap;
	l->head = 0;
}

/* Keeps partial + data[0..n) as one line and empties partial. */
static dd_err_t emit(dd_rt_log *l, int stream, dd_buf *partial,
		     const uint8_t *data, size_t n)
{
	size_t len = partial->len + n, cost;
	struct line *ln;
	uint8_t last;

	if (len > 0) {
		last = n > 0 ? data[n - 1] : partial->data[partial->len - 1];
		if (last == '\r')
			len--;
	}
	cost = len + DD_RT_LOG_LINE_COST;
	ln = dd_malloc(sizeof *ln + len);
	if (ln == NULL) {
		l->dropped++;
		dd_buf_reset(partial);
		return DD_ERR_NOMEM;
	}
	ln->len = (uint32_t)len;
	ln->stream = (uint8_t)stream;
	if (partial->len > 0)
		memcpy(ln->data, partial->data,
		       len < partial->len ? len : partial->len);
	if (len > partial->len)
		memcpy(ln->data + partial->len, data, len - partial->len);
	dd_buf_reset(partial);
	while (l->count > 0 && l->bytes + cost > l->max_bytes)
		drop_oldest(l);
	make_slot(l);
	if (l->cap == 0) {
		/* Not even a first ring: this line is lost. */
		dd_free(ln);
		l->dropped++;
		return DD_ERR_NOMEM;
	}
	l->v[(l->head + l->count) % l->cap] = ln;
	l->count++;
	l->bytes += cost;
	return DD_OK;
}

dd_err_t dd_rt_log_write(dd_rt_log *l, int stream, const uint8_t *data,
			 size_t len)
{
	dd_buf *p = &l->partial[stream == DD_RT_STDERR];
	dd_err_t rc = DD_OK, r;
	const uint8_t *nl;
	size_t take, room;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		take = nl != NULL ? (size_t)(nl - data) : len;
		room = l->max_line - p->len;
		if (take > room) {
			/* Too long for one line: cut it. */
			r = emit(l, stream, p, data, room);
			data += room;
			len -= room;
		} else if (nl == NULL) {
			/* Fits: p's cap is max_line. */
			r = dd_buf_append(p, data, take);
			if (r)
				l->dropped++;
			len = 0;
		} else {
			r = emit(l, stream, p, data, take);
			data += take + 1;
			len -= take + 1;
		}
		if (r && rc == DD_OK)
			rc = r;
	}
	return rc;
}

dd_err_t dd_rt_log_flush(dd_rt_log *l, int stream)
{
	dd_buf *p = &l->partial[stream == DD_RT_STDERR];

	if (p->len == 0)
		return DD_OK;
	return emit(l, stream, p, NULL, 0);
}

size_t dd_rt_log_count(const dd_rt_log *l)
{
	return l->count;
}

void dd_rt_log_get(const dd_rt_log *l, size_t i, const uint8_t **data,
		   size_t *len, int *stream)
{
	const struct line *ln = l->v[(l->head + i) % l->cap];

	*data = ln->data;
	*len = ln->len;
	if (stream != NULL)
		*stream = ln->stream;
}

uint64_t dd_rt_log_dropped(const dd_rt_log *l)
{
	return l->dropped;
}
