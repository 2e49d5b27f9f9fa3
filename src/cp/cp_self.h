/*
 * cp_self.h: the control-plane pseudo-entry of the fleet store (spec
 * http-surface.md 6.2; docs/control-plane.md "The control-plane entry").
 *
 * Key DD_FLEET_CP_ID ("control-plane"); hostname DD_HOSTNAME (else the
 * vm name); vm_name "dd-<env>-cp"; attestation "tdx" ("simulated" when
 * the quotes are); status healthy, read_write, controlled, no owner;
 * ingress none, no tunnel, no extras, no units or oracles; the ITA claims
 * of the CP's own current token; cpu, memory, nets and disks of the
 * local system; last_seen the time of the refresh.
 *
 * Written after boot (after a predecessor's export, which it overwrites),
 * then refreshed after every successful token round and every collector
 * tick. Its ingress is none, so the collector never scrapes it (and so
 * never marks it dead or removes it); registration never evicts it
 * (store.h) and /ingress/replace refuses it.
 */
#ifndef DD_CP_CP_SELF_H
#define DD_CP_CP_SELF_H

#include <stdint.h>

#include <uv.h>

#include "attest/attestor.h"
#include "core/config.h"
#include "core/err.h"
#include "cp/store.h"

typedef struct dd_cp_self dd_cp_self;

/*
 * cfg, att and store are borrowed and must outlive it; now_ms NULL is
 * the wall clock. Starts sampling the local metrics. NOMEM.
 */
dd_err_t dd_cp_self_new(const dd_config *cfg, uv_loop_t *loop,
			dd_attestor *att, dd_store *store,
			int64_t (*now_ms)(void), dd_cp_self **out);

/*
 * Writes the entry as of now. Before the attestor has a token nothing is
 * written. A refresh asked for while one is being written is written
 * once that one is done (never two queued at once).
 */
void dd_cp_self_refresh(dd_cp_self *s);

/*
 * The first write (boot, after hydrate): replaces any entry under our
 * key, then done(ud) runs once it is committed (or at once when nothing
 * could be written), so the CP never serves without its own entry.
 * After dd_cp_self_close done never runs.
 */
void dd_cp_self_seed(dd_cp_self *s, void (*done)(void *ud), void *ud);

/* How many refreshes were committed (tests, logs). */
uint64_t dd_cp_self_written(const dd_cp_self *s);

/* Stops the metrics timer and refreshing (at shutdown). */
void dd_cp_self_close(dd_cp_self *s);
/*
 * Frees it once the loop has run the close and the store has answered
 * its writes (after dd_store_close's callbacks). NULL is a no-op.
 */
void dd_cp_self_free(dd_cp_self *s);

#endif
