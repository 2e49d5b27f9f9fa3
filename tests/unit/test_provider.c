/*
 * Quote providers end to end on a real loop: the tsm provider against the
 * configfs-tsm stand-in, the ee provider against a fake EasyEnclave socket
 * (a thread answering `attest` the way EasyEnclave does, with knobs for
 * its failure modes), plus ordering, the queue bound and cancellation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "attest/provider.h"
#include "attest/quote.h"
#include "attest/quote_verify.h"
#include "attest/tsm.h"
#include "core/b64.h"
#include "tsm_standin.h"

struct got {
	int calls;
	dd_err_t err[32];
	uint8_t rd[32][64];
	char why[256];
};

static void on_quote(dd_err_t err, const uint8_t *q, size_t len,
		     const char *why, void *ud)
{
	struct got *g = ud;

	if (g->calls < 32) {
		g->err[g->calls] = err;
		if (err == DD_OK && len >= 632)
			memcpy(g->rd[g->calls], q + 568, 64);
	}
	snprintf(g->why, sizeof g->why, "%s", why);
	g->calls++;
}

static void run_until(uv_loop_t *loop, const int *calls, int want)
{
	for (int i = 0; i < 20000 && *calls < want; i++)
		uv_run(loop, UV_RUN_ONCE);
}

/* --- tsm ------------------------------------------------------------------ */

