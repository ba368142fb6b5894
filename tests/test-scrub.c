/* SPDX-License-Identifier: MIT */
/*
 * Scrubbing off the request path: the scrubber (daemon/scrub.c) over a real memfd backend of
 * the example device tree, and the broker's use of a scrub queue (daemon/broker.h).
 *
 * - The scrubber zeroes what it is given, counts it as backlog until the loop collects it, then
 *   frees it into the pool; destroy finishes what is queued. A large block (a 16th of the region
 *   or 2 MiB) has its whole pages punched: the memfd's pages go back to the kernel. A smaller
 *   one is zeroed in place on its written pages, which stay the memfd's, and its pages nobody
 *   wrote stay holes; partial pages are cleared without touching their neighbours.
 * - The broker hands freed blocks, a shrinking realloc's tail and a moving realloc's old block
 *   to the queue as live blocks (the allocator cannot hand them out); an allocation that only
 *   the backlog could serve is -EAGAIN, one that even the backlog cannot hold -ENOMEM.
 * - A retired client's holds go in slices of the budget; it stops counting as a client at once.
 * - broker_scrub_free() queues all of a region's free memory.
 * - Under traffic (100k blocks queued while the thread scrubs and the loop collects), every
 *   block comes back exactly once, zeroed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/dt.h"
#include "daemon/backend.h"
#include "daemon/broker.h"
#include "daemon/scrub.h"
#include "tests/test-util.h"

#define RES0 UINT64_C(0x42000000) /* 4 KiB, cacheable */
#define RES1 UINT64_C(0x43000000) /* 8 KiB, non-cacheable */

/* ---------------------------------------------------------------- the scrubber */

struct env {
	struct dt_config cfg;
	struct backend *backend;
	struct pool *pool;
	struct scrub *scrub;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n_wakes;
};

static void on_wake(void *data)
{
	struct env *e = data;

	pthread_mutex_lock(&e->lock);
	e->n_wakes++;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static void env_start(struct env *e)
{
	struct backend_options opts = { .kind = BACKEND_MEMFD };
	struct pool_hooks hooks;

	assert_int_equal(backend_create(&opts, &e->cfg, NULL, &e->backend), 0);
	hooks = backend_pool_hooks(e->backend);
	assert_int_equal(pool_create(&e->cfg, 64, &hooks, NULL, &e->pool), 0);
	assert_int_equal(scrub_create(e->backend, e->pool, 0, &e->scrub), 0);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	scrub_set_wake(e->scrub, on_wake, e);
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(dt_load(getenv("SMH_EXAMPLE_DTB"), &e->cfg, NULL), 0);
	env_start(e);
	*state = e;
	return 0;
}

/* One region of BIG_SIZE: a 4 KiB block is small there, BIG_PUNCH (its 16th) large. */
#define BIG_BASE  UINT64_C(0x50000000)
#define BIG_SIZE  (UINT64_C(4) << 20)
#define BIG_PUNCH (BIG_SIZE / 16)

static int big_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->cfg.regions = calloc(1, sizeof(*e->cfg.regions));
	assert_non_null(e->cfg.regions);
	e->cfg.n_regions = 1;
	e->cfg.regions[0] = (struct dt_region){
		.label = "big", .base = BIG_BASE, .size = BIG_SIZE, .attr = SMH_REG_ATTR_CACHEABLE
	};
	e->cfg.regions[0].path = strdup("/reserved-memory/big@50000000");
	assert_non_null(e->cfg.regions[0].path);
	env_start(e);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	struct buddy_stats st;

	scrub_destroy(e->scrub);
	/* Whatever was queued is back in the pool. */
	for (size_t i = 0; i < pool_n_regions(e->pool); i++) {
		assert_int_equal(pool_region_stats(e->pool, i, &st), 0);
		assert_int_equal(st.used, 0);
	}
	pool_destroy(e->pool);
	backend_destroy(e->backend);
	dt_config_finish(&e->cfg);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return 0;
}

static unsigned char *mem(struct env *e, uint32_t region, uint64_t addr)
{
	const struct backend_region *br = backend_region(e->backend, region);

	return br->map + (addr - br->map_phys);
}

