/* SPDX-License-Identifier: MIT */
/*
 * Memory types and cache maintenance against the real smhd (memfd backend, the seed's example):
 * every region reports cached write-back, machine-readable and in smhctl regions; a buffer
 * reaches its region's type; the copy helpers (memcpy on cached memory) give the right bytes
 * at every edge and touch nothing outside; the sync calls and their RTOS counterparts check
 * their ranges and, on an architecture that can maintain the cache from user space, succeed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smh/client.h"
#include "smh/shared_multi_heap.h"
#include "tests/integration/harness.h"

/* What a sync on cached memory returns here: 32-bit ARM and others cannot maintain it. */
#if defined(__x86_64__) || defined(__aarch64__)
#define SYNC_CACHED 0
#else
#define SYNC_CACHED (-EOPNOTSUPP)
#endif

static int count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_regions_cached(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_region_info *regions;
	size_t n;

	assert_non_null(res);
	assert_int_equal(smh_get_regions(c, &regions, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(regions[i].mapping_kind, SMH_MAPPING_CACHED);
		assert_string_equal(regions[i].mapping,
				    "cached write-back (memfd, not the board's memory)");
	}
	free(regions);
	{
		char *const argv[] = { (char *)harness_env("SMH_SMHCTL"),
				       "--socket",
				       d->socket,
				       "regions",
				       "--json",
				       NULL };

		harness_run(res, argv);
		assert_int_equal(res->status, 0);
		assert_int_equal(count(res->out, "\"mapping_kind\": \"cached\""), 3);
	}
	{
		char *const argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", d->socket,
				       "regions", NULL };

		harness_run(res, argv);
		assert_int_equal(res->status, 0);
		assert_contains(res->out, "  MEMORY  ");
		assert_int_equal(count(res->out, "  cached         cached write-back (memfd"), 3);
	}
	smh_disconnect(c);
	smhd_stop(d);
	free(res);
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 13 + i * 5 + 3);
}

/* Every offset and length near the edges: the bytes written, read and filled, nothing else. */
static void check_copies(const struct smh_buffer *b)
{
	unsigned char src[80], dst[80], want[128];

	for (uint64_t off = 0; off < 24; off++) {
		for (size_t len = 0; len <= sizeof(src); len += 7) {
			memset(b->addr, 0x5a, 128);
			memset(want, 0x5a, sizeof(want));
			pattern(src, len, (unsigned)(off + len));
			memcpy(want + off, src, len);
			assert_int_equal(smh_buffer_write(b, off, src, len), 0);
			assert_memory_equal(b->addr, want, sizeof(want));
			memset(dst, 0, sizeof(dst));
			assert_int_equal(smh_buffer_read(b, off, dst, len), 0);
			assert_memory_equal(dst, src, len);
			memset(want + off, 0xc3, len);
			assert_int_equal(smh_buffer_fill(b, off, 0xc3, len), 0);
			assert_memory_equal(b->addr, want, sizeof(want));
		}
	}
}

static void test_buffer_mapping_copies_and_sync(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer b;

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &b), 0);
	/* The region's type, before mapping too (memfd: cached whatever the attribute). */
	assert_int_equal(smh_buffer_mapping(&b), SMH_MAPPING_CACHED);
	assert_int_equal(smh_sync_for_device(&b, 0, 64), -EINVAL); /* not mapped */
	assert_int_equal(smh_sync_for_cpu(&b, 0, 64), -EINVAL);
	assert_int_equal(smh_map(&b), 0);
	check_copies(&b);

	assert_int_equal(smh_sync_for_device(&b, 0, 4096), SYNC_CACHED);
	assert_int_equal(smh_sync_for_cpu(&b, 1, 100), SYNC_CACHED);
	assert_int_equal(smh_sync_for_device(&b, 4096, 0), SYNC_CACHED);
	assert_int_equal(smh_sync_for_device(&b, 4095, 2), -ERANGE);
	assert_int_equal(smh_sync_for_cpu(&b, 4097, 0), -ERANGE);
	assert_int_equal(smh_sync_for_cpu(&b, UINT64_MAX, 2), -ERANGE);
	assert_int_equal(smh_sync_for_device(NULL, 0, 0), -EINVAL);

	assert_int_equal(smh_free(c, &b), 0);
	assert_int_equal(smh_buffer_mapping(&b), SMH_MAPPING_UNKNOWN); /* fd -1 */
	assert_int_equal(smh_buffer_mapping(NULL), SMH_MAPPING_UNKNOWN);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_rtos_cache_ranges(void **state)
{
	struct smhd *d = smhd_start(NULL);
	unsigned char *p;
	int local;

	assert_int_equal(setenv("SMH_SOCKET", d->socket, 1), 0);
	assert_int_equal(shared_multi_heap_pool_init(), 0);
	p = shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 1000);
	assert_non_null(p);
	assert_int_equal(smh_cache_data_flush_range(p, 1000), SYNC_CACHED);
	assert_int_equal(smh_cache_data_invd_range(p + 10, 990), SYNC_CACHED);
	assert_int_equal(smh_cache_data_flush_range(p + 999, 0), SYNC_CACHED);
	/* The block is 1024 bytes (whole granules): past those, the range is refused. */
	assert_int_equal(smh_cache_data_flush_range(p + 1000, 25), -ERANGE);
	assert_int_equal(smh_cache_data_invd_range(&local, sizeof(local)), -EINVAL);
	shared_multi_heap_free(p);
	assert_int_equal(smh_cache_data_flush_range(p, 1), -EINVAL); /* freed */
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_regions_cached, harness_teardown),
		cmocka_unit_test_teardown(test_buffer_mapping_copies_and_sync, harness_teardown),
		cmocka_unit_test_teardown(test_rtos_cache_ranges, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
