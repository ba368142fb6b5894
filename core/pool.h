/* SPDX-License-Identifier: MIT */
/*
 * The shared multi-heap pool: one buddy allocator per device-tree region, and the RTOS
 * manager's semantics on top. A request names an attribute; regions with that attribute are
 * tried in device-tree order and the first that can hold the request serves it. There is no
 * fallback to another attribute.
 *
 * The pool touches no memory itself. Zeroing what it hands out and copying what realloc moves
 * are done through hooks that the owner of the mappings (the daemon) provides; without hooks
 * (tests, `smhd --check`) nothing is touched.
 */
#ifndef CORE_POOL_H
#define CORE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "core/buddy.h"
#include "core/dt.h"
#include "smh/attr.h"

#define POOL_DEFAULT_GRANULE 64

struct buddy;

struct pool_region {
	uint32_t index; /* in the pool: device-tree order */
	char label[DT_LABEL_MAX];
	uint64_t base; /* physical address of the region's first byte */
	uint64_t size; /* bytes in the device tree (the buddy may use fewer, see its stats) */
	enum smh_reg_attr attr;
	bool no_map;
	bool disabled; /* not served (its memory could not be mapped) */
	struct buddy *buddy;
};

/* An allocation: where it lives. Plain data; the pool keeps the truth in its allocators. */
struct pool_block {
	uint32_t region; /* index into the pool's regions */
	/*
	 * Not the pool's (the padding's room, for its user's records): the pool never reads it,
	 * keeps it when it changes a block (pool_realloc()) and sets 0 in one it makes.
	 */
	uint32_t tag;
	uint64_t addr; /* physical address of the first byte */
	uint64_t size; /* usable bytes: the request rounded up to the granule */
};

struct pool_hooks {
	/* Sets [@addr, @addr + @len) of @region to zero. Returns 0 or a negative errno. */
	int (*zero)(void *data, const struct pool_region *region, uint64_t addr, uint64_t len);
	/* Copies @len bytes between regions (or within one). Returns 0 or a negative errno. */
	int (*copy)(void *data, const struct pool_region *dst, uint64_t dst_addr,
		    const struct pool_region *src, uint64_t src_addr, uint64_t len);
	void *data;
};

struct pool;

/*
 * Builds a pool over @regions (copied; @cfg can be finished afterwards) with the given granule
 * (a power of two, at least BUDDY_MIN_GRANULE). @hooks may be NULL; it is copied. A region
 * that cannot hold one granule, or has too many of them, is reported to @diag by label.
 * Returns 0 or a negative errno (-EINVAL, -E2BIG, -ENOMEM).
 */
int pool_create(const struct dt_config *cfg, uint64_t granule, const struct pool_hooks *hooks,
		const struct diag *diag, struct pool **poolp);

/* buddy_set_unmap() for every region's allocator. */
void pool_set_unmap(struct pool *pool, void (*unmap)(void *data, void *addr, size_t len),
		    void *data);

/* buddy_set_populate() for every region's allocator (after pool_set_unmap()). */
void pool_set_populate(struct pool *pool, void (*populate)(void *data, void *addr, size_t len));

/* Frees the pool and its allocators. pool_destroy(NULL) does nothing. */
void pool_destroy(struct pool *pool);

size_t pool_n_regions(const struct pool *pool);
const struct pool_region *pool_region(const struct pool *pool, size_t index);
uint64_t pool_granule(const struct pool *pool);

/*
 * Allocates @size bytes with attribute @attr, aligned to @align (a power of two, 0 for none)
 * from the first region in device-tree order that can hold it, and zeroes them through the
 * zero hook if there is one (smhd has none: it keeps free memory zero instead, see
 * daemon/broker.h). Fills @blk.
 * Returns 0 or a negative errno: -EINVAL for size 0, an attribute out of range or an alignment
 * that is not a power of two; -ENOMEM when no region of that attribute can hold it; a zero
 * hook's error (nothing is allocated then).
 */
int pool_alloc(struct pool *pool, enum smh_reg_attr attr, uint64_t size, uint64_t align,
	       struct pool_block *blk);

/*
 * Frees @blk. Returns 0 or -EINVAL when @blk does not describe a live allocation of this pool
 * (bad region, unknown address, wrong size, double free); nothing is changed then.
 */
int pool_free(struct pool *pool, const struct pool_block *blk);

/*
 * Resizes @blk to @size bytes: in place when its allocator allows (the grown part is zeroed),
 * otherwise by allocating a new block of the same attribute aligned to @align, copying the
 * contents through the copy hook, zeroing the rest and freeing the old one. Updates @blk.
 * On failure @blk and its memory are untouched.
 * Returns 0 or a negative errno: -EINVAL for size 0 or a @blk that is not live; -ENOMEM when
 * nothing can hold the new size; -ENOTSUP when the block must move and there is no copy hook;
 * a hook's error.
 */
int pool_realloc(struct pool *pool, struct pool_block *blk, uint64_t size, uint64_t align);

/*
 * Takes [@addr, @addr + @size) of region @region as a live allocation (see buddy_reserve()),
 * touching no memory. Fills @blk (the size rounded up to the granule).
 * Returns 0 or a negative errno: -EINVAL (bad region, address or size), -EBUSY (not all free).
 */
int pool_reserve(struct pool *pool, uint32_t region, uint64_t addr, uint64_t size,
		 struct pool_block *blk);

/* Stops serving region @index (allocations skip it). Returns 0 or -EINVAL for a bad index. */
int pool_region_disable(struct pool *pool, size_t index);

/* Statistics of region @index. Returns 0 or -EINVAL for a bad index. */
int pool_region_stats(const struct pool *pool, size_t index, struct buddy_stats *stats);

#endif
