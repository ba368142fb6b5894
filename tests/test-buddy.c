/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator tests: exact placements on small ranges, trimming, alignment in physical
 * address space, misuse that must change nothing, in-place resize, statistics, and a randomized
 * property test that checks every invariant after every operation against a shadow map.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include <cmocka.h>

#include "core/buddy.h"

#define BASE 0x42000000ull

static void check(const struct buddy *b)
{
	char why[256] = "";

	if (buddy_check(b, why, sizeof(why)) != 0)
		fail_msg("invariant broken: %s", why);
}

/* ---------------------------------------------------------------- walk capture */

#define MAX_EXTENTS 4096

struct extents {
	size_t n;
	struct buddy_extent e[MAX_EXTENTS];
};

static int collect(void *data, const struct buddy_extent *e)
{
	struct extents *x = data;

	assert_true(x->n < MAX_EXTENTS);
	x->e[x->n++] = *e;
	return 0;
}

static void walk(const struct buddy *b, struct extents *x)
{
	x->n = 0;
	assert_int_equal(buddy_walk(b, collect, x), 0);
}

static void assert_same_walk(const struct extents *a, const struct extents *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->e[i].addr, b->e[i].addr);
		assert_int_equal(a->e[i].size, b->e[i].size);
		assert_int_equal(a->e[i].allocated, b->e[i].allocated);
	}
}

/* Expects extent @i to be (offset from @base, size, allocated). */
static void assert_extent(const struct extents *x, size_t i, uint64_t base, uint64_t off,
			  uint64_t size, bool allocated)
{
	assert_true(i < x->n);
	assert_int_equal(x->e[i].addr, base + off);
	assert_int_equal(x->e[i].size, size);
	assert_int_equal(x->e[i].allocated, allocated);
}

static struct buddy *make(uint64_t base, uint64_t size, uint64_t granule)
{
	struct buddy *b = NULL;

	assert_int_equal(buddy_create(base, size, granule, &b), 0);
	check(b);
	return b;
}

/* ---------------------------------------------------------------- creation */

static void test_create_invalid(void **state)
{
	struct buddy *b = NULL;

	assert_int_equal(buddy_create(BASE, 0x1000, 0, &b), -EINVAL);
	assert_int_equal(buddy_create(BASE, 0x1000, 48, &b), -EINVAL);
	assert_int_equal(buddy_create(BASE, 0x1000, 4, &b), -EINVAL);
	assert_int_equal(buddy_create(BASE, 0, 64, &b), -EINVAL);
	/* wraps past 2^64 */
	assert_int_equal(buddy_create(UINT64_MAX - 0xfff, 0x2000, 64, &b), -EINVAL);
	/* no whole granule: 63 bytes, or 90 bytes straddling two granules */
	assert_int_equal(buddy_create(BASE, 63, 64, &b), -EINVAL);
	assert_int_equal(buddy_create(BASE + 32, 90, 64, &b), -EINVAL);
	/* 2^32 granules of 8 bytes */
	assert_int_equal(buddy_create(0, UINT64_C(8) << 32, 8, &b), -E2BIG);
	assert_null(b);
	/* the metadata size is 0 for exactly the arguments buddy_create() refuses */
	assert_int_equal(buddy_metadata_size(BASE, 0x1000, 48), 0);
	assert_int_equal(buddy_metadata_size(BASE, 0x1000, 4), 0);
	assert_int_equal(buddy_metadata_size(BASE, 0, 64), 0);
	assert_int_equal(buddy_metadata_size(UINT64_MAX - 0xfff, 0x2000, 64), 0);
	assert_int_equal(buddy_metadata_size(BASE + 32, 90, 64), 0);
	assert_int_equal(buddy_metadata_size(0, UINT64_C(8) << 32, 8), 0);
}

/* Metadata does not grow with the range: it grows with allocations and shrinks back. */
static void test_metadata_size(void **state)
{
	size_t one = buddy_metadata_size(BASE, 64, 64);
	size_t many = buddy_metadata_size(BASE, 64 << 20, 64);
	struct buddy *b = make(BASE, 64 << 20, 64);
	uint64_t addr;

	assert_true(one > 0);
	assert_int_equal(many, one);
	assert_int_equal(buddy_metadata_bytes(b), one);
	/* 10 000 allocations of one granule, every other one freed: 5 000 runs between them */
	for (uint64_t i = 0; i < 10000; i++) {
		assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
		assert_int_equal(addr, BASE + i * 64);
	}
	assert_true(buddy_metadata_bytes(b) >= one + 10000 * 8);
	assert_true(buddy_metadata_bytes(b) <= one + 10000 * 128);
	for (uint64_t i = 0; i < 10000; i += 2)
		assert_int_equal(buddy_free(b, BASE + i * 64, 64), 0);
	check(b);
	assert_true(buddy_metadata_bytes(b) <= one + 10000 * 128);
	for (uint64_t i = 1; i < 10000; i += 2)
		assert_int_equal(buddy_free(b, BASE + i * 64, 64), 0);
	check(b);
	/* everything freed: back to what a new allocator holds */
	assert_int_equal(buddy_metadata_bytes(b), one);
	buddy_destroy(b);
	buddy_destroy(NULL);
}

