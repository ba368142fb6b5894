/* SPDX-License-Identifier: MIT */
/*
 * The invariant checker is the oracle of every allocator test, so it is tested too: this file
 * compiles core/buddy.c, core/buddy-index.c and core/buddy-allocs.c itself to reach their state, breaks one
 * invariant at a time by hand, and expects buddy_check() to report it (-EUCLEAN and a
 * description), and buddy_walk() to refuse a state it cannot walk. It also makes the metadata
 * allocations fail, and expects the calls that needed them to change nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

static bool fail_calloc; /* the next calloc() in buddy.c fails */
static bool fail_grow;   /* every malloc() and realloc() in buddy*.c fails */

static void *fallible_calloc(size_t n, size_t size)
{
	if (fail_calloc) {
		fail_calloc = false;
		return NULL;
	}
	return calloc(n, size);
}

static void *fallible_malloc(size_t size)
{
	return fail_grow ? NULL : malloc(size);
}

static void *fallible_realloc(void *p, size_t size)
{
	return fail_grow ? NULL : realloc(p, size);
}

#define calloc  fallible_calloc
#define malloc  fallible_malloc
#define realloc fallible_realloc
#include "core/buddy-allocs.c"
#include "core/buddy-index.c"
#include "core/buddy.c"
#undef calloc
#undef malloc
#undef realloc

#define BASE 0x42000000u

/* A 4 KiB range of 64-byte granules: one run of 64 granules. */
static struct buddy *fresh(void)
{
	struct buddy *b = NULL;

	assert_int_equal(buddy_create(BASE, 0x1000, 64, &b), 0);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	return b;
}

/* Runs [0, 10), [11, 20), [21, 64): granules 10 and 20 reserved. */
static struct buddy *three_runs(void)
{
	struct buddy *b = fresh();

	assert_int_equal(buddy_reserve(b, BASE + 10 * 64, 64), 0);
	assert_int_equal(buddy_reserve(b, BASE + 20 * 64, 64), 0);
	assert_int_equal(b->runs.n, 3);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	return b;
}

static uint32_t node_at(const struct buddy *b, uint32_t start)
{
	struct path p;
	uint32_t x = descend(&b->runs, start, &p);

	assert_int_not_equal(x, BUDDY_NIL);
	return x;
}

static void expect_broken(struct buddy *b, const char *words)
{
	char why[256] = "";

	assert_int_equal(buddy_check(b, why, sizeof(why)), -EUCLEAN);
	if (!strstr(why, words))
		fail_msg("expected \"%s\" in \"%s\"", words, why);
	buddy_destroy(b);
}

static void test_longest_run_wrong(void **state)
{
	struct buddy *b = three_runs();

	b->runs.node[b->runs.root].max_len--;
	expect_broken(b, "longest run");
}

static void test_order_mask_wrong(void **state)
{
	struct buddy *b = three_runs();

	b->runs.node[node_at(b, 11)].mask ^= 1u << 3;
	expect_broken(b, "order mask");
}

static void test_height_wrong(void **state)
{
	struct buddy *b = three_runs();

	b->runs.node[b->runs.root].height++;
	expect_broken(b, "height");
}

/* Right heights and figures, but a chain: not an AVL tree. */
static void test_unbalanced(void **state)
{
	struct buddy *b = three_runs();
	uint32_t x0 = node_at(b, 0), x1 = node_at(b, 11), x2 = node_at(b, 21);
	struct buddy_runs *r = &b->runs;

	r->node[x0].left = r->node[x1].left = r->node[x2].left = BUDDY_NIL;
	r->node[x2].right = BUDDY_NIL;
	r->node[x1].right = x2;
	r->node[x0].right = x1;
	r->root = x0;
	fix(r, x2);
	fix(r, x1);
	fix(r, x0);
	expect_broken(b, "height 3, children 0 and 2");
}

