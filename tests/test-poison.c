/* SPDX-License-Identifier: MIT */
/*
 * Use-after-free detection (smhd --debug-poison): the pattern's fill and check
 * (daemon/poison.c), the scrubber's quarantine (daemon/scrub.c) over a real memfd backend of the
 * example device tree, and the broker's hooks for it (daemon/broker.h).
 *
 * - poison_check() finds nothing in a filled block, and counts and places the bytes changed,
 *   through the plain loop and through the Device-memory word loop.
 * - In poison mode a block queued with an origin is filled and held (backlog, not collected);
 *   it leaves the quarantine when scrub_drain() asks, when the quarantine is over its bound
 *   (the oldest first), or at scrub_destroy(); each leaving is checked, reported with its
 *   origin when written, zeroed and freed into the pool. A block without origin is scrubbed at
 *   once. Only the latest POISON_LAST reports are kept; the count goes on.
 * - The broker tells queue_freed() the handle and the last holder, and calls waiting() when an
 *   allocation must wait for the backlog.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/dt.h"
#include "daemon/backend.h"
#include "daemon/broker.h"
#include "daemon/poison.h"
#include "daemon/scrub.h"
#include "tests/test-util.h"

#define RES0 UINT64_C(0x42000000) /* 4 KiB, cacheable */
#define RES1 UINT64_C(0x43000000) /* 8 KiB, non-cacheable */
#define RES2 UINT64_C(0x44000000) /* 12 KiB, cacheable */

/* Bounded waits: ten minutes of 1 ms steps, only ever exhausted by a bug. */
#define WAIT_STEPS 600000

struct env {
	struct dt_config cfg;
	struct backend *backend;
	struct pool *pool;
	struct scrub *scrub;
};

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct backend_options opts = { .kind = BACKEND_MEMFD };
	struct pool_hooks hooks;

	assert_non_null(e);
	assert_int_equal(dt_load(getenv("SMH_EXAMPLE_DTB"), &e->cfg, NULL), 0);
	assert_int_equal(backend_create(&opts, &e->cfg, NULL, &e->backend), 0);
	hooks = backend_pool_hooks(e->backend);
	assert_int_equal(pool_create(&e->cfg, 64, &hooks, NULL, &e->pool), 0);
	assert_int_equal(scrub_create(e->backend, e->pool, 0, &e->scrub), 0);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	scrub_destroy(e->scrub);
	/* Quarantined or not, every block is back in the pool. */
	test_assert_pool_empty(e->pool);
	pool_destroy(e->pool);
	backend_destroy(e->backend);
	dt_config_finish(&e->cfg);
	free(e);
	return 0;
}

static unsigned char *mem(struct env *e, uint32_t region, uint64_t addr)
{
	const struct backend_region *br = backend_region(e->backend, region);

	return br->map + (addr - br->map_phys);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000 };

	nanosleep(&ts, NULL);
}

static struct poison_stats stats(struct env *e)
{
	struct poison_stats st;

	scrub_poison_stats(e->scrub, &st);
	return st;
}

/* Waits until the quarantine holds @bytes (the thread filled what was queued). */
static void wait_quarantine(struct env *e, uint64_t bytes)
{
	for (int i = 0; stats(e).quarantine_bytes != bytes; i++) {
		assert_true(i < WAIT_STEPS);
		sleep_ms(1);
	}
}

/* Collects until @n blocks went back to the pool. */
static void collect(struct env *e, size_t n)
{
	size_t got = 0;
	bool more;

	for (int i = 0; got < n; i++) {
		assert_true(i < WAIT_STEPS);
		got += scrub_collect(e->scrub, n - got, &more);
		if (got < n)
			sleep_ms(1);
	}
	assert_int_equal(got, n);
}

static struct pool_block alloc_block(struct env *e, enum smh_reg_attr attr, uint64_t size)
{
	struct pool_block blk;

	assert_int_equal(pool_alloc(e->pool, attr, size, 0, &blk), 0);
	memset(mem(e, blk.region, blk.addr), 0x11, blk.size); /* the owner's data */
	return blk;
}

static struct poison_origin origin(uint64_t handle)
{
	struct poison_origin o = { .handle = handle, .pid = 4242 };

