/* SPDX-License-Identifier: MIT */
/*
 * Small fixtures the unit tests share (built into each test that needs them, tests/meson.build).
 */
#ifndef TESTS_TEST_UTIL_H
#define TESTS_TEST_UTIL_H

#include <stdint.h>

struct pool;

/* The number of fds this process has open (/proc/self/fd), for "no fd leaked" checks. */
int test_count_fds(void);

/*
 * A pool over the example device tree ($SMH_EXAMPLE_DTB) with @granule, whose copy hook does
 * nothing (the tests have no memory behind the regions). Fails the test on any error.
 */
struct pool *test_example_pool(uint64_t granule);

#endif
