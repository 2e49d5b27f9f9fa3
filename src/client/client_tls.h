/*
 * client_tls.h: TLS for the client's WebSocket (wss://), kept out of the
 * server paths: the ws module speaks plain bytes over a socketpair end,
 * and a relay thread carries them over one TLS connection (OpenSSL, the
 * system CA store plus an optional extra CA file, hostname verification,
 * SNI, TLS 1.2 or later).
 *
 * The TCP connect and the TLS handshake run synchronously in
 * dd_tls_relay_open (bounded by timeout_ms), so a certificate problem is
 * reported before any WebSocket exists. Afterwards the thread only copies
 * bytes: when the TLS peer ends, it closes its socketpair end (the ws
 * sees EOF); when the ws closes the other end, it sends close_notify and
 * ends.
 */
#ifndef DD_CLIENT_CLIENT_TLS_H
#define DD_CLIENT_CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct dd_tls_relay dd_tls_relay;

/*
 * Connects to host:port (a name or an IP literal, without brackets) and
 * completes a verified TLS handshake. DD_OK: *fd is the caller's end of a
 * socketpair (close it, or hand it to uv_pipe_open) and *out the relay,
 * released with dd_tls_relay_free() once that fd is closed. Errors, with
 * why: NOT_FOUND (name), IO (connect), TIMEOUT, CRYPTO (handshake or
 * certificate; why has OpenSSL's verify result), CONFIG (ca_file
 * unreadable), NOMEM.
 */
dd_err_t dd_tls_relay_open(const char *host, const char *port,
			   const char *ca_file, uint64_t timeout_ms, int *fd,
			   dd_tls_relay **out, char *why, size_t why_len);

/* Waits for the relay thread (which ends once the caller's fd is closed
 * or the peer hangs up) and frees everything. NULL is a no-op. */
void dd_tls_relay_free(dd_tls_relay *r);

#endif
