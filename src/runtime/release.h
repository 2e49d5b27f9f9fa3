/*
 * release.h: `github_release` served from a local directory instead of
 * GitHub (DD_RUNTIME_RELEASES_DIR; spec/integrations.md section 6.6).
 *
 * The asset is DIR/owner/repo/tag/asset, with tag "latest" when the
 * request names none. The names were validated by proto.c (plain names,
 * never "." or ".."), and the file is opened with RESOLVE_BENEATH, so a
 * symlink inside DIR may point elsewhere inside DIR but never out of it.
 *
 * The asset is copied into a directory of the deployment's own (0700,
 * created here) while its SHA-256 is computed; when the request gave a
 * digest and it differs, nothing is installed. The copy is what runs, so
 * what was checked cannot change before it is executed. `rename` becomes
 * a relative symlink next to the copy, as EasyEnclave makes it.
 *
 * Copying runs on the libuv thread pool; the worker uses no allocator of
 * ours and touches nothing but its own job.
 */
#ifndef DD_RUNTIME_RELEASE_H
#define DD_RUNTIME_RELEASE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "runtime/proto.h"

#define DD_RT_MAX_ASSET_BYTES (1ull << 30)

typedef struct dd_rt_fetch dd_rt_fetch;

/*
 * The outcome: on DD_OK path is the program to run (the renamed link
 * when rename was given); otherwise why says what failed. Both strings
 * are valid during the call only.
 */
typedef void (*dd_rt_fetch_cb)(dd_err_t err, const char *path,
			       const char *why, void *ud);

/*
 * Starts installing rel from releases_dir into dest_dir (which must not
 * exist yet). cb runs once from the loop unless the fetch is cancelled
 * first. NOMEM, or IO when the thread pool refuses the job.
 */
dd_err_t dd_rt_fetch_start(uv_loop_t *loop, const char *releases_dir,
			   const char *dest_dir, const dd_rt_release *rel,
			   uint64_t max_bytes, dd_rt_fetch_cb cb, void *ud,
			   dd_rt_fetch **out);

/*
 * cb will not run; the copy stops at its next chunk and the job frees
 * itself (and what it installed) once the worker has returned.
 */
void dd_rt_fetch_cancel(dd_rt_fetch *f);

/*
 * What the worker runs, callable directly (tests): path_out gets the
 * program's path. NOT_FOUND, FORBIDDEN (escapes DIR, not a regular
 * file), TOO_LARGE, CRYPTO (digest mismatch), IO, CANCELLED; why says
 * which in words. cancel (may be NULL) is polled between chunks.
 */
dd_err_t dd_rt_release_install(const char *releases_dir, const char *dest_dir,
			       const dd_rt_release *rel, uint64_t max_bytes,
			       const atomic_int *cancel, char *path_out,
			       size_t path_len, char *why, size_t why_len);

/*
 * Removes a directory the runtime made: its files and links, and those
 * of its subdirectories (two levels, which is all it ever creates).
 * Never follows a symlink. Errors are ignored: this is cleanup.
 */
void dd_rt_remove_dir(const char *path);

#endif
