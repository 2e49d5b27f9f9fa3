/*
 * store_record.c: what a fleet record may hold (the checks every write
 * and every read applies), the text helpers they use, and the record
 * in the form the SQL binds.
 */
#include "cp/store_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cursor.h"
#include "core/json.h"
#include "core/strutil.h"

/* Nesting allowed in stored JSON; deeper is hostile or a cycle. */
#define JSON_DEPTH 16
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

static const char *const status_names[DD_AGENT__COUNT] = {
	[DD_AGENT_REGISTERING] = "registering",
	[DD_AGENT_HEALTHY] = "healthy",
	[DD_AGENT_STALE] = "stale",
	[DD_AGENT_DEAD] = "dead",
};

const char *dd_agent_status_name(dd_agent_status s)
{
	if ((unsigned)s >= DD_AGENT__COUNT)
		return "unknown";
	return status_names[s];
}

dd_err_t dd_agent_status_parse(const char *s, dd_agent_status *out)
{
	for (unsigned i = 0; i < DD_AGENT__COUNT; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (dd_agent_status)i;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}

void dd_store_agent_init(dd_store_agent *a)
{
	memset(a, 0, sizeof *a);
	a->status = DD_AGENT_REGISTERING;
	a->ingress = DD_INGRESS_NONE;
}

void dd_store_agent_clear(dd_store_agent *a)
{
	json_decref(a->ita.claims);
	json_decref(a->ingress_detail);
	json_decref(a->health);
	dd_store_agent_init(a);
}

void dd_store_agents_free(dd_store_agent *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		dd_store_agent_clear(&v[i]);
	dd_free(v);
}

/* --- text ---------------------------------------------------------------- */

/*
 * One UTF-8 character; false if malformed, overlong or a surrogate, and
 * then the cursor has not moved.
 */
static bool utf8_next(dd_cursor *c, uint32_t *cp)
{
	dd_cursor t = *c;
	uint8_t b, cont;
	uint32_t v, min;
	int more;

	if (dd_cur_get_u8(&t, &b))
		return false;
	if (b < 0x80) {
		more = 0, v = b, min = 0;
	} else if ((b & 0xe0) == 0xc0) {
		more = 1, v = b & 0x1f, min = 0x80;
	} else if ((b & 0xf0) == 0xe0) {
		more = 2, v = b & 0x0f, min = 0x800;
	} else if ((b & 0xf8) == 0xf0) {
		more = 3, v = b & 0x07, min = 0x10000;
	} else {
		return false;
	}
	while (more-- > 0) {
		if (dd_cur_get_u8(&t, &cont) || (cont & 0xc0) != 0x80)
			return false;
		v = v << 6 | (cont & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return false;
	*cp = v;
	*c = t;
	return true;
}

static bool printable(uint32_t cp)
{
	return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0);
}

bool dd_store_text_ok(const char *s, size_t len)
{
	dd_cursor c;
	uint32_t cp;

	dd_cur_init(&c, s, len);
	while (dd_cur_remaining(&c) > 0) {
		if (!utf8_next(&c, &cp) || !printable(cp))
			return false;
	}
	return true;
}

void dd_store_text_clean(const char *s, char *out, size_t size)
{
	dd_cursor c;
	size_t n = 0, at, step;
	uint32_t cp;
	bool ok;

	dd_cur_init(&c, s, strlen(s));
	while (dd_cur_remaining(&c) > 0) {
		at = c.off;
		ok = utf8_next(&c, &cp) && printable(cp);
		if (!ok && c.off == at)
			dd_cur_skip(&c, 1);
		step = ok ? c.off - at : 1;
		if (n + step >= size)
			break;
		if (ok)
			memcpy(out + n, s + at, step);
		else
			out[n] = '?';
		n += step;
	}
	out[n] = '\0';
}

enum cset { CS_ID, CS_HOST, CS_LABEL, CS_HEX, CS_PRINT, CS_TEXT };

static bool in_set(enum cset set, unsigned char ch)
{
	bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		     (ch >= '0' && ch <= '9');

	switch (set) {
	case CS_ID:
		return alnum || ch == '.' || ch == '_' || ch == '-';
	case CS_HOST:
		return alnum || ch == '.' || ch == '_' || ch == '-' ||
		       ch == ':' || ch == '[' || ch == ']';
	case CS_LABEL:
		return alnum || ch == '-';
	case CS_HEX:
		return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
	case CS_PRINT:
		return ch > 0x20 && ch < 0x7f;
	case CS_TEXT:
		break;
	}
	return false;
}

static bool set_ok(enum cset set, const char *s, size_t len)
{
	if (set == CS_TEXT)
		return dd_store_text_ok(s, len);
	for (size_t i = 0; i < len; i++) {
		if (!in_set(set, (unsigned char)s[i]))
			return false;
	}
	return true;
}

bool dd_store_id_ok(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, DD_STORE_ID_MAX + 1);
	return len > 0 && len <= DD_STORE_ID_MAX && set_ok(CS_ID, s, len);
}

/* A fixed-size field: terminated, at least min bytes, from set. */
static dd_err_t check_str(const char *s, size_t size, size_t min,
			  enum cset set, const char *what, char *why,
			  size_t why_len)
{
	size_t len = strnlen(s, size);

	if (len == size) {
		snprintf(why, why_len, "%s is not terminated", what);
		return DD_ERR_INVALID;
	}
	if (len < min) {
		snprintf(why, why_len, "%s is empty", what);
		return DD_ERR_INVALID;
	}
	if (!set_ok(set, s, len)) {
		snprintf(why, why_len, "%s has a character it may not hold",
			 what);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

#define CHECK_STR(field, min, set, what) \
	check_str((field), sizeof(field), (min), (set), (what), why, why_len)

/* --- JSON members -------------------------------------------------- */

/* jansson's iterators take non-const pointers; they do not write. */
static json_t *unconst(const json_t *v)
{
	return (json_t *)(uintptr_t)v;
}

static bool utf8_ok(const char *s, size_t len)
{
	dd_cursor c;
	uint32_t cp;

	dd_cur_init(&c, s, len);
	while (dd_cur_remaining(&c) > 0) {
		if (!utf8_next(&c, &cp) || cp == 0)
			return false;
	}
	return true;
}

/*
 * Bounded depth (which also rules out cycles); every string and key is
 * UTF-8 without NULs, so it survives C strings and re-serialisation.
 */
static bool json_sane(const json_t *v, int depth)
{
	json_t *o = unconst(v);
	const char *key;
	size_t i, klen;
	json_t *m;

	if (depth > JSON_DEPTH)
		return false;
	if (json_is_string(v))
		return utf8_ok(json_string_value(v), json_string_length(v));
	if (json_is_array(v)) {
		json_array_foreach(o, i, m) {
			if (!json_sane(m, depth + 1))
				return false;
		}
		return true;
	}
	if (!json_is_object(v))
		return true;
	for (void *it = json_object_iter(o); it != NULL;
	     it = json_object_iter_next(o, it)) {
		key = json_object_iter_key(it);
		klen = strlen(key);
#if JANSSON_VERSION_HEX >= 0x020e00
		if (klen != json_object_iter_key_len(it))
			return false;
#endif
		if (!utf8_ok(key, klen) ||
		    !json_sane(json_object_iter_value(it), depth + 1))
			return false;
	}
	return true;
}

static dd_err_t too_large(const char *what, size_t max, char *why,
			  size_t why_len)
{
	snprintf(why, why_len, "%s is larger than %zu bytes", what, max);
	return DD_ERR_TOO_LARGE;
}

/*
 * An object, and (sizes) within max bytes as compact JSON. Measuring
 * costs a serialisation, so it is skipped where the size is bounded
 * anyway: by the capped dump that stores it, or by the parse cap of a
 * row read back.
 */
static dd_err_t check_json(const json_t *v, size_t max, bool sizes,
			   const char *what, char *why, size_t why_len)
{
	size_t n;

	if (!json_is_object(v) || !json_sane(v, 0)) {
		snprintf(why, why_len, "%s is not an object, is nested deeper "
			 "than %d or holds a NUL", what, JSON_DEPTH);
		return DD_ERR_INVALID;
	}
	if (!sizes)
		return DD_OK;
	n = json_dumpb(v, NULL, 0, DUMP_FLAGS);
	/* What json_sane accepts only fails to serialise for memory. */
	if (n == 0)
		return DD_ERR_NOMEM;
	return n > max ? too_large(what, max, why, why_len) : DD_OK;
}

/* --- the record ------------------------------------------------------ */

const struct store_hmember dd_store_health_members[] = {
	{"deployment_count", H_COUNT, 0, true},
	{"deployment_names", H_NAMES, 256, true},
	{"unit_count", H_COUNT, 0, true},
	{"units", H_OBJECTS, 256, true},
	{"cpu_percent", H_COUNT, 0, true},
	{"memory_used_mb", H_COUNT, 0, true},
	{"memory_total_mb", H_COUNT, 0, true},
	{"nets", H_NETS, 64, false},
	{"disks", H_DISKS, 64, false},
	{"oracles", H_OBJECTS, 64, false},
};
const size_t dd_store_n_health_members =
	sizeof dd_store_health_members / sizeof dd_store_health_members[0];

bool dd_store_count_ok(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= DD_STORE_COUNT_MAX;
}

static bool text_member(const json_t *o, const char *key, size_t max)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) && json_string_length(v) <= max;
}

static bool element_ok(enum store_hkind kind, const json_t *e)
{
	switch (kind) {
	case H_NAMES:
		return json_is_string(e) &&
		       json_string_length(e) <= DD_STORE_NAME_MAX;
	case H_OBJECTS:
		return json_is_object(e);
	case H_NETS:
		return json_is_object(e) && text_member(e, "iface", 64) &&
		       dd_store_count_ok(json_object_get(e, "rx_bytes")) &&
		       dd_store_count_ok(json_object_get(e, "tx_bytes"));
	case H_DISKS:
		return json_is_object(e) && text_member(e, "mount", 256) &&
		       text_member(e, "fstype", 64) &&
		       dd_store_count_ok(json_object_get(e, "used_bytes")) &&
		       dd_store_count_ok(json_object_get(e, "total_bytes"));
	case H_COUNT:
		break;
	}
	return false;
}

const struct store_hmember *dd_store_health_member(const char *key)
{
	for (size_t i = 0; i < dd_store_n_health_members; i++) {
		if (strcmp(dd_store_health_members[i].key, key) == 0)
			return &dd_store_health_members[i];
	}
	return NULL;
}

static dd_err_t check_health(const json_t *h, bool sizes, char *why,
			     size_t why_len)
{
	const struct store_hmember *hm;
	json_t *o = unconst(h), *v, *e;
	const char *key;
	size_t i;
	bool ok;

	if (!json_is_object(h)) {
		snprintf(why, why_len, "health is not an object");
		return DD_ERR_INVALID;
	}
	for (void *it = json_object_iter(o); it != NULL;
	     it = json_object_iter_next(o, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		hm = dd_store_health_member(key);
		if (hm == NULL) {
			snprintf(why, why_len, "health has no member %.40s",
				 key);
			return DD_ERR_INVALID;
		}
		if (hm->kind == H_COUNT) {
			ok = dd_store_count_ok(v);
		} else {
			ok = json_is_array(v) && json_array_size(v) <= hm->max;
			json_array_foreach(v, i, e) {
				if (ok && !element_ok(hm->kind, e))
					ok = false;
			}
		}
		if (!ok) {
			snprintf(why, why_len, "health.%s has the wrong shape"
				 " or too many entries", hm->key);
			return DD_ERR_INVALID;
		}
	}
	return check_json(h, DD_STORE_HEALTH_MAX, sizes, "health", why,
			  why_len);
}

static const char ingress_why[] = "ingress: none has no tunnel or url, "
	"direct needs an http(s) url, tunnel needs a tunnel_id";

/* Ingress details go with a tunnel only, within their cap. */
static dd_err_t check_detail(const dd_store_agent *a, bool sizes,
			     char *why, size_t why_len)
{
	if (a->ingress_detail == NULL)
		return DD_OK;
	if (a->ingress != DD_INGRESS_TUNNEL) {
		snprintf(why, why_len, "%s", ingress_why);
		return DD_ERR_INVALID;
	}
	return check_json(a->ingress_detail, DD_STORE_DETAIL_MAX, sizes,
			  "ingress details", why, why_len);
}

dd_err_t dd_store_extras_check(const dd_store_extra *v, size_t n, char *why,
			       size_t why_len)
{
	const dd_store_extra *e;
	dd_err_t rc;

	if (n > DD_STORE_MAX_EXTRAS) {
		snprintf(why, why_len, "more than %d extras",
			 DD_STORE_MAX_EXTRAS);
		return DD_ERR_TOO_LARGE;
	}
	for (size_t i = 0; i < n; i++) {
		e = &v[i];
		rc = CHECK_STR(e->label, 1, CS_LABEL, "extra label");
		if (rc)
			return rc;
		if (e->port == 0) {
			snprintf(why, why_len, "extra %s has port 0", e->label);
			return DD_ERR_INVALID;
		}
		for (size_t j = 0; j < i; j++) {
			if (dd_str_ieq(v[j].label, strlen(v[j].label),
				       e->label)) {
				snprintf(why, why_len, "extra label %s appears"
					 " twice", e->label);
				return DD_ERR_INVALID;
			}
		}
	}
	return DD_OK;
}

static bool time_ok(int64_t ms)
{
	return ms >= 0 && ms <= DD_STORE_TIME_MAX;
}

/*
 * The fields a record and a brief both hold, under the same names in
 * both (the arrays have the same sizes: static asserts below), so that
 * one check serves the writes, the full reads and the scan.
 */
struct head {
	const char *agent_id, *hostname, *vm_name, *attestation_type;
	const char *tunnel_id, *ingress_url;
	dd_agent_status status;
	bool has_owner;
	const dd_principal *owner;
	dd_ingress_kind ingress;
	int64_t last_seen_ms, registered_at_ms;
};

#define HEAD_OF(x) {(x)->agent_id, (x)->hostname, (x)->vm_name, \
	(x)->attestation_type, (x)->tunnel_id, (x)->ingress_url, (x)->status, \
	(x)->has_owner, &(x)->owner, (x)->ingress, (x)->last_seen_ms, \
	(x)->registered_at_ms}

#define SAME_SIZE(f) \
	_Static_assert(sizeof ((dd_store_agent *)0)->f == \
		       sizeof ((dd_store_brief *)0)->f, #f)
SAME_SIZE(agent_id);
SAME_SIZE(hostname);
SAME_SIZE(vm_name);
SAME_SIZE(attestation_type);
SAME_SIZE(tunnel_id);
SAME_SIZE(ingress_url);

#define HEAD_STR(field, size, min, set, what) \
	check_str(h->field, (size), (min), (set), (what), why, why_len)

static bool ingress_ok(const struct head *h)
{
	bool tunnel = h->tunnel_id[0] != '\0', url = h->ingress_url[0] != '\0';

	switch (h->ingress) {
	case DD_INGRESS_NONE:
		return !tunnel && !url;
	case DD_INGRESS_DIRECT:
		return !tunnel &&
		       (strncmp(h->ingress_url, "https://", 8) == 0 ||
			strncmp(h->ingress_url, "http://", 7) == 0);
	case DD_INGRESS_TUNNEL:
		return tunnel && !url;
	}
	return false;
}

static dd_err_t check_owner(const dd_principal *o, char *why,
			    size_t why_len)
{
	dd_principal owner;
	dd_err_t rc;

	if (strnlen(o->name, sizeof o->name) == sizeof o->name) {
		snprintf(why, why_len, "owner name is not terminated");
		return DD_ERR_INVALID;
	}
	rc = dd_principal_make(o->kind, o->name, o->id, &owner, why, why_len);
	if (rc)
		return rc;
	if (o->id > (uint64_t)DD_STORE_COUNT_MAX) {
		snprintf(why, why_len, "owner id is too large");
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

static dd_err_t check_head(const struct head *h, char *why, size_t why_len)
{
	dd_err_t rc;

	rc = HEAD_STR(agent_id, DD_STORE_ID_MAX + 1, 1, CS_ID, "agent_id");
	if (rc == DD_OK)
		rc = HEAD_STR(hostname, DD_STORE_HOST_MAX + 1, 1, CS_HOST,
			      "hostname");
	if (rc == DD_OK)
		rc = HEAD_STR(vm_name, DD_STORE_NAME_MAX + 1, 1, CS_TEXT,
			      "vm_name");
	if (rc == DD_OK)
		rc = HEAD_STR(attestation_type, DD_STORE_TYPE_MAX + 1, 1,
			      CS_ID, "attestation_type");
	if (rc == DD_OK)
		rc = HEAD_STR(tunnel_id, DD_STORE_TUNNEL_MAX + 1, 0, CS_ID,
			      "tunnel_id");
	if (rc == DD_OK)
		rc = HEAD_STR(ingress_url, DD_STORE_URL_MAX + 1, 0, CS_PRINT,
			      "ingress url");
	if (rc)
		return rc;
	if ((unsigned)h->status >= DD_AGENT__COUNT) {
		snprintf(why, why_len, "unknown status");
		return DD_ERR_INVALID;
	}
	if (!time_ok(h->last_seen_ms) || !time_ok(h->registered_at_ms)) {
		snprintf(why, why_len, "a time is outside 1970..9999");
		return DD_ERR_INVALID;
	}
	if (h->has_owner) {
		rc = check_owner(h->owner, why, why_len);
		if (rc)
			return rc;
	}
	if (!ingress_ok(h)) {
		snprintf(why, why_len, "%s", ingress_why);
		return DD_ERR_INVALID;
	}
	return DD_OK;
}

dd_err_t dd_store_brief_check(const dd_store_brief *b)
{
	struct head h = HEAD_OF(b);

	return check_head(&h, NULL, 0);
}

static dd_err_t check_agent(const dd_store_agent *a, bool sizes, char *why,
			    size_t why_len)
{
	const dd_store_ita *ita = &a->ita;
	struct head h = HEAD_OF(a);
	dd_err_t rc;

	if (why != NULL && why_len > 0)
		why[0] = '\0';
	rc = check_head(&h, why, why_len);
	if (rc == DD_OK)
		rc = CHECK_STR(a->env, 0, CS_ID, "env");
	if (rc == DD_OK)
		rc = CHECK_STR(ita->tcb_status, 0, CS_ID, "ita tcb_status");
	if (rc == DD_OK)
		rc = CHECK_STR(ita->attester_type, 0, CS_ID,
			       "ita attester_type");
	if (rc == DD_OK)
		rc = CHECK_STR(ita->mrtd, 0, CS_PRINT, "ita mrtd");
	if (rc == DD_OK)
		rc = CHECK_STR(ita->mrsigner, 0, CS_PRINT, "ita mrsigner");
	if (rc == DD_OK)
		rc = CHECK_STR(ita->report_data, 0, CS_PRINT,
			       "ita report_data");
	if (rc == DD_OK)
		rc = CHECK_STR(a->last_error, 0, CS_TEXT, "last_error");
	if (rc == DD_OK)
		rc = CHECK_STR(a->noise_pubkey, 0, CS_HEX, "noise_pubkey");
	if (rc)
		return rc;
	if (a->noise_pubkey[0] != '\0' && strlen(a->noise_pubkey) != 64) {
		snprintf(why, why_len, "noise_pubkey is not 64 hex digits");
		return DD_ERR_INVALID;
	}
	if (!time_ok(a->last_failure_ms)) {
		snprintf(why, why_len, "a time is outside 1970..9999");
		return DD_ERR_INVALID;
	}
	rc = check_detail(a, sizes, why, why_len);
	if (rc == DD_OK)
		rc = dd_store_extras_check(a->extras, a->n_extras, why,
					   why_len);
	if (rc == DD_OK && ita->claims != NULL)
		rc = check_json(ita->claims, DD_STORE_CLAIMS_MAX, sizes,
				"ita claims", why, why_len);
	if (rc == DD_OK && a->health != NULL)
		rc = check_health(a->health, sizes, why, why_len);
	return rc;
}

dd_err_t dd_store_agent_check(const dd_store_agent *a, char *why,
			      size_t why_len)
{
	return check_agent(a, true, why, why_len);
}

dd_err_t dd_store_agent_check_read(const dd_store_agent *a)
{
	return check_agent(a, false, NULL, 0);
}

struct sink {
	dd_buf *b;
	dd_err_t rc;
};

/*
 * Sticky: after one refused chunk every later one is refused too.
 * jansson 2.14 ignores the callback's answer for object keys, so
 * without this a failed key would go missing from output it then calls
 * complete.
 */
static int sink_cb(const char *chunk, size_t size, void *ud)
{
	struct sink *k = ud;

	if (k->rc == DD_OK)
		k->rc = dd_buf_append(k->b, chunk, size);
	return k->rc == DD_OK ? 0 : -1;
}

dd_err_t dd_store_json_dump(const json_t *v, dd_buf *b)
{
	struct sink k = {b, DD_OK};
	size_t before = b->len;

	if (json_dump_callback(v, sink_cb, &k, DUMP_FLAGS) != 0 &&
	    k.rc == DD_OK)
		k.rc = DD_ERR_NOMEM;
	if (k.rc) {
		b->len = before;
		if (b->data != NULL)
			b->data[before] = '\0';
	}
	return k.rc;
}

/* Compact JSON text of v ({} for NULL), at most max bytes. */
static dd_err_t dump(const json_t *v, size_t max, char **out)
{
	dd_buf b;
	size_t len;
	dd_err_t rc;

	if (v == NULL) {
		*out = dd_strdup("{}");
		return *out != NULL ? DD_OK : DD_ERR_NOMEM;
	}
	dd_buf_init(&b, max);
	rc = dd_store_json_dump(v, &b);
	if (rc == DD_OK)
		rc = dd_buf_steal(&b, out, &len);
	dd_buf_free(&b);
	return rc;
}

static int64_t health_int(const json_t *h, const char *key)
{
	const json_t *v = json_object_get(h, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

dd_err_t dd_store_row_make(const dd_store_agent *a, struct store_row *r,
			   char *why, size_t why_len)
{
	dd_err_t rc;

	memset(r, 0, sizeof *r);
	/* The capped dumps below measure the sizes. */
	rc = check_agent(a, false, why, why_len);
	if (rc)
		return rc;
	r->a = *a;
	r->a.ita.claims = NULL;
	r->a.ingress_detail = NULL;
	r->a.health = NULL;
	rc = dump(a->ita.claims, DD_STORE_CLAIMS_MAX, &r->claims);
	if (rc == DD_ERR_TOO_LARGE)
		too_large("ita claims", DD_STORE_CLAIMS_MAX, why, why_len);
	if (rc == DD_OK) {
		rc = dump(a->health, DD_STORE_HEALTH_MAX, &r->health);
		if (rc == DD_ERR_TOO_LARGE)
			too_large("health", DD_STORE_HEALTH_MAX, why, why_len);
	}
	if (rc == DD_OK && a->ingress_detail != NULL) {
		rc = dump(a->ingress_detail, DD_STORE_DETAIL_MAX, &r->detail);
		if (rc == DD_ERR_TOO_LARGE)
			too_large("ingress details", DD_STORE_DETAIL_MAX, why,
				  why_len);
	}
	if (rc) {
		dd_store_row_free(r);
		return rc;
	}
	r->deployments = health_int(a->health, "deployment_count");
	r->units = health_int(a->health, "unit_count");
	r->oracles = (int64_t)json_array_size(json_object_get(a->health,
							      "oracles"));
	return DD_OK;
}

void dd_store_row_free(struct store_row *r)
{
	dd_free(r->claims);
	dd_free(r->health);
	dd_free(r->detail);
	memset(r, 0, sizeof *r);
}