static void tsm_quotes_in_order(void **state)
{
	struct standin *s = *state;
	uv_loop_t loop;
	dd_quote_provider *p = NULL;
	struct got g = {0};
	uint8_t rd[3][64];

	uv_loop_init(&loop);
	assert_int_equal(dd_quote_provider_tsm(&loop, s->root, &p), DD_OK);
	assert_string_equal(dd_quote_provider_kind(p), "tsm");
	for (int i = 0; i < 3; i++) {
		memset(rd[i], 'a' + i, 64);
		assert_int_equal(dd_quote_request(p, rd[i], on_quote, &g), DD_OK);
	}
	assert_int_equal(g.calls, 0); /* never before the request returns */
	run_until(&loop, &g.calls, 3);
	assert_int_equal(g.calls, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g.err[i], DD_OK);
		assert_memory_equal(g.rd[i], rd[i], 64);
	}
	dd_quote_provider_close(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void tsm_queue_bound_and_close_cancels(void **state)
{
	struct standin *s = *state;
	uv_loop_t loop;
	dd_quote_provider *p = NULL;
	struct got g = {0};
	uint8_t rd[64] = {0};

	uv_loop_init(&loop);
	assert_int_equal(dd_quote_provider_tsm(&loop, s->root, &p), DD_OK);
	for (int i = 0; i < DD_QUOTE_QUEUE; i++)
		assert_int_equal(dd_quote_request(p, rd, on_quote, &g), DD_OK);
	assert_int_equal(dd_quote_request(p, rd, on_quote, &g), DD_ERR_BUSY);
	dd_quote_provider_close(p);
	/*
	 * Everyone is told at once, the one in flight included; its quote
	 * still finishes on the pool and is dropped.
	 */
	assert_int_equal(g.calls, DD_QUOTE_QUEUE);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, DD_QUOTE_QUEUE);
	for (int i = 0; i < DD_QUOTE_QUEUE; i++)
		assert_int_equal(g.err[i], DD_ERR_CANCELLED);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void tsm_missing_root_fails_the_request(void **state)
{
	uv_loop_t loop;
	dd_quote_provider *p = NULL;
	struct got g = {0};
	uint8_t rd[64] = {0};

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(dd_quote_provider_tsm(&loop, "/nonexistent/tsm", &p), DD_OK);
	assert_int_equal(dd_quote_request(p, rd, on_quote, &g), DD_OK);
	run_until(&loop, &g.calls, 1);
	assert_int_equal(g.err[0], DD_ERR_UNSUPPORTED);
	assert_non_null(strstr(g.why, "not available"));
	dd_quote_provider_close(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- simulated ------------------------------------------------------------ */

static struct {
	int calls;
	dd_err_t err;
	int verified_dev, verified_prod, simulated;
	uint8_t rd[64], mrtd[48];
} sim;

static void on_sim(dd_err_t err, const uint8_t *q, size_t len, const char *why,
		   void *ud)
{
	dd_quote parsed;
	dd_quote_result r;
	dd_quote_verify_opts o = {.now = 1800000000, .allow_simulated = 1};

	(void)why;
	(void)ud;
	sim.calls++;
	sim.err = err;
	if (err != DD_OK || dd_quote_parse(q, len, &parsed) != DD_OK)
		return;
	sim.simulated = dd_quote_is_simulated(&parsed);
	memcpy(sim.rd, parsed.body.report_data, 64);
	memcpy(sim.mrtd, parsed.body.mrtd, 48);
	memset(&r, 0, sizeof r);
	dd_quote_verify(&parsed, &o, &r);
	sim.verified_dev = r.reason == DD_QV_OK;
	dd_quote_result_free(&r);
	o.allow_simulated = 0;
	memset(&r, 0, sizeof r);
	dd_quote_verify(&parsed, &o, &r);
	sim.verified_prod = r.reason == DD_QV_OK;
	dd_quote_result_free(&r);
}

static void simulated_quotes_verify_only_in_dev_mode(void **state)
{
	uv_loop_t loop;
	dd_quote_provider *p = NULL;
	uint8_t rd[64], mrtd[48];

	(void)state;
	memset(rd, 0x42, sizeof rd);
	memset(mrtd, 0x77, sizeof mrtd);
	uv_loop_init(&loop);
	assert_int_equal(dd_quote_provider_sim(&loop, mrtd, &p), DD_OK);
	assert_string_equal(dd_quote_provider_kind(p), "simulated");
	assert_int_equal(dd_quote_request(p, rd, on_sim, NULL), DD_OK);
	assert_int_equal(sim.calls, 0);
	run_until(&loop, &sim.calls, 1);
	assert_int_equal(sim.err, DD_OK);
	assert_true(sim.simulated);
	assert_memory_equal(sim.rd, rd, 64);
	assert_memory_equal(sim.mrtd, mrtd, 48);
	assert_true(sim.verified_dev);
	assert_false(sim.verified_prod);
	dd_quote_provider_close(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* --- ee --------------------------------------------------------------------- */

enum ee_mode { EE_GOOD, EE_NOT_OK, EE_NO_QUOTE, EE_BAD_B64, EE_GARBAGE };

struct fake_ee {
	char path[108];
	int fd;
	enum ee_mode mode;
	int requests;
	char last_method[32];
	pthread_t thread;
};

static void answer(struct fake_ee *e, int c, const char *line)
{
	json_t *req = json_loads(line, 0, NULL);
	const char *rd64 = json_string_value(json_object_get(req, "report_data_b64"));
	char *out = NULL;
	dd_buf rd, quote, q64;

	snprintf(e->last_method, sizeof e->last_method, "%s",
		 json_string_value(json_object_get(req, "method")));
	dd_buf_init(&rd, 128);
	dd_buf_init(&q64, 4096);
	dd_buf_init(&quote, 2048);
	dd_buf_reserve(&quote, 1024);
	memset(quote.data, 0, 1024);
	quote.len = 1024;
	quote.data[0] = 4;
	if (rd64 && dd_b64_decode(DD_B64_STD, rd64, strlen(rd64), &rd) == DD_OK &&
	    rd.len == 64)
		memcpy(quote.data + 568, rd.data, 64);
	dd_b64_encode(DD_B64_STD, quote.data, quote.len, &q64);
	switch (e->mode) {
	case EE_GOOD: {
		json_t *r = json_pack("{s:b, s:s, s:s}", "ok", 1, "attestation_type",
				      "tdx", "quote_b64", dd_buf_str(&q64));
		out = json_dumps(r, JSON_COMPACT);
		json_decref(r);
		break;
	}
	case EE_NOT_OK:
		out = strdup("{\"ok\":false,\"attestation_type\":\"tdx\","
			     "\"error\":\"write inblob: no such device\"}");
		break;
	case EE_NO_QUOTE:
		out = strdup("{\"ok\":true}");
		break;
	case EE_BAD_B64:
		out = strdup("{\"ok\":true,\"quote_b64\":\"!!!not-base64!!\"}");
		break;
	case EE_GARBAGE:
		out = strdup("}{ not json");
		break;
	}
	(void)!write(c, out, strlen(out));
	(void)!write(c, "\n", 1);
	free(out);
	json_decref(req);
	dd_buf_free(&rd);
	dd_buf_free(&q64);
	dd_buf_free(&quote);
}

static void *ee_main(void *arg)
{
	struct fake_ee *e = arg;

	for (;;) {
		char line[4096];
		size_t n = 0;
		int c = accept(e->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		while (n < sizeof line - 1) {
			ssize_t r = read(c, line + n, 1);
			if (r <= 0 || line[n] == '\n')
				break;
			n++;
		}
		line[n] = '\0';
		e->requests++;
		answer(e, c, line);
		close(c);
	}
}

static struct fake_ee *ee_start(enum ee_mode mode)
{
	struct fake_ee *e = calloc(1, sizeof *e);
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	snprintf(e->path, sizeof e->path, "/tmp/dd-ee-%d.sock", (int)getpid());
	unlink(e->path);
	snprintf(a.sun_path, sizeof a.sun_path, "%s", e->path);
	e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(e->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(e->fd, 16), 0);
	e->mode = mode;
	pthread_create(&e->thread, NULL, ee_main, e);
	return e;
}

static void ee_stop(struct fake_ee *e)
{
	shutdown(e->fd, SHUT_RDWR);
	close(e->fd);
	pthread_join(e->thread, NULL);
	unlink(e->path);
	free(e);
}

static void on_ndjson_closed(dd_ndjson *c, void *ud)
{
	(void)ud;
	dd_ndjson_free(c);
}

static void ee_case(enum ee_mode mode, dd_err_t want, const char *why_part)
{
	struct fake_ee *e = ee_start(mode);
	uv_loop_t loop;
	dd_ndjson *client = NULL;
	dd_quote_provider *p = NULL;
	struct got g = {0};
	uint8_t rd[64];
	dd_ndjson_opts o = {.path = e->path, .timeout_ms = 5000};

	memset(rd, 0x5a, sizeof rd);
	uv_loop_init(&loop);
	assert_int_equal(dd_ndjson_new(&loop, &o, &client), DD_OK);
	assert_int_equal(dd_quote_provider_ee(&loop, client, &p), DD_OK);
	assert_string_equal(dd_quote_provider_kind(p), "ee");
	assert_int_equal(dd_quote_request(p, rd, on_quote, &g), DD_OK);
	run_until(&loop, &g.calls, 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.err[0], want);
	if (want == DD_OK) {
		assert_memory_equal(g.rd[0], rd, 64);
		assert_string_equal(e->last_method, "attest");
	} else {
		assert_non_null(strstr(g.why, why_part));
	}
	dd_quote_provider_close(p);
	dd_ndjson_close(client, on_ndjson_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	ee_stop(e);
}

static void ee_good_quote_carries_report_data(void **state)
{
	(void)state;
	ee_case(EE_GOOD, DD_OK, NULL);
}

static void ee_failures_are_explained(void **state)
{
	(void)state;
	ee_case(EE_NOT_OK, DD_ERR_UPSTREAM, "no such device");
	ee_case(EE_NO_QUOTE, DD_ERR_UPSTREAM, "no quote_b64");
	ee_case(EE_BAD_B64, DD_ERR_INVALID, "not base64");
	ee_case(EE_GARBAGE, DD_ERR_INVALID, "easyenclave attest");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tsm_quotes_in_order, standin_setup,
						standin_teardown),
		cmocka_unit_test_setup_teardown(tsm_queue_bound_and_close_cancels,
						standin_setup, standin_teardown),
		cmocka_unit_test(tsm_missing_root_fails_the_request),
		cmocka_unit_test(simulated_quotes_verify_only_in_dev_mode),
		cmocka_unit_test(ee_good_quote_carries_report_data),
		cmocka_unit_test(ee_failures_are_explained),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
