/*
 * noise_transport.h: building a dd_noise_transport (noise.h) from a
 * finished SymmetricState; used by the handshake's split only.
 */
#ifndef DD_NOISE_TRANSPORT_H
#define DD_NOISE_TRANSPORT_H

#include "core/err.h"
#include "noise/noise.h"
#include "noise/noise_symmetric.h"

/* Split(ss) into a transport for the initiator (sends with c1) or the
 * responder (sends with c2). Caller frees *out with
 * dd_noise_transport_free(). */
dd_err_t dd_noise_transport_split(dd_noise_symmetric *ss, int initiator,
				  dd_noise_transport **out);

#endif
