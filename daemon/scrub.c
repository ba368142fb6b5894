/* SPDX-License-Identifier: MIT */
/*
 * The scrubber (see scrub.h). Zeroing a freed 256 MiB buffer inside the request stalled every
 * client for milliseconds (a 1 GiB one for seconds, a 1 M-buffer disconnect for two), so the
 * loop hands freed memory to a thread and goes on serving.
 *
 * Design:
 * - A block being scrubbed stays a live allocation of the pool (the broker took it out of its
 *   tables, the journal recorded it gone): the allocator cannot hand it out dirty, and no client
 *   sees it. Stats report it as the scrubbing backlog, per region (bytes, blocks).
 * - The loop never takes a lock the thread may hold. A lock held by a thread at nice 10 on a
 *   busy machine is a priority inversion: the thread is preempted inside its few pointer moves
 *   and the loop waits until the scheduler runs it again (a 1 M-buffer disconnect showed the
 *   loop blocked on the old mutex for up to 7.7 ms at a time). Blocks change hands through two
 *   lock-free stacks instead: `todo_in` (the loop pushes one block with a compare-and-swap;
 *   the thread takes the whole stack with one exchange and puts it in order on its own FIFO)
 *   and `done_in` (the thread pushes a finished batch as one chain; the loop takes the whole
 *   stack with one exchange, in constant time, and frees from it in slices). A semaphore wakes
 *   the thread when `todo_in` was empty, or to drain or stop: posting never blocks.
 * - The thread signals finished blocks through the wake function (the server's uv_async_t)
 *   when `done_in` was empty; the loop then frees them into the pool in bounded batches
 *   (scrub_collect()) and retries the requests that waited for memory. Freeing journals
 *   nothing: the allocation was recorded gone before it was queued.
 * - Memory the loop gives back to the system (empty slab chunks: scrub_unmap()) is unmapped by
 *   the thread too, through a third stack: an munmap() is a TLB shootdown that waits for every
 *   other CPU running the process, 5-6 ms now and then on the 2-vCPU VM, which the loop must
 *   not wait for. The other way round, the thread faults in the large hash tables the loop is
 *   about to fill (scrub_populate()), ahead of the loop's writes; the buddy's allocation
 *   table waits aside until it is in (core/buddy-allocs.c), so its faults never fall to the
 *   loop when the thread is slow to run.
 * - A mutex guards what is not on that path: the wake function (set at start and stop) and the
 *   poison statistics. The loop only tries it for the statistics, and answers with the last
 *   figures it got when the thread holds it.
 * - memfd: a large block's whole pages go back to the kernel (fallocate(PUNCH_HOLE), which
 *   reads back as zeros and releases the memory); a small block is cleared with memset on the
 *   pages that hold data only, so that its next owner finds it still mapped, and pages nobody
 *   wrote stay holes (backend_scrub(); what it learns of holes is kept for one batch, whose
 *   blocks were all free before it looked). devmem: aligned 64-bit volatile stores, never
 *   memset or DC ZVA on Device memory.
 * - Blocks of one page to 16 KiB whose pages are all in memory are zeroed on the loop at
 *   once (backend_zero_now()), as cheap as queueing them: they go back to the pool still mapped
 *   by the clients, without waiting for the thread.
 * - The thread runs at nice 10: on a loaded machine the loop and the clients come first.
 * - Large blocks are scrubbed in chunks; between chunks the thread sleeps when a test set a
 *   rate, and stops sleeping once scrub_destroy() asked it to finish.
 * - scrub_destroy() lets the thread finish the queue at full speed, joins it and frees every
 *   block into the pool: nothing leaks, nothing is left dirty for the next owner of devmem.
 * - Poison mode (smhd --debug-poison, off unless scrub_set_poison() is called): a block that
 *   came from an allocation is filled with the pattern instead of scrubbed, and waits in its
 *   region's quarantine (a FIFO the thread alone touches, bounded in bytes). The oldest leave
 *   it when it is over the bound, all when the loop asks (scrub_drain(): an allocation waits for
 *   memory that only the quarantine holds) and at scrub_destroy(); one leaving is checked
 *   (poison_check()), reported when written after free, scrubbed and goes to `done` as any
 *   other. The loop never touches the pattern; the next owner still sees zeros. Memory that
 *   never was an allocation (devmem at start-up, a recovery's free memory) has no origin and
 *   is only scrubbed.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/slab.h"
#include "daemon/scrub.h"

/* The thread's nice value (Linux: per thread). */
#define SCRUB_NICE 10