static void test_runs_out_of_order(void **state)
{
	struct buddy *b = three_runs();
	uint32_t xl = node_at(b, 0), xh = node_at(b, 21);
	struct buddy_run *lo = &b->runs.node[xl], *hi = &b->runs.node[xh];
	struct buddy_run t = *lo;

	lo->start = hi->start;
	lo->len = hi->len;
	hi->start = t.start;
	hi->len = t.len;
	fix(&b->runs, xl);
	fix(&b->runs, xh);
	fix(&b->runs, b->runs.root);
	expect_broken(b, "out of order");
}

/* Two runs that touch should have been one. */
static void test_runs_not_joined(void **state)
{
	struct buddy *b = three_runs();

	buddy_allocs_remove(&b->allocs, buddy_allocs_find(&b->allocs, 10));
	buddy_runs_insert(&b->runs, 10, 1);
	expect_broken(b, "touches the run before it");
}

static void test_run_outside_range(void **state)
{
	struct buddy *b = three_runs();

	b->runs.node[node_at(b, 21)].len++;
	expect_broken(b, "outside the range");
}

static void test_counters(void **state)
{
	struct buddy *b = three_runs();

	b->runs.n_free[3]++;
	expect_broken(b, "order 3: 2 free blocks counted, 3 recorded");
	b = three_runs();
	b->runs.free_granules--;
	expect_broken(b, "free granules");
}

static void test_tree_corrupt(void **state)
{
	struct buddy *b = three_runs();

	b->runs.node[b->runs.root].left = 7; /* past the last node */
	expect_broken(b, "corrupt");
	b = three_runs();
	b->runs.node[b->runs.root].left = b->runs.root; /* a cycle */
	expect_broken(b, "corrupt");
	b = three_runs();
	b->runs.n = b->runs.cap + 1;
	expect_broken(b, "runs in an array");
	b = three_runs();
	b->runs.n--; /* a node the count leaves out */
	expect_broken(b, "corrupt");
}

static void test_allocation_misplaced(void **state)
{
	struct buddy *b = three_runs();
	uint32_t s = buddy_allocs_find(&b->allocs, 10), mask = slot_mask(&b->allocs);
	uint32_t t = (s + mask) & mask; /* the slot before its home: never probed */

	assert_int_equal(b->allocs.slot[t].len, 0); /* empty */
	b->allocs.slot[t] = b->allocs.slot[s];
	b->allocs.slot[s].len = 0;
	expect_broken(b, "not where its hash leads");
	b = three_runs();
	b->allocs.n++;
	expect_broken(b, "holds 2 entries, 3 recorded");
}

static void test_tiling(void **state)
{
	struct buddy *b = three_runs();
	int count = 0;

	/* an allocation the table lost: nothing starts at granule 10 */
	b->allocs.slot[buddy_allocs_find(&b->allocs, 10)].len = 0;
	b->allocs.n--;
	assert_int_equal(buddy_walk(b, NULL, &count), -EUCLEAN);
	expect_broken(b, "do not tile");
	/* an allocation that runs into the free run after it */
	b = three_runs();
	b->allocs.slot[buddy_allocs_find(&b->allocs, 20)].len = 2;
	expect_broken(b, "do not tile");
	/* an allocation inside another one: the tiling never reaches it */
	b = three_runs();
	b->allocs.slot[buddy_allocs_find(&b->allocs, 20)].len = 2;
	buddy_runs_set(&b->runs, 21, 22, 42);
	buddy_allocs_insert(&b->allocs, 21, 1);
	expect_broken(b, "2 allocations tile the range, 3 recorded");
}

static void test_room_for_runs(void **state)
{
	struct buddy *b = fresh();

	assert_int_equal(buddy_reserve(b, BASE, 64), 0);
	assert_int_equal(buddy_reserve(b, BASE + 64, 64), 0);
	b->runs.cap = 2;
	expect_broken(b, "room for 2 runs, 2 allocations");
}

static void test_create_out_of_memory(void **state)
{
	struct buddy *b = NULL;

	fail_calloc = true;
	assert_int_equal(buddy_create(BASE, 0x1000, 64, &b), -ENOMEM);
	fail_grow = true;
	assert_int_equal(buddy_create(BASE, 0x1000, 64, &b), -ENOMEM);
	fail_grow = false;
	assert_null(b);
}

