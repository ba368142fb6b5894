/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator over one physical address range, with trimmed allocations.
 *
 * A pure module: no I/O, no globals, no recursion, nothing written into the managed memory.
 * It works on addresses (the caller's physical addresses), never on pointers into the region.
 *
 * The range is cut into granules (a power of two, the smallest block) and carved into maximal
 * blocks that are naturally aligned in the address space: a block of granule << k bytes starts
 * at an address that is a multiple of granule << k. An allocation takes the smallest free block
 * that holds it, then gives the unused tail back to the free lists, so it keeps only its size
 * rounded up to the granule. An alignment larger than the size is met by taking a block of at
 * least the alignment (as the Linux buddy does): a smaller free block that happens to start at
 * an aligned address is not searched for, which keeps every call bounded. Freed memory
 * coalesces with free buddies at once.
 *
 * Cost: alloc, free and resize take O(log n) list operations for n granules; nothing scans
 * the region (buddy_walk() and buddy_check() excepted, which are for pictures and tests).
 * Metadata: BUDDY_META_PER_GRANULE bytes per granule plus a constant, in one allocation whose
 * size buddy_metadata_size() tells up front.
 */
#ifndef CORE_BUDDY_H
#define CORE_BUDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One order per bit of a granule index, which is 32 bits wide. */
#define BUDDY_MAX_ORDERS 33

/* Per-granule metadata: two 32-bit list links and one state byte. */
#define BUDDY_META_PER_GRANULE 9

/* The smallest granule accepted (aligned 64-bit access stays possible inside every block). */
#define BUDDY_MIN_GRANULE 8

struct buddy;

struct buddy_stats {
	uint64_t granule;
	uint64_t total;        /* managed bytes: whole granules inside the range */
	uint64_t free;         /* bytes in free blocks */
	uint64_t used;         /* total - free: bytes held by allocations */
	uint64_t largest_free; /* bytes of the largest free block */
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
 * invalid (see buddy_create()).
 */
size_t buddy_metadata_size(uint64_t base, uint64_t size, uint64_t granule);

/*
 * Creates an allocator for the bytes [base, base + size). @granule must be a power of two of
 * at least BUDDY_MIN_GRANULE. Partial granules at either end of the range are not used.
 * Returns 0 or a negative errno: -EINVAL for a bad granule, an empty or wrapping range, or a
 * range without one whole granule; -E2BIG when it has UINT32_MAX granules or more, or more
 * metadata than size_t can count (choose a larger granule); -ENOMEM.
 */
int buddy_create(uint64_t base, uint64_t size, uint64_t granule, struct buddy **buddyp);

/* Frees the allocator (not the memory it managed). buddy_destroy(NULL) does nothing. */
void buddy_destroy(struct buddy *buddy);

/*
 * Allocates @size bytes whose address is a multiple of @align (a power of two; 0 or anything
 * up to the granule means no constraint beyond the granule). Sets *addrp and, if @sizep is not
 * NULL, *sizep to the usable size: @size rounded up to the granule.
 * Returns 0 or a negative errno: -EINVAL for size 0 or an alignment that is not a power of
 * two; -ENOMEM when no free block of max(size rounded up to a power of two, align) bytes
 * exists.
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
 * split, and what lies outside it goes back to the free lists, maximal as ever.
 * Returns 0 or a negative errno: -EINVAL for size 0, an unaligned address, or a range not
 * inside the managed one; -EBUSY when a granule of it is not free (nothing is changed then).
 * O(log n) list operations.
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
 * Checks every invariant (extents tile the range, blocks aligned, free lists consistent, no
 * two free buddies of one order, counters right). O(n); for tests. Returns 0 or -EUCLEAN with
 * a description of the first violation in @why (if not NULL, at least 128 bytes).
 */
int buddy_check(const struct buddy *buddy, char *why, size_t why_size);

#endif
