/* SPDX-License-Identifier: MIT */
/*
 * The broker on the seed's example pool: ownership (a client frees only what it holds),
 * export/import and the last holder releasing, a removed client's buffers coming back, the
 * scrub calls that keep free memory zero (at free, after a move, for a shrunk tail), and the
 * counters `smhctl stats` and `clients` show.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/broker.h"
#include "tests/test-util.h"

struct scrub_call {
	uint32_t region;
	uint64_t addr, len;
};

struct fixture {
	struct pool *pool;
	struct broker b;
	struct scrub_call calls[64];
	unsigned n_calls;
	struct broker_client *c1, *c2;
};

static void rec_zero(void *data, uint32_t region, uint64_t addr, uint64_t len)
{
	struct fixture *f = data;

	assert_true(f->n_calls < 64);
	f->calls[f->n_calls++] = (struct scrub_call){ region, addr, len };
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->pool = test_example_pool(64);
	broker_init(&f->b, f->pool, &(struct broker_scrub){ .zero = rec_zero, .data = f });
	assert_int_equal(broker_client_add(&f->b, 10, 1000, 1000, "cam", &f->c1), 0);
	assert_int_equal(broker_client_add(&f->b, 11, 1001, 1001, "codec", &f->c2), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	broker_finish(&f->b);
	/* Whatever a test left allocated, finishing the broker gave it back. */
	test_assert_pool_empty(f->pool);
	pool_destroy(f->pool);
	free(f);
	return 0;
}

static uint64_t used(struct fixture *f, size_t region)
{
	return test_pool_used(f->pool, region);
}

static void test_ids_and_counters(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;

	assert_int_equal(f->c1->id, 1);
	assert_int_equal(f->c2->id, 2);
	assert_int_equal(f->b.n_clients, 2);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 100, 0, &a), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &b), 0);
	assert_int_equal(a->handle, 1);
	assert_int_equal(b->handle, 2);
	assert_int_equal(broker_alloc_owner(a), f->c1->id);
	assert_int_equal(a->blk.size, 128);
	assert_int_equal(f->c1->n_buffers, 2);
	assert_int_equal(f->c1->bytes, 128 + 4096);
	assert_int_equal(broker_n_allocs(&f->b), 2);
	assert_int_equal(f->n_calls, 0); /* allocating never zeroes: free memory is clean */
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(f->c1->n_buffers, 1);
	assert_int_equal(f->c1->bytes, 4096);
}

static void test_foreign_and_double_free(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;
	uint64_t h;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 4096, 0, &a), 0);
	h = a->handle;
	assert_int_equal(broker_free(&f->b, f->c2, h), -EINVAL);
	assert_int_equal(broker_free(&f->b, f->c1, h + 100), -EINVAL);
	assert_int_equal(used(f, 0), 4096);
	assert_int_equal(broker_free(&f->b, f->c1, h), 0);
	assert_int_equal(broker_free(&f->b, f->c1, h), -EINVAL);
	assert_int_equal(used(f, 0), 0);
	/* The free scrubbed exactly the block. */
	assert_int_equal(f->n_calls, 1);
	assert_int_equal(f->calls[0].region, 0);
	assert_int_equal(f->calls[0].addr, 0x42000000);
	assert_int_equal(f->calls[0].len, 4096);
}

static void test_export_import_last_holder(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;
	uint64_t t1, t2;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 256, 0, &a), 0);
	assert_false(broker_alloc_shared(a));
	assert_int_equal(broker_export(&f->b, f->c2, a->handle, &t1), -EINVAL);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t1), 0);
	assert_int_not_equal(t1, 0);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t2), 0);
	assert_int_equal(t1, t2);
	assert_int_equal(f->b.n_shared, 1);
	/* Exported but held by its owner alone: it may still move (an importer gets its place). */
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 512, &b), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t1 ^ 1, &b), -ENOENT);
	assert_int_equal(broker_import(&f->b, f->c2, 0, &b), -ENOENT);
	assert_int_equal(broker_import(&f->b, f->c2, t1, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(broker_alloc_n_holders(a), 2);
	assert_int_equal(f->c2->bytes, 512);
	/* A shared buffer cannot move under its other holder. */
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 8192, &b), -EBUSY);
	/* The owner lets go: the importer still holds it, nothing is scrubbed. */
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(used(f, 1), 512);
	assert_int_equal(f->n_calls, 0);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), -EINVAL);
	/* The last holder goes: released and scrubbed, the token is dead. */
	assert_int_equal(broker_free(&f->b, f->c2, a->handle), 0);
	assert_int_equal(used(f, 1), 0);
	assert_int_equal(f->n_calls, 1);
	assert_int_equal(f->b.n_shared, 0);
	assert_int_equal(broker_import(&f->b, f->c2, t1, &b), -ENOENT);
}

