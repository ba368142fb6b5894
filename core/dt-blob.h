/* SPDX-License-Identifier: MIT */
/* Device-tree reader, the blob side (private to core/dt*.c; dt_blob_read() is in dt.h). */
#ifndef CORE_DT_BLOB_H
#define CORE_DT_BLOB_H

#include <stddef.h>

#include "common/diag.h"

/*
 * Checks an untrusted blob of @size bytes (8-byte aligned) whole: header, tags, structure.
 * Reports one "Could not parse the device-tree blob: ..." error to @diag on failure.
 * Returns 0 or -EBADMSG.
 */
int dt_blob_check(const void *blob, size_t size, const struct diag *diag);

/* Reports libfdt's error @err as a corrupt blob. Returns -EBADMSG. */
int dt_blob_fdt_error(const struct diag *diag, int err);

#endif
