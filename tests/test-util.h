/* SPDX-License-Identifier: MIT */
/*
 * Small fixtures the unit tests share (built into each test that needs them, tests/meson.build).
 */
#ifndef TESTS_TEST_UTIL_H
#define TESTS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;

/* The number of fds this process has open (/proc/self/fd), for "no fd leaked" checks. */
int test_count_fds(void);

/*
 * A pool over the example device tree ($SMH_EXAMPLE_DTB) with @granule, whose copy hook does
 * nothing (the tests have no memory behind the regions). Fails the test on any error.
 */
struct pool *test_example_pool(uint64_t granule);

/* Bytes in use in region @region of @pool (failing the test if it has no such region). */
uint64_t test_pool_used(const struct pool *pool, size_t region);

/* Every region of @pool has nothing in use (a teardown's check that all was given back). */
void test_assert_pool_empty(const struct pool *pool);

/*
 * Whether this test runs under qemu-user (the unit suite cross-built for the boards,
 * tests/cross/run-unit: its exe_wrapper sets SMH_QEMU_USER to the emulator's name). If so, says
 * that @what is left untested here, where the emulator differs from a kernel, and returns true.
 * The host build tests it.
 */
bool test_under_qemu_user(const char *what);

#endif