/* Empty slab chunks kept for the loop's objects (2 MiB); the rest go to the thread to unmap. */
#define DEPOT_KEEP 32

/* Bytes zeroed between two looks at the rate and the stop flag. */
#define CHUNK (UINT64_C(1) << 20)

struct item {
	struct pool_block blk;
	struct item *next;
	bool poison; /* fill it and quarantine it (poison mode, from an allocation) */
	struct poison_origin origin; /* last: not allocated unless poison */
};

struct fifo {
	struct item *head, **tailp;
};

/* Memory to unmap, the node in its first bytes. */
struct unmap_node {
	struct unmap_node *next;
	size_t len;
};

/* Memory to fault in (scrub_populate()): the memory must stay zero, so the node is apart. */
struct populate_node {
	struct populate_node *next;
	void *addr;
	size_t len;
};

/* Faulted in between two looks at the stop flag. */
#define POPULATE_CHUNK (UINT64_C(1) << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Ranges sorted and joined per munmap() round. */
#define UNMAP_BATCH 256

struct unmap_range {
	unsigned char *addr;
	size_t len;
};

struct backlog {
	uint64_t bytes, blocks;
};

/* A region's quarantine: the thread's alone. */
struct quarantine {
	struct fifo blocks;
	uint64_t bytes, max;
};

struct scrub {
	struct backend *backend;
	struct pool *pool;
	uint64_t rate;
	pthread_t thread;
	sem_t work;                     /* posted: todo_in was empty, or drain, or stop */
	_Atomic(struct item *) todo_in; /* the loop pushes blocks, the thread takes them all */
	_Atomic(struct item *) done_in; /* the thread pushes batches, the loop takes them all */
	_Atomic(struct unmap_node *) unmap_in; /* the loop pushes, the thread unmaps them all */
	_Atomic(struct populate_node *) populate_in; /* likewise, to fault in */
	atomic_bool stop;                            /* finish the queue and exit */
	atomic_bool drain;                           /* release every quarantined block */
	atomic_bool hurry;                           /* read between chunks: ignore the rate */
	pthread_mutex_t lock;                        /* the wake function and poison_st */
	void (*wake)(void *data);                    /* under lock */
	void *wake_data;
	/* Poison mode: set before the first block is queued, then read-only. */
	bool poison;
	struct quarantine *quarantine; /* per region, the thread's alone */
	struct poison_stats poison_st; /* under lock */
	/* The thread's alone. */
	struct fifo todo; /* taken from todo_in, oldest first */
	/* The loop's alone. */
	struct item *ready;               /* finished, taken from done_in, not freed yet */
	struct slab items;                /* every item (common/slab.h) */
	struct slab_depot depot;          /* its empty chunks, shared (scrub_depot()) */
	struct poison_stats poison_known; /* the last poison_st the loop read */
	struct backlog *backlog;
	size_t n_regions;
};

static void fifo_init(struct fifo *f)
{
	f->head = NULL;
	f->tailp = &f->head;
}

static void fifo_push(struct fifo *f, struct item *it)
{
	it->next = NULL;
	*f->tailp = it;
	f->tailp = &it->next;
}

static struct item *fifo_pop(struct fifo *f)
{
	struct item *it = f->head;

	if (it) {
		f->head = it->next;
		if (!f->head)
			f->tailp = &f->head;
	}
	return it;
}

/* Pushes the chain @first..@last (linked by next) on @top. Returns whether @top was empty. */
static bool stack_push(_Atomic(struct item *) *top, struct item *first, struct item **lastp)
{
	struct item *old = atomic_load_explicit(top, memory_order_relaxed);

	do
		*lastp = old;
	while (!atomic_compare_exchange_weak_explicit(top, &old, first, memory_order_release,
						      memory_order_relaxed));
	return old == NULL;
}

/* Takes the whole stack @top: constant time, newest first. */
static struct item *stack_take(_Atomic(struct item *) *top)
{
	return atomic_exchange_explicit(top, NULL, memory_order_acquire);
}

