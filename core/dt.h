/* SPDX-License-Identifier: MIT */
/*
 * Device-tree reader: finds the shared-multi-heap regions in a flattened device tree blob.
 *
 * Regions are children of /reserved-memory whose `compatible` list contains
 * "shared-multi-heap" (binding: dts/bindings/shared-multi-heap.yaml). The reader is pure: it
 * depends on libfdt and on the attribute table only, prints nothing, and hands every warning
 * and error to a struct diag sink. Messages name the node (its full path) and the reason.
 */
#ifndef CORE_DT_H
#define CORE_DT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "smh/attr.h"

/* Longest label plus its NUL; the same as the region field clients receive. */
#define DT_LABEL_MAX 32

/* The largest blob dt_blob_read() accepts; real ones are a few KiB to a few hundred KiB. */
#define DT_BLOB_MAX (16u << 20)

/* More shared-multi-heap regions than this make the configuration invalid. */
#define DT_REGIONS_MAX 1024

/* Problems reported one by one; the rest of a hostile blob's are counted in one message. */
#define DT_MESSAGES_MAX 100

struct dt_region {
	char label[DT_LABEL_MAX]; /* unique; `label` property or node name, "-N" for reg pair N */
	char *path;               /* node path, e.g. "/reserved-memory/reserved@42000000"; owned */
	uint64_t base;            /* physical address of the first byte */
	uint64_t size;            /* bytes, > 0; base + size - 1 does not overflow */
	enum smh_reg_attr attr;
	bool no_map; /* the node has `no-map` */
};

struct dt_config {
	struct dt_region *regions; /* in device-tree order (node order, then reg pair order) */
	size_t n_regions;
};

/*
 * Reads the blob in the file at @path into a new buffer (free() it), sized by the header's
 * totalsize: bytes past it (the padding of /sys/firmware/fdt) are not read. A missing or
 * unreadable file, a bad magic, a totalsize below the header's size or above DT_BLOB_MAX, and a
 * file shorter than totalsize are errors reported to @diag; *blobp is then left untouched.
 * Returns 0 or a negative errno (-EBADMSG for a malformed or truncated blob, -EFBIG when too
 * large, -ENOMEM, the system's errno when the file cannot be read).
 */
int dt_blob_read(const char *path, void **blobp, size_t *sizep, const struct diag *diag);

/*
 * Validates the blob (header, then the whole structure with fdt_check_full() where libfdt has
 * it) and collects the regions into @cfg, which must be zeroed by the caller. Every problem is
 * reported, not only the first. Nodes without `capability` and nodes whose `status` is neither
 * "okay" nor "ok" are skipped with a warning. A blob without /reserved-memory or without
 * matching nodes is valid and gives zero regions: whether that is acceptable is the caller's call.
 * On failure @cfg is left empty. @blob need not be aligned (an unaligned one is copied) and is
 * not referenced after the call: labels are copied and paths allocated, owned by @cfg.
 * A problem in /reserved-memory itself (#address-cells or #size-cells not 1 or 2, a non-empty
 * `ranges`) is an error on it and on each child that would otherwise have given regions.
 * Returns 0 or a negative errno (-EBADMSG for a corrupt blob, -EINVAL for an invalid
 * configuration, -ENOMEM).
 */
int dt_parse(const void *blob, size_t size, struct dt_config *cfg, const struct diag *diag);

/* dt_blob_read() then dt_parse(). Returns 0 or a negative errno as those do. */
int dt_load(const char *path, struct dt_config *cfg, const struct diag *diag);

/* Frees what @cfg holds and zeroes it. Safe on a zeroed config. */
void dt_config_finish(struct dt_config *cfg);

#endif
