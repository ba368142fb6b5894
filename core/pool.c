/* SPDX-License-Identifier: MIT */
/*
 * The shared multi-heap pool (see pool.h). Regions are few (a board has a handful), so the
 * first-fit search by attribute is a plain loop in device-tree order; each region's allocator
 * does the real work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

struct pool {
	struct pool_region *regions;
	size_t n_regions;
	uint64_t granule;
	struct pool_hooks hooks;
};

/* The smallest granule (a power of two) the allocator accepts for a region of @size bytes. */
static uint64_t granule_for(uint64_t base, uint64_t size)
{
	uint64_t g = BUDDY_MIN_GRANULE;

	while (g < (UINT64_C(1) << 62) && buddy_metadata_size(base, size, g) == 0)
		g <<= 1;
	return g;
}

static int region_init(struct pool_region *r, const struct dt_region *src, uint64_t granule,
		       const struct diag *diag)
{
	int ret;

	memcpy(r->label, src->label, sizeof(r->label));

	r->base = src->base;
	r->size = src->size;
	r->attr = src->attr;
	r->no_map = src->no_map;
	ret = buddy_create(r->base, r->size, granule, &r->buddy);
	if (ret == -EINVAL)
		diag_report(diag, DIAG_ERROR,
			    "Region %s (%s): holds no whole granule of %llu bytes", r->label,
			    src->path, (unsigned long long)granule);
	else if (ret == -E2BIG)
		diag_report(
			diag, DIAG_ERROR,
			"Region %s (%s): too large for a granule of %llu bytes; use %llu or more",
			r->label, src->path, (unsigned long long)granule,
			(unsigned long long)granule_for(r->base, r->size));
	else if (ret < 0)
		diag_report(diag, DIAG_ERROR, "Could not create the allocator of region %s: %s",
			    r->label, strerror(-ret));
	return ret;
}

int pool_create(const struct dt_config *cfg, uint64_t granule, const struct pool_hooks *hooks,
		const struct diag *diag, struct pool **poolp)
{
	struct pool *pool;
	int ret = 0;

	if (!buddy_granule_valid(granule)) {
		diag_report(diag, DIAG_ERROR,
			    "Granule %llu is not a power of two of at least %d bytes",
			    (unsigned long long)granule, BUDDY_MIN_GRANULE);
		return -EINVAL;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->granule = granule;
	if (hooks)
		pool->hooks = *hooks;
	pool->regions = calloc(cfg->n_regions ? cfg->n_regions : 1, sizeof(*pool->regions));
	if (!pool->regions) {
		ret = -ENOMEM;
		goto err_pool;
	}
	pool->n_regions = cfg->n_regions;
	for (size_t i = 0; i < cfg->n_regions; i++) {
		int r = region_init(&pool->regions[i], &cfg->regions[i], granule, diag);

		pool->regions[i].index = (uint32_t)i;
		if (r < 0 && ret == 0)
			ret = r; /* go on: report every region that does not fit */
	}
	if (ret < 0)
		goto err_pool;
	*poolp = pool;
	return 0;

err_pool:
	pool_destroy(pool);
	return ret;
}

void pool_destroy(struct pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; i < pool->n_regions; i++)
		buddy_destroy(pool->regions[i].buddy);
	free(pool->regions);
	free(pool);
}

void pool_set_unmap(struct pool *pool, void (*unmap)(void *data, void *addr, size_t len),
		    void *data)
{
	for (size_t i = 0; i < pool->n_regions; i++)
		buddy_set_unmap(pool->regions[i].buddy, unmap, data);
}

void pool_set_populate(struct pool *pool, void (*populate)(void *data, void *addr, size_t len))
{
	for (size_t i = 0; i < pool->n_regions; i++)
		buddy_set_populate(pool->regions[i].buddy, populate);
}

size_t pool_n_regions(const struct pool *pool)
{
	return pool->n_regions;
}

const struct pool_region *pool_region(const struct pool *pool, size_t index)
{
	return index < pool->n_regions ? &pool->regions[index] : NULL;
}

uint64_t pool_granule(const struct pool *pool)
{
	return pool->granule;
}

static int zero(struct pool *pool, const struct pool_block *blk, uint64_t from)
{
	if (!pool->hooks.zero || from >= blk->size)
		return 0;
	return pool->hooks.zero(pool->hooks.data, &pool->regions[blk->region], blk->addr + from,
				blk->size - from);
}

