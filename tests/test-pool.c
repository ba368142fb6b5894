/* SPDX-License-Identifier: MIT */
/*
 * The pool on the seed's example (dts/example.dts: res0 cacheable 4 KiB at 0x42000000, res1
 * non-cacheable 8 KiB at 0x43000000, res2 cacheable 12 KiB at 0x44000000): first fit by
 * attribute in device-tree order, no fallback across attributes, argument errors, frees that
 * must not corrupt, realloc in place and by moving, and the zero/copy hooks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/pool.h"

#define RES0 0x42000000ull
#define RES1 0x43000000ull
#define RES2 0x44000000ull

/* ---------------------------------------------------------------- hooks that record */

struct call {
	char kind; /* 'z' zero, 'c' copy */
	uint32_t dst_region, src_region;
	uint64_t dst, src, len;
};

struct recorder {
	struct pool *pool;
	struct call calls[16];
	unsigned n;
	int fail_zero, fail_copy; /* error to return, 0 for success */
};

static uint32_t region_index(struct recorder *rec, const struct pool_region *r)
{
	for (uint32_t i = 0; i < pool_n_regions(rec->pool); i++) {
		if (pool_region(rec->pool, i) == r)
			return i;
	}
	fail_msg("hook got a region the pool does not have");
	return UINT32_MAX;
}

static int rec_zero(void *data, const struct pool_region *r, uint64_t addr, uint64_t len)
{
	struct recorder *rec = data;

	assert_true(rec->n < 16);
	rec->calls[rec->n++] = (struct call){ 'z', region_index(rec, r), 0, addr, 0, len };
	return rec->fail_zero;
}

static int rec_copy(void *data, const struct pool_region *dst, uint64_t dst_addr,
		    const struct pool_region *src, uint64_t src_addr, uint64_t len)
{
	struct recorder *rec = data;

	assert_true(rec->n < 16);
	rec->calls[rec->n++] = (struct call){
		'c', region_index(rec, dst), region_index(rec, src), dst_addr, src_addr, len
	};
	return rec->fail_copy;
}

/* ---------------------------------------------------------------- fixtures */

struct fixture {
	struct pool *pool;
	struct recorder rec;
};

static struct pool *example_pool(uint64_t granule, const struct pool_hooks *hooks)
{
	struct dt_config cfg = { 0 };
	struct pool *pool = NULL;
	const char *dtb = getenv("SMH_EXAMPLE_DTB");

	assert_non_null(dtb);
	assert_int_equal(dt_load(dtb, &cfg, NULL), 0);
	assert_int_equal(cfg.n_regions, 3);
	assert_int_equal(pool_create(&cfg, granule, hooks, NULL, &pool), 0);
	dt_config_finish(&cfg);
	return pool;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pool_hooks hooks = { .zero = rec_zero, .copy = rec_copy };

	assert_non_null(f);
	hooks.data = &f->rec;
	f->pool = example_pool(POOL_DEFAULT_GRANULE, &hooks);
	f->rec.pool = f->pool;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pool_destroy(f->pool);
	free(f);
	return 0;
}

static uint64_t used(const struct pool *pool, size_t region)
{
	struct buddy_stats st;

	assert_int_equal(pool_region_stats(pool, region, &st), 0);
	return st.used;
}

static void assert_all_free(const struct pool *pool)
{
	for (size_t i = 0; i < pool_n_regions(pool); i++) {
		struct buddy_stats st;
		char why[128];

		assert_int_equal(pool_region_stats(pool, i, &st), 0);
		assert_int_equal(st.used, 0);
		assert_int_equal(st.fragmentation, 0);
		assert_int_equal(buddy_check(pool_region(pool, i)->buddy, why, sizeof(why)), 0);
	}
}

/* Field by field: the struct has padding, which memcmp would read. */
static void assert_same_block(const struct pool_block *a, const struct pool_block *b)
{
	assert_int_equal(a->region, b->region);
	assert_int_equal(a->addr, b->addr);
	assert_int_equal(a->size, b->size);
}

/* ---------------------------------------------------------------- tests */

