/*
 * provider.h: where quotes come from, behind one interface.
 *
 *   tsm  the kernel's configfs-tsm (tsm.h), on the libuv thread pool
 *        because a quote takes about a second on real hardware;
 *   ee   EasyEnclave's `attest` method over its unix socket (ndjson.h);
 *   sim  development only: quotes in the simulated layout (quote_sim.h),
 *        signed by a key generated at start, which every verifier refuses
 *        outside explicit dev mode.
 *
 * Requests are served one at a time, in order: quote generation is
 * serialised by the hardware anyway, and a second caller must not race
 * the first one's report data. At most DD_QUOTE_QUEUE requests wait;
 * more get DD_ERR_BUSY. Everything else runs on the loop thread.
 */
#ifndef DD_ATTEST_PROVIDER_H
#define DD_ATTEST_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "net/ndjson.h"

#define DD_QUOTE_QUEUE 16
#define DD_QUOTE_MAX (128u * 1024) /* kernel outblobs stay under this */

typedef struct dd_quote_provider dd_quote_provider;

/*
 * One quote. quote is valid only during the call; why is a one-line
 * reason on failure ("" on success). After dd_quote_provider_close every
 * pending request completes with DD_ERR_CANCELLED.
 */
typedef void (*dd_quote_cb)(dd_err_t err, const uint8_t *quote, size_t len,
			    const char *why, void *ud);

/* root: the tsm report directory (DD_TSM_DEFAULT_ROOT in production). */
dd_err_t dd_quote_provider_tsm(uv_loop_t *loop, const char *root,
			       dd_quote_provider **out);
/* ee is borrowed and must outlive the provider. */
dd_err_t dd_quote_provider_ee(uv_loop_t *loop, dd_ndjson *ee,
			      dd_quote_provider **out);

/*
 * Asks for a quote over report_data; cb runs later, exactly once, never
 * before this returns. BUSY when the queue is full, CLOSED after close;
 * when the provider is idle and cannot even start (NOMEM, the socket
 * client is closed), that error is returned and cb is not called.
 */
dd_err_t dd_quote_request(dd_quote_provider *p, const uint8_t report_data[64],
			  dd_quote_cb cb, void *ud);

/* Simulated quotes carrying mrtd (dev mode only; the caller decides). */
dd_err_t dd_quote_provider_sim(uv_loop_t *loop, const uint8_t mrtd[48],
			       dd_quote_provider **out);

/* "tsm", "ee" or "simulated": for /health and logs. */
const char *dd_quote_provider_kind(const dd_quote_provider *p);

/*
 * Cancels everything: every outstanding callback, the one being served
 * included, runs with CANCELLED before this returns, so callers may free
 * their state right after. The provider itself is freed once no work is
 * in flight (a quote already being generated on the thread pool finishes
 * first, and its result is dropped).
 */
void dd_quote_provider_close(dd_quote_provider *p);

#endif
