/* SPDX-License-Identifier: MIT */
/* The buffer name rule (common/bufname.c): what the library and the daemon both refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bufname.h"

static void test_bufname_good(void **state)
{
	char max[BUFNAME_MAX + 1];

	(void)state;
	memset(max, '~', BUFNAME_MAX);
	max[BUFNAME_MAX] = '\0';
	assert_true(bufname_valid("camera0/frame3", 14, NULL, 0));
	assert_true(bufname_valid("", 0, NULL, 0)); /* no name */
	assert_true(bufname_valid(" a b ", 5, NULL, 0));
	assert_true(bufname_valid(max, BUFNAME_MAX, NULL, 0));
}

static void test_bufname_bad(void **state)
{
	char why[128], long_name[BUFNAME_MAX + 2];

	(void)state;
	memset(long_name, 'a', sizeof(long_name));
	assert_false(bufname_valid(long_name, BUFNAME_MAX + 1, why, sizeof(why)));
	assert_string_equal(why, "A buffer name is at most 63 bytes; this one has 64");
	assert_false(bufname_valid("ok\nforged", 9, why, sizeof(why)));
	assert_string_equal(why, "A buffer name is printable ASCII; byte 2 is 0x0a");
	assert_false(bufname_valid("\033[2J", 4, why, sizeof(why)));
	assert_string_equal(why, "A buffer name is printable ASCII; byte 0 is 0x1b");
	assert_false(bufname_valid("a\x7f", 2, why, sizeof(why)));
	assert_string_equal(why, "A buffer name is printable ASCII; byte 1 is 0x7f");
	/* UTF-8 (here U+202E, right-to-left override) is refused, whole or cut. */
	assert_false(bufname_valid("x\xe2\x80\xae", 4, why, sizeof(why)));
	assert_string_equal(why, "A buffer name is printable ASCII; byte 1 is 0xe2");
	/* An embedded NUL counts as a bad byte: the length is the caller's, not strlen's. */
	assert_false(bufname_valid("a\0b", 3, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bufname_good),
		cmocka_unit_test(test_bufname_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