	strcpy(o.comm, "camera");
	return o;
}

/* ---------------------------------------------------------------- fill and check */

static void check_changes(struct env *e)
{
	uint64_t first = UINT64_MAX;
	unsigned char *p = mem(e, 1, RES1);

	poison_fill(e->backend, 1, RES1, 8192);
	assert_true(all_bytes(p, 8192, POISON_BYTE));
	assert_int_equal(poison_check(e->backend, 1, RES1, 8192, &first), 0);
	assert_int_equal(first, UINT64_MAX); /* untouched when nothing changed */
	p[13] = 0;
	p[14] = 1;
	p[8191] = 0xa4;
	assert_int_equal(poison_check(e->backend, 1, RES1, 8192, &first), 3);
	assert_int_equal(first, 13);
	/* A range that starts past the change does not see it. */
	assert_int_equal(poison_check(e->backend, 1, RES1 + 16, 8192 - 16, &first), 1);
	assert_int_equal(first, 8192 - 16 - 1);
	memset(p, 0, 8192);
}

static void test_fill_and_check(void **state)
{
	check_changes(*state);
}

/* The Device-memory loops (volatile words) on the same memfd mapping. */
static void test_fill_and_check_device_words(void **state)
{
	struct env *e = *state;
	struct backend_region *br = (struct backend_region *)backend_region(e->backend, 1);

	br->device_memory = true;
	check_changes(e);
	br->device_memory = false;
}

/* ---------------------------------------------------------------- the quarantine */

static void test_quarantine_until_drained(void **state)
{
	struct env *e = *state;
	struct pool_block blk = alloc_block(e, SMH_REG_ATTR_NON_CACHEABLE, 4096);
	struct poison_origin o = origin(7);
	struct poison_stats st;
	uint64_t bytes, blocks;
	bool more;

	assert_int_equal(scrub_set_poison(e->scrub, 64 * 1024), 0);
	scrub_queue_from(e->scrub, &blk, &o);
	wait_quarantine(e, 4096);
	/* Filled, held: still backlog, nothing to collect, not free in the pool. */
	assert_true(all_bytes(mem(e, 1, RES1), 4096, POISON_BYTE));
	scrub_backlog(e->scrub, 1, &bytes, &blocks);
	assert_int_equal(bytes, 4096);
	assert_int_equal(blocks, 1);
	assert_int_equal(scrub_collect(e->scrub, 10, &more), 0);
	assert_int_equal(test_pool_used(e->pool, 1), 4096);

	/* Written after free, then drained: checked, reported, zeroed, freed. */
	memset(mem(e, 1, RES1 + 1000), 0x77, 24);
	scrub_drain(e->scrub);
	collect(e, 1);
	assert_true(all_bytes(mem(e, 1, RES1), 4096, 0));
	assert_int_equal(test_pool_used(e->pool, 1), 0);
	st = stats(e);
	assert_true(st.enabled);
	assert_int_equal(st.quarantine_bytes, 0);
	assert_int_equal(st.n_reports, 1);
	assert_int_equal(st.n_last, 1);
	assert_int_equal(st.last[0].region, 1);
	assert_int_equal(st.last[0].offset, 0); /* memfd: the region starts the fd */
	assert_int_equal(st.last[0].size, 4096);
	assert_int_equal(st.last[0].first, 1000);
	assert_int_equal(st.last[0].changed, 24);
	assert_int_equal(st.last[0].origin.handle, 7);
	assert_int_equal(st.last[0].origin.pid, 4242);
	assert_string_equal(st.last[0].origin.comm, "camera");
}

