/*
 * test_client_token.c: where the client's bearer tokens come from: the
 * choice of source, token files, and GitHub Actions OIDC minting against
 * a fake ACTIONS_ID_TOKEN_REQUEST_URL endpoint served by our own HTTP
 * server on the same loop. The fake checks the request token and the
 * audience as GitHub does and mints a distinct token every time; it can
 * be told to refuse, fail, answer junk or never answer. No error text
 * may carry the request token or a minted token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "client/client_http.h"
#include "client/client_token.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"
#include "net/http.h"

#define REQ_TOKEN "ghs_requesttoken.0123456789"

static struct fake {
	int hits;
	int minted;
	int status;          /* 0: the faithful reply */
	const char *body;    /* with status: this body */
	int silent;
	char want_audience[64];
	char last_query[512];
} fk;

static void dropped(void *ud)
{
	(void)ud;
}

static void fake_token(dd_http_req *req, void *ud)
{
	const char *auth = dd_http_req_header(req, "Authorization");
	const char *aud = dd_http_req_query(req, "audience");
	const char *ver = dd_http_req_query(req, "api-version");
	char out[128];

	(void)ud;
	fk.hits++;
	snprintf(fk.last_query, sizeof fk.last_query, "%s",
		 dd_http_req_query_string(req));
	if (fk.silent) {
		dd_http_req_on_abort(req, dropped, NULL);
		return;
	}
	if (fk.status != 0) {
		dd_http_respond(req, fk.status, "application/json", fk.body,
				strlen(fk.body));
		return;
	}
	if (auth == NULL || strcmp(auth, "Bearer " REQ_TOKEN) != 0) {
		dd_http_respond_error(req, 401, "unauthorized", "bad token");
		return;
	}
	if (aud == NULL || strcmp(aud, fk.want_audience) != 0 || ver == NULL ||
	    strcmp(ver, "2.0") != 0) {
		dd_http_respond_error(req, 400, "bad_request", "audience");
		return;
	}
	snprintf(out, sizeof out,
		 "{\"count\":1,\"value\":\"eyJ.minted-%d.sig\"}", ++fk.minted);
	dd_http_respond(req, 200, "application/json", out, strlen(out));
}

struct env {
	uv_loop_t loop;
	dd_http_server *srv;
	dd_client_http *http;
	char url[128];
	const char *vars[4][2];
};

static const char *get_var(void *ud, const char *name)
{
	struct env *e = ud;

	for (size_t i = 0; i < 4 && e->vars[i][0] != NULL; i++)
		if (strcmp(e->vars[i][0], name) == 0)
			return e->vars[i][1];
	return NULL;
}

static void start_fake(uv_loop_t *loop, dd_http_server **srv, char *url,
		       size_t url_len)
{
	dd_http_limits lim = {
		.max_head_bytes = 16384, .max_headers = 64, .max_body = 1 << 20,
		.max_body_unauth = 1 << 20, .head_timeout_ms = 5000,
		.body_timeout_ms = 5000, .idle_timeout_ms = 5000,
		.write_timeout_ms = 5000, .max_connections = 64,
		.drain_timeout_ms = 100, .ws_max_message = 4096,
	};
	const dd_http_route route = {DD_M_GET, "/token", fake_token, NULL,
				     NULL, 0, 0};

	assert_int_equal(dd_http_server_new(loop, &lim, "fake-actions", srv),
			 DD_OK);
	assert_int_equal(dd_http_server_route(*srv, &route), DD_OK);
	assert_int_equal(dd_http_server_listen(*srv, "127.0.0.1", 0), DD_OK);
	/* GitHub's URL carries a query of its own. */
	snprintf(url, url_len, "http://127.0.0.1:%u/token?api-version=2.0",
		 dd_http_server_port(*srv));
}

static void on_srv_closed(dd_http_server *s, void *ud)
{
	(void)s;
	*(int *)ud = 1;
}

