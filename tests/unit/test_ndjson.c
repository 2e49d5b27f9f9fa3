/*
 * test_ndjson.c: the EasyEnclave socket client against a fake EE server
 * on a real unix socket in the test's own loop, plus the pure framing,
 * parsing and encoding functions.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/ndjson.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* ---- fake EasyEnclave server ---- */

typedef enum {
	M_ECHO,      /* {"ok":true,"echo":<request>} */
	M_GARBAGE,   /* a line that is not JSON */
	M_ARRAY,     /* valid JSON, not an object */
	M_CLOSE,     /* close at once, reading nothing */
	M_PARTIAL,   /* half a line, then close */
	M_BIG,       /* a 100 kB line */
	M_SILENT,    /* read, never answer */
	M_SPLIT,     /* the reply in three writes */
	M_TRAILING,  /* reply line plus bytes after it */
	M_REFUSE,    /* {"ok":false,"error":"unauthenticated"} */
	M_ATTACH,    /* ack + PTY bytes in one write, then echo */
	M_FIXED,     /* a canned reply, parsing nothing (torture) */
} mode;

typedef struct econn {
	uv_pipe_t pipe;
	struct esrv *s;
	char buf[8192];
	size_t len;
	int answered;
	struct econn *next, *prev;
} econn;

typedef struct esrv {
	uv_pipe_t listener;
	mode mode;
	econn *conns;
	int open;
	int requests;
	int saw_eof;
	json_t *last;      /* the last request received */
	char raw[8192];    /* and its raw line */
} esrv;

static void econn_closed(uv_handle_t *h)
{
	econn *c = h->data;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->s->open--;
	free(c);
}

static void econn_close(econn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, econn_closed);
}

typedef struct ewr {
	uv_write_t w;
	char *data;
	int close_after;
} ewr;

static void on_ewrite(uv_write_t *w, int status)
{
	ewr *e = (ewr *)w;

	(void)status;
	if (e->close_after)
		econn_close(w->data);
	free(e->data);
	free(e);
}

static void esend(econn *c, const char *data, size_t len, int close_after)
{
	ewr *e = calloc(1, sizeof *e);
	uv_buf_t b;

	assert_non_null(e);
	e->data = malloc(len ? len : 1);
	assert_non_null(e->data);
	memcpy(e->data, data, len);
	e->close_after = close_after;
	e->w.data = c;
	b = uv_buf_init(e->data, (unsigned)len);
	assert_int_equal(uv_write(&e->w, (uv_stream_t *)&c->pipe, &b, 1,
				  on_ewrite), 0);
}

static void esends(econn *c, const char *s, int close_after)
{
	esend(c, s, strlen(s), close_after);
}

static void answer(econn *c, const char *line, size_t n)
{
	esrv *s = c->s;
	json_error_t je;
	char *dump, *big;

	s->requests++;
	snprintf(s->raw, sizeof s->raw, "%.*s", (int)n, line);
	if (s->mode == M_FIXED) {
		/* jansson allocates through the torture hook: keep out. */
		esends(c, "{\"ok\":true,\"n\":[1,{\"k\":\"v\"}]}\n", 0);
		return;
	}
	json_decref(s->last);
	s->last = json_loadb(line, n, 0, &je);
	switch (s->mode) {
	case M_ECHO:
		dump = json_dumps(s->last, JSON_COMPACT);
		assert_non_null(dump);
		esends(c, "{\"ok\":true,\"echo\":", 0);
		esends(c, dump, 0);
		esends(c, "}\n", 0);
		free(dump);
		break;
	case M_GARBAGE:
		esends(c, "this is not json\n", 0);
		break;
	case M_ARRAY:
		esends(c, "[1,2,3]\n", 0);
		break;
	case M_PARTIAL:
		esends(c, "{\"ok\":tr", 1);
		break;
	case M_BIG:
		big = malloc(100001);
		assert_non_null(big);
		memset(big, 'a', 100000);
		memcpy(big, "{\"x\":\"", 6);
		memcpy(big + 99997, "\"}\n", 3);
		esend(c, big, 100000, 0);
		free(big);
		break;
	case M_SPLIT:
		esends(c, "{\"ok\":", 0);
		esends(c, "true,\"n\"", 0);
		esends(c, ":1}\n", 0);
		break;
	case M_TRAILING:
		esends(c, "{\"ok\":true}\n{\"second\":1}\n", 0);
		break;
	case M_REFUSE:
		esends(c, "{\"ok\":false,\"error\":\"unauthenticated\"}\n", 0);
		break;
	case M_ATTACH:
		esends(c, "{\"ok\":true,\"attached\":true}\nPTY-HELLO", 0);
		break;
	case M_CLOSE:
	case M_SILENT:
	case M_FIXED:
		break;
	}
}

