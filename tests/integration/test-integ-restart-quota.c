/* SPDX-License-Identifier: MIT */
/*
 * What a restart must not open (issue "No client can freeze, starve, impersonate or
 * overdraw"): smhd is killed with SIGKILL while clients hold buffers and started again on the
 * same state; the clients have not called since, so their sessions are orphans. Then:
 * - a uid's quota counts its orphans: a new connection of that uid cannot allocate what the
 *   orphan holds a second time; the orphan's own client resumes it and works as before;
 * - `smhctl allocs` lists a buffer four sessions share (the holders of one allocation may be
 *   more than the connections).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

/* --max-bytes-per-uid 4K, with 4 KiB held by one connection across a restart. */
static void test_orphans_count_in_quota(void **state)
{
	static const char *const args[] = { "--max-bytes-per-uid", "4K", NULL };
	const struct smhd_options opts = { .backend = "memfd", .extra_args = args };
	struct smhd *d = smhd_start(&opts);
	struct smh_client *a = harness_connect(d), *b;
	struct smh_buffer held, more;
	int ret;

	assert_int_equal(smh_alloc(a, SMH_REG_ATTR_CACHEABLE, 4096, 0, &held), 0);
	smhd_kill(d);
	smhd_restart(d, &opts);

	/* The same uid, on a new connection, while the orphan holds the quota. */
	b = harness_connect(d);
	ret = smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 4096, 0, &more);
	if (ret != -EDQUOT)
		fail_msg("expected EDQUOT, got %d (%s)", ret, smh_last_error(b));
	assert_non_null(strstr(smh_last_error(b), "max-bytes-per-uid is 4 KiB"));
	assert_int_equal(harness_used(b), 4096);

	/* Its owner resumes it (the same uid, the orphan's use moves, not doubles) and frees it. */
	assert_int_equal(smh_free(a, &held), 0);
	harness_wait_usage(b, 0, 2);
	assert_int_equal(smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 4096, 0, &more), 0);
	assert_int_equal(smh_free(b, &more), 0);
	smh_disconnect(a);
	smh_disconnect(b);
	smhd_stop(d);
}

enum { N_SHARERS = 4 };

static void test_list_orphan_holders(void **state)
{
	const struct smhd_options opts = { .backend = "memfd" };
	struct smhd *d = smhd_start(&opts);
	struct smh_client *c[N_SHARERS];
	struct smh_buffer buf[N_SHARERS];
	struct run_result *res = malloc(sizeof(*res));
	char expect[64];
	uint64_t token;

	assert_non_null(res);
	for (int i = 0; i < N_SHARERS; i++)
		c[i] = harness_connect(d);
	assert_int_equal(smh_alloc(c[0], SMH_REG_ATTR_CACHEABLE, 256, 0, &buf[0]), 0);
	assert_int_equal(smh_export(c[0], &buf[0], &token), 0);
	for (int i = 1; i < N_SHARERS; i++)
		assert_int_equal(smh_import(c[i], token, &buf[i]), 0);
	smhd_kill(d);
	smhd_restart(d, &opts);

	/* Four orphans hold the buffer; smhctl is the only connection. */
	smhctl(res, d->socket, "allocs", "--json", NULL);
	assert_status(res, 0);
	snprintf(expect, sizeof(expect), "\"handle\": %llu,", (unsigned long long)buf[0].handle);
	assert_contains(res->out, expect);
	smhctl(res, d->socket, "allocs", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "0x42000000");
	/* Through the library too: one allocation, its four holders, each an orphan once. */
	{
		struct smh_client *viewer = harness_connect(d);
		struct smh_alloc_info *allocs;
		size_t n;

		assert_int_equal(smh_list_allocs(viewer, &allocs, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(allocs[0].handle, buf[0].handle);
		assert_int_equal(allocs[0].n_holders, N_SHARERS);
		for (size_t i = 0; i < allocs[0].n_holders; i++)
			for (size_t j = 0; j < i; j++)
				assert_true(allocs[0].holders[i] != allocs[0].holders[j]);
		smh_allocs_free(allocs, n);
		smh_disconnect(viewer);
	}

	for (int i = 0; i < N_SHARERS; i++) {
		assert_int_equal(smh_free(c[i], &buf[i]), 0);
		smh_disconnect(c[i]);
	}
	free(res);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_orphans_count_in_quota, harness_teardown),
		cmocka_unit_test_teardown(test_list_orphan_holders, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
