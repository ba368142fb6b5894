/* SPDX-License-Identifier: MIT */
/*
 * Scrubbing off the request path (daemon/scrub.c), on a board with a 1 GiB region
 * (scrub.dts), with the scrubber slowed down (SMHD_TEST_SCRUB_RATE) so that it is provably busy
 * while the test watches:
 *
 * - While one client's freed gigabyte is being scrubbed (the backlog `smhctl stats` reports is
 *   non-zero before and after), another client's alloc+free round trips are all answered, and
 *   an allocation that could never fit is refused with -ENOMEM at once, not parked.
 * - An allocation only the backlog could serve waits for it (its connection parked) and then
 *   gets the region's memory zeroed: what the previous owner wrote is gone.
 * - `smhctl stats` shows the backlog, in the table and in --json.
 *
 * No timing is asserted: the backlog being non-zero after the round trips is what shows they
 * did not wait for the scrub.
 */
#include <errno.h>
#include <pthread.h>
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

#define GIB      (UINT64_C(1) << 30)
#define BIG_BASE UINT64_C(0x80000000)
#define PAGE     4096

/* 128 MiB/s: a gigabyte takes about 8 s to scrub. */
#define SLOW_RATE "134217728"

#define ROUND_TRIPS 20

static struct smhd *start_slow(void)
{
	const char *dtb = getenv("SMH_SCRUB_DTB");

	assert_non_null(dtb);
	assert_int_equal(setenv("SMHD_TEST_SCRUB_RATE", SLOW_RATE, 1), 0);
	return smhd_start(&(struct smhd_options){ .dtb = dtb });
}

static uint64_t backlog(struct smh_client *c)
{
	uint64_t bytes, blocks;

	assert_int_equal(smh_get_scrubbing(c, &bytes, &blocks), 0);
	assert_true((bytes == 0) == (blocks == 0));
	return bytes;
}

/* Allocates the whole big region, writes a pattern at both ends and frees it. */
static void fill_and_free_gigabyte(struct smh_client *c)
{
	struct smh_buffer b;

	assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, GIB, 0, &b), 0);
	assert_int_equal(b.phys_addr, BIG_BASE);
	assert_int_equal(smh_map(&b), 0);
	pattern_fill(b.addr, PAGE, 1);
	pattern_fill((char *)b.addr + GIB - PAGE, PAGE, 2);
	assert_int_equal(smh_free(c, &b), 0);
}

struct waiter {
	struct smh_client *c;
	struct smh_buffer b;
	int result;
	bool zero;
};

/* Asks for the whole region again: only the backlog can serve it, so the request waits. */
static void *wait_for_gigabyte(void *data)
{
	struct waiter *w = data;

	w->result = smh_alloc(w->c, SMH_REG_ATTR_CACHEABLE, GIB, 0, &w->b);
	if (w->result == 0 && smh_map(&w->b) == 0)
		w->zero =
			all_zero(w->b.addr, PAGE) && all_zero((char *)w->b.addr + GIB - PAGE, PAGE);
	return NULL;
}

static void test_round_trips_while_scrubbing(void **state)
{
	struct smhd *d = start_slow();
	struct smh_client *a = harness_connect(d), *b = harness_connect(d), *w_client;
	struct waiter w = { 0 };
	struct smh_buffer x;
	pthread_t thread;

	fill_and_free_gigabyte(a);
	assert_true(backlog(b) > 0);
	w.c = w_client = harness_connect(d);
	assert_int_equal(pthread_create(&thread, NULL, wait_for_gigabyte, &w), 0);

	/* The other client is served meanwhile. */
	for (int i = 0; i < ROUND_TRIPS; i++) {
		assert_int_equal(smh_alloc(b, SMH_REG_ATTR_NON_CACHEABLE, PAGE, 0, &x), 0);
		assert_int_equal(smh_free(b, &x), 0);
	}
	/* Even the backlog could not hold 2 GiB: refused now, not parked. */
	assert_int_equal(smh_alloc(b, SMH_REG_ATTR_CACHEABLE, 2 * GIB, 0, &x), -ENOMEM);
	/* All of that happened while the scrubber was still at it. */
	assert_true(backlog(b) > 0);

	/* The waiting allocation gets the region once clean: nothing of the old owner's. */
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(w.result, 0);
	assert_int_equal(w.b.phys_addr, BIG_BASE);
	assert_true(w.zero);
	assert_int_equal(smh_free(w_client, &w.b), 0);

	smh_disconnect(w_client);
	smh_disconnect(b);
	smh_disconnect(a);
	smhd_stop(d);
}

/* Runs `smhctl --socket SOCKET stats [--json]`; asserts it succeeded. */
static void smhctl_stats(const struct smhd *d, bool json, struct run_result *res)
{
	char *argv[] = { (char *)harness_env("SMH_SMHCTL"),
			 "--socket",
			 (char *)d->socket,
			 "stats",
			 json ? "--json" : NULL,
			 NULL };

	harness_run(res, argv);
	if (res->status != 0)
		fail_msg("smhctl stats: %s", res->err);
}

static void test_smhctl_shows_backlog(void **state)
{
	struct smhd *d = start_slow();
	struct smh_client *a = harness_connect(d);
	struct run_result *res = calloc(1, sizeof(*res));

	assert_non_null(res);
	fill_and_free_gigabyte(a);
	assert_true(backlog(a) > 0);
	smhctl_stats(d, false, res);
	assert_contains(res->out, "(given back, free once zeroed)");
	smhctl_stats(d, true, res);
	assert_contains(res->out, "\"scrubbing_bytes\": ");
	assert_null(strstr(res->out, "\"scrubbing_bytes\": 0,"));
	assert_null(strstr(res->out, "\"scrubbing_blocks\": 0,"));
	/* While memory is in the scrubber, it is neither used nor free. */
	assert_int_equal(harness_used(a), 0);

	/* Once the scrubber is done, free memory is all of it again. */
	harness_wait_scrubbed(a);
	assert_int_equal(backlog(a), 0);
	assert_int_equal(harness_used(a), 0);
	smhctl_stats(d, false, res);
	assert_null(strstr(res->out, "given back"));
	free(res);
	smh_disconnect(a);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_round_trips_while_scrubbing, harness_teardown),
		cmocka_unit_test_teardown(test_smhctl_shows_backlog, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
