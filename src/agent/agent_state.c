#include "agent/agent_state.h"

#include <string.h>

static const char *const taint_names[] = {
	"customer_owner_enabled", "customer_workload_deployed",
	"arbitrary_exec_enabled", "interactive_shell_enabled",
};

json_t *dd_agent_taints_json(unsigned taints)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < 4; i++) {
		if ((taints & (1u << i)) &&
		    json_array_append_new(a, json_string(taint_names[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DD_AGENT_MAX_LABEL || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

dd_err_t dd_agent_extra_upsert(dd_agent_state *s, const char *label,
			       uint16_t port)
{
	if (!label_ok(label) || port == 0)
		return DD_ERR_INVALID;
	for (size_t i = 0; i < s->n_extras; i++) {
		if (strcmp(s->extras[i].label, label) == 0) {
			s->extras[i].port = port;
			return DD_OK;
		}
	}
	if (s->n_extras == DD_AGENT_MAX_EXTRAS)
		return DD_ERR_TOO_LARGE;
	memcpy(s->extras[s->n_extras].label, label, strlen(label) + 1);
	s->extras[s->n_extras].port = port;
	s->n_extras++;
	return DD_OK;
}

json_t *dd_principal_json(const dd_principal *p)
{
	if (p == NULL)
		return json_null();
	return json_pack("{s:s, s:I, s:s}", "name", p->name, "id",
			 (json_int_t)p->id, "kind", dd_principal_kind_name(p->kind));
}
