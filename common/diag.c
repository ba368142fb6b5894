/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "common/diag.h"

void diag_report(const struct diag *diag, enum diag_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!diag || !diag->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag->report(diag->data, level, msg);
}

const char *diag_level_name(enum diag_level level)
{
	return level == DIAG_ERROR ? "error" : "warning";
}
