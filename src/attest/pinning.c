#include "attest/pinning.h"

#include <stdio.h>
#include <string.h>

#include "attest/quote_verify.h"
#include "core/strutil.h"

/*
 * One vocabulary of TCB statuses for quotes and tokens: the quote
 * verifier's, whose enum runs from best to worst.
 */
int dd_tcb_rank(const char *status)
{
	dd_tcb_status st;

	if (dd_tcb_status_parse(status, &st) != DD_OK ||
	    st == DD_TCB_NOT_EVALUATED)
		return -1;
	return (int)(DD_TCB__COUNT - st);
}

static dd_err_t copy_hex(const char *s, size_t n, char *out, const char *what,
			 char *why, size_t why_len)
{
	if (n != DD_MEAS_HEX) {
		snprintf(why, why_len, "%s must be %d hex digits", what, DD_MEAS_HEX);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		int d = dd_hex_digit(s[i]);
		if (d < 0) {
			snprintf(why, why_len, "%s is not hex", what);
			return DD_ERR_INVALID;
		}
		out[i] = "0123456789abcdef"[d];
	}
	out[n] = '\0';
	return DD_OK;
}

static int is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Splits "name=hex" off an entry; an entry without '=' is unnamed. */
static dd_err_t take_name(const char **start, const char *end, char *name,
			  char *why, size_t why_len)
{
	const char *eq = memchr(*start, '=', (size_t)(end - *start));
	size_t n;

	name[0] = '\0';
	if (eq == NULL)
		return DD_OK;
	n = (size_t)(eq - *start);
	if (n == 0 || n > DD_PIN_MAX_NAME) {
		snprintf(why, why_len, "an MRTD name must be 1-%d characters",
			 DD_PIN_MAX_NAME);
		return DD_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (!name_char((*start)[i])) {
			snprintf(why, why_len, "an MRTD name may hold only "
					       "[A-Za-z0-9._-]");
			return DD_ERR_INVALID;
		}
	}
	memcpy(name, *start, n);
	name[n] = '\0';
	*start = eq + 1;
	return DD_OK;
}

static dd_err_t parse_mrtds(const char *list, dd_pin_policy *out, char *why,
			    size_t why_len)
{
	const char *p = list;

	while (p != NULL && *p) {
		const char *start;
		dd_err_t rc;

		while (is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p && !is_sep(*p))
			p++;
		if (out->n_mrtd == DD_PIN_MAX_MRTD) {
			snprintf(why, why_len, "more than %d MRTDs", DD_PIN_MAX_MRTD);
			return DD_ERR_INVALID;
		}
		rc = take_name(&start, p, out->name[out->n_mrtd], why, why_len);
		if (rc)
			return rc;
		rc = copy_hex(start, (size_t)(p - start), out->mrtd[out->n_mrtd],
			      "an MRTD", why, why_len);
		if (rc)
			return rc;
		out->n_mrtd++;
	}
	return DD_OK;
}

dd_err_t dd_pin_policy_parse(const char *mrtds, const char *min_tcb,
			     const char *const rtmrs[4], int enforce,
			     dd_pin_policy *out, char *why, size_t why_len)
{
	const char *tcb = min_tcb;
	size_t tlen = tcb ? strlen(tcb) : 0;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	out->enforce = enforce;
	rc = parse_mrtds(mrtds, out, why, why_len);
	if (rc)
		return rc;
	if (tcb != NULL)
		dd_str_trim(&tcb, &tlen);
	if (tcb == NULL || tlen == 0) {
		tcb = "UpToDate";
		tlen = strlen(tcb);
	}
	snprintf(out->min_tcb, sizeof out->min_tcb, "%.*s", (int)tlen, tcb);
	out->min_tcb_rank = dd_tcb_rank(out->min_tcb);
	if (out->min_tcb_rank < 0) {
		snprintf(why, why_len, "unknown TCB status '%s'", out->min_tcb);
		return DD_ERR_INVALID;
	}
	for (int i = 0; rtmrs != NULL && i < 4; i++) {
		char what[16];

		if (rtmrs[i] == NULL || rtmrs[i][0] == '\0')
			continue;
		snprintf(what, sizeof what, "RTMR%d", i);
		rc = copy_hex(rtmrs[i], strlen(rtmrs[i]), out->rtmr[i], what, why,
			      why_len);
		if (rc)
			return rc;
	}
	return DD_OK;
}

dd_pin_verdict dd_pin_check(const dd_pin_policy *p, const dd_att_claims *c,
			    char *why, size_t why_len)
{
	int found = 0;

	if (p->n_mrtd == 0) {
		snprintf(why, why_len, "measurements are not pinned");
		return DD_PIN_UNPINNED;
	}
	for (size_t i = 0; i < p->n_mrtd && !found; i++)
		found = strcmp(p->mrtd[i], c->mrtd) == 0;
	if (!found) {
		snprintf(why, why_len, "MRTD %.16s... is not on the allowlist", c->mrtd);
		return DD_PIN_BAD_MRTD;
	}
	for (int i = 0; i < 4; i++) {
		if (p->rtmr[i][0] != '\0' && strcmp(p->rtmr[i], c->rtmr[i]) != 0) {
			snprintf(why, why_len, "RTMR%d differs from the pinned value", i);
			return DD_PIN_BAD_RTMR;
		}
	}
	if (dd_tcb_rank(c->tcb_status) < p->min_tcb_rank) {
		snprintf(why, why_len, "TCB status '%s' is below the floor '%s'",
			 c->tcb_status[0] ? c->tcb_status : "(none)", p->min_tcb);
		return DD_PIN_LOW_TCB;
	}
	why[0] = '\0';
	return DD_PIN_PASS;
}

const char *dd_pin_name_of(const dd_pin_policy *p, const char *mrtd)
{
	for (size_t i = 0; i < p->n_mrtd; i++) {
		if (strcmp(p->mrtd[i], mrtd) == 0)
			return p->name[i];
	}
	return NULL;
}

const char *dd_pin_verdict_name(dd_pin_verdict v)
{
	switch (v) {
	case DD_PIN_PASS:
		return "pass";
	case DD_PIN_UNPINNED:
		return "unpinned";
	case DD_PIN_BAD_MRTD:
		return "mrtd";
	case DD_PIN_BAD_RTMR:
		return "rtmr";
	case DD_PIN_LOW_TCB:
		return "tcb";
	}
	return "unknown";
}