static void test_regions(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *label;
		uint64_t base, size;
		enum smh_reg_attr attr;
	} want[] = {
		{ "res0", RES0, 0x1000, SMH_REG_ATTR_CACHEABLE },
		{ "res1", RES1, 0x2000, SMH_REG_ATTR_NON_CACHEABLE },
		{ "res2", RES2, 0x3000, SMH_REG_ATTR_CACHEABLE },
	};

	assert_int_equal(pool_n_regions(f->pool), 3);
	assert_int_equal(pool_granule(f->pool), 64);
	for (size_t i = 0; i < 3; i++) {
		const struct pool_region *r = pool_region(f->pool, i);

		assert_string_equal(r->label, want[i].label);
		assert_int_equal(r->base, want[i].base);
		assert_int_equal(r->size, want[i].size);
		assert_int_equal(r->attr, want[i].attr);
	}
	assert_null(pool_region(f->pool, 3));
}

/* The seed's example: 4 KiB of each attribute. */
static void test_seed_example(void **state)
{
	struct fixture *f = *state;
	struct pool_block c, nc;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x1000, 0, &c), 0);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_NON_CACHEABLE, 0x1000, 0, &nc), 0);
	assert_int_equal(c.region, 0);
	assert_int_equal(c.addr, RES0);
	assert_int_equal(c.size, 0x1000);
	assert_int_equal(nc.region, 1);
	assert_int_equal(nc.addr, RES1);
	/* each new allocation was zeroed, whole */
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.calls[0].kind, 'z');
	assert_int_equal(f->rec.calls[0].dst, RES0);
	assert_int_equal(f->rec.calls[0].len, 0x1000);
	assert_int_equal(f->rec.calls[1].dst_region, 1);
	assert_int_equal(pool_free(f->pool, &c), 0);
	assert_int_equal(pool_free(f->pool, &nc), 0);
	assert_all_free(f->pool);
}

/* Regions of an attribute are tried in device-tree order; the first that fits serves. */
static void test_first_fit_in_dt_order(void **state)
{
	struct fixture *f = *state;
	struct pool_block a, b, c, d;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(a.region, 0); /* res0 first, though res2 is larger */
	/* res0 has 4 KiB - 64 B left: 4 KiB goes to res2, into its 4 KiB block (best fit) */
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x1000, 0, &b), 0);
	assert_int_equal(b.region, 2);
	assert_int_equal(b.addr, RES2 + 0x2000);
	/* and 8 KiB into its 8 KiB block: res2 is full */
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x2000, 0, &c), 0);
	assert_int_equal(c.region, 2);
	assert_int_equal(c.addr, RES2);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x1000, 0, &d), -ENOMEM);
	/* small requests still go to res0 first */
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 100, 0, &d), 0);
	assert_int_equal(d.region, 0);
	assert_int_equal(d.size, 128);
	for (struct pool_block *p = &a; p; p = p == &a ? &b : p == &b ? &c : p == &c ? &d : NULL)
		assert_int_equal(pool_free(f->pool, p), 0);
	assert_all_free(f->pool);
}

/* No fallback to another attribute, even when it has room. */
static void test_no_cross_attribute_fallback(void **state)
{
	struct fixture *f = *state;
	struct pool_block nc, more;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_NON_CACHEABLE, 0x2000, 0, &nc), 0);
	assert_int_equal(nc.region, 1);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &more), -ENOMEM);
	assert_int_equal(used(f->pool, 0), 0);
	assert_int_equal(used(f->pool, 2), 0);
	/* cacheable larger than any cacheable region, though res1 + res2 together would fit */
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x3001, 0, &more), -ENOMEM);
	assert_int_equal(pool_free(f->pool, &nc), 0);
}

static void test_invalid_arguments(void **state)
{
	struct fixture *f = *state;
	struct pool_block b = { .region = 7, .addr = 7, .size = 7 };

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0, 0, &b), -EINVAL);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_NUM, 64, 0, &b), -EINVAL);
	assert_int_equal(pool_alloc(f->pool, (enum smh_reg_attr) - 1, 64, 0, &b), -EINVAL);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 48, &b), -EINVAL);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, UINT64_MAX, 0, &b), -ENOMEM);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 0x10000, &b), -ENOMEM);
	assert_int_equal(b.region, 7); /* untouched on failure */
	assert_int_equal(f->rec.n, 0);
	assert_all_free(f->pool);
}

static void test_alignment(void **state)
{
	struct fixture *f = *state;
	struct pool_block a, b;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 0x800, &b), 0);
	assert_int_equal(b.region, 0);
	assert_int_equal(b.addr, RES0 + 0x800);
	assert_int_equal(pool_free(f->pool, &a), 0);
	assert_int_equal(pool_free(f->pool, &b), 0);
}