/* The holders of @a by id, in order, into @ids; returns how many. */
static size_t holder_ids(const struct broker_alloc *a, uint64_t *ids, size_t max)
{
	size_t n = 0;

	for (const struct broker_hold *h = broker_first_hold(a); h; h = h->next) {
		assert_true(n < max);
		assert_ptr_equal(broker_hold_alloc(h), a);
		ids[n++] = h->client->id;
	}
	return n;
}

/*
 * The allocation keeps its owner's hold inside and chains the others: holders come and go in
 * any order (the one inside let go and taken again by a later importer, one in the middle of
 * the chain dropped), each is found by its client, counts and bytes stay right, and the buffer
 * goes with its last holder, whichever that is.
 */
static void test_holds_chain(void **state)
{
	struct fixture *f = *state;
	struct broker_client *c3, *c4;
	struct broker_alloc *a, *b;
	uint64_t t, ids[8];

	assert_int_equal(broker_client_add(&f->b, 12, 1002, 1002, "gpu", &c3), 0);
	assert_int_equal(broker_client_add(&f->b, 13, 1003, 1003, "disp", &c4), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_ptr_equal(broker_first_hold(a), &a->own);
	assert_null(a->own.next);
	assert_null(a->extra); /* nothing but the record for a plain buffer */
	assert_int_equal(broker_alloc_owner(a), f->c1->id);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t), 0);
	assert_non_null(a->extra);
	assert_int_equal(broker_alloc_token(a), t);
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), 0);
	assert_int_equal(broker_import(&f->b, c3, t, &b), 0);
	assert_int_equal(holder_ids(a, ids, 8), 3);
	assert_int_equal(ids[0], f->c1->id);
	assert_int_equal(ids[1], f->c2->id);
	assert_int_equal(ids[2], c3->id);
	/* The owner lets go: its place inside is free, the chain stays. */
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_null(a->own.client);
	assert_null(broker_find_hold(&f->b, f->c1, a->handle));
	assert_int_equal(broker_alloc_owner(a), f->c1->id); /* still the one who allocated it */
	assert_int_equal(holder_ids(a, ids, 8), 2);
	assert_int_equal(ids[0], f->c2->id);
	assert_int_equal(ids[1], c3->id);
	/* A new holder takes the place inside. */
	assert_int_equal(broker_import(&f->b, c4, t, &b), 0);
	assert_ptr_equal(a->own.client, c4);
	assert_ptr_equal(broker_find_hold(&f->b, c4, a->handle), &a->own);
	assert_int_equal(broker_alloc_owner(a), f->c1->id);
	assert_int_equal(holder_ids(a, ids, 8), 3);
	assert_int_equal(ids[0], c4->id);
	/* One from the middle of the chain goes. */
	assert_int_equal(broker_import(&f->b, f->c1, t, &b), 0);
	assert_int_equal(holder_ids(a, ids, 8), 4);
	assert_int_equal(broker_free(&f->b, c3, a->handle), 0);
	assert_int_equal(holder_ids(a, ids, 8), 3);
	assert_int_equal(ids[0], c4->id);
	assert_int_equal(ids[1], f->c2->id);
	assert_int_equal(ids[2], f->c1->id);
	assert_int_equal(broker_alloc_n_holders(a), 3);
	assert_int_equal(c3->n_buffers, 0);
	assert_int_equal(f->c1->bytes, 64);
	/* Dropped in turn: the buffer stays until the last, then goes. */
	broker_client_remove(&f->b, f->c2);
	f->c2 = NULL;
	assert_int_equal(broker_free(&f->b, c4, a->handle), 0);
	assert_int_equal(holder_ids(a, ids, 8), 1);
	assert_int_equal(used(f, 0), 64);
	assert_int_equal(f->n_calls, 0);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(used(f, 0), 0);
	assert_int_equal(f->n_calls, 1);
	assert_int_equal(broker_n_allocs(&f->b), 0);
	assert_int_equal(f->b.n_shared, 0);
}

static void test_import_twice_counts(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;
	uint64_t t;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), 0);
	assert_int_equal(broker_alloc_n_holders(a), 2);
	assert_int_equal(f->c2->n_buffers, 2);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(broker_free(&f->b, f->c2, a->handle), 0);
	assert_int_equal(used(f, 0), 64);
	assert_int_equal(broker_free(&f->b, f->c2, a->handle), 0);
	assert_int_equal(used(f, 0), 0);
	assert_int_equal(f->c2->n_buffers, 0);
}