static void ealloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	econn *c = h->data;

	(void)hint;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void eread(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	econn *c = st->data;
	char *nl;

	if (n < 0) {
		c->s->saw_eof += n == UV_EOF;
		/* Silent keeps its half open, as a stuck EE would. */
		if (c->s->mode == M_SILENT)
			uv_read_stop(st);
		else
			econn_close(c);
		return;
	}
	if (c->answered && c->s->mode == M_ATTACH) {
		/* Stream mode: echo the client's bytes back. */
		esend(c, b->base, (size_t)n, 0);
		return;
	}
	c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (nl == NULL || c->answered)
		return;
	c->answered = 1;
	answer(c, c->buf, (size_t)(nl - c->buf));
	c->len = 0;
}

static void eaccept(uv_stream_t *l, int status)
{
	esrv *s = l->data;
	econn *c = calloc(1, sizeof *c);

	assert_int_equal(status, 0);
	assert_non_null(c);
	c->s = s;
	uv_pipe_init(l->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->open++;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->pipe), 0);
	if (s->mode == M_CLOSE) {
		econn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, ealloc, eread);
}

static void elistener_closed(uv_handle_t *h)
{
	((esrv *)h->data)->open--;
}

/* ---- fixture ---- */

typedef struct fx {
	uv_loop_t loop;
	uv_timer_t tick;
	esrv s;
	dd_ndjson *c;
	int closed;
	char dir[64];
	char path[128];
} fx;

typedef struct res {
	int called;
	dd_err_t err;
	json_t *reply;
	char why[256];
} res;

static void on_reply(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	res *r = ud;

	r->called++;
	r->err = err;
	r->reply = reply != NULL ? json_incref(reply) : NULL;
	assert_non_null(why);
	snprintf(r->why, sizeof r->why, "%s", why);
	assert_true(err == DD_OK ? reply != NULL && why[0] == '\0'
				 : reply == NULL && why[0] != '\0');
	assert_null(strstr(why, TOKEN));
}

static void on_never(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	(void)err;
	(void)reply;
	(void)why;
	(void)ud;
	fail_msg("callback of a cancelled call ran");
}

static void on_closed(dd_ndjson *c, void *ud)
{
	(void)c;
	((fx *)ud)->closed = 1;
}

static void on_closed_flag(dd_ndjson *c, void *ud)
{
	(void)c;
	*(int *)ud = 1;
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	snprintf(f->dir, sizeof f->dir, "/tmp/dd-ndjson-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/ee.sock", f->dir);
	uv_pipe_init(&f->loop, &f->s.listener, 0);
	f->s.listener.data = &f->s;
	f->s.open = 1;
	assert_int_equal(uv_pipe_bind(&f->s.listener, f->path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->s.listener, 16,
				   eaccept), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	if (f->c != NULL)
		dd_ndjson_close(f->c, on_closed, f);
	for (econn *c = f->s.conns; c != NULL; c = c->next)
		econn_close(c);
	uv_close((uv_handle_t *)&f->s.listener, elistener_closed);
	uv_close((uv_handle_t *)&f->tick, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_true(f->c == NULL || f->closed);
	assert_int_equal(f->s.open, 0);
	dd_ndjson_free(f->c);
	json_decref(f->s.last);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static dd_ndjson *client(fx *f, const char *token, uint64_t timeout_ms,
			 size_t max_reply)
{
	dd_ndjson_opts o = {.path = f->path, .token = token,
			    .timeout_ms = timeout_ms ? timeout_ms : 5000,
			    .max_reply = max_reply};

	assert_null(f->c);
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &f->c), DD_OK);
	return f->c;
}

static void run_until(fx *f, const int *counter, int n)
{
	uint64_t deadline = dd_now_ms() + 20000;

	uv_timer_start(&f->tick, on_tick, 20, 20);
	while (*counter < n) {
		assert_true(dd_now_ms() < deadline);
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&f->tick);
}

static void run_for(fx *f, uint64_t ms)
{
	uint64_t end = dd_now_ms() + ms;

	uv_timer_start(&f->tick, on_tick, 10, 10);
	while (dd_now_ms() < end)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->tick);
}

