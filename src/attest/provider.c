#include "attest/provider.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <openssl/ec.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest/quote_sim.h"
#include "attest/tsm.h"
#include "core/alloc.h"
#include "core/b64.h"
#include "core/buf.h"

enum kind { K_TSM, K_EE, K_SIM };

struct pending {
	uint8_t rd[64];
	dd_quote_cb cb;
	void *ud;
};

struct dd_quote_provider {
	enum kind kind;
	uv_loop_t *loop;
	char *root;             /* tsm */
	dd_ndjson *ee;          /* ee, borrowed */
	EVP_PKEY *sim_key;      /* sim: the simulated attestation key */
	uint8_t sim_mrtd[48];
	struct pending queue[DD_QUOTE_QUEUE];
	size_t head, count;
	bool busy;              /* one request in flight */
	bool closing;
	/* The request in flight. */
	uv_work_t work;
	dd_ndjson_req *call;
	dd_buf quote;
	dd_err_t result;
	char why[256];
};

static void start_next(dd_quote_provider *p);

static void destroy(dd_quote_provider *p)
{
	EVP_PKEY_free(p->sim_key);
	dd_buf_free(&p->quote);
	dd_free(p->root);
	dd_free(p);
}

/* Hands the finished request's result to its caller, then moves on. */
static void finish(dd_quote_provider *p, dd_err_t err)
{
	struct pending job = p->queue[p->head];

	p->head = (p->head + 1) % DD_QUOTE_QUEUE;
	p->count--;
	p->busy = false;
	p->call = NULL;
	if (err != DD_OK)
		dd_buf_reset(&p->quote);
	/* A job cancelled by close has already been told. */
	if (job.cb != NULL)
		job.cb(p->closing ? DD_ERR_CANCELLED : err, p->quote.data,
		       p->quote.len, err ? p->why : "", job.ud);
	dd_buf_reset(&p->quote);
	p->why[0] = '\0';
	if (p->closing && p->count == 0) {
		destroy(p);
		return;
	}
	start_next(p);
}

/* --- tsm: the thread pool ---------------------------------------------- */

static void sim_quote(dd_quote_provider *p)
{
	dd_quote_sim_params sp;

	memset(&sp, 0, sizeof sp);
	sp.version = 4;
	memcpy(sp.body.mrtd, p->sim_mrtd, sizeof sp.body.mrtd);
	memcpy(sp.body.report_data, p->queue[p->head].rd, 64);
	p->result = dd_quote_sim_build(&sp, p->sim_key, &p->quote);
	if (p->result)
		snprintf(p->why, sizeof p->why, "building a simulated quote: %s",
			 dd_strerror(p->result));
}

/* Runs on the thread pool: the only code here touching p concurrently. */
static void tsm_work(uv_work_t *w)
{
	dd_quote_provider *p = w->data;

	if (p->kind == K_SIM)
		sim_quote(p);
	else
		p->result = dd_tsm_get_quote(p->root, p->queue[p->head].rd,
					     &p->quote, p->why, sizeof p->why);
	/*
	 * Pool threads live until exit and never run OpenSSL's thread-exit
	 * cleanup: release this thread's error queue and DRBGs now.
	 */
	OPENSSL_thread_stop();
}

static void tsm_done(uv_work_t *w, int status)
{
	dd_quote_provider *p = w->data;

	finish(p, status == UV_ECANCELED ? DD_ERR_CANCELLED : p->result);
}

/* --- ee: the attest method ----------------------------------------------- */

static void ee_reply(dd_err_t err, json_t *reply, const char *why, void *ud)
{
	dd_quote_provider *p = ud;
	const char *q, *error = NULL;

	if (err == DD_OK) {
		err = dd_ndjson_reply_check(reply, &error);
		if (err)
			snprintf(p->why, sizeof p->why, "easyenclave attest: %s",
				 error ? error : dd_strerror(err));
	} else {
		snprintf(p->why, sizeof p->why, "easyenclave attest: %s", why);
	}
	if (err == DD_OK) {
		q = json_string_value(json_object_get(reply, "quote_b64"));
		if (q == NULL) {
			snprintf(p->why, sizeof p->why,
				 "easyenclave attest: reply has no quote_b64");
			err = DD_ERR_UPSTREAM;
		} else {
			err = dd_b64_decode(DD_B64_STD, q, strlen(q), &p->quote);
			if (err)
				snprintf(p->why, sizeof p->why,
					 "easyenclave attest: quote_b64 is %s",
					 err == DD_ERR_TOO_LARGE ? "too large"
								 : "not base64");
		}
	}
	if (err == DD_OK && p->quote.len == 0) {
		snprintf(p->why, sizeof p->why, "easyenclave attest: empty quote");
		err = DD_ERR_UPSTREAM;
	}
	finish(p, err);
}

static dd_err_t ee_start(dd_quote_provider *p)
{
	dd_buf rd64;
	json_t *req = NULL;
	dd_err_t rc;

	dd_buf_init(&rd64, 128);
	rc = dd_b64_encode(DD_B64_STD, p->queue[p->head].rd, 64, &rd64);
	if (rc == DD_OK) {
		req = json_pack("{s:s, s:s}", "method", "attest",
				"report_data_b64", dd_buf_str(&rd64));
		rc = req ? dd_ndjson_call(p->ee, req, ee_reply, p, &p->call)
			 : DD_ERR_NOMEM;
	}
	json_decref(req);
	dd_buf_free(&rd64);
	return rc;
}

