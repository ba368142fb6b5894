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
 * - Two FIFO lists under one mutex: `todo` (the loop appends, the thread takes the head) and
 *   `done` (the thread appends, the loop takes the whole list at once). Critical sections are
 *   a few pointer moves: the loop never waits for a scrub, only for the lock, which no one
 *   holds across one.
 * - The thread signals finished blocks through the wake function (the server's uv_async_t);
 *   the loop then frees them into the pool in bounded batches (scrub_collect()) and retries the
 *   requests that waited for memory. Freeing journals nothing: the allocation was recorded gone
 *   before it was queued.
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
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon/scrub.h"

/* The thread's nice value (Linux: per thread). */
#define SCRUB_NICE 10

/* Bytes zeroed between two looks at the rate and the stop flag. */
#define CHUNK (UINT64_C(1) << 20)

struct item {
	struct pool_block blk;
	struct item *next;
};

struct fifo {
	struct item *head, **tailp;
};

struct backlog {
	uint64_t bytes, blocks;
};

struct scrub {
	struct backend *backend;
	struct pool *pool;
	uint64_t rate;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fifo todo, done; /* under lock */
	bool stop;              /* under lock: finish the queue and exit */
	atomic_bool hurry;      /* read between chunks: ignore the rate */
	void (*wake)(void *data);
	void *wake_data;
	/* The loop's alone. */
	struct fifo ready; /* finished, taken from done, not freed yet */
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

/* Moves all of @from to the end of @to. */
static void fifo_splice(struct fifo *to, struct fifo *from)
{
	if (!from->head)
		return;
	*to->tailp = from->head;
	to->tailp = from->tailp;
	fifo_init(from);
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

static void *run(void *data)
{
	struct scrub *s = data;
	struct backend_seen seen;
	struct fifo batch;
	bool was_empty;

	/* Behind the loop and the clients for the CPU: the backlog only matters when short. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), SCRUB_NICE);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->todo.head && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->todo.head)
			break; /* stopping, and nothing left */
		/* Small blocks go in batches: a lock and a wake-up per block would cost more. */
		take_batch(&s->todo, &batch);
		pthread_mutex_unlock(&s->lock);
		/* What it learns of holes holds for the batch: all of it was free before. */
		seen = (struct backend_seen){ 0 };
		for (struct item *it = batch.head; it; it = it->next)
			scrub_block(s, &it->blk, &seen);
		pthread_mutex_lock(&s->lock);
		was_empty = !s->done.head;
		fifo_splice(&s->done, &batch);
		/* Told when done was empty: the loop takes the whole list when it comes. */
		if (s->wake && was_empty)
			s->wake(s->wake_data);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
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
	fifo_init(&s->todo);
	fifo_init(&s->done);
	fifo_init(&s->ready);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	ret = -pthread_create(&s->thread, NULL, run, s);
	if (ret < 0)
		goto err_lock;
	*scrubp = s;
	return 0;

err_lock:
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
err_scrub:
	free(s->backlog);
	free(s);
	return ret;
}

/* A finished block goes back to the pool: clean, it may be handed out. */
static void give_back(struct scrub *s, struct item *it)
{
	struct backlog *b = &s->backlog[it->blk.region];

	pool_free(s->pool, &it->blk);
	b->bytes -= it->blk.size;
	b->blocks--;
	free(it);
}

void scrub_destroy(struct scrub *s)
{
	struct item *it;

	if (!s)
		return;
	atomic_store(&s->hurry, true);
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->wake = NULL;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	fifo_splice(&s->ready, &s->done);
	while ((it = fifo_pop(&s->ready)))
		give_back(s, it);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->backlog);
	free(s);
}

void scrub_set_wake(struct scrub *s, void (*wake)(void *data), void *data)
{
	pthread_mutex_lock(&s->lock);
	s->wake = wake;
	s->wake_data = data;
	/* Blocks finished before anyone listened must not wait for the next one. */
	if (wake && s->done.head)
		wake(data);
	pthread_mutex_unlock(&s->lock);
}

void scrub_queue(struct scrub *s, const struct pool_block *blk)
{
	struct item *it;
	struct backlog *b = &s->backlog[blk->region];

	if (backend_zero_now(s->backend, blk->region, blk->addr, blk->size)) {
		pool_free(s->pool, blk);
		return;
	}
	it = malloc(sizeof(*it));
	if (!it) { /* no memory for the queue: scrub here, as before there was a thread */
		backend_scrub(s->backend, blk->region, blk->addr, blk->size,
			      backend_punches(s->backend, blk->region, blk->size), NULL);
		pool_free(s->pool, blk);
		return;
	}
	it->blk = *blk;
	b->bytes += blk->size;
	b->blocks++;
	pthread_mutex_lock(&s->lock);
	/* The thread waits only on an empty queue: no wake-up system call per block. */
	if (!s->todo.head)
		pthread_cond_signal(&s->cond);
	fifo_push(&s->todo, it);
	pthread_mutex_unlock(&s->lock);
}

size_t scrub_collect(struct scrub *s, size_t max, bool *morep)
{
	struct item *it;
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	fifo_splice(&s->ready, &s->done);
	pthread_mutex_unlock(&s->lock);
	while (n < max && (it = fifo_pop(&s->ready))) {
		give_back(s, it);
		n++;
	}
	*morep = s->ready.head != NULL;
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
