#include "runtime/env.h"

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "runtime/proto.h"

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq != NULL ? (size_t)(eq - kv) : 0;
}

/* Puts a copy of kv into env (n entries), replacing the same key. */
static dd_err_t env_set(char **env, size_t *n, const char *kv)
{
	size_t k = key_len(kv);
	char *copy;

	if (k == 0)
		return DD_OK;
	copy = dd_strdup(kv);
	if (copy == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < *n; i++) {
		if (key_len(env[i]) == k && memcmp(env[i], kv, k) == 0) {
			dd_free(env[i]);
			env[i] = copy;
			return DD_OK;
		}
	}
	env[(*n)++] = copy;
	return DD_OK;
}

dd_err_t dd_rt_env_compose(char *const *base, char *const *extra,
			   size_t n_extra, char ***out)
{
	size_t nb = 0, n = 0;
	char **env;
	dd_err_t rc = DD_OK;

	*out = NULL;
	while (base != NULL && base[nb] != NULL)
		nb++;
	env = dd_calloc(nb + n_extra + 1, sizeof *env);
	if (env == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; rc == DD_OK && i < nb; i++)
		rc = env_set(env, &n, base[i]);
	for (size_t i = 0; rc == DD_OK && i < n_extra; i++)
		rc = env_set(env, &n, extra[i]);
	if (rc) {
		dd_rt_argv_free(env);
		return rc;
	}
	*out = env;
	return DD_OK;
}

static int inherited(const char *kv)
{
	return key_len(kv) > 0 && strncmp(kv, "DD_", 3) != 0 &&
	       strncmp(kv, "EE_TOKEN=", 9) != 0 &&
	       strncmp(kv, "EE_SOCKET_PATH=", 15) != 0;
}

dd_err_t dd_rt_env_base(char *const *environ_in, const char *socket,
			char ***out)
{
	size_t n = 0, w = 0;
	char **env;
	dd_buf kv;
	dd_err_t rc = DD_OK;

	*out = NULL;
	while (environ_in != NULL && environ_in[n] != NULL)
		n++;
	env = dd_calloc(n + 2, sizeof *env);
	if (env == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!inherited(environ_in[i]))
			continue;
		env[w] = dd_strdup(environ_in[i]);
		if (env[w++] == NULL) {
			rc = DD_ERR_NOMEM;
			goto out;
		}
	}
	if (socket != NULL) {
		dd_buf_init(&kv, strlen(socket) + 32);
		rc = dd_buf_appendf(&kv, "EE_SOCKET_PATH=%s", socket);
		if (rc == DD_OK)
			rc = dd_buf_steal(&kv, &env[w], &n);
		dd_buf_free(&kv);
	}
out:
	if (rc) {
		dd_rt_argv_free(env);
		return rc;
	}
	*out = env;
	return DD_OK;
}