/* Collects every finished block there is now; returns how many. */
static size_t drain_now(struct env *e)
{
	size_t got = 0;
	bool more;

	do
		got += scrub_collect(e->scrub, 64, &more);
	while (more);
	return got;
}

/* Waits for the thread's next wake-up and collects everything finished. */
static void collect_some(struct env *e, size_t *collectedp)
{
	pthread_mutex_lock(&e->lock);
	while (e->n_wakes == 0)
		pthread_cond_wait(&e->cond, &e->lock);
	e->n_wakes = 0;
	pthread_mutex_unlock(&e->lock);
	*collectedp += drain_now(e);
}

/* Collects until @n blocks came back, waiting for the thread's wake-ups. */
static void collect(struct env *e, size_t n)
{
	size_t got = 0;

	while (got < n)
		collect_some(e, &got);
	assert_int_equal(got, n);
}

static uint64_t backlog_bytes(struct env *e, uint32_t region, uint64_t *blocksp)
{
	uint64_t bytes;

	scrub_backlog(e->scrub, region, &bytes, blocksp);
	return bytes;
}

static uint64_t region_fd_blocks(struct env *e, uint32_t region)
{
	struct stat st;

	assert_int_equal(fstat(backend_region(e->backend, region)->fd, &st), 0);
	return (uint64_t)st.st_blocks;
}

static bool is_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_scrubs_and_frees(void **state)
{
	struct env *e = *state;
	struct pool_block whole, head, tail;
	uint64_t blocks, fd_blocks;
	struct buddy_stats st;

	/* res1 (8 KiB, page-aligned): one page-sized block, a 64-byte one and what follows. */
	assert_int_equal(pool_alloc(e->pool, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &whole), 0);
	assert_int_equal(pool_alloc(e->pool, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &head), 0);
	assert_int_equal(pool_alloc(e->pool, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &tail), 0);
	assert_int_equal(whole.addr, RES1);
	assert_int_equal(head.addr, RES1 + 4096);
	memset(mem(e, 1, RES1), 0xa5, 8192);
	fd_blocks = region_fd_blocks(e, 1);

	scrub_queue(e->scrub, &whole);
	scrub_queue(e->scrub, &head);
	/* Counted as backlog, held from the allocator, until the loop collects it. */
	assert_int_equal(backlog_bytes(e, 1, &blocks), 4096 + 64);
	assert_int_equal(blocks, 2);
	collect(e, 2);
	assert_int_equal(backlog_bytes(e, 1, &blocks), 0);
	assert_int_equal(blocks, 0);
	/* The whole page went back to the kernel (checked before reading it faults one in). */
	assert_true(region_fd_blocks(e, 1) < fd_blocks);
	assert_true(is_zero(mem(e, 1, RES1), 4096 + 64));
	/* The neighbour in the same page is left alone. */
	assert_int_equal(mem(e, 1, tail.addr)[0], 0xa5);
	assert_int_equal(pool_region_stats(e->pool, 1, &st), 0);
	assert_int_equal(st.used, 64);
	assert_int_equal(pool_free(e->pool, &tail), 0);
}

static void test_destroy_finishes_the_queue(void **state)
{
	struct env *e = *state;
	struct pool_block blk;

	assert_int_equal(pool_alloc(e->pool, SMH_REG_ATTR_CACHEABLE, 4096, 0, &blk), 0);
	memset(mem(e, 0, RES0), 0x5a, 4096);
	scrub_set_wake(e->scrub, NULL, NULL);
	scrub_queue(e->scrub, &blk);
	scrub_destroy(e->scrub); /* the teardown checks the pool got it back */
	e->scrub = NULL;
	assert_true(is_zero(mem(e, 0, RES0), 4096));
}

/* Whether the page of region 0 at @addr holds data (is resident or swapped), not a hole. */
static bool has_data(struct env *e, uint64_t addr)
{
	const struct backend_region *br = backend_region(e->backend, 0);
	off_t off = (off_t)(addr - br->fd_phys_base);

	return lseek(br->fd, off, SEEK_DATA) == off;
}

