#include "sessiond/session.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "runtime/env.h"
#include "runtime/proto.h"
#include "sessiond/seal.h"

#define MAX_NAME 128
#define MAX_META 16384
#define REC_CAP (DD_SEAL_MAX_LINE / 2)
/*
 * Output is sealed in batches: at most BATCH_BYTES, at most BATCH_MS
 * old. One seal (two X25519 operations per recipient) per keystroke echo
 * would cost more than the echo itself; a batch holds a burst.
 */
#define BATCH_BYTES 16384
#define BATCH_MS 50

struct dd_sd_session {
	dd_sd_sessions *ss;
	dd_sd_session *prev, *next;  /* the list, while listed */
	dd_sd_session *aprev, *anext; /* every session not yet freed */
	int listed;
	char id[DD_HIST_ID_LEN + 1];
	char *name, *recipe_id, *recipe_title, *command, *cwd;
	int64_t created_at, updated_at;
	int exited;
	int exit_code;               /* -1: none (signal, or closed) */
	int history;                 /* recipients existed at creation */
	int warned;                  /* a transcript write failed, logged */
	dd_rt_proc *proc;            /* NULL once done */
	dd_sd_watch *watchers;
	dd_sd_watch *typist;
	uint8_t *ring;
	size_t ring_start, ring_len;
	dd_buf pending;              /* output not yet sealed */
};

struct dd_sd_sessions {
	dd_sd_opts o;
	dd_sd_session *list;
	dd_sd_session *all;
	uv_timer_t flush;
	int closed;                  /* the flush timer is closed */
	size_t listed;
	size_t alive;                /* listed + closed still stopping */
};

/* ---- transcript ---------------------------------------------------------- */

/* One record, sealed to the recipients of this moment, or nothing. */
static void record(dd_sd_session *s, dd_rec_kind kind, const void *data,
		   size_t len)
{
	const dd_sd_rcpts *r = s->ss->o.rcpts;
	dd_buf rec, line;
	dd_err_t rc;

	if (r->n == 0)
		return;
	dd_buf_init(&rec, REC_CAP);
	dd_buf_init(&line, DD_SEAL_MAX_LINE);
	rc = dd_rec_encode((uint64_t)time(NULL), kind, data, len, &rec);
	if (rc == DD_OK)
		rc = dd_seal(r->keys, r->n, rec.data, rec.len, &line);
	if (rc == DD_OK)
		rc = dd_hist_append(s->ss->o.hist, s->id, line.data, line.len);
	if (rc && !s->warned) {
		s->warned = 1;
		dd_log_err(rc, "session %s: transcript record lost", s->id);
	}
	dd_buf_freezero(&rec);
	dd_buf_free(&line);
}

static json_t *meta_json(const dd_sd_session *s)
{
	json_t *code = s->exited && s->exit_code >= 0
			       ? json_integer(s->exit_code) : json_null();

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,"
			 "s:s,s:o,s:s}",
			 "id", s->id, "name", s->name, "recipe_id",
			 s->recipe_id, "recipe_title", s->recipe_title,
			 "workspace_policy", "none", "command", s->command,
			 "cwd", s->cwd, "terminal_mode", "read_write",
			 "integrity_state", "controlled", "integrity_reason",
			 "interactive_pty_control", "created_at",
			 (json_int_t)s->created_at, "updated_at",
			 (json_int_t)s->updated_at, "status",
			 s->exited ? "exited" : "running", "exit_code", code,
			 "history", s->history ? "e2e" : "disabled-no-device");
}

/* The batch of output, sealed now. */
static void flush(dd_sd_session *s)
{
	if (s->pending.len == 0)
		return;
	record(s, DD_REC_PTY, s->pending.data, s->pending.len);
	dd_buf_reset(&s->pending);
}

void dd_sd_flush_all(dd_sd_sessions *ss)
{
	for (dd_sd_session *s = ss->all; s != NULL; s = s->anext)
		flush(s);
	if (!ss->closed)
		uv_timer_stop(&ss->flush);
}

static void on_flush(uv_timer_t *t)
{
	dd_sd_flush_all(t->data);
}

/* Output for the transcript: batched while the timer can flush it. */
static void record_output(dd_sd_session *s, const uint8_t *data, size_t len)
{
	dd_sd_sessions *ss = s->ss;

	if (ss->o.rcpts->n == 0)
		return;
	if (s->pending.len + len > BATCH_BYTES)
		flush(s);
	if (ss->closed || len >= BATCH_BYTES ||
	    dd_buf_append(&s->pending, data, len) != DD_OK) {
		record(s, DD_REC_PTY, data, len);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&ss->flush))
		uv_timer_start(&ss->flush, on_flush, BATCH_MS, 0);
}