/* A hold stops at what a restarted daemon restores: one more import is refused, nothing moves. */
static void test_import_count_bounded(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;
	struct broker_hold *h;
	uint64_t t;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &t), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), 0);
	h = list_entry(f->c2->holds.next, struct broker_hold, client_link);
	assert_ptr_equal(broker_hold_alloc(h), a);
	h->count = BROKER_HOLD_COUNT_MAX - 1; /* as after that many imports */
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), 0);
	assert_int_equal(h->count, BROKER_HOLD_COUNT_MAX);
	assert_int_equal(f->c2->n_buffers, 2);
	assert_int_equal(broker_import(&f->b, f->c2, t, &b), -EMLINK);
	assert_int_equal(h->count, BROKER_HOLD_COUNT_MAX);
	assert_int_equal(f->c2->n_buffers, 2);
	assert_int_equal(broker_alloc_n_holders(a), 2);
	h->count = 2; /* what n_buffers counted, so that the teardown's release balances */
}

static void test_removed_client_releases(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b, *shared;
	uint64_t t;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 4096, 0, &a), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &b), 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &shared), 0);
	assert_int_equal(broker_export(&f->b, f->c1, shared->handle, &t), 0);
	assert_int_equal(broker_import(&f->b, f->c2, t, &a), 0);
	broker_client_remove(&f->b, f->c1);
	f->c1 = NULL;
	assert_int_equal(f->b.n_clients, 1);
	assert_int_equal(used(f, 1), 0);
	assert_int_equal(used(f, 0) + used(f, 2), 64); /* the shared one lives on in c2 */
	assert_int_equal(broker_n_allocs(&f->b), 1);
	assert_int_equal(f->n_calls, 2);
}

static void test_realloc_scrubs_what_it_gives_back(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *blocker;
	uint64_t addr;

	/* Shrinking in place gives the tail back: it must be scrubbed. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &a), 0);
	addr = a->blk.addr;
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 1000, &a), 0);
	assert_int_equal(a->blk.addr, addr);
	assert_int_equal(a->blk.size, 1024);
	assert_int_equal(f->n_calls, 1);
	assert_int_equal(f->calls[0].addr, addr + 1024);
	assert_int_equal(f->calls[0].len, 3072);
	assert_int_equal(f->c1->bytes, 1024);
	/* A move scrubs the whole old block. */
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 1024, 0, &blocker),
			 0);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 4096, &a), 0);
	assert_int_not_equal(a->blk.addr, addr);
	assert_int_equal(f->n_calls, 2);
	assert_int_equal(f->calls[1].addr, addr);
	assert_int_equal(f->calls[1].len, 1024);
	/* Refusals leave it alone. */
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 1 << 20, &blocker), -ENOMEM);
	assert_int_equal(broker_realloc(&f->b, f->c2, a->handle, 64, &blocker), -EINVAL);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 0, &blocker), -EINVAL);
	assert_int_equal(a->blk.size, 4096);
	assert_int_equal(f->n_calls, 2);
}

/* A buffer allocated aligned stays aligned when realloc moves it. */
static void test_realloc_keeps_alignment(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *neighbour;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 4096, &a), 0);
	assert_int_equal(a->blk.addr % 4096, 0);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 0, &neighbour),
			 0);
	assert_int_equal(neighbour->blk.addr, a->blk.addr + 64);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 128, &a), 0);
	assert_int_equal(a->blk.addr % 4096, 0);
	assert_int_not_equal(a->blk.addr, neighbour->blk.addr - 64);
}

/* A buffer costs its alignment when that is larger than its size (broker_alloc_cost()). */
static void test_alignment_cost(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a, *b;
	uint64_t token;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 64, 4096, &a), 0);
	assert_int_equal(a->blk.size, 64);
	assert_int_equal(broker_alloc_cost(a), 4096);
	assert_int_equal(f->c1->bytes, 4096);
	/* Grown past its alignment, it costs its size. */
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 8192, &a), 0);
	assert_int_equal(f->c1->bytes, 8192);
	assert_int_equal(broker_realloc(&f->b, f->c1, a->handle, 128, &a), 0);
	assert_int_equal(f->c1->bytes, 4096);
	/* The importer pays the same. */
	assert_int_equal(broker_export(&f->b, f->c1, a->handle, &token), 0);
	assert_int_equal(broker_import(&f->b, f->c2, token, &b), 0);
	assert_int_equal(f->c2->bytes, 4096);
	assert_int_equal(broker_free(&f->b, f->c2, a->handle), 0);
	assert_int_equal(f->c2->bytes, 0);
	assert_int_equal(broker_free(&f->b, f->c1, a->handle), 0);
	assert_int_equal(f->c1->bytes, 0);
	assert_int_equal(broker_cost(64, 0), 64);
}

