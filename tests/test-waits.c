/* SPDX-License-Identifier: MIT */
/*
 * Requests' waits in smhd (daemon/waits.c): the counts over each bound (strictly longer), the
 * longest, and a wait measured from an arrival in the future (the clock went back) as 0.
 * integ-waits measures a real one against a stopped smhd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/waits.h"

#define MS 1000000ull

static void test_bounds(void **state)
{
	struct waits w;

	(void)state;
	memset(&w, 0, sizeof(w));
	waits_add(&w, 0);
	waits_add(&w, 1 * MS); /* not over 1 ms */
	waits_add(&w, 1 * MS + 1);
	waits_add(&w, 20 * MS + 1);
	waits_add(&w, 3000 * MS);
	assert_int_equal(w.requests, 5);
	assert_int_equal(w.longest_ns, 3000 * MS);
	assert_int_equal(w.over[0], 3); /* 1 ms */
	assert_int_equal(w.over[1], 2); /* 5 ms */
	assert_int_equal(w.over[2], 2); /* 20 ms */
	assert_int_equal(w.over[3], 1); /* 100 ms */
	assert_int_equal(w.over[4], 1); /* 1 s */
	waits_add(&w, 2 * MS);
	assert_int_equal(w.longest_ns, 3000 * MS);
	assert_int_equal(w.over[0], 4);
	assert_int_equal(w.over[1], 2);
	for (int i = 1; i < WAITS_N; i++)
		assert_true(waits_over_ms[i] > waits_over_ms[i - 1]);
}

static void test_since(void **state)
{
	struct timespec t;
	uint64_t ns;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec -= 2;
	ns = waits_since(&t);
	assert_true(ns >= 2000 * MS);
	assert_true(ns < 3600000 * MS); /* not a wrapped negative */
	t.tv_sec += 3600;               /* an arrival "in the future": the clock stepped back */
	assert_int_equal(waits_since(&t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_since),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
