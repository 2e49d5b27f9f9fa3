/*
 * cp_enroll.h: CP GET /admin/enroll?pubkey=&label=[&agent=] (spec:
 * http-surface 3.9, noise-sessions 3.2 step 2 and 7.14).
 *
 * The link `devopsdefender client pair` prints points here; the CP keeps
 * no device trust itself, it only sends the signed-in browser on to an
 * agent that will: the key and label are checked (the same rules the
 * agent applies, agent/devices.h; a bad one is a 200 card a person
 * reads), then the browser gets a 307 to that agent's own
 * /admin/enroll, where the pairing is confirmed. The agent is the one
 * named by `agent` (an agent_id) or else the first, in agent_id order,
 * that is healthy, read-write and not the control-plane entry, among the
 * agents the user may see (admins: all; others: those whose runtime
 * tenant they are). None: a 200 card "No read-write agent available".
 * Cookie sessions only (the authorization table's page entry: anonymous
 * browsers are sent to sign in, API callers get 401).
 */
#ifndef DD_CP_CP_ENROLL_H
#define DD_CP_CP_ENROLL_H

#include <stddef.h>

#include "auth/authz.h"
#include "cp/store.h"

#define DD_CP_ENROLL_ROUTES 1

/* store is borrowed and must outlive every request. Returns n. */
size_t dd_cp_enroll_routes(dd_store *store, dd_authz_route *routes);

#endif
