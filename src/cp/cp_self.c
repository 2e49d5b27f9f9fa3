/*
 * cp_self.c: the control-plane pseudo-entry (cp_self.h).
 */
#include "cp/cp_self.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/metrics.h"
#include "attest/provider.h"
#include "core/alloc.h"
#include "core/log.h"
#include "cp/fleet_view.h"

struct dd_cp_self {
	const dd_config *cfg;
	dd_attestor *att;
	dd_store *store;
	dd_metrics *metrics;      /* NULL when it could not start */
	int64_t (*now_ms)(void);
	int64_t booted_ms;
	bool writing, again, closed, seeded;
	void (*seed_done)(void *ud);  /* once, after the seed's commit */
	void *seed_ud;
	uint64_t written;
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* The members of the metrics the store's snapshot keeps. */
static json_t *snapshot(const dd_cp_self *s, bool with_lists)
{
	static const char *const keep[] = {"cpu_percent", "memory_used_mb",
					   "memory_total_mb", "nets", "disks"};
	json_t *m = NULL, *h = json_pack("{s:i, s:[]}", "deployment_count", 0,
					 "deployment_names");

	if (h == NULL || s->metrics == NULL ||
	    dd_metrics_json(s->metrics, &m) != DD_OK)
		return h;
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
		json_t *v = json_object_get(m, keep[i]);

		if (v != NULL && (with_lists || !json_is_array(v)) &&
		    json_object_set(h, keep[i], v) != 0) {
			json_decref(h);
			h = NULL;
			break;
		}
	}
	json_decref(m);
	return h;
}

/* The entry as of now, claims borrowed from the attestor. */
static dd_err_t build(const dd_cp_self *s, const dd_ita_verdict *v,
		      bool with_lists, dd_store_agent *a)
{
	const dd_config *cfg = s->cfg;
	const char *kind = dd_quote_provider_kind(dd_attestor_provider(s->att));

	dd_store_agent_init(a);
	copy(a->agent_id, sizeof a->agent_id, DD_FLEET_CP_ID);
	copy(a->hostname, sizeof a->hostname,
	     cfg->hostname != NULL ? cfg->hostname : cfg->vm_name);
	snprintf(a->vm_name, sizeof a->vm_name, "dd-%s-cp", cfg->env);
	copy(a->env, sizeof a->env, cfg->env);
	copy(a->attestation_type, sizeof a->attestation_type,
	     strcmp(kind, "simulated") == 0 ? "simulated" : "tdx");
	a->status = DD_AGENT_HEALTHY;
	a->ingress = DD_INGRESS_NONE;
	a->ita.iat = v->claims.iat;
	a->ita.exp = v->claims.exp;
	copy(a->ita.tcb_status, sizeof a->ita.tcb_status, v->claims.tcb_status);
	copy(a->ita.attester_type, sizeof a->ita.attester_type,
	     v->claims.attester_type);
	copy(a->ita.mrtd, sizeof a->ita.mrtd, v->claims.mrtd);
	copy(a->ita.mrsigner, sizeof a->ita.mrsigner, v->claims.mrsignerseam);
	copy(a->ita.report_data, sizeof a->ita.report_data,
	     v->claims.report_data);
	a->ita.claims = json_incref(dd_attestor_claims_json(s->att));
	a->last_seen_ms = s->now_ms();
	a->registered_at_ms = s->booted_ms;
	a->health = snapshot(s, with_lists);
	return a->health != NULL ? DD_OK : DD_ERR_NOMEM;
}

static void on_written(const dd_store_result *res, void *ud)
{
	dd_cp_self *s = ud;

	s->writing = false;
	if (res->rc)
		dd_log_warn("control-plane entry: %s", res->why);
	else
		s->written++;
	/* After close the CP is stopping: nothing more to start. */
	if (s->seed_done != NULL && !s->closed) {
		void (*done)(void *) = s->seed_done;

		s->seed_done = NULL;
		done(s->seed_ud);
	}
	if (s->again && !s->closed) {
		s->again = false;
		dd_cp_self_refresh(s);
	}
}

void dd_cp_self_refresh(dd_cp_self *s)
{
	const dd_ita_verdict *v = dd_attestor_verdict(s->att);
	dd_store_agent a;
	char why[160];
	dd_err_t rc;

	if (s->closed || v == NULL)
		return;
	if (s->writing) {
		s->again = true;
		return;
	}
	rc = build(s, v, true, &a);
	if (rc == DD_OK && dd_store_agent_check(&a, why, sizeof why) != DD_OK) {
		/* An odd mount or interface name must not cost the entry. */
		dd_store_agent_clear(&a);
		rc = build(s, v, false, &a);
	}
	if (rc == DD_OK)
		rc = dd_store_agent_check(&a, why, sizeof why);
	/*
	 * The first write replaces whatever a predecessor's export brought
	 * under our key, its registered_at included (an upsert keeps that).
	 */
	if (rc == DD_OK && !s->seeded &&
	    dd_store_delete(s->store, DD_FLEET_CP_ID, NULL, NULL) == DD_OK)
		s->seeded = true;
	if (rc == DD_OK)
		rc = dd_store_upsert(s->store, &a, 0, "control plane",
				     on_written, s);
	if (rc == DD_OK)
		s->writing = true;
	else
		dd_log_warn("control-plane entry not written: %s",
			    rc == DD_ERR_INVALID ? why : dd_strerror(rc));
	dd_store_agent_clear(&a);
}

void dd_cp_self_seed(dd_cp_self *s, void (*done)(void *ud), void *ud)
{
	if (s->closed)
		return;
	s->seed_done = done;
	s->seed_ud = ud;
	dd_cp_self_refresh(s);
	/* Nothing queued (no token yet, a refused write): go on anyway. */
	if (!s->writing && s->seed_done != NULL) {
		s->seed_done = NULL;
		done(ud);
	}
}

uint64_t dd_cp_self_written(const dd_cp_self *s)
{
	return s->written;
}

dd_err_t dd_cp_self_new(const dd_config *cfg, uv_loop_t *loop,
			dd_attestor *att, dd_store *store,
			int64_t (*now_ms)(void), dd_cp_self **out)
{
	dd_cp_self *s = dd_calloc(1, sizeof *s);
	dd_err_t rc;

	*out = NULL;
	if (s == NULL)
		return DD_ERR_NOMEM;
	s->cfg = cfg;
	s->att = att;
	s->store = store;
	s->now_ms = now_ms != NULL ? now_ms : wall_ms;
	s->booted_ms = s->now_ms();
	rc = dd_metrics_new(loop, &(dd_metrics_opts){0}, &s->metrics);
	if (rc == DD_OK && dd_metrics_start(s->metrics) != DD_OK) {
		/* Figures are a nicety: the entry goes out without them. */
		dd_log_warn("control-plane entry: no local metrics");
	}
	if (rc) {
		dd_free(s);
		return rc;
	}
	*out = s;
	return DD_OK;
}

void dd_cp_self_close(dd_cp_self *s)
{
	if (s == NULL || s->closed)
		return;
	s->closed = true;
	dd_metrics_close(s->metrics);
}

void dd_cp_self_free(dd_cp_self *s)
{
	if (s == NULL)
		return;
	dd_metrics_free(s->metrics);
	dd_free(s);
}