/* Growing the metadata fails: the call that needed it is refused and changes nothing. */
static void test_grow_out_of_memory(void **state)
{
	struct buddy *b = NULL;
	struct buddy_stats before, after;
	uint64_t addr[16], a;
	size_t bytes;

	assert_int_equal(buddy_create(BASE, 0x10000, 64, &b), 0);
	/* 12 allocations with a run between each two: the run array (8) has grown */
	for (int i = 0; i < 12; i++)
		assert_int_equal(buddy_alloc(b, 64, 128, &addr[i], NULL), 0);
	buddy_stats(b, &before);
	bytes = buddy_metadata_bytes(b);
	fail_grow = true;
	/* the 13th needs the table (16 slots, 3/4 full) to grow */
	assert_int_equal(buddy_alloc(b, 64, 0, &a, NULL), -ENOMEM);
	assert_int_equal(buddy_reserve(b, BASE + 0x8000, 64), -ENOMEM);
	buddy_stats(b, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(buddy_metadata_bytes(b), bytes);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	/* freeing never needs memory, and a shrink that fails keeps the larger arrays */
	for (int i = 0; i < 12; i++)
		assert_int_equal(buddy_free(b, addr[i], 64), 0);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	fail_grow = false;
	assert_int_equal(buddy_metadata_bytes(b), bytes);
	buddy_stats(b, &after);
	assert_int_equal(after.free, after.total);
	assert_int_equal(after.n_allocs, 0);
	buddy_destroy(b);
}

/* A 64 MiB range of 64-byte granules holding @n allocations of one granule, from granule 0. */
static struct buddy *filled(uint32_t n)
{
	struct buddy *b = NULL;
	uint64_t addr;

	assert_int_equal(buddy_create(BASE, 64 << 20, 64, &b), 0);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
		assert_int_equal(addr, BASE + (uint64_t)i * 64);
	}
	return b;
}

/*
 * A large allocation table moves to its new size a few slots per call, not in the call that
 * resizes it: right after the resize most entries are still in the old table, every allocation
 * is found in one table or the other (buddy_check() looks each up, and the walk tiles the
 * range with them), the old table goes when emptied, and everything freed leaves what a new
 * allocator holds.
 */
static void test_allocs_move_incrementally(void **state)
{
	/* 2^15 slots hold 24576: the next allocation grows the table to 2^16 (512 KiB) */
	struct buddy *b = filled(24576);
	size_t one = buddy_metadata_size(BASE, 64, 64);
	uint64_t addr;
	bool shrinking = false;

	assert_null(b->allocs.old);
	assert_int_equal(b->allocs.bits, 15);
	assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
	assert_int_equal(b->allocs.bits, 16);
	assert_non_null(b->allocs.old);
	assert_int_equal(b->allocs.old_bits, 15);
	assert_true(b->allocs.old_n > 24576 - 64); /* the allocation moved at most 32 slots */
	assert_int_equal(b->allocs.n, 24577);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	/* the allocations that follow finish the move */
	for (uint32_t i = 24577; b->allocs.old; i++) {
		assert_true(i < 24577 + 4096);
		assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
		if (i % 512 == 0)
			assert_int_equal(buddy_check(b, NULL, 0), 0);
	}
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	/* freed from the first: the table halves below 1/8, a few slots per free */
	for (uint64_t a = BASE; b->allocs.n > 0; a += 64) {
		unsigned bits = b->allocs.bits;

		assert_int_equal(buddy_free(b, a, 64), 0);
		if (b->allocs.bits < bits && bits == 16) {
			shrinking = true;
			assert_non_null(b->allocs.old);
			assert_true(b->allocs.old_n > b->allocs.n - 64);
			assert_int_equal(buddy_check(b, NULL, 0), 0);
		}
		if (b->allocs.old && (a / 64) % 499 == 0)
			assert_int_equal(buddy_check(b, NULL, 0), 0);
	}
	assert_true(shrinking);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	assert_null(b->allocs.old);
	assert_int_equal(buddy_metadata_bytes(b), one);
	buddy_destroy(b);
}

