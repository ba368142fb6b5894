/* SPDX-License-Identifier: MIT */
/*
 * The invariant checker is the oracle of every allocator test, so it is tested too: this file
 * compiles core/buddy.c itself to reach its state, breaks one invariant at a time by hand,
 * and expects buddy_check() to report it (-EUCLEAN and a description), and buddy_walk() to
 * refuse a state it cannot walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool fail_calloc; /* the next calloc() in buddy.c fails */

static void *fallible_calloc(size_t n, size_t size)
{
	if (fail_calloc) {
		fail_calloc = false;
		return NULL;
	}
	return calloc(n, size);
}

#define calloc fallible_calloc
#include "core/buddy.c"
#undef calloc

/* A 4 KiB range of 64-byte granules: one free block of order 6. */
static struct buddy *fresh(void)
{
	struct buddy *b = NULL;

	assert_int_equal(buddy_create(0x42000000, 0x1000, 64, &b), 0);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	return b;
}

static void expect_broken(struct buddy *b, const char *words)
{
	char why[256] = "";

	assert_int_equal(buddy_check(b, why, sizeof(why)), -EUCLEAN);
	if (!strstr(why, words))
		fail_msg("expected \"%s\" in \"%s\"", words, why);
	buddy_destroy(b);
}

static void test_free_buddies_unmerged(void **state)
{
	struct buddy *b = fresh();

	unlink_block(b, 0, 6);
	push(b, 0, 5);
	push(b, 32, 5);
	b->free_granules = 64;
	expect_broken(b, "free buddies");
}

static void test_misaligned_free_block(void **state)
{
	struct buddy *b = fresh();

	unlink_block(b, 0, 6);
	push(b, 0, 0);
	push(b, 1, 1); /* order 1 at an odd granule */
	push(b, 3, 0);
	for (uint32_t i = 4; i < 64; i += 4)
		push(b, i, 2);
	expect_broken(b, "misplaced");
}

static void test_order_too_large(void **state)
{
	struct buddy *b = fresh();

	b->state[0] = ST_FREE | 7;
	expect_broken(b, "misplaced");
}

static void test_interior_not_none(void **state)
{
	struct buddy *b = fresh();

	b->state[5] = ST_ALLOC;
	expect_broken(b, "inside the extent");
}

static void test_bad_allocation_length(void **state)
{
	struct buddy *b = fresh();
	uint64_t addr;

	assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
	b->link[0].next = 0;
	expect_broken(b, "bad length");
	b = fresh();
	assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
	b->link[0].next = 65;
	expect_broken(b, "bad length");
}

static void test_garbage_head(void **state)
{
	struct buddy *b = fresh();
	int count = 0;

	b->state[0] = ST_NONE;
	assert_int_equal(buddy_walk(b, NULL, &count), -EUCLEAN);
	expect_broken(b, "where an extent should start");
}

static void test_list_links(void **state)
{
	struct buddy *b = fresh();
	uint64_t addr;

	/* granules 0 and 2 free and not buddies (1 and 3 are allocated): a list of two */
	for (int i = 0; i < 4; i++)
		assert_int_equal(buddy_alloc(b, 64, 0, &addr, NULL), 0);
	assert_int_equal(buddy_free(b, 0x42000000, 64), 0);
	assert_int_equal(buddy_free(b, 0x42000080, 64), 0);
	assert_int_equal(buddy_check(b, NULL, 0), 0);
	assert_int_equal(b->n_free[0], 2);
	b->link[b->link[b->head[0]].next].prev = NIL;
	expect_broken(b, "free list 0 holds granule");
}

/* A list that loops back is caught (by its back links) instead of walked forever. */
static void test_list_cycle_terminates(void **state)
{
	struct buddy *b = fresh();

	b->link[0].next = 0;
	expect_broken(b, "free list 6");
}

static void test_list_member_wrong_order(void **state)
{
	struct buddy *b = fresh();

	b->head[3] = 0; /* the order-6 block also listed under order 3 */
	b->n_free[3] = 1;
	b->order_mask |= 1u << 3;
	expect_broken(b, "free list 3");
}

static void test_counters(void **state)
{
	struct buddy *b = fresh();

	b->free_granules++;
	expect_broken(b, "counters");
	b = fresh();
	b->n_allocs = 3;
	expect_broken(b, "counters");
	b = fresh();
	b->n_free[6] = 2;
	expect_broken(b, "order 6");
	b = fresh();
	b->order_mask |= 1u << 2;
	expect_broken(b, "mask");
}

static void test_create_out_of_memory(void **state)
{
	struct buddy *b = NULL;

	fail_calloc = true;
	assert_int_equal(buddy_create(0x42000000, 0x1000, 64, &b), -ENOMEM);
	assert_null(b);
}

static void test_list_index_out_of_range(void **state)
{
	struct buddy *b = fresh();

	b->head[6] = b->n + 5;
	expect_broken(b, "corrupt");
}

/* A free block the tiling finds but no list holds. */
static void test_free_block_not_listed(void **state)
{
	struct buddy *b = fresh();

	unlink_block(b, 0, 6);
	b->state[0] = ST_FREE | 6;
	expect_broken(b, "order 6: 0 in list, 0 counted, 1 found");
}

/* Without a buffer for the reason, a broken state is still reported. */
static void test_check_without_reason(void **state)
{
	struct buddy *b = fresh();

	b->n_allocs = 1;
	assert_int_equal(buddy_check(b, NULL, 0), -EUCLEAN);
	buddy_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_buddies_unmerged),
		cmocka_unit_test(test_misaligned_free_block),
		cmocka_unit_test(test_order_too_large),
		cmocka_unit_test(test_interior_not_none),
		cmocka_unit_test(test_bad_allocation_length),
		cmocka_unit_test(test_garbage_head),
		cmocka_unit_test(test_list_links),
		cmocka_unit_test(test_list_cycle_terminates),
		cmocka_unit_test(test_list_member_wrong_order),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_create_out_of_memory),
		cmocka_unit_test(test_list_index_out_of_range),
		cmocka_unit_test(test_free_block_not_listed),
		cmocka_unit_test(test_check_without_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
