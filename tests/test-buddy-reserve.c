/* SPDX-License-Identifier: MIT */
/*
 * buddy_reserve() and pool_reserve(): a restarted daemon takes back, at their addresses, the
 * blocks its clients still hold. Every operation is followed by buddy_check(); a reserve
 * freed again must coalesce back to the structure the range started with, and a reserve of
 * anything not wholly free must change nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buddy.h"
#include "core/pool.h"

static void check(const struct buddy *b)
{
	char why[256] = "";

	if (buddy_check(b, why, sizeof(why)) < 0)
		fail_msg("buddy_check: %s", why);
}

static void assert_same_stats(const struct buddy *b, const struct buddy_stats *want)
{
	struct buddy_stats st;

	buddy_stats(b, &st);
	assert_memory_equal(&st, want, sizeof(st));
}

static void test_reserve_then_free_coalesces(void **state)
{
	/* An odd base and size, so that the initial carve has many blocks. */
	static const uint64_t base = 0x40000040, size = 0x7fc0;
	struct buddy *b = NULL;
	struct buddy_stats initial;
	uint64_t got;

	assert_int_equal(buddy_create(base, size, 64, &b), 0);
	buddy_stats(b, &initial);
	for (uint64_t off = 0; off + 64 <= size; off += 64 * 7) {
		for (uint64_t len = 64; off + len <= size; len = len * 3 + 64) {
			assert_int_equal(buddy_reserve(b, base + off, len), 0);
			check(b);
			assert_int_equal(buddy_alloc_size(b, base + off, &got), 0);
			assert_int_equal(got, len);
			assert_int_equal(buddy_free(b, base + off, len), 0);
			check(b);
			assert_same_stats(b, &initial);
		}
	}
	buddy_destroy(b);
}

static void test_reserve_many_then_free_all(void **state)
{
	static const uint64_t base = 0x80000000, size = 0x10000;
	uint64_t addrs[] = { 0x80000040, 0x80000400, 0x80001000, 0x80003fc0, 0x8000a000 };
	uint64_t sizes[] = { 64, 0xa00, 0x1000, 0x80, 0x5000 };
	struct buddy *b = NULL;
	struct buddy_stats initial, st;

	assert_int_equal(buddy_create(base, size, 64, &b), 0);
	buddy_stats(b, &initial);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(buddy_reserve(b, addrs[i], sizes[i]), 0);
		check(b);
	}
	buddy_stats(b, &st);
	assert_int_equal(st.n_allocs, 5);
	assert_int_equal(st.used, 64 + 0xa00 + 0x1000 + 0x80 + 0x5000);
	/* What is left is served around them, never over them. */
	for (;;) {
		uint64_t a, s;

		if (buddy_alloc(b, 64, 0, &a, &s) < 0)
			break;
		check(b);
		for (size_t i = 0; i < 5; i++)
			assert_true(a + s <= addrs[i] || a >= addrs[i] + sizes[i]);
	}
	buddy_stats(b, &st);
	assert_int_equal(st.free, 0);
	buddy_destroy(b);

	/* Freed in another order than reserved, everything coalesces back. */
	assert_int_equal(buddy_create(base, size, 64, &b), 0);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(buddy_reserve(b, addrs[i], sizes[i]), 0);
	for (size_t i = 5; i-- > 0;) {
		assert_int_equal(buddy_free(b, addrs[(i * 3) % 5], 0), 0);
		check(b);
	}
	assert_same_stats(b, &initial);
	buddy_destroy(b);
}

static void test_reserve_refused(void **state)
{
	static const uint64_t base = 0x1000, size = 0x1000;
	struct buddy *b = NULL;
	struct buddy_stats before;
	uint64_t a, s;

	assert_int_equal(buddy_create(base, size, 64, &b), 0);
	assert_int_equal(buddy_alloc(b, 0x100, 0, &a, &s), 0);
	assert_int_equal(a, 0x1000);
	buddy_stats(b, &before);

	assert_int_equal(buddy_reserve(b, 0x1000, 0), -EINVAL);     /* size 0 */
	assert_int_equal(buddy_reserve(b, 0x1210, 64), -EINVAL);    /* not granule-aligned */
	assert_int_equal(buddy_reserve(b, 0x0fc0, 64), -EINVAL);    /* before the range */
	assert_int_equal(buddy_reserve(b, 0x2000, 64), -EINVAL);    /* after it */
	assert_int_equal(buddy_reserve(b, 0x1f00, 0x200), -EINVAL); /* past its end */
	assert_int_equal(buddy_reserve(b, 0x1000, 64), -EBUSY);     /* the allocation's head */
	assert_int_equal(buddy_reserve(b, 0x1080, 64), -EBUSY);     /* inside it */
	assert_int_equal(buddy_reserve(b, 0x1f00, 64), 0);
	assert_int_equal(buddy_free(b, 0x1f00, 64), 0);
	assert_int_equal(buddy_reserve(b, 0x1100, 0x100), 0); /* right after it: free */
	assert_int_equal(buddy_free(b, 0x1100, 0x100), 0);
	/* From free memory into the allocation, or across it. */
	assert_int_equal(buddy_reserve(b, 0x1800, 0x800), 0);
	assert_int_equal(buddy_reserve(b, 0x1400, 0x800), -EBUSY);
	assert_int_equal(buddy_free(b, 0x1800, 0), 0);
	check(b);
	assert_same_stats(b, &before);
	/* Twice the same block: the second is refused. */
	assert_int_equal(buddy_reserve(b, 0x1400, 0x40), 0);
	assert_int_equal(buddy_reserve(b, 0x1400, 0x40), -EBUSY);
	assert_int_equal(buddy_free(b, 0x1400, 0x40), 0);
	check(b);
	assert_same_stats(b, &before);
	buddy_destroy(b);
}