static void test_alloc_errors(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a;

	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 0, 0, &a), -EINVAL);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 3, &a), -EINVAL);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NUM, 64, 0, &a), -EINVAL);
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_NON_CACHEABLE, 16384, 0, &a),
			 -ENOMEM);
	assert_int_equal(broker_n_allocs(&f->b), 0);
	assert_int_equal(f->c1->n_buffers, 0);
}

/* The listing's cursor: the next page starts after the last handle, live or freed since. */
static void test_alloc_after(void **state)
{
	struct fixture *f = *state;
	struct broker_alloc *a[8], *a9;

	for (int i = 0; i < 8; i++) {
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a[i]),
				 0);
		assert_int_equal(a[i]->handle, i + 1);
	}
	assert_ptr_equal(broker_alloc_after(&f->b, 0), a[0]);
	assert_ptr_equal(broker_alloc_after(&f->b, 2), a[2]);
	assert_ptr_equal(broker_alloc_next(&f->b, a[2]), a[3]);
	assert_int_equal(broker_free(&f->b, f->c1, 3), 0);
	assert_int_equal(broker_free(&f->b, f->c1, 4), 0);
	assert_ptr_equal(broker_alloc_after(&f->b, 2), a[4]);
	assert_ptr_equal(broker_alloc_after(&f->b, 3), a[4]); /* freed: its successor */
	assert_ptr_equal(broker_alloc_after(&f->b, 4), a[4]);
	assert_ptr_equal(broker_alloc_next(&f->b, a[1]), a[4]);
	assert_int_equal(broker_free(&f->b, f->c1, 8), 0);
	assert_ptr_equal(broker_alloc_next(&f->b, a[6]), NULL);
	assert_null(broker_alloc_after(&f->b, 7));
	assert_null(broker_alloc_after(&f->b, 8));
	assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a9), 0);
	assert_int_equal(a9->handle, 9);
	assert_ptr_equal(broker_alloc_after(&f->b, 7), a9);
	assert_ptr_equal(broker_alloc_after(&f->b, 8), a9);
	assert_ptr_equal(broker_alloc_next(&f->b, a[6]), a9);
	assert_null(broker_alloc_after(&f->b, 9));
	assert_null(broker_alloc_after(&f->b, UINT64_MAX));
}

/*
 * `smhctl allocs` while others allocate and free between its pages, the page's last allocation
 * often among the freed: every allocation live throughout is listed exactly once, in order.
 */
static void test_listing_pages_while_changing(void **state)
{
	enum { START = 120, MAX = 1000, PAGE = 7 };
	struct fixture *f = *state;
	static bool live[MAX], listed[MAX], throughout[MAX];
	uint64_t after = 0, next;
	struct broker_alloc *a;
	size_t n_pages = 0;

	f->b.scrub.zero = NULL; /* more frees than the fixture records; not this test's subject */
	srand(99);
	for (int i = 0; i < START; i++) {
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
		live[a->handle] = throughout[a->handle] = true;
	}
	for (;;) {
		size_t n = 0;

		for (a = broker_alloc_after(&f->b, after); a && n < PAGE;
		     a = broker_alloc_next(&f->b, a), n++) {
			assert_true(a->handle > after);
			assert_true(live[a->handle]);
			assert_false(listed[a->handle]);
			listed[a->handle] = true;
			after = a->handle;
		}
		n_pages++;
		if (!a)
			break;
		/* Between pages: every other time the cursor's allocation and the two handles
		 * after it go, a random one goes, and a new one comes. */
		for (int k = 0; k < 4; k++) {
			uint64_t h = k < 3 ? (n_pages % 2 ? after + (uint64_t)k : 0)
					   : 1 + (uint64_t)rand() % (MAX - 1);

			if (h < MAX && live[h]) {
				assert_int_equal(broker_free(&f->b, f->c1, h), 0);
				live[h] = throughout[h] = false;
			}
		}
		assert_int_equal(broker_alloc(&f->b, f->c1, SMH_REG_ATTR_CACHEABLE, 64, 0, &a), 0);
		assert_true(a->handle < MAX);
		live[a->handle] = true;
	}
	assert_true(n_pages > START / PAGE / 2);
	for (next = 1; next < MAX; next++)
		if (throughout[next])
			assert_true(listed[next]);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_ids_and_counters),
		T(test_foreign_and_double_free),
		T(test_export_import_last_holder),
		T(test_holds_chain),
		T(test_import_twice_counts),
		T(test_import_count_bounded),
		T(test_removed_client_releases),
		T(test_realloc_scrubs_what_it_gives_back),
		T(test_realloc_keeps_alignment),
		T(test_alloc_errors),
		T(test_alignment_cost),
		T(test_alloc_errors),
		T(test_alloc_after),
		T(test_listing_pages_while_changing),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
