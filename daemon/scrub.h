/* SPDX-License-Identifier: MIT */
/*
 * The scrubber: zeroes memory given back by clients on a thread of its own, so that no request
 * waits for it (see the design at the top of scrub.c).
 *
 * A block handed to scrub_queue() is a live allocation of the pool that no client holds: the
 * allocator cannot hand it out, and no client sees it. The thread zeroes it; the loop then
 * frees it into the pool (scrub_collect()). Until then it counts as the scrubbing backlog.
 *
 * Threads: scrub_create() and scrub_destroy() run on the loop's thread, which alone calls
 * scrub_queue(), scrub_collect() and reads the backlog. The wake function is called from the
 * scrubber's thread.
 */
#ifndef DAEMON_SCRUB_H
#define DAEMON_SCRUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/slab.h"
#include "core/pool.h"
#include "daemon/backend.h"
#include "daemon/poison.h"

struct scrub;

/*
 * Starts the scrubber over @backend's mappings, freeing clean blocks into @pool (both borrowed,
 * they must outlive it). @rate limits it to that many bytes per second (0: as fast as it goes);
 * only tests slow it down, to watch it busy. Returns 0 or a negative errno (-ENOMEM, or
 * pthread_create()'s).
 */
int scrub_create(struct backend *backend, struct pool *pool, uint64_t rate, struct scrub **scrubp);

/*
 * Finishes what is queued (at full speed), stops the thread and frees every block into the
 * pool. scrub_destroy(NULL) does nothing.
 */
void scrub_destroy(struct scrub *scrub);

/*
 * Sets the function the thread calls when it has finished blocks (NULL: none). It is called
 * with the scrubber's lock held: once this returns with NULL, it is never called again, and
 * whatever it signals (a uv_async_t) can be closed.
 */
void scrub_set_wake(struct scrub *scrub, void (*wake)(void *data), void *data);

/*
 * Takes @blk (a live block of the pool no client holds) to zero and free it. A small one whose
 * pages are all in memory is zeroed and freed at once, on the caller's thread (see scrub.c).
 */
void scrub_queue(struct scrub *scrub, const struct pool_block *blk);

/*
 * Poison mode (smhd --debug-poison; see the design in scrub.c). Call scrub_set_poison() before
 * the first block is queued: from then on a block queued with an origin (scrub_queue_from(),
 * whose @origin is copied) is filled with the pattern and kept in its region's quarantine, at
 * most @quarantine bytes per region (0: a quarter of the region), before it is checked, zeroed
 * and freed. Blocks written meanwhile are logged (a warning each) and counted
 * (scrub_poison_stats()). Quarantined blocks count in the backlog. scrub_drain() has the
 * thread release the whole quarantine (an allocation waits for it); without poison mode it does
 * nothing. scrub_set_poison() returns 0 or -ENOMEM.
 */
int scrub_set_poison(struct scrub *scrub, uint64_t quarantine);
void scrub_queue_from(struct scrub *scrub, const struct pool_block *blk,
		      const struct poison_origin *origin);
void scrub_drain(struct scrub *scrub);
void scrub_poison_stats(struct scrub *scrub, struct poison_stats *st);

/*
 * Gives [@addr, @addr + @len) (anonymous memory, page-aligned, the caller's to give) back to
 * the system: the thread unmaps it, so that the caller does not wait for the TLB shootdown.
 * Called from the loop's thread; its first 16 bytes are overwritten at once.
 */
void scrub_unmap(struct scrub *scrub, void *addr, size_t len);

/* scrub_unmap() with @scrub as data, in the shape of the unmap hooks (pool_set_unmap()). */
void scrub_unmap_hook(void *scrub, void *addr, size_t len);

/*
 * Has the thread fault in [@addr, @addr + @len) (anonymous memory, mapped and writable, zero
 * or being written by the loop) with MADV_POPULATE_WRITE, which changes no byte, so that the
 * loop does not take a page fault per page as it writes it. Called from the loop's thread,
 * before any scrub_unmap() of that memory. When the thread gets to it late, or never (no
 * memory for the request, a kernel older than 5.14), the loop takes the faults itself; the
 * buddy's allocation tables are kept aside until they are in, and taken unfaulted only where
 * they must be (core/buddy-allocs.c).
 */
void scrub_populate(struct scrub *scrub, void *addr, size_t len);

/* scrub_populate() with @scrub as data (hmap_set_populate()). */
void scrub_populate_hook(void *scrub, void *addr, size_t len);

/*
 * The depot of empty slab chunks the queue's items use (common/slab.h), for the loop's other
 * slabs to share: a dying client's objects give chunks back as fast as the queue takes them,
 * and no system call is made for either. What it does not keep goes to scrub_unmap(). It lives
 * as long as the scrubber: slabs sharing it must be finished first.
 */
struct slab_depot *scrub_depot(struct scrub *scrub);

/*
 * Frees up to @max finished blocks into the pool. Returns how many it freed; *morep tells
 * whether finished blocks are left for another call.
 */
size_t scrub_collect(struct scrub *scrub, size_t max, bool *morep);

/* The backlog: bytes and blocks queued or finished but not freed yet, of region @region. */
void scrub_backlog(const struct scrub *scrub, uint32_t region, uint64_t *bytesp, uint64_t *blocksp);

#endif
