#include "cloudflare/cf_ops.h"

#include <stdio.h>
#include <string.h>

#include "cloudflare/cf_api.h"
#include "core/alloc.h"
#include "core/strutil.h"

/* One composite operation in flight; each step is its own callback. */
struct op {
	dd_cf *cf;
	dd_cf_op_cb cb;
	void *ud;
	char host[DD_CF_HOST_MAX + 1];   /* CNAME ops; apply: the primary */
	char name[DD_CF_LABEL_MAX + 1];  /* tunnel ops */
	char tunnel_id[DD_CF_ID_MAX + 1];
	char target[DD_CF_ID_MAX + 32];  /* "{id}.cfargotunnel.com" */
	int filter;                      /* delete cname: only into target */
	int fresh;                       /* apply: no old ingress to read */
	json_t *items;                   /* a list being walked */
	size_t idx;
	json_t *rules, *hostnames;       /* apply and create */
	json_t *upserts, *removals;      /* apply: hosts, in order */
	json_t *result;
	dd_err_t first_err;
	char first_msg[DD_CF_MSG_MAX];
};

static void op_free(struct op *op)
{
	if (op == NULL)
		return;
	json_decref(op->items);
	json_decref(op->rules);
	json_decref(op->hostnames);
	json_decref(op->upserts);
	json_decref(op->removals);
	json_decref(op->result);
	dd_free(op);
}

static struct op *op_new(dd_cf *cf, dd_cf_op_cb cb, void *ud)
{
	struct op *op = dd_calloc(1, sizeof *op);

	if (op == NULL)
		return NULL;
	op->cf = cf;
	op->cb = cb;
	op->ud = ud;
	op->result = json_object();
	if (op->result == NULL) {
		dd_free(op);
		return NULL;
	}
	return op;
}

static void finish(struct op *op, dd_err_t err, const char *msg)
{
	op->cb(err, err ? msg : "", op->result, op->ud);
	op_free(op);
}

/* Remembers the first failure of a best-effort walk. */
static void note(struct op *op, dd_err_t err, const char *msg)
{
	if (op->first_err)
		return;
	op->first_err = err;
	snprintf(op->first_msg, sizeof op->first_msg, "%s", msg);
}

static void fail_start(struct op *op, dd_err_t rc, const char *what)
{
	char msg[160];

	snprintf(msg, sizeof msg, "%s: %s", what, dd_strerror(rc));
	finish(op, rc, msg);
}

static const char *item_str(const json_t *item, const char *key)
{
	return json_string_value(json_object_get(item, key));
}

/* --- upsert CNAME ------------------------------------------------------- */

static void up_written(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	const char *id = item_str(rep->result, "id");

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	if (id != NULL && json_object_get(op->result, "record_id") == NULL)
		(void)json_object_set_new(op->result, "record_id",
					  json_string(id));
	finish(op, DD_OK, "");
}

static void up_found(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	const json_t *rec = NULL, *item;
	const char *action = "created";
	size_t i;
	dd_err_t rc;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	json_array_foreach(rep->result, i, item) {
		if (dd_cf_id_ok(item_str(item, "id"))) {
			rec = item;
			break;
		}
	}
	if (rec == NULL) {
		rc = dd_cf_dns_create(op->cf, op->host, op->tunnel_id,
				      up_written, op);
	} else {
		const char *content = item_str(rec, "content");
		action = "updated";
		(void)json_object_set_new(op->result, "record_id",
					  json_string(item_str(rec, "id")));
		if (content != NULL && strcmp(content, op->target) == 0 &&
		    json_is_true(json_object_get(rec, "proxied"))) {
			(void)json_object_set_new(op->result, "action",
						  json_string("unchanged"));
			finish(op, DD_OK, "");
			return;
		}
		rc = dd_cf_dns_update(op->cf, item_str(rec, "id"), op->host,
				      op->tunnel_id, up_written, op);
	}
	(void)json_object_set_new(op->result, "action", json_string(action));
	if (rc)
		fail_start(op, rc, "writing CNAME");
}