/* --- the queue ----------------------------------------------------------- */

/* Starts the job at the head of the queue; no callback on failure. */
static dd_err_t begin(dd_quote_provider *p)
{
	dd_err_t rc;

	p->busy = true;
	if (p->kind != K_EE) {
		p->work.data = p;
		rc = uv_queue_work(p->loop, &p->work, tsm_work, tsm_done) == 0
			     ? DD_OK : DD_ERR_INTERNAL;
	} else {
		rc = ee_start(p);
	}
	if (rc) {
		p->busy = false;
		snprintf(p->why, sizeof p->why, "starting a quote: %s",
			 dd_strerror(rc));
	}
	return rc;
}

/* After a job finished: the next one starts, or fails to its caller. */
static void start_next(dd_quote_provider *p)
{
	dd_err_t rc;

	if (p->busy || p->count == 0)
		return;
	rc = begin(p);
	if (rc) {
		p->busy = true; /* finish() expects the head job in flight */
		finish(p, rc);
	}
}

dd_err_t dd_quote_request(dd_quote_provider *p, const uint8_t report_data[64],
			  dd_quote_cb cb, void *ud)
{
	struct pending *job;

	if (p->closing)
		return DD_ERR_CLOSED;
	if (p->count == DD_QUOTE_QUEUE)
		return DD_ERR_BUSY;
	job = &p->queue[(p->head + p->count) % DD_QUOTE_QUEUE];
	memcpy(job->rd, report_data, 64);
	job->cb = cb;
	job->ud = ud;
	p->count++;
	if (p->count == 1) {
		/* Idle: a failure to start is returned, not called back. */
		dd_err_t rc = begin(p);
		if (rc)
			p->count--;
		return rc;
	}
	return DD_OK;
}

static dd_err_t create(uv_loop_t *loop, enum kind kind,
		       dd_quote_provider **out)
{
	dd_quote_provider *p = dd_calloc(1, sizeof *p);

	*out = NULL;
	if (p == NULL)
		return DD_ERR_NOMEM;
	p->kind = kind;
	p->loop = loop;
	dd_buf_init(&p->quote, DD_QUOTE_MAX);
	*out = p;
	return DD_OK;
}

dd_err_t dd_quote_provider_tsm(uv_loop_t *loop, const char *root,
			       dd_quote_provider **out)
{
	dd_err_t rc = create(loop, K_TSM, out);

	if (rc)
		return rc;
	(*out)->root = dd_strdup(root);
	if ((*out)->root == NULL) {
		destroy(*out);
		*out = NULL;
		return DD_ERR_NOMEM;
	}
	return DD_OK;
}

dd_err_t dd_quote_provider_ee(uv_loop_t *loop, dd_ndjson *ee,
			      dd_quote_provider **out)
{
	dd_err_t rc = create(loop, K_EE, out);

	if (rc == DD_OK)
		(*out)->ee = ee;
	return rc;
}

dd_err_t dd_quote_provider_sim(uv_loop_t *loop, const uint8_t mrtd[48],
			       dd_quote_provider **out)
{
	dd_err_t rc = create(loop, K_SIM, out);

	if (rc)
		return rc;
	memcpy((*out)->sim_mrtd, mrtd, 48);
	(*out)->sim_key = EVP_EC_gen("P-256");
	if ((*out)->sim_key == NULL) {
		destroy(*out);
		*out = NULL;
		return DD_ERR_CRYPTO;
	}
	return DD_OK;
}

const char *dd_quote_provider_kind(const dd_quote_provider *p)
{
	return p->kind == K_TSM ? "tsm" : p->kind == K_EE ? "ee" : "simulated";
}

void dd_quote_provider_close(dd_quote_provider *p)
{
	if (p == NULL || p->closing)
		return;
	p->closing = true;
	/* Waiting requests never started: tell them now. */
	while (p->count > (p->busy ? 1u : 0u)) {
		size_t last = (p->head + p->count - 1) % DD_QUOTE_QUEUE;
		struct pending job = p->queue[last];
		p->count--;
		job.cb(DD_ERR_CANCELLED, NULL, 0, "provider closed", job.ud);
	}
	if (!p->busy) {
		destroy(p);
		return;
	}
	if (p->kind == K_EE && p->call != NULL) {
		/* The socket call can be abandoned; its callback never runs. */
		dd_ndjson_cancel(p->call);
		finish(p, DD_ERR_CANCELLED);
	} else {
		/*
		 * The thread cannot be stopped mid-quote; its result is
		 * dropped when it lands, but the caller hears now, so it may
		 * free whatever its callback would have touched.
		 */
		struct pending *job = &p->queue[p->head];
		dd_quote_cb cb = job->cb;

		job->cb = NULL;
		uv_cancel((uv_req_t *)&p->work); /* if not yet started */
		cb(DD_ERR_CANCELLED, NULL, 0, "provider closed", job->ud);
	}
}
