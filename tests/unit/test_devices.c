#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/devices.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/strutil.h"
#include "noise/static_key.h"

/* RFC 7748 section 6.1 public keys. */
#define ALICE "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"

static void key_of(const char *hex, uint8_t k[32])
{
	assert_int_equal(dd_device_key_parse(hex, k, NULL, 0), DD_OK);
}

/* A fresh valid key. */
static void random_key(uint8_t k[32])
{
	uint8_t priv[32];

	assert_int_equal(dd_random_bytes(priv, sizeof priv), DD_OK);
	assert_int_equal(dd_static_key_public(priv, k), DD_OK);
}

static void keys_are_checked(void **state)
{
	/* Small-order points and non-canonical encodings (libsodium's list). */
	static const char *const bad[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		/* Alice with the top bit set: the same point, not our encoding. */
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4eea",
		ALICE "00", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6",
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6g",
		"", NULL,
	};
	uint8_t k[32], want[32];
	char why[160];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(dd_device_key_parse(bad[i], k, why, sizeof why),
				 DD_ERR_INVALID);
		assert_true(strlen(why) > 0);
	}
	/* p - 2: near the top of the canonical range, not of small order. */
	assert_int_equal(dd_device_key_parse("ebffffffffffffffffffffffffffffffffffffff"
					     "ffffffffffffffffffffff7f", k, NULL, 0),
			 DD_OK);
	key_of(ALICE, want);
	/* Either case in. */
	assert_int_equal(dd_device_key_parse("8520F0098930A754748B7DDCB43EF75A0DBF3"
					     "A0D26381AF4EBA4A98EAA9B4E6A", k,
					     NULL, 0), DD_OK);
	assert_memory_equal(k, want, 32);
}