static void test_oldest_leaves_over_bound(void **state)
{
	struct env *e = *state;
	struct pool_block a = alloc_block(e, SMH_REG_ATTR_NON_CACHEABLE, 1024);
	struct pool_block b = alloc_block(e, SMH_REG_ATTR_NON_CACHEABLE, 1024);
	struct poison_origin oa = origin(1), ob = origin(2);
	struct poison_stats st;

	assert_int_equal(scrub_set_poison(e->scrub, 1024), 0);
	scrub_queue_from(e->scrub, &a, &oa);
	wait_quarantine(e, 1024); /* at the bound, not over it: kept */
	mem(e, a.region, a.addr)[8] = 0;
	scrub_queue_from(e->scrub, &b, &ob);
	/* Over the bound: the oldest (a) leaves, checked; b stays. */
	collect(e, 1);
	st = stats(e);
	assert_int_equal(st.quarantine_bytes, 1024);
	assert_int_equal(st.n_reports, 1);
	assert_int_equal(st.last[0].origin.handle, 1);
	assert_int_equal(st.last[0].offset, a.addr - RES1);
	assert_int_equal(st.last[0].first, 8);
	assert_int_equal(st.last[0].changed, 1);
	assert_true(all_bytes(mem(e, a.region, a.addr), 1024, 0));
	assert_true(all_bytes(mem(e, b.region, b.addr), 1024, POISON_BYTE));
	/* Another region's quarantine is its own: res0's block does not push b out. */
	{
		struct pool_block c = alloc_block(e, SMH_REG_ATTR_CACHEABLE, 1024);
		struct poison_origin oc = origin(3);

		scrub_queue_from(e->scrub, &c, &oc);
		wait_quarantine(e, 2048);
	}
	/* scrub_destroy() (the teardown) checks and frees both. */
}

static void test_without_origin_scrubbed_at_once(void **state)
{
	struct env *e = *state;
	struct pool_block blk = alloc_block(e, SMH_REG_ATTR_CACHEABLE, 4096);

	assert_int_equal(scrub_set_poison(e->scrub, 0), 0);
	scrub_queue(e->scrub, &blk); /* never an allocation: devmem start-up, a recovery */
	collect(e, 1);
	assert_true(all_bytes(mem(e, blk.region, blk.addr), 4096, 0));
	assert_int_equal(stats(e).quarantine_bytes, 0);
}

static void test_destroy_checks_the_quarantine(void **state)
{
	struct env *e = *state;
	struct pool_block blk = alloc_block(e, SMH_REG_ATTR_CACHEABLE, 4096);
	struct poison_origin o = origin(9);

	assert_int_equal(scrub_set_poison(e->scrub, 1 << 20), 0);
	scrub_queue_from(e->scrub, &blk, &o);
	wait_quarantine(e, 4096);
	mem(e, blk.region, blk.addr)[4095] = 0;
	scrub_destroy(e->scrub); /* the teardown checks the pool got it back */
	e->scrub = NULL;
	assert_true(all_bytes(mem(e, blk.region, blk.addr), 4096, 0));
}

static void test_keeps_the_latest_reports(void **state)
{
	struct env *e = *state;
	struct pool_block blk[POISON_LAST + 2];
	struct poison_stats st;
	size_t n = POISON_LAST + 2;

	assert_int_equal(scrub_set_poison(e->scrub, 1 << 20), 0);
	for (size_t i = 0; i < n; i++) {
		struct poison_origin o = origin(100 + i);

		blk[i] = alloc_block(e, SMH_REG_ATTR_CACHEABLE, 1024);
		scrub_queue_from(e->scrub, &blk[i], &o);
	}
	wait_quarantine(e, n * 1024);
	for (size_t i = 0; i < n; i++)
		mem(e, blk[i].region, blk[i].addr)[i * 8] = 0;
	scrub_drain(e->scrub);
	collect(e, n);
	st = stats(e);
	assert_int_equal(st.n_reports, n);
	assert_int_equal(st.n_last, POISON_LAST);
	for (size_t i = 0; i < POISON_LAST; i++) {
		assert_int_equal(st.last[i].origin.handle, 100 + i + 2);
		assert_int_equal(st.last[i].first, (i + 2) * 8);
	}
}

/* ---------------------------------------------------------------- the broker's hooks */

struct fixture {
	struct pool *pool;
	struct broker b;
	struct pool_block queued[16];
	struct broker_freed from[16];
	bool had_origin[16];
	unsigned n_queued, n_waiting;
	uint64_t backlog[3];
	struct broker_client *c1, *c2;
};

