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
		{ "010", 10 },
		{ "0x10", 16 },
		{ "0X1fK", 31 << 10 },
		{ "0xffffffffffffffff", UINT64_MAX },
	};
	static const char *const bad[] = { "",      "K",  "-1",   " 4",  "4X", "4KiBs",
					   "4 K B", "0x", "0x-1", "0xg", "+4" };
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
	assert_string_equal(buf, "~16.0 EiB");
	/* exact in a smaller unit rather than a rounded "2.0 MiB" */
	units_format_size(2052 << 10, buf, sizeof(buf));
	assert_string_equal(buf, "2052 KiB");
	/* too many digits to be exact: rounded, and marked so */
	units_format_size((UINT64_C(20) << 30) + 12288, buf, sizeof(buf));
	assert_string_equal(buf, "~20.0 GiB");
	units_format_size((UINT64_C(3) << 30) + (UINT64_C(1) << 29), buf, sizeof(buf));
	assert_string_equal(buf, "3.5 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
