/*
 * seal.h: transcript records sealed end to end to paired devices' X25519
 * keys (spec/noise-sessions.md section 5.10, format v2, byte for byte).
 *
 * A sealed line is compact JSON, keys in this order:
 *   {"v":2,"rcpts":[{"epk":hex32,"n":hex12,"wk":b64}, ...],
 *    "bn":hex12,"body":b64}
 * body = ChaCha20-Poly1305(cek, bn, record); for each recipient key rpk a
 * fresh ephemeral esk, wrap = HKDF-SHA256(salt none, X25519(esk, rpk),
 * "dd-sessiond-e2e-v2" || epk || rpk), wk = ChaCha20-Poly1305(wrap, n,
 * cek). The content key and ephemeral secrets are wiped as soon as the
 * line is built: sessiond cannot read what it wrote. Every primitive is
 * OpenSSL EVP.
 *
 * The record inside is {"ts":<unix s>,"kind":"meta"|"pty","data_b64":b64}
 * (readers also take "stdout" and "stderr" as terminal bytes).
 *
 * This module is also what a client opens history with (`devopsdefender
 * client replay`): dd_seal_open with the device's private key.
 */
#ifndef DD_SESSIOND_SEAL_H
#define DD_SESSIOND_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define DD_SEAL_KEY_LEN 32
#define DD_SEAL_NONCE_LEN 12
#define DD_SEAL_TAG_LEN 16
#define DD_SEAL_MAX_RECIPIENTS 64
/* A sealed line longer than this is refused by the parser. */
#define DD_SEAL_MAX_LINE (1u << 20)
#define DD_SEAL_INFO "dd-sessiond-e2e-v2"

typedef enum {
	DD_REC_META = 0,  /* data is session metadata (JSON) */
	DD_REC_PTY,       /* data is terminal output ("pty", "stdout", "stderr") */
} dd_rec_kind;

/* Fills out with n random bytes; tests substitute their own. */
typedef dd_err_t (*dd_seal_rand_fn)(void *ud, void *out, size_t n);

/*
 * Seals plain[0..len) for the n recipients (1..DD_SEAL_MAX_RECIPIENTS
 * public keys) and appends the line, without a newline, to out.
 * INVALID for n out of range, CRYPTO when a key is unusable (a low-order
 * point gives an all-zero shared secret, which OpenSSL refuses),
 * TOO_LARGE at out's cap (out is then left as it was).
 */
dd_err_t dd_seal(const uint8_t (*rcpts)[DD_SEAL_KEY_LEN], size_t n,
		 const void *plain, size_t len, dd_buf *out);

/*
 * dd_seal with the randomness drawn from rnd in the order of the spec:
 * cek (32), bn (12), then per recipient esk (32) and n (12).
 */
dd_err_t dd_seal_with(const uint8_t (*rcpts)[DD_SEAL_KEY_LEN], size_t n,
		      const void *plain, size_t len, dd_seal_rand_fn rnd,
		      void *ud, dd_buf *out);

/*
 * Opens a sealed line (no newline) with a device's private key and
 * appends the record to out (wipe it after use). Errors:
 *   INVALID    not a v2 sealed line (legacy base64 lines, garbage)
 *   NOT_FOUND  no stanza opens with this key: not for this device
 *   CRYPTO     a stanza opened but the body did not authenticate
 *   TOO_LARGE  out's cap
 */
dd_err_t dd_seal_open(const uint8_t sk[DD_SEAL_KEY_LEN], const void *line,
		      size_t len, dd_buf *out);

/*
 * What `client replay` shows: the terminal output of a replay's lines
 * (in order, as shell.replay_session returns them) that open with sk,
 * appended to out; meta records are skipped, and so are lines that are
 * not for this device or not sealed lines at all (legacy, damaged),
 * counted in *skipped. *opened counts the lines that opened. Errors are
 * only NOMEM and TOO_LARGE (out's cap).
 */
dd_err_t dd_seal_replay(const uint8_t sk[DD_SEAL_KEY_LEN],
			const char *const *lines, size_t n, dd_buf *out,
			size_t *opened, size_t *skipped);

/*
 * Checks a sealed line's structure without any key (the fuzzed parser):
 * DD_OK with the number of stanzas, or INVALID.
 */
dd_err_t dd_seal_check(const void *line, size_t len, size_t *nrcpts);

/* X25519 public key of a private key. */
dd_err_t dd_seal_public(const uint8_t sk[DD_SEAL_KEY_LEN],
			uint8_t pk[DD_SEAL_KEY_LEN]);

/*
 * Whether pk is usable as a recipient: DD_OK, or CRYPTO for a key whose
 * shared secrets are predictable (all-zero and other low-order points).
 */
dd_err_t dd_seal_key_ok(const uint8_t pk[DD_SEAL_KEY_LEN]);

/* Appends the compact record JSON (spec key order) to out. */
dd_err_t dd_rec_encode(uint64_t ts, dd_rec_kind kind, const void *data,
		       size_t len, dd_buf *out);

/*
 * Parses a record: *ts, *kind and the decoded data appended to data.
 * INVALID for anything but {"ts":uint,"kind":known,"data_b64":std b64}
 * (other fields are ignored), TOO_LARGE at data's cap.
 */
dd_err_t dd_rec_parse(const void *rec, size_t len, uint64_t *ts,
		      dd_rec_kind *kind, dd_buf *data);

#endif
