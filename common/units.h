/* SPDX-License-Identifier: MIT */
/* Byte sizes as people write them: "64", "0x1000", "4K", "4KiB", "1M", "2 GiB". */
#ifndef COMMON_UNITS_H
#define COMMON_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses a size: a decimal (a leading zero is not octal) or 0x-hex number, optionally followed
 * by K, M, G or T (powers of 1024, with or without "iB"/"B"). Returns 0 and sets *sizep, or
 * -EINVAL (not a size) or -ERANGE (does not fit in 64 bits).
 */
int units_parse_size(const char *s, uint64_t *sizep);

/*
 * Writes @size into @buf exactly where it can ("100 B", "4 KiB", "1.5 MiB", "2052 KiB"), else
 * rounded to one decimal of the largest unit and marked so ("~20.0 GiB").
 */
void units_format_size(uint64_t size, char *buf, size_t buf_size);

#endif
