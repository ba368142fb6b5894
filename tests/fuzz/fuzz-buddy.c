/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: operation sequences on one buddy allocator, checked against buddy.h's contract.
 *
 * The input's first four bytes choose the range (an odd base, low or near the top of the
 * address space), the granule (sometimes an invalid one) and the size (at most about 256
 * granules, so that buddy_check() after every operation stays cheap). The rest is a program of
 * 3-byte operations: alloc, free, resize, reserve (buddy_reserve(), as a restarted daemon takes
 * blocks back), bursts of equal allocations, and calls on addresses that hold nothing. A shadow
 * table of the live allocations checks every result: alignment, usable size, no overlap, the
 * placement (a request that is not a power of two, or a power of two when no block of its size
 * is free, at the first aligned run that holds it, as first fit would put it; a power of two
 * otherwise in a block, aligned to its size), an -ENOMEM only when nothing could hold it,
 * a reservation refused exactly when the range is invalid or not free, refused calls changing
 * nothing, the counters and the longest free run. At the end everything is freed and the free
 * blocks must be those of the new allocator.
 */
#include <errno.h>
#include <string.h>

#include "core/buddy.h"
#include "tests/fuzz/fuzz.h"

#define LIVE_MAX     256
#define GONE_MAX     16
#define GRANULES_MAX 1024 /* more than create() makes */

struct live {
	uint64_t addr, size; /* size: usable bytes */
};

struct state {
	struct buddy *b;
	uint64_t granule, lo, last; /* [lo, last]: the whole granules of the range */
	struct live live[LIVE_MAX];
	size_t n_live;
	uint64_t gone[GONE_MAX]; /* addresses freed recently */
	size_t n_gone;
};

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t round_up(uint64_t v, uint64_t granule)
{
	return (v + granule - 1) & ~(granule - 1);
}

/* Marks the granules the live allocations hold; returns the number of granules. */
static uint64_t occupancy(const struct state *s, bool *used)
{
	uint64_t n = (s->last - s->lo) / s->granule + 1;

	FUZZ_CHECK(n <= GRANULES_MAX);
	memset(used, 0, n * sizeof(*used));
	for (size_t i = 0; i < s->n_live; i++) {
		uint64_t g = (s->live[i].addr - s->lo) / s->granule;

		for (uint64_t j = 0; j < s->live[i].size / s->granule; j++)
			used[g + j] = true;
	}
	return n;
}

/* Where first fit puts @size bytes aligned to @align: true and *addrp, or false. */
static bool first_fit(const struct state *s, uint64_t size, uint64_t align, uint64_t *addrp)
{
	bool used[GRANULES_MAX];
	uint64_t n = occupancy(s, used), m = round_up(size, s->granule) / s->granule;

	if (size - 1 > s->last - s->lo)
		return false;
	for (uint64_t g = 0; g + m <= n; g++) {
		uint64_t addr = s->lo + g * s->granule, j = 0;

		if (align > s->granule && addr % align)
			continue;
		while (j < m && !used[g + j])
			j++;
		if (j == m) {
			*addrp = addr;
			return true;
		}
	}
	return false;
}

/* The longest run of free granules, in bytes. */
static uint64_t longest_run(const struct state *s)
{
	bool used[GRANULES_MAX];
	uint64_t n = occupancy(s, used), best = 0, cur = 0;

	for (uint64_t g = 0; g < n; g++) {
		cur = used[g] ? 0 : cur + 1;
		best = cur > best ? cur : best;
	}
	return best * s->granule;
}

static void check_invariants(const struct state *s)
{
	struct buddy_stats st;
	uint64_t used = 0;
	char why[256];

	if (buddy_check(s->b, why, sizeof(why)) != 0)
		fuzz_fail(__FILE__, __LINE__, why);
	buddy_stats(s->b, &st);
	for (size_t i = 0; i < s->n_live; i++)
		used += s->live[i].size;
	FUZZ_CHECK(st.used == used);
	FUZZ_CHECK(st.n_allocs == s->n_live);
	FUZZ_CHECK(st.free == st.total - used);
	FUZZ_CHECK(st.total == s->last - s->lo + 1);
	FUZZ_CHECK(st.largest_run == longest_run(s));
	FUZZ_CHECK(st.largest_free <= st.largest_run);
}

/*
 * Whether [addr, addr + size) lies in the range and meets no live allocation but @skip. Last
 * bytes, not ends: a range may end at 2^64.
 */
