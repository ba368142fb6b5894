/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator over one physical address range, with trimmed allocations and contiguous runs.
 *
 * A pure module: no I/O, no globals, no recursion, nothing written into the managed memory.
 * It works on addresses (the caller's physical addresses), never on pointers into the region.
 *
 * The range is cut into granules (a power of two, the smallest block), and its free memory
 * into maximal blocks that are naturally aligned in the address space: a block of granule << k
 * bytes starts at an address that is a multiple of granule << k; two free buddies never
 * coexist, they are merged. A request whose size is a power of two takes the smallest free
 * block that holds it; one whose alignment is larger than its size, the smallest free block of
 * at least the alignment (as the Linux buddy does). Any other request, or a power of two for
 * which no block is free, takes the first run of adjacent free blocks, by address, that holds
 * its size from an aligned start, instead of a power-of-two block whose tail requests of that
 * size could not use. Either way an allocation
 * keeps only its size rounded up to the granule, and what it does not use stays free. Freed
 * memory coalesces at once.
 *
 * Cost: alloc, free, resize and reserve are O(log n) for n free runs (an aligned request that
 * is not a power of two may also test up to 32 misaligned runs, see buddy.c); nothing scans
 * the region (buddy_walk() and buddy_check() excepted, which are for pictures and tests).
 * Metadata: per free run and per live allocation, in memory that grows and shrinks with them
 * (buddy_metadata_bytes()); nothing grows with the size of the range.
 */
#ifndef CORE_BUDDY_H
#define CORE_BUDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One order per bit of a granule index, which is 32 bits wide. */
#define BUDDY_MAX_ORDERS 33

/* The smallest granule accepted (aligned 64-bit access stays possible inside every block). */
#define BUDDY_MIN_GRANULE 8

struct buddy;

struct buddy_stats {
	uint64_t granule;
	uint64_t total;        /* managed bytes: whole granules inside the range */
	uint64_t free;         /* bytes in free blocks */
	uint64_t used;         /* total - free: bytes held by allocations */
	uint64_t largest_free; /* bytes of the largest free block */
	uint64_t largest_run;  /* bytes of the largest run of free granules (may span blocks) */
	uint64_t n_allocs;     /* live allocations */
	uint32_t n_free_blocks[BUDDY_MAX_ORDERS]; /* free blocks of granule << k bytes */
	unsigned n_orders; /* orders that can exist in this range: entries in use above */
	/*
	 * External fragmentation in per mille: how far the largest free block falls short of the
	 * largest block this much free memory could form in this range (the power of two at or
	 * below `free`, capped by the range's largest block): 1000 * (1 - largest_free / ideal).
	 * 0 when nothing is free, or when all free memory is as merged as it can be.
	 */
	unsigned fragmentation;
};

/* An extent as buddy_walk() sees it: an allocation or a free block, in address order. */
struct buddy_extent {
	uint64_t addr;
	uint64_t size;
	bool allocated;
	unsigned order; /* free blocks: size is granule << order; allocations: 0 */
};

/* Whether @granule is one buddy_create() accepts: a power of two, at least BUDDY_MIN_GRANULE. */
bool buddy_granule_valid(uint64_t granule);

/*
 * Bytes of metadata buddy_create() allocates for this range, or 0 when the arguments are
 * invalid (see buddy_create()). The same for every range: metadata grows with allocations
 * (see buddy_metadata_bytes()), not with the size of the range.
 */
size_t buddy_metadata_size(uint64_t base, uint64_t size, uint64_t granule);

/*
 * Bytes of metadata @buddy holds now (its own accounting, without the C library's overhead):
 * about 32 to 64 bytes per run of free memory and 10 to 21 bytes per live allocation, given
 * back as they are freed.
 */
size_t buddy_metadata_bytes(const struct buddy *buddy);

/*
 * Creates an allocator for the bytes [base, base + size). @granule must be a power of two of
 * at least BUDDY_MIN_GRANULE. Partial granules at either end of the range are not used.
 * Returns 0 or a negative errno: -EINVAL for a bad granule, an empty or wrapping range, or a
 * range without one whole granule; -E2BIG when it has UINT32_MAX granules or more (choose a
 * larger granule); -ENOMEM.
 */
int buddy_create(uint64_t base, uint64_t size, uint64_t granule, struct buddy **buddyp);

/* Frees the allocator (not the memory it managed). buddy_destroy(NULL) does nothing. */
void buddy_destroy(struct buddy *buddy);

/*
 * How the allocator gives back the mapped memory of its index as it shrinks or moves (old
 * tables, shrunk arrays): @unmap(@data, addr, len) takes it and must munmap() it, off the
 * caller's thread if it likes; NULL (the default): munmap() at once. Set it back to NULL before
 * whatever @unmap hands the memory to goes away.
 */
void buddy_set_unmap(struct buddy *buddy, void (*unmap)(void *data, void *addr, size_t len),
		     void *data);

/*
 * After buddy_set_unmap() (which clears it): @populate(unmap's data, addr, len) is told of each
 * new mapped table of live allocations before the allocator writes it, so that another thread
 * can fault it in (MADV_POPULATE_WRITE) and the caller's does not take a page fault per page.
 * It must not change the memory; it hears of a table before the unmap function gets it. The
 * allocator goes on with the table it has until the new one's last page is in memory
 * (mincore()), so @populate faults the pages in in ascending order, as MADV_POPULATE_WRITE
 * does; where it must resize (3/4 load, or below 3/32), it takes the new table all the same.
 */
void buddy_set_populate(struct buddy *buddy, void (*populate)(void *data, void *addr, size_t len));

/*
 * Allocates @size bytes whose address is a multiple of @align (a power of two; 0 or anything
 * up to the granule means no constraint beyond the granule). Sets *addrp and, if @sizep is not
 * NULL, *sizep to the usable size: @size rounded up to the granule.
 * Returns 0 or a negative errno: -EINVAL for size 0 or an alignment that is not a power of
 * two; -ENOMEM when nothing can hold it (for an alignment larger than the size: no free block
 * of @align bytes or more exists; otherwise no run of free granules holds the size rounded up
 * to the granule from an address aligned to @align), or out of memory for metadata.
 */
int buddy_alloc(struct buddy *buddy, uint64_t size, uint64_t align, uint64_t *addrp,
		uint64_t *sizep);

/*
 * Frees the allocation that starts at @addr. @size must be the size it was allocated (or last
 * resized) with, or anything that rounds up to the same number of granules; 0 skips that check.
 * Returns 0 or a negative errno: -EINVAL when @addr is not the start of a live allocation
 * (unknown address, double free) or @size does not match; nothing is changed then.
 */
int buddy_free(struct buddy *buddy, uint64_t addr, uint64_t size);

/*
 * Resizes the allocation at @addr in place to @size bytes: shrinking always succeeds and gives
 * the tail back; growing succeeds when the memory right after it is free. Sets *sizep (if not
 * NULL) to the new usable size.
 * Returns 0 or a negative errno: -EINVAL for size 0 or when @addr is not a live allocation;
 * -ENOMEM when it cannot grow in place (the allocation is unchanged).
 */
int buddy_resize(struct buddy *buddy, uint64_t addr, uint64_t size, uint64_t *sizep);

/*
 * Marks [@addr, @addr + @size) as one live allocation, as if buddy_alloc() had returned it: the
 * way a restarted daemon takes back the blocks its clients still hold. @addr must be
 * granule-aligned; @size is rounded up to the granule. The free blocks covering the range are
 * split, and what lies outside it stays free, in maximal blocks as ever.
 * Returns 0 or a negative errno: -EINVAL for size 0, an unaligned address, or a range not
 * inside the managed one; -EBUSY when a granule of it is not free; -ENOMEM out of memory for
 * metadata (nothing is changed then). O(log n) for n free runs.
 */
int buddy_reserve(struct buddy *buddy, uint64_t addr, uint64_t size);

/* Usable size of the live allocation at @addr. Returns 0 or -EINVAL if there is none. */
int buddy_alloc_size(const struct buddy *buddy, uint64_t addr, uint64_t *sizep);

/* Fills @stats. O(number of orders). */
void buddy_stats(const struct buddy *buddy, struct buddy_stats *stats);

/*
 * Calls @fn for every allocation and free block in address order, until it returns non-zero,
 * which buddy_walk() then returns. Returns 0 when the walk completed.
 */
int buddy_walk(const struct buddy *buddy, int (*fn)(void *data, const struct buddy_extent *extent),
	       void *data);

/*
 * Checks every invariant (allocations and free runs tile the range, runs maximal, the run
 * tree ordered, balanced and its per-subtree figures right, the allocation table consistent,
 * the free block counters those of the runs' decompositions). O(n); for tests. Returns 0 or -EUCLEAN with
 * a description of the first violation in @why (if not NULL, at least 128 bytes).
 */
int buddy_check(const struct buddy *buddy, char *why, size_t why_size);

#endif