static void record_meta(dd_sd_session *s)
{
	json_t *m = meta_json(s);
	dd_buf b;

	flush(s); /* output first: records stay in order */
	dd_buf_init(&b, MAX_META);
	if (m != NULL && dd_json_append(&b, m) == DD_OK)
		record(s, DD_REC_META, b.data, b.len);
	dd_buf_free(&b);
	json_decref(m);
}

/* ---- lifetime ------------------------------------------------------------ */

static void unlist(dd_sd_session *s)
{
	dd_sd_sessions *ss = s->ss;

	if (!s->listed)
		return;
	s->listed = 0;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ss->list = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	ss->listed--;
}

static void session_free(dd_sd_session *s)
{
	dd_sd_sessions *ss = s->ss;

	unlist(s);
	if (s->aprev != NULL)
		s->aprev->anext = s->anext;
	else if (ss->all == s)
		ss->all = s->anext;
	if (s->anext != NULL)
		s->anext->aprev = s->aprev;
	ss->alive--;
	dd_buf_freezero(&s->pending);
	dd_free(s->name);
	dd_free(s->recipe_id);
	dd_free(s->recipe_title);
	dd_free(s->command);
	dd_free(s->cwd);
	dd_free(s->ring);
	dd_free(s);
}

/* Every watcher is told output is over, then forgotten. */
static void end_watchers(dd_sd_session *s)
{
	dd_sd_watch *w;

	while (s->watchers != NULL) {
		w = s->watchers;
		s->watchers = w->next;
		w->s = NULL;
		w->prev = w->next = NULL;
		w->input = 0;
		w->ended(w->ud);
	}
	s->typist = NULL;
}

/* ---- the proc's callbacks ------------------------------------------------ */

static void ring_put(dd_sd_session *s, const uint8_t *data, size_t len)
{
	size_t cap = s->ss->o.scrollback, at, first;

	if (s->ring == NULL)
		return;
	if (len >= cap) {
		memcpy(s->ring, data + len - cap, cap);
		s->ring_start = 0;
		s->ring_len = cap;
		return;
	}
	at = (s->ring_start + s->ring_len) % cap;
	first = cap - at < len ? cap - at : len;
	memcpy(s->ring + at, data, first);
	memcpy(s->ring, data + first, len - first);
	if (s->ring_len + len > cap) {
		s->ring_start = (s->ring_start + s->ring_len + len - cap) % cap;
		s->ring_len = cap;
	} else {
		s->ring_len += len;
	}
}

static void on_output(void *ud, int stream, const uint8_t *data, size_t len)
{
	dd_sd_session *s = ud;
	dd_sd_watch *w, *next;

	(void)stream;
	if (len == 0)
		return;
	ring_put(s, data, len);
	for (w = s->watchers; w != NULL; w = next) {
		next = w->next;
		w->output(w->ud, data, len);
	}
	record_output(s, data, len);
	s->updated_at = (int64_t)time(NULL);
}

static void on_exited(void *ud, int code, int sig)
{
	dd_sd_session *s = ud;

	(void)sig;
	if (s->exited)
		return; /* closed: the close already said so */
	s->exited = 1;
	s->exit_code = code;
	s->updated_at = (int64_t)time(NULL);
	record_meta(s);
}

static void on_done(void *ud)
{
	dd_sd_session *s = ud;

	s->proc = NULL;
	flush(s);
	dd_hist_done(s->ss->o.hist, s->id);
	end_watchers(s);
	if (!s->listed)
		session_free(s);
}

static void on_drained(void *ud)
{
	dd_sd_session *s = ud;

	if (s->typist != NULL && s->typist->drained != NULL)
		s->typist->drained(s->typist->ud);
}

/* ---- creating ------------------------------------------------------------ */

dd_err_t dd_sd_sessions_new(uv_loop_t *loop, const dd_sd_opts *o,
			     dd_sd_sessions **out)
{
	dd_sd_sessions *ss = dd_calloc(1, sizeof *ss);

	*out = NULL;
	if (ss == NULL)
		return DD_ERR_NOMEM;
	ss->o = *o;
	(void)uv_timer_init(loop, &ss->flush);
	ss->flush.data = ss;
	uv_unref((uv_handle_t *)&ss->flush);
	*out = ss;
	return DD_OK;
}

