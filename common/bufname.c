/* SPDX-License-Identifier: MIT */
/*
 * Buffer names (see bufname.h). Checked by length first, so that a hostile string costs at
 * most BUFNAME_MAX + 1 byte reads; the first bad byte is named by position and value.
 */
#include <stdio.h>

#include "common/bufname.h"

bool bufname_valid(const char *name, size_t len, char *why, size_t why_size)
{
	if (len > BUFNAME_MAX) {
		if (why)
			snprintf(why, why_size,
				 "A buffer name is at most %d bytes; this one has %zu", BUFNAME_MAX,
				 len);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c > 0x7e) {
			if (why)
				snprintf(why, why_size,
					 "A buffer name is printable ASCII; byte %zu is 0x%02x", i,
					 c);
			return false;
		}
	}
	return true;
}
