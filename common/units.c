/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
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
	unsigned long long v;
	char *end;
	int shift;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s)
		return -EINVAL;
	shift = suffix_shift(end);
	if (shift < 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*sizep = (uint64_t)v << shift;
	return 0;
}

void units_format_size(uint64_t size, char *buf, size_t buf_size)
{
	unsigned u = 0;

	while (u + 1 < sizeof(unit_names) / sizeof(unit_names[0]) && size >> (10 * (u + 1)))
		u++;
	if (u == 0 || !(size & ((UINT64_C(1) << (10 * u)) - 1)))
		snprintf(buf, buf_size, "%llu %s", (unsigned long long)(size >> (10 * u)),
			 unit_names[u]);
	else
		snprintf(buf, buf_size, "%.1f %s", (double)size / (double)(UINT64_C(1) << (10 * u)),
			 unit_names[u]);
}