void dd_sd_sessions_close(dd_sd_sessions *ss)
{
	if (ss->closed)
		return;
	dd_sd_flush_all(ss);
	ss->closed = 1;
	uv_close((uv_handle_t *)&ss->flush, NULL);
}

void dd_sd_sessions_free(dd_sd_sessions *ss)
{
	if (ss == NULL)
		return;
	while (ss->list != NULL)
		session_free(ss->list);
	dd_free(ss);
}

/* The child's environment: ours (minus secrets), the recipe's, the PTY's. */
static dd_err_t child_env(const dd_sd_session *s, const dd_recipe *r,
			  char ***out)
{
	char *extra[DD_RECIPE_MAX_ENV + 3];
	char idvar[sizeof "DD_SESSION_ID=" + DD_HIST_ID_LEN];
	char term[] = "TERM=xterm-256color", color[] = "COLORTERM=truecolor";
	size_t n = 0;

	for (size_t i = 0; i < r->envc; i++)
		extra[n++] = r->env[i];
	snprintf(idvar, sizeof idvar, "DD_SESSION_ID=%s", s->id);
	extra[n++] = term;
	extra[n++] = color;
	extra[n++] = idvar;
	return dd_rt_env_compose(s->ss->o.base_env, extra, n, out);
}

static dd_err_t fill(dd_sd_session *s, const dd_recipe *r, const char *name,
		     const char *cwd)
{
	char def[MAX_NAME];

	snprintf(def, sizeof def, "%s-%.8s", r->id, s->id);
	s->name = dd_strdup(name != NULL ? name : def);
	s->recipe_id = dd_strdup(r->id);
	s->recipe_title = dd_strdup(r->title);
	s->command = dd_strdup(r->argv[0]);
	s->cwd = dd_strdup(cwd != NULL ? cwd : r->cwd);
	s->ring = dd_malloc(s->ss->o.scrollback);
	if (s->name == NULL || s->recipe_id == NULL ||
	    s->recipe_title == NULL || s->command == NULL || s->cwd == NULL ||
	    s->ring == NULL)
		return DD_ERR_NOMEM;
	return DD_OK;
}

static dd_err_t spawn(dd_sd_session *s, const dd_recipe *r, uint16_t cols,
		      uint16_t rows, char *why, size_t why_len)
{
	dd_rt_spawn sp;
	char **env = NULL;
	dd_err_t rc;

	rc = child_env(s, r, &env);
	if (rc) {
		snprintf(why, why_len, "out of memory");
		return rc;
	}
	memset(&sp, 0, sizeof sp);
	sp.argv = r->argv;
	sp.env = env;
	sp.pty = 1;
	sp.cols = cols;
	sp.rows = rows;
	sp.cwd = s->cwd;
	sp.hup_ms = s->ss->o.hup_ms;
	sp.grace_ms = s->ss->o.grace_ms;
	sp.cbs.output = on_output;
	sp.cbs.exited = on_exited;
	sp.cbs.done = on_done;
	sp.cbs.drained = on_drained;
	sp.ud = s;
	rc = dd_rt_proc_spawn(s->ss->o.procs, &sp, &s->proc, why, why_len);
	dd_rt_argv_free(env);
	return rc;
}

dd_err_t dd_sd_create(dd_sd_sessions *ss, const char *recipe,
		      const char *name, const char *cwd, uint16_t cols,
		      uint16_t rows, char id[DD_HIST_ID_LEN + 1], char *why,
		      size_t why_len)
{
	const dd_recipe *r;
	dd_sd_session *s;
	dd_err_t rc;

	id[0] = '\0';
	r = dd_recipes_find(ss->o.recipes, recipe != NULL ? recipe : "shell");
	if (r == NULL) {
		snprintf(why, why_len, "unknown recipe");
		return DD_ERR_NOT_FOUND;
	}
	if (ss->alive >= ss->o.max_sessions) {
		snprintf(why, why_len, "%zu sessions already (close one)",
			 ss->alive);
		return DD_ERR_BUSY;
	}
	s = dd_calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(why, why_len, "out of memory");
		return DD_ERR_NOMEM;
	}
	s->ss = ss;
	ss->alive++;
	s->anext = ss->all;
	if (ss->all != NULL)
		ss->all->aprev = s;
	ss->all = s;
	dd_buf_init(&s->pending, BATCH_BYTES);
	s->exit_code = -1;
	s->created_at = s->updated_at = (int64_t)time(NULL);
	s->history = ss->o.rcpts->n > 0;
	rc = dd_rt_uuid(s->id);
	if (rc == DD_OK)
		rc = fill(s, r, name, cwd);
	if (rc) {
		snprintf(why, why_len, "out of memory");
		session_free(s);
		return rc;
	}
	rc = spawn(s, r, cols, rows, why, why_len);
	if (rc) {
		session_free(s);
		return rc == DD_ERR_NOMEM ? rc : DD_ERR_IO;
	}
	s->listed = 1;
	s->next = ss->list;
	if (ss->list != NULL)
		ss->list->prev = s;
	ss->list = s;
	ss->listed++;
	record_meta(s);
	memcpy(id, s->id, sizeof s->id);
	return DD_OK;
}