static void labels_are_checked(void **state)
{
	char out[DD_DEVICE_LABEL_MAX + 1], big[200];

	(void)state;
	assert_int_equal(dd_device_label_parse("  alice@laptop \t", out, NULL, 0),
			 DD_OK);
	assert_string_equal(out, "alice@laptop");
	assert_int_equal(dd_device_label_parse("caf\xc3\xa9 \xe2\x98\x95", out,
					       NULL, 0), DD_OK);
	memset(big, 'x', 128);
	big[128] = '\0';
	assert_int_equal(dd_device_label_parse(big, out, NULL, 0), DD_OK);
	big[128] = 'x';
	big[129] = '\0';
	assert_int_equal(dd_device_label_parse(big, out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse("   ", out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse("", out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse(NULL, out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse("a\nb", out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse("a\x7f", out, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_device_label_parse("a\xc2\x85", out, NULL, 0),
			 DD_ERR_INVALID);                 /* C1 NEL */
	assert_int_equal(dd_device_label_parse("a\xc3", out, NULL, 0),
			 DD_ERR_INVALID);                 /* truncated */
	assert_int_equal(dd_device_label_parse("a\xc0\xaf", out, NULL, 0),
			 DD_ERR_INVALID);                 /* overlong */
	assert_int_equal(dd_device_label_parse("a\xed\xa0\x80", out, NULL, 0),
			 DD_ERR_INVALID);                 /* surrogate */
}

struct seen {
	int revokes, changes;
	uint8_t last[32];
	dd_devices *d;
	int trusted_during;  /* the registry's view inside on_revoke */
};

static void on_revoke(const uint8_t key[32], void *ud)
{
	struct seen *s = ud;

	s->revokes++;
	memcpy(s->last, key, 32);
	s->trusted_during = dd_devices_is_trusted(s->d, key);
}

static void on_change(void *ud)
{
	((struct seen *)ud)->changes++;
}

static void pair_revoke_and_callbacks(void **state)
{
	dd_devices *d;
	dd_device rec;
	uint8_t a[32], b[32], rcpt[4][32], c[32];
	struct seen s1 = {0}, s2 = {0};
	dd_devices_hooks h1 = {on_revoke, on_change, &s1};
	dd_devices_hooks h2 = {on_revoke, NULL, &s2};
	unsigned id1, id2, ids[DD_DEVICES_MAX_SUBS];
	size_t n;

	(void)state;
	key_of(ALICE, a);
	key_of(BOB, b);
	random_key(c);
	assert_int_equal(dd_devices_open(NULL, 2, &d, NULL, 0), DD_OK);
	s1.d = s2.d = d;
	assert_int_equal(dd_devices_subscribe(d, &h1, &id1), DD_OK);
	assert_int_equal(dd_devices_subscribe(d, &h2, &id2), DD_OK);
	assert_false(dd_devices_is_trusted(d, a));
	assert_false(dd_devices_is_trusted(NULL, a));

	assert_int_equal(dd_devices_pair(d, b, " phone ", "alice", 501, 1000, &rec),
			 DD_OK);
	assert_string_equal(rec.pubkey, BOB);
	assert_string_equal(rec.label, "phone");
	assert_int_equal(dd_devices_pair(d, a, "laptop", "alice", 501, 2000, NULL),
			 DD_OK);
	assert_int_equal(s1.changes, 2);
	assert_int_equal(s1.revokes + s2.revokes, 0);
	assert_true(dd_devices_is_trusted(d, a) && dd_devices_is_trusted(d, b));
	/* Key order: Alice (0x85..) before Bob (0xde..). */
	assert_int_equal(dd_devices_recipients(d, rcpt, 4, &n), DD_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(rcpt[0], a, 32);
	assert_memory_equal(rcpt[1], b, 32);
	assert_int_equal(dd_devices_recipients(d, rcpt, 1, &n), DD_ERR_TOO_LARGE);
	assert_int_equal(n, 2);
	/* The cap counts records; replacing one does not need room. */
	assert_int_equal(dd_devices_pair(d, c, "third", NULL, 0, 3000, NULL),
			 DD_ERR_BUSY);
	assert_int_equal(dd_devices_pair(d, a, "laptop 2", "bob", 7, 3000, &rec),
			 DD_OK);
	assert_string_equal(rec.label, "laptop 2");
	assert_int_equal(rec.created_at_ms, 3000);

	/* Revocation: both subscribers hear the key, after it took effect. */
	assert_int_equal(dd_devices_revoke(d, a, 4000, &rec), DD_OK);
	assert_int_equal(rec.revoked_at_ms, 4000);
	assert_int_equal(s1.revokes, 1);
	assert_int_equal(s2.revokes, 1);
	assert_memory_equal(s1.last, a, 32);
	assert_false(s1.trusted_during);
	assert_int_equal(s1.changes, 4);
	assert_false(dd_devices_is_trusted(d, a));
	assert_int_equal(dd_devices_recipients(d, rcpt, 4, &n), DD_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(rcpt[0], b, 32);
	/* Revoked records stay listed; a second revoke finds nothing. */
	assert_int_equal(dd_devices_count(d), 2);
	assert_int_equal(dd_devices_revoke(d, a, 5000, NULL), DD_ERR_NOT_FOUND);
	assert_int_equal(dd_devices_revoke(d, c, 5000, NULL), DD_ERR_NOT_FOUND);
	assert_int_equal(s1.revokes, 1);
	/* Re-pairing un-revokes. */
	assert_int_equal(dd_devices_pair(d, a, "back", NULL, 0, 6000, &rec), DD_OK);
	assert_int_equal(rec.revoked_at_ms, 0);
	assert_true(dd_devices_is_trusted(d, a));

	/* Unsubscribed: silent. Bounded subscriber list. */
	dd_devices_unsubscribe(d, id2);
	assert_int_equal(dd_devices_revoke(d, b, 7000, NULL), DD_OK);
	assert_int_equal(s2.revokes, 1);
	assert_int_equal(s1.revokes, 2);
	for (size_t i = 0; i < DD_DEVICES_MAX_SUBS - 1; i++)
		assert_int_equal(dd_devices_subscribe(d, &h2, &ids[i]), DD_OK);
	assert_int_equal(dd_devices_subscribe(d, &h2, &id2), DD_ERR_BUSY);

	/* Refused inputs change nothing. */
	assert_int_equal(dd_devices_pair(d, a, " ", NULL, 0, 1, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_devices_pair(d, a, "x", "no spaces", 0, 1, NULL),
			 DD_ERR_INVALID);
	assert_int_equal(dd_devices_pair(d, a, "x", NULL, 0, 0, NULL),
			 DD_ERR_INVALID);
	memset(c, 0, sizeof c);
	assert_int_equal(dd_devices_pair(d, c, "zero", NULL, 0, 1, NULL),
			 DD_ERR_INVALID);
	dd_devices_free(d);
	assert_int_equal(dd_devices_open(NULL, 0, &d, NULL, 0), DD_ERR_INVALID);
	assert_int_equal(dd_devices_open(NULL, DD_DEVICES_MAX + 1, &d, NULL, 0),
			 DD_ERR_INVALID);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void the_file_round_trips(void **state)
{
	char dir[] = "/tmp/dd-devices-XXXXXX", path[256], tmp[300], why[256];
	dd_devices *d, *e;
	uint8_t a[32], b[32];
	struct stat st;
	char *text;
	struct seen s = {0};
	dd_devices_hooks h = {on_revoke, on_change, &s};
	unsigned id;

	(void)state;
	key_of(ALICE, a);
	key_of(BOB, b);
	assert_non_null(mkdtemp(dir));
	/* The directory is created when missing. */
	snprintf(path, sizeof path, "%s/data/devices.json", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	assert_int_equal(dd_devices_open(path, 8, &d, why, sizeof why), DD_OK);
	assert_int_equal(dd_devices_count(d), 0);
	assert_int_equal(dd_devices_pair(d, b, "phone", "alice", 501,
					 1734000000000, NULL), DD_OK);
	assert_int_equal(dd_devices_pair(d, a, "alice@laptop", NULL, 0,
					 1734567890000, NULL), DD_OK);
	assert_int_equal(dd_devices_revoke(d, b, 1734999999999, NULL), DD_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(access(tmp, F_OK), -1);
	text = slurp(path);
	/* Pretty-printed (2 spaces), in key order, as spec 3.4 shows. */
	assert_non_null(strstr(text, "{\n  \"devices\": [\n    {\n      \"pubkey\": \""
			       ALICE "\",\n      \"label\": \"alice@laptop\""));
	assert_true(strstr(text, ALICE) < strstr(text, BOB));
	assert_non_null(strstr(text, "\"revoked_at_ms\": 1734999999999"));
	assert_non_null(strstr(text, "\"paired_by\": \"alice\""));
	free(text);

	/* Reload: the same registry. */
	assert_int_equal(dd_devices_open(path, 8, &e, why, sizeof why), DD_OK);
	assert_int_equal(dd_devices_count(e), 2);
	assert_true(dd_devices_is_trusted(e, a));
	assert_false(dd_devices_is_trusted(e, b));
	assert_string_equal(dd_devices_at(e, 1)->paired_by, "alice");
	assert_int_equal(dd_devices_at(e, 1)->paired_by_id, 501);
	assert_int_equal(dd_devices_at(e, 1)->revoked_at_ms, 1734999999999);
	assert_int_equal(dd_devices_at(e, 0)->created_at_ms, 1734567890000);
	assert_null(dd_devices_at(e, 2));
	dd_devices_free(e);

	/*
	 * A write that cannot land (the temp name is taken by a directory)
	 * changes nothing: not the file, not the trust set, no callbacks.
	 */
	assert_int_equal(dd_devices_subscribe(d, &h, &id), DD_OK);
	text = slurp(path);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(dd_devices_revoke(d, a, 1735000000000, NULL), DD_ERR_IO);
	assert_true(dd_devices_is_trusted(d, a));
	assert_int_equal(dd_devices_pair(d, b, "again", NULL, 0, 1, NULL),
			 DD_ERR_IO);
	assert_false(dd_devices_is_trusted(d, b));
	assert_int_equal(s.revokes + s.changes, 0);
	{
		char *now = slurp(path);

		assert_string_equal(now, text);
		free(now);
	}
	free(text);
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(dd_devices_revoke(d, a, 1735000000000, NULL), DD_OK);
	assert_int_equal(s.revokes, 1);
	dd_devices_free(d);
	unlink(path);
	snprintf(tmp, sizeof tmp, "%s/data", dir);
	rmdir(tmp);
	rmdir(dir);
}

static void bad_files_are_refused(void **state)
{
	char dir[] = "/tmp/dd-devices-XXXXXX", path[256], link[300], why[256];
	char big[8192];
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"devices\": {}}",
		"{\"devices\": [], \"extra\": 1}",
		"{\"devices\": [1]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\"}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
		"\"created_at_ms\": -1}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \" x\", "
		"\"created_at_ms\": 1}]}",
		"{\"devices\": [{\"pubkey\": \"8520F0098930A754748B7DDCB43EF75A0DBF3"
		"A0D26381AF4EBA4A98EAA9B4E6A\", \"label\": \"x\", "
		"\"created_at_ms\": 1}]}",
		"{\"devices\": [{\"pubkey\": \"0000000000000000000000000000000000000"
		"000000000000000000000000000\", \"label\": \"x\", "
		"\"created_at_ms\": 1}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
		"\"created_at_ms\": 1, \"admin\": true}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
		"\"created_at_ms\": 1, \"revoked_at_ms\": \"soon\"}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
		"\"created_at_ms\": 1, \"paired_by\": \"<script>\"}]}",
		"{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
		"\"created_at_ms\": 1}, {\"pubkey\": \"" ALICE "\", \"label\": "
		"\"y\", \"created_at_ms\": 2}]}",
	};
	dd_devices *d;
	size_t off;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/devices.json", dir);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put(path, bad[i], 0600);
		why[0] = '\0';
		assert_int_not_equal(dd_devices_open(path, 8, &d, why, sizeof why),
				     DD_OK);
		assert_true(strlen(why) > 0);
	}
	/* The smallest good file, then the same with loose permissions. */
	put(path, "{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": \"x\", "
	    "\"created_at_ms\": 1, \"paired_by\": \"\"}]}", 0600);
	assert_int_equal(dd_devices_open(path, 8, &d, why, sizeof why), DD_OK);
	dd_devices_free(d);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(dd_devices_open(path, 8, &d, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "0600"));
	/* A symlink is not followed. */
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(link, sizeof link, "%s/link.json", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_not_equal(dd_devices_open(link, 8, &d, why, sizeof why), DD_OK);
	unlink(link);
	/* More records than the cap. */
	off = (size_t)snprintf(big, sizeof big, "{\"devices\": [");
	for (int i = 0; i < 3; i++) {
		uint8_t k[32];
		char hex[65];

		random_key(k);
		dd_hex_encode(k, 32, hex);
		off += (size_t)snprintf(big + off, sizeof big - off,
					"%s{\"pubkey\": \"%s\", \"label\": \"d%d\", "
					"\"created_at_ms\": 1}", i ? "," : "", hex, i);
	}
	snprintf(big + off, sizeof big - off, "]}");
	put(path, big, 0600);
	assert_int_equal(dd_devices_open(path, 3, &d, why, sizeof why), DD_OK);
	assert_int_equal(dd_devices_count(d), 3);
	dd_devices_free(d);
	assert_int_equal(dd_devices_open(path, 2, &d, why, sizeof why),
			 DD_ERR_TOO_LARGE);
	unlink(path);
	rmdir(dir);
}

static void allocation_failures_are_clean(void **state)
{
	(void)state;
#ifdef DD_TORTURE
	const char *text = "{\"devices\": [{\"pubkey\": \"" ALICE "\", \"label\": "
			   "\"x\", \"created_at_ms\": 1}]}";
	char dir[] = "/tmp/dd-devices-XXXXXX", path[256];
	uint8_t b[32];
	unsigned long n, used;
	dd_devices *d = NULL;
	dd_err_t rc;

	key_of(BOB, b);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/devices.json", dir);
	put(path, text, 0600);
	for (n = 1;; n++) {
		dd_alloc_fail_at(n);
		rc = dd_devices_open(path, 4, &d, NULL, 0);
		if (rc == DD_OK)
			rc = dd_devices_pair(d, b, "phone", NULL, 0, 2, NULL);
		used = dd_alloc_count();
		dd_alloc_fail_at(0);
		assert_true(rc == DD_OK || rc == DD_ERR_NOMEM || rc == DD_ERR_INVALID);
		if (d != NULL)
			assert_int_equal(dd_devices_count(d), rc == DD_OK ? 2 : 1);
		dd_devices_free(d);
		d = NULL;
		put(path, text, 0600);
		if (used < n) {
			assert_int_equal(rc, DD_OK);
			break;
		}
	}
	unlink(path);
	rmdir(dir);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_are_checked),
		cmocka_unit_test(labels_are_checked),
		cmocka_unit_test(pair_revoke_and_callbacks),
		cmocka_unit_test(the_file_round_trips),
		cmocka_unit_test(bad_files_are_refused),
		cmocka_unit_test(allocation_failures_are_clean),
	};

	dd_json_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
