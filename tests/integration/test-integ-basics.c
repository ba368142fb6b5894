/* SPDX-License-Identifier: MIT */
/*
 * The real smhd serving the seed's example (res0: cacheable 4 KiB at 0x42000000, res1:
 * non-cacheable 8 KiB at 0x43000000, res2: cacheable 12 KiB at 0x44000000) through
 * libsmh-client and through the RTOS-compatible layer: where buffers come from, that they are
 * zeroed when handed out and after a realloc, that realloc keeps contents, and that what a
 * connection does not hold cannot be freed by it. Every test starts its own daemon, so
 * physical addresses are those of an empty pool.
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

#define RES0 0x42000000u
#define RES1 0x43000000u
#define RES2 0x44000000u

static void alloc_mapped(struct smh_client *c, enum smh_reg_attr attr, size_t size, size_t align,
			 struct smh_buffer *buf)
{
	int err = smh_alloc(c, attr, size, align, buf);

	if (err < 0)
		fail_msg("smh_alloc(%d, %zu, %zu): %s (%s)", attr, size, align, smh_strerror(err),
			 smh_last_error(c));
	assert_null(buf->addr);
	assert_int_equal(smh_map(buf), 0);
	assert_non_null(buf->addr);
}

/* ---------------------------------------------------------------- the seed, library */

static void test_seed_scenario(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer cached, uncached, next;

	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &cached);
	assert_string_equal(cached.region, "res0");
	assert_int_equal(cached.phys_addr, RES0);
	assert_int_equal(cached.size, 4096);
	assert_int_equal(cached.attr, SMH_REG_ATTR_CACHEABLE);
	assert_true(cached.fd >= 0);

	alloc_mapped(c, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &uncached);
	assert_string_equal(uncached.region, "res1");
	assert_int_equal(uncached.phys_addr, RES1);
	assert_int_equal(uncached.size, 4096);
	assert_int_equal(uncached.attr, SMH_REG_ATTR_NON_CACHEABLE);
	assert_true(uncached.fd >= 0 && uncached.fd != cached.fd);

	/* The memory arrives zeroed and holds what is written, each buffer its own. */
	assert_true(all_zero(cached.addr, 4096));
	assert_true(all_zero(uncached.addr, 4096));
	pattern_fill(cached.addr, 4096, 1);
	pattern_fill(uncached.addr, 4096, 2);
	assert_true(pattern_check(cached.addr, 4096, 1));
	assert_true(pattern_check(uncached.addr, 4096, 2));
	assert_int_equal(harness_used(c), 8192);

	/* res0 is full: the next cacheable buffer comes from res2, the next region in DT order. */
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &next);
	assert_string_equal(next.region, "res2");
	assert_true(next.phys_addr >= RES2 && next.phys_addr + 4096 <= RES2 + 12288);

	/* No fallback to another attribute: 8 KiB non-cacheable no longer fits anywhere. */
	assert_int_equal(
		smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &(struct smh_buffer){ 0 }),
		-ENOMEM);
	assert_int_equal(harness_used(c), 3 * 4096);

	assert_int_equal(smh_free(c, &cached), 0);
	assert_int_equal(cached.fd, -1);
	assert_null(cached.addr);
	assert_int_equal(smh_free(c, &uncached), 0);
	assert_int_equal(smh_free(c, &next), 0);
	assert_int_equal(harness_used(c), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_regions_and_refusals(void **state)
{
	static const char *const labels[] = { "res0", "res1", "res2" };
	static const uint64_t phys[] = { RES0, RES1, RES2 }, sizes[] = { 4096, 8192, 12288 };
	static const enum smh_reg_attr attrs[] = { SMH_REG_ATTR_CACHEABLE,
						   SMH_REG_ATTR_NON_CACHEABLE,
						   SMH_REG_ATTR_CACHEABLE };
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_region_info *regions;
	struct smh_buffer small, aligned, buf = { 0 };
	size_t n;

	assert_int_equal(smh_granule(c), 64);
	assert_int_equal(smh_get_regions(c, &regions, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(regions[i].index, i);
		assert_string_equal(regions[i].label, labels[i]);
		assert_int_equal(regions[i].phys_addr, phys[i]);
		assert_int_equal(regions[i].size, sizes[i]);
		assert_int_equal(regions[i].managed, sizes[i]);
		assert_int_equal(regions[i].attr, attrs[i]);
		assert_string_equal(regions[i].backend, "memfd");
	}
	free(regions);

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 0, 0, &buf), -EINVAL);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64, 3, &buf), -EINVAL);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NUM, 64, 0, &buf), -EINVAL);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 64 * 1024, 0, &buf), -ENOMEM);
	assert_true(strlen(smh_last_error(c)) > 0);
	assert_int_equal(harness_used(c), 0);

	/* Sizes round up to the granule; an alignment is honoured past a smaller block. */
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 10, 0, &small);
	assert_int_equal(small.size, 64);
	assert_int_equal(small.phys_addr, RES0);
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 100, 1024, &aligned);
	assert_int_equal(aligned.phys_addr % 1024, 0);
	assert_true(aligned.phys_addr != small.phys_addr);
	assert_int_equal(aligned.size, 128);
	assert_int_equal(harness_used(c), 64 + 128);
	smh_disconnect(c);

	/* Disconnecting released both. */
	c = harness_connect(d);
	harness_wait_usage(c, 0, 1);
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- the RTOS layer */

