/* SPDX-License-Identifier: MIT */
/*
 * Requests' waits in smhd (docs/metrics.md): every request is counted, and one that arrives
 * while smhd is stopped (SIGSTOP) waits at least as long as it stayed stopped, since its
 * arrival is the kernel's timestamp of the datagram, taken when the client sent it. Read
 * through the library (smh_get_waits()), `smhctl stats` (text and JSON) and `smhctl metrics`.
 * Only lower bounds are asserted: how long a request waits otherwise is the machine's.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
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

/* How long smhd is kept stopped with a request in its socket. */
#define STOPPED_MS 300

/* The number after @key in @text (which must have it). */
static double number_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	if (!p)
		fail_msg("no \"%s\" in:\n%s", key, text);
	return strtod(p + strlen(key), NULL);
}

static void test_waits(void **state)
{
	struct run_result *res = malloc(sizeof(*res));
	struct smhd *d = smhd_start(NULL);
	struct smh_client *a = harness_connect(d), *b = harness_connect(d);
	struct smh_waits w0, w1;
	struct smh_stats st;
	int64_t deadline;

	(void)state;
	assert_non_null(res);
	assert_int_equal(smh_get_waits(a, &w0), 0);
	assert_true(w0.requests >= 2); /* the hellos, at least */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(smh_get_stats(a, &st), 0);
		smh_stats_finish(&st);
	}
	assert_int_equal(smh_get_waits(a, &w1), 0);
	assert_true(w1.requests >= w0.requests + 11);
	assert_true(w1.longest_us >= w0.longest_us);
	for (int i = 0; i < SMH_WAIT_BOUNDS; i++)
		assert_true(w1.over[i] >= w0.over[i]);

	/* b's request sits in smhd's socket while smhd is stopped; b gives up waiting. */
	assert_int_equal(smh_set_timeout(b, STOPPED_MS), 0);
	assert_int_equal(kill(d->pid, SIGSTOP), 0);
	assert_int_equal(smh_get_stats(b, &st), -ETIMEDOUT);
	assert_int_equal(kill(d->pid, SIGCONT), 0);
	deadline = harness_now_ms() + HARNESS_WAIT_MS;
	do { /* b's request and a's may be answered in either order */
		assert_int_equal(smh_get_waits(a, &w1), 0);
	} while (w1.longest_us < STOPPED_MS * 1000 && harness_now_ms() < deadline);
	assert_true(w1.longest_us >= STOPPED_MS * 1000);
	for (int i = 0; i < 4; i++) /* over 1, 5, 20 and 100 ms */
		assert_true(w1.over[i] >= w0.over[i] + 1);

	smhctl(res, d->socket, "stats", NULL);
	assert_status(res, 0);
	assert_contains(res->out, " requests answered, longest wait in smhd ");
	assert_true(number_after(res->out, "longest wait in smhd ") >= STOPPED_MS);
	assert_true(number_after(res->out, "over 100 ms: ") >= 1);
	smhctl(res, d->socket, "stats", "--json", NULL);
	assert_status(res, 0);
	assert_true(number_after(res->out, "\"wait_longest_us\": ") >= STOPPED_MS * 1000);
	assert_true(number_after(res->out, "\"100ms\": ") >= 1);
	assert_true(number_after(res->out, "\"requests\": ") > (double)w1.requests);
	smhctl(res, d->socket, "metrics", NULL);
	assert_status(res, 0);
	assert_contains(res->out, "# TYPE smh_requests_total counter\n");
	assert_true(number_after(res->out, "\nsmh_requests_total ") > (double)w1.requests);
	assert_true(number_after(res->out, "\nsmh_request_wait_longest_seconds ") >=
		    STOPPED_MS / 1000.0);
	assert_true(number_after(res->out, "\nsmh_request_waits_over_total{over=\"0.1\"} ") >= 1);
	assert_contains(res->out, "smh_request_waits_over_total{over=\"1\"} ");

	smh_disconnect(b);
	smh_disconnect(a);
	smhd_stop(d);
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_waits, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