/* A pseudo-random mix of alloc, reserve (at addresses just freed, or anywhere) and free. */
static void test_reserve_property(void **state)
{
	enum { N = 64 };
	static const uint64_t base = 0x10000000, size = 0x40000 - 0x140;
	uint64_t addr[N] = { 0 }, len[N] = { 0 };
	struct buddy *b = NULL;
	struct buddy_stats initial;
	unsigned seed = 12345;

	assert_int_equal(buddy_create(base, size, 64, &b), 0);
	buddy_stats(b, &initial);
	for (int step = 0; step < 20000; step++) {
		unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (N - 1);
		unsigned r = (seed = seed * 1103515245u + 12345u) >> 16;

		if (len[i]) {
			assert_int_equal(buddy_free(b, addr[i], len[i]), 0);
			if (r & 1) { /* take it back where it was, like a restart */
				assert_int_equal(buddy_reserve(b, addr[i], len[i]), 0);
				check(b);
				continue;
			}
			len[i] = 0;
		} else if (r & 2) {
			uint64_t a = base + (r % (size / 64)) * 64, l = 64 * (1 + r % 97);
			int ret = buddy_reserve(b, a, l);

			assert_true(ret == 0 || ret == -EBUSY || ret == -EINVAL);
			if (ret == 0) {
				addr[i] = a;
				len[i] = l;
			}
		} else if (buddy_alloc(b, 64 * (1 + r % 300), 0, &addr[i], &len[i]) < 0) {
			len[i] = 0;
		}
		check(b);
	}
	for (unsigned i = 0; i < N; i++)
		if (len[i])
			assert_int_equal(buddy_free(b, addr[i], len[i]), 0);
	check(b);
	assert_same_stats(b, &initial);
	buddy_destroy(b);
}

static void test_pool_reserve(void **state)
{
	struct dt_region regions[2] = {
		{ .label = "a", .base = 0x1000, .size = 0x1000, .attr = SMH_REG_ATTR_CACHEABLE },
		{ .label = "b", .base = 0x8000, .size = 0x1000, .attr = SMH_REG_ATTR_CACHEABLE },
	};
	struct dt_config cfg = { .regions = regions, .n_regions = 2 };
	struct pool *pool = NULL;
	struct pool_block blk, got;

	assert_int_equal(pool_create(&cfg, 64, NULL, NULL, &pool), 0);
	assert_int_equal(pool_reserve(pool, 1, 0x8000, 0x100, &blk), 0);
	assert_int_equal(blk.region, 1);
	assert_int_equal(blk.addr, 0x8000);
	assert_int_equal(blk.size, 0x100);
	assert_int_equal(pool_reserve(pool, 1, 0x8040, 0x40, &got), -EBUSY);
	assert_int_equal(pool_reserve(pool, 2, 0x8000, 0x40, &got), -EINVAL);
	assert_int_equal(pool_reserve(pool, 0, 0x8000, 0x40, &got), -EINVAL);
	assert_int_equal(pool_reserve(pool, 0, 0x1030, 0x40, &got), -EINVAL);
	/* Size rounded up to the granule. */
	assert_int_equal(pool_reserve(pool, 0, 0x1040, 1, &got), 0);
	assert_int_equal(got.size, 64);
	/* Reserved blocks free like allocated ones. */
	assert_int_equal(pool_free(pool, &blk), 0);
	assert_int_equal(pool_free(pool, &got), 0);
	assert_int_equal(pool_free(pool, &got), -EINVAL);
	pool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_then_free_coalesces),
		cmocka_unit_test(test_reserve_many_then_free_all),
		cmocka_unit_test(test_reserve_refused),
		cmocka_unit_test(test_reserve_property),
		cmocka_unit_test(test_pool_reserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
