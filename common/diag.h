/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics from pure modules. The device-tree reader and the pool print nothing themselves:
 * they hand each message to a caller-supplied sink, which smhd logs, smhctl prints or turns into
 * JSON, and tests record.
 */
#ifndef COMMON_DIAG_H
#define COMMON_DIAG_H

enum diag_level {
	DIAG_ERROR,   /* the configuration is invalid */
	DIAG_WARNING, /* something was skipped or looks wrong, the rest is usable */
};

struct diag {
	void (*report)(void *data, enum diag_level level, const char *msg);
	void *data;
};

/* Formats and hands a message to @diag; @diag may be NULL (message dropped). */
void diag_report(const struct diag *diag, enum diag_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *diag_level_name(enum diag_level level);

#endif