static bool fits(const struct state *s, uint64_t addr, uint64_t size, size_t skip)
{
	if (size == 0 || addr < s->lo || addr > s->last || size - 1 > s->last - addr)
		return false;
	for (size_t i = 0; i < s->n_live; i++) {
		const struct live *l = &s->live[i];

		if (i != skip && addr <= l->addr + (l->size - 1) && l->addr <= addr + (size - 1))
			return false;
	}
	return true;
}

/* -ENOMEM is right only when no free block of the order the request needs exists. */
static void check_enomem(const struct state *s, uint64_t size, uint64_t align)
{
	uint64_t need = round_up(size, s->granule);
	struct buddy_stats st;
	unsigned k = 0;

	if (size - 1 > s->last - s->lo || need == 0)
		return; /* larger than the range, or rounding wrapped: nothing can hold it */
	while (k < 63 && (s->granule << k) < need)
		k++;
	while (k < 63 && (s->granule << k) < align)
		k++;
	buddy_stats(s->b, &st);
	for (unsigned j = k; j < st.n_orders; j++)
		FUZZ_CHECK(st.n_free_blocks[j] == 0);
}

static uint64_t pick_size(uint8_t mode, uint8_t p1, uint8_t p2, uint64_t granule)
{
	uint16_t v = (uint16_t)(p1 << 8 | p2);

	switch (mode & 3) {
	case 0:
		return v % (granule * 4) + 1;
	case 1:
		return (uint64_t)v * granule / 64 + 1;
	case 2:
		return (uint64_t)1 << (p1 % 64);
	default:
		return p1 == 0 ? 0 : UINT64_MAX - p2;
	}
}

/* The order of @size in granules rounded up to a power of two, and of @align in granules. */
static void orders(const struct state *s, uint64_t size, uint64_t align, unsigned *kp, unsigned *ap)
{
	uint64_t m = round_up(size, s->granule) / s->granule;

	*kp = 0;
	while ((UINT64_C(1) << *kp) < m)
		++*kp;
	*ap = 0;
	while (align > s->granule && (s->granule << *ap) < align)
		++*ap;
}

/*
 * Checks where an allocation went, or that its refusal was right: see the top of this file.
 * @before: the stats before the call.
 */
static void check_placement(const struct state *s, uint64_t size, uint64_t align, int ret,
			    uint64_t addr, const struct buddy_stats *before)
{
	bool pow2 = is_pow2(round_up(size, s->granule) / s->granule), block = false;
	uint64_t want = 0;
	bool fit;
	unsigned k, a;

	if (size - 1 > s->last - s->lo) {
		FUZZ_CHECK(ret == -ENOMEM);
		return;
	}
	orders(s, size, align, &k, &a);
	if (a > k) {
		if (ret == -ENOMEM)
			check_enomem(s, size, align);
		return;
	}
	for (unsigned j = k; pow2 && j < before->n_orders; j++)
		block = block || before->n_free_blocks[j];
	fit = first_fit(s, size, align, &want);
	if (ret == -ENOMEM) {
		FUZZ_CHECK(!fit && !block);
		return;
	}
	FUZZ_CHECK(ret == 0 && fit);
	if (block)
		FUZZ_CHECK(addr % (s->granule << k) == 0);
	else
		FUZZ_CHECK(addr == want);
}

/* Allocates; returns the usable size, 0 when refused. */
static uint64_t alloc_one(struct state *s, uint64_t size, uint64_t align)
{
	uint64_t addr = 0, usable = 0, got;
	struct buddy_stats before;
	int ret;

	buddy_stats(s->b, &before);
	ret = buddy_alloc(s->b, size, align, &addr, &usable);
	if (size == 0 || (align && !is_pow2(align))) {
		FUZZ_CHECK(ret == -EINVAL);
		return 0;
	}
	check_placement(s, size, align, ret, addr, &before);
	if (ret == -ENOMEM)
		return 0;
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(usable == round_up(size, s->granule) && usable >= size);
	FUZZ_CHECK(addr % s->granule == 0 && (align == 0 || addr % align == 0));
	FUZZ_CHECK(fits(s, addr, usable, SIZE_MAX));
	FUZZ_CHECK(buddy_alloc_size(s->b, addr, &got) == 0 && got == usable);
	if (s->n_live == LIVE_MAX) { /* the table is full: give it back at once */
		FUZZ_CHECK(buddy_free(s->b, addr, size) == 0);
		return usable;
	}
	s->live[s->n_live++] = (struct live){ addr, usable };
	return usable;
}

static uint64_t pick_align(const struct state *s, uint8_t sub, uint8_t p2)
{
	unsigned a = sub >> 2;

	return a == 0 ? 0 : a == 15 ? (uint64_t)3 << (p2 % 8) : (uint64_t)1 << (a + 1);
}

