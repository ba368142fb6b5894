/* SPDX-License-Identifier: MIT */
/*
 * The hash map against a shadow array: random puts, gets and removes (removal shifts entries
 * back, the part most easily got wrong), sequential keys, key 0 refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
	}
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_random_against_shadow),
		cmocka_unit_test(test_sequential_and_large_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
