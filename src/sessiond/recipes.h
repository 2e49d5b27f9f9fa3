/*
 * recipes.h: the allowlist of what a session may run.
 *
 * Sessions start only from recipes; a client names one and may choose
 * nothing else about the program (no free-form command, unlike the
 * reference). Recipes come from a JSON file (DD_SESSIOND_RECIPES):
 *
 *   {"recipes": [{"id": "shell", "title": "Shell",
 *                 "description": "...", "argv": ["/bin/sh"],
 *                 "env": {"LANG": "C.UTF-8"}, "cwd": "/"}]}
 *
 * id: [a-z0-9][a-z0-9_-]*, at most 64 characters, unique; argv: 1..64
 * strings, argv[0] an absolute path; env: names [A-Za-z_][A-Za-z0-9_]*,
 * set on top of sessiond's own environment; cwd: absolute, default "/";
 * title defaults to the id, description to "". At most 64 recipes.
 * Without the file there is one recipe, "shell" running /bin/sh.
 */
#ifndef DD_SESSIOND_RECIPES_H
#define DD_SESSIOND_RECIPES_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

#define DD_RECIPES_MAX 64
#define DD_RECIPE_MAX_ARGS 64
#define DD_RECIPE_MAX_ENV 64

typedef struct dd_recipe {
	char *id;
	char *title;
	char *description;
	char **argv;          /* NULL-terminated */
	char **env;           /* NULL-terminated "K=V" */
	size_t envc;
	char *cwd;
} dd_recipe;

typedef struct dd_recipes dd_recipes;

/* From a file (path) or the default (path NULL). Caller frees. */
dd_err_t dd_recipes_load(const char *path, dd_recipes **out, char *why,
			 size_t why_len);

/* Parses the file's JSON text (fuzzed; what load uses). */
dd_err_t dd_recipes_parse(const void *text, size_t len, dd_recipes **out,
			  char *why, size_t why_len);
void dd_recipes_free(dd_recipes *r);

/* The recipe named id, or NULL. Borrowed. */
const dd_recipe *dd_recipes_find(const dd_recipes *r, const char *id);

/* [{"id","title","description","command","argv","cwd",
 *   "workspace_policy"}] in file order; caller decrefs. */
json_t *dd_recipes_json(const dd_recipes *r);

#endif
