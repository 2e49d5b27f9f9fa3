/*
 * stonith_reply_fuzz.c: what STONITH reads out of Cloudflare's tunnel
 * objects, without sockets: the input is a "result" (one tunnel or a
 * list) as a hostile or broken Cloudflare could send it, read the way
 * cp/cp_stonith.c reads it (id, name, created_at, deleted_at,
 * connections), plus the raw bytes as a created_at string. The
 * tie-break and the classification run over whatever came out.
 *
 * Seeds: fuzz/seeds/stonith_reply/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cp/cp_stonith.h"
#include "cp/stonith.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const json_t *obj, const dd_cf_tunnel *ref)
{
	dd_cf_tunnel t;

	if (dd_cp_stonith_tunnel_from_json(obj, &t) != DD_OK)
		return;
	(void)dd_stonith_older(&t, ref);
	(void)dd_stonith_older(ref, &t);
	(void)dd_stonith_classify(DD_CF_ANS_OK, &t, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const dd_cf_tunnel ref = {.id = "own", .name = "dd-e-cp-own",
					 .created_us = 1000};
	char text[128];
	int64_t us;
	json_t *v;
	size_t i;
	const json_t *item;

	if (size < sizeof text) {
		memcpy(text, data, size);
		text[size] = '\0';
		(void)dd_cp_stonith_parse_time(text, &us);
	}
	v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			one(item, &ref);
	} else {
		one(v, &ref);
	}
	json_decref(v);
	return 0;
}
