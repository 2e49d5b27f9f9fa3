#include "sessiond/history.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/strutil.h"
#include "runtime/text.h"
#include "sessiond/seal.h"

#define SUFFIX ".log.enc"
#define MAX_SEQ 0xfffffffeu

struct sess {
	char id[DD_HIST_ID_LEN + 1];
	uint32_t first, last;   /* segments kept: [first, last] */
	uint64_t bytes;
	uint64_t last_size;     /* of segment last, once fd is open */
	int64_t updated;        /* unix seconds of the last write */
	int fd;                 /* segment last, open for appending; or -1 */
};

struct dd_hist {
	char *dir;
	dd_hist_opts o;
	struct sess *v;
	size_t n, cap;
	uint64_t total;
};

int dd_hist_id_ok(const char *s, size_t len)
{
	if (len != DD_HIST_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') ||
			     (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static int seg_path(const dd_hist *h, const struct sess *s, uint32_t seq,
		    char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s.%u" SUFFIX, h->dir, s->id, seq);

	return n > 0 && (size_t)n < len;
}

static struct sess *find(const dd_hist *h, const char *id)
{
	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->v[i].id, id) == 0)
			return &h->v[i];
	}
	return NULL;
}

static struct sess *add(dd_hist *h, const char *id)
{
	struct sess *v, *s;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 16;

		v = dd_realloc(h->v, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		h->v = v;
		h->cap = cap;
	}
	s = &h->v[h->n++];
	memset(s, 0, sizeof *s);
	memcpy(s->id, id, DD_HIST_ID_LEN);
	s->fd = -1;
	return s;
}

static void drop(dd_hist *h, struct sess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	*s = h->v[--h->n];
}

/* Removes a session's oldest segment; the session goes with its last. */
static void drop_first(dd_hist *h, struct sess *s)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t size = 0;

	if (seg_path(h, s, s->first, path, sizeof path)) {
		if (stat(path, &st) == 0)
			size = (uint64_t)st.st_size;
		(void)unlink(path);
	}
	size = size < s->bytes ? size : s->bytes;
	s->bytes -= size;
	h->total -= size < h->total ? size : h->total;
	if (s->first >= s->last)
		drop(h, s);
	else
		s->first++;
}

/* The session to shrink: least recently written, not only a live file. */
static struct sess *victim(dd_hist *h)
{
	struct sess *best = NULL;

	for (size_t i = 0; i < h->n; i++) {
		struct sess *s = &h->v[i];

		if (s->first == s->last && s->fd >= 0)
			continue;
		if (best == NULL || s->updated < best->updated)
			best = s;
	}
	return best;
}

static void enforce(dd_hist *h, struct sess *s)
{
	struct sess *x;

	while (s != NULL && s->bytes > h->o.session_bytes &&
	       s->first < s->last)
		drop_first(h, s);
	while (h->total > h->o.max_bytes) {
		x = victim(h);
		if (x == NULL)
			break;
		drop_first(h, x);
	}
}

/* "<id>.<seq>.log.enc": the id and seq, or 0. */
static int parse_name(const char *name, char *id, uint32_t *seq)
{
	size_t n = strlen(name), sl = sizeof SUFFIX - 1;
	uint64_t v;

	if (n < DD_HIST_ID_LEN + 2 + sl || name[DD_HIST_ID_LEN] != '.' ||
	    !dd_hist_id_ok(name, DD_HIST_ID_LEN) ||
	    strcmp(name + n - sl, SUFFIX) != 0)
		return 0;
	if (dd_parse_u64n(name + DD_HIST_ID_LEN + 1, n - sl -
			  DD_HIST_ID_LEN - 1, 0, MAX_SEQ, &v) != DD_OK)
		return 0;
	memcpy(id, name, DD_HIST_ID_LEN);
	id[DD_HIST_ID_LEN] = '\0';
	*seq = (uint32_t)v;
	return 1;
}