/* The thread: appends what the loop pushed to @todo, oldest first. */
static void take_todo(struct scrub *s)
{
	struct item *it = stack_take(&s->todo_in), *oldest = NULL, *next;

	for (; it; it = next) {
		next = it->next;
		it->next = oldest;
		oldest = it;
	}
	for (it = oldest; it; it = next) {
		next = it->next;
		fifo_push(&s->todo, it);
	}
}

static void pause_for(uint64_t bytes, uint64_t rate)
{
	uint64_t ns = bytes * UINT64_C(1000000000) / rate;
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = ns % 1000000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void scrub_block(struct scrub *s, const struct pool_block *blk, struct backend_seen *seen)
{
	bool punch = backend_punches(s->backend, blk->region, blk->size);

	for (uint64_t off = 0; off < blk->size; off += CHUNK) {
		uint64_t len = blk->size - off < CHUNK ? blk->size - off : CHUNK;

		backend_scrub(s->backend, blk->region, blk->addr + off, len, punch, seen);
		if (s->rate && !atomic_load(&s->hurry))
			pause_for(len, s->rate);
	}
}

/* Takes a batch off @todo: one block, and more while they add up to less than a CHUNK. */
static void take_batch(struct fifo *todo, struct fifo *batch)
{
	uint64_t bytes = 0;
	struct item *it;

	fifo_init(batch);
	do {
		it = fifo_pop(todo);
		fifo_push(batch, it);
		bytes += it->blk.size;
	} while (todo->head && bytes + todo->head->blk.size <= CHUNK);
}

/* Keeps @r (the lock held): counted, and among the last ones. */
static void record(struct scrub *s, const struct poison_report *r)
{
	struct poison_stats *st = &s->poison_st;

	st->n_reports++;
	if (st->n_last == POISON_LAST) {
		memmove(&st->last[0], &st->last[1], (POISON_LAST - 1) * sizeof(st->last[0]));
		st->n_last--;
	}
	st->last[st->n_last++] = *r;
}

/* @it leaves the quarantine: a change to the pattern is a write after free. */
static void check(struct scrub *s, const struct item *it)
{
	const struct pool_block *blk = &it->blk;
	struct poison_report r = { .region = blk->region, .size = blk->size, .origin = it->origin };

	r.changed = poison_check(s->backend, blk->region, blk->addr, blk->size, &r.first);
	if (r.changed == 0)
		return;
	r.offset = blk->addr - backend_region(s->backend, blk->region)->fd_phys_base;
	log_warning("Region %s: %llu bytes of the block at offset 0x%llx (%llu bytes) were written "
		    "after it was freed, the first at +0x%llx; handle %llu, last held by %s "
		    "(pid %d)",
		    pool_region(s->pool, blk->region)->label, (unsigned long long)r.changed,
		    (unsigned long long)r.offset, (unsigned long long)r.size,
		    (unsigned long long)r.first, (unsigned long long)r.origin.handle, r.origin.comm,
		    (int)r.origin.pid);
	pthread_mutex_lock(&s->lock);
	record(s, &r);
	pthread_mutex_unlock(&s->lock);
}

/* Checks, scrubs and moves to @out the oldest quarantined blocks: all, or those over the bound. */
static void release(struct scrub *s, bool all, struct fifo *out)
{
	for (size_t i = 0; i < s->n_regions; i++) {
		struct quarantine *q = &s->quarantine[i];

		while (q->blocks.head && (all || q->bytes > q->max)) {
			struct item *it = fifo_pop(&q->blocks);

			q->bytes -= it->blk.size;
			check(s, it);
			scrub_block(s, &it->blk, NULL);
			fifo_push(out, it);
		}
	}
}

/* Scrubs @batch; in poison mode, its blocks from allocations go to the quarantine instead. */
static void process(struct scrub *s, struct fifo *batch, bool drain, struct backend_seen *seen)
{
	struct fifo in = *batch;
	struct item *it;

	if (!s->poison) {
		for (it = batch->head; it; it = it->next)
			scrub_block(s, &it->blk, seen);
		return;
	}
	if (!in.head)
		in.tailp = &in.head;
	fifo_init(batch);
	while ((it = fifo_pop(&in))) {
		if (!it->poison) {
			/* The pattern written into pages meanwhile: learn nothing across blocks. */
			scrub_block(s, &it->blk, NULL);
			fifo_push(batch, it);
			continue;
		}
		poison_fill(s->backend, it->blk.region, it->blk.addr, it->blk.size);
		s->quarantine[it->blk.region].bytes += it->blk.size;
		fifo_push(&s->quarantine[it->blk.region].blocks, it);
	}
	release(s, drain, batch);
}

/* The bytes quarantined (the lock held). */
static uint64_t quarantined(const struct scrub *s)
{
	uint64_t bytes = 0;

	for (size_t i = 0; s->poison && i < s->n_regions; i++)
		bytes += s->quarantine[i].bytes;
	return bytes;
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct unmap_range *)a)->addr;
	uintptr_t y = (uintptr_t)((const struct unmap_range *)b)->addr;

	return x < y ? -1 : x > y;
}

