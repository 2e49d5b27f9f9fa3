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

#include "core/strutil.h"
#include "noise/static_key.h"

/* RFC 7748 section 6.1: Alice's key pair. */
static void rfc7748_public_key(void **state)
{
	uint8_t priv[32], pub[32], want[32];

	(void)state;
	assert_int_equal(dd_hex_decode("77076d0a7318a57d3c16c17251b26645df4c2f87"
				       "ebc0992ab177fba51db92c2a", 64, priv, 32),
			 DD_OK);
	assert_int_equal(dd_hex_decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d"
				       "26381af4eba4a98eaa9b4e6a", 64, want, 32),
			 DD_OK);
	assert_int_equal(dd_static_key_public(priv, pub), DD_OK);
	assert_memory_equal(pub, want, 32);
}

static void generated_once_then_kept(void **state)
{
	char dir[] = "/tmp/dd-key-XXXXXX", path[128];
	dd_static_key a, b;
	struct stat st;
	char why[128];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/noise.key", dir);
	assert_int_equal(dd_static_key_load(path, &a, why, sizeof why), DD_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(dd_static_key_load(path, &b, why, sizeof why), DD_OK);
	assert_memory_equal(a.priv, b.priv, 32);
	assert_memory_equal(a.pub, b.pub, 32);
	/* Readable by others: refused, not silently replaced. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(dd_static_key_load(path, &b, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "0600"));
	/* Wrong size: refused. */
	assert_int_equal(chmod(path, 0600), 0);
	f = fopen(path, "ab");
	fputc('x', f);
	fclose(f);
	assert_int_equal(dd_static_key_load(path, &b, why, sizeof why),
			 DD_ERR_INVALID);
	assert_non_null(strstr(why, "32 bytes"));
	/* Memory only: a fresh key every time. */
	assert_int_equal(dd_static_key_load(NULL, &b, why, sizeof why), DD_OK);
	assert_memory_not_equal(a.priv, b.priv, 32);
	dd_static_key_wipe(&a);
	dd_static_key_wipe(&b);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc7748_public_key),
		cmocka_unit_test(generated_once_then_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