static void test_initial_carve_aligned(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct extents x;
	struct buddy_stats st;

	walk(b, &x);
	assert_int_equal(x.n, 1);
	assert_extent(&x, 0, BASE, 0, 0x1000, false);
	buddy_stats(b, &st);
	assert_int_equal(st.total, 0x1000);
	assert_int_equal(st.free, 0x1000);
	assert_int_equal(st.used, 0);
	assert_int_equal(st.largest_free, 0x1000);
	assert_int_equal(st.n_orders, 7);
	assert_int_equal(st.n_free_blocks[6], 1);
	assert_int_equal(st.fragmentation, 0);
	buddy_destroy(b);
}

/* A range that starts one granule past an aligned address: blocks align in address space. */
static void test_initial_carve_odd_base(void **state)
{
	struct buddy *b = make(0x40, 0x1000, 64);
	struct extents x;
	static const uint64_t want[][2] = {
		{ 0x40, 0x40 },   { 0x80, 0x80 },   { 0x100, 0x100 }, { 0x200, 0x200 },
		{ 0x400, 0x400 }, { 0x800, 0x800 }, { 0x1000, 0x40 },
	};

	walk(b, &x);
	assert_int_equal(x.n, 7);
	for (size_t i = 0; i < 7; i++) {
		assert_extent(&x, i, 0, want[i][0], want[i][1], false);
		assert_int_equal(x.e[i].addr % x.e[i].size, 0);
	}
	buddy_destroy(b);
}

/* Partial granules at both ends are not used. */
static void test_initial_carve_partial_granules(void **state)
{
	struct buddy *b = make(BASE + 8, 0x1000, 64);
	struct buddy_stats st;
	struct extents x;

	buddy_stats(b, &st);
	assert_int_equal(st.total, 0x1000 - 64);
	walk(b, &x);
	assert_int_equal(x.e[0].addr, BASE + 64);
	assert_int_equal(x.e[x.n - 1].addr + x.e[x.n - 1].size, BASE + 0x1000);
	buddy_destroy(b);
}

/* The very top of the address space and address 0 work without overflow. */
static void test_address_space_edges(void **state)
{
	struct buddy *top = make(UINT64_MAX - 0xfff, 0x1000, 64);
	struct buddy *zero = make(0, 0x1000, 64);
	uint64_t addr, size;

	assert_int_equal(buddy_alloc(top, 0x1000, 0, &addr, &size), 0);
	assert_int_equal(addr, UINT64_MAX - 0xfff);
	assert_int_equal(buddy_free(top, addr, size), 0);
	assert_int_equal(buddy_alloc(zero, 64, 0, &addr, NULL), 0);
	assert_int_equal(addr, 0);
	check(top);
	check(zero);
	buddy_destroy(top);
	buddy_destroy(zero);
}

/* ---------------------------------------------------------------- allocation */

static void test_exact_placements(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	uint64_t a1, a2, a3, s;
	struct extents x;

	/* 64 B from a 4 KiB block: split all the way down, lower halves first */
	assert_int_equal(buddy_alloc(b, 64, 0, &a1, &s), 0);
	assert_int_equal(a1, BASE);
	assert_int_equal(s, 64);
	check(b);
	/* 100 B -> 128 B: the order-1 buddy left by the split */
	assert_int_equal(buddy_alloc(b, 100, 0, &a2, &s), 0);
	assert_int_equal(a2, BASE + 0x80);
	assert_int_equal(s, 128);
	/* the granule right after the first allocation */
	assert_int_equal(buddy_alloc(b, 1, 0, &a3, &s), 0);
	assert_int_equal(a3, BASE + 0x40);
	assert_int_equal(s, 64);
	check(b);

	walk(b, &x);
	assert_int_equal(x.n, 7);
	assert_extent(&x, 0, BASE, 0x0, 64, true);
	assert_extent(&x, 1, BASE, 0x40, 64, true);
	assert_extent(&x, 2, BASE, 0x80, 128, true);
	assert_extent(&x, 3, BASE, 0x100, 0x100, false);
	assert_extent(&x, 6, BASE, 0x800, 0x800, false);
	buddy_destroy(b);
}

static void test_trimming(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct buddy_stats st;
	struct extents x;
	uint64_t a, s;

	/* 3 granules come from a 4-granule block; the 4th goes back */
	assert_int_equal(buddy_alloc(b, 3 * 64, 0, &a, &s), 0);
	assert_int_equal(a, BASE);
	assert_int_equal(s, 192);
	check(b);
	walk(b, &x);
	assert_extent(&x, 0, BASE, 0, 192, true);
	assert_extent(&x, 1, BASE, 192, 64, false);
	assert_extent(&x, 2, BASE, 256, 256, false);
	buddy_stats(b, &st);
	assert_int_equal(st.used, 192);
	assert_int_equal(st.free, 0x1000 - 192);
	assert_int_equal(st.n_allocs, 1);
	/* the trimmed granule serves the next 64 B request */
	assert_int_equal(buddy_alloc(b, 64, 0, &a, &s), 0);
	assert_int_equal(a, BASE + 192);

	/* 37 granules from a fresh range: the tail 27 granules come back as 1+2+8+16 */
	buddy_destroy(b);
	b = make(BASE, 0x1000, 64);
	assert_int_equal(buddy_alloc(b, 37 * 64 - 5, 0, &a, &s), 0);
	assert_int_equal(s, 37 * 64);
	check(b);
	walk(b, &x);
	assert_int_equal(x.n, 5);
	assert_extent(&x, 1, BASE, 37 * 64, 64, false);
	assert_extent(&x, 2, BASE, 38 * 64, 128, false);
	assert_extent(&x, 3, BASE, 40 * 64, 512, false);
	assert_extent(&x, 4, BASE, 48 * 64, 1024, false);
	buddy_destroy(b);
}

