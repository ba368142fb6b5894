/* SPDX-License-Identifier: MIT */
/*
 * The hash map against a shadow array: random puts, gets and removes (removal shifts entries
 * back, the part most easily got wrong), sequential keys, key 0 refused; growth moving the
 * entries over a bounded number at a time, with puts, removes and lookups reaching entries in
 * either table meanwhile; shrinking the same way as removals empty it, giving memory back; the
 * populate function told of each new large table before it is written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "common/hmap.h"

static void test_basic(void **state)
{
	struct hmap m;
	int a, b;

	hmap_init(&m);
	assert_null(hmap_get(&m, 1));
	assert_null(hmap_remove(&m, 1));
	assert_int_equal(hmap_put(&m, 0, &a), -EINVAL);
	assert_int_equal(hmap_put(&m, 7, &a), 0);
	assert_ptr_equal(hmap_get(&m, 7), &a);
	assert_int_equal(hmap_put(&m, 7, &b), 0);
	assert_ptr_equal(hmap_get(&m, 7), &b);
	assert_int_equal(m.n, 1);
	assert_ptr_equal(hmap_remove(&m, 7), &b);
	assert_null(hmap_get(&m, 7));
	assert_int_equal(m.n, 0);
	hmap_finish(&m);
	hmap_finish(&m); /* twice: a no-op */
}

/* Keys from a small range so that probe runs collide and removals shift often. */
static void test_random_against_shadow(void **state)
{
	enum { KEYS = 3000, OPS = 200000 };
	static char values[KEYS];
	static int present[KEYS];
	struct hmap m;
	size_t n = 0;
	int migrating = 0;

	srand(1234);
	hmap_init(&m);
	for (int op = 0; op < OPS; op++) {
		uint64_t k = 1 + (uint64_t)(rand() % (KEYS - 1));

		switch (rand() % 3) {
		case 0:
			assert_int_equal(hmap_put(&m, k, &values[k]), 0);
			n += !present[k];
			present[k] = 1;
			break;
		case 1:
			assert_ptr_equal(hmap_remove(&m, k), present[k] ? &values[k] : NULL);
			n -= present[k];
			present[k] = 0;
			break;
		default:
			assert_ptr_equal(hmap_get(&m, k), present[k] ? &values[k] : NULL);
		}
		assert_int_equal(m.n, n);
		migrating += m.old != NULL;
	}
	assert_true(migrating > 0); /* the shadow checked the map while it grew */
	for (uint64_t k = 1; k < KEYS; k++)
		assert_ptr_equal(hmap_get(&m, k), present[k] ? &values[k] : NULL);
	hmap_finish(&m);
}

static void test_sequential_and_large_keys(void **state)
{
	struct hmap m;
	int v;

	hmap_init(&m);
	for (uint64_t k = 1; k <= 100000; k++)
		assert_int_equal(hmap_put(&m, k, &v), 0);
	assert_int_equal(hmap_put(&m, UINT64_MAX, &v), 0);
	for (uint64_t k = 1; k <= 100000; k += 2)
		assert_ptr_equal(hmap_remove(&m, k), &v);
	for (uint64_t k = 1; k <= 100000; k++)
		assert_ptr_equal(hmap_get(&m, k), k % 2 ? NULL : &v);
	assert_ptr_equal(hmap_get(&m, UINT64_MAX), &v);
	assert_int_equal(m.n, 50001);
	hmap_finish(&m);
}

/* A key still in the old table while the map grows, or 0. */
static uint64_t key_in_old(const struct hmap *m, size_t skip)
{
	for (size_t i = 0; m->old && i <= m->old_mask; i++)
		if (m->old[i].key && skip-- == 0)
			return m->old[i].key;
	return 0;
}

/*
 * Puts until the table grows, then checks each later put moves at most HMAP_MIGRATE_STEPS
 * entries over, and that a replaced, a removed and every other key behave meanwhile.
 */
