/* SPDX-License-Identifier: MIT */
/*
 * Slab caches (see slab.h).
 *
 * A chunk is a header and then objects. Objects never handed out are the chunk's tail past
 * `n_carved`: a fresh chunk's pages are not touched before they are needed. A freed object goes
 * on its chunk's free list, linked through its first word. A chunk is on the `partial` list
 * while it has both live and free objects; a full one is on no list; an empty one goes to the
 * slab's depot (reset as fresh, its whole area poisoned: the next slab to take it may cut it
 * into objects of another size) or, past what the depot keeps, back to the system. New chunks
 * come SLAB_BATCH at a time from one mapping into the depot.
 *
 * The sanitizers: a free object is poisoned (AddressSanitizer) or no-access (Valgrind) but for
 * the moments the cache itself reads or writes its link; a live one is a heap block to Valgrind
 * (VALGRIND_MALLOCLIKE_BLOCK), so that one never freed is reported as a leak.
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "common/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SLAB_VALGRIND 1
#endif
#endif

#ifndef SLAB_VALGRIND
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) ((void)(p))
#define VALGRIND_FREELIKE_BLOCK(p, rz)              ((void)(p))
#define VALGRIND_MAKE_MEM_DEFINED(p, n)             ((void)(p))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n)            ((void)(p))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n)           ((void)(p))
#endif

struct slab_chunk {
	struct list link; /* in the slab's partial list, or alone */
	void *free;       /* freed objects */
	uint32_t n_live;
	uint32_t n_carved; /* objects handed out at least once, from the start */
};

#define HEADER ((sizeof(struct slab_chunk) + 15) & ~(size_t)15)
#define AREA   (SLAB_CHUNK - HEADER)

static unsigned char *area(struct slab_chunk *c)
{
	return (unsigned char *)c + HEADER;
}

static unsigned char *object(const struct slab *s, struct slab_chunk *c, uint32_t i)
{
	return area(c) + (size_t)i * s->size;
}

static struct slab_chunk *chunk_of(const void *obj)
{
	return (struct slab_chunk *)((uintptr_t)obj & ~(uintptr_t)(SLAB_CHUNK - 1));
}

/* ---------------------------------------------------------------- depots */

void slab_depot_init(struct slab_depot *d, size_t keep)
{
	*d = (struct slab_depot){ .keep = keep };
	list_init(&d->empty);
}

void slab_depot_set_release(struct slab_depot *d,
			    void (*release)(void *data, void *chunk, size_t len), void *data)
{
	d->release = release;
	d->release_data = data;
}

/* A chunk goes back to the system: unmapped, or handed to the release function if @handed. */
static void chunk_unmap(struct slab_depot *d, struct slab_chunk *c, bool handed)
{
	UNPOISON(area(c), AREA);
	VALGRIND_MAKE_MEM_UNDEFINED(c, SLAB_CHUNK);
	if (handed && d->release)
		d->release(d->release_data, c, SLAB_CHUNK);
	else
		munmap(c, SLAB_CHUNK);
}

void slab_depot_finish(struct slab_depot *d)
{
	struct list *pos, *tmp;

	if (!d->empty.next)
		return;
	list_for_each_safe(pos, tmp, &d->empty)
		chunk_unmap(d, list_entry(pos, struct slab_chunk, link), false);
	slab_depot_init(d, d->keep);
}

/* @c, without live objects, waits in the depot (every object poisoned, none carved). */
static void depot_put(struct slab_depot *d, struct slab_chunk *c)
{
	c->free = NULL;
	c->n_live = 0;
	c->n_carved = 0;
	POISON(area(c), AREA);
	VALGRIND_MAKE_MEM_NOACCESS(area(c), AREA);
	list_insert_before(&d->empty, &c->link);
	d->n_empty++;
}

/*
 * SLAB_BATCH fresh chunks, aligned to their size (one mapping a chunk larger, the slack
 * unmapped), into the depot. Returns 0 or -1.
 */