static void op_alloc(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	alloc_one(s, pick_size(sub, p1, p2, s->granule), pick_align(s, sub, p2));
}

/*
 * Equal requests (3 to 10 granules, the number from @p1) until one is refused or eight were
 * made: runs packed end to end, the way frames fill a region.
 */
static void op_burst(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	uint64_t size = (uint64_t)(3 + p1 % 8) * s->granule - p2 % s->granule;
	uint64_t align = sub & 1 ? s->granule << (p2 % 3) : 0;

	for (int i = 0; i < 8 && s->n_live < LIVE_MAX; i++) {
		if (alloc_one(s, size, align) == 0)
			break;
	}
}

/* A refused call must leave everything as it was. */
static void check_unchanged(const struct state *s, const struct buddy_stats *before)
{
	struct buddy_stats st;

	buddy_stats(s->b, &st);
	FUZZ_CHECK(fuzz_same_stats(&st, before));
}

static void forget(struct state *s, size_t i)
{
	s->gone[s->n_gone++ % GONE_MAX] = s->live[i].addr;
	s->live[i] = s->live[--s->n_live];
}

static void op_free(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	struct buddy_stats before;
	struct live *l;
	size_t i;

	if (s->n_live == 0)
		return;
	i = p1 % s->n_live;
	l = &s->live[i];
	buddy_stats(s->b, &before);
	switch (sub & 7) {
	case 0: /* no size check */
		FUZZ_CHECK(buddy_free(s->b, l->addr, 0) == 0);
		break;
	case 1: /* the smallest size that rounds up to the same granules */
		FUZZ_CHECK(buddy_free(s->b, l->addr, l->size - s->granule + 1 + p2 % s->granule) ==
			   0);
		break;
	case 2: /* a size one granule too large */
		FUZZ_CHECK(buddy_free(s->b, l->addr, l->size + s->granule) == -EINVAL);
		check_unchanged(s, &before);
		return;
	case 3: /* an address inside it, not its start (sizes are at least 8) */
		FUZZ_CHECK(buddy_free(s->b, l->addr + 1 + p2 % (l->size - 1), 0) == -EINVAL);
		check_unchanged(s, &before);
		return;
	default:
		FUZZ_CHECK(buddy_free(s->b, l->addr, l->size) == 0);
		break;
	}
	forget(s, i);
}

static void op_resize(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	uint64_t size, usable = 0, got;
	struct buddy_stats before;
	struct live *l;
	size_t i;
	int ret;

	if (s->n_live == 0)
		return;
	i = p1 % s->n_live;
	l = &s->live[i];
	switch (sub & 3) {
	case 0: /* shrink */
		size = l->size / (1 + p2 % 4) - p2 % 7;
		break;
	case 1: /* grow */
		size = l->size + (uint64_t)p2 * s->granule / 4;
		break;
	case 2:
		size = (uint64_t)p2 * s->granule / 8;
		break;
	default:
		size = sub & 4 ? UINT64_MAX - p2 : (uint64_t)1 << (p2 % 64);
		break;
	}
	buddy_stats(s->b, &before);
	ret = buddy_resize(s->b, l->addr, size, &usable);
	if (size == 0 || ret == -ENOMEM) {
		FUZZ_CHECK(size == 0 ? ret == -EINVAL : size > l->size);
		check_unchanged(s, &before);
		FUZZ_CHECK(buddy_alloc_size(s->b, l->addr, &got) == 0 && got == l->size);
		return;
	}
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(usable == round_up(size, s->granule) && usable >= size);
	FUZZ_CHECK(fits(s, l->addr, usable, i));
	FUZZ_CHECK(buddy_alloc_size(s->b, l->addr, &got) == 0 && got == usable);
	l->size = usable;
}

/*
 * buddy_reserve() of a range the shadow table judges: -EINVAL when it is empty, unaligned or
 * not inside the range, -EBUSY (changing nothing) when it meets a live allocation, else a new
 * allocation of the size rounded up to the granule.
 */
static void op_reserve(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	uint64_t addr = s->lo + (uint64_t)p1 * s->granule + (sub & 8 ? p2 % s->granule : 0);
	uint64_t size = (uint64_t)(p2 % 32) * s->granule / 2, usable = round_up(size, s->granule);
	bool bad = size == 0 || addr % s->granule || addr < s->lo || addr > s->last ||
		   usable - 1 > s->last - addr;
	struct buddy_stats before;
	uint64_t got;
	int ret;

	buddy_stats(s->b, &before);
	ret = buddy_reserve(s->b, addr, size);
	if (bad || !fits(s, addr, usable, SIZE_MAX)) {
		FUZZ_CHECK(ret == (bad ? -EINVAL : -EBUSY));
		check_unchanged(s, &before);
		return;
	}
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(buddy_alloc_size(s->b, addr, &got) == 0 && got == usable);
	if (s->n_live == LIVE_MAX) {
		FUZZ_CHECK(buddy_free(s->b, addr, size) == 0);
		return;
	}
	s->live[s->n_live++] = (struct live){ addr, usable };
}