static void stop_fake(uv_loop_t *loop, dd_http_server *srv)
{
	int closed = 0;

	dd_http_server_shutdown(srv, 100, on_srv_closed, &closed);
	while (!closed)
		uv_run(loop, UV_RUN_ONCE);
	dd_http_server_free(srv);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	dd_httpc_opts ho = {.timeout_ms = 3000};

	memset(&fk, 0, sizeof fk);
	snprintf(fk.want_audience, sizeof fk.want_audience, "dd-agent");
	assert_non_null(e);
	uv_loop_init(&e->loop);
	start_fake(&e->loop, &e->srv, e->url, sizeof e->url);
	assert_int_equal(dd_client_http_new(&e->loop, &ho, &e->http), DD_OK);
	e->vars[0][0] = "ACTIONS_ID_TOKEN_REQUEST_URL";
	e->vars[0][1] = e->url;
	e->vars[1][0] = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
	e->vars[1][1] = REQ_TOKEN;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dd_client_http_free(e->http);
	stop_fake(&e->loop, e->srv);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

static void no_secret_in(const char *why)
{
	assert_null(strstr(why, REQ_TOKEN));
	assert_null(strstr(why, "minted"));
}

static void token_grammar(void **state)
{
	(void)state;
	assert_true(dd_client_token_ok("abc", 3));
	assert_true(dd_client_token_ok("eyJ.a-b_c~d+e/f==", 17));
	assert_true(dd_client_token_ok("a=", 2));
	assert_false(dd_client_token_ok("", 0));
	assert_false(dd_client_token_ok("=", 1));
	assert_false(dd_client_token_ok("a=b", 3));
	assert_false(dd_client_token_ok("a b", 3));
	assert_false(dd_client_token_ok("a\r\nX: y", 7));
	assert_false(dd_client_token_ok("a\"", 2));
	assert_false(dd_client_token_ok("a", DD_CLIENT_TOKEN_MAX + 1));
}

static void source_choice(void **state)
{
	struct env *e = *state;
	dd_client_token_src *src = NULL;
	char why[512], *tok = NULL;
	struct env none = {0};

	/* A fixed token wins and is handed out as given, every time. */
	assert_int_equal(dd_client_token_src_new("fixed.tok", NULL, get_var, e,
						 &src, why, sizeof why), DD_OK);
	assert_false(dd_client_token_src_minted(src));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dd_client_token_get(src, e->http, &tok, why,
						     sizeof why), DD_OK);
		assert_string_equal(tok, "fixed.tok");
		dd_client_token_free(tok);
	}
	assert_int_equal(fk.hits, 0);
	dd_client_token_src_free(src);
	assert_int_equal(dd_client_token_src_new("two words", NULL, get_var, e,
						 &src, why, sizeof why),
			 DD_ERR_INVALID);
	assert_null(src);

	/* Nothing at all: a clear error naming the fix. */
	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(why, "id-token: write"));
	assert_non_null(strstr(why, "--token-file"));
	none.vars[0][0] = "ACTIONS_ID_TOKEN_REQUEST_URL";
	none.vars[0][1] = e->url;
	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(why, "only half set"));

	/* The endpoint must be https (or loopback) and the token sane. */
	none.vars[1][0] = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
	none.vars[1][1] = REQ_TOKEN;
	none.vars[0][1] = "http://pipelines.example/token?x=1";
	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "ACTIONS_ID_TOKEN_REQUEST_URL"));
	none.vars[0][1] = e->url;
	none.vars[1][1] = "bad token";
	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "malformed"));
	none.vars[1][1] = REQ_TOKEN;
	assert_int_equal(dd_client_token_src_new(NULL, "", get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_INVALID);
	assert_int_equal(dd_client_token_src_new(NULL, "a\tb", get_var, &none,
						 &src, why, sizeof why),
			 DD_ERR_INVALID);
	no_secret_in(why);
}

static void minted_fresh_for_every_call(void **state)
{
	struct env *e = *state;
	dd_client_token_src *src = NULL;
	char why[512], *a = NULL, *b = NULL;

	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, e, &src,
						 why, sizeof why), DD_OK);
	assert_true(dd_client_token_src_minted(src));
	assert_int_equal(dd_client_token_get(src, e->http, &a, why, sizeof why),
			 DD_OK);
	assert_int_equal(dd_client_token_get(src, e->http, &b, why, sizeof why),
			 DD_OK);
	assert_string_equal(a, "eyJ.minted-1.sig");
	assert_string_equal(b, "eyJ.minted-2.sig");
	assert_int_equal(fk.hits, 2);
	/* "&audience=" after GitHub's own query, as the spec says. */
	assert_string_equal(fk.last_query, "api-version=2.0&audience=dd-agent");
	dd_client_token_free(a);
	dd_client_token_free(b);
	dd_client_token_src_free(src);

	/* Another audience, percent-encoded. */
	snprintf(fk.want_audience, sizeof fk.want_audience, "api://x&y=z");
	assert_int_equal(dd_client_token_src_new(NULL, "api://x&y=z", get_var,
						 e, &src, why, sizeof why),
			 DD_OK);
	assert_int_equal(dd_client_token_get(src, e->http, &a, why, sizeof why),
			 DD_OK);
	assert_string_equal(fk.last_query,
			    "api-version=2.0&audience=api%3A%2F%2Fx%26y%3Dz");
	dd_client_token_free(a);
	dd_client_token_src_free(src);
}