/* One call of {"method":<method>} in server mode m. */
static void call(fx *f, mode m, const char *method, res *r)
{
	json_t *rq = json_pack("{ss}", "method", method);

	assert_non_null(rq);
	memset(r, 0, sizeof *r);
	f->s.mode = m;
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, r, NULL), DD_OK);
	json_decref(rq);
	run_until(f, &r->called, 1);
	assert_int_equal(r->called, 1);
}

static void res_clear(res *r)
{
	json_decref(r->reply);
	r->reply = NULL;
}

/* ---- pure: reader, parser, encoder, reply check ---- */

static void test_reader(void **state)
{
	dd_ndjson_reader rd;
	size_t used = 99;

	(void)state;
	dd_ndjson_reader_init(&rd, 8);
	assert_int_equal(dd_ndjson_reader_feed(&rd, (const uint8_t *)"", 0,
					       &used), DD_ERR_TRUNCATED);
	assert_int_equal(used, 0);
	assert_int_equal(dd_ndjson_reader_feed(&rd, (const uint8_t *)"{\"a\"",
					       4, &used), DD_ERR_TRUNCATED);
	assert_int_equal(used, 4);
	assert_int_equal(dd_ndjson_reader_feed(&rd,
					       (const uint8_t *)":1}\nRAW\n",
					       9, &used), DD_OK);
	assert_int_equal(used, 4); /* "RAW\n" is not ours */
	assert_int_equal(rd.line.len, 7);
	assert_memory_equal(rd.line.data, "{\"a\":1}", 7);
	/* Finished: further bytes are refused, not consumed. */
	assert_int_equal(dd_ndjson_reader_feed(&rd, (const uint8_t *)"x\n", 2,
					       &used), DD_OK);
	assert_int_equal(used, 0);
	dd_ndjson_reader_free(&rd);

	/* Exactly max bytes fit; one more does not. */
	dd_ndjson_reader_init(&rd, 8);
	assert_int_equal(dd_ndjson_reader_feed(&rd,
					       (const uint8_t *)"12345678\n",
					       9, &used), DD_OK);
	dd_ndjson_reader_free(&rd);
	dd_ndjson_reader_init(&rd, 8);
	assert_int_equal(dd_ndjson_reader_feed(&rd,
					       (const uint8_t *)"12345", 5,
					       &used), DD_ERR_TRUNCATED);
	assert_int_equal(dd_ndjson_reader_feed(&rd,
					       (const uint8_t *)"6789\n", 5,
					       &used), DD_ERR_TOO_LARGE);
	assert_int_equal(dd_ndjson_reader_feed(&rd, (const uint8_t *)"\n", 1,
					       &used), DD_ERR_TOO_LARGE);
	assert_int_equal(used, 0);
	dd_ndjson_reader_free(&rd);
	/* Too large even without a newline in sight. */
	dd_ndjson_reader_init(&rd, 8);
	assert_int_equal(dd_ndjson_reader_feed(&rd,
					       (const uint8_t *)"123456789",
					       9, &used), DD_ERR_TOO_LARGE);
	dd_ndjson_reader_free(&rd);
}

static void expect_parse(const char *line, dd_err_t want)
{
	json_t *v = (json_t *)(uintptr_t)1;
	char why[128];

	assert_int_equal(dd_ndjson_parse_line(line, strlen(line), 64, &v, why,
					      sizeof why), want);
	if (want == DD_OK) {
		assert_true(json_is_object(v));
		json_decref(v);
	} else {
		assert_null(v);
		assert_true(strlen(why) > 0);
	}
}

static void test_parse_line(void **state)
{
	static const char nul[] = "{\"a\":\"x\0y\"}";
	json_t *v;

	(void)state;
	expect_parse("{\"ok\":true}", DD_OK);
	expect_parse(" {\"ok\":true} \r", DD_OK);
	expect_parse("{}", DD_OK);
	expect_parse("", DD_ERR_INVALID);
	expect_parse("garbage", DD_ERR_INVALID);
	expect_parse("[1]", DD_ERR_INVALID);
	expect_parse("\"str\"", DD_ERR_INVALID);
	expect_parse("42", DD_ERR_INVALID);
	expect_parse("{\"ok\":true} {}", DD_ERR_INVALID);
	expect_parse("{\"a\":1,\"a\":2}", DD_ERR_INVALID);
	expect_parse("{\"a\":\"\\u0000\"}", DD_ERR_INVALID);
	expect_parse("{\"a\":\"\xff\"}", DD_ERR_INVALID);
	expect_parse("{\"a\":1", DD_ERR_INVALID);
	expect_parse("{\"a\":\"0123456789012345678901234567890123456789"
		     "01234567890123456\"}", DD_ERR_TOO_LARGE);
	assert_int_not_equal(dd_ndjson_parse_line(nul, sizeof nul - 1, 64, &v,
						  NULL, 0), DD_OK);
}