/*
 * Faults in the ranges on the populate stack and frees their nodes (only frees them with @skip,
 * or once one madvise() failed or a stop was asked). A range on it was pushed before any unmap
 * of it: the thread takes the unmap stack first, populates, then unmaps, so that it never
 * faults in memory given back (or mapped again for something else). A kernel without
 * MADV_POPULATE_WRITE refuses it: the loop takes the faults, as before (a buddy allocation
 * table once its allocator must take it: core/buddy-allocs.c).
 */
static void populate_all(struct scrub *s, bool skip)
{
	struct populate_node *n =
		atomic_exchange_explicit(&s->populate_in, NULL, memory_order_acquire);

	while (n) {
		struct populate_node *next = n->next;

		for (size_t done = 0, len; !skip && done < n->len; done += len) {
			len = n->len - done < POPULATE_CHUNK ? n->len - done : POPULATE_CHUNK;
			skip = atomic_load_explicit(&s->stop, memory_order_relaxed) ||
			       madvise((unsigned char *)n->addr + done, len, MADV_POPULATE_WRITE) <
				       0;
		}
		free(n);
		n = next;
	}
}

/*
 * Unmaps everything on the unmap stack (the thread's, or the loop's once it is gone), joining
 * ranges that touch: every munmap() write-locks the address space and waits for the other
 * CPUs' TLBs, so fewer is better for the loop too (chunks of a batch come back in a row).
 * What is on the populate stack is faulted in first (populate_all()).
 */
static void unmap_all(struct scrub *s, bool skip_populate)
{
	struct unmap_node *n = atomic_exchange_explicit(&s->unmap_in, NULL, memory_order_acquire);
	struct unmap_range r[UNMAP_BATCH];

	populate_all(s, skip_populate);
	while (n) {
		size_t k = 0, j = 0;

		for (; n && k < UNMAP_BATCH; n = n->next)
			r[k++] = (struct unmap_range){ .addr = (unsigned char *)n, .len = n->len };
		qsort(r, k, sizeof(r[0]), by_address);
		for (size_t i = 1; i < k; i++) {
			if (r[j].addr + r[j].len == r[i].addr)
				r[j].len += r[i].len;
			else
				r[++j] = r[i];
		}
		for (size_t i = 0; k > 0 && i <= j; i++)
			munmap(r[i].addr, r[i].len);
	}
}

/* The thread: hands a processed batch to the loop, waking it when it had nothing. */
static void hand_over(struct scrub *s, struct fifo *batch)
{
	if (s->poison) {
		pthread_mutex_lock(&s->lock);
		s->poison_st.quarantine_bytes = quarantined(s);
		pthread_mutex_unlock(&s->lock);
	}
	if (!batch->head || !stack_push(&s->done_in, batch->head, batch->tailp))
		return;
	/* Under the lock: once scrub_set_wake(NULL) returned, it is never called again. */
	pthread_mutex_lock(&s->lock);
	if (s->wake)
		s->wake(s->wake_data);
	pthread_mutex_unlock(&s->lock);
}