static void alloc_at(struct env *e, uint64_t size, uint64_t addr, struct pool_block *blk)
{
	assert_int_equal(pool_alloc(e->pool, SMH_REG_ATTR_CACHEABLE, size, 0, blk), 0);
	assert_int_equal(blk->addr, addr);
}

static void test_small_block_zeroed_in_place(void **state)
{
	struct env *e = *state;
	struct pool_block written, untouched, sub, after;
	uint64_t blocks;

	/* Two pages, one written; a 64-byte block alone in an untouched page; one after it. */
	alloc_at(e, 4096, BIG_BASE, &written);
	alloc_at(e, 4096, BIG_BASE + 4096, &untouched);
	alloc_at(e, 64, BIG_BASE + 8192, &sub);
	alloc_at(e, 64, BIG_BASE + 8192 + 64, &after);
	memset(mem(e, 0, BIG_BASE), 0x5a, 4096);
	assert_false(backend_punches(e->backend, 0, 4096));

	/* In memory and small: zeroed at once, on the caller's thread, and back in the pool. */
	scrub_queue(e->scrub, &written);
	assert_int_equal(backlog_bytes(e, 0, &blocks), 0);
	assert_true(is_zero(mem(e, 0, BIG_BASE), 4096));
	assert_int_equal(test_pool_used(e->pool, 0), 4096 + 64 + 64);
	scrub_queue(e->scrub, &untouched);
	scrub_queue(e->scrub, &sub);
	assert_int_equal(backlog_bytes(e, 0, &blocks), 4096 + 64);
	assert_int_equal(blocks, 2);
	collect(e, 2);
	/* Zeroed where it lies: its page is still the memfd's, the next owner finds it mapped. */
	assert_true(has_data(e, BIG_BASE));
	/* Pages nobody wrote are still holes: the scrubber did not make them resident. */
	assert_false(has_data(e, BIG_BASE + 4096));
	assert_false(has_data(e, BIG_BASE + 8192));
	assert_int_equal(region_fd_blocks(e, 0), 4096 / 512);
	assert_int_equal(pool_free(e->pool, &after), 0);
}

/* A hole seen before a written page says nothing of that page, in the same batch or not. */
static void test_hole_then_data(void **state)
{
	struct env *e = *state;
	struct pool_block blk[4];

	/* Four 64-byte blocks: two in an untouched page, two in the next page, written. */
	alloc_at(e, 64, BIG_BASE, &blk[0]);
	alloc_at(e, 64, BIG_BASE + 64, &blk[1]);
	assert_int_equal(pool_reserve(e->pool, 0, BIG_BASE + 4096, 64, &blk[2]), 0);
	assert_int_equal(pool_reserve(e->pool, 0, BIG_BASE + 4096 + 128, 64, &blk[3]), 0);
	memset(mem(e, 0, BIG_BASE + 4096), 0xa5, 4096);

	scrub_set_wake(e->scrub, NULL, NULL);
	for (int i = 0; i < 4; i++)
		scrub_queue(e->scrub, &blk[i]);
	scrub_destroy(e->scrub); /* finishes the queue; the teardown checks the pool */
	e->scrub = NULL;
	assert_false(has_data(e, BIG_BASE));
	assert_true(is_zero(mem(e, 0, BIG_BASE + 4096), 64));
	assert_int_equal(mem(e, 0, BIG_BASE + 4096 + 64)[0], 0xa5); /* free, not queued */
	assert_true(is_zero(mem(e, 0, BIG_BASE + 4096 + 128), 64));
	assert_int_equal(mem(e, 0, BIG_BASE + 4096 + 192)[0], 0xa5);
}

static void test_large_block_punched(void **state)
{
	struct env *e = *state;
	struct pool_block blk;

	alloc_at(e, BIG_PUNCH, BIG_BASE, &blk);
	memset(mem(e, 0, BIG_BASE), 0x5a, BIG_PUNCH);
	assert_int_equal(region_fd_blocks(e, 0), BIG_PUNCH / 512);
	assert_true(backend_punches(e->backend, 0, BIG_PUNCH));
	assert_false(backend_punches(e->backend, 0, BIG_PUNCH - 4096));

	scrub_queue(e->scrub, &blk);
	collect(e, 1);
	/* Given back to the kernel: nothing of the memfd is left resident. */
	assert_int_equal(region_fd_blocks(e, 0), 0);
	assert_false(has_data(e, BIG_BASE));
	assert_true(is_zero(mem(e, 0, BIG_BASE), BIG_PUNCH));
}