static void test_rtos_layer(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *obs;
	char *a, *b, *al, *p, *q;
	uint64_t phys;
	int local;

	assert_int_equal(setenv("SMH_SOCKET", d->socket, 1), 0);
	errno = 0;
	assert_null(shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 64));
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(shared_multi_heap_pool_init(), 0);
	assert_int_equal(shared_multi_heap_pool_init(), -EALREADY);
	obs = harness_connect(d);

	/* The seed's scenario: 4 KiB of each attribute, at the device tree's addresses. */
	a = shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 4096);
	b = shared_multi_heap_alloc(SMH_REG_ATTR_NON_CACHEABLE, 4096);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(all_zero(a, 4096) && all_zero(b, 4096));
	pattern_fill(a, 4096, 10);
	pattern_fill(b, 4096, 11);
	assert_int_equal(smh_get_phys(a, &phys), 0);
	assert_int_equal(phys, RES0);
	assert_int_equal(smh_get_phys(a + 100, &phys), 0);
	assert_int_equal(phys, RES0 + 100);
	assert_int_equal(smh_get_phys(b + 4095, &phys), 0);
	assert_int_equal(phys, RES1 + 4095);
	assert_int_equal(smh_get_phys(&local, &phys), -EINVAL);
	assert_int_equal(harness_used(obs), 8192);

	/* res0 is full: aligned memory comes from res2. */
	al = shared_multi_heap_aligned_alloc(SMH_REG_ATTR_CACHEABLE, 2048, 100);
	assert_non_null(al);
	assert_int_equal(smh_get_phys(al, &phys), 0);
	assert_int_equal(phys % 2048, 0);
	assert_true(phys >= RES2 && phys < RES2 + 12288);

	/* realloc keeps the contents, the new tail is zero; shrinking keeps the head. */
	p = shared_multi_heap_realloc(SMH_REG_ATTR_CACHEABLE, NULL, 256);
	assert_non_null(p);
	pattern_fill(p, 256, 12);
	q = shared_multi_heap_realloc(SMH_REG_ATTR_CACHEABLE, p, 3000);
	assert_non_null(q);
	assert_true(pattern_check(q, 256, 12));
	assert_true(all_zero(q + 256, 3000 - 256));
	errno = 0;
	assert_null(shared_multi_heap_realloc(SMH_REG_ATTR_NON_CACHEABLE, q, 64));
	assert_int_equal(errno, EINVAL);
	p = shared_multi_heap_realloc(SMH_REG_ATTR_CACHEABLE, q, 128);
	assert_non_null(p);
	assert_true(pattern_check(p, 128, 12));

	/* free(NULL) does nothing; the others give everything back. */
	shared_multi_heap_free(NULL);
	assert_true(pattern_check(a, 4096, 10) && pattern_check(b, 4096, 11));
	assert_int_equal(harness_used(obs), 8192 + 128 + 128);
	shared_multi_heap_free(a);
	shared_multi_heap_free(b);
	shared_multi_heap_free(al);
	shared_multi_heap_free(p);
	assert_int_equal(smh_get_phys(a, &phys), -EINVAL);
	assert_int_equal(harness_used(obs), 0);
	assert_int_equal(harness_n_clients(obs), 2);
	smh_disconnect(obs);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- zeroing and realloc */

