/* SPDX-License-Identifier: MIT */
/*
 * The attribute table: for each enum smh_reg_attr, its device-tree name and how a backend maps
 * it. It is the only place that knows these facts.
 */
#ifndef COMMON_ATTR_H
#define COMMON_ATTR_H

#include <stdbool.h>

#include "smh/attr.h"

/* How the devmem backend opens /dev/mem for a region of this attribute. */
enum attr_map_policy {
	ATTR_MAP_CACHED, /* plain open: the kernel picks a cached mapping where it can */
	ATTR_MAP_SYNC,   /* O_SYNC: uncached mapping */
};

struct attr_info {
	const char *dt_name; /* value of the `capability` property */
	enum attr_map_policy map;
};

/* The row for @attr, or NULL when @attr is out of range. */
const struct attr_info *attr_info(enum smh_reg_attr attr);

/* DT name of @attr, or "invalid" when out of range. Never NULL. */
const char *attr_name(enum smh_reg_attr attr);

/* Looks up a `capability` string. Returns 0 and sets *attrp, or -EINVAL when unknown. */
int attr_from_name(const char *name, enum smh_reg_attr *attrp);

/*
 * Writes the valid names as "cacheable, non-cacheable" into @buf (always NUL-terminated).
 * For error messages that list what is allowed.
 */
void attr_list_names(char *buf, unsigned long size);

#endif
