#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/pages.h"
#include "core/alloc.h"

static const char health[] =
	"{\"vm_name\":\"<b>vm</b>\",\"hostname\":\"h&h\",\"uptime_secs\":3700,"
	"\"attestation_type\":\"tdx\",\"agent_id\":\"dd-dev-agent-1\","
	"\"integrity_state\":\"controlled\",\"cpu_percent\":12,"
	"\"memory_used_mb\":100,\"memory_total_mb\":2000,\"load_1m\":0.5,"
	"\"workloads\":[{\"id\":\"x\\\"y\",\"app_name\":\"<img src=x>\","
	"\"status\":\"running\",\"source\":\"a'b\"}]}";

static const dd_page_who who = {.login = "al<ice", .admin = 1, .dev = 1,
				 .csrf = "tok\"en"};

static void dashboard_escapes_and_shows(void **state)
{
	json_t *h = json_loads(health, 0, NULL);
	dd_buf b;

	(void)state;
	assert_non_null(h);
	dd_buf_init(&b, 1 << 20);
	assert_int_equal(dd_page_dashboard(&b, h, &who), DD_OK);
	assert_null(strstr(dd_buf_str(&b), "<b>vm"));
	assert_null(strstr(dd_buf_str(&b), "<img"));
	assert_non_null(strstr(dd_buf_str(&b), "&lt;b&gt;vm&lt;/b&gt;"));
	assert_non_null(strstr(dd_buf_str(&b), "h&amp;h"));
	assert_non_null(strstr(dd_buf_str(&b), "/workload/x&quot;y"));
	assert_non_null(strstr(dd_buf_str(&b), "al&lt;ice"));
	assert_non_null(strstr(dd_buf_str(&b), "tok&quot;en"));
	assert_non_null(strstr(dd_buf_str(&b), "SIMULATED"));
	assert_non_null(strstr(dd_buf_str(&b), "1h 1m"));
	assert_non_null(strstr(dd_buf_str(&b), "100M / 2000M"));
	assert_null(strstr(dd_buf_str(&b), "<script"));
	dd_buf_free(&b);
	json_decref(h);
}

static void missing_pieces_degrade(void **state)
{
	json_t *h = json_object();
	json_t *dep = json_pack("{s:s, s:s}", "id", "w1", "error_message",
				"<boom>");
	dd_page_who plain = {.login = "bob", .csrf = ""};
	dd_buf b;

	(void)state;
	dd_buf_init(&b, 1 << 20);
	assert_int_equal(dd_page_dashboard(&b, h, &plain), DD_OK);
	assert_non_null(strstr(dd_buf_str(&b), "No workloads running"));
	assert_null(strstr(dd_buf_str(&b), "SIMULATED"));
	dd_buf_reset(&b);
	assert_int_equal(dd_page_workload(&b, dep, NULL, &plain), DD_OK);
	assert_non_null(strstr(dd_buf_str(&b), "did not answer"));
	assert_non_null(strstr(dd_buf_str(&b), "&lt;boom&gt;"));
	dd_buf_free(&b);
	json_decref(h);
	json_decref(dep);
}

static void small_buffers_fail_cleanly(void **state)
{
	json_t *h = json_loads(health, 0, NULL);
	dd_buf b;

	(void)state;
	for (size_t cap = 1; cap < 1000; cap *= 3) {
		dd_buf_init(&b, cap);
		assert_int_equal(dd_page_dashboard(&b, h, &who), DD_ERR_TOO_LARGE);
		dd_buf_free(&b);
	}
	json_decref(h);
}

#define KEY "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"

static void pairing_pages_escape_and_show_the_whole_key(void **state)
{
	json_t *list = json_loads("[{\"pubkey\":\"" KEY "\",\"label\":\"<i>x\","
				  "\"created_at_ms\":1734567890000,"
				  "\"paired_by\":\"al<ice\"},{\"pubkey\":\"k2\","
				  "\"label\":\"old\",\"created_at_ms\":1,"
				  "\"revoked_at_ms\":2}]", 0, NULL);
	const char *p;
	dd_buf b;

	(void)state;
	assert_non_null(list);
	dd_buf_init(&b, 1 << 20);
	assert_int_equal(dd_page_enroll(&b, KEY, "<script>x", "h&h", 1, &who),
			 DD_OK);
	p = dd_buf_str(&b);
	/* All 64 digits, grouped; every outside value escaped. */
	assert_non_null(strstr(p, "8520 f009 8930 a754 748b 7ddc b43e f75a<br>"
			       "0dbf 3a0d 2638 1af4 eba4 a98e aa9b 4e6a"));
	assert_non_null(strstr(p, "&lt;script&gt;x"));
	assert_null(strstr(p, "<script"));
	assert_non_null(strstr(p, "h&amp;h"));
	assert_non_null(strstr(p, "value=\"tok&quot;en\""));
	assert_non_null(strstr(p, "value=\"" KEY "\""));
	assert_non_null(strstr(p, "paired already"));
	dd_buf_reset(&b);
	assert_int_equal(dd_page_notice(&b, "Invalid <label>", "why<", &who),
			 DD_OK);
	assert_non_null(strstr(dd_buf_str(&b), "Invalid &lt;label&gt;"));
	dd_buf_reset(&b);
	assert_int_equal(dd_page_devices(&b, list, &who), DD_OK);
	p = dd_buf_str(&b);
	assert_non_null(strstr(p, "&lt;i&gt;x"));
	assert_non_null(strstr(p, "2024-12-19 00:24 UTC"));
	assert_non_null(strstr(p, "trusted"));
	assert_non_null(strstr(p, "revoked 1970-01-01 00:00 UTC"));
	/* Only the trusted device has a Revoke form, carrying the token. */
	assert_non_null(strstr(p, "<form method=post action=\"/api/v1/devices/"
			       KEY "/revoke\"><input type=hidden name=csrf "
			       "value=\"tok&quot;en\"><button>Revoke</button>"));
	assert_null(strstr(p, "/api/v1/devices/k2/revoke"));
	dd_buf_reset(&b);
	assert_int_equal(dd_page_devices(&b, NULL, &who), DD_OK);
	assert_non_null(strstr(dd_buf_str(&b), "No devices paired"));
	dd_buf_free(&b);
	for (size_t cap = 1; cap < 1000; cap *= 3) {
		dd_buf_init(&b, cap);
		assert_int_equal(dd_page_enroll(&b, KEY, "l", "h", 0, &who),
				 DD_ERR_TOO_LARGE);
		dd_buf_free(&b);
	}
	json_decref(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dashboard_escapes_and_shows),
		cmocka_unit_test(missing_pieces_degrade),
		cmocka_unit_test(small_buffers_fail_cleanly),
		cmocka_unit_test(pairing_pages_escape_and_show_the_whole_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