/*
 * The hand-over between the loop and the thread (two lock-free stacks) under traffic: 64-byte
 * blocks are allocated, some written, and queued while the thread scrubs and the loop collects
 * what is finished; every block comes back exactly once, zeroed, and the backlog ends at 0.
 */
static void test_many_blocks_cross_threads(void **state)
{
	struct env *e = *state;
	size_t queued = 0, collected = 0;
	uint64_t before, after;
	struct pool_block blk;

	for (unsigned i = 0; i < 100000; i++) {
		while (pool_alloc(e->pool, SMH_REG_ATTR_CACHEABLE, 64, 0, &blk) == -ENOMEM)
			collect_some(e, &collected);
		if (i % 7 == 0)
			memset(mem(e, 0, blk.addr), 0xa5, 64);
		backlog_bytes(e, 0, &before);
		scrub_queue(e->scrub, &blk);
		backlog_bytes(e, 0, &after);
		queued += after - before;
		if (i % 256 == 0)
			collected += drain_now(e);
	}
	while (collected < queued)
		collect_some(e, &collected);
	assert_int_equal(collected, queued);
	/* Blocks under a page are never zeroed at once: all of them went through the thread. */
	assert_int_equal(queued, 100000);
	backlog_bytes(e, 0, &after);
	assert_int_equal(after, 0);
	assert_true(is_zero(mem(e, 0, BIG_BASE), BIG_SIZE));
}

/* Whether [@p, @p + @len) is unmapped: mincore() of an unmapped range fails with ENOMEM. */
static bool unmapped(void *p, size_t len)
{
	unsigned char vec[64];

	assert_true(len / (size_t)sysconf(_SC_PAGESIZE) <= sizeof(vec));
	return mincore(p, len, vec) < 0 && errno == ENOMEM;
}

/*
 * Memory handed to scrub_unmap() is unmapped by the thread, with the scrubber still running
 * (scrub_destroy() unmaps what is left too, so it is not waited for here).
 */
static void test_unmap_off_the_loop(void **state)
{
	struct env *e = *state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p[3];

	for (int i = 0; i < 3; i++) {
		p[i] = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			    0);
		assert_true(p[i] != MAP_FAILED);
		memset(p[i], 0x5a, 4 * page);
		scrub_unmap(e->scrub, p[i], 4 * page);
	}
	/* Waits for the thread (no bound on how soon: a loaded machine may take a while). */
	for (int i = 0; i < 3; i++) {
		for (int ms = 0; !unmapped(p[i], 4 * page); ms++) {
			assert_true(ms < 60000);
			usleep(1000);
		}
	}
}

