/* SPDX-License-Identifier: MIT */
/*
 * Slab caches (common/slab.h): zeroed, distinct objects that keep what is written in them;
 * chunks mapped as objects are needed (SLAB_BATCH at a time) and unmapped as they empty
 * (SLAB_KEEP empty ones kept), so that freeing a million objects in the order they were made
 * gives the memory back as it goes;
 * random allocs and frees against a shadow copy of every live object's contents; empty chunks
 * handed to a release function when one is set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "common/slab.h"

struct obj {
	uint64_t id;
	unsigned char fill[40];
};

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static void test_objects(void **state)
{
	struct slab s;
	struct obj *a, *b;

	(void)state;
	slab_init(&s, sizeof(struct obj));
	assert_int_equal(s.size, 48);
	assert_int_equal(slab_bytes(&s), 0); /* nothing mapped before the first object */
	a = slab_alloc(&s);
	b = slab_alloc(&s);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal((uintptr_t)a % 8, 0);
	assert_true(is_zero(a, sizeof(*a)) && is_zero(b, sizeof(*b)));
	memset(a, 0xa5, sizeof(*a));
	memset(b, 0x5a, sizeof(*b));
	assert_int_equal(a->fill[39], 0xa5);
	assert_int_equal(b->id, UINT64_C(0x5a5a5a5a5a5a5a5a));
	assert_int_equal(s.n_live, 2);
	assert_int_equal(slab_bytes(&s), SLAB_BATCH * SLAB_CHUNK);

	/* A freed object is the next one handed out, zeroed again. */
	slab_free(&s, a);
	assert_ptr_equal(slab_alloc(&s), a);
	assert_true(is_zero(a, sizeof(*a)));
	assert_int_equal(b->fill[0], 0x5a);
	slab_free(&s, a);
	slab_free(&s, b);
	slab_free(&s, NULL);
	assert_int_equal(s.n_live, 0);
	/* The chunks stay, empty, for the next objects. */
	assert_int_equal(slab_bytes(&s), SLAB_BATCH * SLAB_CHUNK);
	assert_int_equal(s.own.n_empty, SLAB_BATCH);
	assert_int_equal(s.n_chunks, 0);
	slab_finish(&s);
	assert_int_equal(slab_bytes(&s), 0);
	slab_finish(&s); /* twice: a no-op */
}

/* Tiny objects are rounded up to hold the free list's link. */
static void test_tiny(void **state)
{
	struct slab s;
	char *p[3];

	(void)state;
	slab_init(&s, 1);
	assert_int_equal(s.size, 8); /* the rounding, and room for the free list's link */
	for (int i = 0; i < 3; i++) {
		p[i] = slab_alloc(&s);
		assert_non_null(p[i]);
		*p[i] = (char)i;
	}
	for (int i = 0; i < 3; i++)
		slab_free(&s, p[i]);
	slab_finish(&s);
}

/*
 * A million objects made and freed in the same order (a client's buffers, released after it
 * died): chunks are mapped as needed and go back as they empty, so that half freed is about
 * half the memory, and all freed is the one chunk kept.
 */
static void test_fifo_gives_memory_back(void **state)
{
	enum { N = 1000000 };
	struct obj **p = calloc(N, sizeof(*p));
	size_t full, chunks;
	struct slab s;

	(void)state;
	assert_non_null(p);
	slab_init(&s, sizeof(struct obj));
	for (size_t i = 0; i < N; i++) {
		p[i] = slab_alloc(&s);
		assert_non_null(p[i]);
		p[i]->id = i;
	}
	chunks = (N + s.per_chunk - 1) / s.per_chunk;
	assert_int_equal(s.n_chunks, chunks);
	full = slab_bytes(&s);
	assert_int_equal(full, (chunks + SLAB_BATCH - 1) / SLAB_BATCH * SLAB_BATCH * SLAB_CHUNK);
	for (size_t i = 0; i < N / 2; i++) {
		assert_int_equal(p[i]->id, i);
		slab_free(&s, p[i]);
	}
	/* The chunks of the first half, but those kept empty and the one shared, are gone. */
	assert_true(slab_bytes(&s) <= full / 2 + (SLAB_KEEP + SLAB_BATCH + 1) * SLAB_CHUNK);
	assert_true(slab_bytes(&s) >= full / 2 - SLAB_BATCH * SLAB_CHUNK);
	for (size_t i = N / 2; i < N; i++) {
		assert_int_equal(p[i]->id, i);
		slab_free(&s, p[i]);
	}
	assert_int_equal(s.n_live, 0);
	assert_int_equal(slab_bytes(&s), SLAB_KEEP * SLAB_CHUNK);
	slab_finish(&s);
	free(p);
}

