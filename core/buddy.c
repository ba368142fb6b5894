/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator with trimmed allocations (see buddy.h for the contract).
 *
 * Granules are numbered from 0 (the first whole granule of the range) to n - 1. Alignment is
 * judged on the absolute granule number (base_g + index), so a block of order k starts at an
 * address that is a multiple of granule << k even when the range itself is oddly placed.
 *
 * Metadata is out of band, one state byte and one pair of 32-bit links per granule:
 *  - the first granule of a free block holds FREE | order and its links in the free list of
 *    that order (doubly linked, LIFO, so removal is O(1));
 *  - the first granule of an allocation holds ALLOC, and its `next` link holds the
 *    allocation's length in granules (an allocation is in no list);
 *  - every other granule holds NONE.
 * Free blocks are maximal: two free buddies of one order never coexist, they are merged.
 *
 * An allocation of m granules takes a block of order k = ceil(log2 m) (or more, for its
 * alignment), keeps [0, m) and frees [m, 2^k) as the blocks of the binary decomposition of that
 * tail. Those pieces have strictly increasing orders and each one's buddy lies below it, inside
 * the allocation or a smaller piece, so none can merge and they are pushed directly. Freeing
 * and shrinking give ranges back piece by piece, each piece merging with its free buddies;
 * when the whole tail is still free (the common case), a free takes it back and merges the
 * original block at once, which costs about a third fewer instructions per alloc+free pair.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buddy.h"

#define NIL UINT32_MAX

enum {
	ST_NONE = 0x00,
	ST_FREE = 0x40, /* | order */
	ST_ALLOC = 0x80,
	ST_ORDER_MASK = 0x3f,
};

struct link {
	uint32_t next; /* allocation heads: length in granules */
	uint32_t prev;
};