/* Flip, truncate and extend valid replies: never a crash or a leak. */
static void test_reply_mutations(void **state)
{
	static const char *const seeds[] = {
		"{\"ok\":true,\"attestation_type\":\"tdx\",\"workloads\":2}",
		"{\"ok\":false,\"error\":\"unknown method: x\"}",
		"{\"ok\":true,\"deployments\":[{\"id\":\"a\",\"pid\":null}]}",
		"{\"ok\":true,\"exit_code\":-1,\"stdout\":\"\\u00e9\\n\"}",
	};
	char buf[128];
	json_t *v;
	const char *e;

	(void)state;
	for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
		size_t n = strlen(seeds[s]);
		for (size_t cut = 0; cut <= n; cut++) {
			char *p = malloc(cut ? cut : 1);
			assert_non_null(p);
			memcpy(p, seeds[s], cut);
			if (dd_ndjson_parse_line(p, cut, 4096, &v, NULL, 0) ==
			    DD_OK) {
				assert_int_equal(cut, n);
				json_decref(v);
			}
			free(p);
		}
		for (size_t i = 0; i < n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				memcpy(buf, seeds[s], n);
				buf[i] = (char)(buf[i] ^ (1 << bit));
				if (dd_ndjson_parse_line(buf, n, 4096, &v,
							 NULL, 0) != DD_OK)
					continue;
				(void)dd_ndjson_reply_check(v, &e);
				assert_non_null(e);
				json_decref(v);
			}
		}
	}
}

static void test_encode(void **state)
{
	json_t *rq = json_pack("{ss s[ss]}", "method", "exec", "cmd", "ls",
			       "-l");
	json_t *with = json_pack("{ss ss}", "method", "health", "token",
				 "caller");
	json_t *empty = json_object(), *arr = json_array();
	dd_buf b;
	char *before;

	(void)state;
	before = json_dumps(with, JSON_COMPACT | JSON_SORT_KEYS);
	dd_buf_init(&b, 4096);
	assert_int_equal(dd_ndjson_encode(&b, rq, NULL), DD_OK);
	assert_string_equal(dd_buf_str(&b),
			    "{\"method\":\"exec\",\"cmd\":[\"ls\",\"-l\"]}\n");
	dd_buf_reset(&b);
	assert_int_equal(dd_ndjson_encode(&b, rq, TOKEN), DD_OK);
	assert_string_equal(dd_buf_str(&b), "{\"method\":\"exec\",\"cmd\":"
			    "[\"ls\",\"-l\"],\"token\":\"" TOKEN "\"}\n");
	dd_buf_reset(&b);
	assert_int_equal(dd_ndjson_encode(&b, empty, TOKEN), DD_OK);
	assert_string_equal(dd_buf_str(&b), "{\"token\":\"" TOKEN "\"}\n");
	/* A caller's own token is replaced, and the caller's JSON kept. */
	dd_buf_reset(&b);
	assert_int_equal(dd_ndjson_encode(&b, with, TOKEN), DD_OK);
	assert_string_equal(dd_buf_str(&b), "{\"method\":\"health\",\"token\":"
			    "\"" TOKEN "\"}\n");
	{
		char *after = json_dumps(with, JSON_COMPACT | JSON_SORT_KEYS);
		assert_string_equal(before, after);
		free(after);
	}
	dd_buf_reset(&b);
	assert_int_equal(dd_ndjson_encode(&b, arr, NULL), DD_ERR_INVALID);
	assert_int_equal(dd_ndjson_encode(&b, NULL, NULL), DD_ERR_INVALID);
	assert_int_equal(dd_ndjson_encode(&b, rq, "bad\"token"),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ndjson_encode(&b, rq, ""), DD_ERR_INVALID);
	assert_int_equal(b.len, 0);
	dd_buf_free(&b);
	dd_buf_init(&b, 20);
	assert_int_equal(dd_ndjson_encode(&b, rq, TOKEN), DD_ERR_TOO_LARGE);
	dd_buf_freezero(&b);
	free(before);
	json_decref(rq);
	json_decref(with);
	json_decref(empty);
	json_decref(arr);
}