/* Whether every page of [@p, @p + @len) is in memory. */
static bool resident(void *p, size_t len)
{
	unsigned char vec[64];
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = len / page;

	assert_true(n <= sizeof(vec));
	assert_int_equal(mincore(p, len, vec), 0);
	for (size_t i = 0; i < n; i++) {
		if (!(vec[i] & 1))
			return false;
	}
	return true;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * madvise() as the scrubber's thread calls it (-Wl,--wrap=madvise): a populate of gate_addr
 * waits until gate_open, and a populate that finds its memory unmapped is counted.
 */
int __real_madvise(void *addr, size_t len, int advice);
int __wrap_madvise(void *addr, size_t len, int advice);

static void *_Atomic gate_addr;
static atomic_bool gate_reached, gate_open;
static atomic_int populate_enomem;

int __wrap_madvise(void *addr, size_t len, int advice)
{
	int ret;

	if (advice == MADV_POPULATE_WRITE && addr == atomic_load(&gate_addr)) {
		atomic_store(&gate_reached, true);
		while (!atomic_load(&gate_open))
			usleep(100);
	}
	ret = __real_madvise(addr, len, advice);
	if (ret < 0 && errno == ENOMEM && advice == MADV_POPULATE_WRITE)
		atomic_fetch_add(&populate_enomem, 1);
	return ret;
}

/*
 * Memory handed to scrub_populate() is faulted in by the thread, its bytes unchanged (zero
 * where nobody wrote, the loop's where it did). Memory populated and then given to
 * scrub_unmap(), both waiting for the thread at once (it is held in a populate of another
 * range meanwhile), is faulted in before it is unmapped, never after.
 */
static void test_populate_off_the_loop(void **state)
{
	struct env *e = *state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 32 * page;
	unsigned char *p, *q, *gate;

	if (test_under_qemu_user("MADV_POPULATE_WRITE (qemu-user ignores it)"))
		skip();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	assert_false(resident(p, len));
	p[5 * page + 7] = 0x5a; /* the loop's write, before and while the thread populates */
	scrub_populate(e->scrub, p, len);
	p[9 * page] = 0xa5;
	for (int ms = 0; !resident(p, len); ms++) {
		assert_true(ms < 60000);
		usleep(1000);
	}
	for (size_t i = 0; i < len; i++)
		assert_int_equal(p[i], i == 5 * page + 7 ? 0x5a : i == 9 * page ? 0xa5 : 0);
	munmap(p, len);

	gate = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(gate != MAP_FAILED && q != MAP_FAILED);
	atomic_store(&gate_addr, gate);
	scrub_populate(e->scrub, gate, page);
	for (int ms = 0; !atomic_load(&gate_reached); ms++) {
		assert_true(ms < 60000);
		usleep(1000);
	}
	scrub_populate(e->scrub, q, len);
	scrub_unmap(e->scrub, q, len);
	atomic_store(&gate_open, true);
	for (int ms = 0; !unmapped(q, len); ms++) {
		assert_true(ms < 60000);
		usleep(1000);
	}
	assert_int_equal(atomic_load(&populate_enomem), 0);
	munmap(gate, page);
}

/* ---------------------------------------------------------------- the broker's queue */

struct fixture {
	struct pool *pool;
	struct broker b;
	struct pool_block queued[64];
	unsigned n_queued;
	uint64_t backlog[3];
	struct broker_client *c1, *c2;
};

static void rec_queue(void *data, const struct pool_block *blk)
{
	struct fixture *f = data;

	assert_true(f->n_queued < 64);
	f->queued[f->n_queued++] = *blk;
	f->backlog[blk->region] += blk->size;
}

static void rec_backlog(void *data, uint32_t region, uint64_t *bytesp, uint64_t *blocksp)
{
	struct fixture *f = data;

	*bytesp = f->backlog[region];
	*blocksp = 0;
	for (unsigned i = 0; i < f->n_queued; i++)
		*blocksp += f->queued[i].region == region;
}

/* The scrubber is done: the queued blocks go back to the pool. */
static void finish_scrub(struct fixture *f)
{
	for (unsigned i = 0; i < f->n_queued; i++)
		assert_int_equal(pool_free(f->pool, &f->queued[i]), 0);
	f->n_queued = 0;
	memset(f->backlog, 0, sizeof(f->backlog));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->pool = test_example_pool(64);
	broker_init(
		&f->b, f->pool,
		&(struct broker_scrub){ .queue = rec_queue, .backlog = rec_backlog, .data = f });
	assert_int_equal(broker_client_add(&f->b, 10, 1000, 1000, "cam", &f->c1), 0);
	assert_int_equal(broker_client_add(&f->b, 11, 1001, 1001, "codec", &f->c2), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	broker_finish(&f->b);
	finish_scrub(f);
	test_assert_pool_empty(f->pool);
	pool_destroy(f->pool);
	free(f);
	return 0;
}

static uint64_t pool_used(struct fixture *f, size_t region)
{
	return test_pool_used(f->pool, region);
}

static void test_free_queues_live_block(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;
	uint64_t bytes, blocks;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &a), 0);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(f->n_queued, 1);
	assert_int_equal(f->queued[0].addr, RES1);
	assert_int_equal(f->queued[0].size, 8192);
	/* Still taken in the pool: nothing can be handed out of it... */
	assert_int_equal(pool_used(f, 1), 8192);
	broker_scrubbing(&f->b, UINT32_MAX, &bytes, &blocks);
	assert_int_equal(bytes, 8192);
	assert_int_equal(blocks, 1);
	/* ...so an allocation there waits for it, and one it could never hold is refused. */
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a),
			 -EAGAIN);
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 16384, 0, &a),
			 -ENOMEM);
	assert_int_equal(f->c2->n_buffers, 0);
	finish_scrub(f);
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &a), 0);
	assert_int_equal(a->blk.addr, RES1);
}

