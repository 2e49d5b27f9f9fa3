#include "auth/principal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOGIN_MAX 39
#define REPO_MAX 100

static const char *const kind_names[] = {
	[DD_PRINCIPAL_USER] = "user",
	[DD_PRINCIPAL_ORG] = "org",
	[DD_PRINCIPAL_REPO] = "repo",
};

static dd_err_t refuse(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static dd_err_t refuse(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return DD_ERR_INVALID;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* A GitHub login (user or organisation): what github.com lets one register. */
static dd_err_t check_login(const char *s, size_t n, const char *what,
			    char *why, size_t why_len)
{
	if (n == 0)
		return refuse(why, why_len, "%s is empty", what);
	if (n > LOGIN_MAX)
		return refuse(why, why_len, "%s is longer than %d characters",
			      what, LOGIN_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!is_alnum(s[i]) && s[i] != '-')
			return refuse(why, why_len, "%s may hold only "
				      "letters, digits and '-'", what);
	}
	if (s[0] == '-' || s[n - 1] == '-')
		return refuse(why, why_len, "%s may not start or end with "
			      "'-'", what);
	return DD_OK;
}

static dd_err_t check_repo(const char *s, size_t n, char *why, size_t why_len)
{
	if (n == 0)
		return refuse(why, why_len, "repository name is empty");
	if (n > REPO_MAX)
		return refuse(why, why_len, "repository name is longer than "
			      "%d characters", REPO_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' &&
		    s[i] != '_')
			return refuse(why, why_len, "repository name may hold "
				      "only letters, digits, '.', '_' and "
				      "'-'");
	}
	/* GitHub refuses these two; as paths they would mean something else. */
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return refuse(why, why_len, "repository name may not be '.' "
			      "or '..'");
	return DD_OK;
}

dd_err_t dd_principal_make(dd_principal_kind kind, const char *name,
			   uint64_t id, dd_principal *out, char *why,
			   size_t why_len)
{
	const char *slash;
	size_t n, owner_len;
	dd_err_t rc;

	memset(out, 0, sizeof *out);
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if ((unsigned)kind > DD_PRINCIPAL_REPO)
		return refuse(why, why_len, "unknown principal kind");
	if (name == NULL || name[0] == '\0')
		return refuse(why, why_len, "%s name is empty",
			      kind_names[kind]);
	n = strnlen(name, DD_PRINCIPAL_MAX_NAME + 1);
	if (n > DD_PRINCIPAL_MAX_NAME)
		return refuse(why, why_len, "%s name is longer than %d "
			      "characters", kind_names[kind],
			      DD_PRINCIPAL_MAX_NAME);
	slash = memchr(name, '/', n);
	if (kind != DD_PRINCIPAL_REPO) {
		if (slash != NULL)
			return refuse(why, why_len, "a %s name has no '/' "
				      "(that is a repository)",
				      kind_names[kind]);
		rc = check_login(name, n, kind == DD_PRINCIPAL_USER ?
			"user name" : "org name", why, why_len);
	} else {
		if (slash == NULL)
			return refuse(why, why_len, "a repository is named "
				      "owner/name");
		owner_len = (size_t)(slash - name);
		if (memchr(slash + 1, '/', n - owner_len - 1) != NULL)
			return refuse(why, why_len, "a repository name has "
				      "exactly one '/'");
		rc = check_login(name, owner_len, "repository owner", why,
				 why_len);
		if (rc == DD_OK)
			rc = check_repo(slash + 1, n - owner_len - 1, why,
					why_len);
	}
	if (rc)
		return rc;
	if (id == 0)
		return refuse(why, why_len, "%s id is 0 (GitHub ids start at "
			      "1)", kind_names[kind]);
	out->kind = kind;
	memcpy(out->name, name, n);
	out->name[n] = '\0';
	out->id = id;
	return DD_OK;
}

const char *dd_principal_kind_name(dd_principal_kind k)
{
	if ((unsigned)k > DD_PRINCIPAL_REPO)
		return "unknown";
	return kind_names[k];
}

dd_err_t dd_principal_kind_parse(const char *s, dd_principal_kind *out)
{
	if (s == NULL)
		return DD_ERR_INVALID;
	for (unsigned k = 0; k <= DD_PRINCIPAL_REPO; k++) {
		if (strcmp(s, kind_names[k]) == 0) {
			*out = (dd_principal_kind)k;
			return DD_OK;
		}
	}
	return DD_ERR_INVALID;
}
