/* SPDX-License-Identifier: MIT */
/*
 * Use-after-free detection (smhd --debug-poison, daemon/poison.h), on the example board
 * (res0: 4 KiB cacheable, res2: 12 KiB cacheable), with a quarantine large enough to hold every
 * block freed (--poison-quarantine 1M), so that blocks leave it only when an allocation needs
 * them or smhd stops:
 *
 * - A client (a child named "stale-writer") allocates all of res0, maps it, frees it, waits
 *   until smhd has filled the block with the pattern (the quarantine holds its 4 KiB), then
 *   writes 3 bytes at +100 through its stale mapping (the library keeps the region mapped).
 *   Another client allocates cacheable pages until it gets res0's: the allocation waits for
 *   the quarantine, which is drained. It reads zeros; smh_get_poison(), `smhctl poison` (table
 *   and JSON), `smhctl stats` (table and JSON) and the log report one block: region res0, the
 *   offset, 3 bytes changed, the first at +0x64, the writer's handle, pid and command.
 * - The same without the write: nothing is reported, the next owner still reads zeros.
 * - A write after free found only at shutdown (the quarantine is checked as smhd stops) is in
 *   the log.
 * - Without --debug-poison: `smhctl poison` fails saying how to turn it on, `smhctl stats`
 *   says nothing of it, its JSON says "poison_enabled": false.
 *
 * No timing is asserted: the child waits (bounded) for the fill before it writes.
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smh/client.h"
#include "tests/integration/harness.h"

#define PAGE      4096
#define RES0      UINT64_C(0x42000000)
#define WRITER    "stale-writer"
#define WRITE_AT  100
#define WRITE_LEN 3

static const char *const poison_args[] = { "--debug-poison", "--poison-quarantine", "1M", NULL };

static struct smhd *start_poison(void)
{
	return smhd_start(&(struct smhd_options){ .extra_args = poison_args });
}

/* What the writer tells the test: its buffer, before it wrote. */
struct freed {
	uint64_t handle, offset;
};

/* The child's checks, each with its own exit code. */
static int writer(const char *socket, bool write_after_free, int out)
{
	struct smh_poison_info p;
	struct smh_client *c;
	struct smh_buffer b;
	struct freed f;
	char *stale;
	int tries;

	if (prctl(PR_SET_NAME, WRITER) < 0 || smh_connect(socket, &c) < 0)
		return 10;
	if (smh_alloc(c, SMH_REG_ATTR_CACHEABLE, PAGE, 0, &b) < 0 || b.phys_addr != RES0)
		return 11;
	if (smh_map(&b) < 0)
		return 12;
	memset(b.addr, 0x11, PAGE);
	stale = b.addr;
	f = (struct freed){ .handle = b.handle, .offset = b.offset };
	if (smh_free(c, &b) < 0)
		return 13;
	/* The block holds the pattern once the quarantine counts it: a write then stays. */
	for (tries = 0; tries < HARNESS_WAIT_MS / 10; tries++) {
		if (smh_get_poison(c, &p) < 0)
			return 14;
		if (p.quarantine_bytes >= PAGE)
			break;
		harness_sleep_ms(10);
	}
	if (tries == HARNESS_WAIT_MS / 10)
		return 15;
	if (write_after_free)
		memset(stale + WRITE_AT, 0x42, WRITE_LEN); /* the bug under test */
	if (write(out, &f, sizeof(f)) != (ssize_t)sizeof(f))
		return 16;
	smh_disconnect(c);
	return 0;
}

/* Runs the writer in a child; returns its pid and what it freed. */
static pid_t run_writer(const struct smhd *d, bool write_after_free, struct freed *f)
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(writer(d->socket, write_after_free, fds[1]));
	}
	harness_track_child(pid);
	close(fds[1]);
	harness_assert_child_ok(pid);
	assert_int_equal(read(fds[0], f, sizeof(*f)), (ssize_t)sizeof(*f));
	close(fds[0]);
	return pid;
}

/*
 * Allocates cacheable pages until one is res0's (the quarantined block): that allocation waits
 * for the quarantine to be drained. Asserts it reads zeros, then frees everything.
 */
static void reuse_res0(struct smh_client *c)
{
	struct smh_buffer b[8];
	size_t n = 0;
	bool reused = false;

	while (!reused) {
		assert_true(n < sizeof(b) / sizeof(b[0]));
		assert_int_equal(smh_alloc(c, SMH_REG_ATTR_CACHEABLE, PAGE, 0, &b[n]), 0);
		reused = b[n].phys_addr == RES0;
		n++;
	}
	assert_int_equal(smh_map(&b[n - 1]), 0);
	assert_true(all_zero(b[n - 1].addr, PAGE));
	while (n > 0)
		assert_int_equal(smh_free(c, &b[--n]), 0);
}

static void run_smhctl(const struct smhd *d, const char *cmd, bool json, struct run_result *res)
{
	if (json)
		smhctl(res, d->socket, cmd, "--json", NULL);
	else
		smhctl(res, d->socket, cmd, NULL);
}

