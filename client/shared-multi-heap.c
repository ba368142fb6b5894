/* SPDX-License-Identifier: MIT */
/*
 * The RTOS shared multi-heap API (include/smh/shared_multi_heap.h) on libsmh-client: one
 * process-wide connection, and pointers instead of buffers.
 *
 * Every block handed out is a mapped smh_buffer. The blocks are kept in an array sorted by
 * address: free and realloc find theirs by binary search on the exact pointer, smh_get_phys()
 * finds the block containing any pointer the same way (blocks never overlap: they are distinct
 * parts of region mappings). Insertion moves the tail of the array, which is cheap next to the
 * round trip to the daemon that comes with it.
 *
 * One mutex guards the connection pointer and the table. It is held across the round trips of
 * alloc, realloc and free so that the table always agrees with the daemon.
 *
 * After fork() the child inherits the parent's table and pointers (smh_get_phys() keeps
 * working on them) but not the connection: frees and reallocs of those blocks fail with
 * ECHILD. shared_multi_heap_pool_init() in the child makes the child's own connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client-internal.h"
#include "smh/client.h"
#include "smh/shared_multi_heap.h"

struct block {
	struct smh_buffer buf; /* buf.addr is the key */
	struct smh_client *client;
};

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smh_client *heap_client;
static pid_t heap_pid; /* of the process that made heap_client */
static struct block *blocks;
static size_t n_blocks, blocks_cap;

/* In parentheses: not the macro of the header, which calls smh_rtos_pool_init(). */
int(shared_multi_heap_pool_init)(void)
{
	struct smh_client *client;
	int err = -EALREADY;

	pthread_mutex_lock(&heap_lock);
	/* A connection made before fork() is the parent's: the child makes its own. */
	if (!heap_client || heap_pid != getpid()) {
		err = smh_connect(NULL, &client);
		if (err == 0) {
			heap_client = client;
			heap_pid = getpid();
		}
	}
	pthread_mutex_unlock(&heap_lock);
	return err;
}

/* The first generation's callback, once per region smhd serves. */
static int call_init_fn(smh_init_reg_fn_t fn)
{
	struct smh_region_info *regions;
	size_t n;
	int err;

	pthread_mutex_lock(&heap_lock);
	err = smh_get_regions(heap_client, &regions, &n);
	pthread_mutex_unlock(&heap_lock);
	if (err < 0)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct shared_multi_heap_region reg = {
			.attr = (uint32_t)regions[i].attr,
			.addr = (uintptr_t)regions[i].phys_addr,
			.size = (size_t)regions[i].size,
		};
		uint8_t *v_addr = NULL;
		size_t size = reg.size;

		fn(&reg, &v_addr, &size); /* smhd maps the regions: nothing to take from it */
	}
	free(regions);
	return 0;
}

int smh_rtos_pool_init(const smh_init_reg_fn_t *fns, size_t n)
{
	int err;

	if (!fns || n < 1 || n > 2)
		return -EINVAL;
	err = (shared_multi_heap_pool_init)();
	if (err == 0 && n == 2 && fns[1])
		err = call_init_fn(fns[1]);
	return err;
}

int shared_multi_heap_add(struct shared_multi_heap_region *region, void *user_data)
{
	(void)region;
	(void)user_data;
	client_log(SMH_LOG_WARNING,
		   "shared_multi_heap_add(): smhd serves the regions of the board's device tree "
		   "(a /reserved-memory node with compatible \"shared-multi-heap\"), not regions "
		   "a program adds");
	return -EOPNOTSUPP;
}

/* ---------------------------------------------------------------- the table */

/* Index of the first block whose address is above @p (n_blocks if none). */
static size_t upper_bound(const void *p)
{
	uintptr_t key = (uintptr_t)p;
	size_t lo = 0, hi = n_blocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)blocks[mid].buf.addr <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the block that starts at @p, or -1. */
static ptrdiff_t find_block(const void *p)
{
	size_t i = upper_bound(p);

	return i > 0 && blocks[i - 1].buf.addr == p ? (ptrdiff_t)(i - 1) : -1;
}

/* Index of the block that contains @p, or -1. */
static ptrdiff_t find_containing(const void *p)
{
	size_t i = upper_bound(p);
	uintptr_t start;

	if (i == 0)
		return -1;
	start = (uintptr_t)blocks[i - 1].buf.addr;
	return (uintptr_t)p - start < blocks[i - 1].buf.size ? (ptrdiff_t)(i - 1) : -1;
}

/* Room for one more block. */
static int reserve_block(void)
{
	size_t cap = blocks_cap ? blocks_cap * 2 : 64;
	struct block *grown;

	if (n_blocks < blocks_cap)
		return 0;
	grown = realloc(blocks, cap * sizeof(*blocks));
	if (!grown)
		return -ENOMEM;
	blocks = grown;
	blocks_cap = cap;
	return 0;
}

