/*
 * noise.h: Noise_IK_25519_ChaChaPoly_BLAKE2s, the channel between a paired
 * device (initiator) and the agent (responder); spec noise-sessions.md
 * sections 2.1-2.11, Noise Protocol Framework revision 34.
 *
 * The whole interface the gateway and the client need:
 *
 *   responder (agent)                    initiator (device)
 *   dd_noise_hs_new_responder(&key,..)   dd_noise_hs_new_initiator(&key, agent_pub,..)
 *                                        dd_noise_hs_write_message()  -> msg 1
 *   dd_noise_hs_read_message(msg 1)
 *   dd_noise_hs_remote_static() -> device key: check the trust set here
 *   dd_noise_hs_write_message()  -> msg 2
 *                                        dd_noise_hs_read_message(msg 2)
 *   dd_noise_hs_split() -> transport     dd_noise_hs_split() -> transport
 *   dd_noise_hs_free()                   dd_noise_hs_free()
 *   dd_noise_transport_encrypt()/decrypt(), one Noise message each way per
 *   WebSocket message, counters from 0 per direction, never rekeyed.
 *
 * DD uses an empty prologue and empty handshake payloads (spec 2.2); both
 * are supported in general because the public vectors exercise them.
 *
 * Errors. Every call on a handshake that fails ends it: later calls answer
 * DD_ERR_CLOSED (the Noise rule that a failed handshake is abandoned).
 *   DD_ERR_INVALID   wrong role or order (e.g. the responder writing first,
 *                    a second message 1), or a message too short to parse
 *   DD_ERR_TOO_LARGE a message over DD_NOISE_MAX_MSG bytes, or an output
 *                    buffer too small (sizes below say what is enough)
 *   DD_ERR_CRYPTO    authentication failed, a low-order or all-zero public
 *                    key, or a DH result of all zeros
 *   DD_ERR_RANGE     the nonce reached 2^64-1 (reserved by Noise)
 *   DD_ERR_NOMEM     allocation failed
 * A transport whose decryption fails once is closed for good in both
 * directions (DD_ERR_CLOSED): a peer that forged one message gets no more
 * tries. A failed encryption (plaintext too large, buffer too small)
 * consumes no nonce and leaves the transport usable.
 *
 * Objects are not thread-safe; one per connection. No global state.
 */
#ifndef DD_NOISE_NOISE_H
#define DD_NOISE_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "noise/static_key.h"

#define DD_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2s"
#define DD_NOISE_HASH_LEN 32
#define DD_NOISE_TAG_LEN 16
/* Every Noise message, handshake or transport, is at most this long. */
#define DD_NOISE_MAX_MSG 65535
#define DD_NOISE_MAX_PLAINTEXT (DD_NOISE_MAX_MSG - DD_NOISE_TAG_LEN)
/* Message 1 = e (32) + encrypted s (48) + payload + tag. */
#define DD_NOISE_MSG1_OVERHEAD (DD_X25519_LEN + DD_X25519_LEN + 2 * DD_NOISE_TAG_LEN)
/* Message 2 = e (32) + payload + tag. */
#define DD_NOISE_MSG2_OVERHEAD (DD_X25519_LEN + DD_NOISE_TAG_LEN)

typedef struct dd_noise_hs dd_noise_hs;
typedef struct dd_noise_transport dd_noise_transport;

/*
 * 1 when pub may be used as a Noise public key: not one of the X25519
 * points of small order (which includes all zeros), in any of their
 * encodings. Enrollment should refuse what this refuses (spec 7.12).
 */
int dd_noise_pubkey_ok(const uint8_t pub[DD_X25519_LEN]);

/*
 * New initiator with its static key s (priv and pub must match, as
 * dd_static_key_load() makes them; they are copied) and the responder's
 * static public key rs, known in advance (IK). prologue may be NULL when
 * prologue_len is 0. A low-order rs is refused (DD_ERR_CRYPTO).
 * Caller frees *out with dd_noise_hs_free().
 */