static void test_zeroed_and_realloc(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer a, b, gap, blocker;
	uint64_t old_phys;

	/* What a freed buffer held is gone when its place is handed out again. */
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 1024, 0, &a);
	pattern_fill(a.addr, 1024, 20);
	old_phys = a.phys_addr;
	assert_int_equal(smh_free(c, &a), 0);
	harness_wait_scrubbed(c); /* its place is free again once clean */
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 1024, 0, &b);
	assert_int_equal(b.phys_addr, old_phys);
	assert_true(all_zero(b.addr, 1024));

	/* Shrink: the tail given back is zero for the next owner; grow: the new tail reads 0. */
	pattern_fill(b.addr, 1024, 21);
	assert_int_equal(smh_realloc(c, &b, 256), 0);
	assert_int_equal(b.size, 256);
	assert_int_equal(b.phys_addr, old_phys);
	assert_true(pattern_check(b.addr, 256, 21));
	harness_wait_scrubbed(c);
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 512, 0, &gap);
	assert_true(gap.phys_addr >= old_phys + 256 && gap.phys_addr + 512 <= old_phys + 1024);
	assert_true(all_zero(gap.addr, 512));
	assert_int_equal(smh_free(c, &gap), 0);
	harness_wait_scrubbed(c);
	assert_int_equal(smh_realloc(c, &b, 1024), 0);
	assert_int_equal(b.size, 1024);
	assert_true(pattern_check(b.addr, 256, 21));
	assert_true(all_zero((char *)b.addr + 256, 1024 - 256));

	/* A block right after b forces the next growth to move it: contents go along. */
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 1024, 0, &blocker);
	assert_int_equal(blocker.phys_addr, old_phys + 1024);
	pattern_fill(blocker.addr, 1024, 22);
	pattern_fill(b.addr, 1024, 23);
	assert_int_equal(smh_realloc(c, &b, 2048), 0);
	assert_true(b.phys_addr != old_phys);
	assert_int_equal(b.size, 2048);
	assert_non_null(b.addr);
	assert_true(pattern_check(b.addr, 1024, 23));
	assert_true(all_zero((char *)b.addr + 1024, 1024));
	assert_true(pattern_check(blocker.addr, 1024, 22));

	/* The place b left is zero again. */
	harness_wait_scrubbed(c);
	alloc_mapped(c, SMH_REG_ATTR_CACHEABLE, 1024, 0, &a);
	assert_int_equal(a.phys_addr, old_phys);
	assert_true(all_zero(a.addr, 1024));
	assert_int_equal(harness_used(c), 1024 + 1024 + 2048);

	/* A realloc that cannot be served leaves the buffer as it was. */
	assert_int_equal(smh_realloc(c, &b, 64 * 1024), -ENOMEM);
	assert_int_equal(b.size, 2048);
	assert_true(pattern_check(b.addr, 1024, 23));
	smh_disconnect(c);
	smhd_stop(d);
}

/* ---------------------------------------------------------------- refusals */

static void test_refused_frees(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *owner = harness_connect(d);
	struct smh_client *other = harness_connect(d);
	struct smh_buffer buf, stolen, again, imported;
	struct alloc_view view;
	uint64_t token;

	alloc_mapped(owner, SMH_REG_ATTR_NON_CACHEABLE, 512, 0, &buf);
	pattern_fill(buf.addr, 512, 30);

	/* Another connection names the handle: refused, and nothing happens to the buffer. */
	stolen = buf;
	assert_int_equal(smh_free(other, &stolen), -EINVAL);
	assert_int_equal(smh_realloc(other, &stolen, 1024), -EINVAL);
	assert_int_equal(smh_export(other, &stolen, &token), -EINVAL);
	assert_true(pattern_check(buf.addr, 512, 30));
	assert_true(harness_find_alloc(owner, buf.handle, &view));
	assert_int_equal(view.n_holders, 1);
	assert_int_equal(view.holders[0], smh_client_id(owner));
	assert_int_equal(view.size, 512);
	assert_int_equal(harness_used(owner), 512);

	/* Bogus tokens import nothing. */
	assert_int_equal(smh_import(other, 0x5eed5eed5eed5eedull, &imported), -ENOENT);
	assert_int_equal(smh_import(other, 0, &imported), -ENOENT);

	/* The owner frees it once; the second time is refused and harms nobody. */
	assert_int_equal(smh_export(owner, &buf, &token), 0);
	again = buf;
	assert_int_equal(smh_free(owner, &buf), 0);
	assert_int_equal(smh_free(owner, &again), -EINVAL);
	assert_true(strlen(smh_last_error(owner)) > 0);
	assert_false(harness_find_alloc(owner, again.handle, &view));
	/* Its token died with it. */
	assert_int_equal(smh_import(other, token, &imported), -ENOENT);
	assert_int_equal(harness_used(owner), 0);

	/* Both connections still work. */
	alloc_mapped(other, SMH_REG_ATTR_NON_CACHEABLE, 8192, 0, &imported);
	assert_true(all_zero(imported.addr, 8192));
	assert_int_equal(smh_free(other, &imported), 0);
	smh_disconnect(other);
	smh_disconnect(owner);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_seed_scenario, harness_teardown),
		cmocka_unit_test_teardown(test_regions_and_refusals, harness_teardown),
		cmocka_unit_test_teardown(test_rtos_layer, harness_teardown),
		cmocka_unit_test_teardown(test_zeroed_and_realloc, harness_teardown),
		cmocka_unit_test_teardown(test_refused_frees, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