static void test_incremental_growth(void **state)
{
	enum { N = 5000 };
	static char values[N + 1], other;
	struct hmap m;
	uint64_t k = 0, replaced, removed;
	size_t old_cap, puts = 0;

	hmap_init(&m);
	while (m.n < 1000 || !m.old) {
		k++;
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	}
	/* The put that grew moved nothing: everything else waits in the old table. */
	assert_int_equal(m.old_n, m.n - 1);
	assert_int_equal(m.cursor, 0);
	old_cap = m.old_mask + 1;

	replaced = key_in_old(&m, 0);
	removed = key_in_old(&m, 1);
	assert_int_not_equal(replaced, 0);
	assert_int_not_equal(removed, 0);
	assert_int_equal(hmap_put(&m, replaced, &other), 0);
	assert_int_equal(m.n, k); /* replaced in place, not added again */
	assert_ptr_equal(hmap_remove(&m, removed), &values[removed]);
	assert_int_equal(m.n, k - 1);
	/* A replacement moves nothing, a removal at most its steps and the entry removed. */
	assert_non_null(m.old);
	assert_true(m.old_n + HMAP_MIGRATE_STEPS + 1 >= k - 1);
	for (uint64_t j = 1; j <= k; j++)
		assert_ptr_equal(hmap_get(&m, j), j == replaced  ? (void *)&other
						  : j == removed ? NULL
								 : &values[j]);

	while (m.old) {
		size_t before = m.old_n;

		assert_true(k < N);
		k++;
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
		puts++;
		assert_true(before - (m.old ? m.old_n : 0) <= HMAP_MIGRATE_STEPS);
	}
	/* Emptying takes at most one step per slot and per entry. */
	assert_true(puts <= (old_cap + old_cap * 3 / 4) / HMAP_MIGRATE_STEPS + 1);
	assert_int_equal(m.n, k - 1);
	for (uint64_t j = 1; j <= k; j++)
		assert_ptr_equal(hmap_get(&m, j), j == replaced  ? (void *)&other
						  : j == removed ? NULL
								 : &values[j]);
	hmap_finish(&m);
}

/*
 * Removals alone empty the old table too, and a map emptied while growing grows again: with a
 * small old table, and with one of more than a chunk that is not mapped.
 */
static void test_growth_then_removals(void **state)
{
	static char values[9000];
	static const uint64_t sizes[] = { 500, 7000 };

	for (size_t s = 0; s < 2; s++) {
		struct hmap m;
		uint64_t k = 0;

		hmap_init(&m);
		while (m.n < sizes[s] || !m.old) {
			k++;
			assert_int_equal(hmap_put(&m, k, &values[k]), 0);
		}
		for (uint64_t j = 1; j <= k; j++) {
			assert_ptr_equal(hmap_remove(&m, j), &values[j]);
			for (uint64_t i = j + 1; i <= k; i += 97)
				assert_ptr_equal(hmap_get(&m, i), &values[i]);
		}
		assert_int_equal(m.n, 0);
		assert_null(m.old);
		for (uint64_t j = 1; j < 9000; j++)
			assert_int_equal(hmap_put(&m, j, &values[j]), 0);
		for (uint64_t j = 1; j < 9000; j++)
			assert_ptr_equal(hmap_get(&m, j), &values[j]);
		hmap_finish(&m);
	}
}

/*
 * A large old table is given back a chunk at a time below the cursor while it empties; what
 * is given back reads as empty slots, so lookups probing into it still end right.
 */
static void test_large_table_given_back(void **state)
{
	static char values[200001];
	struct hmap m;
	uint64_t k = 0;
	size_t last_released = 0, n_released = 0;

	hmap_init(&m);
	while ((m.mask + 1) * sizeof(struct hmap_slot) < (2u << 20) || !m.old) {
		k++;
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	}
	while (m.old) {
		assert_true(m.released <= m.cursor);
		if (m.released != last_released)
			n_released++;
		last_released = m.released;
		if (k % 4096 == 0)
			for (uint64_t j = 1; j <= k; j += 7)
				assert_ptr_equal(hmap_get(&m, j), &values[j]);
		assert_true(k < 200000);
		k++;
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	}
	/* 1 MiB given back 64 KiB at a time, the last chunk as the table goes. */
	assert_true(n_released >= 15);
	for (uint64_t j = 1; j <= k; j++)
		assert_ptr_equal(hmap_get(&m, j), &values[j]);
	for (uint64_t j = 1; j <= k; j += 2)
		assert_ptr_equal(hmap_remove(&m, j), &values[j]);
	for (uint64_t j = 1; j <= k; j++)
		assert_ptr_equal(hmap_get(&m, j), j % 2 ? NULL : &values[j]);
	hmap_finish(&m);
}

/*
 * Phases of mostly puts and mostly removes against the shadow, so that the map grows and
 * shrinks again and again, with operations of every kind while either move is under way.
 */
