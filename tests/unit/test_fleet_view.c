/*
 * test_fleet_view.c: who sees which fleet record, and what the public and
 * full views hold (src/cp/fleet_view.c). The rules are written from the
 * spec (5.5) and the issue, not read back from the code: an owner sees
 * its own agents and not another owner's, admins and the fleet principal
 * see everything, anyone else gets public fields (API) or nothing
 * (pages), and the public view carries no owner, claim or secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/json.h"
#include "cp/fleet_view.h"

/* Callers, as authz would hand them to a handler. */
enum { ANON, ALICE, BOB, ACME_MEMBER, ADMIN, OWNER, AGENT, NCALLERS };

static void caller(int which, dd_caller *who)
{
	memset(who, 0, sizeof *who);
	switch (which) {
	case ALICE:
		who->kind = DD_CALLER_USER;
		snprintf(who->session.login, sizeof who->session.login, "alice");
		who->session.user_id = 1001;
		break;
	case BOB:
		who->kind = DD_CALLER_USER;
		snprintf(who->session.login, sizeof who->session.login, "bob");
		who->session.user_id = 1002;
		break;
	case ACME_MEMBER:
		who->kind = DD_CALLER_USER;
		snprintf(who->session.login, sizeof who->session.login, "carol");
		who->session.user_id = 1003;
		snprintf(who->session.orgs[0], sizeof who->session.orgs[0],
			 "acme");
		who->session.n_orgs = 1;
		break;
	case ADMIN:
		who->kind = DD_CALLER_ADMIN;
		snprintf(who->session.login, sizeof who->session.login, "root");
		who->session.user_id = 1;
		who->session.is_fleet_admin = 1;
		break;
	case OWNER:
		who->kind = DD_CALLER_OWNER;
		break;
	case AGENT:
		who->kind = DD_CALLER_AGENT;
		break;
	default:
		who->kind = DD_CALLER_ANON;
		break;
	}
}

/* A record with every secret-ish member set, owned as given. */
static void agent(dd_store_agent *a, const char *id, int owner_kind,
		  const char *owner, uint64_t owner_id)
{
	json_t *h;

	dd_store_agent_init(a);
	snprintf(a->agent_id, sizeof a->agent_id, "%s", id);
	snprintf(a->hostname, sizeof a->hostname, "%s.example.com", id);
	snprintf(a->vm_name, sizeof a->vm_name, "vm-%s", id);
	snprintf(a->env, sizeof a->env, "prod");
	snprintf(a->attestation_type, sizeof a->attestation_type, "tdx");
	a->status = DD_AGENT_HEALTHY;
	a->last_seen_ms = INT64_C(1780315200123); /* 2026-06-01T12:00:00.123Z */
	a->registered_at_ms = a->last_seen_ms - 1000;
	if (owner != NULL) {
		a->has_owner = true;
		assert_int_equal(dd_principal_make((dd_principal_kind)owner_kind,
						   owner, owner_id, &a->owner,
						   NULL, 0), DD_OK);
	}
	snprintf(a->ita.mrtd, sizeof a->ita.mrtd, "%s", "ab12");
	a->ita.claims = json_pack("{s:s}", "secret_claim", "CLAIMVALUE");
	snprintf(a->noise_pubkey, sizeof a->noise_pubkey, "%064d", 7);
	a->ingress = DD_INGRESS_DIRECT;
	snprintf(a->ingress_url, sizeof a->ingress_url,
		 "https://10.1.2.3:8443");
	snprintf(a->last_error, sizeof a->last_error, "INTERNALERROR");
	a->n_extras = 1;
	snprintf(a->extras[0].label, sizeof a->extras[0].label, "web");
	a->extras[0].port = 8081;
	h = json_pack("{s:i, s:[s], s:i, s:[{s:s}], s:[{s:s, s:s}], s:i}",
		      "deployment_count", 1, "deployment_names", "SECRETAPP",
		      "unit_count", 1, "units", "id", "UNITX", "oracles",
		      "local_url", "http://127.0.0.1:8082/LOCALORACLE",
		      "sample", "ORACLESAMPLE", "cpu_percent", 42);
	assert_non_null(h);
	a->health = h;
	assert_int_equal(dd_store_agent_check(a, NULL, 0), DD_OK);
}

static dd_store_agent recs[5];
enum { CP, ALICE_VM, BOB_VM, ACME_VM, NOBODY_VM };