/* A resize while a move is under way finishes that move first: no entry is lost. */
static void test_allocs_resize_during_move(void **state)
{
	struct buddy *b = filled(24577);
	struct buddy_allocs *t = &b->allocs;

	assert_non_null(t->old);
	assert_true(t->old_n > 0);
	assert_int_equal(rehash(t, 17), 0);
	assert_int_equal(t->bits, 17);
	assert_int_equal(t->old_bits, 16); /* the 2^15 table is gone, the 2^16 one moves */
	assert_int_equal(t->old_n, 24577);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	for (uint32_t i = 0; i < 24577; i++)
		assert_int_equal(buddy_free(b, BASE + (uint64_t)i * 64, 64), 0);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	assert_int_equal(t->n, 0);
	buddy_destroy(b);
}

/*
 * During a move, a lookup tries the old table first: finding the entries not yet moved reads no
 * byte of the new table (made inaccessible here, so a read faults). Reading the new table first
 * mapped a page at each entry's random home there (a fault per lookup until all were mapped:
 * 2-3 ms per 128 frees after a shrink on a virtual machine).
 */
static void test_allocs_find_reads_old_first(void **state)
{
	struct buddy *b = filled(24577); /* the table just grew to 2^16 slots (512 KiB, mapped) */
	struct buddy_allocs *t = &b->allocs;
	size_t bytes = sizeof(struct buddy_slot) << t->bits;
	uint32_t *keys = malloc(t->old_n * sizeof(*keys)), n = 0;

	assert_non_null(keys);
	assert_non_null(t->old);
	assert_true(t->old_n > 24577 - 64);
	for (uint32_t i = t->cursor; i < UINT32_C(1) << t->old_bits; i++) {
		if (t->old[i].len)
			keys[n++] = t->old[i].start;
	}
	assert_int_equal(n, t->old_n);
	assert_int_equal(mprotect(t->slot, bytes, PROT_NONE), 0);
	for (uint32_t i = 0; i < n; i++)
		assert_true(buddy_allocs_find(t, keys[i]) & BUDDY_OLD_SLOT);
	assert_int_equal(mprotect(t->slot, bytes, PROT_READ | PROT_WRITE), 0);
	free(keys);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	buddy_destroy(b);
}

/* What an unmap function was handed (it unmaps at once). */
struct handed {
	void *addr;
	size_t len;
	unsigned calls;
};

static void record_unmap(void *data, void *addr, size_t len)
{
	struct handed *h = data;

	h->addr = addr;
	h->len = len;
	h->calls++;
	assert_int_equal(munmap(addr, len), 0);
}

/*
 * With an unmap function, a mapped run array that shrinks stays in place and hands over only
 * its tail: no copy of the runs into fresh pages (a fault per page) in the free that shrinks it.
 */
static void test_runs_shrink_in_place(void **state)
{
	struct buddy *b = fresh();
	struct buddy_runs *r = &b->runs;
	struct handed h = { 0 };
	size_t node = sizeof(struct buddy_run);
	struct buddy_run *before;

	buddy_set_unmap(b, record_unmap, &h);
	assert_int_equal(buddy_runs_reserve(r, 8192), 0);
	assert_int_equal(r->cap, 8192);
	before = r->node;
	buddy_runs_trim(r, 1024); /* to 2048 runs: 64 KiB, still mapped */
	assert_int_equal(r->cap, 2048);
	assert_ptr_equal(r->node, before);
	assert_int_equal(h.calls, 1);
	assert_ptr_equal(h.addr, (unsigned char *)before + 2048 * node);
	assert_int_equal(h.len, (8192 - 2048) * node);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);
}

