/*
 * env.h: the environment a workload, exec or attach starts with:
 * EasyEnclave hands its own environment down with the request's "env"
 * on top; so do we, minus our secrets and settings.
 */
#ifndef DD_RUNTIME_ENV_H
#define DD_RUNTIME_ENV_H

#include <stddef.h>

#include "core/err.h"

/*
 * The environment of a child: base (NULL-terminated "K=V" list) with
 * extra applied on top (same key: extra wins; entries without '=' or
 * with an empty key are dropped, as EasyEnclave drops them). *out is
 * NULL-terminated and owned by the caller (dd_rt_argv_free, proto.h).
 */
dd_err_t dd_rt_env_compose(char *const *base, char *const *extra,
			   size_t n_extra, char ***out);

/*
 * The runtime's own environment minus what a workload must not inherit:
 * EE_TOKEN (secret) and every DD_* setting (DD_MODE would turn a deployed
 * devopsdefender into another runtime). socket, when not NULL, is given
 * to workloads as EE_SOCKET_PATH.
 */
dd_err_t dd_rt_env_base(char *const *environ_in, const char *socket,
			char ***out);

#endif
