/* SPDX-License-Identifier: MIT */
/*
 * The devmem backend on a plain file standing in for /dev/mem, and smhctl against a running
 * daemon.
 *
 * devmem: a sparse file as large as the example's highest address is the "physical memory";
 * the fd a client receives keeps the daemon's open mode (O_SYNC exactly for non-cacheable
 * regions), the offset is the physical address, and what is written through the mapping is
 * in the file at that offset. The file's regions start out dirty, so that zeroing shows.
 *
 * smhctl: every daemon command, as a user types it, checked against what the library sees;
 * plus the exit statuses of failure (1, no daemon) and of usage errors (2).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define RES0     0x42000000u
#define RES1     0x43000000u
#define MEM_SIZE 0x45000000ll

static char mem_dir[80];
static char mem_path[128];

static int devmem_teardown(void **state)
{
	if (mem_path[0])
		unlink(mem_path);
	if (mem_dir[0])
		rmdir(mem_dir);
	mem_path[0] = mem_dir[0] = '\0';
	return harness_teardown(state);
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ---------------------------------------------------------------- devmem */

static int make_memory_file(void)
{
	const char *tmp = getenv("TMPDIR");
	unsigned char dirt[8192];
	int fd;

	snprintf(mem_dir, sizeof(mem_dir), "%s/smh-devmem-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(mem_dir));
	snprintf(mem_path, sizeof(mem_path), "%s/mem", mem_dir);
	fd = open(mem_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
	/* What a previous boot left in the regions: the daemon must not hand it out. */
	memset(dirt, 0xa5, sizeof(dirt));
	assert_int_equal(pwrite(fd, dirt, 4096, RES0), 4096);
	assert_int_equal(pwrite(fd, dirt, 8192, RES1), 8192);
	return fd;
}

static void check_devmem_buffer(int file, struct smh_buffer *b, int expect_sync, unsigned seed)
{
	unsigned char back[4096];
	int fl = fcntl(b->fd, F_GETFL);

	assert_true(fl >= 0);
	if (expect_sync)
		assert_int_equal(fl & O_SYNC, O_SYNC);
	else
		assert_int_equal(fl & O_SYNC, 0);
	assert_int_equal(b->offset, b->phys_addr);
	assert_int_equal(smh_map(b), 0);
	assert_true(all_zero(b->addr, 4096));
	pattern_fill(b->addr, 4096, seed);
	assert_int_equal(pread(file, back, sizeof(back), (off_t)b->phys_addr), sizeof(back));
	assert_true(pattern_check(back, sizeof(back), seed));
}

static void test_devmem_sparse_file(void **state)
{
	struct smhd_options opts = { .backend = "devmem" };
	struct smh_region_info *regions;
	struct smh_buffer nc, cached;
	struct run_result *res = malloc(sizeof(*res));
	struct smh_client *c;
	struct smhd *d;
	size_t n;
	int file;

	assert_non_null(res);
	file = make_memory_file();
	opts.mem_path = mem_path;
	d = smhd_start(&opts);
	c = harness_connect(d);

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &nc), 0);
	assert_string_equal(nc.region, "res1");
	assert_int_equal(nc.phys_addr, RES1);
	check_devmem_buffer(file, &nc, 1, 70);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, 4096, 0, &cached), 0);
	assert_string_equal(cached.region, "res0");
	assert_int_equal(cached.phys_addr, RES0);
	check_devmem_buffer(file, &cached, 0, 71);

	/* Freed memory is scrubbed in the file too. */
	assert_int_equal(smh_free(c, &nc), 0);
	harness_wait_scrubbed(c); /* its place is free again once clean */
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 4096, 0, &nc), 0);
	assert_int_equal(nc.phys_addr, RES1);
	check_devmem_buffer(file, &nc, 1, 72);

	assert_int_equal(smh_get_regions(c, &regions, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(regions[i].backend, "devmem");
		/* A regular file is page cache, whatever the open mode: cached, and said why. */
		assert_int_equal(regions[i].mapping_kind, SMH_MAPPING_CACHED);
		assert_non_null(strstr(regions[i].mapping, "(file"));
	}
	free(regions);
	smhctl(res, d->socket, "regions", "--json", NULL);
	assert_status(res, 0);
	assert_int_equal(count(res->out, "\"backend\": \"devmem\""), 3);
	assert_int_equal(count(res->out, "memfd"), 0);

	assert_int_equal(smh_free(c, &nc), 0);
	assert_int_equal(smh_free(c, &cached), 0);
	smh_disconnect(c);
	smhd_stop(d);
	close(file);
	free(res);
	assert_int_equal(devmem_teardown(state), 0);
}