static void test_write_after_free_reported(void **state)
{
	struct smhd *d = start_poison();
	struct smh_client *c = harness_connect(d);
	struct run_result *res = calloc(1, sizeof(*res));
	struct smh_poison_info p;
	struct freed f;
	char pid_s[32], line[256];
	pid_t pid;

	assert_non_null(res);
	pid = run_writer(d, true, &f);
	snprintf(pid_s, sizeof(pid_s), "(pid %d)", (int)pid);
	/* Nothing is checked before the block leaves the quarantine. */
	assert_int_equal(smh_get_poison(c, &p), 0);
	assert_true(p.enabled);
	assert_int_equal(p.n_reports, 0);

	reuse_res0(c);
	assert_int_equal(smh_get_poison(c, &p), 0);
	assert_int_equal(p.n_reports, 1);
	assert_int_equal(p.n_last, 1);
	assert_int_equal(p.last[0].region, 0);
	assert_int_equal(p.last[0].offset, f.offset);
	assert_int_equal(p.last[0].size, PAGE);
	assert_int_equal(p.last[0].first, WRITE_AT);
	assert_int_equal(p.last[0].changed, WRITE_LEN);
	assert_int_equal(p.last[0].handle, f.handle);
	assert_int_equal(p.last[0].pid, pid);
	assert_string_equal(p.last[0].comm, WRITER);

	/* One warning in the log, naming the region, the change, the handle and the writer. */
	snprintf(line, sizeof(line), "handle %llu, last held by " WRITER,
		 (unsigned long long)f.handle);
	assert_int_equal(
		smhd_count_log(d, (const char *const[]){ "warning: Region res0: 3 bytes",
							 "written after it was freed",
							 "the first at +0x64", line, pid_s, NULL }),
		1);

	run_smhctl(d, "poison", false, res);
	assert_status(res, 0);
	assert_contains(res->out, "1 block written after free");
	assert_contains(res->out, "res0 offset 0x");
	assert_contains(res->out, "3 bytes changed, the first at +0x64");
	assert_contains(res->out, "last held by " WRITER " ");
	assert_contains(res->out, pid_s);
	run_smhctl(d, "poison", true, res);
	assert_status(res, 0);
	assert_contains(res->out, "\"reports\": 1");
	assert_contains(res->out, "\"label\": \"res0\"");
	assert_contains(res->out, "\"first\": 100");
	assert_contains(res->out, "\"changed\": 3");
	assert_contains(res->out, "\"comm\": \"" WRITER "\"");
	run_smhctl(d, "stats", false, res);
	assert_status(res, 0);
	assert_contains(res->out, "poison: 1 block written after free (smhctl poison)");
	run_smhctl(d, "stats", true, res);
	assert_status(res, 0);
	assert_contains(res->out, "\"poison_enabled\": true");
	assert_contains(res->out, "\"poison_reports\": 1");

	free(res);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_no_write_nothing_reported(void **state)
{
	struct smhd *d = start_poison();
	struct smh_client *c = harness_connect(d);
	struct smh_poison_info p;
	struct freed f;

	run_writer(d, false, &f);
	reuse_res0(c);
	assert_int_equal(smh_get_poison(c, &p), 0);
	assert_true(p.enabled);
	assert_int_equal(p.n_reports, 0);
	assert_int_equal(p.n_last, 0);
	assert_int_equal(smhd_count_log(d, (const char *const[]){ "written after", NULL }), 0);
	smh_disconnect(c);
	smhd_stop(d);
}

static void test_checked_at_shutdown(void **state)
{
	struct smhd *d = start_poison();
	struct freed f;
	char pid_s[32];
	pid_t pid;
	int status;

	pid = run_writer(d, true, &f);
	snprintf(pid_s, sizeof(pid_s), "(pid %d)", (int)pid);
	/* Stopped by hand: smhd_stop() removes the log this test reads. */
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	status = harness_wait_child(d->pid);
	d->pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(smhd_count_log(d, (const char *const[]){ "Region res0: 3 bytes",
								  "written after it was freed",
								  WRITER, pid_s, NULL }),
			 1);
	/* Started again in the same directory only to stop it the harness's way. */
	smhd_restart(d, NULL);
	smhd_stop(d);
}

static void test_off_by_default(void **state)
{
	struct smhd *d = smhd_start(NULL);
	struct smh_client *c = harness_connect(d);
	struct run_result *res = calloc(1, sizeof(*res));
	struct smh_poison_info p;

	assert_non_null(res);
	assert_int_equal(smh_get_poison(c, &p), 0);
	assert_false(p.enabled);
	assert_int_equal(p.n_reports, 0);
	assert_int_equal(p.quarantine_bytes, 0);
	run_smhctl(d, "poison", false, res);
	assert_status(res, 1);
	assert_contains(res->err, "start it with --debug-poison");
	run_smhctl(d, "stats", false, res);
	assert_status(res, 0);
	assert_lacks(res->out, "poison");
	run_smhctl(d, "stats", true, res);
	assert_status(res, 0);
	assert_contains(res->out, "\"poison_enabled\": false");
	free(res);
	smh_disconnect(c);
	smhd_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_write_after_free_reported, harness_teardown),
		cmocka_unit_test_teardown(test_no_write_nothing_reported, harness_teardown),
		cmocka_unit_test_teardown(test_checked_at_shutdown, harness_teardown),
		cmocka_unit_test_teardown(test_off_by_default, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