static void test_grow_and_shrink_against_shadow(void **state)
{
	enum { KEYS = 4000, OPS = 400000, PHASE = 20000 };
	static char values[KEYS];
	static int present[KEYS];
	struct hmap m;
	size_t n = 0, shrinks = 0, grows = 0;

	srand(4321);
	hmap_init(&m);
	for (int op = 0; op < OPS; op++) {
		uint64_t k = 1 + (uint64_t)(rand() % (KEYS - 1));
		int r = rand() % 10, filling = (op / PHASE) % 2 == 0;
		size_t mask = m.mask;

		if (r < (filling ? 7 : 1)) {
			assert_int_equal(hmap_put(&m, k, &values[k]), 0);
			n += !present[k];
			present[k] = 1;
		} else if (r < 9) {
			assert_ptr_equal(hmap_remove(&m, k), present[k] ? &values[k] : NULL);
			n -= present[k];
			present[k] = 0;
		} else {
			assert_ptr_equal(hmap_get(&m, k), present[k] ? &values[k] : NULL);
		}
		assert_int_equal(m.n, n);
		shrinks += m.mask < mask;
		grows += m.mask > mask;
	}
	assert_true(shrinks >= 10);
	assert_true(grows >= 10);
	for (uint64_t k = 1; k < KEYS; k++)
		assert_ptr_equal(hmap_get(&m, k), present[k] ? &values[k] : NULL);
	hmap_finish(&m);
}

/* What an unmap function was handed: made inaccessible, so that a read of it faults. */
struct handed {
	struct {
		void *addr;
		size_t len;
	} r[4096];
	size_t n, bytes;
};

static void quarantine(void *data, void *addr, size_t len)
{
	struct handed *h = data;

	assert_true(h->n < sizeof(h->r) / sizeof(h->r[0]));
	assert_int_equal(mprotect(addr, len, PROT_NONE), 0);
	h->r[h->n].addr = addr;
	h->r[h->n++].len = len;
	h->bytes += len;
}

/*
 * Removing what a large map held gives its tables back as it goes, in steps as small as
 * growth's, through its unmap function (never reading what it gave): the map ends far below
 * its peak, and a few more operations take it down to the smallest table.
 */
static void test_shrinks_as_it_empties(void **state)
{
	enum { N = 300000 };
	static uint64_t order[N];
	static char values[N + 1];
	static struct handed h;
	struct hmap m;
	size_t peak, shrinks = 0, given;

	hmap_init(&m);
	hmap_set_unmap(&m, quarantine, &h);
	for (uint64_t k = 1; k <= N; k++)
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	peak = hmap_bytes(&m);
	given = h.bytes; /* the tables growth left behind */
	assert_true(peak >= (size_t)N * sizeof(struct hmap_slot));
	for (size_t i = 0; i < N; i++)
		order[i] = i + 1;
	srand(99);
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		uint64_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < N; i++) {
		size_t mask = m.mask, old_n = m.old_n, moved;

		assert_ptr_equal(hmap_remove(&m, order[i]), &values[order[i]]);
		moved = old_n - (m.old ? m.old_n : 0);
		/* The removed entry, and at most HMAP_MIGRATE_STEPS moved. */
		assert_true(mask != m.mask || moved <= HMAP_MIGRATE_STEPS + 1);
		shrinks += m.mask < mask;
		if (i % 5000 == 0) {
			for (size_t j = i + 1; j < N; j += 211)
				assert_ptr_equal(hmap_get(&m, order[j]), &values[order[j]]);
			for (size_t j = 0; j <= i; j += 97)
				assert_null(hmap_get(&m, order[j]));
		}
	}
	assert_int_equal(m.n, 0);
	assert_true(shrinks >= 3);
	assert_true(hmap_bytes(&m) <= peak / 4);
	assert_true(h.bytes - given >= peak / 2); /* handed over, not unmapped behind its back */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(hmap_put(&m, 1, &values[1]), 0);
		assert_ptr_equal(hmap_remove(&m, 1), &values[1]);
	}
	assert_null(m.old);
	assert_int_equal(hmap_bytes(&m), 16 * sizeof(struct hmap_slot));
	hmap_finish(&m);
	assert_ptr_equal(m.unmap, quarantine); /* kept for the map's next life */
	for (size_t i = 0; i < h.n; i++)
		assert_int_equal(munmap(h.r[i].addr, h.r[i].len), 0);
}

/* The tables a populate function was told of. */
static struct {
	void *addr[64];
	size_t len[64];
	size_t n;
} told;

static void record_populate(void *data, void *addr, size_t len)
{
	(void)data;
	assert_true(told.n < 64);
	assert_true(len >= (1u << 20));        /* mapped tables only */
	for (size_t i = 0; i < len; i += 4096) /* zero, and none of it written yet */
		assert_int_equal(((const unsigned char *)addr)[i], 0);
	told.addr[told.n] = addr;
	told.len[told.n++] = len;
}

