/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "common/units.h"

static const char *const unit_names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

/* Shift for a suffix ("", "K", "KiB", "KB", ...), or -1 when it is not one. */
static int suffix_shift(const char *s)
{
	static const char letters[] = "KMGT";

	while (*s == ' ')
		s++;
	if (*s == '\0' || strcasecmp(s, "B") == 0)
		return 0;
	for (int i = 0; letters[i]; i++) {
		if (toupper((unsigned char)s[0]) != letters[i])
			continue;
		if (s[1] == '\0' || strcasecmp(s + 1, "iB") == 0 || strcasecmp(s + 1, "B") == 0)
			return 10 * (i + 1);
	}
	return -1;
}

int units_parse_size(const char *s, uint64_t *sizep)
{
	bool hex = s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	unsigned long long v;
	char *end;
	int shift;

	/* strtoull() would take a sign or spaces; and base 0 would read "010" as octal. */
	if (!s || !(hex ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits)))
		return -EINVAL;
	errno = 0;
	v = strtoull(digits, &end, hex ? 16 : 10);
	if (errno == ERANGE)
		return -ERANGE;
	shift = suffix_shift(end);
	if (shift < 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*sizep = (uint64_t)v << shift;
	return 0;
}

static uint64_t unit_bytes(unsigned u)
{
	return UINT64_C(1) << (10 * u);
}

/*
 * Exact where it can be: "4 KiB", "1.5 KiB", "2052 KiB"; otherwise the largest unit with one
 * decimal and a "~" that says it is rounded.
 */
void units_format_size(uint64_t size, char *buf, size_t buf_size)
{
	unsigned top = 0;

	while (top + 1 < sizeof(unit_names) / sizeof(unit_names[0]) && size >> (10 * (top + 1)))
		top++;
	for (unsigned u = top + 1; u-- > 0;) {
		uint64_t q = size / unit_bytes(u), r = size % unit_bytes(u);

		if (r == 0 && (u == top || q < 100000)) {
			snprintf(buf, buf_size, "%llu %s", (unsigned long long)q, unit_names[u]);
			return;
		}
		if (u == top && r * 10 % unit_bytes(u) == 0) {
			snprintf(buf, buf_size, "%llu.%llu %s", (unsigned long long)q,
				 (unsigned long long)(r * 10 / unit_bytes(u)), unit_names[u]);
			return;
		}
	}
	snprintf(buf, buf_size, "~%.1f %s", (double)size / (double)unit_bytes(top),
		 unit_names[top]);
}