struct buddy {
	uint64_t base_g;    /* absolute granule number of granule 0 */
	uint32_t n;         /* granules */
	unsigned shift;     /* log2(granule) */
	unsigned n_orders;  /* orders 0 .. n_orders - 1 can exist: 2^(n_orders - 1) <= n */
	unsigned top_order; /* the largest block of the empty range */
	uint64_t free_granules;
	uint64_t n_allocs;
	uint64_t order_mask; /* bit k: the free list of order k is not empty */
	uint32_t head[BUDDY_MAX_ORDERS];
	uint32_t n_free[BUDDY_MAX_ORDERS];
	struct link *link; /* n entries */
	uint8_t *state;    /* n entries */
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

/* Alignment, as an order, of granule index @i in the address space. */
static unsigned align_order(const struct buddy *b, uint32_t i)
{
	uint64_t g = b->base_g + i;

	return g ? (unsigned)__builtin_ctzll(g) : 63u;
}

/* The largest block that starts at @i, is naturally aligned and ends at or before @end. */
static unsigned max_order_at(const struct buddy *b, uint32_t i, uint32_t end)
{
	unsigned o = floor_log2(end - i);
	unsigned a = align_order(b, i);

	return o < a ? o : a;
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

static void push(struct buddy *b, uint32_t i, unsigned o)
{
	uint32_t h = b->head[o];

	b->link[i].prev = NIL;
	b->link[i].next = h;
	if (h != NIL)
		b->link[h].prev = i;
	b->head[o] = i;
	b->state[i] = (uint8_t)(ST_FREE | o);
	b->n_free[o]++;
	b->order_mask |= UINT64_C(1) << o;
}

static void unlink_block(struct buddy *b, uint32_t i, unsigned o)
{
	uint32_t p = b->link[i].prev, nx = b->link[i].next;

	if (p != NIL)
		b->link[p].next = nx;
	else
		b->head[o] = nx;
	if (nx != NIL)
		b->link[nx].prev = p;
	b->state[i] = ST_NONE;
	if (--b->n_free[o] == 0)
		b->order_mask &= ~(UINT64_C(1) << o);
}

/* Merges block (*@ip, *@op) with its free buddies as far as they go; does not push it. */
static void merge_up(struct buddy *b, uint32_t *ip, unsigned *op)
{
	uint32_t i = *ip;
	unsigned o = *op;

	while (o + 1 < b->n_orders) {
		uint64_t bg = (b->base_g + i) ^ (UINT64_C(1) << o);
		uint32_t j;

		if (bg < b->base_g || bg - b->base_g >= b->n)
			break;
		j = (uint32_t)(bg - b->base_g);
		if (b->state[j] != (ST_FREE | o))
			break;
		unlink_block(b, j, o);
		if (j < i)
			i = j;
		o++;
	}
	*ip = i;
	*op = o;
}

/*
 * Gives [@start, @end) back: cuts it into maximal aligned pieces and frees them from the last
 * to the first. The block merged so far is carried down unpushed: when it is the upper buddy
 * of the next piece the two merge without a trip through the free lists.
 */
static void free_range(struct buddy *b, uint32_t start, uint32_t end)
{
	uint32_t piece[2 * BUDDY_MAX_ORDERS], ci = 0;
	unsigned order[2 * BUDDY_MAX_ORDERS], n = 0, co = 0;
	bool carried = false;

	for (uint32_t i = start; i < end; i += UINT32_C(1) << order[n - 1]) {
		piece[n] = i;
		order[n++] = max_order_at(b, i, end);
	}
	while (n--) {
		uint32_t i = piece[n];
		unsigned o = order[n];

		if (carried && co == o && ci == i + (UINT32_C(1) << o) && align_order(b, i) > o) {
			o++;
		} else if (carried) {
			push(b, ci, co);
		}
		merge_up(b, &i, &o);
		ci = i;
		co = o;
		carried = true;
	}
	if (carried)
		push(b, ci, co);
}

/* Frees the tail [@start, @end) of a fresh block whose end is aligned to its order. */
static void free_tail(struct buddy *b, uint32_t start, uint32_t end)
{
	while (start < end) {
		unsigned o = align_order(b, start);

		push(b, start, o);
		start += UINT32_C(1) << o;
	}
}

bool buddy_granule_valid(uint64_t granule)
{
	return is_pow2(granule) && granule >= BUDDY_MIN_GRANULE;
}

size_t buddy_metadata_size(uint64_t base, uint64_t size, uint64_t granule)
{
	uint64_t mask = granule - 1, last, first_g, end_g;

	if (!buddy_granule_valid(granule) || size == 0)
		return 0;
	if (base + (size - 1) < base)
		return 0;
	last = base + (size - 1);
	first_g = (base >> floor_log2(granule)) + ((base & mask) != 0);
	end_g = (last >> floor_log2(granule)) + ((last & mask) == mask);
	if (end_g <= first_g || end_g - first_g >= UINT32_MAX)
		return 0;
	/* Where size_t is 32 bits the metadata of a large range does not fit in memory at all. */
	if (end_g - first_g > (SIZE_MAX - sizeof(struct buddy)) / BUDDY_META_PER_GRANULE)
		return 0;
	return sizeof(struct buddy) + (size_t)(end_g - first_g) * BUDDY_META_PER_GRANULE;
}

int buddy_create(uint64_t base, uint64_t size, uint64_t granule, struct buddy **buddyp)
{
	unsigned shift;
	uint64_t mask, last, first_g, end_g;
	struct buddy *b;

	if (!buddy_granule_valid(granule) || size == 0)
		return -EINVAL;
	if (base + (size - 1) < base)
		return -EINVAL;
	shift = floor_log2(granule);
	mask = granule - 1;
	last = base + (size - 1);
	first_g = (base >> shift) + ((base & mask) != 0);
	end_g = (last >> shift) + ((last & mask) == mask);
	if (end_g <= first_g)
		return -EINVAL;
	if (end_g - first_g >= UINT32_MAX || buddy_metadata_size(base, size, granule) == 0)
		return -E2BIG;

	b = calloc(1, buddy_metadata_size(base, size, granule));
	if (!b)
		return -ENOMEM;
	b->base_g = first_g;
	b->n = (uint32_t)(end_g - first_g);
	b->shift = shift;
	b->n_orders = floor_log2(b->n) + 1;
	b->link = (struct link *)(b + 1);
	b->state = (uint8_t *)(b->link + b->n);
	for (unsigned o = 0; o < BUDDY_MAX_ORDERS; o++)
		b->head[o] = NIL;

	for (uint32_t i = 0; i < b->n;) {
		unsigned o = max_order_at(b, i, b->n);

		push(b, i, o);
		i += UINT32_C(1) << o;
		if (o > b->top_order)
			b->top_order = o;
	}
	b->free_granules = b->n;
	*buddyp = b;
	return 0;
}

void buddy_destroy(struct buddy *buddy)
{
	free(buddy);
}

/* Size in granules, or 0 when @size is 0 or exceeds the range. */
static uint32_t granules_for(const struct buddy *b, uint64_t size)
{
	uint64_t m = (size >> b->shift) + ((size & ((UINT64_C(1) << b->shift) - 1)) != 0);

	return m <= b->n ? (uint32_t)m : 0;
}

int buddy_alloc(struct buddy *b, uint64_t size, uint64_t align, uint64_t *addrp, uint64_t *sizep)
{
	unsigned k, j;
	uint64_t avail;
	uint32_t m, i;

	if (size == 0 || (align && !is_pow2(align)))
		return -EINVAL;
	m = granules_for(b, size);
	if (m == 0)
		return -ENOMEM;
	k = ceil_log2(m);
	if (align >> b->shift > 1 && floor_log2(align) - b->shift > k)
		k = floor_log2(align) - b->shift;
	if (k >= b->n_orders)
		return -ENOMEM;
	avail = b->order_mask >> k << k;
	if (!avail)
		return -ENOMEM;

	j = (unsigned)__builtin_ctzll(avail);
	i = b->head[j];
	unlink_block(b, i, j);
	while (j > k) {
		j--;
		push(b, i + (UINT32_C(1) << j), j);
	}
	free_tail(b, i + m, i + (UINT32_C(1) << k));

	b->state[i] = ST_ALLOC;
	b->link[i].next = m;
	b->free_granules -= m;
	b->n_allocs++;
	*addrp = addr_of(b, i);
	if (sizep)
		*sizep = (uint64_t)m << b->shift;
	return 0;
}

/* Finds the live allocation at @addr: its index and its length in granules. */
static int find_alloc(const struct buddy *b, uint64_t addr, uint32_t *ip, uint32_t *mp)
{
	uint32_t i;

	if (index_of(b, addr, &i) < 0 || b->state[i] != ST_ALLOC)
		return -EINVAL;
	*ip = i;
	*mp = b->link[i].next;
	return 0;
}

/* Whether [@start, @end) is made of free blocks only. At most O(log n) blocks are visited. */
static bool range_free(const struct buddy *b, uint32_t start, uint32_t end)
{
	for (uint32_t t = start; t < end; t += UINT32_C(1) << (b->state[t] & ST_ORDER_MASK)) {
		if (!(b->state[t] & ST_FREE))
			return false;
	}
	return true;
}

/* Takes the free blocks covering [@start, @end) and gives back what the last one has beyond. */
static void take_range(struct buddy *b, uint32_t start, uint32_t end)
{
	uint32_t t = start;

	while (t < end) {
		unsigned o = b->state[t] & ST_ORDER_MASK;

		unlink_block(b, t, o);
		t += UINT32_C(1) << o;
	}
	free_range(b, end, t);
}

/*
 * The common case of a free: the allocation still starts its block of order ceil(log2 m) and
 * the tail that alloc gave back is still free. Then the tail's blocks are taken back and the
 * whole block merged at once, instead of piece by piece. Returns false when it does not apply.
 */
static bool free_whole_block(struct buddy *b, uint32_t i, uint32_t m)
{
	unsigned k = ceil_log2(m);
	uint32_t end;

	if (align_order(b, i) < k || (UINT32_C(1) << k) > b->n - i)
		return false;
	end = i + (UINT32_C(1) << k);
	if (!range_free(b, i + m, end))
		return false;
	/* The tail's blocks cannot pass its end: nothing beyond it is given back. */
	take_range(b, i + m, end);
	merge_up(b, &i, &k);
	push(b, i, k);
	return true;
}

int buddy_free(struct buddy *b, uint64_t addr, uint64_t size)
{
	uint32_t i, m;

	if (find_alloc(b, addr, &i, &m) < 0)
		return -EINVAL;
	if (size && granules_for(b, size) != m)
		return -EINVAL;
	b->state[i] = ST_NONE;
	if (!free_whole_block(b, i, m))
		free_range(b, i, i + m);
	b->free_granules += m;
	b->n_allocs--;
	return 0;
}

int buddy_resize(struct buddy *b, uint64_t addr, uint64_t size, uint64_t *sizep)
{
	uint32_t i, m, new_m;

	if (size == 0 || find_alloc(b, addr, &i, &m) < 0)
		return -EINVAL;
	new_m = granules_for(b, size);
	if (new_m == 0 || new_m > b->n - i)
		return -ENOMEM;
	if (new_m < m) {
		free_range(b, i + new_m, i + m);
		b->free_granules += m - new_m;
	} else if (new_m > m) {
		if (!range_free(b, i + m, i + new_m))
			return -ENOMEM;
		take_range(b, i + m, i + new_m);
		b->free_granules -= new_m - m;
	}
	b->link[i].next = new_m;
	if (sizep)
		*sizep = (uint64_t)new_m << b->shift;
	return 0;
}

/*
 * The head of the free block that contains granule @i, or NIL when @i lies in an allocation.
 * A free block of order o containing @i starts at @i's absolute granule number rounded down to
 * 2^o: one guess per order.
 */
static uint32_t free_block_of(const struct buddy *b, uint32_t i)
{
	for (unsigned o = 0; o < b->n_orders; o++) {
		uint64_t g = (b->base_g + i) & ~((UINT64_C(1) << o) - 1);
		uint32_t s;

		if (g < b->base_g)
			break;
		s = (uint32_t)(g - b->base_g);
		if (b->state[s] == (ST_FREE | o) && (uint64_t)s + (UINT64_C(1) << o) > i)
			return s;
	}
	return NIL;
}

int buddy_reserve(struct buddy *b, uint64_t addr, uint64_t size)
{
	uint32_t i, m, s, t;

	if (size == 0 || index_of(b, addr, &i) < 0)
		return -EINVAL;
	m = granules_for(b, size);
	if (m == 0 || m > b->n - i)
		return -EINVAL;
	s = free_block_of(b, i);
	if (s == NIL || !range_free(b, s, i + m))
		return -EBUSY;
	/* Take every block from @s to past the range, then give back what lies on either side. */
	for (t = s; t < i + m;) {
		unsigned o = b->state[t] & ST_ORDER_MASK;

		unlink_block(b, t, o);
		t += UINT32_C(1) << o;
	}
	b->state[i] = ST_ALLOC;
	b->link[i].next = m;
	free_range(b, s, i);
	free_range(b, i + m, t);
	b->free_granules -= m;
	b->n_allocs++;
	return 0;
}

int buddy_alloc_size(const struct buddy *b, uint64_t addr, uint64_t *sizep)
{
	uint32_t i, m;

	if (find_alloc(b, addr, &i, &m) < 0)
		return -EINVAL;
	*sizep = (uint64_t)m << b->shift;
	return 0;
}

void buddy_stats(const struct buddy *b, struct buddy_stats *st)
{
	*st = (struct buddy_stats){
		.granule = UINT64_C(1) << b->shift,
		.total = (uint64_t)b->n << b->shift,
		.free = b->free_granules << b->shift,
		.n_allocs = b->n_allocs,
		.n_orders = b->n_orders,
	};
	st->used = st->total - st->free;
	for (unsigned o = 0; o < b->n_orders; o++)
		st->n_free_blocks[o] = b->n_free[o];
	if (b->order_mask)
		st->largest_free = (UINT64_C(1) << floor_log2(b->order_mask)) << b->shift;
	if (b->free_granules) {
		unsigned ideal = floor_log2(b->free_granules);
		uint64_t largest = b->order_mask ? UINT64_C(1) << floor_log2(b->order_mask) : 0;

		if (ideal > b->top_order)
			ideal = b->top_order;
		st->fragmentation = (unsigned)(1000 - (largest * 1000 >> ideal));
	}
}

int buddy_walk(const struct buddy *b, int (*fn)(void *data, const struct buddy_extent *extent),
	       void *data)
{
	for (uint32_t i = 0; i < b->n;) {
		struct buddy_extent e = { .addr = addr_of(b, i) };
		uint32_t len;
		int r;

		if (b->state[i] == ST_ALLOC) {
			len = b->link[i].next;
			e.allocated = true;
		} else if (b->state[i] & ST_FREE) {
			e.order = b->state[i] & ST_ORDER_MASK;
			len = UINT32_C(1) << e.order;
		} else {
			return -EUCLEAN; /* only a corrupted state gets here; buddy_check() says so */
		}
		e.size = (uint64_t)len << b->shift;
		r = fn(data, &e);
		if (r)
			return r;
		i += len;
	}
	return 0;
}

#define FAIL(...)                                             \
	do {                                                  \
		if (why)                                      \
			snprintf(why, why_size, __VA_ARGS__); \
		return -EUCLEAN;                              \
	} while (0)

/* Walks the tiling: heads well formed, interiors NONE, free blocks aligned and maximal. */
static int check_tiling(const struct buddy *b, uint32_t *n_free, uint64_t *free_g,
			uint64_t *n_allocs, char *why, size_t why_size)
{
	for (uint32_t i = 0; i < b->n;) {
		uint8_t s = b->state[i];
		uint64_t len;

		if (s == ST_ALLOC) {
			len = b->link[i].next;
			if (len == 0 || len > b->n - i)
				FAIL("allocation at granule %u has bad length %llu", i,
				     (unsigned long long)len);
			(*n_allocs)++;
		} else if ((s & ST_FREE) && !(s & ST_ALLOC)) {
			unsigned o = s & ST_ORDER_MASK;
			uint64_t bg = (b->base_g + i) ^ (UINT64_C(1) << o);

			len = UINT64_C(1) << o;
			if (o >= b->n_orders || len > b->n - i || align_order(b, i) < o)
				FAIL("free block at granule %u order %u misplaced", i, o);
			if (bg >= b->base_g && bg - b->base_g < b->n &&
			    b->state[bg - b->base_g] == s)
				FAIL("free buddies at granules %u and %llu, order %u", i,
				     (unsigned long long)(bg - b->base_g), o);
			n_free[o]++;
			*free_g += len;
		} else {
			FAIL("granule %u has state 0x%x where an extent should start", i, s);
		}
		for (uint64_t j = 1; j < len; j++) {
			if (b->state[i + j] != ST_NONE)
				FAIL("granule %llu inside the extent at %u has state 0x%x",
				     (unsigned long long)(i + j), i, b->state[i + j]);
		}
		i += (uint32_t)len;
	}
	return 0;
}

/* Walks each free list: links consistent, members are free heads of that order, counts right. */
static int check_lists(const struct buddy *b, const uint32_t *n_free, char *why, size_t why_size)
{
	for (unsigned o = 0; o < BUDDY_MAX_ORDERS; o++) {
		uint32_t count = 0, prev = NIL;

		for (uint32_t i = b->head[o]; i != NIL; prev = i, i = b->link[i].next) {
			if (i >= b->n || count++ > b->n)
				FAIL("free list %u is corrupt at %u", o, i);
			if (b->state[i] != (ST_FREE | o) || b->link[i].prev != prev)
				FAIL("free list %u holds granule %u wrongly", o, i);
		}
		if (count != b->n_free[o] || count != n_free[o])
			FAIL("order %u: %u in list, %u counted, %u found", o, count, b->n_free[o],
			     n_free[o]);
		if (!!(b->order_mask & (UINT64_C(1) << o)) != (count != 0))
			FAIL("order mask bit %u wrong", o);
	}
	return 0;
}

int buddy_check(const struct buddy *b, char *why, size_t why_size)
{
	uint32_t n_free[BUDDY_MAX_ORDERS] = { 0 };
	uint64_t free_g = 0, n_allocs = 0;
	int r;

	r = check_tiling(b, n_free, &free_g, &n_allocs, why, why_size);
	if (r < 0)
		return r;
	r = check_lists(b, n_free, why, why_size);
	if (r < 0)
		return r;
	if (free_g != b->free_granules || n_allocs != b->n_allocs)
		FAIL("counters: %llu free granules counted, %llu recorded; %llu allocs, %llu "
		     "recorded",
		     (unsigned long long)free_g, (unsigned long long)b->free_granules,
		     (unsigned long long)n_allocs, (unsigned long long)b->n_allocs);
	return 0;
}