dd_err_t dd_noise_hs_new_initiator(const dd_static_key *s,
				   const uint8_t rs[DD_X25519_LEN],
				   const uint8_t *prologue, size_t prologue_len,
				   dd_noise_hs **out);

/* New responder with its static key s (copied). Caller frees *out with
 * dd_noise_hs_free(). */
dd_err_t dd_noise_hs_new_responder(const dd_static_key *s,
				   const uint8_t *prologue, size_t prologue_len,
				   dd_noise_hs **out);

/* Wipes every secret and frees; NULL is a no-op. */
void dd_noise_hs_free(dd_noise_hs *hs);

/*
 * Writes the next handshake message (message 1 for the initiator, message
 * 2 for the responder) carrying payload (NULL when payload_len is 0).
 * out_cap >= payload_len + DD_NOISE_MSG1_OVERHEAD (or MSG2) is enough; the
 * message must fit in DD_NOISE_MAX_MSG.
 */
dd_err_t dd_noise_hs_write_message(dd_noise_hs *hs, const uint8_t *payload,
				   size_t payload_len, uint8_t *out,
				   size_t out_cap, size_t *out_len);

/*
 * Reads the next handshake message from the peer (hostile bytes) and
 * writes its decrypted payload to payload. payload may be NULL (then
 * payload_cap must be 0 and payload_len may be NULL): the payload is
 * still authenticated, then discarded, as DD's responder does with any
 * message-1 payload. Otherwise payload_cap >= msg_len is always enough.
 * Nothing is written to payload unless it authenticates.
 */
dd_err_t dd_noise_hs_read_message(dd_noise_hs *hs, const uint8_t *msg,
				  size_t msg_len, uint8_t *payload,
				  size_t payload_cap, size_t *payload_len);

/* 1 once both handshake messages have been processed (split may follow). */
int dd_noise_hs_done(const dd_noise_hs *hs);

/*
 * The peer's static public key: for the responder, the initiator's key,
 * authenticated, once message 1 has been read (check the trust set before
 * writing message 2); for the initiator, the rs it was created with.
 * DD_ERR_INVALID before it is known.
 */
dd_err_t dd_noise_hs_remote_static(const dd_noise_hs *hs,
				   uint8_t out[DD_X25519_LEN]);

/* The handshake hash h, once the handshake is done (also after split);
 * identical on both sides. DD_ERR_INVALID before. */
dd_err_t dd_noise_hs_handshake_hash(const dd_noise_hs *hs,
				    uint8_t out[DD_NOISE_HASH_LEN]);

/*
 * Split (Noise 5.2) into the two transport CipherStates, sending and
 * receiving for this side; only once, only when done. The handshake's
 * chaining key and ephemeral keys are wiped; remote_static and
 * handshake_hash stay readable. Caller frees *out with
 * dd_noise_transport_free().
 */
dd_err_t dd_noise_hs_split(dd_noise_hs *hs, dd_noise_transport **out);

/* Wipes the keys and frees; NULL is a no-op. */
void dd_noise_transport_free(dd_noise_transport *t);

/*
 * Encrypts one transport message: in_len <= DD_NOISE_MAX_PLAINTEXT,
 * out_cap >= in_len + DD_NOISE_TAG_LEN; *out_len = in_len + 16. out may
 * equal in (in place) but must not otherwise overlap it.
 */
dd_err_t dd_noise_transport_encrypt(dd_noise_transport *t, const uint8_t *in,
				    size_t in_len, uint8_t *out, size_t out_cap,
				    size_t *out_len);

/*
 * Decrypts one transport message from the peer (hostile bytes):
 * DD_NOISE_TAG_LEN <= in_len <= DD_NOISE_MAX_MSG, out_cap >= in_len - 16.
 * out may equal in. On failure out holds no plaintext.
 */
dd_err_t dd_noise_transport_decrypt(dd_noise_transport *t, const uint8_t *in,
				    size_t in_len, uint8_t *out, size_t out_cap,
				    size_t *out_len);

#endif
