/* SPDX-License-Identifier: MIT */
/*
 * Escaping of strings other processes chose (see escape.h). One rule for every program, so
 * that smhd's log and smhctl's tables show the same name the same way: printable ASCII stays,
 * everything else (controls, DEL, bytes >= 0x80, which include UTF-8's C1 controls) and the
 * backslash become \xHH, which is unambiguous to read back.
 */
#include <stdio.h>

#include "common/escape.h"

static int printable(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '\\';
}

const char *escape_string(char *out, size_t size, const char *in)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		if (printable(*p)) {
			if (n + 1 >= size)
				break;
			out[n++] = (char)*p;
		} else {
			if (n + 4 >= size)
				break;
			snprintf(out + n, 5, "\\x%02x", *p);
			n += 4;
		}
	}
	out[n] = '\0';
	return out;
}