static dd_err_t scan(dd_hist *h, char *why, size_t why_len)
{
	char id[DD_HIST_ID_LEN + 1], path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	struct sess *s;
	uint32_t seq;
	DIR *d;

	d = opendir(h->dir);
	if (d == NULL) {
		snprintf(why, why_len, "reading %s (%s)", h->dir,
			 strerror(errno));
		return DD_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (!parse_name(de->d_name, id, &seq))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", h->dir, de->d_name) >=
			    (int)sizeof path ||
		    lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		s = find(h, id);
		if (s == NULL) {
			s = add(h, id);
			if (s == NULL) {
				closedir(d);
				return DD_ERR_NOMEM;
			}
			s->first = s->last = seq;
		}
		s->first = seq < s->first ? seq : s->first;
		s->last = seq > s->last ? seq : s->last;
		s->bytes += (uint64_t)st.st_size;
		h->total += (uint64_t)st.st_size;
		if ((int64_t)st.st_mtime > s->updated)
			s->updated = (int64_t)st.st_mtime;
	}
	closedir(d);
	return DD_OK;
}

dd_err_t dd_hist_open(const dd_hist_opts *o, dd_hist **out, char *why,
		      size_t why_len)
{
	dd_hist *h;
	dd_err_t rc;

	*out = NULL;
	if (o->segment_bytes == 0 || o->session_bytes < 2 * o->segment_bytes ||
	    o->max_bytes < o->session_bytes) {
		snprintf(why, why_len, "history limits: need segment * 2 <= "
			 "session <= total");
		return DD_ERR_CONFIG;
	}
	if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, why_len, "making %s (%s)", o->dir,
			 strerror(errno));
		return DD_ERR_IO;
	}
	h = dd_calloc(1, sizeof *h);
	if (h == NULL)
		return DD_ERR_NOMEM;
	h->o = *o;
	h->dir = dd_strdup(o->dir);
	h->o.dir = h->dir;
	rc = h->dir != NULL ? scan(h, why, why_len) : DD_ERR_NOMEM;
	if (rc) {
		dd_hist_free(h);
		return rc;
	}
	enforce(h, NULL);
	*out = h;
	return DD_OK;
}

void dd_hist_free(dd_hist *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].fd >= 0)
			close(h->v[i].fd);
	}
	dd_free(h->v);
	dd_free(h->dir);
	dd_free(h);
}

static dd_err_t open_last(dd_hist *h, struct sess *s)
{
	char path[PATH_MAX];
	struct stat st;

	if (!seg_path(h, s, s->last, path, sizeof path))
		return DD_ERR_IO;
	s->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
			   O_NOFOLLOW, 0600);
	if (s->fd < 0)
		return DD_ERR_IO;
	if (fstat(s->fd, &st) != 0) {
		close(s->fd);
		s->fd = -1;
		return DD_ERR_IO;
	}
	s->last_size = (uint64_t)st.st_size;
	return DD_OK;
}

static dd_err_t write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return DD_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return DD_OK;
}

dd_err_t dd_hist_append(dd_hist *h, const char *id, const void *line,
			size_t len)
{
	struct sess *s;
	uint8_t *rec;
	dd_err_t rc;

	if (!dd_hist_id_ok(id, strlen(id)) || len == 0 ||
	    memchr(line, '\n', len) != NULL)
		return DD_ERR_INVALID;
	s = find(h, id);
	if (s == NULL)
		s = add(h, id);
	if (s == NULL)
		return DD_ERR_NOMEM;
	if (s->fd < 0) {
		rc = open_last(h, s);
		if (rc)
			return rc;
	}
	if (s->last_size > 0 && s->last_size + len + 1 > h->o.segment_bytes &&
	    s->last < MAX_SEQ) {
		close(s->fd);
		s->fd = -1;
		s->last++;
		rc = open_last(h, s);
		if (rc)
			return rc;
	}
	rec = dd_malloc(len + 1);
	if (rec == NULL)
		return DD_ERR_NOMEM;
	memcpy(rec, line, len);
	rec[len] = '\n';
	/* One write: appends of other sessions never interleave with it. */
	rc = write_all(s->fd, rec, len + 1);
	dd_free(rec);
	if (rc)
		return rc;
	s->last_size += len + 1;
	s->bytes += len + 1;
	h->total += len + 1;
	s->updated = (int64_t)time(NULL);
	enforce(h, s);
	return DD_OK;
}