static int setup(void **state)
{
	(void)state;
	dd_json_setup();
	agent(&recs[CP], DD_FLEET_CP_ID, 0, NULL, 0);
	recs[CP].ingress = DD_INGRESS_NONE;
	recs[CP].ingress_url[0] = '\0';
	agent(&recs[ALICE_VM], "dd-prod-agent-a", DD_PRINCIPAL_USER, "alice",
	      1001);
	agent(&recs[BOB_VM], "dd-prod-agent-b", DD_PRINCIPAL_USER, "bob", 1002);
	agent(&recs[ACME_VM], "dd-prod-agent-c", DD_PRINCIPAL_ORG, "acme", 77);
	agent(&recs[NOBODY_VM], "dd-prod-agent-d", 0, NULL, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < 5; i++)
		dd_store_agent_clear(&recs[i]);
	return 0;
}

/* Expected: 1 = full view, 0 = not. Rows: callers; columns: records. */
static const int expect_full[NCALLERS][5] = {
	/*             cp alice bob acme nobody */
	[ANON] =        {0, 0, 0, 0, 0},
	[ALICE] =       {0, 1, 0, 0, 0},
	[BOB] =         {0, 0, 1, 0, 0},
	[ACME_MEMBER] = {0, 0, 0, 1, 0},
	[ADMIN] =       {1, 1, 1, 1, 1},
	[OWNER] =       {1, 1, 1, 1, 1},
	[AGENT] =       {0, 0, 0, 0, 0},
};

static void test_visibility_matrix(void **state)
{
	dd_caller who;

	(void)state;
	for (int c = 0; c < NCALLERS; c++) {
		caller(c, &who);
		for (int r = 0; r < 5; r++) {
			bool full = dd_fleet_sees_full(&who, &recs[r]);

			if (full != (expect_full[c][r] != 0))
				fail_msg("caller %d record %s: full=%d", c,
					 recs[r].agent_id, full);
			assert_int_equal(dd_fleet_api_view(&who, &recs[r]),
					 full ? DD_FLEET_FULL : DD_FLEET_PUBLIC);
			assert_int_equal(dd_fleet_page_view(&who, &recs[r]),
					 full ? DD_FLEET_FULL : DD_FLEET_HIDDEN);
		}
	}
	/* NULL is anonymous. */
	assert_false(dd_fleet_sees_full(NULL, &recs[ALICE_VM]));
	assert_int_equal(dd_fleet_page_view(NULL, &recs[CP]), DD_FLEET_HIDDEN);
}

static void test_ids_not_logins(void **state)
{
	dd_caller who;

	(void)state;
	/* A session named alice with another id (a re-registered login). */
	caller(ALICE, &who);
	who.session.user_id = 9999;
	assert_false(dd_fleet_sees_full(&who, &recs[ALICE_VM]));
	/* The org must be one of the session's orgs, case-insensitively. */
	caller(ACME_MEMBER, &who);
	snprintf(who.session.orgs[0], sizeof who.session.orgs[0], "acme2");
	assert_false(dd_fleet_sees_full(&who, &recs[ACME_VM]));
	/* A session with the admin flag counts as admin whatever its kind. */
	caller(BOB, &who);
	who.session.is_fleet_admin = 1;
	assert_true(dd_fleet_sees_full(&who, &recs[NOBODY_VM]));
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(s);
	return s;
}

static void test_public_view_is_public(void **state)
{
	static const char *const keys[] = {
		"agent_id", "hostname", "vm_name", "attestation_type", "status",
		"last_seen", "agent_mode", "integrity_state",
		"deployment_count", "unit_count", "oracle_count",
	};
	static const char *const leaks[] = {
		"CLAIMVALUE", "secret_claim", "alice", "1001", "SECRETAPP",
		"UNITX", "LOCALORACLE", "ORACLESAMPLE", "10.1.2.3",
		"INTERNALERROR", "0000007", "web", "8081", "owner", "ita",
		"extras", "noise", "ingress", "cpu_percent",
	};
	json_t *o = NULL;
	char *s;

	(void)state;
	assert_int_equal(dd_fleet_agent_json(&recs[ALICE_VM], DD_FLEET_PUBLIC,
					     0, &o), DD_OK);
	assert_int_equal(json_object_size(o), sizeof keys / sizeof keys[0]);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		assert_non_null(json_object_get(o, keys[i]));
	s = dump(o);
	for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++) {
		if (strstr(s, leaks[i]) != NULL)
			fail_msg("public view leaks %s: %s", leaks[i], s);
	}
	assert_string_equal(json_string_value(json_object_get(o, "last_seen")),
			    "2026-06-01T12:00:00.123Z");
	assert_int_equal(json_integer_value(json_object_get(o, "oracle_count")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(o,
					    "deployment_count")), 1);
	dd_free(s);
	json_decref(o);
}