/* Inserts @b in address order; reserve_block() made room. */
static void insert_block(const struct block *b)
{
	size_t i = upper_bound(b->buf.addr);

	memmove(&blocks[i + 1], &blocks[i], (n_blocks - i) * sizeof(*blocks));
	blocks[i] = *b;
	n_blocks++;
}

static void remove_block(size_t i)
{
	memmove(&blocks[i], &blocks[i + 1], (n_blocks - i - 1) * sizeof(*blocks));
	n_blocks--;
}

/* ---------------------------------------------------------------- the calls */

static int alloc_locked(enum smh_reg_attr attr, size_t align, size_t bytes, void **ptrp)
{
	struct block b = { .client = heap_client };
	int err;

	if (!heap_client)
		return -ENOTCONN;
	err = smh_alloc(heap_client, attr, bytes, align, &b.buf);
	if (err < 0)
		return err;
	err = smh_map(&b.buf);
	if (err == 0)
		err = reserve_block();
	if (err < 0) {
		smh_free(heap_client, &b.buf);
		return err;
	}
	insert_block(&b);
	*ptrp = b.buf.addr;
	return 0;
}

void *shared_multi_heap_aligned_alloc(enum smh_reg_attr attr, size_t align, size_t bytes)
{
	void *ptr = NULL;
	int err;

	pthread_mutex_lock(&heap_lock);
	err = alloc_locked(attr, align, bytes, &ptr);
	pthread_mutex_unlock(&heap_lock);
	if (err < 0)
		errno = -err;
	return ptr;
}

void *shared_multi_heap_alloc(enum smh_reg_attr attr, size_t bytes)
{
	return shared_multi_heap_aligned_alloc(attr, 0, bytes);
}

/* Resizes block @i; on success *ptrp is its new address. */
static int realloc_block(size_t i, size_t bytes, void **ptrp)
{
	struct block b = blocks[i];
	int err;

	err = smh_realloc(b.client, &b.buf, bytes);
	if (err < 0 && memcmp(&b.buf, &blocks[i].buf, sizeof(b.buf)) != 0) {
		/* Resized, but its new place could not be mapped: no pointer to give. */
		smh_free(b.client, &b.buf);
		remove_block(i);
		return err;
	}
	if (err < 0)
		return err;
	remove_block(i);
	insert_block(&b);
	*ptrp = b.buf.addr;
	return 0;
}

void *shared_multi_heap_realloc(enum smh_reg_attr attr, void *ptr, size_t bytes)
{
	void *moved = NULL;
	ptrdiff_t i;
	int err;

	if (!ptr)
		return shared_multi_heap_alloc(attr, bytes);
	pthread_mutex_lock(&heap_lock);
	i = find_block(ptr);
	if (i < 0 || blocks[i].buf.attr != attr)
		err = -EINVAL;
	else
		err = realloc_block((size_t)i, bytes, &moved);
	pthread_mutex_unlock(&heap_lock);
	if (err < 0)
		errno = -err;
	return moved;
}

void shared_multi_heap_free(void *block)
{
	ptrdiff_t i;
	int err = -EINVAL;

	if (!block)
		return;
	pthread_mutex_lock(&heap_lock);
	i = find_block(block);
	if (i >= 0) {
		err = smh_free(blocks[i].client, &blocks[i].buf);
		if (err == 0)
			remove_block((size_t)i);
	}
	pthread_mutex_unlock(&heap_lock);
	if (err < 0)
		errno = -err;
}

int smh_get_phys(const void *ptr, uint64_t *physp)
{
	ptrdiff_t i;
	int err = -EINVAL;

	if (!physp)
		return -EINVAL;
	pthread_mutex_lock(&heap_lock);
	i = find_containing(ptr);
	if (i >= 0) {
		*physp = blocks[i].buf.phys_addr +
			 (uint64_t)((uintptr_t)ptr - (uintptr_t)blocks[i].buf.addr);
		err = 0;
	}
	pthread_mutex_unlock(&heap_lock);
	return err;
}

/* smh_sync_for_device() or _for_cpu() on the block that holds [@addr, @addr + @size). */
static int sync_block(void *addr, size_t size, bool invalidate)
{
	struct smh_buffer buf;
	uint64_t offset;
	ptrdiff_t i;

	pthread_mutex_lock(&heap_lock);
	i = find_containing(addr);
	if (i >= 0)
		buf = blocks[i].buf;
	pthread_mutex_unlock(&heap_lock);
	if (i < 0)
		return -EINVAL;
	offset = (uint64_t)((uintptr_t)addr - (uintptr_t)buf.addr);
	return invalidate ? smh_sync_for_cpu(&buf, offset, size)
			  : smh_sync_for_device(&buf, offset, size);
}

int smh_cache_data_flush_range(void *addr, size_t size)
{
	return sync_block(addr, size, false);
}

int smh_cache_data_invd_range(void *addr, size_t size)
{
	return sync_block(addr, size, true);
}
