/* SPDX-License-Identifier: MIT */
/*
 * Buffer names ("camera0/frame3"): the one rule the library, the daemon and the state file
 * apply. A name is 1 to BUFNAME_MAX bytes of printable ASCII (0x20 to 0x7e); "" means no name.
 * ASCII only, not UTF-8: a name is printed in logs and tables, and Unicode's invisible and
 * direction-changing characters (U+202E) could make one name look like another.
 */
#ifndef COMMON_BUFNAME_H
#define COMMON_BUFNAME_H

#include <stdbool.h>
#include <stddef.h>

/* The longest name, in bytes, without the terminating NUL (SMH_NAME_MAX in smh/client.h). */
#define BUFNAME_MAX 63

/*
 * Whether the @len bytes at @name are a valid name or empty (no name). When not, and @why is
 * not NULL, writes into @why (@why_size bytes) a sentence saying what is wrong.
 */
bool bufname_valid(const char *name, size_t len, char *why, size_t why_size);

#endif
