/* SPDX-License-Identifier: MIT */
/*
 * The attribute table: complete, unique names, lookups both ways, and in agreement with the
 * binding's `capability` enum in dts/bindings/shared-multi-heap.yaml (so that adding an
 * attribute to one and not the other fails here).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/attr.h"

static void test_table_complete(void **state)
{
	for (unsigned i = 0; i < SMH_REG_ATTR_NUM; i++) {
		const struct attr_info *info = attr_info((enum smh_reg_attr)i);
		enum smh_reg_attr back;

		assert_non_null(info);
		assert_non_null(info->dt_name);
		assert_int_equal(attr_from_name(info->dt_name, &back), 0);
		assert_int_equal(back, i);
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(info->dt_name, attr_name((enum smh_reg_attr)j));
	}
	assert_null(attr_info(SMH_REG_ATTR_NUM));
	assert_null(attr_info((enum smh_reg_attr) - 1));
	assert_string_equal(attr_name(SMH_REG_ATTR_NUM), "invalid");
}

static void test_seed_names_and_policies(void **state)
{
	enum smh_reg_attr a;

	assert_int_equal(SMH_REG_ATTR_CACHEABLE, 0);
	assert_int_equal(SMH_REG_ATTR_NON_CACHEABLE, 1);
	assert_string_equal(attr_name(SMH_REG_ATTR_CACHEABLE), "cacheable");
	assert_string_equal(attr_name(SMH_REG_ATTR_NON_CACHEABLE), "non-cacheable");
	assert_int_equal(attr_info(SMH_REG_ATTR_CACHEABLE)->map, ATTR_MAP_CACHED);
	assert_int_equal(attr_info(SMH_REG_ATTR_NON_CACHEABLE)->map, ATTR_MAP_SYNC);
	assert_int_equal(attr_from_name("uncached", &a), -EINVAL);
	assert_int_equal(attr_from_name("", &a), -EINVAL);
	assert_int_equal(attr_from_name("Cacheable", &a), -EINVAL);
}

static void test_list_names(void **state)
{
	char buf[64], small[8];

	attr_list_names(buf, sizeof(buf));
	assert_string_equal(buf, "cacheable, non-cacheable");
	attr_list_names(small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	attr_list_names(small, 0); /* writes nothing */
}

/* Reads the `capability` enum of the binding: the "- name" lines after "enum:". */
static size_t yaml_capabilities(char names[][32], size_t max)
{
	char path[4096], line[256];
	const char *root = getenv("SMH_SOURCE_ROOT");
	bool in_cap = false, in_enum = false;
	size_t n = 0;
	FILE *f;

	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/dts/bindings/shared-multi-heap.yaml", root);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[32];

		if (strncmp(line, "  capability:", 13) == 0) {
			in_cap = true;
		} else if (in_cap && strncmp(line, "    enum:", 9) == 0) {
			in_enum = true;
		} else if (in_enum && sscanf(line, "      - %31s", name) == 1) {
			assert_true(n < max);
			strcpy(names[n++], name);
		} else if (in_enum) {
			break;
		}
	}
	fclose(f);
	return n;
}

static void test_binding_agrees(void **state)
{
	char names[16][32];
	size_t n = yaml_capabilities(names, 16);

	assert_int_equal(n, SMH_REG_ATTR_NUM);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(names[i], attr_name((enum smh_reg_attr)i));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_seed_names_and_policies),
		cmocka_unit_test(test_list_names),
		cmocka_unit_test(test_binding_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
