/*
 * store_json.c: a fleet record as JSON (spec 6.1), both ways, its
 * RFC 3339 times, and the parsing of a predecessor's export. Everything
 * read here goes through dd_store_agent_check before the store keeps it.
 */
#include "cp/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/strutil.h"

/* --- time ------------------------------------------------------------- */

static bool leap(uint64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static uint64_t leaps_before(uint64_t y)
{
	return (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
}

/* Days from 1970-01-01 to y-m-d (y >= 1970, checked date). */
static int64_t civil_days(uint64_t y, uint64_t m, uint64_t d)
{
	static const uint16_t before[12] = {0, 31, 59, 90, 120, 151, 181,
					    212, 243, 273, 304, 334};
	uint64_t days = 365 * (y - 1970) + leaps_before(y) - leaps_before(1970);

	days += before[m - 1] + (m > 2 && leap(y)) + d - 1;
	return (int64_t)days;
}

static dd_err_t digits(dd_cursor *c, size_t n, uint64_t *out)
{
	const uint8_t *p;

	if (dd_cur_get_span(c, n, &p))
		return DD_ERR_INVALID;
	return dd_parse_u64n((const char *)p, n, 0, UINT64_MAX, out);
}

static dd_err_t lit(dd_cursor *c, char want)
{
	uint8_t b;

	if (dd_cur_get_u8(c, &b) || b != (uint8_t)want)
		return DD_ERR_INVALID;
	return DD_OK;
}

/* Returns the next byte without consuming it, or 0 at the end. */
static uint8_t peek(const dd_cursor *c)
{
	return dd_cur_remaining(c) > 0 ? *dd_cur_ptr(c) : 0;
}

dd_err_t dd_store_time_parse(const char *s, int64_t *out_ms)
{
	static const uint8_t mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30,
					  31, 30, 31};
	uint64_t y, mo, d, h, mi, sec, oh = 0, om = 0, f, ms = 0;
	int64_t t, off = 0;
	size_t nfrac = 0;
	dd_cursor c;
	uint8_t sign;

	dd_cur_init(&c, s, strnlen(s, 64));
	if (digits(&c, 4, &y) || lit(&c, '-') || digits(&c, 2, &mo) ||
	    lit(&c, '-') || digits(&c, 2, &d) || lit(&c, 'T') ||
	    digits(&c, 2, &h) || lit(&c, ':') || digits(&c, 2, &mi) ||
	    lit(&c, ':') || digits(&c, 2, &sec))
		return DD_ERR_INVALID;
	if (peek(&c) == '.') {
		dd_cur_skip(&c, 1);
		while (peek(&c) >= '0' && peek(&c) <= '9' && nfrac < 9) {
			if (digits(&c, 1, &f))
				return DD_ERR_INVALID;
			if (nfrac < 3)
				ms = ms * 10 + f;
			nfrac++;
		}
		if (nfrac == 0)
			return DD_ERR_INVALID;
		for (size_t i = nfrac; i < 3; i++)
			ms *= 10;
	}
	if (dd_cur_get_u8(&c, &sign))
		return DD_ERR_INVALID;
	if (sign == '+' || sign == '-') {
		if (digits(&c, 2, &oh) || lit(&c, ':') || digits(&c, 2, &om) ||
		    oh > 23 || om > 59)
			return DD_ERR_INVALID;
		off = (int64_t)(oh * 3600 + om * 60) * (sign == '+' ? 1 : -1);
	} else if (sign != 'Z') {
		return DD_ERR_INVALID;
	}
	if (dd_cur_remaining(&c) != 0 || y < 1970 || y > 9999 || mo < 1 ||
	    mo > 12 || d < 1 ||
	    d > (uint64_t)mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 ||
	    mi > 59 || sec > 59)
		return DD_ERR_INVALID;
	t = civil_days(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + sec);
	t = (t - off) * 1000 + (int64_t)ms;
	if (t < 0 || t > DD_STORE_TIME_MAX)
		return DD_ERR_INVALID;
	*out_ms = t;
	return DD_OK;
}

void dd_store_time_format(int64_t ms, char *out, size_t out_len)
{
	struct tm tm;
	time_t t;

	if (ms < 0)
		ms = 0;
	if (ms > DD_STORE_TIME_MAX)
		ms = DD_STORE_TIME_MAX;
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* --- record -> JSON ---------------------------------------------------- */

static json_t *text_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *time_json(int64_t ms)
{
	char t[32];

	dd_store_time_format(ms, t, sizeof t);
	return json_string(t);
}

static json_t *ita_json(const dd_store_ita *ita)
{
	json_t *o = json_object();
	int bad = o == NULL;

	if (bad)
		return NULL;
	bad |= json_object_set_new(o, "exp", json_integer(ita->exp));
	bad |= json_object_set_new(o, "iat", json_integer(ita->iat));
	bad |= json_object_set_new(o, "tcb_status",
				   text_or_null(ita->tcb_status));
	bad |= json_object_set_new(o, "attester_type",
				   text_or_null(ita->attester_type));
	bad |= json_object_set_new(o, "mrtd", text_or_null(ita->mrtd));
	bad |= json_object_set_new(o, "mrsigner", text_or_null(ita->mrsigner));
	bad |= json_object_set_new(o, "report_data",
				   text_or_null(ita->report_data));
	bad |= json_object_set_new(o, "extra", ita->claims != NULL ?
				   json_incref(ita->claims) : json_object());
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *ingress_json(const dd_store_agent *a)
{
	switch (a->ingress) {
	case DD_INGRESS_DIRECT:
		return json_pack("{s:s, s:s}", "kind", "direct", "url",
				 a->ingress_url);
	case DD_INGRESS_TUNNEL:
		return json_pack("{s:s, s:O}", "kind", "tunnel", "details",
				 a->ingress_detail != NULL ? a->ingress_detail
							   : json_null());
	case DD_INGRESS_NONE:
		break;
	}
	return json_pack("{s:s}", "kind", "none");
}

static json_t *extras_json(const dd_store_agent *a)
{
	json_t *arr = json_array();
	int bad = arr == NULL;

	for (size_t i = 0; !bad && i < a->n_extras; i++)
		bad |= json_array_append_new(arr, json_pack("[s, i]",
					     a->extras[i].label,
					     (int)a->extras[i].port));
	if (bad) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

dd_err_t dd_store_agent_to_json(const dd_store_agent *a, json_t **out)
{
	const struct store_hmember *m;
	json_t *o = json_object(), *v;
	int bad = o == NULL;

	*out = NULL;
	if (bad)
		return DD_ERR_NOMEM;
	bad |= json_object_set_new(o, "agent_id", json_string(a->agent_id));
	bad |= json_object_set_new(o, "hostname", json_string(a->hostname));
	bad |= json_object_set_new(o, "vm_name", json_string(a->vm_name));
	bad |= json_object_set_new(o, "attestation_type",
				   json_string(a->attestation_type));
	bad |= json_object_set_new(o, "status", json_string(
				   dd_agent_status_name(a->status)));
	bad |= json_object_set_new(o, "last_seen", time_json(a->last_seen_ms));
	bad |= json_object_set_new(o, "agent_mode", json_string(
				   a->read_only ? "read_only" : "read_write"));
	bad |= json_object_set_new(o, "integrity_state", json_string(
				   a->clean ? "clean" : "controlled"));
	bad |= json_object_set_new(o, "owner", !a->has_owner ? json_null() :
		json_pack("{s:s, s:I, s:s}", "name", a->owner.name,
			  "id", (json_int_t)a->owner.id, "kind",
			  dd_principal_kind_name(a->owner.kind)));
	for (size_t i = 0; i < dd_store_n_health_members; i++) {
		m = &dd_store_health_members[i];
		v = json_object_get(a->health, m->key);
		if (v != NULL)
			json_incref(v);
		else
			v = m->kind == H_COUNT ? json_integer(0) : json_array();
		bad |= json_object_set_new(o, m->key, v);
	}
	bad |= json_object_set_new(o, "ita", ita_json(&a->ita));
	bad |= json_object_set_new(o, "tunnel_id", json_string(a->tunnel_id));
	bad |= json_object_set_new(o, "extras", extras_json(a));
	bad |= json_object_set_new(o, "env", json_string(a->env));
	bad |= json_object_set_new(o, "noise_pubkey",
				   text_or_null(a->noise_pubkey));
	bad |= json_object_set_new(o, "ingress", ingress_json(a));
	bad |= json_object_set_new(o, "registered_at",
				   time_json(a->registered_at_ms));
	bad |= json_object_set_new(o, "failures", json_integer(a->failures));
	bad |= json_object_set_new(o, "last_failure_at",
				   a->last_failure_ms != 0
					   ? time_json(a->last_failure_ms)
					   : json_null());
	bad |= json_object_set_new(o, "last_error",
				   text_or_null(a->last_error));
	if (bad) {
		json_decref(o);
		return DD_ERR_NOMEM;
	}
	*out = o;
	return DD_OK;
}

/* --- JSON -> record ---------------------------------------------------- */

static const json_t *member(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_null(v) ? NULL : v;
}

static dd_err_t missing(const char *key, char *why, size_t why_len)
{
	snprintf(why, why_len, "%s is missing", key);
	return DD_ERR_INVALID;
}

/* A string member into dst[size]; an absent optional one leaves dst. */
static dd_err_t get_str(const json_t *o, const char *key, bool required,
			char *dst, size_t size, char *why, size_t why_len)
{
	const json_t *v = member(o, key);
	size_t len;

	if (v == NULL)
		return required ? missing(key, why, why_len) : DD_OK;
	if (!json_is_string(v)) {
		snprintf(why, why_len, "%s is not a string", key);
		return DD_ERR_INVALID;
	}
	len = json_string_length(v);
	if (len >= size) {
		snprintf(why, why_len, "%s is longer than %zu bytes", key,
			 size - 1);
		return DD_ERR_TOO_LARGE;
	}
	memcpy(dst, json_string_value(v), len);
	dst[len] = '\0';
	if (strlen(dst) != len) {
		snprintf(why, why_len, "%s holds a NUL", key);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

static dd_err_t get_time(const json_t *o, const char *key, bool required,
			 int64_t *ms, char *why, size_t why_len)
{
	char t[64] = "";
	dd_err_t rc;

	rc = get_str(o, key, required, t, sizeof t, why, why_len);
	if (rc || t[0] == '\0')
		return rc;
	if (dd_store_time_parse(t, ms) != DD_OK) {
		snprintf(why, why_len, "%s is not an RFC 3339 time", key);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

static dd_err_t get_int(const json_t *o, const char *key, int64_t min,
			int64_t max, int64_t *out, char *why, size_t why_len)
{
	const json_t *v = member(o, key);

	if (v == NULL)
		return DD_OK;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		snprintf(why, why_len, "%s is not an integer in range", key);
		return DD_ERR_INVALID;
	}
	*out = (int64_t)json_integer_value(v);
	return DD_OK;
}

/* A required string that is one of two words: *first says which. */
static dd_err_t get_pick(const json_t *o, const char *key, const char *one,
			 const char *two, bool *first, char *why,
			 size_t why_len)
{
	char w[16];
	dd_err_t rc;

	rc = get_str(o, key, true, w, sizeof w, why, why_len);
	if (rc)
		return rc;
	if (strcmp(w, one) != 0 && strcmp(w, two) != 0) {
		snprintf(why, why_len, "%s is neither %s nor %s", key, one,
			 two);
		return DD_ERR_INVALID;
	}
	*first = strcmp(w, one) == 0;
	return DD_OK;
}

static dd_err_t get_owner(const json_t *rec, dd_store_agent *a, char *why,
			  size_t why_len)
{
	const json_t *o = member(rec, "owner");
	const char *name = NULL, *kind = NULL;
	dd_principal_kind k;
	uint64_t id = 0;

	if (o == NULL)
		return DD_OK;
	if (!json_is_object(o) || dd_json_get_str(o, "name", &name) ||
	    dd_json_get_str(o, "kind", &kind) ||
	    dd_json_get_u64(o, "id", 1, (uint64_t)DD_STORE_COUNT_MAX, &id) ||
	    dd_principal_kind_parse(kind, &k)) {
		snprintf(why, why_len, "owner is not {name, id, kind}");
		return DD_ERR_INVALID;
	}
	if (dd_principal_make(k, name, id, &a->owner, why, why_len) != DD_OK)
		return DD_ERR_INVALID;
	a->has_owner = true;
	return DD_OK;
}

static dd_err_t get_ita(const json_t *rec, dd_store_ita *ita, char *why,
			size_t why_len)
{
	const json_t *o = member(rec, "ita"), *extra;
	dd_err_t rc;

	if (!json_is_object(o)) {
		snprintf(why, why_len, "ita is missing or not an object");
		return DD_ERR_INVALID;
	}
	rc = get_int(o, "exp", INT64_MIN, INT64_MAX, &ita->exp, why, why_len);
	if (rc == DD_OK)
		rc = get_int(o, "iat", INT64_MIN, INT64_MAX, &ita->iat, why,
			     why_len);
	if (rc == DD_OK)
		rc = get_str(o, "tcb_status", false, ita->tcb_status,
			     sizeof ita->tcb_status, why, why_len);
	if (rc == DD_OK)
		rc = get_str(o, "attester_type", false, ita->attester_type,
			     sizeof ita->attester_type, why, why_len);
	if (rc == DD_OK)
		rc = get_str(o, "mrtd", false, ita->mrtd, sizeof ita->mrtd,
			     why, why_len);
	if (rc == DD_OK)
		rc = get_str(o, "mrsigner", false, ita->mrsigner,
			     sizeof ita->mrsigner, why, why_len);
	if (rc == DD_OK)
		rc = get_str(o, "report_data", false, ita->report_data,
			     sizeof ita->report_data, why, why_len);
	if (rc)
		return rc;
	extra = member(o, "extra");
	if (extra != NULL && !json_is_object(extra)) {
		snprintf(why, why_len, "ita.extra is not an object");
		return DD_ERR_INVALID;
	}
	ita->claims = extra != NULL ? json_incref((json_t *)(uintptr_t)extra)
				    : NULL;
	return DD_OK;
}

/* The snapshot members, gathered from the top level of the record. */
static dd_err_t get_health(const json_t *rec, dd_store_agent *a, char *why,
			   size_t why_len)
{
	const struct store_hmember *m;
	const json_t *v;

	a->health = json_object();
	if (a->health == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < dd_store_n_health_members; i++) {
		m = &dd_store_health_members[i];
		v = member(rec, m->key);
		if (v == NULL) {
			if (m->required)
				return missing(m->key, why, why_len);
			continue;
		}
		if (json_object_set(a->health, m->key,
				    (json_t *)(uintptr_t)v) != 0)
			return DD_ERR_NOMEM;
	}
	return DD_OK;
}

static dd_err_t get_extras(const json_t *rec, dd_store_agent *a, char *why,
			   size_t why_len)
{
	const json_t *arr = member(rec, "extras"), *e, *label, *port;

	if (arr == NULL)
		return DD_OK;
	if (!json_is_array(arr) || json_array_size(arr) > DD_STORE_MAX_EXTRAS) {
		snprintf(why, why_len, "extras is not an array of at most %d",
			 DD_STORE_MAX_EXTRAS);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		e = json_array_get(arr, i);
		label = json_array_get(e, 0);
		port = json_array_get(e, 1);
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !json_is_string(label) ||
		    json_string_length(label) > DD_STORE_LABEL_MAX ||
		    !json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535) {
			snprintf(why, why_len, "extras[%zu] is not [label, "
				 "port]", i);
			return DD_ERR_INVALID;
		}
		memcpy(a->extras[i].label, json_string_value(label),
		       json_string_length(label));
		if (strlen(a->extras[i].label) != json_string_length(label)) {
			snprintf(why, why_len, "extras[%zu] holds a NUL", i);
			return DD_ERR_INVALID;
		}
		a->extras[i].port = (uint16_t)json_integer_value(port);
		a->n_extras = i + 1;
	}
	return DD_OK;
}

static dd_err_t get_ingress(const json_t *rec, dd_store_agent *a,
			    char *why, size_t why_len)
{
	const json_t *o = member(rec, "ingress"), *d;
	char kind[16];
	dd_err_t rc;

	if (o == NULL) {
		a->ingress = a->tunnel_id[0] != '\0' ? DD_INGRESS_TUNNEL
						     : DD_INGRESS_NONE;
		return DD_OK;
	}
	if (!json_is_object(o)) {
		snprintf(why, why_len, "ingress is not an object");
		return DD_ERR_INVALID;
	}
	rc = get_str(o, "kind", true, kind, sizeof kind, why, why_len);
	if (rc)
		return rc;
	if (strcmp(kind, "none") == 0) {
		a->ingress = DD_INGRESS_NONE;
	} else if (strcmp(kind, "direct") == 0) {
		a->ingress = DD_INGRESS_DIRECT;
		return get_str(o, "url", true, a->ingress_url,
			       sizeof a->ingress_url, why, why_len);
	} else if (strcmp(kind, "tunnel") == 0) {
		a->ingress = DD_INGRESS_TUNNEL;
		d = member(o, "details");
		if (d != NULL && !json_is_object(d)) {
			snprintf(why, why_len, "ingress details is not an "
				 "object");
			return DD_ERR_INVALID;
		}
		a->ingress_detail = d != NULL ? json_incref(
			(json_t *)(uintptr_t)d) : NULL;
	} else {
		snprintf(why, why_len, "ingress kind is unknown");
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

dd_err_t dd_store_agent_from_json(const json_t *rec, const char *default_env,
				  dd_store_agent *out, char *why,
				  size_t why_len)
{
	dd_store_agent *a = out;
	int64_t failures = 0;
	char status[16];
	dd_err_t rc;

	dd_store_agent_init(a);
	if (!json_is_object(rec)) {
		snprintf(why, why_len, "a record is not an object");
		return DD_ERR_INVALID;
	}
	rc = get_str(rec, "agent_id", true, a->agent_id, sizeof a->agent_id,
		     why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "hostname", true, a->hostname,
			     sizeof a->hostname, why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "vm_name", true, a->vm_name,
			     sizeof a->vm_name, why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "attestation_type", true,
			     a->attestation_type, sizeof a->attestation_type,
			     why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "status", true, status, sizeof status, why,
			     why_len);
	if (rc == DD_OK && dd_agent_status_parse(status, &a->status) != DD_OK) {
		snprintf(why, why_len, "status is unknown");
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK)
		rc = get_time(rec, "last_seen", true, &a->last_seen_ms, why,
			      why_len);
	if (rc == DD_OK)
		rc = get_pick(rec, "agent_mode", "read_only", "read_write",
			      &a->read_only, why, why_len);
	if (rc == DD_OK)
		rc = get_pick(rec, "integrity_state", "clean", "controlled",
			      &a->clean, why, why_len);
	if (rc == DD_OK)
		rc = get_owner(rec, a, why, why_len);
	if (rc == DD_OK)
		rc = get_health(rec, a, why, why_len);
	if (rc == DD_OK)
		rc = get_ita(rec, &a->ita, why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "tunnel_id", false, a->tunnel_id,
			     sizeof a->tunnel_id, why, why_len);
	if (rc == DD_OK)
		rc = get_extras(rec, a, why, why_len);
	if (rc == DD_OK)
		rc = get_ingress(rec, a, why, why_len);
	if (rc)
		return rc;
	/* Our own members: absent in a reference CP's export. */
	if (default_env != NULL && strlen(default_env) < sizeof a->env)
		memcpy(a->env, default_env, strlen(default_env) + 1);
	a->registered_at_ms = a->last_seen_ms;
	rc = get_str(rec, "env", false, a->env, sizeof a->env, why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "noise_pubkey", false, a->noise_pubkey,
			     sizeof a->noise_pubkey, why, why_len);
	if (rc == DD_OK)
		rc = get_time(rec, "registered_at", false, &a->registered_at_ms,
			      why, why_len);
	if (rc == DD_OK)
		rc = get_int(rec, "failures", 0, UINT32_MAX, &failures, why,
			     why_len);
	if (rc == DD_OK)
		rc = get_time(rec, "last_failure_at", false,
			      &a->last_failure_ms, why, why_len);
	if (rc == DD_OK)
		rc = get_str(rec, "last_error", false, a->last_error,
			     sizeof a->last_error, why, why_len);
	if (rc)
		return rc;
	a->failures = (uint32_t)failures;
	return dd_store_agent_check(a, why, why_len);
}

/* --- an export --------------------------------------------------------- */

void dd_store_rows_free(struct store_row *rows, size_t n)
{
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		dd_store_row_free(&rows[i]);
	dd_free(rows);
}

static int by_id(const void *x, const void *y)
{
	const struct store_row *const *a = x, *const *b = y;

	return strcmp((*a)->a.agent_id, (*b)->a.agent_id);
}

/*
 * Two records with one agent_id: INVALID naming the later one. Sorted,
 * not compared pairwise: an export of 10,000 records would otherwise
 * cost 50 million comparisons.
 */
static dd_err_t check_unique(struct store_row *rows, size_t n, char *why,
			     size_t why_len)
{
	struct store_row **v;
	dd_err_t rc = DD_OK;

	if (n < 2)
		return DD_OK;
	v = dd_calloc(n, sizeof *v);
	if (v == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = &rows[i];
	qsort(v, n, sizeof *v, by_id);
	for (size_t i = 1; rc == DD_OK && i < n; i++) {
		if (strcmp(v[i - 1]->a.agent_id, v[i]->a.agent_id) != 0)
			continue;
		snprintf(why, why_len, "record %zu: agent_id appears twice",
			 (size_t)(v[i] > v[i - 1] ? v[i] - rows
						  : v[i - 1] - rows));
		rc = DD_ERR_INVALID;
	}
	dd_free(v);
	return rc;
}

dd_err_t dd_store_import_parse(const void *data, size_t len, const char *env,
			       size_t max_agents, struct store_row **out,
			       size_t *n_out, char *why, size_t why_len)
{
	struct store_row *rows = NULL;
	json_t *doc = NULL, *agents;
	dd_store_agent a;
	char sub[160];
	size_t n = 0;
	dd_err_t rc;

	*out = NULL;
	*n_out = 0;
	dd_store_agent_init(&a);
	rc = dd_json_parse(data, len, DD_STORE_EXPORT_MAX, &doc, why, why_len);
	if (rc)
		goto out;
	agents = json_object_get(doc, "agents");
	if (!json_is_array(agents) ||
	    json_array_size(agents) > max_agents) {
		snprintf(why, why_len, "the export is not {\"agents\": [...]}"
			 " with at most %zu records", max_agents);
		rc = DD_ERR_INVALID;
		goto out;
	}
	rows = dd_calloc(json_array_size(agents), sizeof *rows);
	if (rows == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	for (; n < json_array_size(agents); n++) {
		rc = dd_store_agent_from_json(json_array_get(agents, n), env,
					      &a, sub, sizeof sub);
		if (rc == DD_OK)
			rc = dd_store_row_make(&a, &rows[n], sub, sizeof sub);
		dd_store_agent_clear(&a);
		if (rc) {
			snprintf(why, why_len, "record %zu: %s", n,
				 rc == DD_ERR_NOMEM ? "out of memory" : sub);
			goto out;
		}
	}
	rc = check_unique(rows, n, why, why_len);
	if (rc)
		goto out;
	*out = rows;
	*n_out = n;
	rows = NULL;
out:
	dd_store_rows_free(rows, n);
	json_decref(doc);
	return rc;
}