static void test_free_misuse(void **state)
{
	struct fixture *f = *state;
	struct pool_block a, bad;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 256, 0, &a), 0);
	bad = a;
	bad.region = 2; /* same address, wrong region */
	assert_int_equal(pool_free(f->pool, &bad), -EINVAL);
	bad.region = 99;
	assert_int_equal(pool_free(f->pool, &bad), -EINVAL);
	bad = a;
	bad.size = 512;
	assert_int_equal(pool_free(f->pool, &bad), -EINVAL);
	bad.size = 200; /* rounds to the same granules, but is not the size handed out */
	assert_int_equal(pool_free(f->pool, &bad), -EINVAL);
	assert_int_equal(pool_realloc(f->pool, &bad, 64, 0), -EINVAL);
	bad = a;
	bad.addr += 64;
	assert_int_equal(pool_free(f->pool, &bad), -EINVAL);
	assert_int_equal(used(f->pool, 0), 256);
	assert_int_equal(pool_free(f->pool, &a), 0);
	assert_int_equal(pool_free(f->pool, &a), -EINVAL);
	assert_all_free(f->pool);
}

static void test_realloc_in_place(void **state)
{
	struct fixture *f = *state;
	struct pool_block a = { .tag = 77 };

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 100, 0, &a), 0);
	assert_int_equal(a.tag, 0); /* a block the pool makes: the tag is 0 */
	a.tag = 41;
	f->rec.n = 0;
	assert_int_equal(pool_realloc(f->pool, &a, 1000, 0), 0);
	assert_int_equal(a.tag, 41); /* the user's, kept */
	assert_int_equal(a.region, 0);
	assert_int_equal(a.addr, RES0);
	assert_int_equal(a.size, 1024);
	/* only the grown part is zeroed, and nothing is copied */
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.calls[0].kind, 'z');
	assert_int_equal(f->rec.calls[0].dst, RES0 + 128);
	assert_int_equal(f->rec.calls[0].len, 1024 - 128);
	/* shrink: no hook at all */
	assert_int_equal(pool_realloc(f->pool, &a, 64, 0), 0);
	assert_int_equal(a.size, 64);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(used(f->pool, 0), 64);
	assert_int_equal(pool_free(f->pool, &a), 0);
	assert_all_free(f->pool);
}

static void test_realloc_moves(void **state)
{
	struct fixture *f = *state;
	struct pool_block a, blocker;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &a), 0);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &blocker), 0);
	assert_int_equal(blocker.addr, RES0 + 0x800);
	a.tag = 42;
	f->rec.n = 0;
	/* res0 cannot grow it: it moves to res2, contents copied, the rest zeroed */
	assert_int_equal(pool_realloc(f->pool, &a, 0x2000, 0), 0);
	assert_int_equal(a.tag, 42); /* moved, the user's tag goes along */
	assert_int_equal(a.region, 2);
	assert_int_equal(a.addr, RES2);
	assert_int_equal(a.size, 0x2000);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.calls[0].kind, 'c');
	assert_int_equal(f->rec.calls[0].dst_region, 2);
	assert_int_equal(f->rec.calls[0].dst, RES2);
	assert_int_equal(f->rec.calls[0].src_region, 0);
	assert_int_equal(f->rec.calls[0].src, RES0);
	assert_int_equal(f->rec.calls[0].len, 0x800);
	assert_int_equal(f->rec.calls[1].kind, 'z');
	assert_int_equal(f->rec.calls[1].dst, RES2 + 0x800);
	assert_int_equal(f->rec.calls[1].len, 0x1800);
	assert_int_equal(used(f->pool, 0), 0x800); /* the old block is free */
	assert_int_equal(pool_free(f->pool, &a), 0);
	assert_int_equal(pool_free(f->pool, &blocker), 0);
	assert_all_free(f->pool);
}

