/* SPDX-License-Identifier: MIT */
/*
 * What a restart must not open (issue "No client can freeze, starve, impersonate or
 * overdraw"): smhd is killed with SIGKILL while clients hold buffers and started again on the
 * same state; the clients have not called since, so their sessions are orphans. Then:
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

/* Runs smhctl --socket @socket @cmd [@opt]. */
static void smhctl(struct run_result *res, const char *socket, const char *cmd, const char *opt)
{
	char *argv[] = { (char *)harness_env("SMH_SMHCTL"), "--socket", (char *)socket,
			 (char *)cmd, (char *)opt, NULL };

	harness_run(res, argv);
	if (res->status != 0)
		fail_msg("smhctl %s exited with %d; stdout:\n%s\nstderr:\n%s", cmd, res->status,
			 res->out, res->err);
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
	smhctl(res, d->socket, "allocs", "--json");
	snprintf(expect, sizeof(expect), "\"handle\": %llu,", (unsigned long long)buf[0].handle);
	assert_contains(res->out, expect);
	smhctl(res, d->socket, "allocs", NULL);
	assert_contains(res->out, "0x42000000");

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
		cmocka_unit_test_teardown(test_list_orphan_holders, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
