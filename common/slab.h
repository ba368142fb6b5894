/* SPDX-License-Identifier: MIT */
/*
 * Objects of one size in chunks of their own: what the daemon keeps per buffer (allocations,
 * holds, the scrubber's queue items), a million of each at a time.
 *
 * Why not malloc(): a client holding a million buffers that disconnects frees a million of each
 * in the order they were made. glibc put the freed ones in its fast bins unmerged, and the next
 * malloc() of a larger size merged them all at once (malloc_consolidate(): 22 ms of CPU inside
 * one unrelated 4 KiB allocation, measured with perf during that release); the memory went back
 * to the system only when the heap's top was free, in one large trim. Here every call is O(1):
 * an object comes off its chunk's free list (or the chunk's untouched tail) and goes back on it,
 * and a chunk whose last object goes is unmapped at once (64 KiB), but for SLAB_KEEP empty
 * chunks kept so that allocs and frees at a chunk's edge do not map and unmap it every time.
 * Chunks are mapped SLAB_BATCH at a time: every mmap() and munmap() takes the process's
 * address-space lock for writing, which another thread unmapping or faulting may hold.
 *
 * Unmapping costs more than it seems in a threaded process: every munmap() is a TLB shootdown,
 * an interrupt to each other CPU running the process and a wait for all of them (5-6 ms inside
 * one free on the 2-vCPU VM while the scrubber thread ran on the other CPU). A program that must
 * not wait (the daemon's loop) gives its empty chunks to another thread with slab_set_release().
 *
 * Objects are 8-byte aligned, enough for pointers and 64-bit integers (not 16 as malloc()'s: a
 * 120-byte record takes 120 bytes, and a million of them 8 MB less).
 * Chunks are SLAB_CHUNK bytes aligned to their size: an object finds its chunk by masking its
 * address. Not thread-safe: one thread allocates and frees. Under AddressSanitizer or Valgrind
 * an object is announced as a heap block while it is live, so that a use after free, an overflow
 * into the next object or a leak is reported as it would be with malloc().
 */
#ifndef COMMON_SLAB_H
#define COMMON_SLAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/list.h"

#define SLAB_CHUNK (64u << 10)
/* Chunks mapped by one mmap(), and empty chunks a slab's own depot keeps at most. */
#define SLAB_BATCH 16
#define SLAB_KEEP  16

struct slab_chunk;

/*
 * Where empty chunks wait: every slab has one of its own, and slabs of one thread may share
 * one (slab_init_shared()) so that the chunks one kind of object gives back serve another
 * without a system call: a dying client's holds and allocations empty chunks as fast as the
 * scrubber's queue items need them.
 */
struct slab_depot {
	struct list empty; /* chunks without live objects */
	size_t n_empty;
	size_t keep; /* empty chunks kept at most; the rest go */
	void (*release)(void *data, void *chunk, size_t len);
	void *release_data;
};

struct slab {
	size_t size;         /* of an object, rounded up to 8 bytes */
	uint32_t per_chunk;  /* objects in a chunk */
	struct list partial; /* chunks with live and free objects; full ones are in none */
	size_t n_chunks;     /* chunks with live objects */
	size_t n_live;       /* objects allocated and not freed */
	struct slab_depot own;
	struct slab_depot *depot; /* &own, or a shared one */
};

/*
 * A depot keeping @keep empty chunks at most. slab_depot_finish() unmaps those it holds; on a
 * zeroed struct it does nothing.
 */
void slab_depot_init(struct slab_depot *depot, size_t keep);
void slab_depot_finish(struct slab_depot *depot);

/*
 * Hands the empty chunks the depot does not keep to @release instead of unmapping them: it
 * owns [@chunk, @chunk + @len) from then on, and must munmap() it. NULL: munmap() at once (the
 * default). slab_depot_finish() and slab_finish() always unmap what is left themselves.
 */
void slab_depot_set_release(struct slab_depot *depot,
			    void (*release)(void *data, void *chunk, size_t len), void *data);

/*
 * An empty cache of objects of @size bytes (1 to SLAB_CHUNK / 4) with a depot of its own
 * (SLAB_KEEP), or with @depot (borrowed: it must outlive the slab, and be used on the same
 * thread); it maps nothing yet. slab_finish() unmaps every chunk it holds (its own depot's
 * included): objects still live are lost (the caller frees its own first); on a zeroed struct
 * it does nothing.
 */
void slab_init(struct slab *slab, size_t size);
void slab_init_shared(struct slab *slab, size_t size, struct slab_depot *depot);
void slab_finish(struct slab *slab);

/* slab_depot_set_release() on the slab's own depot. */
void slab_set_release(struct slab *slab, void (*release)(void *data, void *chunk, size_t len),
		      void *data);

/* A zeroed object, or NULL when no chunk could be mapped. */
void *slab_alloc(struct slab *slab);

/* Gives @obj (from slab_alloc() on this slab) back; NULL does nothing. */
void slab_free(struct slab *slab, void *obj);

/* Bytes mapped for the slab: its chunks with live objects, and its own depot's. */
size_t slab_bytes(const struct slab *slab);

#endif
