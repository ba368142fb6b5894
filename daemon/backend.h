/* SPDX-License-Identifier: MIT */
/*
 * Memory backends: where the bytes of each region live, the fd clients map them through, and
 * the daemon's own mapping of each region (for zeroing and for moving realloc'd contents).
 *
 * - memfd: each region is anonymous shared memory (memfd_create). The physical address is the
 *   device tree's; nothing of the board is touched. For development machines, CI and demos.
 * - devmem: each region is mapped from a memory device (default /dev/mem; a plain file in
 *   tests). Non-cacheable regions go through an fd opened with O_SYNC, cacheable ones through
 *   one opened without; the fd offset of a byte is its physical address. Each region is mapped
 *   once, with one cache type (x86's PAT refuses or downgrades a second, different mapping).
 *
 * Either way the fd offset of physical address P of region r is P - r.fd_phys_base: clients
 * map [offset of the region's first page, ...) and find a buffer at its offset.
 */
#ifndef DAEMON_BACKEND_H
#define DAEMON_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "core/dt.h"
#include "core/memtype.h"
#include "core/pool.h"

enum backend_kind {
	BACKEND_DEVMEM,
	BACKEND_MEMFD,
};

struct backend_options {
	enum backend_kind kind;
	const char *mem_path; /* devmem: the memory device */
	/* devmem: a region the kernel refuses is an error (default: warn, serve the others). */
	bool strict;
	/*
	 * After a restart (docs/restart.md). memfd: the previous daemon's region memfds, one per
	 * region or -1 (borrowed: the backend dups them); one of the wrong size or without the
	 * seals is not used. devmem: keep the contents (do not zero the regions at start; the
	 * restore zeroes what is free).
	 */
	const int *memfds;
	bool keep_contents;
};

struct backend_region {
	bool usable;           /* mapped; false: refused, the pool must not serve it */
	int fd;                /* handed to clients; -1 when not usable */
	uint64_t fd_phys_base; /* physical address at fd offset 0 */
	unsigned char *map;    /* daemon's mapping, starting at the region's first page */
	size_t map_len;
	uint64_t map_phys;  /* physical address of map[0] */
	bool device_memory; /* accesses must be aligned words (no memset/memcpy) */
	enum memtype type;  /* the memory type the kernel gave the mapping (core/memtype.h) */
	bool kept;          /* holds the previous daemon's contents (see backend_options) */
	bool scrub_first;   /* contents unknown (devmem, not kept): scrub before serving */
	char mapping[64];   /* the attribute really obtained, for `smhctl regions` */
};

struct backend;

/*
 * Maps every region of @cfg (the pool numbers regions the same way). A region the backend cannot map is reported to @diag (with the
 * reason and the fix) and left unusable, unless @opts->strict, which makes it an error.
 * memfd regions start zeroed. devmem regions are not zeroed here (memory left by firmware or a
 * previous user): their `scrub_first` is set, and the daemon scrubs them in the background
 * before it serves their memory (daemon/scrub.h).
 * Returns 0 or a negative errno (-ENODEV when no region at all is usable).
 */
int backend_create(const struct backend_options *opts, const struct dt_config *cfg,
		   const struct diag *diag, struct backend **backendp);

/* Unmaps and closes everything. backend_destroy(NULL) does nothing. */
void backend_destroy(struct backend *backend);

const char *backend_name(const struct backend *backend);

/* The state of region @index (as numbered by the pool). */
const struct backend_region *backend_region(const struct backend *backend, size_t index);

/* Sets [@addr, @addr + @len) of region @index to zero. @addr and @len are multiples of 8. */
void backend_zero(struct backend *backend, size_t index, uint64_t addr, uint64_t len);

/*
 * What backend_scrub() learnt of a memfd's pages: [start, end) of region @region is a hole
 * (reads as zero) or holds data. It stays true only for memory that was free when it was
 * learnt (nobody writes it since): the scrubber keeps one per batch of queued blocks. Zeroed,
 * it knows nothing.
 */
struct backend_seen {
	bool known, hole;
	size_t region;
	uint64_t start, end;
};

/*
 * Whether backend_scrub() gives a freed block of @size in region @index back to the kernel
 * (memfd, a block of 2 MiB or a 16th of the region), rather than zeroing it in place.
 */
bool backend_punches(const struct backend *backend, size_t index, uint64_t size);

/*
 * Zeroes [@addr, @addr + @len) of region @index now, when it is small (a page to 16 KiB) in a
 * memfd region and all its pages are in memory (mincore()); else does nothing. Called on the
 * loop, for what scrub_queue() need not hand to the thread. Returns whether it zeroed it.
 */
bool backend_zero_now(struct backend *backend, size_t index, uint64_t addr, uint64_t len);

/*
 * Scrubs [@addr, @addr + @len) of region @index (multiples of 8). memfd: with @punch (see
 * backend_punches(); the range is part of a block that large), its whole pages go back to the
 * kernel (they read back as zeros); otherwise only the pages holding data are zeroed, pages
 * never written are left as they are (holes, zero, not resident). @seen (may be NULL) carries
 * what was learnt from one call to the next. devmem takes aligned word stores. Touches only the
 * region's mapping and fd: the scrubber's thread calls it.
 */
void backend_scrub(struct backend *backend, size_t index, uint64_t addr, uint64_t len, bool punch,
		   struct backend_seen *seen);

/* Copies @len bytes (a multiple of 8, 8-aligned addresses) between regions. */
void backend_copy(struct backend *backend, size_t dst, uint64_t dst_addr, size_t src,
		  uint64_t src_addr, uint64_t len);

/* Pool hooks that copy through the backend (zeroing is the caller's, see server). */
struct pool_hooks backend_pool_hooks(struct backend *backend);

#endif