/* Waste per allocation stays under one granule, for every size up to the region. */
static void test_waste_under_one_granule(void **state)
{
	struct buddy *b = make(BASE, 0x10000, 64);

	for (uint64_t size = 1; size <= 0x10000; size += 7) {
		uint64_t a, s;

		assert_int_equal(buddy_alloc(b, size, 0, &a, &s), 0);
		assert_true(s >= size && s - size < 64);
		assert_int_equal(buddy_free(b, a, size), 0);
	}
	check(b);
	buddy_destroy(b);
}

static void test_alignment(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct buddy *odd = make(0x40, 0x4000, 64);
	uint64_t a, s;

	assert_int_equal(buddy_alloc(b, 64, 0, &a, &s), 0);
	assert_int_equal(buddy_alloc(b, 64, 1024, &a, &s), 0);
	assert_int_equal(a, BASE + 1024);
	assert_int_equal(s, 64);
	/* the lowest free granule first; then, trimmed to one granule, the rest of the 1 KiB
	 * block of the aligned request serves a request of 15 granules (14 are free below it) */
	assert_int_equal(buddy_alloc(b, 64, 0, &a, &s), 0);
	assert_int_equal(a, BASE + 64);
	assert_int_equal(buddy_alloc(b, 15 * 64, 0, &a, &s), 0);
	assert_int_equal(a, BASE + 1024 + 64);
	/* alignments up to the granule are free */
	assert_int_equal(buddy_alloc(b, 64, 8, &a, &s), 0);
	assert_int_equal(a % 64, 0);
	assert_int_equal(buddy_alloc(b, 64, 3, &a, &s), -EINVAL);
	assert_int_equal(buddy_alloc(b, 64, 0x2000, &a, &s), -ENOMEM);
	check(b);

	/* physical alignment on a range based at 0x40 */
	for (uint64_t align = 128; align <= 0x2000; align <<= 1) {
		assert_int_equal(buddy_alloc(odd, 64, align, &a, &s), 0);
		assert_int_equal(a % align, 0);
		check(odd);
		assert_int_equal(buddy_free(odd, a, 64), 0);
	}
	buddy_destroy(odd);
	buddy_destroy(b);
}

static void test_alloc_errors(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	uint64_t a = 0xdead, s = 0xbeef;

	assert_int_equal(buddy_alloc(b, 0, 0, &a, &s), -EINVAL);
	assert_int_equal(buddy_alloc(b, 0x1001, 0, &a, &s), -ENOMEM);
	assert_int_equal(buddy_alloc(b, UINT64_MAX, 0, &a, &s), -ENOMEM);
	assert_int_equal(a, 0xdead);
	assert_int_equal(s, 0xbeef);
	/* exhaust: 64 granules, then nothing */
	for (int i = 0; i < 64; i++)
		assert_int_equal(buddy_alloc(b, 1, 0, &a, NULL), 0);
	assert_int_equal(buddy_alloc(b, 1, 0, &a, NULL), -ENOMEM);
	check(b);
	buddy_destroy(b);
}