static void *run(void *data)
{
	struct scrub *s = data;
	struct backend_seen seen;
	struct fifo batch;
	bool drain, stop;

	/* Behind the loop and the clients for the CPU: the backlog only matters when short. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), SCRUB_NICE);
	for (;;) {
		/* Read before taking: what was queued before scrub_destroy() is in the take. */
		stop = atomic_load_explicit(&s->stop, memory_order_acquire);
		unmap_all(s, stop);
		take_todo(s);
		drain = atomic_exchange_explicit(&s->drain, false, memory_order_acquire);
		if (!s->todo.head && !drain && !stop) {
			while (sem_wait(&s->work) < 0 && errno == EINTR)
				;
			/* Posts made while it was busy: the take at the top sees their work. */
			while (sem_trywait(&s->work) == 0)
				;
			continue;
		}
		/* Stopping, and nothing left: the quarantine is checked too. */
		drain = drain || (stop && !s->todo.head);
		fifo_init(&batch);
		/* Small blocks go in batches: a hand-over and a wake-up per block would cost more. */
		if (s->todo.head)
			take_batch(&s->todo, &batch);
		/* What it learns of holes holds for the batch: all of it was free before. */
		seen = (struct backend_seen){ 0 };
		process(s, &batch, drain, &seen);
		hand_over(s, &batch);
		if (stop && !s->todo.head && drain)
			break;
	}
	return NULL;
}

void scrub_unmap(struct scrub *s, void *addr, size_t len)
{
	struct unmap_node *n = addr,
			  *old = atomic_load_explicit(&s->unmap_in, memory_order_relaxed);

	n->len = len;
	do
		n->next = old;
	while (!atomic_compare_exchange_weak_explicit(&s->unmap_in, &old, n, memory_order_release,
						      memory_order_relaxed));
	if (!old)
		sem_post(&s->work);
}

void scrub_unmap_hook(void *scrub, void *addr, size_t len)
{
	scrub_unmap(scrub, addr, len);
}

void scrub_populate(struct scrub *s, void *addr, size_t len)
{
	struct populate_node *n = malloc(sizeof(*n)),
			     *old = atomic_load_explicit(&s->populate_in, memory_order_relaxed);

	if (!n) /* the loop takes the faults */
		return;
	n->addr = addr;
	n->len = len;
	do
		n->next = old;
	while (!atomic_compare_exchange_weak_explicit(&s->populate_in, &old, n,
						      memory_order_release, memory_order_relaxed));
	if (!old)
		sem_post(&s->work);
}

void scrub_populate_hook(void *scrub, void *addr, size_t len)
{
	scrub_populate(scrub, addr, len);
}

struct slab_depot *scrub_depot(struct scrub *s)
{
	return &s->depot;
}

int scrub_create(struct backend *backend, struct pool *pool, uint64_t rate, struct scrub **scrubp)
{
	struct scrub *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->n_regions = pool_n_regions(pool);
	s->backlog = calloc(s->n_regions ? s->n_regions : 1, sizeof(*s->backlog));
	if (!s->backlog) {
		ret = -ENOMEM;
		goto err_scrub;
	}
	s->backend = backend;
	s->pool = pool;
	s->rate = rate;
	atomic_init(&s->hurry, false);
	atomic_init(&s->stop, false);
	atomic_init(&s->drain, false);
	atomic_init(&s->todo_in, NULL);
	atomic_init(&s->done_in, NULL);
	atomic_init(&s->unmap_in, NULL);
	atomic_init(&s->populate_in, NULL);
	fifo_init(&s->todo);
	/* Without poison mode, no room for an origin: the queue costs what it did before. */
	slab_depot_init(&s->depot, DEPOT_KEEP);
	slab_depot_set_release(&s->depot, scrub_unmap_hook, s);
	slab_init_shared(&s->items, offsetof(struct item, origin), &s->depot);
	if (sem_init(&s->work, 0, 0) < 0) {
		ret = -errno;
		goto err_scrub;
	}
	pthread_mutex_init(&s->lock, NULL);
	ret = -pthread_create(&s->thread, NULL, run, s);
	if (ret < 0)
		goto err_lock;
	*scrubp = s;
	return 0;

err_lock:
	pthread_mutex_destroy(&s->lock);
	sem_destroy(&s->work);
err_scrub:
	free(s->backlog);
	free(s);
	return ret;
}

/* The loop: the next finished block, NULL when none. Taking the thread's batches is constant
 * time: ready is refilled only when empty. */
static struct item *next_ready(struct scrub *s)
{
	struct item *it = s->ready ? s->ready : stack_take(&s->done_in);

	if (it)
		s->ready = it->next;
	return it;
}

/* A finished block goes back to the pool: clean, it may be handed out. */
static void give_back(struct scrub *s, struct item *it)
{
	struct backlog *b = &s->backlog[it->blk.region];

	pool_free(s->pool, &it->blk);
	b->bytes -= it->blk.size;
	b->blocks--;
	slab_free(&s->items, it);
}