static dd_err_t mint_once(struct env *e, char *why, size_t why_len)
{
	dd_client_token_src *src = NULL;
	char *tok = NULL;
	dd_err_t rc;

	assert_int_equal(dd_client_token_src_new(NULL, NULL, get_var, e, &src,
						 why, why_len), DD_OK);
	rc = dd_client_token_get(src, e->http, &tok, why, why_len);
	assert_true((rc == DD_OK) == (tok != NULL));
	dd_client_token_free(tok);
	dd_client_token_src_free(src);
	no_secret_in(why);
	return rc;
}

static void refusals_and_junk(void **state)
{
	struct env *e = *state;
	static const char *const junk[] = {
		"{}", "{\"value\":7}", "{\"value\":\"\"}",
		"{\"value\":\"has space\"}", "{\"value\":\"a\\r\\nX-Evil: 1\"}",
		"[\"eyJ\"]", "<html>no</html>", "",
	};
	char why[512];

	/* The wrong request token: refused, and the advice says why. */
	e->vars[1][1] = "ghs_other";
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_UNAUTHORIZED);
	assert_non_null(strstr(why, "HTTP 401"));
	assert_non_null(strstr(why, "id-token: write"));
	assert_null(strstr(why, "ghs_other"));
	e->vars[1][1] = REQ_TOKEN;
	fk.status = 403;
	fk.body = "{}";
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_UNAUTHORIZED);
	fk.status = 404;
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_UPSTREAM);
	assert_non_null(strstr(why, "HTTP 404"));
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		fk.status = 200;
		fk.body = junk[i];
		assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_INVALID);
		assert_non_null(strstr(why, "\"value\""));
	}
}

static void retries_and_deadline(void **state)
{
	struct env *e = *state;
	char why[512];

	/* 503 is worth two more tries. */
	fk.status = 503;
	fk.body = "{}";
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_UPSTREAM);
	assert_int_equal(fk.hits, 3);
	/* A silent endpoint runs into the deadline, retries or not. */
	fk.silent = 1;
	dd_client_http_deadline(e->http, dd_now_ms() + 300);
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_TIMEOUT);
	dd_client_http_deadline(e->http, 0);
	/* Nobody listening: no answer. */
	e->vars[0][1] = "http://127.0.0.1:1/token";
	fk.silent = 0;
	dd_client_http_deadline(e->http, dd_now_ms() + 1500);
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_UPSTREAM);
	assert_non_null(strstr(why, "token endpoint"));
	dd_client_http_deadline(e->http, 0);
}

/*
 * A token endpoint on its own thread with blocking sockets, so that its
 * answer can be waiting before the client's loop polls: keep-alive, one
 * canned reply per request, until the client hangs up.
 */
struct thread_srv {
	int lfd;
	int port;
	pthread_t th;
};

static void *thread_srv_main(void *ud)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: "
		"application/json\r\nContent-Length: 19\r\n\r\n"
		"{\"value\":\"eyJ.t.s\"}";
	struct thread_srv *t = ud;
	char buf[4096];
	size_t have = 0;
	ssize_t n;
	int fd = accept(t->lfd, NULL, NULL);

	while (fd >= 0) {
		n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") == NULL)
			continue;
		have = 0;
		if (write(fd, reply, sizeof reply - 1) < 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void thread_srv_start(struct thread_srv *t)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(t->lfd >= 0);
	assert_int_equal(bind(t->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(t->lfd, 4), 0);
	assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&a, &len), 0);
	t->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&t->th, NULL, thread_srv_main, t), 0);
}

/*
 * A request that ends inside a timer callback (a pooled connection with
 * the answer already waiting) must end the wait at once, not when the
 * next timer (the deadline guard) is due.
 */
static void calls_end_when_answered(void **state)
{
	struct env *e = *state;
	struct thread_srv t;
	char why[512], url[128];
	uint64_t t0;

	thread_srv_start(&t);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/token", t.port);
	e->vars[0][1] = url;
	dd_client_http_deadline(e->http, dd_now_ms() + 60000);
	for (int i = 0; i < 5; i++) {
		t0 = dd_now_ms();
		assert_int_equal(mint_once(e, why, sizeof why), DD_OK);
		if (dd_now_ms() - t0 > 5000)
			fail_msg("call %d took %llu ms", i,
				 (unsigned long long)(dd_now_ms() - t0));
		t0 = dd_now_ms();
		dd_client_http_sleep(e->http, 100u << i);
		assert_true(dd_now_ms() - t0 < 5000);
	}
	/* Hanging up ends the server thread. */
	dd_client_http_free(e->http);
	e->http = NULL;
	assert_int_equal(pthread_join(t.th, NULL), 0);
	close(t.lfd);
}

