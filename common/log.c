/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log (see log.h). Each line is written with one call so lines never interleave.
 * Messages carry strings clients chose (their command name, set with PR_SET_NAME to anything):
 * the whole message is escaped (common/escape.h), so that no byte of it can act on the terminal
 * that shows the log or break the line in two.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/escape.h"
#include "common/log.h"

static enum log_level threshold = LOG_INFO;
static const char *prog_name = "smhd";

static const char *const names[] = { "error", "warning", "info", "debug" };

void log_set_level(enum log_level level)
{
	threshold = level;
}

void log_set_prog(const char *prog)
{
	prog_name = prog;
}

int log_level_from_name(const char *name, enum log_level *levelp)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*levelp = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	int saved = errno;
	char msg[1024], safe[ESCAPE_SIZE(1024)];
	const char *base = strrchr(file, '/');
	va_list ap;

	if (level > threshold)
		goto out;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Where in the source: for developers, at debug level. */
	if (threshold >= LOG_DEBUG)
		fprintf(stderr, "%s: %s: %s [%s:%d]\n", prog_name, names[level],
			escape_string(safe, sizeof(safe), msg), base ? base + 1 : file, line);
	else
		fprintf(stderr, "%s: %s: %s\n", prog_name, names[level],
			escape_string(safe, sizeof(safe), msg));
out:
	errno = saved;
}
