/*
 * methods.c: the protocol's methods on one connection (server_int.h):
 * each answers with one reply line, or, for attach, turns the connection
 * into the PTY's byte pipe.
 */
#include "runtime/server_int.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"
#include "runtime/apps.h"
#include "runtime/env.h"
#include "runtime/text.h"

#define LOGS_BUDGET (3u << 20)   /* under the DD client's 4 MiB reply cap */
#define MAX_EXECS 32
#define RUNTIME_NAME "devopsdefender-local"

static void do_health(struct dd_rt_conn *c)
{
	dd_rt_server *s = c->s;

	json_int_t up = (json_int_t)((uv_now(s->loop) - s->started_ms) / 1000);
	json_int_t n = (json_int_t)dd_rt_apps_count(s->o.apps);

	/* Never sealed: the agent shows runtime_sealed from this. */
	dd_rt_conn_reply_new(c, json_pack("{s:b, s:s, s:I, s:I, s:b, s:s}",
					  "ok", 1, "attestation_type",
					  s->o.attestation_type, "workloads",
					  n, "uptime_secs", up, "sealed", 0,
					  "runtime", RUNTIME_NAME));
}

static void do_list(struct dd_rt_conn *c)
{
	json_t *deps = NULL;

	if (dd_rt_apps_list(c->s->o.apps, &deps) != DD_OK) {
		dd_rt_conn_error(c, "out of memory");
		return;
	}
	dd_rt_conn_reply_new(c, json_pack("{s:b, s:o}", "ok", 1, "deployments",
					  deps));
}