static void test_reply_check(void **state)
{
	json_t *ok = json_pack("{sb}", "ok", 1);
	json_t *bad = json_pack("{sbss}", "ok", 0, "error", "missing id");
	json_t *unauth = json_pack("{sbss}", "ok", 0, "error",
				   "unauthenticated");
	json_t *bare = json_pack("{sb}", "ok", 0);
	json_t *none = json_pack("{ss}", "ok", "yes");
	const char *e = NULL;

	(void)state;
	assert_int_equal(dd_ndjson_reply_check(ok, &e), DD_OK);
	assert_string_equal(e, "");
	assert_int_equal(dd_ndjson_reply_check(bad, &e), DD_ERR_UPSTREAM);
	assert_string_equal(e, "missing id");
	assert_int_equal(dd_ndjson_reply_check(unauth, &e),
			 DD_ERR_UNAUTHORIZED);
	assert_int_equal(dd_ndjson_reply_check(bare, &e), DD_ERR_UPSTREAM);
	assert_true(strlen(e) > 0);
	assert_int_equal(dd_ndjson_reply_check(none, NULL), DD_ERR_INVALID);
	json_decref(ok);
	json_decref(bad);
	json_decref(unauth);
	json_decref(bare);
	json_decref(none);
}

static void test_new_config(void **state)
{
	fx *f = *state;
	char longpath[200];
	dd_ndjson_opts o = {.path = longpath};
	dd_ndjson *c = (dd_ndjson *)(uintptr_t)1;

	memset(longpath, 'p', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_ERR_CONFIG);
	assert_null(c);
	o.path = "";
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_ERR_CONFIG);
	o.path = NULL;
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_ERR_CONFIG);
	assert_int_equal(dd_ndjson_new(&f->loop, NULL, &c), DD_ERR_CONFIG);
	o.path = f->path;
	o.token = "has space";
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_ERR_CONFIG);
	o.token = "quote\"inside";
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_ERR_CONFIG);
}

/* ---- against the fake EasyEnclave socket ---- */

static void test_call_ok(void **state)
{
	fx *f = *state;
	json_t *rq = json_pack("{ss si}", "method", "logs", "tail", 5);
	char *before = json_dumps(rq, JSON_COMPACT);
	const char *m = NULL;
	res r = {0};

	client(f, TOKEN, 0, 0);
	f->s.mode = M_ECHO;
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &r, NULL), DD_OK);
	run_until(f, &r.called, 1);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(dd_ndjson_reply_check(r.reply, NULL), DD_OK);
	/* The server got method, tail and the injected token. */
	assert_int_equal(dd_json_get_str(f->s.last, "method", &m), DD_OK);
	assert_string_equal(m, "logs");
	assert_int_equal(dd_json_get_str(f->s.last, "token", &m), DD_OK);
	assert_string_equal(m, TOKEN);
	assert_int_equal(json_integer_value(json_object_get(f->s.last,
							    "tail")), 5);
	assert_true(json_equal(json_object_get(r.reply, "echo"), f->s.last));
	/* The caller's request is untouched. */
	{
		char *after = json_dumps(rq, JSON_COMPACT);
		assert_string_equal(before, after);
		free(after);
	}
	/* We shut our write half: the server saw EOF after the line. */
	run_for(f, 50);
	assert_int_equal(f->s.saw_eof, 1);
	free(before);
	json_decref(rq);
	res_clear(&r);
}

static void test_call_without_token(void **state)
{
	fx *f = *state;
	res r;

	client(f, "", 0, 0);
	call(f, M_ECHO, "health", &r);
	assert_int_equal(r.err, DD_OK);
	assert_null(json_object_get(f->s.last, "token"));
	assert_string_equal(f->s.raw, "{\"method\":\"health\"}");
	res_clear(&r);
}

