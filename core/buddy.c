/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator with trimmed allocations and contiguous runs (see buddy.h for the contract).
 *
 * Granules are numbered from 0 (the first whole granule of the range) to n - 1. Alignment is
 * judged on the absolute granule number (base_g + index), so a block of order k starts at an
 * address that is a multiple of granule << k even when the range itself is oddly placed.
 *
 * Design. Free memory is kept as maximal runs of free granules, in an AVL tree keyed by
 * address (buddy-index.c); live allocations as (start, length) in a hash table. The buddy's
 * free blocks are not stored: they are the canonical decomposition of each run into maximal
 * naturally aligned blocks (the greedy one: from the run's start, blocks grow to its most
 * aligned point, then shrink to its end), which is exactly the set a buddy allocator that
 * merges free buddies at once would hold. Each tree node carries, for its subtree, the longest
 * run and the bit set of block orders present, and the free block counts per order are kept
 * as runs come and go. Metadata is thus per run and per allocation (runs are never more than
 * allocations + 1), in arrays that grow and shrink with them; the region's size costs nothing.
 *
 * Placement. A request of m granules aligned to 2^a granules, k = max(ceil(log2 m), a):
 *  - when m is 2^k, or the alignment is larger than the size, the buddy's choice: the smallest
 *    free block of order >= k, the lowest such by address (one path down the tree on the order
 *    bits). A power of two leaves nothing over; an alignment larger than the size takes a
 *    block of the alignment, as the Linux buddy does, and leaves its tail free. A power of
 *    two for which no block is free falls back to the run search below (the alignment larger
 *    than the size does not: no block of the alignment, no allocation).
 *  - otherwise (m is not a power of two, and its alignment is not larger) a block of order k
 *    would leave a tail that requests of this size cannot use (16 NV12 1080p frames of 3,110,400 bytes in 64 MiB, where first fit packs 21), so the
 *    request takes the first run, by address, that holds m granules from a start aligned to
 *    2^a: a contiguous run of free buddy blocks, as the kernel's contiguous-range allocation
 *    gathers blocks off its buddy lists. Unaligned, that is one path down the tree on the
 *    longest-run figure. Aligned, the in-order walk tests the runs of at least m granules that
 *    the longest-run figure does not rule out; after 32 that are long enough but misaligned it
 *    takes the first run of m + 2^a - 1 granules (which must fit) in one path down, and walks
 *    on only if there is none (then the answer is -ENOMEM or a run the probes had not reached).
 * Either way the allocation keeps exactly its granules, and what is left of the run on either
 * side stays free (its blocks are those of the shorter runs): the waste is under a granule.
 *
 * Free gives [start, start + m) back, joining the runs that end at start and begin at its end.
 * Resize shrinks the same way, and grows into a run that begins right after the allocation.
 * Reserve takes a range out of the run that holds it. All are O(log n) tree operations for n
 * runs and O(1) expected table operations. Memory is made room for before anything changes,
 * so that a refused call changes nothing, and free never needs any (runs <= allocations + 1,
 * and the run array always has room for allocations + 1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buddy-index.h"
#include "core/buddy.h"

struct buddy {
	uint64_t base_g;    /* absolute granule number of granule 0 */
	uint32_t n;         /* granules */
	unsigned shift;     /* log2(granule) */
	unsigned n_orders;  /* orders 0 .. n_orders - 1 can exist: 2^(n_orders - 1) <= n */
	unsigned top_order; /* the largest block of the empty range */
	struct buddy_runs runs;
	struct buddy_allocs allocs;
};

static unsigned floor_log2(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static unsigned ceil_log2(uint64_t v)
{
	return v <= 1 ? 0 : floor_log2(v - 1) + 1;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t addr_of(const struct buddy *b, uint32_t i)
{
	return (b->base_g + i) << b->shift;
}

/* Index of the granule at @addr, which must be granule-aligned and inside the range. */
static int index_of(const struct buddy *b, uint64_t addr, uint32_t *ip)
{
	uint64_t g = addr >> b->shift;

	if (addr & ((UINT64_C(1) << b->shift) - 1))
		return -EINVAL;
	if (g < b->base_g || g - b->base_g >= b->n)
		return -EINVAL;
	*ip = (uint32_t)(g - b->base_g);
	return 0;
}

bool buddy_granule_valid(uint64_t granule)
{
	return is_pow2(granule) && granule >= BUDDY_MIN_GRANULE;
}

/* The whole granules of [base, base + size): [*firstp, *endp). Returns 0 or -EINVAL. */
static int granule_range(uint64_t base, uint64_t size, uint64_t granule, uint64_t *firstp,
			 uint64_t *endp)
{
	uint64_t mask = granule - 1, last;
	unsigned shift;

	if (!buddy_granule_valid(granule) || size == 0 || base + (size - 1) < base)
		return -EINVAL;
	shift = floor_log2(granule);
	last = base + (size - 1);
	*firstp = (base >> shift) + ((base & mask) != 0);
	*endp = (last >> shift) + ((last & mask) == mask);
	return *endp > *firstp ? 0 : -EINVAL;
}

size_t buddy_metadata_size(uint64_t base, uint64_t size, uint64_t granule)
{
	uint64_t first_g, end_g;

	if (granule_range(base, size, granule, &first_g, &end_g) < 0)
		return 0;
	if (end_g - first_g >= UINT32_MAX)
		return 0;
	return sizeof(struct buddy) + BUDDY_RUNS_MIN_CAP * sizeof(struct buddy_run) +
	       (sizeof(struct buddy_slot) << BUDDY_ALLOCS_MIN_BITS);
}

int buddy_create(uint64_t base, uint64_t size, uint64_t granule, struct buddy **buddyp)
{
	uint64_t first_g, end_g;
	struct buddy *b;

	if (granule_range(base, size, granule, &first_g, &end_g) < 0)
		return -EINVAL;
	if (end_g - first_g >= UINT32_MAX)
		return -E2BIG;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->base_g = first_g;
	b->n = (uint32_t)(end_g - first_g);
	b->shift = floor_log2(granule);
	b->n_orders = floor_log2(b->n) + 1;
	if (buddy_runs_init(&b->runs, first_g) < 0)
		goto err_buddy;
	if (buddy_allocs_init(&b->allocs) < 0)
		goto err_runs;
	buddy_runs_insert(&b->runs, 0, b->n);
	b->top_order = floor_log2(buddy_runs_orders(&b->runs));
	*buddyp = b;
	return 0;

err_runs:
	buddy_runs_finish(&b->runs);
err_buddy:
	free(b);
	return -ENOMEM;
}

void buddy_set_unmap(struct buddy *b, void (*unmap)(void *data, void *addr, size_t len), void *data)
{
	b->runs.unmap = b->allocs.unmap = (struct buddy_unmap){ .fn = unmap, .data = data };
}

void buddy_set_populate(struct buddy *b, void (*populate)(void *data, void *addr, size_t len))
{
	b->allocs.unmap.populate = populate;
}

void buddy_destroy(struct buddy *buddy)
{
	if (!buddy)
		return;
	buddy_allocs_finish(&buddy->allocs);
	buddy_runs_finish(&buddy->runs);
	free(buddy);
}

size_t buddy_metadata_bytes(const struct buddy *b)
{
	return sizeof(*b) + (size_t)b->runs.cap * sizeof(struct buddy_run) +
	       buddy_allocs_bytes(&b->allocs);
}

/* Size in granules, or 0 when @size is 0 or exceeds the range. */
static uint32_t granules_for(const struct buddy *b, uint64_t size)
{
	uint64_t m = (size >> b->shift) + ((size & ((UINT64_C(1) << b->shift) - 1)) != 0);

	return m <= b->n ? (uint32_t)m : 0;
}

/* Room for one more allocation and the run it may cut off. Returns 0 or -ENOMEM. */
static int make_room(struct buddy *b)
{
	int ret = buddy_runs_reserve(&b->runs, b->allocs.n + 2);

	return ret < 0 ? ret : buddy_allocs_reserve(&b->allocs);
}

/* Takes [@at, @at + @m) out of @run, which holds it; what is left on either side stays free. */
static void take(struct buddy *b, const struct buddy_span *run, uint32_t at, uint32_t m)
{
	uint32_t end = run->start + run->len, rest = end - at - m;

	if (at > run->start) {
		buddy_runs_set(&b->runs, run->start, run->start, at - run->start);
		if (rest)
			buddy_runs_insert(&b->runs, at + m, rest);
	} else if (rest) {
		buddy_runs_set(&b->runs, run->start, at + m, rest);
	} else {
		buddy_runs_remove(&b->runs, run->start);
	}
}

/* Gives [@start, @end) back, joining the runs that touch it. */
static void give_back(struct buddy *b, uint32_t start, uint32_t end)
{
	struct buddy_span prev, next;
	bool join_prev = start > 0 && buddy_runs_floor(&b->runs, start - 1, &prev) &&
			 prev.start + prev.len == start;
	bool join_next = buddy_runs_at(&b->runs, end, &next);

	if (join_prev && join_next) {
		buddy_runs_remove(&b->runs, next.start);
		buddy_runs_set(&b->runs, prev.start, prev.start,
			       next.start + next.len - prev.start);
	} else if (join_prev) {
		buddy_runs_set(&b->runs, prev.start, prev.start, end - prev.start);
	} else if (join_next) {
		buddy_runs_set(&b->runs, next.start, start, next.start + next.len - start);
	} else {
		buddy_runs_insert(&b->runs, start, end - start);
	}
}

/* Where @m granules aligned to 2^@a go (see the top of this file). */
static bool place(const struct buddy *b, uint32_t m, unsigned a, struct buddy_span *run,
		  uint32_t *atp)
{
	unsigned k = ceil_log2(m), j = a > k ? a : k;
	uint64_t avail = j < 64 ? buddy_runs_orders(&b->runs) >> j << j : 0;

	if ((a > k || m == UINT64_C(1) << k) && avail &&
	    buddy_runs_block(&b->runs, (unsigned)__builtin_ctzll(avail), run, atp))
		return true;
	return a <= k && buddy_runs_fit(&b->runs, m, a, run, atp);
}

int buddy_alloc(struct buddy *b, uint64_t size, uint64_t align, uint64_t *addrp, uint64_t *sizep)
{
	struct buddy_span run;
	unsigned a = 0;
	uint32_t m, at;

	if (size == 0 || (align && !is_pow2(align)))
		return -EINVAL;
	m = granules_for(b, size);
	if (m == 0)
		return -ENOMEM;
	if (align >> b->shift > 1)
		a = floor_log2(align) - b->shift;
	if (a >= 64 - b->shift || make_room(b) < 0 || !place(b, m, a, &run, &at))
		return -ENOMEM;
	take(b, &run, at, m);
	buddy_allocs_insert(&b->allocs, at, m);
	*addrp = addr_of(b, at);
	if (sizep)
		*sizep = (uint64_t)m << b->shift;
	return 0;
}

/* Finds the live allocation at @addr: its slot, index and length in granules. */
static int find_alloc(const struct buddy *b, uint64_t addr, uint32_t *slotp, uint32_t *ip,
		      uint32_t *mp)
{
	uint32_t i, s;

	if (index_of(b, addr, &i) < 0)
		return -EINVAL;
	s = buddy_allocs_find(&b->allocs, i);
	if (s == BUDDY_NIL)
		return -EINVAL;
	*slotp = s;
	*ip = i;
	*mp = buddy_allocs_slot(&b->allocs, s)->len;
	return 0;
}

int buddy_free(struct buddy *b, uint64_t addr, uint64_t size)
{
	uint32_t s, i, m;

	if (find_alloc(b, addr, &s, &i, &m) < 0)
		return -EINVAL;
	if (size && granules_for(b, size) != m)
		return -EINVAL;
	buddy_allocs_remove(&b->allocs, s);
	give_back(b, i, i + m);
	buddy_runs_trim(&b->runs, b->allocs.n + 1);
	return 0;
}

int buddy_resize(struct buddy *b, uint64_t addr, uint64_t size, uint64_t *sizep)
{
	uint32_t s, i, m, new_m;
	struct buddy_span next;

	if (size == 0 || find_alloc(b, addr, &s, &i, &m) < 0)
		return -EINVAL;
	new_m = granules_for(b, size);
	if (new_m == 0 || new_m > b->n - i)
		return -ENOMEM;
	if (new_m < m) {
		give_back(b, i + new_m, i + m);
	} else if (new_m > m) {
		if (!buddy_runs_at(&b->runs, i + m, &next) || next.len < new_m - m)
			return -ENOMEM;
		take(b, &next, i + m, new_m - m);
	}
	buddy_allocs_slot(&b->allocs, s)->len = new_m;
	if (sizep)
		*sizep = (uint64_t)new_m << b->shift;
	return 0;
}

int buddy_reserve(struct buddy *b, uint64_t addr, uint64_t size)
{
	struct buddy_span run;
	uint32_t i, m;

	if (size == 0 || index_of(b, addr, &i) < 0)
		return -EINVAL;
	m = granules_for(b, size);
	if (m == 0 || m > b->n - i)
		return -EINVAL;
	if (!buddy_runs_floor(&b->runs, i, &run) || run.start + run.len < i + m)
		return -EBUSY;
	if (make_room(b) < 0)
		return -ENOMEM;
	take(b, &run, i, m);
	buddy_allocs_insert(&b->allocs, i, m);
	return 0;
}

int buddy_alloc_size(const struct buddy *b, uint64_t addr, uint64_t *sizep)
{
	uint32_t s, i, m;

	if (find_alloc(b, addr, &s, &i, &m) < 0)
		return -EINVAL;
	*sizep = (uint64_t)m << b->shift;
	return 0;
}

void buddy_stats(const struct buddy *b, struct buddy_stats *st)
{
	uint64_t orders = buddy_runs_orders(&b->runs), free_g = b->runs.free_granules;

	*st = (struct buddy_stats){
		.granule = UINT64_C(1) << b->shift,
		.total = (uint64_t)b->n << b->shift,
		.free = free_g << b->shift,
		.largest_run = (uint64_t)buddy_runs_longest(&b->runs) << b->shift,
		.n_allocs = b->allocs.n,
		.n_orders = b->n_orders,
	};
	st->used = st->total - st->free;
	for (unsigned o = 0; o < b->n_orders; o++)
		st->n_free_blocks[o] = b->runs.n_free[o];
	if (orders)
		st->largest_free = (UINT64_C(1) << floor_log2(orders)) << b->shift;
	if (free_g) {
		unsigned ideal = floor_log2(free_g);
		uint64_t largest = orders ? UINT64_C(1) << floor_log2(orders) : 0;

		if (ideal > b->top_order)
			ideal = b->top_order;
		st->fragmentation = (unsigned)(1000 - (largest * 1000 >> ideal));
	}
}

/* ---------------------------------------------------------------- walk and check */

struct tiling {
	const struct buddy *b;
	uint32_t at;       /* the first granule not yet seen */
	uint64_t n_allocs; /* allocations seen */
	int (*fn)(void *data, const struct buddy_extent *extent);
	void *data;
};

/* The allocations from t->at up to @end, which must tile it exactly. */
static int tile_allocs(struct tiling *t, uint32_t end)
{
	const struct buddy *b = t->b;

	while (t->at < end) {
		uint32_t s = buddy_allocs_find(&b->allocs, t->at), len;
		struct buddy_extent e = { .addr = addr_of(b, t->at), .allocated = true };
		int r;

		if (s == BUDDY_NIL)
			return -EUCLEAN;
		len = buddy_allocs_slot(&b->allocs, s)->len;
		if (len == 0 || len > end - t->at)
			return -EUCLEAN;
		e.size = (uint64_t)len << b->shift;
		r = t->fn ? t->fn(t->data, &e) : 0;
		if (r)
			return r;
		t->at += len;
		t->n_allocs++;
	}
	return 0;
}

/* The allocations before @run, then its blocks. */
static int tile_run(void *data, const struct buddy_span *run)
{
	struct tiling *t = data;
	const struct buddy *b = t->b;
	uint64_t a = b->base_g + run->start, end = a + run->len, c = buddy_index_split(a, end);
	int r = tile_allocs(t, run->start);

	if (r || run->start != t->at)
		return r ? r : -EUCLEAN;
	while (t->fn && a < end) {
		unsigned o = a < c ? (unsigned)__builtin_ctzll(c - a) : floor_log2(end - a);
		struct buddy_extent e = { .addr = a << b->shift,
					  .size = (UINT64_C(1) << o) << b->shift,
					  .order = o };

		r = t->fn(t->data, &e);
		if (r)
			return r;
		a += UINT64_C(1) << o;
	}
	t->at = run->start + run->len;
	return 0;
}

/* Calls @fn (if not NULL) on every extent; -EUCLEAN when allocations and runs do not tile. */
static int tile(const struct buddy *b, int (*fn)(void *data, const struct buddy_extent *extent),
		void *data, uint64_t *n_allocsp)
{
	struct tiling t = { .b = b, .fn = fn, .data = data };
	int r = buddy_runs_each(&b->runs, tile_run, &t);

	if (r == 0)
		r = tile_allocs(&t, b->n);
	*n_allocsp = t.n_allocs;
	return r;
}

int buddy_walk(const struct buddy *b, int (*fn)(void *data, const struct buddy_extent *extent),
	       void *data)
{
	uint64_t n_allocs;

	return tile(b, fn, data, &n_allocs);
}

#define FAIL(...)                                             \
	do {                                                  \
		if (why)                                      \
			snprintf(why, why_size, __VA_ARGS__); \
		return -EUCLEAN;                              \
	} while (0)

int buddy_check(const struct buddy *b, char *why, size_t why_size)
{
	uint64_t n_allocs = 0;
	int r;

	r = buddy_runs_check(&b->runs, b->n, why, why_size);
	if (r == 0)
		r = buddy_allocs_check(&b->allocs, why, why_size);
	if (r < 0)
		return r;
	if (b->runs.cap < b->allocs.n + 1)
		FAIL("room for %u runs, %u allocations", b->runs.cap, b->allocs.n);
	if (tile(b, NULL, NULL, &n_allocs) < 0)
		FAIL("allocations and free runs do not tile the range (at allocation %llu)",
		     (unsigned long long)n_allocs);
	if (n_allocs != b->allocs.n)
		FAIL("%llu allocations tile the range, %u recorded", (unsigned long long)n_allocs,
		     b->allocs.n);
	return 0;
}