/* Random allocs and frees: every live object keeps its own bytes, none is handed out twice. */
static void test_random_against_shadow(void **state)
{
	enum { SLOTS = 20000, OPS = 400000 };
	struct obj **live = calloc(SLOTS, sizeof(*live));
	size_t n_live = 0, peak = 0;
	struct slab s;

	(void)state;
	assert_non_null(live);
	srand(7);
	slab_init(&s, sizeof(struct obj));
	for (size_t op = 0; op < OPS; op++) {
		size_t i = (size_t)rand() % SLOTS;

		if (live[i]) {
			assert_int_equal(live[i]->id, i);
			for (size_t k = 0; k < sizeof(live[i]->fill); k++)
				assert_int_equal(live[i]->fill[k], (unsigned char)i);
			slab_free(&s, live[i]);
			live[i] = NULL;
			n_live--;
			continue;
		}
		live[i] = slab_alloc(&s);
		assert_non_null(live[i]);
		assert_true(is_zero(live[i], sizeof(*live[i])));
		live[i]->id = i;
		memset(live[i]->fill, (unsigned char)i, sizeof(live[i]->fill));
		n_live++;
		peak = n_live > peak ? n_live : peak;
	}
	assert_int_equal(s.n_live, n_live);
	/* A chunk is taken only when every other one is full: never more than the peak needed. */
	assert_true(s.n_chunks <= peak / s.per_chunk + 1);
	assert_true(s.own.n_empty <= SLAB_KEEP);
	for (size_t i = 0; i < SLOTS; i++)
		slab_free(&s, live[i]);
	assert_int_equal(s.n_live, 0);
	assert_int_equal(s.n_chunks, 0);
	assert_true(slab_bytes(&s) <= SLAB_KEEP * SLAB_CHUNK);
	slab_finish(&s);
	free(live);
}

struct released {
	void *chunk[64];
	size_t n;
};

static void on_release(void *data, void *chunk, size_t len)
{
	struct released *r = data;

	assert_int_equal(len, SLAB_CHUNK);
	assert_int_equal((uintptr_t)chunk % SLAB_CHUNK, 0);
	assert_true(r->n < 64);
	r->chunk[r->n++] = chunk;
}

/* With a release function, empty chunks beyond those kept go to it, not to munmap(). */
static void test_release_function(void **state)
{
	struct released r = { 0 };
	size_t n, mapped;
	void **p;
	struct slab s;

	(void)state;
	slab_init(&s, 48);
	slab_set_release(&s, on_release, &r);
	n = (SLAB_KEEP + 3) * (size_t)s.per_chunk;
	p = calloc(n, sizeof(*p));
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		assert_non_null(p[i] = slab_alloc(&s));
	mapped = slab_bytes(&s) / SLAB_CHUNK;
	assert_int_equal(mapped, 2 * SLAB_BATCH);
	for (size_t i = 0; i < n; i++)
		slab_free(&s, p[i]);
	/* SLAB_KEEP stay, empty; the rest were handed over, still mapped. */
	assert_int_equal(r.n, mapped - SLAB_KEEP);
	assert_int_equal(slab_bytes(&s), SLAB_KEEP * SLAB_CHUNK);
	for (size_t i = 0; i < r.n; i++) {
		memset(r.chunk[i], 0x11, SLAB_CHUNK);
		assert_int_equal(munmap(r.chunk[i], SLAB_CHUNK), 0);
	}
	slab_finish(&s);
	free(p);
}

/*
 * Slabs sharing a depot: the chunks one gives back serve the other, of another object size,
 * without a new mapping; past what the depot keeps, chunks go to its release function.
 */
static void test_shared_depot(void **state)
{
	struct released r = { 0 };
	struct slab_depot d;
	struct slab a, b;
	void **p;
	size_t n;
	unsigned char *obj;
	bool reused = false;

	(void)state;
	slab_depot_init(&d, SLAB_BATCH + 4);
	slab_depot_set_release(&d, on_release, &r);
	slab_init_shared(&a, 48, &d);
	slab_init_shared(&b, 200, &d);
	n = 2 * SLAB_BATCH * (size_t)a.per_chunk;
	p = calloc(n, sizeof(*p));
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(p[i] = slab_alloc(&a));
		memset(p[i], 0xa5, 48);
	}
	assert_int_equal(d.n_empty, 0); /* two batches, all in use */
	for (size_t i = 0; i < n; i++)
		slab_free(&a, p[i]);
	assert_int_equal(d.n_empty, SLAB_BATCH + 4);
	assert_int_equal(r.n, SLAB_BATCH - 4);
	/* b's first object lies in one of a's old chunks, zeroed whatever a wrote there. */
	obj = slab_alloc(&b);
	assert_non_null(obj);
	assert_true(is_zero(obj, 200));
	for (size_t i = 0; i < n && !reused; i++)
		reused = ((uintptr_t)p[i] & ~(uintptr_t)(SLAB_CHUNK - 1)) ==
			 ((uintptr_t)obj & ~(uintptr_t)(SLAB_CHUNK - 1));
	assert_true(reused);
	assert_int_equal(d.n_empty, SLAB_BATCH + 3);
	slab_free(&b, obj);
	slab_finish(&a);
	slab_finish(&b);
	slab_depot_finish(&d);
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(munmap(r.chunk[i], SLAB_CHUNK), 0);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_tiny),
		cmocka_unit_test(test_fifo_gives_memory_back),
		cmocka_unit_test(test_random_against_shadow),
		cmocka_unit_test(test_release_function),
		cmocka_unit_test(test_shared_depot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
