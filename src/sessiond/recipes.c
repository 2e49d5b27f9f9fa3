#include "sessiond/recipes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"

#define MAX_FILE (256u << 10)
#define MAX_TEXT 4096

struct dd_recipes {
	size_t n;
	dd_recipe v[DD_RECIPES_MAX];
};

static void strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		dd_free(v[i]);
	dd_free(v);
}

void dd_recipes_free(dd_recipes *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		dd_free(r->v[i].id);
		dd_free(r->v[i].title);
		dd_free(r->v[i].description);
		strv_free(r->v[i].argv);
		strv_free(r->v[i].env);
		dd_free(r->v[i].cwd);
	}
	dd_free(r);
}

static int id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '-' || s[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return 0;
	}
	return 1;
}

static int env_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

/* An optional string member: def when absent; INVALID when not text. */
static dd_err_t opt_str(const json_t *o, const char *key, const char *def,
			char **out)
{
	const json_t *v = json_object_get(o, key);
	const char *s = def;

	if (v != NULL && !json_is_string(v))
		return DD_ERR_INVALID;
	if (v != NULL)
		s = json_string_value(v);
	if (strlen(s) > MAX_TEXT)
		return DD_ERR_INVALID;
	*out = dd_strdup(s);
	return *out != NULL ? DD_OK : DD_ERR_NOMEM;
}

static dd_err_t parse_argv(const json_t *a, dd_recipe *r, char *why,
			   size_t why_len)
{
	const char *s;
	size_t n = json_array_size(a);

	if (!json_is_array(a) || n == 0 || n > DD_RECIPE_MAX_ARGS) {
		snprintf(why, why_len, "argv must be 1..%d strings",
			 DD_RECIPE_MAX_ARGS);
		return DD_ERR_INVALID;
	}
	r->argv = dd_calloc(n + 1, sizeof *r->argv);
	if (r->argv == NULL)
		return DD_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		s = json_string_value(json_array_get(a, i));
		if (s == NULL || strlen(s) > MAX_TEXT ||
		    (i == 0 && s[0] != '/')) {
			snprintf(why, why_len, "argv[%zu] must be %s", i,
				 i == 0 ? "an absolute path" : "a string");
			return DD_ERR_INVALID;
		}
		r->argv[i] = dd_strdup(s);
		if (r->argv[i] == NULL)
			return DD_ERR_NOMEM;
	}
	return DD_OK;
}

static dd_err_t parse_env(json_t *o, dd_recipe *r, char *why,
			  size_t why_len)
{
	const char *k;
	json_t *v;
	dd_buf b;
	size_t n = json_object_size(o), i = 0;
	dd_err_t rc;

	if (o == NULL)
		n = 0;
	else if (!json_is_object(o) || n > DD_RECIPE_MAX_ENV) {
		snprintf(why, why_len, "env must be an object of at most %d "
			 "strings", DD_RECIPE_MAX_ENV);
		return DD_ERR_INVALID;
	}
	r->env = dd_calloc(n + 1, sizeof *r->env);
	if (r->env == NULL)
		return DD_ERR_NOMEM;
	json_object_foreach(o, k, v) {
		if (!env_name_ok(k) || !json_is_string(v) ||
		    json_string_length(v) > MAX_TEXT ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(why, why_len, "env: bad entry");
			return DD_ERR_INVALID;
		}
		dd_buf_init(&b, 2 * MAX_TEXT);
		rc = dd_buf_appendf(&b, "%s=%s", k, json_string_value(v));
		if (rc == DD_OK)
			rc = dd_buf_steal(&b, &r->env[i], &(size_t){0});
		dd_buf_free(&b);
		if (rc)
			return rc;
		r->envc = ++i;
	}
	return DD_OK;
}