/*
 * Calls on addresses that hold no allocation (freed ones, or anywhere): all refused. Or, with
 * bit 2 of @sub, a reservation; with bit 4 (and not 2), a burst of equal allocations.
 */
static void op_stray(struct state *s, uint8_t sub, uint8_t p1, uint8_t p2)
{
	uint64_t addr, got;
	struct buddy_stats before;

	if (sub & 4) {
		op_reserve(s, sub, p1, p2);
		return;
	}
	if (sub & 16) {
		op_burst(s, (uint8_t)(sub >> 5), p1, p2);
		return;
	}

	if (sub & 1 && s->n_gone)
		addr = s->gone[p1 % (s->n_gone < GONE_MAX ? s->n_gone : GONE_MAX)];
	else
		addr = s->lo + (uint64_t)(p1 << 8 | p2) * (sub & 2 ? s->granule : 1);
	for (size_t i = 0; i < s->n_live; i++)
		if (s->live[i].addr == addr)
			return;
	buddy_stats(s->b, &before);
	FUZZ_CHECK(buddy_free(s->b, addr, 0) == -EINVAL);
	FUZZ_CHECK(buddy_resize(s->b, addr, s->granule, NULL) == -EINVAL);
	FUZZ_CHECK(buddy_alloc_size(s->b, addr, &got) == -EINVAL);
	check_unchanged(s, &before);
}

/* Frees what is left: the allocator must be as new, every block merged back. */
static void check_all_free(struct state *s, const struct buddy_stats *initial)
{
	struct buddy_stats st;

	while (s->n_live) {
		FUZZ_CHECK(buddy_free(s->b, s->live[0].addr, s->live[0].size) == 0);
		forget(s, 0);
		check_invariants(s);
	}
	buddy_stats(s->b, &st);
	FUZZ_CHECK(st.free == st.total && st.used == 0 && st.n_allocs == 0);
	FUZZ_CHECK(fuzz_same_stats(&st, initial));
}

/* Creates the allocator the header describes. Returns false when buddy_create() refused it. */
static bool create(struct state *s, struct fuzz_input *in)
{
	uint8_t mode = fuzz_u8(in), g = fuzz_u8(in);
	uint16_t off = fuzz_u16(in);
	uint64_t base, size, last, mask;
	int ret;

	s->granule = g & 0x80 ? (uint64_t)(g & 0x7f) : (uint64_t)8 << (g % 6);
	size = (uint64_t)(mode & 0x3f) << 8 | (off & 0xff);
	size = size * (s->granule ? s->granule : 1) / 64; /* up to 256 granules */
	if (mode & 0x80)
		base = UINT64_MAX - ((uint64_t)off << 6); /* near the top, possibly wrapping */
	else
		base = (mode & 0x40 ? 0 : 0x40000000) + off;
	ret = buddy_create(base, size, s->granule, &s->b);
	FUZZ_CHECK((ret == 0) == (buddy_metadata_size(base, size, s->granule) != 0));
	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -E2BIG);
		FUZZ_CHECK(buddy_granule_valid(s->granule) || ret == -EINVAL);
		return false;
	}
	last = base + (size - 1);
	FUZZ_CHECK(buddy_granule_valid(s->granule) && size > 0 && last >= base);
	s->lo = round_up(base, s->granule);
	mask = s->granule - 1;
	s->last = (last & mask) == mask ? last : (last & ~mask) - 1;
	return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct state s = { 0 };
	struct buddy_stats initial;

	if (!create(&s, &in))
		return 0;
	check_invariants(&s);
	buddy_stats(s.b, &initial);
	while (in.n >= 3) {
		uint8_t op = fuzz_u8(&in), p1 = fuzz_u8(&in), p2 = fuzz_u8(&in);
		void (*ops[])(struct state *, uint8_t, uint8_t, uint8_t) = {
			op_alloc,
			op_free,
			op_resize,
			op_stray,
		};

		ops[op & 3](&s, (uint8_t)(op >> 2), p1, p2);
		check_invariants(&s);
	}
	check_all_free(&s, &initial);
	buddy_destroy(s.b);
	return 0;
}