static int map_batch(struct slab_depot *d)
{
	size_t len = (SLAB_BATCH + 1) * (size_t)SLAB_CHUNK;
	unsigned char *p =
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t at, end;

	if (p == MAP_FAILED)
		return -1;
	at = ((uintptr_t)p + SLAB_CHUNK - 1) & ~(uintptr_t)(SLAB_CHUNK - 1);
	end = at + SLAB_BATCH * (size_t)SLAB_CHUNK;
	if (at > (uintptr_t)p)
		munmap(p, at - (uintptr_t)p);
	if (end < (uintptr_t)p + len)
		munmap((unsigned char *)end, (uintptr_t)p + len - end);
	for (uintptr_t a = at; a < end; a += SLAB_CHUNK)
		depot_put(d, (struct slab_chunk *)a);
	return 0;
}

/* An empty chunk from the depot (mapping more when it has none), or NULL. */
static struct slab_chunk *depot_take(struct slab_depot *d)
{
	struct slab_chunk *c;

	if (list_empty(&d->empty) && map_batch(d) < 0)
		return NULL;
	c = list_entry(d->empty.next, struct slab_chunk, link);
	list_remove(&c->link);
	d->n_empty--;
	return c;
}

/* @c has no live object left: to the depot, or away when the depot has enough. */
static void depot_give(struct slab_depot *d, struct slab_chunk *c)
{
	if (d->n_empty >= d->keep) {
		chunk_unmap(d, c, true);
		return;
	}
	depot_put(d, c);
}

/* ---------------------------------------------------------------- slabs */

void slab_init_shared(struct slab *s, size_t size, struct slab_depot *depot)
{
	assert(size <= SLAB_CHUNK / 4);
	size = size < sizeof(void *) ? sizeof(void *) : size;
	*s = (struct slab){ .size = (size + 7) & ~(size_t)7 };
	s->per_chunk = (uint32_t)(AREA / s->size);
	list_init(&s->partial);
	slab_depot_init(&s->own, SLAB_KEEP);
	s->depot = depot ? depot : &s->own;
}

void slab_init(struct slab *s, size_t size)
{
	slab_init_shared(s, size, NULL);
}

void slab_set_release(struct slab *s, void (*release)(void *data, void *chunk, size_t len),
		      void *data)
{
	slab_depot_set_release(&s->own, release, data);
}

void slab_finish(struct slab *s)
{
	struct list *pos, *tmp;

	if (!s->size)
		return;
	/* Live objects (a leak): their chunks go, and full ones, on no list, are lost. */
	list_for_each_safe(pos, tmp, &s->partial)
		chunk_unmap(s->depot, list_entry(pos, struct slab_chunk, link), false);
	slab_depot_finish(&s->own);
	*s = (struct slab){ 0 };
}

/* The first word of free object @obj: the next free one. */
static void *next_free(void *obj)
{
	void *next;

	UNPOISON(obj, sizeof(void *));
	VALGRIND_MAKE_MEM_DEFINED(obj, sizeof(void *));
	memcpy(&next, obj, sizeof(next));
	return next;
}

void *slab_alloc(struct slab *s)
{
	struct slab_chunk *c;
	unsigned char *obj;

	if (list_empty(&s->partial)) {
		c = depot_take(s->depot);
		if (!c)
			return NULL;
		list_insert_before(&s->partial, &c->link);
		s->n_chunks++;
	}
	c = list_entry(s->partial.next, struct slab_chunk, link);
	if (c->free) {
		obj = c->free;
		c->free = next_free(obj);
	} else {
		obj = object(s, c, c->n_carved++);
	}
	if (++c->n_live == s->per_chunk)
		list_remove(&c->link);
	s->n_live++;
	UNPOISON(obj, s->size);
	VALGRIND_MALLOCLIKE_BLOCK(obj, s->size, 0, 1);
	memset(obj, 0, s->size);
	return obj;
}

void slab_free(struct slab *s, void *obj)
{
	struct slab_chunk *c;

	if (!obj)
		return;
	c = chunk_of(obj);
	if (c->n_live == s->per_chunk) /* was full: has a free object again */
		list_insert_before(s->partial.next, &c->link);
	memcpy(obj, &c->free, sizeof(c->free));
	c->free = obj;
	c->n_live--;
	s->n_live--;
	VALGRIND_FREELIKE_BLOCK(obj, 0);
	POISON(obj, s->size);
	if (c->n_live > 0)
		return;
	list_remove(&c->link);
	s->n_chunks--;
	depot_give(s->depot, c);
}

size_t slab_bytes(const struct slab *s)
{
	return (s->n_chunks + (s->depot == &s->own ? s->own.n_empty : 0)) * SLAB_CHUNK;
}