static dd_err_t parse_one(const json_t *o, dd_recipes *all, dd_recipe *r,
			  char *why, size_t why_len)
{
	dd_err_t rc;

	if (!json_is_object(o)) {
		snprintf(why, why_len, "not an object");
		return DD_ERR_INVALID;
	}
	rc = opt_str(o, "id", "", &r->id);
	if (rc == DD_OK && !id_ok(r->id)) {
		snprintf(why, why_len, "id must be [a-z0-9][a-z0-9_-]{0,63}");
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK && dd_recipes_find(all, r->id) != NULL) {
		snprintf(why, why_len, "id %s appears twice", r->id);
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_OK)
		rc = opt_str(o, "title", r->id, &r->title);
	if (rc == DD_OK)
		rc = opt_str(o, "description", "", &r->description);
	if (rc == DD_OK)
		rc = opt_str(o, "cwd", "/", &r->cwd);
	if (rc == DD_OK && r->cwd[0] != '/') {
		snprintf(why, why_len, "cwd must be an absolute path");
		rc = DD_ERR_INVALID;
	}
	if (rc == DD_ERR_INVALID && why[0] == '\0')
		snprintf(why, why_len, "title, description and cwd are "
			 "strings");
	if (rc == DD_OK)
		rc = parse_argv(json_object_get(o, "argv"), r, why, why_len);
	if (rc == DD_OK)
		rc = parse_env(json_object_get(o, "env"), r, why, why_len);
	return rc;
}

dd_err_t dd_recipes_parse(const void *text, size_t len, dd_recipes **out,
			  char *why, size_t why_len)
{
	dd_recipes *r = NULL;
	json_t *root = NULL, *arr;
	char sub[192] = "";
	dd_err_t rc;

	*out = NULL;
	why[0] = '\0';
	rc = dd_json_parse(text, len, MAX_FILE, &root, why, why_len);
	if (rc)
		goto out;
	arr = json_object_get(root, "recipes");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > DD_RECIPES_MAX) {
		snprintf(why, why_len, "recipes must be an array of 1..%d "
			 "recipes", DD_RECIPES_MAX);
		rc = DD_ERR_INVALID;
		goto out;
	}
	r = dd_calloc(1, sizeof *r);
	if (r == NULL) {
		rc = DD_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		rc = parse_one(json_array_get(arr, i), r, &r->v[i], sub,
			       sizeof sub);
		r->n = i + 1; /* so a half-made recipe is freed too */
		if (rc) {
			snprintf(why, why_len, "recipes[%zu]: %s", i, sub);
			goto out;
		}
	}
	*out = r;
	r = NULL;
out:
	dd_recipes_free(r);
	json_decref(root);
	return rc;
}

static const char default_recipes[] =
	"{\"recipes\":[{\"id\":\"shell\",\"title\":\"Shell\","
	"\"description\":\"Plain interactive shell with encrypted transcript "
	"history\",\"argv\":[\"/bin/sh\"],\"cwd\":\"/\"}]}";

dd_err_t dd_recipes_load(const char *path, dd_recipes **out, char *why,
			 size_t why_len)
{
	dd_buf b;
	char chunk[8192];
	ssize_t n;
	dd_err_t rc = DD_OK;
	int fd;

	if (path == NULL)
		return dd_recipes_parse(default_recipes,
					sizeof default_recipes - 1, out, why,
					why_len);
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "reading %s (%s)", path,
			 strerror(errno));
		return DD_ERR_IO;
	}
	dd_buf_init(&b, MAX_FILE);
	while (rc == DD_OK) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? DD_ERR_IO : DD_OK;
			break;
		}
		rc = dd_buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	if (rc)
		snprintf(why, why_len, "reading %s (%s)", path,
			 rc == DD_ERR_TOO_LARGE ? "too large" : "read error");
	else
		rc = dd_recipes_parse(b.data != NULL ? (void *)b.data : "",
				      b.len, out, why, why_len);
	dd_buf_free(&b);
	return rc;
}

const dd_recipe *dd_recipes_find(const dd_recipes *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].id != NULL && strcmp(r->v[i].id, id) == 0)
			return &r->v[i];
	}
	return NULL;
}

json_t *dd_recipes_json(const dd_recipes *r)
{
	json_t *arr = json_array(), *argv, *o;

	for (size_t i = 0; arr != NULL && i < r->n; i++) {
		const dd_recipe *x = &r->v[i];

		argv = json_array();
		for (size_t j = 0; argv != NULL && x->argv[j] != NULL; j++) {
			if (json_array_append_new(argv,
						  json_string(x->argv[j])) != 0) {
				json_decref(argv);
				argv = NULL;
			}
		}
		o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "id", x->id,
			      "title", x->title, "description",
			      x->description, "command", x->argv[0], "argv",
			      argv, "cwd", x->cwd, "workspace_policy", "none");
		if (json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}
