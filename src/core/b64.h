/*
 * b64.h: strict Base64 (RFC 4648 section 4) and Base64url (section 5).
 *
 * Decoding refuses anything a lenient decoder would let through: characters
 * outside the alphabet, whitespace, padding in the wrong place or amount,
 * and non-zero bits left over in the final character (so every byte string
 * has exactly one accepted encoding). The standard alphabet requires
 * padding; base64url refuses it (as JWS does).
 */
#ifndef DD_CORE_B64_H
#define DD_CORE_B64_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum {
	DD_B64_STD = 0, /* "+/" with "=" padding */
	DD_B64_URL,     /* "-_" without padding */
} dd_b64_alphabet;

/* Bytes needed to decode n characters (an upper bound). */
size_t dd_b64_decoded_max(size_t n);

/* Appends the decoding of s[0..n) to out. INVALID on any malformed input,
 * TOO_LARGE past out's cap (out is then unchanged). */
dd_err_t dd_b64_decode(dd_b64_alphabet a, const char *s, size_t n, dd_buf *out);

/* Appends the encoding of data[0..n) to out (NUL-terminated by dd_buf). */
dd_err_t dd_b64_encode(dd_b64_alphabet a, const void *data, size_t n, dd_buf *out);

#endif
