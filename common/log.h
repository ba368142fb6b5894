/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log: one line per message on stderr, "smhd: LEVEL: message [file:line]", below a
 * level set at start. Logging preserves errno, so it can sit between a failing call and the
 * code that reads errno. The message is escaped (common/escape.h): clients' names may be
 * anything.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
void log_set_prog(const char *prog);
/* Parses "error", "warning", "info", "debug". Returns 0 or -EINVAL. */
int log_level_from_name(const char *name, enum log_level *levelp);

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...)   log_write(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warning(...) log_write(LOG_WARNING, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)    log_write(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...)   log_write(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
