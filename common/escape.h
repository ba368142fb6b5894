/* SPDX-License-Identifier: MIT */
/*
 * Strings another process chose (a client's command name, a daemon's message or label), made
 * safe to print on a terminal or in a log: every byte outside printable ASCII, and the
 * backslash, is written as \xHH. A terminal escape ("\e]0;...\a", "\e[2J") then shows as text
 * instead of acting, and a line cannot be split or forged with a newline.
 */
#ifndef COMMON_ESCAPE_H
#define COMMON_ESCAPE_H

#include <stddef.h>

/* The buffer size that holds the escaped form of any @n-byte string. */
#define ESCAPE_SIZE(n) ((n)*4 + 1)

/*
 * Writes the escaped form of @in into @out (@size bytes, at least 1; always terminated). What
 * does not fit is cut at a whole escape. Returns @out.
 */
const char *escape_string(char *out, size_t size, const char *in);

#endif
