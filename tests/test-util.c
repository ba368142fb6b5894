/* SPDX-License-Identifier: MIT */
/* Small fixtures the unit tests share (see test-util.h). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/dt.h"
#include "core/pool.h"
#include "tests/test-util.h"

bool test_under_qemu_user(const char *what)
{
	const char *qemu = getenv("SMH_QEMU_USER");

	if (!qemu || !*qemu)
		return false;
	printf("# not tested under %s, which does not emulate it: %s\n", qemu, what);
	return true;
}

int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int copy_nothing(void *data, const struct pool_region *dst, uint64_t dst_addr,
			const struct pool_region *src, uint64_t src_addr, uint64_t len)
{
	return 0;
}

struct pool *test_example_pool(uint64_t granule)
{
	struct pool_hooks hooks = { .copy = copy_nothing };
	struct dt_config cfg = { 0 };
	struct pool *pool = NULL;

	assert_int_equal(dt_load(getenv("SMH_EXAMPLE_DTB"), &cfg, NULL), 0);
	assert_int_equal(pool_create(&cfg, granule, &hooks, NULL, &pool), 0);
	dt_config_finish(&cfg);
	return pool;
}

uint64_t test_pool_used(const struct pool *pool, size_t region)
{
	struct buddy_stats st;

	assert_int_equal(pool_region_stats(pool, region, &st), 0);
	return st.used;
}

void test_assert_pool_empty(const struct pool *pool)
{
	for (size_t i = 0; i < pool_n_regions(pool); i++)
		assert_int_equal(test_pool_used(pool, i), 0);
}