static void test_call_errors(void **state)
{
	fx *f = *state;
	res r;

	client(f, TOKEN, 0, 1000);
	call(f, M_GARBAGE, "health", &r);
	assert_int_equal(r.err, DD_ERR_INVALID);
	assert_non_null(strstr(r.why, "invalid JSON"));
	call(f, M_ARRAY, "health", &r);
	assert_int_equal(r.err, DD_ERR_INVALID);
	call(f, M_CLOSE, "health", &r);
	assert_int_equal(r.err, DD_ERR_CLOSED);
	call(f, M_PARTIAL, "health", &r);
	assert_int_equal(r.err, DD_ERR_TRUNCATED);
	call(f, M_BIG, "health", &r);
	assert_int_equal(r.err, DD_ERR_TOO_LARGE);
	assert_non_null(strstr(r.why, "1000"));
	call(f, M_SPLIT, "health", &r);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(json_integer_value(json_object_get(r.reply, "n")), 1);
	res_clear(&r);
	call(f, M_TRAILING, "health", &r);
	assert_int_equal(r.err, DD_OK);
	assert_null(json_object_get(r.reply, "second"));
	res_clear(&r);
	/* ok:false is a complete answer; reply_check says what it means. */
	call(f, M_REFUSE, "health", &r);
	assert_int_equal(r.err, DD_OK);
	assert_int_equal(dd_ndjson_reply_check(r.reply, NULL),
			 DD_ERR_UNAUTHORIZED);
	res_clear(&r);
}

static void test_timeout(void **state)
{
	fx *f = *state;
	uint64_t t0 = dd_now_ms();
	res r;

	client(f, NULL, 150, 0);
	call(f, M_SILENT, "health", &r);
	assert_int_equal(r.err, DD_ERR_TIMEOUT);
	assert_true(dd_now_ms() - t0 >= 140);
	assert_non_null(strstr(r.why, "150 ms"));
}

static void test_socket_missing_or_refusing(void **state)
{
	fx *f = *state;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	dd_ndjson_opts o = {.timeout_ms = 5000};
	char path[160];
	dd_ndjson *c = NULL;
	json_t *rq = json_pack("{ss}", "method", "health");
	res r = {0};
	int fd, done = 0;

	/* No file at the path. */
	snprintf(path, sizeof path, "%s/missing.sock", f->dir);
	o.path = path;
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_OK);
	assert_int_equal(dd_ndjson_call(c, rq, on_reply, &r, NULL), DD_OK);
	run_until(f, &r.called, 1);
	assert_int_equal(r.err, DD_ERR_NOT_FOUND);
	assert_non_null(strstr(r.why, "missing.sock"));
	/* A socket file nobody listens on. */
	snprintf(path, sizeof path, "%s/dead.sock", f->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof a.sun_path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	close(fd);
	dd_ndjson_close(c, on_closed_flag, &done);
	while (!done)
		uv_run(&f->loop, UV_RUN_ONCE);
	dd_ndjson_free(c);
	assert_int_equal(dd_ndjson_new(&f->loop, &o, &c), DD_OK);
	memset(&r, 0, sizeof r);
	assert_int_equal(dd_ndjson_call(c, rq, on_reply, &r, NULL), DD_OK);
	run_until(f, &r.called, 1);
	assert_int_equal(r.err, DD_ERR_UPSTREAM);
	assert_non_null(strstr(r.why, "refused"));
	done = 0;
	dd_ndjson_close(c, on_closed_flag, &done);
	while (!done)
		uv_run(&f->loop, UV_RUN_ONCE);
	dd_ndjson_free(c);
	unlink(path);
	json_decref(rq);
}

static void test_invalid_and_busy(void **state)
{
	fx *f = *state;
	dd_ndjson_opts o = {.path = f->path, .max_inflight = 1,
			    .max_request = 64};
	json_t *arr = json_array();
	json_t *rq = json_pack("{ss}", "method", "health");
	json_t *big = json_pack("{ss}", "method",
				"0123456789012345678901234567890123456789"
				"0123456789012345678901234567890123456789");
	dd_ndjson_req *h = NULL;
	res r = {0};

	assert_int_equal(dd_ndjson_new(&f->loop, &o, &f->c), DD_OK);
	assert_int_equal(dd_ndjson_call(f->c, arr, on_reply, &r, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ndjson_call(f->c, rq, NULL, NULL, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_ndjson_call(f->c, big, on_reply, &r, NULL),
			 DD_ERR_TOO_LARGE);
	f->s.mode = M_SILENT;
	assert_int_equal(dd_ndjson_call(f->c, rq, on_never, NULL, &h), DD_OK);
	assert_non_null(h);
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &r, NULL),
			 DD_ERR_BUSY);
	dd_ndjson_cancel(h);
	f->s.mode = M_ECHO;
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &r, NULL), DD_OK);
	run_until(f, &r.called, 1);
	assert_int_equal(r.err, DD_OK);
	res_clear(&r);
	json_decref(arr);
	json_decref(rq);
	json_decref(big);
}