/* How many pages of [@addr, @addr + @len) are in memory. */
static size_t resident(const void *addr, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = len / page, in = 0;
	unsigned char *vec = malloc(n);

	assert_non_null(vec);
	assert_int_equal(mincore((void *)addr, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	return in;
}

/*
 * The allocation tables a populate function was told of: zero when told, each mapped. With
 * `touch`, it faults each in at once (by writing zeros, as MADV_POPULATE_WRITE would); else it
 * leaves them alone, as a thread that has not got there yet.
 */
static struct {
	void *addr[32];
	size_t len[32];
	unsigned n;
	bool touch;
} told;

static void record_populate(void *data, void *addr, size_t len)
{
	struct handed *h = data;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	assert_non_null(h); /* the unmap function's data */
	assert_true(told.n < 32);
	assert_true(len >= (64u << 10));
	assert_int_equal(resident(addr, len), 0); /* untouched */
	for (size_t i = 0; told.touch && i < len; i += page)
		((unsigned char *)addr)[i] = 0;
	told.addr[told.n] = addr;
	told.len[told.n++] = len;
}

/* The table kept aside, if any, has not been touched (unless the populate function did). */
static void aside_untouched(const struct buddy *b)
{
	if (b->allocs.next && !told.touch)
		assert_int_equal(resident(b->allocs.next, (size_t)8 << b->allocs.next_bits), 0);
}

static struct buddy *watched(bool touch, struct handed *h)
{
	struct buddy *b = NULL;

	assert_int_equal(buddy_create(BASE, 64 << 20, 64, &b), 0);
	buddy_set_unmap(b, record_unmap, h);
	buddy_set_populate(b, record_populate);
	told.n = 0;
	told.touch = touch;
	return b;
}

/* Allocates one granule at granule @i, which must be the first free one. */
static void alloc_at(struct buddy *b, uint32_t i)
{
	uint64_t addr;

	assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
	assert_int_equal(addr, BASE + (uint64_t)i * 64);
}

/*
 * With an unmap function, the populate function hears of each new mapped allocation table
 * (growing and shrinking) before the allocator writes it, and of no small one; it becomes the
 * table once faulted in. Setting the unmap function again clears it.
 */
static void test_allocs_populate_told(void **state)
{
	struct handed h = { 0 };
	struct buddy *b = watched(true, &h);
	unsigned seen = 0;
	uint32_t since = 0;

	for (uint32_t i = 0; i < 2 * 24577; i++) {
		if (i < 24577)
			alloc_at(b, i);
		else
			assert_int_equal(buddy_free(b, BASE + (uint64_t)(i - 24577) * 64, 64), 0);
		since++;
		if (told.n != seen) {
			seen = told.n;
			since = 0;
		}
		/* a table faulted in waits aside until the look in the NEXT_CHECK_CALLS-th call,
		 * counting the one that made it */
		if (told.n > 0 && since < NEXT_CHECK_CALLS - 1)
			assert_ptr_equal(b->allocs.next, told.addr[told.n - 1]);
		if (told.n > 0 && since == NEXT_CHECK_CALLS - 1)
			assert_ptr_equal(b->allocs.slot, told.addr[told.n - 1]);
		if (i == 24576) {
			assert_true(told.n >= 3); /* 64, 128, 256 and 512 KiB tables */
			assert_int_equal(told.len[told.n - 1], (size_t)8 << b->allocs.bits);
		}
	}
	assert_true(told.n >= 6); /* and back down */
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	buddy_set_unmap(b, record_unmap, &h);
	told.n = 0;
	for (uint32_t i = 0; i < 24577; i++)
		alloc_at(b, i);
	assert_int_equal(told.n, 0);
	assert_null(b->allocs.next);
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);
}

/*
 * The allocation count at which the table of 2^15 slots grows to 2^16 (freshly made from
 * granule 0 up), and at which the populate function heard of the new one.
 */
static void grow_to_16(struct buddy *b, uint32_t *told_at, uint32_t *grew_at)
{
	*told_at = *grew_at = 0;
	for (uint32_t i = 0; !*grew_at; i++) {
		assert_true(i < 24577);
		alloc_at(b, i);
		if (!*told_at && told.n > 0 && told.len[told.n - 1] == (512u << 10))
			*told_at = i + 1;
		if (b->allocs.bits == 16)
			*grew_at = i + 1;
		aside_untouched(b);
		if (i % 1024 == 0 || *grew_at)
			assert_int_equal(buddy_check(b, NULL, 0), 0);
	}
	assert_ptr_equal(b->allocs.slot, told.addr[told.n - 1]);
}

/*
 * Growth does not wait for the populate function in the caller: the next table is made at 5/8
 * load and kept aside, and is taken once faulted in (by NEXT_CHECK_CALLS calls later); one the
 * function has not faulted in is taken at 3/4 load, where the table must grow. It counts in
 * the allocator's memory meanwhile.
 */
static void test_allocs_grow_waits_for_populate(void **state)
{
	struct handed h = { 0 };
	struct buddy *b = watched(true, &h);
	uint32_t told_at, grew_at;
	size_t bytes;

	grow_to_16(b, &told_at, &grew_at);
	assert_int_equal(told_at, 20481); /* 5/8 of 2^15, and one */
	assert_int_equal(grew_at, told_at + NEXT_CHECK_CALLS - 1);
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);

	b = watched(false, &h);
	grow_to_16(b, &told_at, &grew_at);
	assert_int_equal(told_at, 20481);
	assert_int_equal(grew_at, 24577); /* 3/4 of 2^15, and one */
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);

	b = watched(false, &h);
	for (uint32_t i = 0; i < 20480; i++)
		alloc_at(b, i);
	bytes = buddy_metadata_bytes(b);
	assert_null(b->allocs.next);
	alloc_at(b, 20480);
	assert_non_null(b->allocs.next);
	assert_int_equal(buddy_metadata_bytes(b), bytes + (512u << 10));
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);
}

