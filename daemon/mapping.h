/* SPDX-License-Identifier: MIT */
/*
 * The memory type each devmem region really gets (core/memtype.h's rule on this machine's
 * /proc/iomem and PAT list), and the once-per-region warning when a cacheable region is not
 * served cached.
 */
#ifndef DAEMON_MAPPING_H
#define DAEMON_MAPPING_H

#include <stdbool.h>

#include "common/diag.h"
#include "core/dt.h"
#include "core/memtype.h"

/* What the rule reads: /proc/iomem once per start, the PAT list after each region's mmap. */
struct mapping_facts {
	char *iomem; /* /proc/iomem, NULL when unreadable */
	char *pat;   /* x86: the PAT list as last read, NULL when unreadable or not read yet */
};

/* Reads /proc/iomem. finish() frees what was read; on a zeroed object it does nothing. */
void mapping_facts_init(struct mapping_facts *facts);
void mapping_facts_finish(struct mapping_facts *facts);

/*
 * The type of region @dr mapped from the memory device (@sync: opened with O_SYNC; @is_file: a
 * regular file standing in for it in tests, which is page cache: cached). Warns to @diag when
 * @dr asks cacheable memory and does not get it cached, saying why and what to change.
 */
void mapping_devmem(struct mapping_facts *facts, const struct dt_region *dr, uint64_t map_phys,
		    uint64_t map_len, bool sync, bool is_file, struct memtype_result *out,
		    const struct diag *diag);

#endif