/* ---- the rest ------------------------------------------------------------ */

dd_sd_session *dd_sd_find(dd_sd_sessions *ss, const char *id)
{
	for (dd_sd_session *s = ss->list; s != NULL; s = s->next) {
		if (strcmp(s->id, id) == 0)
			return s;
	}
	return NULL;
}

size_t dd_sd_count(const dd_sd_sessions *ss)
{
	return ss->listed;
}

static int by_update(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a;
	const json_t *y = *(const json_t *const *)b;
	json_int_t p = json_integer_value(json_object_get(x, "updated_at"));
	json_int_t q = json_integer_value(json_object_get(y, "updated_at"));

	return (p < q) - (p > q);
}

json_t *dd_sd_list(const dd_sd_sessions *ss)
{
	json_t **v = NULL, *arr = json_array();
	size_t n = 0;

	if (arr == NULL)
		return NULL;
	if (ss->listed > 0)
		v = dd_calloc(ss->listed, sizeof *v);
	if (ss->listed > 0 && v == NULL)
		goto fail;
	for (const dd_sd_session *s = ss->list; s != NULL; s = s->next) {
		v[n] = meta_json(s);
		if (v[n++] == NULL)
			goto fail;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, by_update);
	for (size_t i = 0; i < n; i++) {
		if (json_array_append(arr, v[i]) != 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	dd_free(v);
	return arr;
fail:
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	dd_free(v);
	json_decref(arr);
	return NULL;
}

dd_err_t dd_sd_resize(dd_sd_session *s, uint16_t cols, uint16_t rows)
{
	if (s->proc == NULL)
		return DD_ERR_CLOSED;
	return dd_rt_proc_resize(s->proc, cols, rows);
}

void dd_sd_close(dd_sd_session *s)
{
	unlist(s);
	if (!s->exited) {
		s->exited = 1;
		s->exit_code = -1;
		s->updated_at = (int64_t)time(NULL);
		record_meta(s);
	}
	if (s->proc == NULL) {
		session_free(s);
		return;
	}
	dd_rt_proc_stop(s->proc);
}

dd_err_t dd_sd_attach(dd_sd_session *s, dd_sd_watch *w, int tail,
		      int want_input)
{
	size_t cap = s->ss->o.scrollback, first;

	if (s->proc == NULL)
		return DD_ERR_CLOSED;
	w->s = s;
	w->input = want_input && s->typist == NULL;
	if (w->input)
		s->typist = w;
	w->prev = NULL;
	w->next = s->watchers;
	if (s->watchers != NULL)
		s->watchers->prev = w;
	s->watchers = w;
	/* One thread: no output can slip between the snapshot and now. */
	if (tail && s->ring_len > 0) {
		first = cap - s->ring_start < s->ring_len ? cap - s->ring_start
							   : s->ring_len;
		w->output(w->ud, s->ring + s->ring_start, first);
		if (first < s->ring_len)
			w->output(w->ud, s->ring, s->ring_len - first);
	}
	return DD_OK;
}

int dd_sd_typist_free(const dd_sd_session *s)
{
	return s->typist == NULL;
}

void dd_sd_detach(dd_sd_watch *w)
{
	dd_sd_session *s = w->s;

	if (s == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		s->watchers = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	if (s->typist == w)
		s->typist = NULL;
	w->s = NULL;
	w->prev = w->next = NULL;
	w->input = 0;
}

dd_err_t dd_sd_input(dd_sd_watch *w, const uint8_t *data, size_t len,
		     size_t *queued)
{
	dd_sd_session *s = w->s;
	dd_err_t rc;

	*queued = 0;
	if (s == NULL || s->proc == NULL)
		return DD_ERR_CLOSED;
	if (s->typist != w)
		return DD_ERR_FORBIDDEN;
	rc = dd_rt_proc_write(s->proc, data, len);
	*queued = dd_rt_proc_write_queue(s->proc);
	return rc;
}
