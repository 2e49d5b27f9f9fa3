/*
 * fleet_view.c: visibility of fleet records and their JSON views
 * (fleet_view.h has the rules).
 */
#include "cp/fleet_view.h"

#include <stdio.h>
#include <string.h>

static bool sees_full(const dd_caller *who, const char *agent_id,
		      bool has_owner, const dd_principal *owner)
{
	if (who == NULL)
		return false;
	switch (who->kind) {
	case DD_CALLER_ADMIN:
	case DD_CALLER_OWNER:
		return true;
	case DD_CALLER_USER:
	case DD_CALLER_TENANT_USER:
		/* Without an owner (the CP's own entry too): admins only. */
		if (who->session.is_fleet_admin)
			return true;
		if (!has_owner || strcmp(agent_id, DD_FLEET_CP_ID) == 0)
			return false;
		return dd_authz_session_owns(&who->session, owner) != 0;
	default:
		return false;
	}
}

bool dd_fleet_sees_full(const dd_caller *who, const dd_store_agent *a)
{
	return sees_full(who, a->agent_id, a->has_owner, &a->owner);
}

bool dd_fleet_brief_sees_full(const dd_caller *who, const dd_store_brief *b)
{
	return sees_full(who, b->agent_id, b->has_owner, &b->owner);
}

dd_fleet_view dd_fleet_api_view(const dd_caller *who, const dd_store_agent *a)
{
	return dd_fleet_sees_full(who, a) ? DD_FLEET_FULL : DD_FLEET_PUBLIC;
}

dd_fleet_view dd_fleet_page_view(const dd_caller *who, const dd_store_agent *a)
{
	return dd_fleet_sees_full(who, a) ? DD_FLEET_FULL : DD_FLEET_HIDDEN;
}

void dd_fleet_time_offset(int64_t ms, char *out, size_t out_len)
{
	char z[32];
	size_t n;

	dd_store_time_format(ms, z, sizeof z);
	n = strlen(z);
	/* The Z form always ends in 'Z': swap it for the explicit offset. */
	if (n > 0 && z[n - 1] == 'Z')
		z[n - 1] = '\0';
	snprintf(out, out_len, "%s+00:00", z);
}

/* A count from the health snapshot (absent or malformed: 0). */
static json_int_t health_count(const dd_store_agent *a, const char *key)
{
	json_t *v = json_object_get(a->health, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
	       ? json_integer_value(v) : 0;
}

static json_int_t oracle_count(const dd_store_agent *a)
{
	json_t *v = json_object_get(a->health, "oracles");

	return json_is_array(v) ? (json_int_t)json_array_size(v) : 0;
}

static json_t *last_seen_json(int64_t ms, unsigned flags)
{
	char t[40];

	if (flags & DD_FLEET_TIME_OFFSET)
		dd_fleet_time_offset(ms, t, sizeof t);
	else
		dd_store_time_format(ms, t, sizeof t);
	return json_string(t);
}

/* The public view, from whichever form of the record. */
struct pub {
	const char *agent_id, *hostname, *vm_name, *attestation_type;
	dd_agent_status status;
	int64_t last_seen_ms;
	bool read_only, clean;
	json_int_t deployments, units, oracles;
};

static dd_err_t public_json(const struct pub *p, unsigned flags,
			    json_t **out)
{
	json_t *o = json_object();
	int bad = o == NULL;

	if (bad)
		return DD_ERR_NOMEM;
	bad |= json_object_set_new(o, "agent_id", json_string(p->agent_id));
	bad |= json_object_set_new(o, "hostname", json_string(p->hostname));
	bad |= json_object_set_new(o, "vm_name", json_string(p->vm_name));
	bad |= json_object_set_new(o, "attestation_type",
				   json_string(p->attestation_type));
	bad |= json_object_set_new(o, "status", json_string(
				   dd_agent_status_name(p->status)));
	bad |= json_object_set_new(o, "last_seen",
				   last_seen_json(p->last_seen_ms, flags));
	bad |= json_object_set_new(o, "agent_mode", json_string(
				   p->read_only ? "read_only" : "read_write"));
	bad |= json_object_set_new(o, "integrity_state", json_string(
				   p->clean ? "clean" : "controlled"));
	bad |= json_object_set_new(o, "deployment_count",
				   json_integer(p->deployments));
	bad |= json_object_set_new(o, "unit_count", json_integer(p->units));
	bad |= json_object_set_new(o, "oracle_count",
				   json_integer(p->oracles));
	if (bad) {
		json_decref(o);
		return DD_ERR_NOMEM;
	}
	*out = o;
	return DD_OK;
}

static dd_err_t agent_public_json(const dd_store_agent *a, unsigned flags,
				  json_t **out)
{
	struct pub p = {a->agent_id, a->hostname, a->vm_name,
			a->attestation_type, a->status, a->last_seen_ms,
			a->read_only, a->clean,
			health_count(a, "deployment_count"),
			health_count(a, "unit_count"), oracle_count(a)};

	return public_json(&p, flags, out);
}

dd_err_t dd_fleet_brief_json(const dd_store_brief *b, unsigned flags,
			     json_t **out)
{
	struct pub p = {b->agent_id, b->hostname, b->vm_name,
			b->attestation_type, b->status, b->last_seen_ms,
			b->read_only, b->clean, (json_int_t)b->deployment_count,
			(json_int_t)b->unit_count, (json_int_t)b->oracle_count};

	*out = NULL;
	return public_json(&p, flags, out);
}

static dd_err_t full_json(const dd_store_agent *a, unsigned flags,
			  json_t **out)
{
	json_t *o = NULL;
	dd_err_t rc;
	int bad = 0;

	rc = dd_store_agent_to_json(a, &o);
	if (rc)
		return rc;
	bad |= json_object_set_new(o, "oracle_count",
				   json_integer(oracle_count(a)));
	if (flags & DD_FLEET_TIME_OFFSET)
		bad |= json_object_set_new(o, "last_seen",
					   last_seen_json(a->last_seen_ms,
							  flags));
	if (bad) {
		json_decref(o);
		return DD_ERR_NOMEM;
	}
	*out = o;
	return DD_OK;
}

dd_err_t dd_fleet_agent_json(const dd_store_agent *a, dd_fleet_view v,
			     unsigned flags, json_t **out)
{
	*out = NULL;
	switch (v) {
	case DD_FLEET_PUBLIC:
		return agent_public_json(a, flags, out);
	case DD_FLEET_FULL:
		return full_json(a, flags, out);
	case DD_FLEET_HIDDEN:
		break;
	}
	return DD_ERR_INVALID;
}

dd_err_t dd_fleet_api_append(json_t *arr, const dd_caller *who,
			     const dd_store_agent *a, unsigned flags)
{
	json_t *o = NULL;
	dd_err_t rc;

	rc = dd_fleet_agent_json(a, dd_fleet_api_view(who, a), flags, &o);
	if (rc)
		return rc;
	if (json_array_append_new(arr, o) != 0)
		return DD_ERR_NOMEM;
	return DD_OK;
}
