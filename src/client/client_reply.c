#include "client/client_reply.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"

#define HOSTNAME_MAX 253u

int dd_client_exit_for(dd_err_t err, long status)
{
	if (err != DD_OK)
		return DD_CLIENT_EXIT_TRANSPORT;
	if (status == 401 || status == 403)
		return DD_CLIENT_EXIT_AUTH;
	return DD_CLIENT_EXIT_FAILED;
}

/*
 * Length of the printable UTF-8 character at s, or 0 when it must be
 * replaced: controls, DEL, C1 controls (U+0080-U+009F, which include
 * the 8-bit CSI), overlong forms, surrogates and anything past U+10FFFF.
 */
static size_t printable_at(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;

	if (s[0] < 0x80)
		return (s[0] >= 0x20 && s[0] != 0x7f) || s[0] == '\t' ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

dd_err_t dd_client_sanitize(const char *s, size_t n, dd_buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	dd_err_t rc;

	/* One byte out per byte in, so the room is known up front. */
	rc = dd_buf_reserve(out, n);
	while (rc == DD_OK && i < n) {
		k = printable_at(p + i, n - i);
		if (k == 0) {
			rc = dd_buf_append_byte(out, '?');
			i++;
		} else {
			rc = dd_buf_append(out, p + i, k);
			i += k;
		}
	}
	return rc;
}

/* Sanitized, truncated copy into a fixed array; never fails. */
static void clean_into(char *dst, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, k;

	while (i < n) {
		k = printable_at(p + i, n - i);
		if (o + (k == 0 ? 1 : k) >= cap)
			break;
		if (k == 0) {
			dst[o++] = '?';
			i++;
		} else {
			memcpy(dst + o, p + i, k);
			o += k;
			i += k;
		}
	}
	dst[o] = '\0';
}

/* Copies a short machine word only if every byte is in allowed. */
static void word_into(char *dst, size_t cap, const json_t *v,
		      const char *allowed)
{
	const char *s = json_string_value(v);
	size_t n;

	dst[0] = '\0';
	if (s == NULL)
		return;
	n = strlen(s);
	if (n == 0 || n >= cap || n != json_string_length(v) ||
	    strspn(s, allowed) != n)
		return;
	memcpy(dst, s, n + 1);
}

#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
		 "0123456789-_.:"
#define STATUS_CHARS "abcdefghijklmnopqrstuvwxyz_-"

void dd_client_error_text(long status, const char *body, size_t len,
			  char *out, size_t out_len)
{
	json_t *v = NULL;
	const char *code = NULL, *msg = NULL;
	char c[64], m[400];
	int n;

	n = snprintf(out, out_len, "HTTP %ld", status);
	if (n < 0 || (size_t)n >= out_len)
		return;
	if (len == 0)
		return;
	if (dd_json_parse(body, len, len, &v, NULL, 0) == DD_OK &&
	    dd_json_get_str(v, "code", &code) == DD_OK &&
	    dd_json_get_str(v, "message", &msg) == DD_OK) {
		clean_into(c, sizeof c, code, strlen(code));
		clean_into(m, sizeof m, msg, strlen(msg));
		snprintf(out + n, out_len - (size_t)n, " %s: %s", c, m);
	} else {
		clean_into(m, 200, body, len);
		snprintf(out + n, out_len - (size_t)n, ": %s", m);
	}
	json_decref(v);
}

dd_err_t dd_client_deploy_reply_parse(const char *body, size_t len,
				      dd_client_deploy_reply *out)
{
	json_t *v = NULL;
	const char *err = NULL;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	rc = dd_json_parse(body, len, len, &v, NULL, 0);
	if (rc == DD_ERR_NOMEM)
		return rc;
	if (rc || !json_is_object(v) ||
	    !json_is_boolean(json_object_get(v, "ok"))) {
		json_decref(v);
		return DD_ERR_INVALID;
	}
	out->ok = json_is_true(json_object_get(v, "ok"));
	word_into(out->id, sizeof out->id, json_object_get(v, "id"), ID_CHARS);
	word_into(out->status, sizeof out->status,
		  json_object_get(v, "status"), STATUS_CHARS);
	if (!out->ok) {
		if (dd_json_get_str(v, "error", &err) == DD_OK &&
		    err[0] != '\0')
			clean_into(out->error, sizeof out->error, err,
				   strlen(err));
		else
			snprintf(out->error, sizeof out->error,
				 "the runtime gave no reason");
	}
	json_decref(v);
	return DD_OK;
}

static const struct {
	const char *word;
	dd_client_wl_state state;
} statuses[] = {
	{"deploying", DD_WL_DEPLOYING}, {"running", DD_WL_RUNNING},
	{"completed", DD_WL_COMPLETED}, {"failed", DD_WL_FAILED},
	{"stopped", DD_WL_STOPPED},
};

/* Preference among several entries of one app: the most final first. */
static int rank(dd_client_wl_state s)
{
	static const int r[] = {
		[DD_WL_ABSENT] = 0, [DD_WL_OTHER] = 1, [DD_WL_STOPPED] = 2,
		[DD_WL_FAILED] = 3, [DD_WL_DEPLOYING] = 4, [DD_WL_LISTED] = 5,
		[DD_WL_COMPLETED] = 6, [DD_WL_RUNNING] = 7,
	};
	return r[s];
}

static void entry_state(const json_t *e, dd_client_wl *w)
{
	const char *msg = NULL;
	size_t i;

	memset(w, 0, sizeof *w);
	word_into(w->status, sizeof w->status, json_object_get(e, "status"),
		  STATUS_CHARS);
	w->state = DD_WL_OTHER;
	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		if (strcmp(w->status, statuses[i].word) == 0)
			w->state = statuses[i].state;
	if (dd_json_get_str(e, "error_message", &msg) == DD_OK)
		clean_into(w->error, sizeof w->error, msg, strlen(msg));
}

dd_err_t dd_client_health_find(const json_t *health, const char *app,
			       const char *id, dd_client_wl *out)
{
	const json_t *deps = json_object_get(health, "workloads");
	const char *name, *eid;
	dd_client_wl w;
	json_t *e;
	size_t i;

	memset(out, 0, sizeof *out);
	/* The runtime's own entries say more than the names do. */
	if (!json_is_array(deps))
		deps = json_object_get(health, "deployments");
	if (!json_is_object(health) || !json_is_array(deps))
		return DD_ERR_INVALID;
	json_array_foreach(deps, i, e) {
		if (json_is_string(e)) {
			if (strcmp(json_string_value(e), app) != 0)
				continue;
			memset(&w, 0, sizeof w);
			w.state = DD_WL_LISTED;
		} else if (json_is_object(e)) {
			if (dd_json_get_str(e, "app_name", &name) != DD_OK ||
			    strcmp(name, app) != 0)
				continue;
			/* Another id is the deployment ours replaces. */
			if (id != NULL && id[0] != '\0' &&
			    dd_json_get_str(e, "id", &eid) == DD_OK &&
			    strcmp(eid, id) != 0)
				continue;
			entry_state(e, &w);
		} else {
			continue;
		}
		if (rank(w.state) > rank(out->state))
			*out = w;
	}
	return DD_OK;
}

int dd_client_wl_verdict(dd_client_wl_state s)
{
	switch (s) {
	case DD_WL_LISTED:
	case DD_WL_RUNNING:
	case DD_WL_COMPLETED:
		return 1;
	case DD_WL_FAILED:
	case DD_WL_STOPPED:
		return -1;
	default:
		return 0;
	}
}

const char *dd_client_wl_name(dd_client_wl_state s)
{
	static const char *const names[] = {
		[DD_WL_ABSENT] = "not listed yet", [DD_WL_LISTED] = "listed",
		[DD_WL_DEPLOYING] = "deploying", [DD_WL_RUNNING] = "running",
		[DD_WL_COMPLETED] = "completed", [DD_WL_FAILED] = "failed",
		[DD_WL_STOPPED] = "stopped",
		[DD_WL_OTHER] = "in an unknown state",
	};

	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

dd_err_t dd_client_logs_lines(const json_t *reply, const json_t **lines,
			      char *why, size_t why_len)
{
	const json_t *ok = json_object_get(reply, "ok");
	const json_t *arr = json_object_get(reply, "lines");
	const char *err = NULL;
	json_t *l;
	size_t i;

	*lines = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (json_is_false(ok)) {
		if (dd_json_get_str(reply, "error", &err) == DD_OK &&
		    why != NULL && why_len > 0)
			clean_into(why, why_len, err, strlen(err));
		return DD_ERR_UPSTREAM;
	}
	if (!json_is_array(arr))
		return DD_ERR_INVALID;
	json_array_foreach(arr, i, l)
		if (!json_is_string(l))
			return DD_ERR_INVALID;
	*lines = arr;
	return DD_OK;
}

static int hostname_ok(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (n == 0 || n > HOSTNAME_MAX || h[0] == '.' || h[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

dd_err_t dd_client_pick_agent(const json_t *agents, const char *vm,
			      char *host, size_t host_len, dd_buf *seen)
{
	const char *name, *status, *hostname, *last, *best_last = NULL;
	const char *best = NULL, *s, *l, *h;
	json_t *e;
	size_t i;

	if (!json_is_array(agents))
		return DD_ERR_INVALID;
	json_array_foreach(agents, i, e) {
		if (dd_json_get_str(e, "vm_name", &name) != DD_OK ||
		    strcmp(name, vm) != 0)
			continue;
		status = hostname = last = NULL;
		(void)dd_json_get_str(e, "status", &status);
		(void)dd_json_get_str(e, "hostname", &hostname);
		(void)dd_json_get_str(e, "last_seen", &last);
		if (seen != NULL) {
			s = status != NULL ? status : "?";
			l = last != NULL ? last : "?";
			h = hostname != NULL ? hostname : "?";
			/* A diagnostic list: a full buffer only shortens it. */
			(void)dd_buf_append_str(seen, "  ");
			(void)dd_client_sanitize(h, strlen(h), seen);
			(void)dd_buf_append_str(seen, " status=");
			(void)dd_client_sanitize(s, strlen(s), seen);
			(void)dd_buf_append_str(seen, " last_seen=");
			(void)dd_client_sanitize(l, strlen(l), seen);
			(void)dd_buf_append_str(seen, "\n");
		}
		if (status == NULL || hostname == NULL ||
		    !hostname_ok(hostname))
			continue;
		if (strcmp(status, "healthy") != 0 &&
		    strcmp(status, "registering") != 0 &&
		    strcmp(status, "stale") != 0)
			continue;
		if (last == NULL)
			last = "";
		if (best == NULL || strcmp(last, best_last) > 0) {
			best = hostname;
			best_last = last;
		}
	}
	if (best == NULL)
		return DD_ERR_NOT_FOUND;
	if (strlen(best) >= host_len)
		return DD_ERR_TOO_LARGE;
	memcpy(host, best, strlen(best) + 1);
	return DD_OK;
}

dd_err_t dd_client_api_host(const char *hostname, char *out, size_t out_len)
{
	const char *dot, *mark;
	size_t label_len;
	int n;

	if (!hostname_ok(hostname))
		return DD_ERR_INVALID;
	dot = strchr(hostname, '.');
	if (dot == NULL)
		dot = hostname + strlen(hostname);
	label_len = (size_t)(dot - hostname);
	mark = strstr(hostname, "-agent-");
	if (mark != NULL && mark < dot)
		n = snprintf(out, out_len, "%.*s-api-%.*s%s",
			     (int)(mark - hostname), hostname,
			     (int)(dot - (mark + 7)), mark + 7, dot);
	else
		n = snprintf(out, out_len, "%.*s-agent-api%s", (int)label_len,
			     hostname, dot);
	if (n < 0 || (size_t)n >= out_len)
		return DD_ERR_TOO_LARGE;
	return DD_OK;
}
