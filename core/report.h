/* SPDX-License-Identifier: MIT */
/*
 * The configuration check shared by `smhd --check` and `smhctl dt`: load a blob, validate it
 * (device tree and allocator layout), and print the region table or its JSON form.
 */
#ifndef CORE_REPORT_H
#define CORE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dt.h"

struct report_check_options {
	const char *dtb_path;
	uint64_t granule;
	bool json;
	const char *prog; /* prefix of human messages, e.g. "smhd" */
};

/*
 * Runs the check. Human mode: warnings and errors go to @err as "PROG: error: ...", the table
 * to @out. JSON mode: one document on @out with "valid", "regions", "warnings", "errors".
 * A configuration without any region is invalid (there would be nothing to serve).
 * Returns 0 when the configuration is valid, 1 when it is not, cannot be read, or the report
 * could not be written to @out (a full disk, a closed pipe).
 */
int report_check(const struct report_check_options *opts, FILE *out, FILE *err);

/* Prints the region table (label, attribute, physical range, size, no-map, node). */
void report_regions_table(FILE *out, const struct dt_config *cfg);

#endif