static void test_full_view(void **state)
{
	json_t *o = NULL;
	char *s;

	(void)state;
	assert_int_equal(dd_fleet_agent_json(&recs[ALICE_VM], DD_FLEET_FULL,
					     DD_FLEET_TIME_OFFSET, &o), DD_OK);
	s = dump(o);
	assert_non_null(strstr(s, "CLAIMVALUE"));
	assert_non_null(strstr(s, "SECRETAPP"));
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(o, "owner"), "name")), "alice");
	assert_string_equal(json_string_value(json_object_get(o, "last_seen")),
			    "2026-06-01T12:00:00.123+00:00");
	/* Spec 6.1's record is all there (what the export carries). */
	assert_non_null(json_object_get(o, "ita"));
	assert_non_null(json_object_get(o, "extras"));
	assert_non_null(json_object_get(o, "tunnel_id"));
	assert_int_equal(json_integer_value(json_object_get(o, "oracle_count")),
			 1);
	dd_free(s);
	json_decref(o);
	/* Without the flag: the record's own Z form. */
	assert_int_equal(dd_fleet_agent_json(&recs[ALICE_VM], DD_FLEET_FULL, 0,
					     &o), DD_OK);
	assert_string_equal(json_string_value(json_object_get(o, "last_seen")),
			    "2026-06-01T12:00:00.123Z");
	json_decref(o);
	/* Hidden has no JSON. */
	o = (json_t *)1;
	assert_int_equal(dd_fleet_agent_json(&recs[ALICE_VM], DD_FLEET_HIDDEN,
					     0, &o), DD_ERR_INVALID);
	assert_null(o);
}

/* /api/agents as a list, for three callers. */
static void test_api_list(void **state)
{
	dd_caller who;
	json_t *arr, *e;
	size_t i, full;

	(void)state;
	for (int c = 0; c < NCALLERS; c++) {
		caller(c, &who);
		arr = json_array();
		for (int r = 0; r < 5; r++)
			assert_int_equal(dd_fleet_api_append(arr, &who, &recs[r],
							     DD_FLEET_TIME_OFFSET),
					 DD_OK);
		/* Every record is listed; only the visible ones in full. */
		assert_int_equal(json_array_size(arr), 5);
		full = 0;
		json_array_foreach(arr, i, e) {
			full += json_object_get(e, "ita") != NULL;
			assert_non_null(strstr(json_string_value(json_object_get(
				e, "last_seen")), "+00:00"));
		}
		assert_int_equal(full, (size_t)(expect_full[c][0] +
			expect_full[c][1] + expect_full[c][2] +
			expect_full[c][3] + expect_full[c][4]));
		json_decref(arr);
	}
}

static void test_time_offset(void **state)
{
	char t[40];

	(void)state;
	dd_fleet_time_offset(0, t, sizeof t);
	assert_string_equal(t, "1970-01-01T00:00:00.000+00:00");
	dd_fleet_time_offset(INT64_C(1780315200123), t, sizeof t);
	assert_string_equal(t, "2026-06-01T12:00:00.123+00:00");
}

/* Every allocation may fail: an error, never a partial object. */
static void test_alloc_failure(void **state)
{
	dd_caller who;
	json_t *o, *arr;
	dd_err_t rc;

	(void)state;
	caller(ADMIN, &who);
	for (unsigned long nth = 1; nth < 400; nth++) {
		for (int v = DD_FLEET_PUBLIC; v <= DD_FLEET_FULL; v++) {
			o = NULL;
			dd_alloc_fail_at(nth);
			rc = dd_fleet_agent_json(&recs[ACME_VM], (dd_fleet_view)v,
						 DD_FLEET_TIME_OFFSET, &o);
			dd_alloc_fail_at(0);
			if (rc == DD_OK)
				assert_non_null(o);
			else
				assert_int_equal(rc, DD_ERR_NOMEM);
			json_decref(o);
		}
		arr = json_array();
		assert_non_null(arr);
		dd_alloc_fail_at(nth);
		rc = dd_fleet_api_append(arr, &who, &recs[BOB_VM], 0);
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM);
		assert_int_equal(json_array_size(arr), rc == DD_OK ? 1 : 0);
		json_decref(arr);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_visibility_matrix),
		cmocka_unit_test(test_ids_not_logins),
		cmocka_unit_test(test_public_view_is_public),
		cmocka_unit_test(test_full_view),
		cmocka_unit_test(test_api_list),
		cmocka_unit_test(test_time_offset),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
