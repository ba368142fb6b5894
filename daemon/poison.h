/* SPDX-License-Identifier: MIT */
/*
 * Use-after-free detection (smhd --debug-poison): the pattern a freed block is filled with, the
 * check of that pattern when the block leaves the scrubber's quarantine (daemon/scrub.h), and
 * what a block found written after free is reported with.
 *
 * The fill and the check touch only the region's daemon mapping (backend_region()), with
 * aligned 64-bit accesses: volatile ones on Device memory, where memset/memcmp may fault.
 * They run on the scrubber's thread, never on the loop.
 */
#ifndef DAEMON_POISON_H
#define DAEMON_POISON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/backend.h"

/* Every byte of a quarantined block holds this. */
#define POISON_BYTE 0xa5

/* The reports the daemon keeps for `smhctl poison` (the log has them all). */
#define POISON_LAST 8

/* Whose memory a freed block was: the allocation and the last client that held it. */
struct poison_origin {
	uint64_t handle;
	pid_t pid;
	char comm[32];
};

/* A block written after it was freed. */
struct poison_report {
	uint32_t region;
	uint64_t offset;  /* the block's offset in the region's fd, as clients map it */
	uint64_t size;    /* the block's bytes */
	uint64_t first;   /* offset in the block of the first byte changed */
	uint64_t changed; /* bytes changed */
	struct poison_origin origin;
};

/* What `smhctl poison` shows. */
struct poison_stats {
	bool enabled;
	uint64_t n_reports;        /* blocks found written after free since smhd started */
	uint64_t quarantine_bytes; /* filled, waiting to be checked */
	size_t n_last;
	struct poison_report last[POISON_LAST]; /* the latest, oldest first */
};

/* Fills [@addr, @addr + @len) of region @region (multiples of 8) with POISON_BYTE. */
void poison_fill(struct backend *backend, size_t region, uint64_t addr, uint64_t len);

/*
 * Checks that [@addr, @addr + @len) of region @region (multiples of 8) holds POISON_BYTE
 * everywhere. Returns the number of bytes that do not (0: untouched); then *firstp is the
 * offset from @addr of the first of them.
 */
uint64_t poison_check(struct backend *backend, size_t region, uint64_t addr, uint64_t len,
		      uint64_t *firstp);

#endif
