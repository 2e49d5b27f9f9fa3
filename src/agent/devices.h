/*
 * devices.h: the agent's paired devices (spec: noise-sessions 3.1-3.6,
 * with this project's fixes, DESIGN.md 5 items 4 and 7).
 *
 * A device is an X25519 public key a person confirmed in the browser.
 * The store keeps every pairing (key, label, who paired it and when,
 * whether and when it was revoked) in one JSON file, rewritten whole on
 * each change: temp file, fsync, rename, directory fsync, mode 0600, so
 * a crash leaves either the old registry or the new one. It is read at
 * boot and a file that is not exactly what we write (bad JSON, a bad
 * key, duplicates, too many records, wrong mode or owner) stops the
 * agent: silently dropping a record could un-revoke nothing but could
 * hide a revocation, and guessing is worse than refusing.
 *
 * The trust set is every unrevoked record. The Noise gateway asks
 * dd_devices_is_trusted() at each handshake and subscribes to
 * revocations so it can close that device's open connections at once
 * (the reference kept them open, spec 3.5). The same set, in key order,
 * is the recipient list sealed transcripts are written to (3.6); a
 * change callback tells whoever pushes it to sessiond.
 *
 * Keys: 64 hex digits (either case in, lower case out) that decode to a
 * canonical X25519 u-coordinate (below 2^255 - 19, top bit clear) that
 * is not of small order (dd_noise_pubkey_ok).
 * Labels: 1..128 bytes after trimming, UTF-8, no control characters.
 * Everything runs on one thread (the loop thread), writes included: a
 * change costs two fsyncs (about 10 ms on the test machine's ext4, under
 * 1 ms on tmpfs), acceptable for something a person does by hand; a
 * lookup is a binary search (about 0.25 us at 64 devices, debug build).
 */
#ifndef DD_AGENT_DEVICES_H
#define DD_AGENT_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define DD_DEVICE_KEY_LEN 32
#define DD_DEVICE_LABEL_MAX 128
#define DD_DEVICE_LOGIN_MAX 39      /* GitHub logins */
#define DD_DEVICES_MAX 4096         /* upper bound of the configured cap */
#define DD_DEVICES_FILE_MAX (2u * 1024 * 1024)
#define DD_DEVICES_MAX_SUBS 8

typedef struct dd_device {
	uint8_t key[DD_DEVICE_KEY_LEN];
	char pubkey[2 * DD_DEVICE_KEY_LEN + 1];  /* lower-case hex of key */
	char label[DD_DEVICE_LABEL_MAX + 1];
	char paired_by[DD_DEVICE_LOGIN_MAX + 1]; /* "" when unknown */
	uint64_t paired_by_id;                   /* 0 when unknown */
	int64_t created_at_ms;
	int64_t revoked_at_ms;                   /* 0: not revoked */
} dd_device;

typedef struct dd_devices dd_devices;

/*
 * Opens the registry at path (NULL: memory only, for tests and dev),
 * holding at most max devices (1..DD_DEVICES_MAX, revoked ones count).
 * A missing file is an empty registry; its directory is created (0700)
 * when missing. INVALID/TOO_LARGE/IO with why for a file that cannot be
 * used. Caller frees with dd_devices_free().
 */
dd_err_t dd_devices_open(const char *path, size_t max, dd_devices **out,
			 char *why, size_t why_len);
void dd_devices_free(dd_devices *d);

/*
 * The file format, parsed alone (the fuzz target): text[0..len) into d's
 * records, replacing them only when the whole text is valid.
 */
dd_err_t dd_devices_parse(dd_devices *d, const char *text, size_t len,
			  char *why, size_t why_len);

/*
 * The file text for d's records (what dd_devices_parse reads back).
 * Caller frees *out with dd_free().
 */
dd_err_t dd_devices_dump(const dd_devices *d, char **out);

/*
 * A device key from outside: 64 hex digits, either case, decoding to an
 * acceptable X25519 public key. INVALID with why otherwise.
 */
dd_err_t dd_device_key_parse(const char *hex, uint8_t key[DD_DEVICE_KEY_LEN],
			     char *why, size_t why_len);
/*
 * A label from outside, trimmed into out (DD_DEVICE_LABEL_MAX + 1
 * bytes). INVALID with why when blank, too long, not UTF-8 or holding
 * control characters.
 */
dd_err_t dd_device_label_parse(const char *s, char *out, char *why,
			       size_t why_len);

/* Whether key is paired and not revoked: the gateway's handshake check. */
int dd_devices_is_trusted(const dd_devices *d,
			  const uint8_t key[DD_DEVICE_KEY_LEN]);

/*
 * Pairs (or re-pairs) a device: a new record, or the existing one with a
 * new label, pairing user and time and its revocation cleared (a revoked
 * key can be enrolled again, spec 3.3). Persisted before it takes
 * effect: IO leaves everything as it was. BUSY when a new key would pass
 * the cap. *out (may be NULL) gets the stored record. by_login may be
 * NULL.
 */
dd_err_t dd_devices_pair(dd_devices *d, const uint8_t key[DD_DEVICE_KEY_LEN],
			 const char *label, const char *by_login,
			 uint64_t by_id, int64_t now_ms, dd_device *out);

/*
 * Revokes a paired, unrevoked device (NOT_FOUND otherwise): persisted,
 * then the revocation callbacks run, then the change callbacks. The
 * record stays, marked, so the history of who was trusted remains.
 */
dd_err_t dd_devices_revoke(dd_devices *d,
			   const uint8_t key[DD_DEVICE_KEY_LEN],
			   int64_t now_ms, dd_device *out);

/* Records, in key order (revoked ones included). */
size_t dd_devices_count(const dd_devices *d);
const dd_device *dd_devices_at(const dd_devices *d, size_t i);

/*
 * The recipient set: the trusted keys, in key order, copied into
 * out[0..cap); *n is how many there are (may exceed cap: then only cap
 * were copied and TOO_LARGE is returned).
 */
dd_err_t dd_devices_recipients(const dd_devices *d,
			       uint8_t (*out)[DD_DEVICE_KEY_LEN], size_t cap,
			       size_t *n);

/* One record as the API shows it (new reference, NULL on NOMEM). */
json_t *dd_device_json(const dd_device *dev);

/*
 * Subscriptions. on_revoke(key) runs after a revocation is persisted
 * (close that device's connections now); on_change() after any change to
 * the trust set (push the recipients). Either may be NULL. Callbacks may
 * read the registry but not change it or (un)subscribe. BUSY past
 * DD_DEVICES_MAX_SUBS. *id is for dd_devices_unsubscribe.
 */
typedef struct dd_devices_hooks {
	void (*on_revoke)(const uint8_t key[DD_DEVICE_KEY_LEN], void *ud);
	void (*on_change)(void *ud);
	void *ud;
} dd_devices_hooks;

dd_err_t dd_devices_subscribe(dd_devices *d, const dd_devices_hooks *h,
			      unsigned *id);
void dd_devices_unsubscribe(dd_devices *d, unsigned id);

#endif