void dd_hist_done(dd_hist *h, const char *id)
{
	struct sess *s = find(h, id);

	if (s != NULL && s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static int newer(const void *a, const void *b)
{
	const struct sess *x = *(const struct sess *const *)a;
	const struct sess *y = *(const struct sess *const *)b;

	return (x->updated < y->updated) - (x->updated > y->updated);
}

dd_err_t dd_hist_list(const dd_hist *h, json_t **out)
{
	const struct sess **order = NULL;
	json_t *arr = NULL, *o;
	dd_err_t rc = DD_ERR_NOMEM;

	*out = NULL;
	arr = json_array();
	if (h->n > 0)
		order = dd_calloc(h->n, sizeof *order);
	if (arr == NULL || (h->n > 0 && order == NULL))
		goto out;
	for (size_t i = 0; i < h->n; i++)
		order[i] = &h->v[i];
	if (h->n > 1)
		qsort(order, h->n, sizeof *order, newer);
	for (size_t i = 0; i < h->n; i++) {
		o = json_pack("{s:s,s:I,s:I,s:b,s:I}", "id", order[i]->id,
			      "bytes", (json_int_t)order[i]->bytes, "segments",
			      (json_int_t)(order[i]->last - order[i]->first +
					   1),
			      "truncated", order[i]->first > 0, "updated_at",
			      (json_int_t)order[i]->updated);
		if (json_array_append_new(arr, o) != 0)
			goto out;
	}
	*out = arr;
	arr = NULL;
	rc = DD_OK;
out:
	dd_free(order);
	json_decref(arr);
	return rc;
}

/* Segment seq from off, whole (segments are bounded). */
static dd_err_t read_seg(const dd_hist *h, const struct sess *s, uint32_t seq,
			 uint64_t off, dd_buf *b)
{
	char path[PATH_MAX];
	uint8_t chunk[16384];
	ssize_t n;
	dd_err_t rc = DD_OK;
	int fd;

	if (!seg_path(h, s, seq, path, sizeof path))
		return DD_ERR_IO;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO;
	if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
		close(fd);
		return DD_ERR_IO;
	}
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rc = dd_buf_append(b, chunk, (size_t)n);
		/* Past the cap: what was read is what is replayed. */
		if (rc == DD_ERR_TOO_LARGE)
			rc = DD_OK;
		if (rc || b->len == b->cap)
			break;
	}
	if (n < 0)
		rc = DD_ERR_IO;
	close(fd);
	return rc;
}

/* Lines of one segment into records; *stop set with the cursor to resume. */
static dd_err_t take_lines(const dd_buf *b, uint32_t seq, uint64_t off,
			   size_t max_bytes, size_t *taken, json_t *records,
			   uint64_t *next)
{
	size_t pos = 0, len;
	const uint8_t *nl;
	json_t *str;

	while (pos < b->len) {
		nl = memchr(b->data + pos, '\n', b->len - pos);
		len = nl != NULL ? (size_t)(nl - (b->data + pos))
				 : b->len - pos;
		if (len > 0 && *taken > 0 && *taken + len > max_bytes) {
			*next = ((uint64_t)seq << 32) | (off + pos);
			return DD_OK;
		}
		if (len > 0) {
			str = dd_rt_json_text(b->data + pos, len);
			if (json_array_append_new(records, str) != 0)
				return DD_ERR_NOMEM;
			*taken += len;
		}
		pos += len + (nl != NULL);
	}
	return DD_OK;
}

dd_err_t dd_hist_replay(dd_hist *h, const char *id, uint64_t cursor,
			size_t max_bytes, json_t *records, uint64_t *next,
			int *truncated)
{
	const struct sess *s = find(h, id);
	uint32_t seq;
	uint64_t off;
	size_t taken = 0;
	dd_buf b;
	dd_err_t rc = DD_OK;

	*next = 0;
	*truncated = 0;
	if (s == NULL)
		return DD_ERR_NOT_FOUND;
	seq = cursor == 0 ? s->first : (uint32_t)(cursor >> 32);
	off = cursor & 0xffffffffu;
	if (seq > s->last)
		return DD_ERR_INVALID;
	if (seq < s->first) {
		seq = s->first; /* rotated away since the last page */
		off = 0;
	}
	*truncated = s->first > 0;
	dd_buf_init(&b, h->o.segment_bytes + DD_SEAL_MAX_LINE + 1);
	for (; seq <= s->last && *next == 0; seq++, off = 0) {
		dd_buf_reset(&b);
		rc = read_seg(h, s, seq, off, &b);
		if (rc == DD_ERR_NOT_FOUND) {
			rc = DD_OK;
			continue;
		}
		if (rc == DD_OK)
			rc = take_lines(&b, seq, off, max_bytes, &taken,
					records, next);
		if (rc || seq == MAX_SEQ)
			break;
	}
	dd_buf_free(&b);
	return rc;
}

uint64_t dd_hist_bytes(const dd_hist *h)
{
	return h->total;
}