static dd_err_t set_tunnel(struct op *op, const char *tunnel_id)
{
	if (!dd_cf_id_ok(tunnel_id))
		return DD_ERR_INVALID;
	snprintf(op->tunnel_id, sizeof op->tunnel_id, "%s", tunnel_id);
	return dd_cf_tunnel_target(tunnel_id, op->target, sizeof op->target);
}

static dd_err_t set_host(struct op *op, const char *host)
{
	if (dd_cf_check_hostname(host, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	snprintf(op->host, sizeof op->host, "%s", host);
	return DD_OK;
}

dd_err_t dd_cf_op_upsert_cname(dd_cf *cf, const char *host,
			       const char *tunnel_id, dd_cf_op_cb cb, void *ud)
{
	struct op *op = op_new(cf, cb, ud);
	dd_err_t rc;

	if (op == NULL)
		return DD_ERR_NOMEM;
	rc = set_host(op, host);
	if (rc == DD_OK)
		rc = set_tunnel(op, tunnel_id);
	if (rc == DD_OK)
		rc = dd_cf_dns_find(cf, op->host, up_found, op);
	if (rc)
		op_free(op);
	return rc;
}

/* --- delete CNAME ------------------------------------------------------- */

static void dc_next(struct op *op);

static void dc_deleted(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	const char *id = item_str(json_array_get(op->items, op->idx), "id");

	if (rep->err)
		note(op, rep->err, rep->message);
	else
		(void)json_array_append_new(json_object_get(op->result,
							    "deleted"),
					    json_string(id));
	op->idx++;
	dc_next(op);
}

static void dc_next(struct op *op)
{
	for (; op->idx < json_array_size(op->items); op->idx++) {
		const json_t *rec = json_array_get(op->items, op->idx);
		const char *id = item_str(rec, "id");
		const char *content = item_str(rec, "content");
		const char *name = item_str(rec, "name");
		dd_err_t rc;

		if (!dd_cf_id_ok(id) || name == NULL ||
		    strcmp(name, op->host) != 0)
			continue;
		if (op->filter &&
		    (content == NULL || strcmp(content, op->target) != 0))
			continue;
		rc = dd_cf_dns_delete(op->cf, id, dc_deleted, op);
		if (rc == DD_OK)
			return;
		note(op, rc, "deleting CNAME: could not start");
	}
	finish(op, op->first_err, op->first_msg);
}

static void dc_found(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	/* Kept past the callback: a reference, not a copy. */
	op->items = json_incref((json_t *)(uintptr_t)rep->result);
	dc_next(op);
}

dd_err_t dd_cf_op_delete_cname(dd_cf *cf, const char *host,
			       const char *tunnel_id, dd_cf_op_cb cb,
			       void *ud)
{
	struct op *op = op_new(cf, cb, ud);
	dd_err_t rc;

	if (op == NULL)
		return DD_ERR_NOMEM;
	if (json_object_set_new(op->result, "deleted", json_array())) {
		op_free(op);
		return DD_ERR_NOMEM;
	}
	rc = set_host(op, host);
	if (rc == DD_OK && tunnel_id != NULL) {
		op->filter = 1;
		rc = set_tunnel(op, tunnel_id);
	}
	if (rc == DD_OK)
		rc = dd_cf_dns_find(cf, op->host, dc_found, op);
	if (rc)
		op_free(op);
	return rc;
}

/* --- delete tunnel by name ---------------------------------------------- */

static void dt_next(struct op *op);

static const char *dt_id(const struct op *op)
{
	return item_str(json_array_get(op->items, op->idx), "id");
}

static void dt_deleted(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	json_t *list;

	if (rep->err) {
		note(op, rep->err, rep->message);
		list = json_object_get(op->result, "failed");
		(void)json_array_append_new(list, json_pack("{s:s, s:s}", "id",
			dt_id(op), "error", rep->message));
	} else {
		list = json_object_get(op->result, "deleted");
		(void)json_array_append_new(list, json_string(dt_id(op)));
	}
	op->idx++;
	dt_next(op);
}

/* Connections are best-effort: the delete tells whether it worked. */
static void dt_dropped(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	dd_err_t rc;

	(void)rep;
	rc = dd_cf_tunnel_delete(op->cf, dt_id(op), dt_deleted, op);
	if (rc) {
		note(op, rc, "deleting tunnel: could not start");
		op->idx++;
		dt_next(op);
	}
}

static void dt_next(struct op *op)
{
	for (; op->idx < json_array_size(op->items); op->idx++) {
		const json_t *t = json_array_get(op->items, op->idx);
		const char *name = item_str(t, "name");
		dd_err_t rc;

		/* Only the exact name, whatever the server's filter did. */
		if (!dd_cf_id_ok(item_str(t, "id")) || name == NULL ||
		    strcmp(name, op->name) != 0)
			continue;
		rc = dd_cf_tunnel_drop_connections(op->cf, dt_id(op),
						   dt_dropped, op);
		if (rc == DD_OK)
			return;
		note(op, rc, "dropping connections: could not start");
	}
	finish(op, op->first_err, op->first_msg);
}

static void dt_found(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	op->items = json_incref((json_t *)(uintptr_t)rep->result);
	dt_next(op);
}

dd_err_t dd_cf_op_delete_tunnel(dd_cf *cf, const char *name, dd_cf_op_cb cb,
				void *ud)
{
	struct op *op;
	dd_err_t rc;

	if (dd_cf_check_label(name, NULL, 0) != DD_OK)
		return DD_ERR_INVALID;
	op = op_new(cf, cb, ud);
	if (op == NULL)
		return DD_ERR_NOMEM;
	if (json_object_set_new(op->result, "deleted", json_array()) ||
	    json_object_set_new(op->result, "failed", json_array())) {
		op_free(op);
		return DD_ERR_NOMEM;
	}
	snprintf(op->name, sizeof op->name, "%s", name);
	rc = dd_cf_tunnels_find(cf, op->name, dt_found, op);
	if (rc)
		op_free(op);
	return rc;
}

/* --- apply ingress ------------------------------------------------------ */

static void ap_next_upsert(struct op *op);
static void ap_next_remove(struct op *op);

static void ap_removed(dd_err_t err, const char *msg, const json_t *res,
		       void *ud)
{
	struct op *op = ud;
	const char *host = json_string_value(json_array_get(op->removals,
							    op->idx));

	/* A CNAME left behind only reaches the 404 catch-all: not fatal. */
	if (err)
		note(op, err, msg);
	else if (json_array_size(json_object_get(res, "deleted")) > 0)
		(void)json_array_append_new(json_object_get(op->result,
			"removed_hostnames"), json_string(host));
	op->idx++;
	ap_next_remove(op);
}

static void ap_next_remove(struct op *op)
{
	for (; op->idx < json_array_size(op->removals); op->idx++) {
		const char *host = json_string_value(
			json_array_get(op->removals, op->idx));
		dd_err_t rc = dd_cf_op_delete_cname(op->cf, host, op->tunnel_id,
						    ap_removed, op);
		if (rc == DD_OK)
			return;
		note(op, rc, "removing a dropped CNAME: could not start");
	}
	finish(op, DD_OK, "");
}

static int in_list(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

/* Hostnames of the old ingress that the new one no longer routes. */
static dd_err_t ap_plan_removals(struct op *op, const json_t *config)
{
	const json_t *ingress = json_object_get(json_object_get(config,
		"config"), "ingress");
	size_t i;
	json_t *r;

	json_array_foreach(ingress, i, r) {
		const char *h = item_str(r, "hostname");

		if (h == NULL || dd_cf_check_hostname(h, NULL, 0) != DD_OK ||
		    in_list(op->upserts, h) || in_list(op->removals, h))
			continue;
		if (json_array_append_new(op->removals, json_string(h)))
			return DD_ERR_NOMEM;
	}
	return DD_OK;
}

static void ap_upserted(dd_err_t err, const char *msg, const json_t *res,
			void *ud)
{
	struct op *op = ud;

	(void)res;
	if (err) {
		finish(op, err, msg);
		return;
	}
	op->idx++;
	ap_next_upsert(op);
}

static void ap_next_upsert(struct op *op)
{
	const char *host;
	dd_err_t rc;

	if (op->idx >= json_array_size(op->upserts)) {
		op->idx = 0;
		ap_next_remove(op);
		return;
	}
	host = json_string_value(json_array_get(op->upserts, op->idx));
	rc = dd_cf_op_upsert_cname(op->cf, host, op->tunnel_id, ap_upserted,
				   op);
	if (rc)
		fail_start(op, rc, "upserting CNAME");
}

static void ap_put_done(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	op->idx = 0;
	ap_next_upsert(op);
}

static void ap_got_config(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	dd_err_t rc;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	rc = ap_plan_removals(op, rep->result);
	if (rc == DD_OK)
		rc = dd_cf_tunnel_put_config(op->cf, op->tunnel_id, op->rules,
					     ap_put_done, op);
	if (rc)
		fail_start(op, rc, "putting tunnel configuration");
}

/* Everything an apply needs, around rules already built and checked. */
static dd_err_t ap_setup(struct op *op, const char *tunnel_id,
			 const char *primary, json_t *rules, json_t *hostnames)
{
	dd_err_t rc = set_tunnel(op, tunnel_id);

	if (rc)
		return rc;
	op->rules = json_incref(rules);
	op->hostnames = json_incref(hostnames);
	snprintf(op->host, sizeof op->host, "%s", primary);
	op->upserts = json_pack("[s]", primary);
	op->removals = json_array();
	if (op->upserts == NULL || op->removals == NULL ||
	    json_array_extend(op->upserts, hostnames) ||
	    json_object_set(op->result, "extra_hostnames", hostnames) ||
	    json_object_set_new(op->result, "removed_hostnames", json_array()))
		return DD_ERR_NOMEM;
	return DD_OK;
}

static dd_err_t ap_prepare(struct op *op, const char *tunnel_id,
			   const dd_cf_ingress_spec *s, char *why,
			   size_t why_len)
{
	json_t *rules = NULL, *hosts = NULL;
	dd_err_t rc;

	if (!dd_cf_id_ok(tunnel_id)) {
		snprintf(why, why_len, "malformed tunnel id");
		return DD_ERR_INVALID;
	}
	rc = dd_cf_ingress_build(s, &rules, &hosts, why, why_len);
	if (rc == DD_OK)
		rc = ap_setup(op, tunnel_id, s->primary, rules, hosts);
	json_decref(rules);
	json_decref(hosts);
	return rc;
}

static dd_err_t ap_begin(struct op *op)
{
	if (op->fresh)
		return dd_cf_tunnel_put_config(op->cf, op->tunnel_id,
					       op->rules, ap_put_done, op);
	return dd_cf_tunnel_get_config(op->cf, op->tunnel_id, ap_got_config,
				       op);
}

dd_err_t dd_cf_op_apply_ingress(dd_cf *cf, const char *tunnel_id,
				const dd_cf_ingress_spec *s, dd_cf_op_cb cb,
				void *ud, char *why, size_t why_len)
{
	struct op *op = op_new(cf, cb, ud);
	dd_err_t rc;

	if (op == NULL)
		return DD_ERR_NOMEM;
	rc = ap_prepare(op, tunnel_id, s, why, why_len);
	if (rc == DD_OK)
		rc = ap_begin(op);
	if (rc)
		op_free(op);
	return rc;
}

/* --- create or reuse a tunnel ------------------------------------------- */

static void cr_applied(dd_err_t err, const char *msg, const json_t *res,
		       void *ud)
{
	struct op *op = ud;

	if (err) {
		finish(op, err, msg);
		return;
	}
	(void)json_object_set(op->result, "extra_hostnames",
			      json_object_get(res, "extra_hostnames"));
	(void)json_object_set(op->result, "removed_hostnames",
			      json_object_get(res, "removed_hostnames"));
	finish(op, DD_OK, "");
}

/* With id and token known: route the tunnel (a fresh one has no past). */
static void cr_apply(struct op *op)
{
	struct op *child = op_new(op->cf, cr_applied, op);
	dd_err_t rc = child != NULL ? DD_OK : DD_ERR_NOMEM;

	if (rc == DD_OK)
		rc = ap_setup(child, op->tunnel_id, op->host, op->rules,
			      op->hostnames);
	if (rc == DD_OK) {
		child->fresh = !json_is_true(json_object_get(op->result,
							     "reused"));
		rc = ap_begin(child);
	}
	if (rc) {
		op_free(child);
		fail_start(op, rc, "applying ingress");
	}
}

static dd_err_t cr_set_token(struct op *op, const json_t *token)
{
	if (!json_is_string(token) || json_string_length(token) == 0 ||
	    json_string_length(token) > 4096)
		return DD_ERR_UPSTREAM;
	return json_object_set(op->result, "token", (json_t *)(uintptr_t)token)
		       ? DD_ERR_NOMEM : DD_OK;
}

static void cr_token(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	if (cr_set_token(op, rep->result)) {
		finish(op, DD_ERR_UPSTREAM, "CF tunnel token reply has no token");
		return;
	}
	cr_apply(op);
}

static void cr_created(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	const char *id = item_str(rep->result, "id");
	dd_err_t rc;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	if (!dd_cf_id_ok(id) || set_tunnel(op, id) != DD_OK) {
		finish(op, DD_ERR_UPSTREAM, "CF create tunnel reply has no "
		       "usable id");
		return;
	}
	(void)json_object_set_new(op->result, "id", json_string(id));
	if (cr_set_token(op, json_object_get(rep->result, "token")) == DD_OK) {
		cr_apply(op);
		return;
	}
	rc = dd_cf_tunnel_token(op->cf, op->tunnel_id, cr_token, op);
	if (rc)
		fail_start(op, rc, "fetching tunnel token");
}

static void cr_found(const dd_cf_reply *rep, void *ud)
{
	struct op *op = ud;
	const json_t *t;
	size_t i;
	dd_err_t rc;

	if (rep->err) {
		finish(op, rep->err, rep->message);
		return;
	}
	json_array_foreach(rep->result, i, t) {
		const char *name = item_str(t, "name");
		const char *id = item_str(t, "id");

		if (name == NULL || strcmp(name, op->name) != 0 ||
		    !dd_cf_id_ok(id))
			continue;
		(void)set_tunnel(op, id);
		(void)json_object_set_new(op->result, "id", json_string(id));
		(void)json_object_set_new(op->result, "reused", json_true());
		rc = dd_cf_tunnel_token(op->cf, op->tunnel_id, cr_token, op);
		if (rc)
			fail_start(op, rc, "fetching tunnel token");
		return;
	}
	rc = dd_cf_tunnel_create(op->cf, op->name, cr_created, op);
	if (rc)
		fail_start(op, rc, "creating tunnel");
}

dd_err_t dd_cf_op_create_tunnel(dd_cf *cf, const char *name,
				const dd_cf_ingress_spec *s, dd_cf_op_cb cb,
				void *ud, char *why, size_t why_len)
{
	struct op *op;
	dd_err_t rc;

	rc = dd_cf_check_label(name, why, why_len);
	if (rc)
		return rc;
	op = op_new(cf, cb, ud);
	if (op == NULL)
		return DD_ERR_NOMEM;
	snprintf(op->name, sizeof op->name, "%s", name);
	rc = dd_cf_ingress_build(s, &op->rules, &op->hostnames, why, why_len);
	if (rc)
		goto out;
	snprintf(op->host, sizeof op->host, "%s", s->primary);
	if (json_object_set_new(op->result, "name", json_string(name)) ||
	    json_object_set_new(op->result, "hostname",
				json_string(s->primary)) ||
	    json_object_set_new(op->result, "reused", json_false())) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	rc = dd_cf_tunnels_find(cf, op->name, cr_found, op);
out:
	if (rc)
		op_free(op);
	return rc;
}