static void test_realloc_queues_what_it_gives_back(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *blocker;

	/* The tail of a shrink is taken back from the pool and queued. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &a), 0);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 1000, &a), 0);
	assert_int_equal(a->blk.size, 1024);
	assert_int_equal(f->n_queued, 1);
	assert_int_equal(f->queued[0].addr, RES1 + 1024);
	assert_int_equal(f->queued[0].size, 3072);
	assert_int_equal(pool_used(f, 1), 4096);
	/* A move queues the old block; the new one is elsewhere. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 1024, 0, &blocker),
			 0);
	assert_int_equal(blocker->blk.addr, RES1 + 4096);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 2048, &a), 0);
	assert_int_equal(a->blk.addr, RES1 + 6144);
	assert_int_equal(f->n_queued, 2);
	assert_int_equal(f->queued[1].addr, RES1);
	assert_int_equal(f->queued[1].size, 1024);
	/* Growing past what is clean waits for the backlog. */
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 4096, &a), -EAGAIN);
	assert_int_equal(a->blk.size, 2048);
	finish_scrub(f);
	assert_int_equal(pool_used(f, 1), 1024 + 2048);
}

static void test_retire_in_slices(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	for (int i = 0; i < 5; i++)
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a),
				 0);
	assert_true(broker_client_retire(&f->b, f->c1, 2));
	assert_int_equal(f->b.n_clients, 1); /* gone at once for the counts */
	assert_int_equal(f->n_queued, 2);
	assert_true(broker_reap(&f->b, 2));
	assert_int_equal(f->n_queued, 4);
	assert_false(broker_reap(&f->b, 2));
	assert_int_equal(f->n_queued, 5);
	assert_int_equal(broker_n_allocs(&f->b), 0);
	assert_false(broker_reap(&f->b, 2));
	/* A client with less than the budget goes at once. */
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_false(broker_client_retire(&f->b, f->c2, 2));
	assert_int_equal(f->b.n_clients, 0);
	assert_int_equal(f->n_queued, 6);
}

static void test_scrub_free_region(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 1024, 0, &a), 0);
	assert_int_equal(broker_scrub_free(&f->b, 1), 0);
	/* Every free extent is queued: the region is all taken until the scrubber is done. */
	assert_int_equal(pool_used(f, 1), 8192);
	assert_int_equal(f->backlog[1], 8192 - 1024);
	assert_int_equal(broker_alloc(&f->b, f->c2, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &a),
			 -EAGAIN);
	finish_scrub(f);
	assert_int_equal(pool_used(f, 1), 1024);
}

int main(void)
{
#define E(name) cmocka_unit_test_setup_teardown(name, env_setup, env_teardown)
#define B(name) cmocka_unit_test_setup_teardown(name, big_setup, env_teardown)
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		E(test_scrubs_and_frees),
		E(test_destroy_finishes_the_queue),
		B(test_small_block_zeroed_in_place),
		B(test_hole_then_data),
		B(test_large_block_punched),
		B(test_many_blocks_cross_threads),
		E(test_unmap_off_the_loop),
		E(test_populate_off_the_loop),
		T(test_free_queues_live_block),
		T(test_realloc_queues_what_it_gives_back),
		T(test_retire_in_slices),
		T(test_scrub_free_region),
	};
#undef T
#undef B
#undef E
	return cmocka_run_group_tests(tests, NULL, NULL);
}