/* A 5-granule range has no 8-granule block, yet its one run of 5 granules serves 5 granules. */
static void test_non_power_of_two_range(void **state)
{
	struct buddy *b = make(BASE, 5 * 64, 64);
	struct buddy_stats st;
	uint64_t a, s;

	assert_int_equal(buddy_alloc(b, 5 * 64, 0, &a, &s), 0);
	assert_int_equal(a, BASE);
	assert_int_equal(s, 5 * 64);
	check(b);
	buddy_stats(b, &st);
	assert_int_equal(st.free, 0);
	assert_int_equal(buddy_free(b, a, s), 0);
	assert_int_equal(buddy_alloc(b, 6 * 64, 0, &a, NULL), -ENOMEM);
	assert_int_equal(buddy_alloc(b, 4 * 64, 0, &a, NULL), 0);
	assert_int_equal(buddy_alloc(b, 64, 0, &a, NULL), 0);
	assert_int_equal(a, BASE + 4 * 64);
	check(b);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- misuse */

static void assert_unchanged(const struct buddy *b, const struct extents *before)
{
	struct extents after;

	check(b);
	walk(b, &after);
	assert_same_walk(before, &after);
}

static void test_free_misuse(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct extents before;
	uint64_t a, s, got;

	assert_int_equal(buddy_alloc(b, 256, 0, &a, &s), 0);
	walk(b, &before);

	assert_int_equal(buddy_free(b, a + 64, 0), -EINVAL);        /* interior */
	assert_int_equal(buddy_free(b, a + 1, 0), -EINVAL);         /* unaligned */
	assert_int_equal(buddy_free(b, a + 0x800, 0), -EINVAL);     /* a free block */
	assert_int_equal(buddy_free(b, BASE - 64, 0), -EINVAL);     /* below */
	assert_int_equal(buddy_free(b, BASE + 0x1000, 0), -EINVAL); /* above */
	assert_int_equal(buddy_free(b, 0, 0), -EINVAL);
	assert_int_equal(buddy_free(b, UINT64_MAX, 0), -EINVAL);
	assert_int_equal(buddy_free(b, a, 512), -EINVAL); /* wrong size */
	assert_int_equal(buddy_free(b, a, 64), -EINVAL);
	assert_int_equal(buddy_alloc_size(b, a + 64, &got), -EINVAL);
	assert_int_equal(buddy_resize(b, a + 64, 64, NULL), -EINVAL);
	assert_int_equal(buddy_resize(b, a, 0, NULL), -EINVAL);
	assert_unchanged(b, &before);

	assert_int_equal(buddy_alloc_size(b, a, &got), 0);
	assert_int_equal(got, 256);
	assert_int_equal(buddy_free(b, a, 200), 0); /* rounds to the same granules */
	walk(b, &before);
	assert_int_equal(buddy_free(b, a, 0), -EINVAL); /* double free */
	assert_unchanged(b, &before);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- coalescing */

static void test_coalesce_back(void **state)
{
	struct buddy *b = make(0x40, 0x4000, 64);
	struct extents initial, now;
	uint64_t addr[64], size[64];
	unsigned n = 0;

	walk(b, &initial);
	for (uint64_t sz = 1; n < 64; sz = sz * 3 % 1000 + 1) {
		if (buddy_alloc(b, sz, 0, &addr[n], &size[n]) == 0)
			n++;
		else
			break;
	}
	assert_true(n > 10);
	/* free in an interleaved order: even indices, then odd ones backwards */
	for (unsigned i = 0; i < n; i += 2) {
		assert_int_equal(buddy_free(b, addr[i], size[i]), 0);
		check(b);
	}
	for (unsigned i = n - 1 - (n % 2 == 0 ? 0 : 1); i < n; i -= 2) {
		assert_int_equal(buddy_free(b, addr[i], size[i]), 0);
		check(b);
	}
	walk(b, &now);
	assert_same_walk(&initial, &now);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- resize */

static void test_resize(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct extents initial, x;
	uint64_t a, c, s;

	walk(b, &initial);
	assert_int_equal(buddy_alloc(b, 1024, 0, &a, &s), 0);
	/* shrink always works and gives the tail back */
	assert_int_equal(buddy_resize(b, a, 100, &s), 0);
	assert_int_equal(s, 128);
	check(b);
	walk(b, &x);
	assert_extent(&x, 0, BASE, 0, 128, true);
	assert_extent(&x, 1, BASE, 128, 128, false);
	/* grow into the free memory right after it, across several blocks */
	assert_int_equal(buddy_resize(b, a, 0x900, &s), 0);
	assert_int_equal(s, 0x900);
	check(b);
	/* blocked by another allocation: unchanged */
	assert_int_equal(buddy_alloc(b, 64, 0, &c, NULL), 0);
	assert_int_equal(c, BASE + 0x900);
	walk(b, &x);
	assert_int_equal(buddy_resize(b, a, 0x940, &s), -ENOMEM);
	assert_unchanged(b, &x);
	/* larger than the whole range */
	assert_int_equal(buddy_free(b, c, 64), 0);
	assert_int_equal(buddy_resize(b, a, 0x1040, &s), -ENOMEM);
	/* to exactly the whole range, then the same size (no-op), then free */
	assert_int_equal(buddy_resize(b, a, 0x1000, &s), 0);
	assert_int_equal(buddy_resize(b, a, 0x1000, &s), 0);
	check(b);
	assert_int_equal(buddy_free(b, a, 0x1000), 0);
	walk(b, &x);
	assert_same_walk(&initial, &x);

	/* past the end of the range, from the last quarter, with half the range free before it */
	assert_int_equal(buddy_alloc(b, 0x800, 0, &a, NULL), 0);
	assert_int_equal(buddy_alloc(b, 0x400, 0, &c, NULL), 0);
	assert_int_equal(buddy_alloc(b, 0x400, 0, &a, NULL), 0);
	assert_int_equal(a, BASE + 0xc00);
	assert_int_equal(buddy_free(b, BASE, 0x800), 0);
	walk(b, &x);
	assert_int_equal(buddy_resize(b, a, 0x800, &s), -ENOMEM);
	assert_unchanged(b, &x);
	assert_int_equal(buddy_resize(b, c, 0x800, &s), -ENOMEM); /* blocked by a */
	assert_unchanged(b, &x);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- stats */

static void test_stats_fragmentation(void **state)
{
	struct buddy *b = make(BASE, 0x1000, 64);
	struct buddy_stats st;
	uint64_t a[64];

	for (int i = 0; i < 64; i++)
		assert_int_equal(buddy_alloc(b, 64, 0, &a[i], NULL), 0);
	buddy_stats(b, &st);
	assert_int_equal(st.free, 0);
	assert_int_equal(st.largest_free, 0);
	assert_int_equal(st.fragmentation, 0);
	/* free every other granule: 32 granules free, the largest block is one granule */
	for (int i = 0; i < 64; i += 2)
		assert_int_equal(buddy_free(b, a[i], 64), 0);
	buddy_stats(b, &st);
	assert_int_equal(st.free, 32 * 64);
	assert_int_equal(st.largest_free, 64);
	assert_int_equal(st.n_free_blocks[0], 32);
	/* 32 free granules could form a 2 KiB block; the largest is 64 B */
	assert_int_equal(st.fragmentation, 1000 - 64 * 1000 / 2048);
	assert_int_equal(st.n_allocs, 32);
	buddy_destroy(b);

	/* a range at 0x40 has 4 KiB free but no block above 2 KiB: still as merged as can be */
	b = make(0x40, 0x1000, 64);
	buddy_stats(b, &st);
	assert_int_equal(st.largest_free, 0x800);
	assert_int_equal(st.fragmentation, 0);
	buddy_destroy(b);

	/* a fresh 12 KiB range (8 KiB + 4 KiB blocks) is as merged as it can be */
	b = make(BASE, 0x3000, 64);
	buddy_stats(b, &st);
	assert_int_equal(st.largest_free, 0x2000);
	assert_int_equal(st.fragmentation, 0);
	buddy_destroy(b);
}

static int stop_at_second(void *data, const struct buddy_extent *e)
{
	int *count = data;

	return ++*count == 2 ? 42 : 0;
}

static void test_walk_stops(void **state)
{
	struct buddy *b = make(0x40, 0x1000, 64);
	int count = 0;

	assert_int_equal(buddy_walk(b, stop_at_second, &count), 42);
	assert_int_equal(count, 2);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- capacity */

#define REGION (UINT64_C(64) << 20)

/*
 * Fills a new region at @base with requests of @size aligned to @align until one is refused;
 * checks that they are packed as first fit packs them (each at the aligned end of the one
 * before) or, for a power of two, that they are blocks (aligned to their size); that
 * everything frees back to the initial structure; and returns how many fit.
 */
static uint64_t fill(uint64_t base, uint64_t granule, uint64_t size, uint64_t align)
{
	struct buddy *b = make(base, REGION, granule);
	uint64_t step = (size + granule - 1) / granule * granule, n = 0, a, s;
	uint64_t *addr = malloc(REGION / step * sizeof(*addr) + sizeof(*addr));
	struct extents *initial = malloc(sizeof(*initial)), *final = malloc(sizeof(*final));

	assert_non_null(addr);
	assert_non_null(initial);
	assert_non_null(final);
	walk(b, initial);
	if (align > granule)
		step = (step + align - 1) / align * align;
	while (buddy_alloc(b, size, align, &a, &s) == 0) {
		assert_true(n < REGION / step);
		if (step & (step - 1))
			assert_int_equal(a, base + n * step);
		else
			assert_int_equal(a % step, 0);
		addr[n++] = a;
	}
	check(b);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(buddy_free(b, addr[i], size), 0);
	walk(b, final);
	assert_same_walk(initial, final);
	buddy_destroy(b);
	free(addr);
	free(initial);
	free(final);
	return n;
}

/* NV12 1080p frames (3,110,400 bytes, 4 KiB aligned): 21 in 64 MiB, as first fit packs them. */
static void test_nv12_frames(void **state)
{
	assert_int_equal(fill(BASE, 64, 3110400, 4096), 21);
	assert_int_equal(fill(BASE, 4096, 3110400, 4096), 21);
	assert_int_equal(fill(BASE, 64, 3110400, 0), 21);
	/* a region that starts one 4 KiB page past an aligned address */
	assert_int_equal(fill(BASE + 4096, 4096, 3110400, 4096), 21);
}

/*
 * N equal requests of sizes from 64 KiB to 1 MiB and a bit fill at least 98% of the region:
 * exactly as many as fit end to end, but for a power of two in a region whose base is not
 * aligned to it (blocks keep their natural alignment): one fewer.
 */
static void test_fill_equal_requests(void **state)
{
	static const uint64_t sizes[] = { 65536 + 64, 65536 + 4096, 100000,          3 * 65536,
					  500000,     (1 << 20),    (1 << 20) + 4096 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t usable = (sizes[i] + 63) / 64 * 64, n = fill(BASE, 64, sizes[i], 0);

		assert_int_equal(n, REGION / usable);
		if (n * usable * 100 < REGION * 98)
			fail_msg("%llu requests of %llu bytes fill %llu of %llu bytes",
				 (unsigned long long)n, (unsigned long long)sizes[i],
				 (unsigned long long)(n * usable), (unsigned long long)REGION);
		/* at an odd base, 4 KiB granules, 4 KiB aligned */
		usable = (sizes[i] + 4095) / 4096 * 4096;
		n = fill(0x40001000, 4096, sizes[i], 4096);
		assert_int_equal(n, REGION / usable - !(usable & (usable - 1)));
		assert_true(n * usable * 100 >= REGION * 98);
	}
}

/*
 * A run allocation spans several blocks; freeing it merges them back; resizing it grows into
 * the run after it and shrinks from its end; a reservation can take part of a former run.
 */
static void test_run_across_blocks(void **state)
{
	struct buddy *b = make(0x40, 0x4000, 64); /* blocks of 64 B .. 8 KiB, then 64 B */
	struct extents initial, x;
	uint64_t a, c, s;

	walk(b, &initial);
	/* 3 KiB (48 granules) from 0x40: across the blocks at 0x40, 0x80, ..., 0x800 */
	assert_int_equal(buddy_alloc(b, 0xc00, 0, &a, &s), 0);
	assert_int_equal(a, 0x40);
	assert_int_equal(s, 0xc00);
	check(b);
	walk(b, &x);
	assert_extent(&x, 0, 0, 0x40, 0xc00, true);
	assert_extent(&x, 1, 0, 0xc40, 0x40, false);
	assert_extent(&x, 2, 0, 0xc80, 0x80, false);
	/* grows into the run after it, past the 4 KiB boundary */
	assert_int_equal(buddy_resize(b, a, 0x1100, &s), 0);
	assert_int_equal(s, 0x1100);
	check(b);
	/* shrinks from its end */
	assert_int_equal(buddy_resize(b, a, 0x7c0, &s), 0);
	check(b);
	/* the 2 KiB aligned run after it: from 0x800 */
	assert_int_equal(buddy_alloc(b, 0x7c0, 0x800, &c, &s), 0);
	assert_int_equal(c, 0x800);
	check(b);
	assert_int_equal(buddy_free(b, a, 0x7c0), 0);
	assert_int_equal(buddy_free(b, c, 0x7c0), 0);
	walk(b, &x);
	assert_same_walk(&initial, &x);
	/* a reservation where the run was, and one across its former end */
	assert_int_equal(buddy_reserve(b, 0x400, 0x100), 0);
	assert_int_equal(buddy_reserve(b, 0xc00, 0x800), 0);
	assert_int_equal(buddy_reserve(b, 0x1300, 0x200), -EBUSY);
	check(b);
	assert_int_equal(buddy_free(b, 0x400, 0x100), 0);
	assert_int_equal(buddy_free(b, 0xc00, 0x800), 0);
	walk(b, &x);
	assert_same_walk(&initial, &x);
	buddy_destroy(b);
}

/* ---------------------------------------------------------------- property test */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1Dull;
}

struct live {
	uint64_t addr, size, align;
	uint32_t id;
};

struct model {
	struct buddy *b;
	uint64_t base, total_granules, granule;
	uint32_t *owner; /* per granule of the range: 0 free, else the allocation's id */
	struct live *live;
	size_t n_live;
	uint32_t next_id;
	uint64_t used;
	bool exact; /* judge every refusal against the owner map (small ranges) */
	unsigned long ops, enomem, resized_in_place, resize_refused;
	unsigned long runs_taken;   /* allocations that are not a power of two (first fit) */
	unsigned long multi_block;  /* of those, spanning more than one block of their order */
	unsigned long aligned_runs; /* of those, with an alignment above the granule */
	unsigned long reserved, reserve_busy;
};

static uint64_t gidx(const struct model *m, uint64_t addr)
{
	return (addr - m->base) / m->granule;
}

static void mark(struct model *m, uint64_t addr, uint64_t size, uint32_t from, uint32_t to)
{
	for (uint64_t g = gidx(m, addr); g < gidx(m, addr + size); g++) {
		if (m->owner[g] != from)
			fail_msg("granule %llu owned by %u, expected %u (overlap)",
				 (unsigned long long)g, m->owner[g], from);
		m->owner[g] = to;
	}
}

static uint64_t random_size(struct rng *r, uint64_t max)
{
	/* mostly small, sometimes large: log-uniform */
	unsigned bits = (unsigned)(rnd(r) % 16) + 1;
	uint64_t size = rnd(r) % (UINT64_C(1) << bits) + 1;

	return size > max ? max : size;
}

static unsigned order_of(uint64_t v) /* ceil(log2(v)) */
{
	unsigned o = 0;

	while ((UINT64_C(1) << o) < v)
		o++;
	return o;
}

/* Whether m granules from an address aligned to @align are free somewhere in the owner map. */
static bool model_has_run(const struct model *m, uint64_t granules, uint64_t align)
{
	uint64_t g = 0;

	while (g < m->total_granules) {
		uint64_t end = g, start;

		if (m->owner[g]) {
			g++;
			continue;
		}
		while (end < m->total_granules && m->owner[end] == 0)
			end++;
		start = m->base + g * m->granule;
		if (align > m->granule)
			start = (start + align - 1) / align * align;
		if (gidx(m, start) + granules <= end)
			return true;
		g = end;
	}
	return false;
}

/*
 * A refusal is right only when nothing can hold the request: for an alignment above the size,
 * no free block of the alignment's order; otherwise no aligned run, and so no free block of
 * the order of the size either.
 */
static void assert_enomem_justified(const struct model *m, uint64_t size, uint64_t align)
{
	uint64_t granules = (size + m->granule - 1) / m->granule;
	unsigned k = order_of(granules), a = 0;
	struct buddy_stats st;

	if (align > m->granule)
		a = order_of(align / m->granule);
	if (a <= k && m->exact && model_has_run(m, granules, align))
		fail_msg("alloc(%llu, align %llu) refused though a run holds it",
			 (unsigned long long)size, (unsigned long long)align);
	k = a > k ? a : k;
	buddy_stats(m->b, &st);
	for (unsigned o = k; o < st.n_orders; o++) {
		if (st.n_free_blocks[o])
			fail_msg("alloc(%llu, align %llu) refused with a free block of order %u",
				 (unsigned long long)size, (unsigned long long)align, o);
	}
}

/* Counts the run allocations: whether this one crosses a block boundary of its order. */
static void count_run(struct model *m, const struct live *l, uint64_t align)
{
	uint64_t g = l->size / m->granule, first = l->addr / m->granule;
	unsigned k = order_of(g);

	if (g == UINT64_C(1) << k || (align > m->granule && order_of(align / m->granule) > k))
		return;
	m->runs_taken++;
	if (first >> k != (first + g - 1) >> k)
		m->multi_block++;
	if (align > m->granule)
		m->aligned_runs++;
}

static void op_alloc(struct model *m, struct rng *r)
{
	uint64_t size = random_size(r, m->total_granules * m->granule);
	uint64_t align = rnd(r) % 4 == 0 ? UINT64_C(1) << (rnd(r) % 13) : 0;
	struct live l = { .align = align };
	int ret = buddy_alloc(m->b, size, align, &l.addr, &l.size);

	if (ret == -ENOMEM) {
		assert_enomem_justified(m, size, align);
		m->enomem++;
		return;
	}
	assert_int_equal(ret, 0);
	assert_true(l.size >= size && l.size - size < m->granule);
	if (align)
		assert_int_equal(l.addr % align, 0);
	count_run(m, &l, align);
	l.id = ++m->next_id;
	mark(m, l.addr, l.size, 0, l.id);
	m->live[m->n_live++] = l;
	m->used += l.size;
}

static void op_free(struct model *m, struct rng *r)
{
	size_t i = rnd(r) % m->n_live;
	struct live l = m->live[i];

	assert_int_equal(buddy_free(m->b, l.addr, l.size), 0);
	mark(m, l.addr, l.size, l.id, 0);
	m->live[i] = m->live[--m->n_live];
	m->used -= l.size;
	/* the same free again is refused */
	assert_int_equal(buddy_free(m->b, l.addr, l.size), -EINVAL);
}

static void op_resize(struct model *m, struct rng *r)
{
	struct live *l = &m->live[rnd(r) % m->n_live];
	uint64_t size = random_size(r, m->total_granules * m->granule), got;
	int ret = buddy_resize(m->b, l->addr, size, &got);

	if (ret == -ENOMEM) {
		uint64_t start = gidx(m, l->addr),
			 end = start + (size + m->granule - 1) / m->granule;
		bool blocked = end > m->total_granules;

		assert_true(size > l->size); /* shrinking never fails */
		for (uint64_t g = gidx(m, l->addr + l->size); !blocked && g < end; g++)
			blocked = m->owner[g] != 0;
		if (!blocked)
			fail_msg("resize to %llu refused though the memory after it is free",
				 (unsigned long long)size);
		m->resize_refused++;
		return;
	}
	assert_int_equal(ret, 0);
	assert_true(got >= size && got - size < m->granule);
	if (got < l->size)
		mark(m, l->addr + got, l->size - got, l->id, 0);
	else
		mark(m, l->addr + l->size, got - l->size, 0, l->id);
	m->used = m->used - l->size + got;
	l->size = got;
	m->resized_in_place++;
}

/*
 * A reservation of a random granule range: taken when the owner map says it is free (often
 * where runs were allocated and freed), -EBUSY when not, -EINVAL past the end.
 */
static void op_reserve(struct model *m, struct rng *r)
{
	uint64_t g = rnd(r) % m->total_granules, len = random_size(r, 64 * m->granule);
	uint64_t n = (len + m->granule - 1) / m->granule;
	struct live l = { .addr = m->base + g * m->granule, .size = n * m->granule };
	bool busy = false;
	int ret = buddy_reserve(m->b, l.addr, len);

	if (g + n > m->total_granules) {
		assert_int_equal(ret, -EINVAL);
		return;
	}
	for (uint64_t i = g; i < g + n && !busy; i++)
		busy = m->owner[i] != 0;
	if (busy) {
		assert_int_equal(ret, -EBUSY);
		m->reserve_busy++;
		return;
	}
	assert_int_equal(ret, 0);
	l.id = ++m->next_id;
	mark(m, l.addr, l.size, 0, l.id);
	m->live[m->n_live++] = l;
	m->used += l.size;
	m->reserved++;
}

/* Every allocated extent the walk shows is one of the model's, with its size. */
static int match_walk(void *data, const struct buddy_extent *e)
{
	struct model *m = data;

	if (e->allocated) {
		uint32_t id = m->owner[gidx(m, e->addr)];

		assert_int_not_equal(id, 0);
		for (size_t i = 0; i < m->n_live; i++) {
			if (m->live[i].id == id) {
				assert_int_equal(m->live[i].addr, e->addr);
				assert_int_equal(m->live[i].size, e->size);
				return 0;
			}
		}
		fail_msg("allocated extent at 0x%llx unknown", (unsigned long long)e->addr);
	} else {
		assert_int_equal(m->owner[gidx(m, e->addr)], 0);
		assert_int_equal(e->addr % e->size, 0); /* naturally aligned in address space */
	}
	return 0;
}

static void verify(struct model *m)
{
	struct buddy_stats st;

	check(m->b);
	buddy_stats(m->b, &st);
	assert_int_equal(st.used, m->used);
	assert_int_equal(st.n_allocs, m->n_live);
	assert_int_equal(buddy_walk(m->b, match_walk, m), 0);
}

/*
 * An unmap function that does what the daemon's does to the allocator: takes the memory away
 * at once (PROT_NONE: a later touch by the allocator faults the test) and unmaps it later.
 */
struct deferred {
	void *addr[64];
	size_t len[64];
	size_t n, calls, bytes;
};

static void deferred_flush(struct deferred *d)
{
	for (size_t i = 0; i < d->n; i++)
		assert_int_equal(munmap(d->addr[i], d->len[i]), 0);
	d->n = 0;
}

static void deferred_unmap(void *data, void *addr, size_t len)
{
	struct deferred *d = data;

	assert_int_equal((uintptr_t)addr % 4096, 0);
	assert_true(len >= 4096);
	assert_int_equal(mprotect(addr, len, PROT_NONE), 0);
	if (d->n == 64)
		deferred_flush(d);
	d->addr[d->n] = addr;
	d->len[d->n++] = len;
	d->calls++;
	d->bytes += len;
}

static unsigned long run_property(uint64_t seed, uint64_t base, uint64_t size, uint64_t granule,
				  unsigned long n_ops, bool verify_each, struct deferred *unmap)
{
	struct rng r = { seed * 0x9E3779B97F4A7C15ull + 1 };
	struct model m = { .base = base, .granule = granule, .exact = verify_each };
	struct extents *initial = malloc(sizeof(*initial)), *final = malloc(sizeof(*final));
	struct buddy_stats st;

	assert_non_null(initial);
	assert_non_null(final);
	m.b = make(base, size, granule);
	if (unmap)
		buddy_set_unmap(m.b, deferred_unmap, unmap);
	buddy_stats(m.b, &st);
	m.total_granules = st.total / granule;
	m.base = base + (granule - base % granule) % granule;
	m.owner = calloc(m.total_granules, sizeof(*m.owner));
	m.live = calloc(m.total_granules, sizeof(*m.live));
	assert_non_null(m.owner);
	assert_non_null(m.live);
	walk(m.b, initial);

	for (unsigned long i = 0; i < n_ops; i++) {
		uint64_t dice = rnd(&r) % 100;

		if (m.n_live == 0 || dice < 42)
			op_alloc(&m, &r);
		else if (dice < 80)
			op_free(&m, &r);
		else if (dice < 93)
			op_resize(&m, &r);
		else
			op_reserve(&m, &r);
		m.ops++;
		if (verify_each)
			verify(&m);
	}
	verify(&m);
	/* each kind of outcome happened: the run explored full and refused states */
	assert_true(m.enomem > 0);
	assert_true(m.resized_in_place > 0);
	assert_true(m.resize_refused > 0);
	/* and the run paths: first fit across blocks, aligned, reservations taken and refused */
	assert_true(m.multi_block > 0);
	assert_true(m.aligned_runs > 0);
	assert_true(m.reserved > 0);
	assert_true(m.reserve_busy > 0);
	if (verify_each)
		print_message("seed %llu: %lu runs taken (%lu across blocks, %lu aligned), "
			      "%lu reserved, %lu refused\n",
			      (unsigned long long)seed, m.runs_taken, m.multi_block, m.aligned_runs,
			      m.reserved, m.reserve_busy);

	while (m.n_live)
		op_free(&m, &r);
	verify(&m);
	walk(m.b, final);
	assert_same_walk(initial, final);

	buddy_set_unmap(m.b, NULL, NULL);
	buddy_destroy(m.b);
	if (unmap)
		deferred_flush(unmap);
	free(m.owner);
	free(m.live);
	free(initial);
	free(final);
	return m.ops;
}

/* 8 seeds x 25 000 operations, every invariant checked after each one. */
static void test_property_checked(void **state)
{
	unsigned long total = 0;

	for (uint64_t seed = 1; seed <= 8; seed++)
		total += run_property(seed, 0x40000040 + seed * 0x1000, 0x10000 - seed * 64, 64,
				      25000, true, NULL);
	print_message("property test: %lu operations, invariants checked after each\n", total);
	assert_true(total >= 200000);
}

/* A larger range (4 MiB, 8-byte granules at an odd base), checked at the end. */
static void test_property_large(void **state)
{
	unsigned long ops = run_property(99, 0x880000008ull, 4u << 20, 8, 200000, false, NULL);

	print_message("property test (large): %lu operations\n", ops);
}

/*
 * The same with an unmap function (the daemon's): the index's old tables and resized arrays are
 * handed over, never touched again (PROT_NONE at once), and the allocator stays consistent.
 */
static void test_property_deferred_unmap(void **state)
{
	struct deferred d = { 0 };
	unsigned long ops = run_property(99, 0x880000008ull, 4u << 20, 8, 200000, false, &d);

	print_message("property test (deferred unmap): %lu operations, %zu hand-overs, %zu KiB\n",
		      ops, d.calls, d.bytes >> 10);
	assert_true(d.calls > 0);
	assert_int_equal(d.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_metadata_size),
		cmocka_unit_test(test_initial_carve_aligned),
		cmocka_unit_test(test_initial_carve_odd_base),
		cmocka_unit_test(test_initial_carve_partial_granules),
		cmocka_unit_test(test_address_space_edges),
		cmocka_unit_test(test_exact_placements),
		cmocka_unit_test(test_trimming),
		cmocka_unit_test(test_waste_under_one_granule),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_alloc_errors),
		cmocka_unit_test(test_non_power_of_two_range),
		cmocka_unit_test(test_free_misuse),
		cmocka_unit_test(test_coalesce_back),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_stats_fragmentation),
		cmocka_unit_test(test_walk_stops),
		cmocka_unit_test(test_nv12_frames),
		cmocka_unit_test(test_fill_equal_requests),
		cmocka_unit_test(test_run_across_blocks),
		cmocka_unit_test(test_property_checked),
		cmocka_unit_test(test_property_large),
		cmocka_unit_test(test_property_deferred_unmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