/*
 * The same for a shrink, which has no limit: the smaller table is made below 1/8 load, taken
 * once faulted in, and below 3/32 all the same; every allocation is found throughout.
 */
static void test_allocs_shrink_waits_for_populate(void **state)
{
	for (int touch = 0; touch < 2; touch++) {
		struct handed h = { 0 };
		struct buddy *b = watched(touch, &h);
		uint32_t made_at = 0, shrank_at = 0;

		for (uint32_t i = 0; i < 24577 + 4096; i++) /* grown to 2^16, the move over */
			alloc_at(b, i);
		assert_int_equal(b->allocs.bits, 16);
		assert_null(b->allocs.old);
		for (uint32_t i = 0; !shrank_at; i++) {
			assert_int_equal(buddy_free(b, BASE + (uint64_t)i * 64, 64), 0);
			if (!made_at && b->allocs.next)
				made_at = b->allocs.n;
			if (b->allocs.bits == 15)
				shrank_at = b->allocs.n;
			aside_untouched(b);
			if (i % 1024 == 0 || shrank_at)
				assert_int_equal(buddy_check(b, NULL, 0), 0);
		}
		assert_int_equal(made_at, 8191); /* below 1/8 of 2^16 */
		if (touch)
			assert_int_equal(shrank_at, made_at - (NEXT_CHECK_CALLS - 1));
		else
			assert_int_equal(shrank_at, 6143); /* below 3/32 */
		assert_ptr_equal(b->allocs.slot, told.addr[told.n - 1]);
		while (b->allocs.n > 0) {
			uint32_t s = 0;

			while (buddy_allocs_find(&b->allocs, s) == BUDDY_NIL)
				s++;
			assert_int_equal(buddy_free(b, BASE + (uint64_t)s * 64, 64), 0);
		}
		assert_int_equal(buddy_check(b, NULL, 0), 0);
		assert_null(b->allocs.next);
		buddy_set_unmap(b, NULL, NULL);
		buddy_destroy(b);
	}
}

/*
 * A table kept aside for one direction is given back, unused (not even read), once the count
 * has gone far the other way: a shrink's when the count is back over 1/4, a growth's when it is
 * under 3/8.
 */