static void push(struct fixture *f, const struct pool_block *blk, const struct broker_freed *from)
{
	assert_true(f->n_queued < 16);
	f->had_origin[f->n_queued] = from != NULL;
	if (from)
		f->from[f->n_queued] = *from;
	f->queued[f->n_queued++] = *blk;
	f->backlog[blk->region] += blk->size;
}

static void rec_queue(void *data, const struct pool_block *blk)
{
	push(data, blk, NULL);
}

static void rec_queue_freed(void *data, const struct pool_block *blk,
			    const struct broker_freed *from)
{
	push(data, blk, from);
}

static void rec_waiting(void *data)
{
	struct fixture *f = data;

	f->n_waiting++;
}

static void rec_backlog(void *data, uint32_t region, uint64_t *bytesp, uint64_t *blocksp)
{
	struct fixture *f = data;

	*bytesp = f->backlog[region];
	*blocksp = 0;
	for (unsigned i = 0; i < f->n_queued; i++)
		*blocksp += f->queued[i].region == region;
}

static int broker_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->pool = test_example_pool(64);
	broker_init(&f->b, f->pool,
		    &(struct broker_scrub){ .queue = rec_queue,
					    .queue_freed = rec_queue_freed,
					    .waiting = rec_waiting,
					    .backlog = rec_backlog,
					    .data = f });
	assert_int_equal(broker_client_add(&f->b, 10, 1000, 1000, "cam", &f->c1), 0);
	assert_int_equal(broker_client_add(&f->b, 11, 1001, 1001, "codec", &f->c2), 0);
	*state = f;
	return 0;
}

static int broker_teardown(void **state)
{
	struct fixture *f = *state;

	broker_finish(&f->b);
	for (unsigned i = 0; i < f->n_queued; i++)
		assert_int_equal(pool_free(f->pool, &f->queued[i]), 0);
	test_assert_pool_empty(f->pool);
	pool_destroy(f->pool);
	free(f);
	return 0;
}

static void test_broker_names_the_last_holder(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *x;
	uint64_t handle, token;

	/* Shared: c1 allocates and exports, c2 imports, c1 frees, c2's free releases it. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &a), 0);
	handle = a->handle;
	assert_int_equal(broker_export(&f->b, f->c1, handle, &token), 0);
	assert_int_equal(broker_import(&f->b, f->c2, token, &x), 0);
	assert_int_equal(broker_free(&f->b, f->c1, handle), 0);
	assert_int_equal(f->n_queued, 0);
	assert_int_equal(broker_free(&f->b, f->c2, handle), 0);
	assert_int_equal(f->n_queued, 1);
	assert_true(f->had_origin[0]);
	assert_int_equal(f->from[0].handle, handle);
	assert_ptr_equal(f->from[0].client, f->c2);
	assert_int_equal(f->queued[0].addr, RES1);

	/* An allocation only the backlog could serve waits, and the scrubber hears it. */
	assert_int_equal(f->n_waiting, 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a),
			 -EAGAIN);
	assert_int_equal(f->n_waiting, 1);
	/* One the backlog could not hold either is refused, and hurries nothing. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 16384, 0, &a),
			 -ENOMEM);
	assert_int_equal(f->n_waiting, 1);
}

static void test_broker_realloc_and_scrub_free(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	/* A shrink's tail is the allocation's, given back by its holder. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &a), 0);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 1024, &a), 0);
	assert_int_equal(f->n_queued, 1);
	assert_true(f->had_origin[0]);
	assert_int_equal(f->from[0].handle, a->handle);
	assert_ptr_equal(f->from[0].client, f->c1);
	/* Free memory scrubbed before serving was nobody's. */
	assert_int_equal(broker_scrub_free(&f->b, 0), 0);
	assert_true(f->n_queued > 1);
	for (unsigned i = 1; i < f->n_queued; i++)
		assert_false(f->had_origin[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_and_check, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_fill_and_check_device_words, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_until_drained, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_oldest_leaves_over_bound, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_without_origin_scrubbed_at_once, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_destroy_checks_the_quarantine, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_keeps_the_latest_reports, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_broker_names_the_last_holder, broker_setup,
						broker_teardown),
		cmocka_unit_test_setup_teardown(test_broker_realloc_and_scrub_free, broker_setup,
						broker_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