void scrub_destroy(struct scrub *s)
{
	struct item *it;

	if (!s)
		return;
	atomic_store(&s->hurry, true);
	pthread_mutex_lock(&s->lock);
	s->wake = NULL;
	pthread_mutex_unlock(&s->lock);
	atomic_store_explicit(&s->stop, true, memory_order_release);
	sem_post(&s->work);
	pthread_join(s->thread, NULL);
	while ((it = next_ready(s)))
		give_back(s, it);
	slab_finish(&s->items);
	slab_depot_finish(&s->depot);
	unmap_all(s, true); /* what was handed over meanwhile: no thread to do it now */
	pthread_mutex_destroy(&s->lock);
	sem_destroy(&s->work);
	free(s->quarantine);
	free(s->backlog);
	free(s);
}

void scrub_set_wake(struct scrub *s, void (*wake)(void *data), void *data)
{
	pthread_mutex_lock(&s->lock);
	s->wake = wake;
	s->wake_data = data;
	/* Blocks finished before anyone listened must not wait for the next one. */
	if (wake && atomic_load_explicit(&s->done_in, memory_order_relaxed))
		wake(data);
	pthread_mutex_unlock(&s->lock);
}

int scrub_set_poison(struct scrub *s, uint64_t quarantine)
{
	struct quarantine *q = calloc(s->n_regions ? s->n_regions : 1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_regions; i++) {
		fifo_init(&q[i].blocks);
		q[i].max = quarantine ? quarantine : pool_region(s->pool, i)->size / 4;
	}
	/* No item exists yet: they grow room for an origin. */
	slab_finish(&s->items);
	slab_init_shared(&s->items, sizeof(struct item), &s->depot);
	pthread_mutex_lock(&s->lock);
	s->quarantine = q;
	s->poison = true;
	s->poison_st.enabled = true;
	s->poison_known = s->poison_st;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void scrub_drain(struct scrub *s)
{
	if (!s->poison)
		return;
	atomic_store_explicit(&s->drain, true, memory_order_release);
	sem_post(&s->work);
}

void scrub_poison_stats(struct scrub *s, struct poison_stats *st)
{
	/* Never waits for the thread: the last figures read when it holds the lock. */
	if (pthread_mutex_trylock(&s->lock) == 0) {
		s->poison_known = s->poison_st;
		pthread_mutex_unlock(&s->lock);
	}
	*st = s->poison_known;
}

void scrub_queue(struct scrub *s, const struct pool_block *blk)
{
	scrub_queue_from(s, blk, NULL);
}

void scrub_queue_from(struct scrub *s, const struct pool_block *blk,
		      const struct poison_origin *origin)
{
	bool poison = s->poison && origin;
	struct item *it;
	struct backlog *b = &s->backlog[blk->region];

	/* A quarantined block must keep its pattern: not zeroed here. */
	if (!poison && backend_zero_now(s->backend, blk->region, blk->addr, blk->size)) {
		pool_free(s->pool, blk);
		return;
	}
	it = slab_alloc(&s->items);
	if (!it) { /* no memory for the queue: scrub here, as before there was a thread */
		backend_scrub(s->backend, blk->region, blk->addr, blk->size,
			      backend_punches(s->backend, blk->region, blk->size), NULL);
		pool_free(s->pool, blk);
		return;
	}
	it->blk = *blk;
	it->poison = poison;
	if (poison)
		it->origin = *origin;
	b->bytes += blk->size;
	b->blocks++;
	/* The thread sleeps only on an empty stack: no wake-up system call per block. */
	if (stack_push(&s->todo_in, it, &it->next))
		sem_post(&s->work);
}

size_t scrub_collect(struct scrub *s, size_t max, bool *morep)
{
	struct item *it;
	size_t n = 0;

	while (n < max && (it = next_ready(s))) {
		give_back(s, it);
		n++;
	}
	*morep = s->ready || atomic_load_explicit(&s->done_in, memory_order_relaxed);
	return n;
}

void scrub_backlog(const struct scrub *s, uint32_t region, uint64_t *bytesp, uint64_t *blocksp)
{
	if (region >= s->n_regions) {
		*bytesp = *blocksp = 0;
		return;
	}
	*bytesp = s->backlog[region].bytes;
	*blocksp = s->backlog[region].blocks;
}
