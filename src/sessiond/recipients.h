/*
 * recipients.h: the paired devices' X25519 public keys that transcript
 * records are sealed to (spec/noise-sessions.md section 3.6).
 *
 * The agent pushes the live set whenever it changes and again when
 * sessiond restarts; sessiond also keeps the set in a file (public keys
 * only, 0600, written atomically) so history is not silently off between
 * a sessiond restart and the agent's next push (spec section 7 item 22).
 */
#ifndef DD_SESSIOND_RECIPIENTS_H
#define DD_SESSIOND_RECIPIENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "sessiond/seal.h"

typedef struct dd_sd_rcpts {
	size_t n;
	uint8_t keys[DD_SEAL_MAX_RECIPIENTS][DD_SEAL_KEY_LEN];
} dd_sd_rcpts;

/*
 * Parses a JSON array of 64-hex-digit public keys (either case) into
 * *out, dropping repeats. INVALID with why for anything else, more than
 * DD_SEAL_MAX_RECIPIENTS keys, or a low-order key (its shared secrets
 * would be predictable, so records sealed to it would not be secret).
 */
dd_err_t dd_sd_rcpts_parse(const json_t *arr, dd_sd_rcpts *out, char *why,
			   size_t why_len);

/* The set as a JSON array of lowercase hex strings (caller decrefs). */
json_t *dd_sd_rcpts_json(const dd_sd_rcpts *r);

/* Loads the file at path; a missing file is an empty set. */
dd_err_t dd_sd_rcpts_load(const char *path, dd_sd_rcpts *out, char *why,
			  size_t why_len);

/* Writes the set to path: temp file, fsync, rename, mode 0600. */
dd_err_t dd_sd_rcpts_save(const char *path, const dd_sd_rcpts *r);

#endif
