/*
 * cf_ingress.c: the pure half of the ingress operations (cf_ops.h): the
 * rules in Cloudflare's order and the "label:port" list parser.
 */
#include "cloudflare/cf_ops.h"

#include <stdio.h>
#include <string.h>

#include "core/strutil.h"

/* --- ingress rules ------------------------------------------------------ */

static dd_err_t rule(json_t *rules, const char *host, unsigned port)
{
	char svc[40];
	json_t *r;

	snprintf(svc, sizeof svc, "http://localhost:%u", port);
	r = host != NULL ? json_pack("{s:s, s:s}", "hostname", host, "service",
				     svc)
			 : json_pack("{s:s}", "service", "http_status:404");
	return json_array_append_new(rules, r) ? DD_ERR_NOMEM : DD_OK;
}

static int has_label(const dd_cf_ingress_spec *s, size_t upto,
		     const char *label)
{
	for (size_t i = 0; i < upto; i++)
		if (strcmp(s->extras[i].label, label) == 0)
			return 1;
	return 0;
}

static dd_err_t add_extra(json_t *rules, json_t *hosts, const char *primary,
			  const char *label, unsigned port, char *why,
			  size_t why_len)
{
	char h[DD_CF_HOST_MAX + 1];
	dd_err_t rc;

	if (port == 0) {
		snprintf(why, why_len, "extra '%.63s': port must be 1-65535",
			 label);
		return DD_ERR_INVALID;
	}
	rc = dd_cf_extra_hostname(primary, label, h, sizeof h, why, why_len);
	if (rc == DD_OK)
		rc = rule(rules, h, port);
	if (rc == DD_OK && json_array_append_new(hosts, json_string(h)))
		rc = DD_ERR_NOMEM;
	return rc;
}

dd_err_t dd_cf_ingress_build(const dd_cf_ingress_spec *s, json_t **rules,
			     json_t **hostnames, char *why, size_t why_len)
{
	json_t *r = json_array(), *h = json_array();
	dd_err_t rc = r && h ? DD_OK : DD_ERR_NOMEM;

	*rules = *hostnames = NULL;
	if (rc == DD_OK)
		rc = dd_cf_check_hostname(s->primary, why, why_len);
	if (rc == DD_OK && (s->n_extras > DD_CF_MAX_EXTRAS ||
			    s->primary_port == 0)) {
		snprintf(why, why_len, s->primary_port == 0
			 ? "primary port must be 1-65535"
			 : "more than %d extras", DD_CF_MAX_EXTRAS);
		rc = DD_ERR_INVALID;
	}
	for (size_t i = 0; rc == DD_OK && i < s->n_extras; i++) {
		if (has_label(s, i, s->extras[i].label)) {
			snprintf(why, why_len, "extra label '%.63s' given twice",
				 s->extras[i].label);
			rc = DD_ERR_INVALID;
			break;
		}
		rc = add_extra(r, h, s->primary, s->extras[i].label,
			       s->extras[i].port, why, why_len);
	}
	if (rc == DD_OK && s->api_port != 0 &&
	    !has_label(s, s->n_extras, DD_CF_AGENT_API_LABEL))
		rc = add_extra(r, h, s->primary, DD_CF_AGENT_API_LABEL,
			       s->api_port, why, why_len);
	if (rc == DD_OK)
		rc = rule(r, s->primary, s->primary_port);
	if (rc == DD_OK)
		rc = rule(r, NULL, 0);
	if (rc) {
		json_decref(r);
		json_decref(h);
		return rc;
	}
	*rules = r;
	*hostnames = h;
	return DD_OK;
}

/* --- "label:port,..." --------------------------------------------------- */

dd_err_t dd_cf_extras_parse(const char *s, dd_cf_extra *out, size_t max,
			    size_t *n, char *why, size_t why_len)
{
	const char *p = s;

	*n = 0;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		const char *e = p, *colon;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		uint64_t port;

		dd_str_trim(&e, &len);
		p = end ? end + 1 : NULL;
		if (len == 0)
			continue;
		colon = memchr(e, ':', len);
		if (colon == NULL || colon == e ||
		    (size_t)(colon - e) > DD_CF_LABEL_MAX) {
			snprintf(why, why_len, "extra '%.*s': want label:port",
				 (int)(len > 80 ? 80 : len), e);
			return DD_ERR_INVALID;
		}
		if (*n == max) {
			snprintf(why, why_len, "more than %zu extras", max);
			return DD_ERR_INVALID;
		}
		memcpy(out[*n].label, e, (size_t)(colon - e));
		out[*n].label[colon - e] = '\0';
		if (dd_cf_check_label(out[*n].label, why, why_len) != DD_OK)
			return DD_ERR_INVALID;
		if (dd_parse_u64n(colon + 1, len - (size_t)(colon - e) - 1, 1,
				  65535, &port) != DD_OK) {
			snprintf(why, why_len, "extra '%.63s': port must be "
				 "1-65535", out[*n].label);
			return DD_ERR_INVALID;
		}
		out[*n].port = (uint16_t)port;
		(*n)++;
	}
	return DD_OK;
}
