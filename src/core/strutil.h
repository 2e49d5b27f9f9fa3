/*
 * strutil.h: the project's one way to turn text into numbers, hex and ids.
 *
 * atoi/strtol-family calls are banned in src/ (R11); these helpers wrap
 * strtoull with the end-pointer, errno, sign and bounds checks that are
 * easy to forget.
 */
#ifndef DD_CORE_STRUTIL_H
#define DD_CORE_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/*
 * Whole string must be decimal digits (no sign, no spaces, no "0x"), at
 * most 20 digits, and within [min, max]. INVALID or RANGE otherwise.
 */
dd_err_t dd_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* The same on a length-delimited slice (need not be NUL-terminated). */
dd_err_t dd_parse_u64n(const char *s, size_t n, uint64_t min, uint64_t max,
		       uint64_t *out);

/* out must hold 2*n+1 bytes; lower-case, NUL-terminated. */
void dd_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits (either case) into n bytes. */
dd_err_t dd_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n);

/* Value of one hex digit (either case), or -1. */
int dd_hex_digit(char c);

/*
 * Percent-decodes s[0..n) into out (room for n bytes; not terminated) and
 * sets *out_len. form: '+' means space (query strings). INVALID for a
 * truncated or non-hex escape and for %00, which would cut C strings.
 */
dd_err_t dd_pct_decode(const char *s, size_t n, int form, char *out,
		       size_t *out_len);

/*
 * Percent-encodes s[0..n) for a query value: everything but the RFC 3986
 * unreserved characters becomes %XX. Appends to out (TOO_LARGE past its
 * cap).
 */
dd_err_t dd_pct_encode(const char *s, size_t n, dd_buf *out);

/*
 * The first field `name` of an application/x-www-form-urlencoded body (or
 * query string), decoded into out (cap bytes, NUL-terminated). NOT_FOUND
 * when absent; INVALID for a bad escape; TOO_LARGE when it does not fit.
 */
dd_err_t dd_form_field(const char *body, size_t len, const char *name,
		       char *out, size_t cap);

/*
 * errno in words, safe on any thread: static text, never formatted into a
 * shared buffer ("unknown error" for a code the C library does not know).
 * Portable between glibc and musl (the release build).
 */
const char *dd_strerrno(int e);

/* Fills out with 2*nbytes random hex digits + NUL from the OS CSPRNG. */
dd_err_t dd_random_hex(char *out, size_t nbytes);
dd_err_t dd_random_bytes(void *out, size_t n);

/*
 * 1 when s is a UUID in canonical lower-case form (8-4-4-4-12 hex digits):
 * the session ids sessiond makes and clients may send back.
 */
int dd_uuid_ok(const char *s);

/* Case-insensitive ASCII comparison of a slice against a C string. */
int dd_str_ieq(const char *a, size_t alen, const char *b);

/* Trims ASCII whitespace from both ends of [*s, *s + *n). */
void dd_str_trim(const char **s, size_t *n);

/* Monotonic clock in milliseconds and in microseconds. */
uint64_t dd_now_ms(void);
uint64_t dd_now_us(void);

#endif