/* A sleep never outlasts the deadline; calls past it fail at once. */
static void the_deadline_binds(void **state)
{
	struct env *e = *state;
	char why[512];
	uint64_t t0;

	dd_client_http_deadline(e->http, dd_now_ms() + 100);
	t0 = dd_now_ms();
	dd_client_http_sleep(e->http, 30000);
	assert_true(dd_now_ms() - t0 < 2000);
	assert_int_equal(dd_client_http_left(e->http), 0);
	assert_int_equal(mint_once(e, why, sizeof why), DD_ERR_TIMEOUT);
	assert_int_equal(fk.hits, 0);
	dd_client_http_deadline(e->http, 0);
	assert_int_equal(dd_client_http_left(e->http), UINT64_MAX);
}

static char *write_tmp(const char *content, size_t n)
{
	char *path = strdup("/tmp/dd-token-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
	return path;
}

static void token_files(void **state)
{
	char *path, *tok = NULL, *big;

	(void)state;
	path = write_tmp("  eyJ.abc.def\n\n", 15);
	assert_int_equal(dd_client_token_read_file(path, &tok), DD_OK);
	assert_string_equal(tok, "eyJ.abc.def");
	dd_client_token_free(tok);
	unlink(path);
	free(path);
	path = write_tmp("one two\n", 8);
	assert_int_equal(dd_client_token_read_file(path, &tok), DD_ERR_INVALID);
	assert_null(tok);
	unlink(path);
	free(path);
	path = write_tmp("\n", 1);
	assert_int_equal(dd_client_token_read_file(path, &tok), DD_ERR_INVALID);
	unlink(path);
	free(path);
	big = malloc(DD_CLIENT_TOKEN_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', DD_CLIENT_TOKEN_MAX + 1);
	path = write_tmp(big, DD_CLIENT_TOKEN_MAX + 1);
	assert_int_equal(dd_client_token_read_file(path, &tok),
			 DD_ERR_TOO_LARGE);
	unlink(path);
	free(path);
	free(big);
	assert_int_equal(dd_client_token_read_file("/nonexistent/t", &tok),
			 DD_ERR_NOT_FOUND);
}

/* R14: every allocation of source set-up and one mint, failed in turn. */
static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	struct env *e = *state;
	dd_httpc_opts ho = {.timeout_ms = 500};
	unsigned long n, used;

	for (n = 1;; n++) {
		dd_client_token_src *src = NULL;
		dd_client_http *h = NULL;
		dd_http_server *srv = NULL;
		char why[512], *tok = NULL;
		dd_err_t rc;

		start_fake(&e->loop, &srv, e->url, sizeof e->url);
		assert_int_equal(dd_client_http_new(&e->loop, &ho, &h), DD_OK);
		dd_client_http_deadline(h, dd_now_ms() + 1000);
		dd_alloc_fail_at(n);
		rc = dd_client_token_src_new(NULL, NULL, get_var, e, &src, why,
					     sizeof why);
		if (rc == DD_OK)
			rc = dd_client_token_get(src, h, &tok, why, sizeof why);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		dd_client_token_free(tok);
		dd_client_token_src_free(src);
		dd_client_http_free(h);
		stop_fake(&e->loop, srv);
		if (rc != DD_OK && rc != DD_ERR_NOMEM &&
		    rc != DD_ERR_UPSTREAM && rc != DD_ERR_TIMEOUT &&
		    rc != DD_ERR_INVALID && rc != DD_ERR_UNAUTHORIZED)
			fail_msg("n=%lu: %s (%s)", n, dd_errname(rc), why);
		if (used < n) {
			assert_int_equal(rc, DD_OK);
			break;
		}
	}
	assert_true(n > 20);
#else
	skip();
#endif
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_grammar),
		T(source_choice),
		T(minted_fresh_for_every_call),
		T(refusals_and_junk),
		T(retries_and_deadline),
		T(calls_end_when_answered),
		T(the_deadline_binds),
		cmocka_unit_test(token_files),
		T(allocation_failures_are_clean),
	};
	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
