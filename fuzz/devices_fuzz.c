/*
 * devices_fuzz.c: the agent's paired-device file (agent/devices.h), read
 * at boot; whoever can write the data volume controls its bytes.
 *
 * Invariants checked with __builtin_trap(): a refusal says why; an
 * accepted file holds at most the cap, in strictly increasing key order,
 * every key acceptable and its hex the lower-case form, every label
 * valid and trimmed; and what we write back parses to the same records
 * (the round trip the agent relies on at every change).
 *
 * Seeds (fuzz/seeds/devices/): a registry as the agent writes it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/devices.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"

#define CAP 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_records(const dd_devices *d)
{
	char hex[65], label[DD_DEVICE_LABEL_MAX + 1];
	uint8_t key[32];

	if (dd_devices_count(d) > CAP)
		__builtin_trap();
	for (size_t i = 0; i < dd_devices_count(d); i++) {
		const dd_device *v = dd_devices_at(d, i);

		dd_hex_encode(v->key, 32, hex);
		if (strcmp(hex, v->pubkey) != 0 ||
		    dd_device_key_parse(v->pubkey, key, NULL, 0) != DD_OK ||
		    dd_device_label_parse(v->label, label, NULL, 0) != DD_OK ||
		    strcmp(label, v->label) != 0)
			__builtin_trap();
		if (i > 0 && memcmp(dd_devices_at(d, i - 1)->key, v->key, 32) >= 0)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int setup;
	dd_devices *d = NULL, *e = NULL;
	char why[256] = "", *text = NULL;

	if (!setup) {
		dd_json_setup();
		setup = 1;
	}
	if (dd_devices_open(NULL, CAP, &d, NULL, 0) != DD_OK ||
	    dd_devices_open(NULL, CAP, &e, NULL, 0) != DD_OK)
		goto out;
	if (dd_devices_parse(d, (const char *)data, size, why, sizeof why)) {
		if (why[0] == '\0')
			__builtin_trap();
		goto out;
	}
	check_records(d);
	if (dd_devices_dump(d, &text) != DD_OK)
		goto out;
	if (dd_devices_parse(e, text, strlen(text), why, sizeof why) != DD_OK ||
	    dd_devices_count(e) != dd_devices_count(d))
		__builtin_trap();
	for (size_t i = 0; i < dd_devices_count(d); i++)
		if (memcmp(dd_devices_at(d, i), dd_devices_at(e, i),
			   sizeof(dd_device)) != 0)
			__builtin_trap();
out:
	dd_free(text);
	dd_devices_free(d);
	dd_devices_free(e);
	return 0;
}