/* First fit by attribute, in device-tree order; nothing is zeroed yet. */
static int alloc_raw(struct pool *pool, enum smh_reg_attr attr, uint64_t size, uint64_t align,
		     struct pool_block *blk)
{
	if (size == 0 || (unsigned)attr >= SMH_REG_ATTR_NUM || (align & (align - 1)))
		return -EINVAL;
	for (size_t i = 0; i < pool->n_regions; i++) {
		struct pool_region *r = &pool->regions[i];

		if (r->attr != attr || r->disabled)
			continue;
		if (buddy_alloc(r->buddy, size, align, &blk->addr, &blk->size) == 0) {
			blk->region = (uint32_t)i;
			blk->tag = 0;
			return 0;
		}
	}
	return -ENOMEM;
}

int pool_alloc(struct pool *pool, enum smh_reg_attr attr, uint64_t size, uint64_t align,
	       struct pool_block *blk)
{
	struct pool_block b;
	int ret;

	ret = alloc_raw(pool, attr, size, align, &b);
	if (ret < 0)
		return ret;
	ret = zero(pool, &b, 0);
	if (ret < 0) {
		buddy_free(pool->regions[b.region].buddy, b.addr, b.size);
		return ret;
	}
	*blk = b;
	return 0;
}

/* The region of a live block whose recorded size matches, or NULL. */
static struct pool_region *live_region(struct pool *pool, const struct pool_block *blk)
{
	uint64_t size;

	if (blk->region >= pool->n_regions)
		return NULL;
	if (buddy_alloc_size(pool->regions[blk->region].buddy, blk->addr, &size) < 0)
		return NULL;
	return size == blk->size ? &pool->regions[blk->region] : NULL;
}

int pool_free(struct pool *pool, const struct pool_block *blk)
{
	struct pool_region *r = live_region(pool, blk);

	if (!r)
		return -EINVAL;
	return buddy_free(r->buddy, blk->addr, blk->size);
}

static int move(struct pool *pool, struct pool_block *blk, uint64_t size, uint64_t align)
{
	struct pool_region *old = &pool->regions[blk->region];
	struct pool_block nb;
	uint64_t keep;
	int ret;

	if (!pool->hooks.copy)
		return -ENOTSUP;
	ret = alloc_raw(pool, old->attr, size, align, &nb);
	if (ret < 0)
		return ret;
	keep = blk->size < nb.size ? blk->size : nb.size;
	ret = pool->hooks.copy(pool->hooks.data, &pool->regions[nb.region], nb.addr, old, blk->addr,
			       keep);
	if (ret == 0)
		ret = zero(pool, &nb, keep);
	if (ret < 0) {
		buddy_free(pool->regions[nb.region].buddy, nb.addr, nb.size);
		return ret;
	}
	buddy_free(old->buddy, blk->addr, blk->size);
	nb.tag = blk->tag;
	*blk = nb;
	return 0;
}

int pool_realloc(struct pool *pool, struct pool_block *blk, uint64_t size, uint64_t align)
{
	struct pool_region *r = live_region(pool, blk);
	uint64_t old_size, new_size;
	int ret;

	if (!r || size == 0 || (align & (align - 1)))
		return -EINVAL;
	old_size = blk->size;
	ret = buddy_resize(r->buddy, blk->addr, size, &new_size);
	if (ret == -ENOMEM)
		return move(pool, blk, size, align);
	if (ret < 0)
		return ret;
	blk->size = new_size;
	ret = zero(pool, blk, old_size);
	if (ret < 0) {
		/* Give the grown part back: shrinking in place cannot fail. */
		buddy_resize(r->buddy, blk->addr, old_size, NULL);
		blk->size = old_size;
	}
	return ret;
}

int pool_reserve(struct pool *pool, uint32_t region, uint64_t addr, uint64_t size,
		 struct pool_block *blk)
{
	struct pool_region *r;
	int ret;

	if (region >= pool->n_regions)
		return -EINVAL;
	r = &pool->regions[region];
	ret = buddy_reserve(r->buddy, addr, size);
	if (ret < 0)
		return ret;
	*blk = (struct pool_block){ .region = region, .addr = addr };
	buddy_alloc_size(r->buddy, addr, &blk->size);
	return 0;
}

int pool_region_disable(struct pool *pool, size_t index)
{
	if (index >= pool->n_regions)
		return -EINVAL;
	pool->regions[index].disabled = true;
	return 0;
}

int pool_region_stats(const struct pool *pool, size_t index, struct buddy_stats *stats)
{
	if (index >= pool->n_regions)
		return -EINVAL;
	buddy_stats(pool->regions[index].buddy, stats);
	return 0;
}
