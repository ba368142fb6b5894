/* SPDX-License-Identifier: MIT */
/*
 * The attribute table. Rows are indexed by enum smh_reg_attr; the static assertion below turns a
 * forgotten row into a build error, and tests/test-attr.c checks that the device-tree binding
 * (dts/bindings/shared-multi-heap.yaml) lists exactly these names.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/attr.h"

static const struct attr_info table[] = {
	[SMH_REG_ATTR_CACHEABLE] = { .dt_name = "cacheable", .map = ATTR_MAP_CACHED },
	[SMH_REG_ATTR_NON_CACHEABLE] = { .dt_name = "non-cacheable", .map = ATTR_MAP_SYNC },
};

_Static_assert(sizeof(table) / sizeof(table[0]) == SMH_REG_ATTR_NUM,
	       "every enum smh_reg_attr needs a row in the attribute table");

const struct attr_info *attr_info(enum smh_reg_attr attr)
{
	if ((unsigned)attr >= SMH_REG_ATTR_NUM)
		return NULL;
	return &table[attr];
}

const char *attr_name(enum smh_reg_attr attr)
{
	const struct attr_info *info = attr_info(attr);

	return info ? info->dt_name : "invalid";
}

int attr_from_name(const char *name, enum smh_reg_attr *attrp)
{
	for (unsigned i = 0; i < SMH_REG_ATTR_NUM; i++) {
		if (strcmp(table[i].dt_name, name) == 0) {
			*attrp = (enum smh_reg_attr)i;
			return 0;
		}
	}
	return -EINVAL;
}

void attr_list_names(char *buf, unsigned long size)
{
	size_t used = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; i < SMH_REG_ATTR_NUM && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", table[i].dt_name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