static void test_cancel_and_close(void **state)
{
	fx *f = *state;
	json_t *rq = json_pack("{ss}", "method", "health");
	dd_ndjson_req *h = NULL;
	res a = {0}, b = {0};

	client(f, TOKEN, 60000, 0);
	f->s.mode = M_SILENT;
	/* Cancel before and after the connection is up. */
	assert_int_equal(dd_ndjson_call(f->c, rq, on_never, NULL, &h), DD_OK);
	dd_ndjson_cancel(h);
	assert_int_equal(dd_ndjson_call(f->c, rq, on_never, NULL, &h), DD_OK);
	run_for(f, 50);
	assert_int_equal(f->s.requests, 1);
	dd_ndjson_cancel(h);
	/* Close with calls in flight: each completes as CANCELLED. */
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &a, NULL), DD_OK);
	run_for(f, 50);
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &b, NULL), DD_OK);
	dd_ndjson_close(f->c, on_closed, f);
	assert_int_equal(a.called, 1);
	assert_int_equal(b.called, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	assert_int_equal(b.err, DD_ERR_CANCELLED);
	assert_int_equal(dd_ndjson_call(f->c, rq, on_reply, &a, NULL),
			 DD_ERR_CLOSED);
	assert_false(f->closed); /* done runs from the loop, not here */
	json_decref(rq);
}

/* ---- attach ---- */

typedef struct att {
	int called;
	dd_err_t err;
	uv_pipe_t *pipe;
	char extra[64];
	int attached;
	char why[256];
	char echoed[64];
	size_t echoed_len;
} att;

static void on_attach(dd_err_t err, uv_pipe_t *pipe, const uint8_t *extra,
		      size_t extra_len, json_t *ack, const char *why, void *ud)
{
	att *a = ud;
	int flag = 0;

	a->called++;
	a->err = err;
	a->pipe = pipe;
	snprintf(a->why, sizeof a->why, "%s", why);
	snprintf(a->extra, sizeof a->extra, "%.*s", (int)extra_len,
		 (const char *)extra);
	if (err == DD_OK) {
		assert_non_null(pipe);
		assert_null(pipe->data);
		assert_true(json_is_object(ack));
		if (dd_json_get_bool(ack, "attached", &flag) == DD_OK)
			a->attached = flag;
	} else {
		assert_null(pipe);
		assert_null(ack);
		assert_int_equal(extra_len, 0);
	}
}

static void on_attach_never(dd_err_t err, uv_pipe_t *pipe,
			    const uint8_t *extra, size_t extra_len,
			    json_t *ack, const char *why, void *ud)
{
	(void)err;
	(void)pipe;
	(void)extra;
	(void)extra_len;
	(void)ack;
	(void)why;
	(void)ud;
	fail_msg("callback of a cancelled attach ran");
}

static void stream_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char buf[256];

	(void)h;
	(void)hint;
	*b = uv_buf_init(buf, sizeof buf);
}

static void stream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	att *a = s->data;

	if (n <= 0)
		return;
	assert_true(a->echoed_len + (size_t)n < sizeof a->echoed);
	memcpy(a->echoed + a->echoed_len, b->base, (size_t)n);
	a->echoed_len += (size_t)n;
}

static void attach(fx *f, mode m, att *a)
{
	json_t *rq = json_pack("{ss s[s]}", "method", "attach", "cmd",
			       "/bin/sh");

	memset(a, 0, sizeof *a);
	f->s.mode = m;
	assert_int_equal(dd_ndjson_attach(f->c, rq, on_attach, a, NULL),
			 DD_OK);
	json_decref(rq);
	run_until(f, &a->called, 1);
}