static void test_allocs_next_dropped(void **state)
{
	struct handed h = { 0 };
	struct buddy *b = watched(false, &h);
	uint64_t *addr = malloc(65536 * sizeof(*addr));
	uint32_t n = 0, first = 0;
	void *next;

	assert_non_null(addr);
	for (; n < 24577 + 4096; n++)
		assert_int_equal(buddy_alloc(b, 64, 0, &addr[n], NULL), 0);
	while (b->allocs.n >= 8192)
		assert_int_equal(buddy_free(b, addr[first++], 64), 0);
	next = b->allocs.next;
	assert_non_null(next);
	assert_int_equal(b->allocs.next_bits, 15);
	aside_untouched(b);
	h.calls = 0;
	while (b->allocs.n <= 16384)
		assert_int_equal(buddy_alloc(b, 64, 0, &addr[n++], NULL), 0);
	assert_null(b->allocs.next);
	assert_int_equal(h.calls, 1);
	assert_ptr_equal(h.addr, next);
	assert_int_equal(h.len, 256u << 10);
	while (b->allocs.n <= 40960) /* 5/8 of 2^16 */
		assert_int_equal(buddy_alloc(b, 64, 0, &addr[n++], NULL), 0);
	next = b->allocs.next;
	assert_non_null(next);
	assert_int_equal(b->allocs.next_bits, 17);
	aside_untouched(b);
	h.calls = 0;
	while (b->allocs.n >= 24576) /* 3/8 */
		assert_int_equal(buddy_free(b, addr[first++], 64), 0);
	assert_null(b->allocs.next);
	assert_int_equal(h.calls, 1);
	assert_ptr_equal(h.addr, next);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	free(addr);
	buddy_set_unmap(b, NULL, NULL);
	buddy_destroy(b);
}

/* An entry of the old table that the count leaves out, or one out of its place, is reported. */
static void test_old_allocs_broken(void **state)
{
	struct buddy *b = filled(24577);
	uint32_t s;

	b->allocs.old_n--;
	expect_broken(b, "old allocation table holds");
	b = filled(24577);
	s = buddy_allocs_find(&b->allocs, 24575);
	for (uint32_t i = 24574; !(s & BUDDY_OLD_SLOT); i--) /* one not moved yet */
		s = buddy_allocs_find(&b->allocs, i);
	buddy_allocs_slot(&b->allocs, s)->start = 24576 + 100; /* a granule no one allocated */
	expect_broken(b, "old table");
}

/* Without a buffer for the reason, a broken state is still reported. */
static void test_check_without_reason(void **state)
{
	struct buddy *b = fresh();

	b->runs.free_granules++;
	assert_int_equal(buddy_check(b, NULL, 0), -EUCLEAN);
	buddy_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_run_wrong),
		cmocka_unit_test(test_order_mask_wrong),
		cmocka_unit_test(test_height_wrong),
		cmocka_unit_test(test_unbalanced),
		cmocka_unit_test(test_runs_out_of_order),
		cmocka_unit_test(test_runs_not_joined),
		cmocka_unit_test(test_run_outside_range),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_tree_corrupt),
		cmocka_unit_test(test_allocation_misplaced),
		cmocka_unit_test(test_tiling),
		cmocka_unit_test(test_room_for_runs),
		cmocka_unit_test(test_create_out_of_memory),
		cmocka_unit_test(test_grow_out_of_memory),
		cmocka_unit_test(test_check_without_reason),
		cmocka_unit_test(test_allocs_move_incrementally),
		cmocka_unit_test(test_allocs_resize_during_move),
		cmocka_unit_test(test_allocs_find_reads_old_first),
		cmocka_unit_test(test_runs_shrink_in_place),
		cmocka_unit_test(test_allocs_populate_told),
		cmocka_unit_test(test_allocs_grow_waits_for_populate),
		cmocka_unit_test(test_allocs_shrink_waits_for_populate),
		cmocka_unit_test(test_allocs_next_dropped),
		cmocka_unit_test(test_old_allocs_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
