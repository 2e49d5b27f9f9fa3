/*
 * cf_snap_int.h: helpers shared by the snapshot and map builders
 * (cf_snapshot.c, cf_drift.c, cf_map.c). Not an interface: only those
 * files include it. Every json_t * returned is a new reference or NULL
 * on allocation failure; the item builders copy only string fields (any
 * other type becomes null) so hostile listings cannot smuggle structure.
 */
#ifndef DD_CLOUDFLARE_CF_SNAP_INT_H
#define DD_CLOUDFLARE_CF_SNAP_INT_H

#include <stddef.h>

#include <jansson.h>

#define DD_CFS_TARGET_SUFFIX ".cfargotunnel.com"
#define DD_CFS_UNATTRIBUTED "(unattributed)"

const char *dd_cfs_str(const json_t *o, const char *key);
int dd_cfs_starts(const char *s, const char *prefix);
int dd_cfs_ends(const char *s, const char *suffix);
json_t *dd_cfs_str_or_null(const json_t *o, const char *key);
/* {id,name,deleted_at} */
json_t *dd_cfs_tunnel_item(const json_t *t);
/* The tunnel id of "<id>.cfargotunnel.com" into id; 0 if not one. */
int dd_cfs_target_id(const char *content, char *id, size_t cap);
/* {id,name,content,proxied,tunnel_id_ref} */
json_t *dd_cfs_dns_item(const json_t *r, const char *ref);
/* "bypass", "human" or "unknown" from the app's first policy. */
const char *dd_cfs_policy_kind(const json_t *app);
/* {id,name,domain,policy_kind} */
json_t *dd_cfs_app_item(const json_t *a);
/* Appends and consumes v; non-zero on failure (v NULL included). */
int dd_cfs_append(json_t *arr, json_t *v);
/* A copy of the agents array sorted by agent_id. */
json_t *dd_cfs_sorted_agents(const json_t *agents);

#endif
