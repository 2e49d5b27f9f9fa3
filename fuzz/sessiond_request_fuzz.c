/*
 * sessiond_request_fuzz.c: what a client of `devopsdefender sessiond`
 * can send, without sockets: a request line through the parser, whose
 * refusals must come with a code and a detail that make one well-formed
 * reply line; the same bytes as a recipe file.
 *
 * Seeds (fuzz/seeds/sessiond_request): every method with its fields,
 * a refused command, a bad id, recipients, a recipe file.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/json.h"
#include "sessiond/proto.h"
#include "sessiond/recipes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const char *code, const char *why)
{
	json_t *v;
	dd_buf b;

	dd_buf_init(&b, 4096);
	if (dd_sd_reply_error(&b, code, why) != DD_OK || b.len == 0 ||
	    b.data[b.len - 1] != '\n' ||
	    memchr(b.data, '\n', b.len - 1) != NULL)
		__builtin_trap();
	v = json_loadb((const char *)b.data, b.len - 1, 0, NULL);
	if (!json_is_object(v))
		__builtin_trap();
	json_decref(v);
	dd_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char why[DD_SD_WHY];
	const char *code = NULL;
	dd_recipes *r = NULL;
	dd_sd_req req;

	if (!ready) {
		dd_json_setup();
		ready = 1;
	}
	if (dd_sd_req_parse(data, size, 1 << 16, &req, &code, why,
			    sizeof why) == DD_OK) {
		if (req.obj == NULL)
			__builtin_trap();
		/* A validated id is a canonical UUID: no path, no newline. */
		if (req.id != NULL && (strlen(req.id) != 36 ||
				       strpbrk(req.id, "/.\n ") != NULL))
			__builtin_trap();
		dd_sd_req_free(&req);
	} else {
		if (req.obj != NULL || code == NULL || why[0] == '\0')
			__builtin_trap();
		check_reply(code, why);
	}
	if (dd_recipes_parse(data, size, &r, why, sizeof why) == DD_OK) {
		json_t *j = dd_recipes_json(r);

		if (j == NULL)
			__builtin_trap();
		json_decref(j);
	}
	dd_recipes_free(r);
	return 0;
}