/* ---------------------------------------------------------------- smhctl */

static void test_smhctl_commands(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct smh_buffer held;
	char expect[128];

	assert_non_null(res);
	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_NON_CACHEABLE, 1024, 0, &held), 0);

	smhctl(res, d->socket, "regions", "--json", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "\"label\": \"res0\",\n    \"phys_addr\": 1107296256,");
	assert_contains(res->out, "\"label\": \"res1\",\n    \"phys_addr\": 1124073472,");
	assert_contains(res->out, "\"label\": \"res2\",\n    \"phys_addr\": 1140850688,");

	smhctl(res, d->socket, "stats", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "res0");
	assert_contains(res->out, "res1");
	assert_contains(res->out, "res2");
	assert_contains(res->out, "granule 64 bytes");
	smhctl(res, d->socket, "stats", "--json", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "\"clients\": 2,");
	assert_contains(res->out, "\"allocations\": 1,");

	smhctl(res, d->socket, "clients", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "(this smhctl)");
	snprintf(expect, sizeof(expect), " %d ", (int)getpid());
	assert_contains(res->out, expect);
	smhctl(res, d->socket, "clients", "--json", NULL);
	assert_status(res, 0);
	snprintf(expect, sizeof(expect), "\"id\": %llu,\n    \"pid\": %d,",
		 (unsigned long long)smh_client_id(c), (int)getpid());
	assert_contains(res->out, expect);

	smhctl(res, d->socket, "allocs", "--json", NULL);
	assert_status(res, 0);
	snprintf(expect, sizeof(expect), "\"handle\": %llu,", (unsigned long long)held.handle);
	assert_contains(res->out, expect);
	snprintf(expect, sizeof(expect), "\"owner\": %llu,", (unsigned long long)smh_client_id(c));
	assert_contains(res->out, expect);
	assert_contains(res->out, "\"phys_addr\": 1124073472,");
	smhctl(res, d->socket, "allocs", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "0x43000000");

	smhctl(res, d->socket, "map", "--width", "40", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "res0");
	assert_contains(res->out, "res1");
	assert_contains(res->out, "res2");

	smhctl(res, d->socket, "alloc", "--attr", "non-cacheable", "4096", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "from region res1");
	/* smhctl freed its test allocation when it exited. */
	harness_wait_usage(c, 1024, 1);

	assert_int_equal(smh_free(c, &held), 0);
	smh_disconnect(c);
	smhd_stop(d);
	free(res);
}

static void test_smhctl_failures(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);
	char nowhere[160];

	assert_non_null(res);
	snprintf(nowhere, sizeof(nowhere), "%s/no-daemon.sock", d->dir);
	smhctl(res, nowhere, "regions", NULL);
	assert_status(res, 1);
	assert_contains(res->err, nowhere);
	assert_string_equal(res->out, "");

	smhctl(res, d->socket, "alloc", "--attr", "bogus", "4096", NULL);
	assert_status(res, 2);
	assert_contains(res->err, "bogus");
	smhctl(res, d->socket, "frobnicate", NULL);
	assert_status(res, 2);
	smhctl(res, d->socket, "regions", "unexpected", NULL);
	assert_status(res, 2);
	smhctl(res, d->socket, "alloc", NULL);
	assert_status(res, 2);
	smhd_stop(d);
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_devmem_sparse_file, devmem_teardown),
		cmocka_unit_test_teardown(test_smhctl_commands, harness_teardown),
		cmocka_unit_test_teardown(test_smhctl_failures, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
