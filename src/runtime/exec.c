#include "runtime/exec.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "runtime/logring.h"
#include "runtime/proto.h"
#include "runtime/text.h"

struct dd_rt_exec {
	dd_rt_proc *proc;       /* NULL once done or handed off */
	uv_timer_t timer;
	dd_buf out[2];          /* stdout, stderr */
	int truncated[2];
	int code, sig;
	uint64_t timeout_secs;
	dd_rt_exec_cb cb;
	void *ud;
	int finished;           /* cb ran, or cancelled */
};

static void on_timer_closed(uv_handle_t *h)
{
	dd_rt_exec *x = h->data;

	dd_buf_free(&x->out[0]);
	dd_buf_free(&x->out[1]);
	dd_free(x);
}

/* Lets the process finish on its own and frees x. */
static void release(dd_rt_exec *x)
{
	x->finished = 1;
	if (x->proc != NULL) {
		dd_rt_proc_stop(x->proc);
		dd_rt_proc_detach(x->proc);
		x->proc = NULL;
	}
	uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

static void on_output(void *ud, int stream, const uint8_t *data, size_t len)
{
	dd_rt_exec *x = ud;
	int i = stream == DD_RT_STDERR;
	size_t room = x->out[i].cap - x->out[i].len;

	if (len > room) {
		x->truncated[i] = 1;
		len = room;
	}
	/* Out of memory drops output; the reply still comes. */
	if (len > 0 && dd_buf_append(&x->out[i], data, len) != DD_OK)
		x->truncated[i] = 1;
}

static void on_exited(void *ud, int code, int sig)
{
	dd_rt_exec *x = ud;

	x->code = code;
	x->sig = sig;
}

static void deliver(dd_rt_exec *x, const json_t *reply)
{
	static const char nomem[] = "out of memory";
	json_t *err = NULL;

	if (reply == NULL) {
		err = json_pack("{s:b, s:s}", "ok", 0, "error", nomem);
		reply = err;
	}
	if (reply != NULL)
		x->cb(reply, x->ud);
	json_decref(err);
}

static void on_done(void *ud)
{
	dd_rt_exec *x = ud;
	json_t *r;

	x->proc = NULL;
	r = json_pack("{s:b, s:i, s:o, s:o}", "ok", 1, "exit_code",
		      x->sig > 0 || x->code < 0 ? -1 : x->code,
		      "stdout", dd_rt_json_text(x->out[0].data, x->out[0].len),
		      "stderr", dd_rt_json_text(x->out[1].data, x->out[1].len));
	for (int i = 0; r != NULL && i < 2; i++) {
		if (x->truncated[i] &&
		    json_object_set_new(r, i ? "stderr_truncated"
					     : "stdout_truncated",
					json_true()) != 0) {
			json_decref(r);
			r = NULL;
		}
	}
	deliver(x, r);
	json_decref(r);
	release(x);
}

static void on_timeout(uv_timer_t *t)
{
	dd_rt_exec *x = t->data;
	char msg[64];
	json_t *r;

	snprintf(msg, sizeof msg, "command timed out after %llus",
		 (unsigned long long)x->timeout_secs);
	r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	deliver(x, r);
	json_decref(r);
	release(x);
}

dd_err_t dd_rt_exec_start(uv_loop_t *loop, dd_rt_procs *ps,
			  const dd_rt_exec_opts *o, dd_rt_exec_cb cb, void *ud,
			  dd_rt_exec **out, char *why, size_t why_len)
{
	dd_rt_exec *x = dd_calloc(1, sizeof *x);
	char detail[DD_RT_WHY];
	dd_rt_spawn sp;
	dd_err_t rc;

	*out = NULL;
	if (x == NULL) {
		snprintf(why, why_len, "spawn failed: out of memory");
		return DD_ERR_NOMEM;
	}
	dd_buf_init(&x->out[0], o->max_output);
	dd_buf_init(&x->out[1], o->max_output);
	x->timeout_secs = o->timeout_secs;
	x->cb = cb;
	x->ud = ud;
	(void)uv_timer_init(loop, &x->timer);
	x->timer.data = x;
	memset(&sp, 0, sizeof sp);
	sp.argv = o->argv;
	sp.env = o->env;
	sp.grace_ms = o->grace_ms;
	sp.cbs.output = on_output;
	sp.cbs.exited = on_exited;
	sp.cbs.done = on_done;
	sp.ud = x;
	rc = dd_rt_proc_spawn(ps, &sp, &x->proc, detail, sizeof detail);
	if (rc) {
		snprintf(why, why_len, "spawn failed: %s", detail);
		x->proc = NULL;
		release(x);
		return rc;
	}
	uv_timer_start(&x->timer, on_timeout, o->timeout_secs * 1000, 0);
	*out = x;
	return DD_OK;
}

void dd_rt_exec_cancel(dd_rt_exec *x)
{
	if (x != NULL && !x->finished)
		release(x);
}
