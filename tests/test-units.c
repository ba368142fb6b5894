/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/units.h"

static void test_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "64", 64 },
		{ "0x1000", 0x1000 },
		{ "4K", 4096 },
		{ "4k", 4096 },
		{ "4KiB", 4096 },
		{ "4KB", 4096 },
		{ "4 KiB", 4096 },
		{ "1M", 1 << 20 },
		{ "2G", UINT64_C(2) << 30 },
		{ "3T", UINT64_C(3) << 40 },
		{ "0", 0 },
		{ "12B", 12 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = { "", "K", "-1", " 4", "4X", "4KiBs", "4 K B", "0x" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(units_parse_size(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(units_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(units_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(units_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(units_parse_size("16777216T", &v), -ERANGE);
}

static void test_format(void **state)
{
	char buf[32];

	units_format_size(0, buf, sizeof(buf));
	assert_string_equal(buf, "0 B");
	units_format_size(1023, buf, sizeof(buf));
	assert_string_equal(buf, "1023 B");
	units_format_size(0x1000, buf, sizeof(buf));
	assert_string_equal(buf, "4 KiB");
	units_format_size(0x3000, buf, sizeof(buf));
	assert_string_equal(buf, "12 KiB");
	units_format_size(1536, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 KiB");
	units_format_size(UINT64_C(5) << 30, buf, sizeof(buf));
	assert_string_equal(buf, "5 GiB");
	units_format_size(UINT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "16.0 EiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
