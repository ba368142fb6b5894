/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"

static char *render(void (*fn)(struct json *j))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	assert_non_null(f);
	json_init(&j, f);
	fn(&j);
	fclose(f);
	return buf;
}

static void doc_nested(struct json *j)
{
	json_object_begin(j);
	json_key(j, "a");
	json_uint(j, UINT64_MAX);
	json_key(j, "b");
	json_array_begin(j);
	json_int(j, -5);
	json_bool(j, true);
	json_object_begin(j);
	json_object_end(j);
	json_array_end(j);
	json_key(j, "c");
	json_array_begin(j);
	json_array_end(j);
	json_object_end(j);
	json_finish(j);
}

static void test_nested(void **state)
{
	char *s = render(doc_nested);

	assert_string_equal(s, "{\n"
			       "  \"a\": 18446744073709551615,\n"
			       "  \"b\": [\n"
			       "    -5,\n"
			       "    true,\n"
			       "    {}\n"
			       "  ],\n"
			       "  \"c\": []\n"
			       "}\n");
	free(s);
}

static void doc_escapes(struct json *j)
{
	json_string(j, "q\" b\\ n\n t\t r\r \x01 \x1f caf\xc3\xa9");
}

static void test_escapes(void **state)
{
	char *s = render(doc_escapes);

	assert_string_equal(s, "\"q\\\" b\\\\ n\\n t\\t r\\r \\u0001 \\u001f caf\xc3\xa9\"");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
