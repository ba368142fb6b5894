/* SPDX-License-Identifier: MIT */
/* The escaping of strings other processes chose (common/escape.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/escape.h"

static void test_escape_forms(void **state)
{
	char out[ESCAPE_SIZE(32)];

	(void)state;
	assert_string_equal(escape_string(out, sizeof(out), "plain name-1.0"), "plain name-1.0");
	assert_string_equal(escape_string(out, sizeof(out), "\033]0;owned\a\033[2J"),
			    "\\x1b]0;owned\\x07\\x1b[2J");
	assert_string_equal(escape_string(out, sizeof(out), "a\\b\nc\x7f\xc2\x9b"),
			    "a\\x5cb\\x0ac\\x7f\\xc2\\x9b");
	assert_string_equal(escape_string(out, sizeof(out), ""), "");
}

/* What does not fit is cut at a whole escape, and the result is always terminated. */
static void test_escape_cut(void **state)
{
	char out[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_string_equal(escape_string(out, 7, "ab\033cd"), "ab\\x1b");
	assert_string_equal(escape_string(out, 6, "ab\033cd"), "ab");
	assert_string_equal(escape_string(out, 1, "ab"), "");
	assert_string_equal(escape_string(out, 3, "abcdef"), "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_forms),
		cmocka_unit_test(test_escape_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