static bool was_told(const void *addr, size_t len)
{
	for (size_t i = 0; i < told.n; i++) {
		const unsigned char *a = told.addr[i];

		if ((const unsigned char *)addr >= a &&
		    (const unsigned char *)addr + len <= a + told.len[i])
			return true;
	}
	return false;
}

/*
 * The populate function is told of every new mapped table, growing and shrinking, before the
 * map writes it, and of no small one; without an unmap function it is not called (the map
 * would munmap() tables behind its back).
 */
static void test_populate_told_of_new_tables(void **state)
{
	enum { N = 200000 };
	static char values[N + 1];
	static struct handed h;
	struct hmap m;

	hmap_init(&m);
	hmap_set_populate(&m, record_populate);
	for (uint64_t k = 1; k <= N; k++)
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	assert_int_equal(told.n, 0);
	hmap_finish(&m);

	hmap_set_unmap(&m, quarantine, &h);
	for (uint64_t k = 1; k <= 2 * N; k++) {
		assert_int_equal(hmap_put(&m, k, &values[k % N]), 0);
		if ((m.mask + 1) * sizeof(struct hmap_slot) >= (1u << 20))
			assert_true(was_told(m.slots, (m.mask + 1) * sizeof(struct hmap_slot)));
	}
	for (uint64_t k = 1; k <= 2 * N; k++) {
		assert_ptr_equal(hmap_remove(&m, k), &values[k % N]);
		if ((m.mask + 1) * sizeof(struct hmap_slot) >= (1u << 20))
			assert_true(was_told(m.slots, (m.mask + 1) * sizeof(struct hmap_slot)));
	}
	assert_true(told.n >= 6); /* growing from 1 MiB to 16 MiB, and shrinking back */
	hmap_finish(&m);
	assert_ptr_equal(m.populate, record_populate); /* kept, like the unmap function */
	for (size_t i = 0; i < h.n; i++) { /* every mapped table handed back had been told */
		assert_true(was_told(h.r[i].addr, h.r[i].len));
		assert_int_equal(munmap(h.r[i].addr, h.r[i].len), 0);
	}
}

/*
 * While the map moves to a mapped new table (growing, then shrinking), a lookup of an entry
 * still in the old table reads the old table only: the new one's untouched pages would each
 * cost a page fault. The new table is made inaccessible to show it.
 */
static void test_lookups_read_old_first(void **state)
{
	static char values[200001];
	struct hmap m;
	uint64_t k = 0, n_old;

	hmap_init(&m);
	while (!m.old || (m.mask + 1) * sizeof(struct hmap_slot) < (4u << 20)) {
		k++;
		assert_int_equal(hmap_put(&m, k, &values[k]), 0);
	}
	for (int phase = 0; phase < 2; phase++) {
		size_t bytes = (m.mask + 1) * sizeof(struct hmap_slot);

		assert_non_null(m.old);
		assert_int_equal(mprotect(m.slots, bytes, PROT_NONE), 0);
		n_old = 0;
		for (size_t i = m.cursor; i <= m.old_mask; i++) {
			uint64_t key = m.old[i].key;

			if (key) {
				assert_ptr_equal(hmap_get(&m, key), &values[key]);
				n_old++;
			}
		}
		assert_int_equal(mprotect(m.slots, bytes, PROT_READ | PROT_WRITE), 0);
		assert_int_equal(n_old, m.old_n);
		assert_true(n_old > 1000);
		/* Then shrinking: remove most, until a move into a mapped table begins. */
		while (phase == 0 && (!m.old || m.mask >= m.old_mask) && k > 0) {
			assert_ptr_equal(hmap_remove(&m, k), &values[k]);
			k--;
		}
		assert_true(phase == 1 || (m.mask + 1) * sizeof(struct hmap_slot) >= (1u << 20));
	}
	hmap_finish(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_random_against_shadow),
		cmocka_unit_test(test_sequential_and_large_keys),
		cmocka_unit_test(test_incremental_growth),
		cmocka_unit_test(test_growth_then_removals),
		cmocka_unit_test(test_large_table_given_back),
		cmocka_unit_test(test_grow_and_shrink_against_shadow),
		cmocka_unit_test(test_shrinks_as_it_empties),
		cmocka_unit_test(test_lookups_read_old_first),
		cmocka_unit_test(test_populate_told_of_new_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