static void do_logs(struct dd_rt_conn *c, const json_t *req)
{
	const char *id = NULL;
	uint64_t tail = 0;
	json_t *lines = NULL;
	char why[DD_RT_WHY];

	if (dd_rt_parse_logs(req, &id, &tail, why, sizeof why) != DD_OK ||
	    dd_rt_apps_logs(c->s->o.apps, id, (size_t)tail, LOGS_BUDGET,
			    &lines, why, sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	dd_rt_conn_reply_new(c, json_pack("{s:b, s:o}", "ok", 1, "lines",
					  lines));
}

static void do_deploy(struct dd_rt_conn *c, const json_t *req)
{
	dd_rt_spec *spec = NULL;
	char id[DD_RT_ID_LEN + 1], why[DD_RT_WHY];

	if (dd_rt_parse_deploy(req, &spec, why, sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	if (dd_rt_apps_deploy(c->s->o.apps, spec, id, why, sizeof why)) {
		dd_rt_spec_free(spec);
		dd_rt_conn_error(c, why);
		return;
	}
	dd_rt_conn_reply_new(c, json_pack("{s:b, s:s, s:s}", "ok", 1, "id", id,
					  "status", "deploying"));
}

static void do_stop(struct dd_rt_conn *c, const json_t *req)
{
	const char *id = NULL;
	char why[DD_RT_WHY];

	if (dd_rt_parse_id(req, &id, why, sizeof why) != DD_OK ||
	    dd_rt_apps_stop(c->s->o.apps, id, why, sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	dd_rt_conn_reply_new(c, json_pack("{s:b}", "ok", 1));
}

static void on_exec_reply(const json_t *r, void *ud)
{
	struct dd_rt_conn *c = ud;

	c->exec = NULL;
	c->s->execs--;
	c->busy = 0;
	dd_rt_conn_reply(c, r);
	dd_rt_conn_pump(c);
}

static void do_exec(struct dd_rt_conn *c, const json_t *req)
{
	dd_rt_server *s = c->s;
	dd_rt_exec_opts o;
	char **argv = NULL;
	size_t argc = 0;
	char why[DD_RT_WHY];

	memset(&o, 0, sizeof o);
	if (dd_rt_parse_exec(req, &argv, &argc, &o.timeout_secs, why,
			     sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	if (s->execs >= MAX_EXECS) {
		snprintf(why, sizeof why, "busy: %d commands are running",
			 MAX_EXECS);
		dd_rt_conn_error(c, why);
		goto out;
	}
	o.argv = argv;
	o.env = s->o.base_env;
	o.max_output = s->o.exec_max_output;
	o.grace_ms = s->o.grace_ms;
	if (dd_rt_exec_start(s->loop, s->o.procs, &o, on_exec_reply, c,
			     &c->exec, why, sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		goto out;
	}
	s->execs++;
	c->busy = 1;
out:
	dd_rt_argv_free(argv);
}

static void on_quote(dd_err_t err, const uint8_t *quote, size_t len,
		     const char *why, void *ud)
{
	struct dd_rt_conn *c = ud;
	const char *type = c->s->o.attestation_type;
	dd_buf q64, r64;
	json_t *r = NULL;

	/* Once closing, unhold may free c: nothing more is owed to it. */
	if (c->u.closing) {
		dd_usrv_conn_unhold(&c->u);
		return;
	}
	dd_usrv_conn_unhold(&c->u);
	c->busy = 0;
	dd_buf_init(&q64, DD_QUOTE_MAX * 2);
	dd_buf_init(&r64, 128);
	if (err) {
		r = json_pack("{s:b, s:s, s:o}", "ok", 0, "attestation_type",
			      type, "error", dd_rt_json_text(why, strlen(why)));
	} else if (dd_b64_encode(DD_B64_STD, quote, len, &q64) == DD_OK &&
		   dd_b64_encode(DD_B64_STD, c->rd, c->rd_len, &r64) ==
			   DD_OK) {
		r = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I}", "ok", 1,
			      "attestation_type", type, "quote_format", "tdx",
			      "quote_b64", dd_buf_str(&q64), "report_data_b64",
			      dd_buf_str(&r64), "report_data_len",
			      (json_int_t)c->rd_len);
	}
	dd_rt_conn_reply_new(c, r);
	dd_buf_free(&q64);
	dd_buf_free(&r64);
	dd_rt_conn_pump(c);
}

static void do_attest(struct dd_rt_conn *c, const json_t *req)
{
	char why[DD_RT_WHY];
	dd_err_t rc;

	if (dd_rt_parse_report_data(req, c->rd, &c->rd_len, why,
				    sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	rc = dd_quote_request(c->s->o.quotes, c->rd, on_quote, c);
	if (rc) {
		snprintf(why, sizeof why, "%s", rc == DD_ERR_BUSY
			 ? "busy: too many quotes waiting"
			 : dd_strerror(rc));
		dd_rt_conn_error(c, why);
		return;
	}
	dd_usrv_conn_hold(&c->u);
	c->busy = 1;
}

/* ---- attach ------------------------------------------------------------ */

static void att_output(void *ud, int stream, const uint8_t *data, size_t len)
{
	struct dd_rt_conn *c = ud;
	char *copy;

	(void)stream;
	if (len == 0 || c->u.closing)
		return;
	copy = dd_malloc(len);
	if (copy == NULL) {
		dd_rt_conn_close(c);
		return;
	}
	memcpy(copy, data, len);
	dd_rt_conn_send(c, copy, len);
	if (!c->u.closing && c->pty != NULL &&
	    dd_rt_conn_queued(c) > DD_RT_PTY_HIGH)
		dd_rt_proc_pause(c->pty, 1);
}

static void att_drained(void *ud)
{
	struct dd_rt_conn *c = ud;

	if (c->client_paused && c->pty != NULL &&
	    dd_rt_proc_write_queue(c->pty) < DD_RT_PTY_LOW) {
		c->client_paused = 0;
		dd_rt_conn_reading(c);
	}
}

static void att_done(void *ud)
{
	struct dd_rt_conn *c = ud;

	c->pty = NULL;
	dd_rt_conn_end(c);
}

void dd_rt_attach_input(struct dd_rt_conn *c, const uint8_t *data,
			size_t len)
{
	if (c->pty == NULL)
		return;
	if (dd_rt_proc_write(c->pty, data, len) != DD_OK) {
		/* The PTY is gone; its done callback ends the session. */
		return;
	}
	if (dd_rt_proc_write_queue(c->pty) > DD_RT_PTY_HIGH) {
		c->client_paused = 1;
		dd_rt_conn_reading(c);
	}
}

static void do_attach(struct dd_rt_conn *c, const json_t *req)
{
	static const char ack[] = "{\"ok\":true,\"attached\":true}\n";
	static char term[] = "TERM=xterm-256color";
	char *extra[] = {term, NULL};
	char **argv = NULL, **env = NULL;
	char why[DD_RT_WHY], detail[DD_RT_WHY - 16];
	size_t argc;
	dd_rt_spawn o;
	char *copy;

	if (dd_rt_parse_cmd(req, "/bin/sh", &argv, &argc, why,
			    sizeof why) != DD_OK) {
		dd_rt_conn_error(c, why);
		return;
	}
	if (dd_rt_env_compose(c->s->o.base_env, extra, 1, &env) != DD_OK) {
		dd_rt_conn_error(c, "out of memory");
		goto out;
	}
	memset(&o, 0, sizeof o);
	o.argv = argv;
	o.env = env;
	o.pty = 1;
	o.grace_ms = c->s->o.grace_ms;
	o.cbs.output = att_output;
	o.cbs.done = att_done;
	o.cbs.drained = att_drained;
	o.ud = c;
	if (dd_rt_proc_spawn(c->s->o.procs, &o, &c->pty, detail,
			     sizeof detail) != DD_OK) {
		snprintf(why, sizeof why, "spawn failed: %s", detail);
		dd_rt_conn_error(c, why);
		goto out;
	}
	copy = dd_strdup(ack);
	if (copy == NULL) {
		dd_rt_conn_close(c);
		goto out;
	}
	dd_rt_conn_send(c, copy, sizeof ack - 1);
	c->attached = 1;
	/* Bytes sent right behind the request are the first keystrokes. */
	if (c->u.in.len > 0)
		dd_rt_attach_input(c, c->u.in.data, c->u.in.len);
	dd_buf_reset(&c->u.in);
out:
	dd_rt_argv_free(argv);
	dd_rt_argv_free(env);
}

void dd_rt_dispatch(struct dd_rt_conn *c, const json_t *req,
		    dd_rt_method m)
{
	switch (m) {
	case DD_RT_HEALTH:
		do_health(c);
		break;
	case DD_RT_LIST:
		do_list(c);
		break;
	case DD_RT_LOGS:
		do_logs(c, req);
		break;
	case DD_RT_ATTEST:
		do_attest(c, req);
		break;
	case DD_RT_DEPLOY:
		do_deploy(c, req);
		break;
	case DD_RT_STOP:
		do_stop(c, req);
		break;
	case DD_RT_EXEC:
		do_exec(c, req);
		break;
	case DD_RT_ATTACH:
		do_attach(c, req);
		break;
	}
}