/* A failed realloc leaves the old buffer untouched and allocates nothing. */
static void test_realloc_failures_keep_old(void **state)
{
	struct fixture *f = *state;
	struct pool_block a, blocker, copy;

	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &a), 0);
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &blocker), 0);
	copy = a;
	/* nothing can hold it */
	assert_int_equal(pool_realloc(f->pool, &a, 0x4000, 0), -ENOMEM);
	assert_same_block(&a, &copy);
	/* the copy hook fails: the new block is given back, the old one was only read */
	f->rec.n = 0;
	f->rec.fail_copy = -EIO;
	assert_int_equal(pool_realloc(f->pool, &a, 0x2000, 0), -EIO);
	assert_same_block(&a, &copy);
	assert_int_equal(used(f->pool, 2), 0);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.calls[0].kind, 'c');
	assert_int_equal(f->rec.calls[0].src, a.addr);
	f->rec.fail_copy = 0;
	/* the copy works but zeroing the new tail fails: never hand out unzeroed memory */
	f->rec.n = 0;
	f->rec.fail_zero = -EIO;
	assert_int_equal(pool_realloc(f->pool, &a, 0x2000, 0), -EIO);
	assert_same_block(&a, &copy);
	assert_int_equal(used(f->pool, 2), 0);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(f->rec.calls[1].kind, 'z');
	assert_int_equal(f->rec.calls[1].dst_region, 2);
	f->rec.fail_zero = 0;
	/* the zero hook fails while growing in place: the grown part is given back */
	assert_int_equal(pool_free(f->pool, &blocker), 0);
	f->rec.fail_zero = -EIO;
	assert_int_equal(pool_realloc(f->pool, &a, 0x1000, 0), -EIO);
	assert_same_block(&a, &copy);
	assert_int_equal(used(f->pool, 0), 0x800);
	/* and while allocating: nothing stays allocated */
	assert_int_equal(pool_alloc(f->pool, SMH_REG_ATTR_CACHEABLE, 64, 0, &blocker), -EIO);
	assert_int_equal(used(f->pool, 0), 0x800);
	f->rec.fail_zero = 0;
	/* invalid arguments */
	assert_int_equal(pool_realloc(f->pool, &a, 0, 0), -EINVAL);
	assert_int_equal(pool_realloc(f->pool, &a, 64, 3), -EINVAL);
	copy.addr += 64;
	assert_int_equal(pool_realloc(f->pool, &copy, 64, 0), -EINVAL);
	assert_int_equal(pool_free(f->pool, &a), 0);
	assert_all_free(f->pool);
}

static void test_realloc_without_copy_hook(void **state)
{
	struct pool *pool = example_pool(64, NULL);
	struct pool_block a, b;

	assert_int_equal(pool_alloc(pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &a), 0);
	assert_int_equal(pool_alloc(pool, SMH_REG_ATTR_CACHEABLE, 0x800, 0, &b), 0);
	assert_int_equal(pool_realloc(pool, &a, 0x2000, 0), -ENOTSUP);
	assert_int_equal(pool_realloc(pool, &a, 0x400, 0), 0); /* in place needs no hook */
	assert_int_equal(pool_free(pool, &a), 0);
	assert_int_equal(pool_free(pool, &b), 0);
	assert_all_free(pool);
	pool_destroy(pool);
}

static void record(void *data, enum diag_level level, const char *msg)
{
	char *last = data;

	assert_int_equal(level, DIAG_ERROR);
	snprintf(last, 256, "%s", msg);
}

static void test_create_errors(void **state)
{
	struct dt_config cfg = { 0 };
	struct pool *pool = NULL;
	char last[256] = "";
	struct diag diag = { record, last };

	assert_int_equal(dt_load(getenv("SMH_EXAMPLE_DTB"), &cfg, NULL), 0);
	assert_int_equal(pool_create(&cfg, 48, NULL, &diag, &pool), -EINVAL);
	assert_non_null(strstr(last, "48"));
	assert_int_equal(pool_create(&cfg, 4, NULL, &diag, &pool), -EINVAL);
	/* res0 (4 KiB) holds no 8 KiB granule; the message names it */
	assert_int_equal(pool_create(&cfg, 0x2000, NULL, &diag, &pool), -EINVAL);
	assert_non_null(strstr(last, "res0"));
	assert_null(pool);
	/* a 16 KiB granule fits no region at all: the last message is about res2 */
	assert_int_equal(pool_create(&cfg, 0x4000, NULL, &diag, &pool), -EINVAL);
	assert_non_null(strstr(last, "res2"));
	/* too many granules: 2^32 of 8 bytes */
	cfg.regions[2].size = UINT64_C(8) << 32;
	assert_int_equal(pool_create(&cfg, 8, NULL, &diag, &pool), -E2BIG);
	assert_non_null(strstr(last, "use 16 or more"));
	dt_config_finish(&cfg);
	pool_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_regions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_fit_in_dt_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_cross_attribute_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realloc_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realloc_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_realloc_failures_keep_old, setup, teardown),
		cmocka_unit_test(test_realloc_without_copy_hook),
		cmocka_unit_test(test_create_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
