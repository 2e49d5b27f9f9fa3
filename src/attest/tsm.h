/*
 * tsm.h: one TDX quote from the kernel's configfs-tsm interface.
 *
 * Blocking (quote generation takes about a second on real hardware), so
 * callers run it on the libuv thread pool (see provider.h). The report
 * root is configurable so tests can point it at a stand-in directory.
 *
 * Steps: mkdir a fresh entry under root, read `generation`, write the 64
 * bytes of report data to `inblob`, read `outblob`, read `generation`
 * again (it must have advanced by exactly one, else another writer raced
 * us and the quote may not carry our report data), rmdir the entry.
 */
#ifndef DD_ATTEST_TSM_H
#define DD_ATTEST_TSM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define DD_TSM_DEFAULT_ROOT "/sys/kernel/config/tsm/report"

/*
 * Appends the quote to out (whose cap bounds it: TOO_LARGE beyond).
 * Errors: UNSUPPORTED when root does not exist (no configfs-tsm here),
 * UPSTREAM for an empty outblob (no quote-generation service wired),
 * BUSY when the generation counter shows a concurrent writer, IO
 * otherwise. why (may be NULL) gets a one-line reason.
 */
dd_err_t dd_tsm_get_quote(const char *root, const uint8_t report_data[64],
			  dd_buf *out, char *why, size_t why_len);

#endif