static void test_attach_stream(void **state)
{
	fx *f = *state;
	const char *tok = NULL;
	static char ping[] = "ping\n";
	uv_write_t w;
	uv_buf_t b = uv_buf_init(ping, 5);
	att a;

	client(f, TOKEN, 0, 0);
	attach(f, M_ATTACH, &a);
	assert_int_equal(a.err, DD_OK);
	assert_true(a.attached);
	/* PTY bytes sent together with the ack are not lost. */
	assert_string_equal(a.extra, "PTY-HELLO");
	assert_int_equal(dd_json_get_str(f->s.last, "token", &tok), DD_OK);
	assert_string_equal(tok, TOKEN);
	/* The stream is ours: our write half is open, bytes flow. */
	a.pipe->data = &a;
	assert_int_equal(uv_write(&w, (uv_stream_t *)a.pipe, &b, 1, NULL), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)a.pipe, stream_alloc,
				       stream_read), 0);
	while (a.echoed_len < 5)
		run_for(f, 10);
	assert_memory_equal(a.echoed, "ping\n", 5);
	dd_ndjson_pipe_close(a.pipe);
	/* The client closes independently of the handed-over pipe. */
}

static void test_attach_errors(void **state)
{
	fx *f = *state;
	att a;

	client(f, TOKEN, 200, 0);
	attach(f, M_REFUSE, &a);
	assert_int_equal(a.err, DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(a.why, "unauthenticated"));
	attach(f, M_GARBAGE, &a);
	assert_int_equal(a.err, DD_ERR_INVALID);
	attach(f, M_BIG, &a); /* the ack is capped at 4096 bytes */
	assert_int_equal(a.err, DD_ERR_TOO_LARGE);
	attach(f, M_CLOSE, &a);
	assert_int_equal(a.err, DD_ERR_CLOSED);
	attach(f, M_PARTIAL, &a);
	assert_int_equal(a.err, DD_ERR_TRUNCATED);
	attach(f, M_SILENT, &a);
	assert_int_equal(a.err, DD_ERR_TIMEOUT);
	attach(f, M_ECHO, &a); /* an ok:true echo is a valid ack */
	assert_int_equal(a.err, DD_OK);
	assert_string_equal(a.extra, "");
	dd_ndjson_pipe_close(a.pipe);
}

static void test_attach_cancel_and_close(void **state)
{
	fx *f = *state;
	json_t *rq = json_pack("{ss}", "method", "attach");
	dd_ndjson_req *h = NULL;
	att a = {0};

	client(f, NULL, 60000, 0);
	f->s.mode = M_SILENT;
	assert_int_equal(dd_ndjson_attach(f->c, rq, on_attach_never, NULL,
					  &h), DD_OK);
	run_for(f, 30);
	dd_ndjson_cancel(h);
	assert_int_equal(dd_ndjson_attach(f->c, rq, on_attach, &a, NULL),
			 DD_OK);
	run_for(f, 30);
	dd_ndjson_close(f->c, on_closed, f);
	assert_int_equal(a.called, 1);
	assert_int_equal(a.err, DD_ERR_CANCELLED);
	json_decref(rq);
}

/*
 * R17: fail the nth allocation of a whole call, for every n the call
 * makes (in -Dtorture builds; elsewhere this runs once). The call must
 * either refuse to start or complete with a clean error, never leak.
 */
static void test_torture(void **state)
{
	fx *f = *state;
	json_t *rq = json_pack("{ss s{si}}", "method", "exec", "opts", "n", 1);
	unsigned long n, used;
	dd_err_t rc;
	res r;

	client(f, TOKEN, 0, 0);
	f->s.mode = M_FIXED;
	for (n = 1;; n++) {
		memset(&r, 0, sizeof r);
		dd_alloc_fail_at(n);
		rc = dd_ndjson_call(f->c, rq, on_reply, &r, NULL);
		if (rc == DD_OK)
			run_until(f, &r.called, 1);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		if (rc != DD_OK && rc != DD_ERR_NOMEM)
			fail_msg("n=%lu start: %s", n, dd_errname(rc));
		/*
		 * The reply is valid, so INVALID can only be jansson
		 * failing an allocation: it reports some of those as
		 * syntax errors, which dd_json_parse cannot tell apart.
		 */
		if (rc == DD_OK && r.err != DD_OK && r.err != DD_ERR_NOMEM &&
		    r.err != DD_ERR_INVALID)
			fail_msg("n=%lu reply: %s (%s)", n, dd_errname(r.err),
				 r.why);
		res_clear(&r);
		if (used < n)
			break;
	}
	run_for(f, 20);
	json_decref(rq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_reply_mutations),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_reply_check),
		cmocka_unit_test_setup_teardown(test_new_config, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_call_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_without_token, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_call_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_missing_or_refusing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_and_busy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attach_stream, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attach_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attach_cancel_and_close,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_torture, setup, teardown),
	};

	/* A peer that goes away mid-write must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
